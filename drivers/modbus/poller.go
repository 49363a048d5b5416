package modbus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	mb "github.com/goburrow/modbus"

	"idk/internal/clock"
)

// Transport is the wire a controller is reached over.
type Transport string

const (
	TCP Transport = "tcp" // Modbus TCP, Address is host:port (port 502 if omitted)
	RTU Transport = "rtu" // Modbus RTU on a serial line, Address is the device path
)

// Serial holds the line settings of an RTU link. Zero fields take the
// Modbus serial-line defaults: 19200 baud, 8 data bits, even parity, 1 stop
// bit.
type Serial struct {
	BaudRate int    `toml:"baud_rate,omitempty" json:"baud_rate,omitempty"`
	DataBits int    `toml:"data_bits,omitempty" json:"data_bits,omitempty"`
	Parity   string `toml:"parity,omitempty" json:"parity,omitempty"` // "N", "E" or "O"
	StopBits int    `toml:"stop_bits,omitempty" json:"stop_bits,omitempty"`
}

// Config says which controller to poll, how often, and how to read it.
type Config struct {
	Transport Transport `toml:"transport" json:"transport"`
	Address   string    `toml:"address" json:"address"`
	// SlaveID is the unit identifier. RTU needs 1..247; over TCP many
	// controllers ignore it, others want 1 or 255.
	SlaveID uint8  `toml:"slave_id" json:"slave_id"`
	Serial  Serial `toml:"serial" json:"serial"`

	// Interval between polls; default 1s.
	Interval time.Duration `toml:"interval" json:"interval"`
	// Timeout for one request, connecting included; default 1s.
	Timeout time.Duration `toml:"timeout" json:"timeout"`
	// Pause between the requests of one poll, for slow controllers that
	// drop a request arriving right after the previous answer; default 0.
	Pause time.Duration `toml:"pause" json:"pause"`
	// MaxBackoff caps the wait between reconnection attempts, which
	// starts at Interval and doubles on every failure; default 30s.
	MaxBackoff time.Duration `toml:"max_backoff" json:"max_backoff"`

	Map Map `toml:"map" json:"map"`

	// Clock times polls and backoff; nil means clock.Real. Simulations pass
	// a virtual one, so that intervals and backoff take no real time.
	Clock  clock.Clock  `toml:"-" json:"-"`
	Logger *slog.Logger `toml:"-" json:"-"` // nil means no logging
}

// Link says whether the controller answered.
type Link int

const (
	LinkDown Link = iota // no answer: connection refused, timeout, broken frame
	LinkUp               // the controller answered
)

func (l Link) String() string {
	if l == LinkUp {
		return "up"
	}
	return "down"
}

// Sample is the outcome of one poll.
//
// Flags and Values are set only when Err is nil. A dead link is reported as
// Link down with Err set and no signals, never as a controller with every
// signal off: the agent must not book lost telemetry as idle time. A
// controller that answers with a Modbus exception (a wrong map, say) gives
// Link up with Err set and no signals.
type Sample struct {
	Time   time.Time
	Link   Link
	Flags  map[Signal]bool    // on/off signals the map wires; absent means not wired
	Values map[Signal]float64 // analog values in engineering units
	Err    error
}

// Poller polls one controller. Its Run method is the only goroutine that
// touches the connection, so an RTU line never carries two requests at once.
type Poller struct {
	cfg     Config
	plan    plan
	clock   clock.Clock
	log     *slog.Logger
	running atomic.Bool

	// Owned by the goroutine in Run.
	handler interface{ Close() error }
	client  mb.Client
}

