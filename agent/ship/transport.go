package ship

import (
	"context"
	"errors"
	"fmt"
	"time"

	"idk/internal/clock"
	"idk/protocol/transport"
)

// Config.Transport's values.
const (
	TransportAuto = "auto"
	TransportQUIC = transport.NameQUIC
	TransportTCP  = transport.NameTCP
)

// DefaultQUICRetry is how long an agent in TransportAuto stays on TCP
// before it tries QUIC again: a network that blocks UDP seldom stops
// doing so within minutes, and each try where UDP is blocked costs a
// QUIC handshake timeout in the background.
const DefaultQUICRetry = 10 * time.Minute

// errBackToQUIC ends a TCP session once QUIC gets through again.
var errBackToQUIC = errors.New("QUIC gets through again")

// dial connects to a collector (failover.go: the one of the last
// session first, then the others in order), without greeting it.
func (s *Shipper) dial(ctx context.Context) (transport.Conn, error) {
	return s.connect(ctx, nil)
}

// dialAddr connects to the collector at addr as Config.Transport says. In
// TransportAuto it tries the transport of the last session first (QUIC
// at start), and the other one when that fails: a session on TCP that
// lost its link comes back over TCP at once, without waiting out a QUIC
// handshake, and backToQUIC brings it back to QUIC. With probe set (an
// agent of several collectors, failover.go), a TCP refusal ends the dial
// with errNothingListens: the other transport, on the same dead port,
// would only cost its timeout.
func (s *Shipper) dialAddr(ctx context.Context, addr string, probe bool) (transport.Conn, error) {
	switch s.cfg.Transport {
	case TransportQUIC:
		return s.dialQUIC(ctx, addr)
	case TransportTCP:
		return s.dialTCP(ctx, addr)
	}
	first, second := s.dialQUIC, s.dialTCP
	if probe {
		first = s.dialQUICProbed
	}
	if s.inUse == TransportTCP {
		first, second = s.dialTCP, s.dialQUIC
	}
	conn, err1 := first(ctx, addr)
	if err1 == nil || ctx.Err() != nil {
		if err1 == nil && probe && conn.Transport() == TransportTCP {
			s.tcpListens.Store(true)
		}
		return conn, err1
	}
	if probe && refused(err1) {
		if !errors.Is(err1, errNothingListens) {
			err1 = fmt.Errorf("%w: %w", errNothingListens, err1)
		}
		return nil, err1
	}
	conn, err2 := second(ctx, addr)
	if err2 != nil {
		return nil, errors.Join(err1, err2)
	}
	return conn, nil
}

func (s *Shipper) dialQUIC(ctx context.Context, addr string) (transport.Conn, error) {
	return transport.DialQUIC(ctx, addr, s.tls[addr], s.cfg.QUIC)
}

func (s *Shipper) dialTCP(ctx context.Context, addr string) (transport.Conn, error) {
	return transport.DialTCP(ctx, addr, s.tls[addr])
}

// using records the transport of a session that got through its hello:
// in the metric, and in the log when it is not the last session's.
func (s *Shipper) using(name string) {
	s.setTransport(name)
	switch {
	case name == s.inUse:
		return
	case s.inUse == "" && name == TransportQUIC, s.cfg.Transport != TransportAuto:
		// The usual start, or the only transport configured:
		// "connected to collector" says it.
	case name == TransportTCP:
		s.cfg.Log.Warn("shipping over TCP: QUIC (UDP) does not get through to the collector; trying it again every "+s.cfg.QUICRetry.String(),
			"addr", s.addr(), "transport", name, "previous", s.inUse)
	default:
		s.cfg.Log.Info("shipping over "+name+" again", "addr", s.addr(), "transport", name, "previous", s.inUse)
	}
	s.inUse = name
}

// setTransport sets idk_agent_transport: 1 for name, 0 for the other;
// both 0 while not connected ("").
func (s *Shipper) setTransport(name string) {
	if s.cfg.Metrics.Transport == nil {
		return
	}
	for _, t := range []string{TransportQUIC, TransportTCP} {
		v := 0.0
		if t == name {
			v = 1
		}
		s.cfg.Metrics.Transport.WithLabelValues(t).Set(v)
	}
}

// backToQUIC runs beside the loops of a session on TCP in TransportAuto:
// every QUICRetry it dials QUIC to the session's collector (never
// another: the agent stays with the collector it is on), and once that
// gets through, hands the connection to the next session and ends this
// one. Files in flight resume from the collector's offset there.
func (s *Shipper) backToQUIC(ctx context.Context, conn transport.Conn) error {
	if s.cfg.Transport != TransportAuto || conn.Transport() != TransportTCP {
		return nil
	}
	// Set before the session's loops start, and not changed until they
	// have all returned.
	addr := s.addr()
	for {
		if clock.Sleep(ctx, s.cfg.Clock, s.cfg.QUICRetry) != nil {
			return nil
		}
		qc, err := s.dialQUIC(ctx, addr)
		if err != nil {
			s.cfg.Log.Debug("QUIC still does not get through; staying on TCP", "addr", addr, "err", err)
			continue
		}
		// Run's goroutine reads it only after this session's loops
		// have all returned.
		s.handover = qc
		return errBackToQUIC
	}
}

// closeHandover closes a connection handed over but never used.
func (s *Shipper) closeHandover() {
	if s.handover != nil {
		s.handover.CloseWithError(0, "agent closing")
		s.handover = nil
	}
}
