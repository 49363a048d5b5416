package transport

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/quic-go/quic-go"
)

// The transports a Conn runs on, as metrics, logs and the fleet board name
// them.
const (
	NameQUIC = "quic"
	NameTCP  = "tcp"
)

// Conn is one agent's connection to its collector, seen from either end,
// over QUIC or, where UDP is blocked, over TLS 1.3 on TCP (tcp.go). The
// protocol runs on its streams and needs nothing else, so the collector's
// server and the agent's shipper have one code path for both.
//
// The error codes are QUIC's; over TCP they do not reach the peer, which
// sees its streams end (see tcpConn.CloseWithError).
type Conn interface {
	// OpenStream opens a stream to the peer, waiting while the peer's
	// limit of streams is reached.
	OpenStream(ctx context.Context) (Stream, error)
	// AcceptStream waits for the peer's next stream.
	AcceptStream(ctx context.Context) (Stream, error)
	// CloseWithError closes the connection and every stream on it.
	CloseWithError(code quic.ApplicationErrorCode, msg string) error
	RemoteAddr() net.Addr
	// TLS is the handshake's outcome: the peer's verified certificates.
	TLS() tls.ConnectionState
	// Context ends when the connection does.
	Context() context.Context
	// RTT is the round trip as the connection measures it now.
	RTT() time.Duration
	// Transport is NameQUIC or NameTCP.
	Transport() string
}

// Stream is a bidirectional stream of a Conn. *quic.Stream is one.
type Stream interface {
	io.Reader
	io.Writer
	// Close ends the sending side (a FIN); reading goes on.
	Close() error
	// CancelRead stops reading: pending and later reads fail.
	CancelRead(quic.StreamErrorCode)
	// CancelWrite abandons sending: pending and later writes fail.
	CancelWrite(quic.StreamErrorCode)
	SetDeadline(time.Time) error
	SetReadDeadline(time.Time) error
	SetWriteDeadline(time.Time) error
}

// Listener hands out the connections that finished their TLS handshake.
type Listener interface {
	Accept(ctx context.Context) (Conn, error)
	Addr() net.Addr
	Close() error
}

// EndStream finishes both directions of st. QUIC counts a stream against
// the peer's stream limit until its receive side is read to the end or
// cancelled as well, so every exchange, on either end, ends here whatever
// happened.
func EndStream(st Stream) {
	st.CancelRead(0)
	st.Close()
}

// DialQUIC connects to addr over QUIC.
func DialQUIC(ctx context.Context, addr string, tlsConf *tls.Config, conf *quic.Config) (Conn, error) {
	c, err := quic.DialAddr(ctx, addr, tlsConf, conf)
	if err != nil {
		return nil, fmt.Errorf("quic: %w", err)
	}
	return QUIC(c), nil
}

// QUIC is c as a Conn.
func QUIC(c *quic.Conn) Conn { return quicConn{c} }

type quicConn struct{ c *quic.Conn }

func (q quicConn) OpenStream(ctx context.Context) (Stream, error) {
	st, err := q.c.OpenStreamSync(ctx)
	if err != nil {
		return nil, err
	}
	return st, nil
}

func (q quicConn) AcceptStream(ctx context.Context) (Stream, error) {
	st, err := q.c.AcceptStream(ctx)
	if err != nil {
		return nil, err
	}
	return st, nil
}

func (q quicConn) CloseWithError(code quic.ApplicationErrorCode, msg string) error {
	return q.c.CloseWithError(code, msg)
}

func (q quicConn) RemoteAddr() net.Addr     { return q.c.RemoteAddr() }
func (q quicConn) TLS() tls.ConnectionState { return q.c.ConnectionState().TLS }
func (q quicConn) Context() context.Context { return q.c.Context() }
func (q quicConn) RTT() time.Duration       { return q.c.ConnectionStats().SmoothedRTT }
func (q quicConn) Transport() string        { return NameQUIC }

// QUICListener is ln as a Listener.
func QUICListener(ln *quic.Listener) Listener { return quicListener{ln} }

type quicListener struct{ ln *quic.Listener }

func (l quicListener) Addr() net.Addr { return l.ln.Addr() }
func (l quicListener) Close() error   { return l.ln.Close() }

func (l quicListener) Accept(ctx context.Context) (Conn, error) {
	c, err := l.ln.Accept(ctx)
	if err != nil {
		return nil, err
	}
	return QUIC(c), nil
}

// MinRTT is the shortest round trip the connection has seen; ok is false
// before the first one, or where none is known. Over TCP it is the
// dialling side's connect time: TCP's own estimate is not portable
// (TCP_INFO on Linux, SIO_TCP_INFO on Windows), and a ping would queue
// behind the files in flight.
func MinRTT(c Conn) (d time.Duration, ok bool) {
	switch c := c.(type) {
	case quicConn:
		d = c.c.ConnectionStats().MinRTT
	case *tcpConn:
		d = c.connectRTT
	}
	return d, d > 0
}