// New checks cfg, fills in defaults and returns a Poller ready to Run.
func New(cfg Config) (*Poller, error) {
	var errs []error
	switch cfg.Transport {
	case TCP:
		if cfg.Address == "" {
			errs = append(errs, errors.New("modbus config: address: empty, want host:port"))
		} else if _, _, err := net.SplitHostPort(cfg.Address); err != nil {
			cfg.Address = net.JoinHostPort(cfg.Address, "502")
		}
	case RTU:
		if cfg.Address == "" {
			errs = append(errs, errors.New("modbus config: address: empty, want a serial device path"))
		}
		if cfg.SlaveID < 1 || cfg.SlaveID > 247 {
			errs = append(errs, fmt.Errorf("modbus config: slave_id: %d, RTU needs 1..247", cfg.SlaveID))
		}
		switch cfg.Serial.Parity {
		case "", "N", "E", "O":
		default:
			errs = append(errs, fmt.Errorf("modbus config: serial.parity: %q is not N, E or O", cfg.Serial.Parity))
		}
	default:
		errs = append(errs, fmt.Errorf("modbus config: transport: %q is not %s or %s", cfg.Transport, TCP, RTU))
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"interval", cfg.Interval}, {"timeout", cfg.Timeout}, {"pause", cfg.Pause}, {"max_backoff", cfg.MaxBackoff}} {
		if d.v < 0 {
			errs = append(errs, fmt.Errorf("modbus config: %s: %v is negative", d.name, d.v))
		}
	}
	if err := cfg.Map.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if cfg.Interval == 0 {
		cfg.Interval = time.Second
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = time.Second
	}
	if cfg.MaxBackoff == 0 {
		cfg.MaxBackoff = 30 * time.Second
	}
	cfg.MaxBackoff = max(cfg.MaxBackoff, cfg.Interval)
	p := &Poller{cfg: cfg, plan: newPlan(&cfg.Map), clock: clock.Or(cfg.Clock), log: cfg.Logger}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	p.log = p.log.With("transport", string(cfg.Transport), "address", cfg.Address, "slave_id", cfg.SlaveID)
	return p, nil
}

// Run polls until ctx is done and hands every sample to emit, on Run's own
// goroutine: a slow emit delays the next poll. The first poll is made at
// once. After a failed poll the connection is dropped and the next attempt
// waits a backoff that starts at Interval and doubles up to MaxBackoff, one
// Link-down sample per attempt. Cancellation takes effect between requests,
// so Run may take up to Timeout to return.
//
// Run returns nil when ctx is done, or an error if it cannot start: the
// Poller is already running, or another Poller in this process owns the
// serial port.
func (p *Poller) Run(ctx context.Context, emit func(Sample)) error {
	if !p.running.CompareAndSwap(false, true) {
		return errors.New("modbus: poller is already running")
	}
	defer p.running.Store(false)
	if p.cfg.Transport == RTU {
		release, err := claimPort(p.cfg.Address)
		if err != nil {
			return err
		}
		defer release()
	}
	defer p.disconnect()

	var (
		backoff time.Duration
		link    = Link(-1) // unknown until the first poll
		lastErr string
		next    = p.clock.Now()
	)
	for {
		if !p.sleep(ctx, next.Sub(p.clock.Now())) {
			return nil
		}
		s, ok := p.poll(ctx)
		if !ok {
			return nil
		}
		now := p.clock.Now()
		if s.Link == LinkDown {
			backoff = min(max(backoff*2, p.cfg.Interval), p.cfg.MaxBackoff)
			next = now.Add(backoff)
		} else {
			backoff = 0
			// Keep a steady cadence, but do not catch up after a slow poll:
			// a burst of requests helps nobody.
			next = next.Add(p.cfg.Interval)
			if next.Before(now) {
				next = now
			}
		}
		switch {
		case s.Link == LinkUp && link != LinkUp:
			p.log.Info("plc link up")
		case s.Link == LinkDown && link != LinkDown:
			p.log.Warn("plc link down", "err", s.Err, "retry_in", backoff)
		case s.Link == LinkDown:
			p.log.Debug("plc still unreachable", "err", s.Err, "retry_in", backoff)
		}
		// A Modbus exception repeats every poll until someone fixes the map;
		// log it when it changes, not once a second.
		errText := ""
		if s.Err != nil {
			errText = s.Err.Error()
		}
		if s.Link == LinkUp && s.Err != nil && errText != lastErr {
			p.log.Warn("plc refused a read", "err", s.Err)
		}
		lastErr, link = errText, s.Link
		emit(s)
	}
}

// sleep waits d or until ctx is done; it reports whether to go on.
func (p *Poller) sleep(ctx context.Context, d time.Duration) bool {
	return clock.Sleep(ctx, p.clock, d) == nil
}

