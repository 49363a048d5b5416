package modbus_test

import (
	"context"
	"errors"
	"math"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	mb "github.com/goburrow/modbus"

	"idk/drivers/modbus"
	"idk/internal/clock"
	"idk/simulator/plc"
	"idk/simulator/simclock"
)

// testClock is the virtual clock as the poller's pacer: the poller's waits
// end at once and move the time forward, so polling intervals and backoff
// cost no real time. It records every wait for tests of cadence and
// backoff.
type testClock struct {
	clock.Clock
	mu    sync.Mutex
	waits []time.Duration
}

func newTestClock() *testClock {
	sim := simclock.New(time.Date(2024, 3, 1, 8, 0, 0, 0, time.UTC))
	c := &testClock{Clock: sim.Pacer()}
	sim.OnAdvance(func(from, to time.Time) {
		c.mu.Lock()
		c.waits = append(c.waits, to.Sub(from))
		c.mu.Unlock()
	})
	return c
}

func (c *testClock) Waits() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Duration(nil), c.waits...)
}

func bit(n uint8) *uint8 { return &n }

// fullMap wires every signal, using every source, bit placement, type,
// order and inversion the map supports.
func fullMap() modbus.Map {
	return modbus.Map{
		Powered:          modbus.Point{Source: modbus.Coil, Address: 0},
		Ready:            modbus.Point{Source: modbus.Coil, Address: 1},
		Scanning:         modbus.Point{Source: modbus.DiscreteInput, Address: 10},
		VehicleInZone:    modbus.Point{Source: modbus.DiscreteInput, Address: 11, Invert: true}, // a "zone clear" sensor
		AcceleratorFault: modbus.Point{Source: modbus.HoldingRegister, Address: 100, Bit: bit(3)},
		GeneratorFault:   modbus.Point{Source: modbus.HoldingRegister, Address: 100, Bit: bit(15)},
		ChassisFault:     modbus.Point{Source: modbus.HoldingRegister, Address: 101, Bit: bit(0), ByteOrder: modbus.LittleEndian},
		BoomFault:        modbus.Point{Source: modbus.InputRegister, Address: 200},
		SoftwareFault: modbus.Point{Source: modbus.InputRegister, Address: 201, Type: modbus.Uint32,
			Bit: bit(20), WordOrder: modbus.LowWordFirst, Invert: true},
		DoseRate: modbus.Point{Source: modbus.InputRegister, Address: 300, Type: modbus.Float32,
			WordOrder: modbus.LowWordFirst},
		GeneratorFuel: modbus.Point{Source: modbus.HoldingRegister, Address: 110, Type: modbus.Int16,
			Scale: 0.1, Offset: -5},
	}
}

var flagSignals = []modbus.Signal{
	modbus.Powered, modbus.Ready, modbus.Scanning, modbus.VehicleInZone,
	modbus.AcceleratorFault, modbus.GeneratorFault, modbus.BoomFault,
	modbus.ChassisFault, modbus.SoftwareFault,
}

// run starts p and returns its samples. The poller is stopped, and must
// stop within a bound, when the test ends.
func run(t *testing.T, p *modbus.Poller) <-chan modbus.Sample {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan modbus.Sample)
	done := make(chan error, 1)
	go func() {
		done <- p.Run(ctx, func(s modbus.Sample) {
			select {
			case ch <- s:
			case <-ctx.Done():
			}
		})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(3 * time.Second):
			t.Error("poller did not stop")
		}
	})
	return ch
}

// waitFor reads samples until one satisfies ok, failing after a bound.
func waitFor(t *testing.T, ch <-chan modbus.Sample, what string, ok func(modbus.Sample) bool) modbus.Sample {
	t.Helper()
	deadline := time.After(3 * time.Second)
	var last modbus.Sample
	for {
		select {
		case s := <-ch:
			if ok(s) {
				return s
			}
			last = s
		case <-deadline:
			t.Fatalf("no sample with %s; last: %+v", what, last)
		}
	}
}

func flagsAre(want map[modbus.Signal]bool) func(modbus.Sample) bool {
	return func(s modbus.Sample) bool {
		if s.Link != modbus.LinkUp || s.Err != nil || len(s.Flags) != len(want) {
			return false
		}
		for k, v := range want {
			if got, ok := s.Flags[k]; !ok || got != v {
				return false
			}
		}
		return true
	}
}

