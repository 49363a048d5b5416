package plc

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	mb "github.com/goburrow/modbus"
	"golang.org/x/sys/unix"

	"idk/drivers/modbus"
	"idk/internal/testenv"
)

func bit(n uint8) *uint8 { return &n }

func testMap() modbus.Map {
	return modbus.Map{
		Powered:          modbus.Point{Source: modbus.Coil, Address: 0},
		Ready:            modbus.Point{Source: modbus.Coil, Address: 1, Invert: true},
		Scanning:         modbus.Point{Source: modbus.DiscreteInput, Address: 0},
		AcceleratorFault: modbus.Point{Source: modbus.HoldingRegister, Address: 10, Bit: bit(3), ByteOrder: modbus.LittleEndian},
		BoomFault:        modbus.Point{Source: modbus.HoldingRegister, Address: 11},
		DoseRate: modbus.Point{Source: modbus.InputRegister, Address: 0, Type: modbus.Float32,
			WordOrder: modbus.LowWordFirst},
		GeneratorFuel: modbus.Point{Source: modbus.HoldingRegister, Address: 12, Type: modbus.Int32,
			Scale: 0.01, Offset: 100},
	}
}

func newController(t *testing.T) *Controller {
	t.Helper()
	c, err := New(testMap())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Register contents are checked against hand-made vectors, not against the
// driver's decoder, so that a bug shared by both cannot hide.
func TestEncoding(t *testing.T) {
	c := newController(t)
	if got, _ := c.readBits(modbus.Coil, 0, 2); got[0] || !got[1] {
		t.Errorf("initial coils = %v, want off and inverted-off (raw on)", got)
	}
	if err := c.SetSignal(modbus.AcceleratorFault, true); err != nil {
		t.Fatal(err)
	}
	if err := c.SetSignal(modbus.BoomFault, true); err != nil {
		t.Fatal(err)
	}
	if err := c.SetValue(modbus.DoseRate, 1.5); err != nil { // 0x3FC00000
		t.Fatal(err)
	}
	if err := c.SetValue(modbus.GeneratorFuel, 99); err != nil { // raw -100 = 0xFFFFFF9C
		t.Fatal(err)
	}
	holding, err := c.readRegs(modbus.HoldingRegister, 10, 4)
	if err != nil {
		t.Fatal(err)
	}
	// Bit 3 is 0x0008, byte-swapped on the wire to 0x0800.
	if want := []uint16{0x0800, 1, 0xffff, 0xff9c}; !equal(holding, want) {
		t.Errorf("holding 10..13 = %04x, want %04x", holding, want)
	}
	input, _ := c.readRegs(modbus.InputRegister, 0, 2)
	if want := []uint16{0x0000, 0x3fc0}; !equal(input, want) {
		t.Errorf("input 0..1 = %04x, want %04x", input, want)
	}
	// Clearing one bit leaves the rest of the register alone.
	if err := c.SetSignal(modbus.AcceleratorFault, false); err != nil {
		t.Fatal(err)
	}
	if h, _ := c.readRegs(modbus.HoldingRegister, 10, 1); h[0] != 0 {
		t.Errorf("holding 10 = %04x after clearing", h[0])
	}
}

func equal(a, b []uint16) bool { return len(a) == len(b) && string(u16bytes(a)) == string(u16bytes(b)) }

func u16bytes(v []uint16) []byte {
	var b []byte
	for _, x := range v {
		b = binary.BigEndian.AppendUint16(b, x)
	}
	return b
}

func TestSetErrors(t *testing.T) {
	c := newController(t)
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"unwired", c.SetSignal(modbus.ChassisFault, true), "not wired"},
		{"value as signal", c.SetSignal(modbus.DoseRate, true), "SetValue"},
		{"signal as value", c.SetValue(modbus.Powered, 1), "SetSignal"},
		{"out of range", c.SetValue(modbus.GeneratorFuel, 1e9), "outside"},
	} {
		if tc.err == nil || !strings.Contains(tc.err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error with %q", tc.name, tc.err, tc.want)
		}
	}
	if _, err := New(modbus.Map{}); err == nil {
		t.Error("New accepted an empty map")
	}
}

func TestTCPServerDownUpSilence(t *testing.T) {
	c := newController(t)
	srv, err := c.ServeTCP("127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()

	h := mb.NewTCPClientHandler(srv.Addr())
	h.Timeout = 200 * time.Millisecond
	h.IdleTimeout = 0
	client := mb.NewClient(h)
	defer h.Close()

	if err := c.SetSignal(modbus.Powered, true); err != nil {
		t.Fatal(err)
	}
	if got, err := client.ReadCoils(0, 2); err != nil || got[0] != 0b11 {
		t.Fatalf("coils = %08b, %v; want 00000011", got, err)
	}
	// An unmapped address is an exception, not zeros.
	_, err = client.ReadCoils(0, 3)
	var exc *mb.ModbusError
	if !errors.As(err, &exc) || exc.ExceptionCode != mb.ExceptionCodeIllegalDataAddress {
		t.Errorf("read past the map: %v, want illegal data address", err)
	}
	// The simulator is read-only.
	if _, err := client.WriteSingleCoil(0, 0xff00); !errors.As(err, &exc) || exc.ExceptionCode != mb.ExceptionCodeIllegalFunction {
		t.Errorf("write: %v, want illegal function", err)
	}

	if err := srv.Down(); err != nil {
		t.Fatal(err)
	}
	h.Close()
	if _, err := client.ReadCoils(0, 1); err == nil {
		t.Error("read succeeded with the link down")
	}
	if err := srv.Up(); err != nil {
		t.Fatal(err)
	}
	h.Close()
	if _, err := client.ReadCoils(0, 1); err != nil {
		t.Errorf("read after Up: %v", err)
	}

	srv.Silence(true)
	start := time.Now()
	_, err = client.ReadDiscreteInputs(0, 1)
	var ne interface{ Timeout() bool }
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Errorf("silenced read: %v, want a timeout", err)
	}
	if time.Since(start) < 150*time.Millisecond {
		t.Error("silenced read failed before the timeout")
	}
	srv.Silence(false)
	h.Close()
	if _, err := client.ReadDiscreteInputs(0, 1); err != nil {
		t.Errorf("read after silence: %v", err)
	}
}

