package plc

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"

	"idk/drivers/modbus"
)

// The Modbus library used for the TCP server has no RTU server, so the
// slave side of RTU is this small loop. Only the server side lives here:
// clients under test use their own framing and CRC.

// Modbus function and exception codes the slave knows.
const (
	fcReadCoils          = 0x01
	fcReadDiscreteInputs = 0x02
	fcReadHolding        = 0x03
	fcReadInput          = 0x04
	fcWriteCoil          = 0x05
	fcWriteRegister      = 0x06
	fcWriteCoils         = 0x0f
	fcWriteRegisters     = 0x10

	exIllegalFunction = 0x01
	exIllegalAddress  = 0x02
	exIllegalValue    = 0x03
)

// frameGap is the silence after which a partial frame is dropped. On a real
// line it is 3.5 character times; a pseudo-terminal has no line timing, so
// use a gap that scheduling jitter will not produce inside one write.
const frameGap = 50 * time.Millisecond

// RTUServer serves a Controller as an RTU slave on a pseudo-terminal pair:
// the client opens Path as if it were a serial port.
type RTUServer struct {
	c     *Controller
	id    uint8
	log   *slog.Logger
	ptmx  *os.File // the line end the slave reads and writes
	tty   *os.File // kept open: with no open slave end, reads on ptmx fail
	down  atomic.Bool
	done  chan struct{}
	once  sync.Once
	stats struct{ answered, ignored, dropped atomic.Int64 }
}

// ServeRTU opens a pseudo-terminal pair and answers RTU requests addressed
// to slaveID on it. logger may be nil.
func (c *Controller) ServeRTU(slaveID uint8, logger *slog.Logger) (*RTUServer, error) {
	if slaveID < 1 || slaveID > 247 {
		return nil, fmt.Errorf("plc simulator: slave id %d, want 1..247", slaveID)
	}
	ptmx, tty, err := pty.Open()
	if err != nil {
		return nil, fmt.Errorf("plc simulator: open pty: %w", err)
	}
	if ptmx, err = pollable(ptmx); err != nil {
		tty.Close()
		return nil, fmt.Errorf("plc simulator: pty master: %w", err)
	}
	if err := makeRaw(tty); err != nil {
		ptmx.Close()
		tty.Close()
		return nil, fmt.Errorf("plc simulator: raw mode on %s: %w", tty.Name(), err)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &RTUServer{c: c, id: slaveID, log: logger.With("sim", "plc-rtu", "path", tty.Name()),
		ptmx: ptmx, tty: tty, done: make(chan struct{})}
	go s.serve()
	return s, nil
}

// pollable returns f reopened in non-blocking mode, closing f. The pty
// package leaves the master in blocking mode, where Close does not end a
// Read in progress; a non-blocking file goes through the runtime poller,
// where it does.
func pollable(f *os.File) (*os.File, error) {
	defer f.Close()
	rc, err := f.SyscallConn()
	if err != nil {
		return nil, err
	}
	nfd := -1
	var opErr error
	err = rc.Control(func(fd uintptr) {
		if nfd, opErr = unix.Dup(int(fd)); opErr == nil {
			opErr = unix.SetNonblock(nfd, true)
		}
	})
	if err = errors.Join(err, opErr); err != nil {
		if nfd >= 0 {
			unix.Close(nfd)
		}
		return nil, err
	}
	return os.NewFile(uintptr(nfd), f.Name()), nil
}

// makeRaw turns off the line discipline's echo and character translation,
// which would otherwise mangle binary frames written before the client
// sets its own modes.
func makeRaw(f *os.File) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var opErr error
	err = rc.Control(func(fd uintptr) {
		t, err := unix.IoctlGetTermios(int(fd), unix.TCGETS)
		if err != nil {
			opErr = err
			return
		}
		t.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
		t.Oflag &^= unix.OPOST
		t.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
		t.Cflag &^= unix.CSIZE | unix.PARENB
		t.Cflag |= unix.CS8
		t.Cc[unix.VMIN], t.Cc[unix.VTIME] = 1, 0
		opErr = unix.IoctlSetTermios(int(fd), unix.TCSETS, t)
	})
	return errors.Join(err, opErr)
}

// Path is the serial device path a client opens.
func (s *RTUServer) Path() string { return s.tty.Name() }

// Down makes the controller stop answering, as a powered-off slave on a bus
// does: requests are read and dropped.
func (s *RTUServer) Down() { s.down.Store(true) }

// Up makes it answer again.
func (s *RTUServer) Up() { s.down.Store(false) }

// Stats returns the frames answered, the frames ignored (for another
// slave, or while down) and the bytes skipped while hunting for a frame
// with a good CRC.
func (s *RTUServer) Stats() (answered, ignored, dropped int64) {
	return s.stats.answered.Load(), s.stats.ignored.Load(), s.stats.dropped.Load()
}