// poll reads every block of the plan. ok is false if ctx ended the poll.
func (p *Poller) poll(ctx context.Context) (s Sample, ok bool) {
	fail := func(link Link, err error) (Sample, bool) {
		if link == LinkDown {
			p.disconnect()
		}
		return Sample{Time: p.clock.Now(), Link: link, Err: fmt.Errorf("plc %s %s unit %d: %w",
			p.cfg.Transport, p.cfg.Address, p.cfg.SlaveID, err)}, true
	}
	if p.client == nil {
		if err := p.connect(); err != nil {
			return fail(LinkDown, err)
		}
	}
	data := make([][]byte, len(p.plan.blocks))
	for i, b := range p.plan.blocks {
		if i > 0 && !p.sleep(ctx, p.cfg.Pause) {
			return Sample{}, false
		}
		res, err := p.read(b)
		if err != nil {
			var exc *mb.ModbusError
			if errors.As(err, &exc) {
				return fail(LinkUp, fmt.Errorf("read %s: %w", b, err))
			}
			return fail(LinkDown, fmt.Errorf("read %s: %w", b, err))
		}
		data[i] = res
	}
	flags, values, err := p.plan.decode(data)
	if err != nil {
		// A short answer means the line garbles frames; trust nothing on it.
		return fail(LinkDown, err)
	}
	return Sample{Time: p.clock.Now(), Link: LinkUp, Flags: flags, Values: values}, true
}

func (p *Poller) read(b block) ([]byte, error) {
	switch b.src {
	case Coil:
		return p.client.ReadCoils(b.start, b.count)
	case DiscreteInput:
		return p.client.ReadDiscreteInputs(b.start, b.count)
	case HoldingRegister:
		return p.client.ReadHoldingRegisters(b.start, b.count)
	default:
		return p.client.ReadInputRegisters(b.start, b.count)
	}
}

func (p *Poller) connect() error {
	// goburrow's idle timer closes connections from its own goroutine on the
	// wall clock; IdleTimeout 0 turns it off, since the poller decides when
	// a connection is dropped.
	switch p.cfg.Transport {
	case TCP:
		h := mb.NewTCPClientHandler(p.cfg.Address)
		h.Timeout = p.cfg.Timeout
		h.IdleTimeout = 0
		h.SlaveId = p.cfg.SlaveID
		if err := h.Connect(); err != nil {
			return fmt.Errorf("connect: %w", err)
		}
		p.handler, p.client = h, mb.NewClient(h)
	case RTU:
		h := mb.NewRTUClientHandler(p.cfg.Address)
		h.Timeout = p.cfg.Timeout
		h.IdleTimeout = 0
		h.SlaveId = p.cfg.SlaveID
		h.BaudRate = p.cfg.Serial.BaudRate
		h.DataBits = p.cfg.Serial.DataBits
		h.Parity = p.cfg.Serial.Parity
		h.StopBits = p.cfg.Serial.StopBits
		if err := h.Connect(); err != nil {
			return fmt.Errorf("open serial port: %w", err)
		}
		p.handler, p.client = h, mb.NewClient(h)
	}
	return nil
}

// disconnect drops the connection. goburrow keeps a connection after an
// error, so without this a controller that rebooted would never be read
// again, and a late answer to a timed-out request would be taken for the
// answer to the next one.
func (p *Poller) disconnect() {
	if p.handler == nil {
		return
	}
	if err := p.handler.Close(); err != nil {
		p.log.Debug("closing plc connection", "err", err)
	}
	p.handler, p.client = nil, nil
}

// ports holds the serial ports owned by running pollers in this process:
// two pollers writing to one RS-485 line would garble each other's frames.
var ports = struct {
	sync.Mutex
	busy map[string]bool
}{busy: make(map[string]bool)}

func claimPort(path string) (release func(), err error) {
	key := filepath.Clean(path)
	// /dev/serial/by-id names are links to /dev/ttyUSBn; compare targets.
	if real, err := filepath.EvalSymlinks(key); err == nil {
		key = real
	}
	ports.Lock()
	defer ports.Unlock()
	if ports.busy[key] {
		return nil, fmt.Errorf("modbus: serial port %s is already polled by another poller", path)
	}
	ports.busy[key] = true
	return func() {
		ports.Lock()
		delete(ports.busy, key)
		ports.Unlock()
	}, nil
}
