package transport

// The TCP fallback: TLS 1.3 over TCP, with the same certificates, the same
// verification and the same ALPN as QUIC, and streams multiplexed on it by
// yamux (github.com/hashicorp/yamux), for networks that pass only TCP.
//
// Why yamux and not a multiplexer of our own: it is small, has no
// dependencies, has run for years under Consul, Nomad and Vault, and has
// what the protocol needs of QUIC's streams: stream IDs, a receive window
// per stream (a sender blocks once the reader is that far behind, so a
// large file cannot starve the events stream or a form), half-close (FIN),
// deadlines, keep-alives. What it lacks is a reset with a code and a
// connection close with a reason; tcpStream emulates the first locally
// (see CancelRead, CancelWrite), and over TCP the reason of a close does
// not reach the peer, which sees its streams end. The protocol never
// depends on either: a file is stored only on its commit, and a refused
// hello carries its reason in the HelloReply.

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/yamux"
	"github.com/quic-go/quic-go"
)

const (
	// tcpHandshakeTimeout bounds the TCP connect and the TLS handshake
	// together, as QUICConfig's HandshakeIdleTimeout does QUIC's.
	tcpHandshakeTimeout = 10 * time.Second
	// maxTCPStreams bounds the streams a peer may have open on one
	// connection, as QUICConfig's MaxIncomingStreams does: the agent's
	// window of files beside its hello and events streams, with room for
	// streams still closing.
	maxTCPStreams = 64
	// maxTCPHandshakes bounds the handshakes in progress on a listener, so
	// that connections that never finish theirs cannot pile up.
	maxTCPHandshakes = 256
)

// muxConfig is the yamux tuning of both ends.
func muxConfig() *yamux.Config {
	c := yamux.DefaultConfig()
	c.AcceptBacklog = maxTCPStreams
	// As QUIC's: keep-alives well below NAT timeouts, and a peer that
	// takes nothing for as long as QUIC's idle timeout is gone (yamux
	// also gives up on a keep-alive unanswered for that long).
	c.KeepAliveInterval = 10 * time.Second
	c.ConnectionWriteTimeout = 45 * time.Second
	c.StreamOpenTimeout = 45 * time.Second
	// A stream closed on this side whose peer never closes its own is
	// forgotten after a while (the collector's streams idle out at 60 s).
	c.StreamCloseTimeout = time.Minute
	// The stream window stays at yamux's 256 KiB: every stream's unsent
	// frames wait in one queue for the one TCP connection, and on a thin
	// link 34 streams of a larger window would outlast
	// ConnectionWriteTimeout. 256 KiB per round trip and stream still
	// fills 20 Mbit/s at 100 ms with one file, more with the window's.
	c.LogOutput = io.Discard // every error it logs also ends a call or the session
	return c
}

// DialTCP connects to addr over TCP with TLS 1.3 and multiplexes streams
// on the connection. tlsConf is the one QUIC dials with.
func DialTCP(ctx context.Context, addr string, tlsConf *tls.Config) (Conn, error) {
	hctx, cancel := context.WithTimeout(ctx, tcpHandshakeTimeout)
	defer cancel()
	var d net.Dialer
	began := time.Now()
	raw, err := d.DialContext(hctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("tcp: %w", err)
	}
	// The connect took one round trip (SYN, SYN-ACK), before any data
	// could queue behind it: the connection's round trip for MinRTT. A
	// lost SYN makes it seconds, which errs on the side of a long link.
	connect := time.Since(began)
	conf := tlsConf.Clone()
	conf.MinVersion = tls.VersionTLS13
	if conf.ServerName == "" {
		// As quic.DialAddr does: the name is the host dialled.
		conf.ServerName, _, _ = net.SplitHostPort(addr)
	}
	tc := tls.Client(raw, conf)
	if err := tc.HandshakeContext(hctx); err != nil {
		raw.Close()
		return nil, fmt.Errorf("tcp: TLS handshake with %s: %w", addr, err)
	}
	if err := checkALPN(conf, tc.ConnectionState()); err != nil {
		tc.Close()
		return nil, err
	}
	sess, err := yamux.Client(tc, muxConfig())
	if err != nil {
		tc.Close()
		return nil, fmt.Errorf("tcp: %w", err)
	}
	c := newTCPConn(sess, tc, false)
	c.connectRTT = connect
	return c, nil
}