func serveTCP(t *testing.T, m modbus.Map) (*plc.Controller, *plc.TCPServer) {
	t.Helper()
	c, err := plc.New(m)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := c.ServeTCP("127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return c, srv
}

// checkEverySignal flips each signal on alone, then sets the values, and
// checks the poller sees exactly that: a bit landing in the wrong place
// shows as another signal changing.
func checkEverySignal(t *testing.T, c *plc.Controller, samples <-chan modbus.Sample) {
	t.Helper()
	off := map[modbus.Signal]bool{}
	for _, s := range flagSignals {
		off[s] = false
	}
	first := waitFor(t, samples, "every signal off", flagsAre(off))
	if first.Values[modbus.DoseRate] != 0 || first.Values[modbus.GeneratorFuel] != 0 {
		t.Errorf("initial values = %v, want zeros", first.Values)
	}
	for _, sig := range flagSignals {
		if err := c.SetSignal(sig, true); err != nil {
			t.Fatal(err)
		}
		want := map[modbus.Signal]bool{}
		for k := range off {
			want[k] = k == sig
		}
		waitFor(t, samples, "only "+string(sig)+" on", flagsAre(want))
		if err := c.SetSignal(sig, false); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, samples, "every signal off again", flagsAre(off))

	if err := c.SetValue(modbus.DoseRate, 0.37); err != nil {
		t.Fatal(err)
	}
	if err := c.SetValue(modbus.GeneratorFuel, -12.3); err != nil { // raw -73: a negative int16
		t.Fatal(err)
	}
	s := waitFor(t, samples, "values set", func(s modbus.Sample) bool {
		return s.Err == nil && s.Values[modbus.GeneratorFuel] != 0 && s.Values[modbus.DoseRate] != 0
	})
	if got := s.Values[modbus.DoseRate]; math.Abs(got-0.37) > 1e-6 {
		t.Errorf("dose_rate = %v, want 0.37", got)
	}
	if got := s.Values[modbus.GeneratorFuel]; math.Abs(got+12.3) > 1e-9 {
		t.Errorf("generator_fuel = %v, want -12.3", got)
	}
}

func TestTCPReadsEverySignalKind(t *testing.T) {
	c, srv := serveTCP(t, fullMap())
	p, err := modbus.New(modbus.Config{
		Transport: modbus.TCP, Address: srv.Addr(), SlaveID: 1,
		Timeout: time.Second, Map: fullMap(), Clock: newTestClock(),
	})
	if err != nil {
		t.Fatal(err)
	}
	checkEverySignal(t, c, run(t, p))
}

func TestTCPLinkDownAndBack(t *testing.T) {
	c, srv := serveTCP(t, fullMap())
	clock := newTestClock()
	p, err := modbus.New(modbus.Config{
		Transport: modbus.TCP, Address: srv.Addr(), SlaveID: 1,
		Timeout: time.Second, Map: fullMap(), Clock: clock,
	})
	if err != nil {
		t.Fatal(err)
	}
	samples := run(t, p)
	// A controller with everything off must still read as up: "off" and
	// "unreachable" are different things to the agent.
	s := waitFor(t, samples, "link up", func(s modbus.Sample) bool { return s.Link == modbus.LinkUp })
	if s.Err != nil || s.Flags == nil || s.Flags[modbus.Powered] {
		t.Fatalf("up sample = %+v", s)
	}

	if err := srv.Down(); err != nil {
		t.Fatal(err)
	}
	s = waitFor(t, samples, "link down", func(s modbus.Sample) bool { return s.Link == modbus.LinkDown })
	if s.Err == nil {
		t.Error("link-down sample has no error")
	}
	if s.Flags != nil || s.Values != nil {
		t.Errorf("link-down sample carries signals: %+v", s)
	}
	if !strings.Contains(s.Err.Error(), srv.Addr()) {
		t.Errorf("error does not name the controller: %v", s.Err)
	}

	if err := c.SetSignal(modbus.Powered, true); err != nil {
		t.Fatal(err)
	}
	if err := srv.Up(); err != nil {
		t.Fatal(err)
	}
	s = waitFor(t, samples, "link up again", func(s modbus.Sample) bool { return s.Link == modbus.LinkUp })
	if s.Err != nil || !s.Flags[modbus.Powered] {
		t.Errorf("sample after reconnect = %+v", s)
	}
}

func TestTCPHungControllerTimesOut(t *testing.T) {
	_, srv := serveTCP(t, fullMap())
	p, err := modbus.New(modbus.Config{
		Transport: modbus.TCP, Address: srv.Addr(), SlaveID: 1,
		Timeout: 150 * time.Millisecond, Map: fullMap(), Clock: newTestClock(),
	})
	if err != nil {
		t.Fatal(err)
	}
	samples := run(t, p)
	waitFor(t, samples, "link up", func(s modbus.Sample) bool { return s.Link == modbus.LinkUp })
	srv.Silence(true)
	s := waitFor(t, samples, "link down", func(s modbus.Sample) bool { return s.Link == modbus.LinkDown })
	var ne net.Error
	if !errors.As(s.Err, &ne) || !ne.Timeout() {
		t.Errorf("error = %v, want a timeout", s.Err)
	}
	srv.Silence(false)
	waitFor(t, samples, "link up again", func(s modbus.Sample) bool { return s.Link == modbus.LinkUp && s.Err == nil })
}

func TestExceptionKeepsLinkUp(t *testing.T) {
	_, srv := serveTCP(t, fullMap())
	m := fullMap()
	m.BoomFault.Address = 250 // the controller has nothing there
	p, err := modbus.New(modbus.Config{Transport: modbus.TCP, Address: srv.Addr(), Map: m, Clock: newTestClock()})
	if err != nil {
		t.Fatal(err)
	}
	s := waitFor(t, run(t, p), "a sample", func(modbus.Sample) bool { return true })
	var exc *mb.ModbusError
	if s.Link != modbus.LinkUp || !errors.As(s.Err, &exc) || exc.ExceptionCode != mb.ExceptionCodeIllegalDataAddress {
		t.Errorf("sample = %+v, want link up with an illegal-address exception", s)
	}
	if s.Flags != nil {
		t.Errorf("sample with an error carries flags: %v", s.Flags)
	}
}

func TestBackoffDoublesAndCaps(t *testing.T) {
	// A port nobody listens on: every connect is refused at once.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()

	clock := newTestClock()
	p, err := modbus.New(modbus.Config{
		Transport: modbus.TCP, Address: addr, Interval: time.Second, MaxBackoff: 8 * time.Second,
		Map: fullMap(), Clock: clock,
	})
	if err != nil {
		t.Fatal(err)
	}
	samples := run(t, p)
	for i := range 6 {
		s := waitFor(t, samples, "a sample", func(modbus.Sample) bool { return true })
		if s.Link != modbus.LinkDown || s.Err == nil {
			t.Fatalf("sample %d = %+v, want link down with error", i, s)
		}
	}
	want := []time.Duration{1, 2, 4, 8, 8}
	got := clock.Waits()
	if len(got) < len(want) {
		t.Fatalf("waits = %v", got)
	}
	for i, w := range want {
		if got[i] != w*time.Second {
			t.Errorf("wait %d = %v, want %v (all: %v)", i, got[i], w*time.Second, got)
		}
	}
}

func TestCadenceAndPause(t *testing.T) {
	_, srv := serveTCP(t, fullMap())
	clock := newTestClock()
	p, err := modbus.New(modbus.Config{
		Transport: modbus.TCP, Address: srv.Addr(), Interval: time.Second, Pause: 50 * time.Millisecond,
		Map: fullMap(), Clock: clock,
	})
	if err != nil {
		t.Fatal(err)
	}
	samples := run(t, p)
	var times []time.Time
	for range 3 {
		s := waitFor(t, samples, "a good sample", func(modbus.Sample) bool { return true })
		if s.Err != nil {
			t.Fatal(s.Err)
		}
		times = append(times, s.Time)
	}
	// fullMap needs 6 requests: coils 0..1, discrete inputs 10..11,
	// holding registers 100..101 and 110, input registers 200..202 and
	// 300..301. The pauses come out of the interval, not on top of it.
	for i := 1; i < len(times); i++ {
		if d := times[i].Sub(times[i-1]); d != time.Second {
			t.Errorf("samples %v apart, want 1s", d)
		}
	}
	pauses := 0
	for _, w := range clock.Waits()[:5] {
		if w == 50*time.Millisecond {
			pauses++
		}
	}
	if pauses != 5 {
		t.Errorf("waits = %v, want 5 pauses between the 6 requests of the first poll", clock.Waits())
	}
}

func TestConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  modbus.Config
		want string
	}{
		{"transport", modbus.Config{Transport: "udp", Address: "x", Map: fullMap()}, "transport"},
		{"rtu slave", modbus.Config{Transport: modbus.RTU, Address: "/dev/null", Map: fullMap()}, "slave_id"},
		{"parity", modbus.Config{Transport: modbus.RTU, Address: "/dev/null", SlaveID: 1, Serial: modbus.Serial{Parity: "X"}, Map: fullMap()}, "serial.parity"},
		{"map", modbus.Config{Transport: modbus.TCP, Address: "plc:502"}, "powered.source"},
		{"interval", modbus.Config{Transport: modbus.TCP, Address: "plc:502", Interval: -1, Map: fullMap()}, "interval"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := modbus.New(tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("New: %v, want an error naming %s", err, tc.want)
			}
		})
	}
}

