package plc

import (
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net"
	"sync"

	mbs "github.com/simonvetter/modbus"

	"idk/drivers/modbus"
)

// TCPServer serves a Controller over Modbus TCP. It answers every unit
// identifier, as most Ethernet controllers do.
type TCPServer struct {
	c    *Controller
	addr string
	log  *log.Logger

	mu     sync.Mutex
	srv    *mbs.ModbusServer // nil while the link is down
	silent chan struct{}     // non-nil while silenced; closed to release
	closed chan struct{}
}

// ServeTCP starts serving c on addr ("127.0.0.1:0" picks a free port; see
// Addr). logger may be nil.
func (c *Controller) ServeTCP(addr string, logger *slog.Logger) (*TCPServer, error) {
	// Down and Up must come back on the same port, and the Modbus server
	// does not tell which port it bound, so pick a concrete one first.
	if _, port, err := net.SplitHostPort(addr); err == nil && (port == "0" || port == "") {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("plc simulator: pick a port on %s: %w", addr, err)
		}
		addr = l.Addr().String()
		if err := l.Close(); err != nil {
			return nil, fmt.Errorf("plc simulator: pick a port on %s: %w", addr, err)
		}
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &TCPServer{
		c:      c,
		addr:   addr,
		log:    slog.NewLogLogger(logger.With("sim", "plc-tcp").Handler(), slog.LevelDebug),
		closed: make(chan struct{}),
	}
	if err := s.Up(); err != nil {
		return nil, err
	}
	return s, nil
}

// Addr is the host:port the server listens on.
func (s *TCPServer) Addr() string { return s.addr }

// Down takes the link down as a powered-off controller or a pulled cable
// would: the listener closes, open connections drop, connects are refused.
func (s *TCPServer) Down() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv == nil {
		return nil
	}
	err := s.srv.Stop()
	s.srv = nil
	if err != nil {
		return fmt.Errorf("plc simulator: stop tcp server on %s: %w", s.addr, err)
	}
	return nil
}

// Up brings the link back on the same address.
func (s *TCPServer) Up() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-s.closed:
		return errors.New("plc simulator: tcp server is closed")
	default:
	}
	if s.srv != nil {
		return nil
	}
	// A fresh server every time: restarting a stopped one races with its
	// old accept loop.
	srv, err := mbs.NewServer(&mbs.ServerConfiguration{URL: "tcp://" + s.addr, Logger: s.log}, &tcpHandler{s})
	if err != nil {
		return fmt.Errorf("plc simulator: tcp server on %s: %w", s.addr, err)
	}
	if err := srv.Start(); err != nil {
		return fmt.Errorf("plc simulator: listen on %s: %w", s.addr, err)
	}
	s.srv = srv
	return nil
}

// Silence makes a hung controller: connections are accepted and requests
// read, but nothing is answered until Silence(false), so clients time out.
func (s *TCPServer) Silence(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case on && s.silent == nil:
		s.silent = make(chan struct{})
	case !on && s.silent != nil:
		close(s.silent)
		s.silent = nil
	}
}

// Close stops the server for good.
func (s *TCPServer) Close() error {
	s.mu.Lock()
	select {
	case <-s.closed:
		s.mu.Unlock()
		return nil
	default:
	}
	close(s.closed)
	s.mu.Unlock()
	s.Silence(false)
	return s.Down()
}

// wait blocks while the server is silenced; false means it was closed.
func (s *TCPServer) wait() bool {
	s.mu.Lock()
	ch := s.silent
	s.mu.Unlock()
	if ch == nil {
		return true
	}
	select {
	case <-ch:
		return true
	case <-s.closed:
		return false
	}
}

// tcpHandler adapts the controller to the Modbus server's callbacks. The
// simulator is read-only: the agent never writes to the controller, and a
// write arriving here is a bug worth an exception.
type tcpHandler struct{ s *TCPServer }

func (h *tcpHandler) HandleCoils(req *mbs.CoilsRequest) ([]bool, error) {
	if req.IsWrite {
		return nil, mbs.ErrIllegalFunction
	}
	if !h.s.wait() {
		return nil, mbs.ErrServerDeviceFailure
	}
	return mapErr(h.s.c.readBits(modbus.Coil, req.Addr, req.Quantity))
}

func (h *tcpHandler) HandleDiscreteInputs(req *mbs.DiscreteInputsRequest) ([]bool, error) {
	if !h.s.wait() {
		return nil, mbs.ErrServerDeviceFailure
	}
	return mapErr(h.s.c.readBits(modbus.DiscreteInput, req.Addr, req.Quantity))
}

func (h *tcpHandler) HandleHoldingRegisters(req *mbs.HoldingRegistersRequest) ([]uint16, error) {
	if req.IsWrite {
		return nil, mbs.ErrIllegalFunction
	}
	if !h.s.wait() {
		return nil, mbs.ErrServerDeviceFailure
	}
	return mapErr(h.s.c.readRegs(modbus.HoldingRegister, req.Addr, req.Quantity))
}

func (h *tcpHandler) HandleInputRegisters(req *mbs.InputRegistersRequest) ([]uint16, error) {
	if !h.s.wait() {
		return nil, mbs.ErrServerDeviceFailure
	}
	return mapErr(h.s.c.readRegs(modbus.InputRegister, req.Addr, req.Quantity))
}

// mapErr turns the controller's errors into the server's exception errors.
func mapErr[T any](v T, err error) (T, error) {
	if errors.Is(err, errIllegalAddress) {
		return v, mbs.ErrIllegalDataAddress
	}
	return v, err
}