// Close closes both ends of the pair and waits for the loop to end.
func (s *RTUServer) Close() error {
	var err error
	s.once.Do(func() {
		err = errors.Join(s.ptmx.Close(), s.tty.Close())
		<-s.done
	})
	return err
}

func (s *RTUServer) serve() {
	defer close(s.done)
	var (
		buf  []byte
		tmp  = make([]byte, 512)
		last time.Time
	)
	for {
		n, err := s.ptmx.Read(tmp)
		if err != nil {
			if !errors.Is(err, os.ErrClosed) {
				s.log.Debug("rtu slave stops", "err", err)
			}
			return
		}
		now := time.Now()
		if len(buf) > 0 && now.Sub(last) > frameGap {
			buf = buf[:0] // the rest of that frame never came
		}
		last = now
		buf = append(buf, tmp[:n]...)
		for len(buf) > 0 {
			size := frameSize(buf)
			if size == 0 || len(buf) < size {
				break // need more bytes
			}
			if size < 0 || crc16(buf[:size-2]) != binary.LittleEndian.Uint16(buf[size-2:size]) {
				// Not a frame start: slide one byte to find the next one.
				s.stats.dropped.Add(1)
				buf = buf[1:]
				continue
			}
			s.handle(buf[:size])
			buf = buf[size:]
		}
	}
}

// frameSize is the length of the request frame at the start of b: 0 if more
// bytes are needed to tell, -1 for a function code the slave cannot frame.
func frameSize(b []byte) int {
	if len(b) < 2 {
		return 0
	}
	switch b[1] {
	case fcReadCoils, fcReadDiscreteInputs, fcReadHolding, fcReadInput, fcWriteCoil, fcWriteRegister:
		return 8 // id, fc, 2 address, 2 quantity/value, 2 crc
	case fcWriteCoils, fcWriteRegisters:
		if len(b) < 7 {
			return 0
		}
		return 9 + int(b[6]) // id, fc, address, quantity, byte count, data, crc
	}
	return -1
}

func (s *RTUServer) handle(frame []byte) {
	id, fc := frame[0], frame[1]
	if id != s.id || s.down.Load() {
		// Other slaves' traffic and broadcasts (id 0) get no answer.
		s.stats.ignored.Add(1)
		return
	}
	pdu := s.respond(fc, frame[2:len(frame)-2])
	adu := append([]byte{id}, pdu...)
	adu = binary.LittleEndian.AppendUint16(adu, crc16(adu))
	// Counted before the write, so a master that has read the answer
	// already sees it in Stats.
	s.stats.answered.Add(1)
	if _, err := s.ptmx.Write(adu); err != nil {
		s.log.Debug("rtu slave write", "err", err)
	}
}

// respond returns the response PDU (function code and data) for a request.
func (s *RTUServer) respond(fc byte, data []byte) []byte {
	exception := func(code byte) []byte { return []byte{fc | 0x80, code} }
	var src modbus.Source
	switch fc {
	case fcReadCoils:
		src = modbus.Coil
	case fcReadDiscreteInputs:
		src = modbus.DiscreteInput
	case fcReadHolding:
		src = modbus.HoldingRegister
	case fcReadInput:
		src = modbus.InputRegister
	default:
		return exception(exIllegalFunction) // read-only controller
	}
	addr := binary.BigEndian.Uint16(data[0:])
	qty := binary.BigEndian.Uint16(data[2:])
	if fc == fcReadCoils || fc == fcReadDiscreteInputs {
		if qty < 1 || qty > 2000 {
			return exception(exIllegalValue)
		}
		bits, err := s.c.readBits(src, addr, qty)
		if err != nil {
			return exception(exIllegalAddress)
		}
		out := make([]byte, 2+(len(bits)+7)/8)
		out[0], out[1] = fc, byte(len(out)-2)
		for i, b := range bits {
			if b {
				out[2+i/8] |= 1 << (i % 8)
			}
		}
		return out
	}
	if qty < 1 || qty > 125 {
		return exception(exIllegalValue)
	}
	regs, err := s.c.readRegs(src, addr, qty)
	if err != nil {
		return exception(exIllegalAddress)
	}
	out := []byte{fc, byte(2 * len(regs))}
	for _, r := range regs {
		out = binary.BigEndian.AppendUint16(out, r)
	}
	return out
}

// crc16 is the Modbus RTU CRC: polynomial 0xA001 (reflected 0x8005),
// initial value 0xFFFF, sent low byte first.
func crc16(b []byte) uint16 {
	crc := uint16(0xffff)
	for _, c := range b {
		crc ^= uint16(c)
		for range 8 {
			if crc&1 != 0 {
				crc = crc>>1 ^ 0xa001
			} else {
				crc >>= 1
			}
		}
	}
	return crc
}