func serveRTU(t *testing.T, m modbus.Map, id uint8) (*plc.Controller, *plc.RTUServer) {
	t.Helper()
	c, err := plc.New(m)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := c.ServeRTU(id, nil)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	t.Cleanup(func() { srv.Close() })
	return c, srv
}

func TestRTUOverPTY(t *testing.T) {
	c, srv := serveRTU(t, fullMap(), 7)
	p, err := modbus.New(modbus.Config{
		Transport: modbus.RTU, Address: srv.Path(), SlaveID: 7,
		Serial:  modbus.Serial{BaudRate: 19200, Parity: "E"},
		Timeout: 300 * time.Millisecond, Map: fullMap(), Clock: newTestClock(),
	})
	if err != nil {
		t.Fatal(err)
	}
	samples := run(t, p)
	checkEverySignal(t, c, samples)

	// A slave that stops answering is silence on the line: a timeout.
	srv.Down()
	s := waitFor(t, samples, "link down", func(s modbus.Sample) bool { return s.Link == modbus.LinkDown })
	if s.Err == nil || s.Flags != nil {
		t.Errorf("link-down sample = %+v", s)
	}
	srv.Up()
	waitFor(t, samples, "link up again", func(s modbus.Sample) bool { return s.Link == modbus.LinkUp && s.Err == nil })
	if answered, _, _ := srv.Stats(); answered == 0 {
		t.Error("the slave answered nothing")
	}
}