// checkALPN refuses a peer that did not agree on one of conf's
// application protocols: a TLS server over TCP accepts a client that
// offers none, which QUIC never does.
func checkALPN(conf *tls.Config, cs tls.ConnectionState) error {
	if len(conf.NextProtos) == 0 || (cs.NegotiatedProtocol != "" && slices.Contains(conf.NextProtos, cs.NegotiatedProtocol)) {
		return nil
	}
	return fmt.Errorf("tcp: no common application protocol: want one of %q, got %q", conf.NextProtos, cs.NegotiatedProtocol)
}

// ListenTCP listens on addr for agents over TCP. tlsConf is the one the
// QUIC listener has: the same certificate, client verification (and with
// it revocation) and ALPN; TLS 1.3 is required whatever it says.
func ListenTCP(addr string, tlsConf *tls.Config) (Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("tcp: listen %s: %w", addr, err)
	}
	conf := tlsConf.Clone()
	conf.MinVersion = tls.VersionTLS13
	l := &tcpListener{ln: ln, conf: conf, conns: make(chan *tcpConn), done: make(chan struct{}),
		handshakes: make(chan struct{}, maxTCPHandshakes)}
	go l.run()
	return l, nil
}

type tcpListener struct {
	ln         net.Listener
	conf       *tls.Config
	conns      chan *tcpConn
	handshakes chan struct{} // one per handshake in progress
	done       chan struct{} // closed when the listener fails or is closed
	once       sync.Once
	err        error // why; set before done is closed
}

func (l *tcpListener) run() {
	for {
		raw, err := l.ln.Accept()
		if err != nil {
			l.stop(err)
			return
		}
		select {
		case l.handshakes <- struct{}{}:
		default:
			raw.Close()
			continue
		}
		go func() {
			defer func() { <-l.handshakes }()
			c, err := l.handshake(raw)
			if err != nil {
				// Refused certificates are logged by the
				// configuration's verifier; the rest is noise
				// (scanners, health checks).
				raw.Close()
				return
			}
			select {
			case l.conns <- c:
			case <-l.done:
				c.CloseWithError(0, "collector closing")
			}
		}()
	}
}

func (l *tcpListener) handshake(raw net.Conn) (*tcpConn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), tcpHandshakeTimeout)
	defer cancel()
	tc := tls.Server(raw, l.conf)
	if err := tc.HandshakeContext(ctx); err != nil {
		return nil, err
	}
	if err := checkALPN(l.conf, tc.ConnectionState()); err != nil {
		return nil, err
	}
	sess, err := yamux.Server(tc, muxConfig())
	if err != nil {
		return nil, err
	}
	return newTCPConn(sess, tc, true), nil
}

func (l *tcpListener) stop(err error) {
	l.once.Do(func() {
		l.err = err
		close(l.done)
	})
}

func (l *tcpListener) Accept(ctx context.Context) (Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, fmt.Errorf("tcp: accept: %w", l.err)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (l *tcpListener) Addr() net.Addr { return l.ln.Addr() }

func (l *tcpListener) Close() error {
	l.stop(net.ErrClosed)
	return l.ln.Close()
}

// tcpConn is a yamux session on a TLS connection.
type tcpConn struct {
	sess   *yamux.Session
	tc     *tls.Conn
	ctx    context.Context
	server bool         // accepted streams are limited to maxTCPStreams
	open   atomic.Int64 // streams accepted and not yet closed here
	// connectRTT is how long the dialler's connect took (0 on the
	// accepting side).
	connectRTT time.Duration
}

func newTCPConn(sess *yamux.Session, tc *tls.Conn, server bool) *tcpConn {
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-sess.CloseChan()
		cancel()
	}()
	return &tcpConn{sess: sess, tc: tc, ctx: ctx, server: server}
}

func (c *tcpConn) OpenStream(ctx context.Context) (Stream, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	st, err := c.sess.OpenStream()
	if err != nil {
		return nil, fmt.Errorf("tcp: open stream: %w", err)
	}
	return &tcpStream{st: st}, nil
}