// requirePTY ends the test as testenv.Require does (a failure under CI, a
// skip elsewhere) when the system has no pseudo-terminals at all: no
// /dev/ptmx to open the master end, or, on Linux, no devpts file system at
// /dev/pts to hold the slave end, as in some minimal containers. Every
// other failure to open a pair is the code under test's, so the tests
// fail on it instead of skipping.
func requirePTY(t *testing.T) {
	t.Helper()
	_, err := os.Stat("/dev/ptmx")
	testenv.Require(t, err == nil, fmt.Sprintf("no pseudo-terminals here: %v", err))
	if runtime.GOOS != "linux" {
		return
	}
	const devptsMagic = 0x1cd1 // DEVPTS_SUPER_MAGIC, linux/magic.h
	var st unix.Statfs_t
	err = unix.Statfs("/dev/pts", &st)
	testenv.Require(t, err == nil && st.Type == devptsMagic,
		fmt.Sprintf("no pseudo-terminals here: /dev/pts is not a devpts mount (statfs: %v, type %#x)", err, st.Type))
}

// rtuLine opens the client end of an RTU server's line with a read
// deadline, to talk raw frames to it.
func rtuLine(t *testing.T, srv *RTUServer) *os.File {
	t.Helper()
	f, err := os.OpenFile(srv.Path(), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func frame(b ...byte) []byte { return binary.LittleEndian.AppendUint16(b, crc16(b)) }

func exchange(t *testing.T, line *os.File, req []byte, want int) []byte {
	t.Helper()
	if _, err := line.Write(req); err != nil {
		t.Fatal(err)
	}
	if err := line.SetReadDeadline(time.Now().Add(500 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	res := make([]byte, want)
	if _, err := io.ReadFull(line, res); err != nil {
		t.Fatalf("request % x: %v", req, err)
	}
	return res
}

func TestCRC16(t *testing.T) {
	// The example from the Modbus serial line guide: read 10 holding
	// registers from slave 1 is 01 03 00 00 00 0A C5 CD.
	if got := frame(0x01, 0x03, 0x00, 0x00, 0x00, 0x0a); !bytes.Equal(got, []byte{1, 3, 0, 0, 0, 0x0a, 0xc5, 0xcd}) {
		t.Errorf("frame = % x", got)
	}
}

func TestRTUFraming(t *testing.T) {
	c := newController(t)
	if err := c.SetSignal(modbus.BoomFault, true); err != nil {
		t.Fatal(err)
	}
	requirePTY(t)
	srv, err := c.ServeRTU(5, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	line := rtuLine(t, srv)

	want := frame(5, 0x03, 2, 0x00, 0x01)
	if got := exchange(t, line, frame(5, 0x03, 0, 11, 0, 1), len(want)); !bytes.Equal(got, want) {
		t.Errorf("read holding 11: % x, want % x", got, want)
	}
	// Junk ahead of a frame, and a frame for another slave, are skipped.
	req := append([]byte{0xff, 0x00, 0x13}, frame(9, 0x03, 0, 11, 0, 1)...)
	req = append(req, frame(5, 0x03, 0, 11, 0, 1)...)
	if got := exchange(t, line, req, len(want)); !bytes.Equal(got, want) {
		t.Errorf("after junk: % x, want % x", got, want)
	}
	// Exceptions: unmapped address, then a write.
	wantExc := frame(5, 0x83, 0x02)
	if got := exchange(t, line, frame(5, 0x03, 0, 50, 0, 1), len(wantExc)); !bytes.Equal(got, wantExc) {
		t.Errorf("unmapped: % x, want % x", got, wantExc)
	}
	wantExc = frame(5, 0x86, 0x01)
	if got := exchange(t, line, frame(5, 0x06, 0, 11, 0, 0), len(wantExc)); !bytes.Equal(got, wantExc) {
		t.Errorf("write: % x, want % x", got, wantExc)
	}
	answered, ignored, dropped := srv.Stats()
	if answered != 4 || ignored != 1 || dropped == 0 {
		t.Errorf("stats = %d answered, %d ignored, %d dropped", answered, ignored, dropped)
	}

	// Down: the request is read and not answered.
	srv.Down()
	if _, err := line.Write(frame(5, 0x03, 0, 11, 0, 1)); err != nil {
		t.Fatal(err)
	}
	if err := line.SetReadDeadline(time.Now().Add(100 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if n, err := line.Read(make([]byte, 16)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("down slave answered: %d bytes, %v", n, err)
	}
	srv.Up()
	if got := exchange(t, line, frame(5, 0x03, 0, 11, 0, 1), len(want)); !bytes.Equal(got, want) {
		t.Errorf("after Up: % x, want % x", got, want)
	}
}