func TestRTUWrongSlaveGetsNoAnswer(t *testing.T) {
	_, srv := serveRTU(t, fullMap(), 7)
	p, err := modbus.New(modbus.Config{
		Transport: modbus.RTU, Address: srv.Path(), SlaveID: 8,
		Timeout: 100 * time.Millisecond, Map: fullMap(), Clock: newTestClock(),
	})
	if err != nil {
		t.Fatal(err)
	}
	s := waitFor(t, run(t, p), "a sample", func(modbus.Sample) bool { return true })
	if s.Link != modbus.LinkDown || s.Err == nil {
		t.Errorf("sample = %+v, want link down", s)
	}
	if _, ignored, _ := srv.Stats(); ignored == 0 {
		t.Error("the slave saw no frame for another slave")
	}
}

func TestOnePollerPerSerialPort(t *testing.T) {
	_, srv := serveRTU(t, fullMap(), 1)
	cfg := modbus.Config{
		Transport: modbus.RTU, Address: srv.Path(), SlaveID: 1,
		Timeout: 200 * time.Millisecond, Map: fullMap(), Clock: newTestClock(),
	}
	first, err := modbus.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	samples := run(t, first)
	waitFor(t, samples, "link up", func(s modbus.Sample) bool { return s.Link == modbus.LinkUp })

	second, err := modbus.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := second.Run(ctx, func(modbus.Sample) {}); err == nil || !strings.Contains(err.Error(), "already polled") {
		t.Errorf("second poller on %s: %v, want a refusal", srv.Path(), err)
	}
}