func (c *tcpConn) AcceptStream(ctx context.Context) (Stream, error) {
	for {
		st, err := c.sess.AcceptStreamWithContext(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, fmt.Errorf("tcp: accept stream: %w", err)
		}
		if !c.server {
			return &tcpStream{st: st}, nil
		}
		if c.open.Add(1) > maxTCPStreams {
			// Over the limit QUIC would not have let the peer open
			// the stream; here it is ended at once.
			c.open.Add(-1)
			st.Close()
			st.SetDeadline(time.Unix(1, 0))
			continue
		}
		var once sync.Once
		return &tcpStream{st: st, release: func() { once.Do(func() { c.open.Add(-1) }) }}, nil
	}
}

// CloseWithError closes the session and the TLS connection under it. The
// code and the message stay here: yamux has no way to carry them, and a
// go-away tells the peer only that the session ends.
func (c *tcpConn) CloseWithError(quic.ApplicationErrorCode, string) error {
	c.sess.GoAway()
	return c.sess.Close()
}

func (c *tcpConn) RemoteAddr() net.Addr     { return c.tc.RemoteAddr() }
func (c *tcpConn) TLS() tls.ConnectionState { return c.tc.ConnectionState() }
func (c *tcpConn) Context() context.Context { return c.ctx }
func (c *tcpConn) Transport() string        { return NameTCP }

// RTT pings the peer: yamux keeps no estimate.
func (c *tcpConn) RTT() time.Duration {
	d, err := c.sess.Ping()
	if err != nil {
		return 0
	}
	return d
}

// errCancelled is what the reads or writes of a stream return once they
// were cancelled.
var errCancelled = errors.New("tcp: stream cancelled")

// tcpStream is a yamux stream with QUIC's cancellation, done locally:
// yamux can only reset a stream by closing it, so a cancelled read makes
// every read fail from then on (an expired deadline wakes one in
// progress), and a cancelled write closes the sending side, which wakes a
// write in progress. The peer sees the stream end (FIN) rather than a
// reset: a file stream so ended has no commit, and the collector keeps
// what it got for a resume, as it does after a reset.
type tcpStream struct {
	st              *yamux.Stream
	noRead, noWrite atomic.Bool
	readMu, writeMu sync.Mutex // order a deadline against a cancel
	release         func()     // if set, called once closed: gives back the stream's place under maxTCPStreams
}

func (s *tcpStream) Read(p []byte) (int, error) {
	if s.noRead.Load() {
		return 0, errCancelled
	}
	n, err := s.st.Read(p)
	if err != nil && s.noRead.Load() {
		err = errCancelled
	}
	return n, err
}

func (s *tcpStream) Write(p []byte) (int, error) {
	if s.noWrite.Load() {
		return 0, errCancelled
	}
	n, err := s.st.Write(p)
	if err != nil && s.noWrite.Load() {
		err = errCancelled
	}
	return n, err
}

// Close ends the sending side. The server's end of a stream counts
// against maxTCPStreams until then: every exchange ends with EndStream.
func (s *tcpStream) Close() error {
	if s.release != nil {
		s.release()
	}
	return s.st.Close()
}

func (s *tcpStream) CancelRead(quic.StreamErrorCode) {
	s.readMu.Lock()
	defer s.readMu.Unlock()
	s.noRead.Store(true)
	s.st.SetReadDeadline(time.Unix(1, 0))
}

func (s *tcpStream) CancelWrite(quic.StreamErrorCode) {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	s.noWrite.Store(true)
	s.st.SetWriteDeadline(time.Unix(1, 0))
	s.Close()
}

func (s *tcpStream) SetDeadline(t time.Time) error {
	s.SetReadDeadline(t)
	return s.SetWriteDeadline(t)
}

// SetReadDeadline leaves a cancelled read's expired deadline alone.
func (s *tcpStream) SetReadDeadline(t time.Time) error {
	s.readMu.Lock()
	defer s.readMu.Unlock()
	if s.noRead.Load() {
		return nil
	}
	return s.st.SetReadDeadline(t)
}

func (s *tcpStream) SetWriteDeadline(t time.Time) error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if s.noWrite.Load() {
		return nil
	}
	return s.st.SetWriteDeadline(t)
}
