// Package server accepts agents' QUIC connections and stores what they
// send. Each connection is tied to one ИДК by its client certificate: the
// hello must name the same ИДК, and everything on the connection is stored
// under that ИДК, whatever the messages say.
package server

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"

	"github.com/quic-go/quic-go"

	"idk/collector/store"
	"idk/protocol"
	"idk/protocol/idkpb"
)

// Application error codes on QUIC connections and streams.
const (
	codeRefused   quic.ApplicationErrorCode = 1 // identity or hello refused
	codeReplaced  quic.ApplicationErrorCode = 2 // a newer connection of the same ИДК took over
	streamAborted quic.StreamErrorCode      = 1
)

// Config wires a Server.
type Config struct {
	Store    *store.Store
	Metrics  *Metrics
	Log      *slog.Logger
	Now      func() time.Time
	Identify func(tls.ConnectionState) (numIDK string, err error)
	// OnEvent, if set, sees every event once, after it is stored, with
	// CollectorTimeUnixNano set. It must not block for long.
	OnEvent func(dev *idkpb.Device, epoch uint64, ev *idkpb.Event)
	// OnHello, if set, sees each accepted device identity.
	OnHello func(dev *idkpb.Device)
}

// Server serves agents.
type Server struct {
	cfg Config

	mu    sync.Mutex
	conns map[string]*quic.Conn // by NUM_IDK: the newest connection
}

// New returns a server.
func New(cfg Config) *Server {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	return &Server{cfg: cfg, conns: map[string]*quic.Conn{}}
}

// QUICConfig is the transport tuning shared by both ends: keep-alives well
// below common NAT UDP timeouts (30 s), and windows large enough to fill a
// fast link with one file stream.
func QUICConfig() *quic.Config {
	return &quic.Config{
		KeepAlivePeriod:            10 * time.Second,
		MaxIdleTimeout:             45 * time.Second,
		HandshakeIdleTimeout:       10 * time.Second,
		InitialStreamReceiveWindow: 1 << 20,
		MaxStreamReceiveWindow:     16 << 20,
		MaxConnectionReceiveWindow: 32 << 20,
		MaxIncomingStreams:         64,
	}
}

// Serve accepts connections until ctx ends or the listener fails.
func (s *Server) Serve(ctx context.Context, ln *quic.Listener) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		conn, err := ln.Accept(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("server: accept: %w", err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.handleConn(ctx, conn)
		}()
	}
}

// session is one agent connection after a good hello.
type session struct {
	dev    *idkpb.Device
	epoch  uint64        // of the agent's spool
	offset time.Duration // collector clock minus agent clock
	log    *slog.Logger
}

func (ss *session) correct(agentNanos int64) time.Time {
	return time.Unix(0, agentNanos).Add(ss.offset)
}

func (s *Server) handleConn(ctx context.Context, conn *quic.Conn) {
	m := s.cfg.Metrics
	log := s.cfg.Log.With("remote", conn.RemoteAddr().String())
	numIDK, err := s.cfg.Identify(conn.ConnectionState().TLS)
	if err != nil {
		m.Refused.WithLabelValues("identity").Inc()
		log.Warn("connection refused: certificate does not name an ИДК", "err", err)
		conn.CloseWithError(codeRefused, "certificate does not name an ИДК")
		return
	}
	log = log.With("num_idk", numIDK)
	ss, err := s.hello(ctx, conn, numIDK, log)
	if err != nil {
		m.Refused.WithLabelValues("hello").Inc()
		log.Warn("connection refused at hello", "err", err)
		conn.CloseWithError(codeRefused, truncate(err.Error(), 200))
		return
	}
	m.Connections.Inc()
	defer m.Connections.Dec()
	s.mu.Lock()
	if old := s.conns[numIDK]; old != nil {
		// The agent reconnected (new address, or the old path died without
		// us noticing yet): the old connection's streams would only hold
		// locks on partial files.
		old.CloseWithError(codeReplaced, "replaced by a newer connection")
	}
	s.conns[numIDK] = conn
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		if s.conns[numIDK] == conn {
			delete(s.conns, numIDK)
		}
		s.mu.Unlock()
	}()
	log.Info("agent connected", "kod_to", ss.dev.KodTo, "clock_offset", ss.offset)
	// A connected agent with nothing to send is alive too: keep its
	// last-seen fresh so a quiet night does not look like an outage.
	go func() {
		t := time.NewTicker(30 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-conn.Context().Done():
				return
			case <-t.C:
				s.seen(ss)
			}
		}
	}()

	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		st, err := conn.AcceptStream(ctx)
		if err != nil {
			log.Info("agent disconnected", "err", err)
			return
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.handleStream(ss, st)
		}()
	}
}

func (s *Server) hello(ctx context.Context, conn *quic.Conn, numIDK string, log *slog.Logger) (*session, error) {
	hctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	st, err := conn.AcceptStream(hctx)
	if err != nil {
		return nil, fmt.Errorf("no hello stream: %w", err)
	}
	defer endStream(st)
	st.SetDeadline(time.Now().Add(15 * time.Second))
	r, w := protocol.NewReader(st), protocol.NewWriter(st)
	var hdr idkpb.StreamHeader
	if err := r.Read(&hdr); err != nil {
		return nil, err
	}
	if hdr.Kind != idkpb.StreamKind_STREAM_KIND_HELLO {
		return nil, fmt.Errorf("first stream is %v, want hello", hdr.Kind)
	}
	var h idkpb.Hello
	if err := r.Read(&h); err != nil {
		return nil, err
	}
	now := s.cfg.Now()
	refuse := func(err error) (*session, error) {
		w.Write(&idkpb.HelloReply{Error: err.Error(), CollectorTimeUnixNano: now.UnixNano()})
		return nil, err
	}
	switch {
	case h.ProtocolVersion != protocol.Version:
		return refuse(fmt.Errorf("protocol version %d not supported; this collector speaks %d", h.ProtocolVersion, protocol.Version))
	case h.Device == nil:
		return refuse(errors.New("hello without device"))
	case h.Device.NumIdk != numIDK:
		return refuse(fmt.Errorf("hello names NUM_IDK %q but the certificate is for %q", h.Device.NumIdk, numIDK))
	}
	if err := protocol.CheckKodTO(h.Device.KodTo); err != nil {
		return refuse(fmt.Errorf("hello: %w", err))
	}
	// The hello left the agent about half a round trip ago.
	rtt := conn.ConnectionStats().SmoothedRTT
	offset := now.Sub(time.Unix(0, h.AgentTimeUnixNano).Add(rtt / 2))
	ss := &session{dev: h.Device, epoch: h.SpoolEpoch, offset: offset, log: log}
	if err := s.cfg.Store.PutDevice(h.Device); err != nil {
		return refuse(err)
	}
	if s.cfg.OnHello != nil {
		s.cfg.OnHello(h.Device)
	}
	s.cfg.Metrics.ClockOffset.WithLabelValues(numIDK).Set(offset.Seconds())
	s.cfg.Metrics.LastSeen.WithLabelValues(numIDK).Set(float64(now.UnixNano()) / 1e9)
	if err := w.Write(&idkpb.HelloReply{CollectorTimeUnixNano: now.UnixNano(), ClockOffsetNanos: int64(offset)}); err != nil {
		return nil, err
	}
	return ss, nil
}

func (s *Server) handleStream(ss *session, st *quic.Stream) {
	r, w := protocol.NewReader(st), protocol.NewWriter(st)
	var hdr idkpb.StreamHeader
	if err := r.Read(&hdr); err != nil {
		st.CancelRead(streamAborted)
		st.CancelWrite(streamAborted)
		return
	}
	var err error
	kind := "unknown"
	switch hdr.Kind {
	case idkpb.StreamKind_STREAM_KIND_EVENTS:
		kind = "events"
		err = s.events(ss, r, w)
	case idkpb.StreamKind_STREAM_KIND_FILE:
		kind = "file"
		err = s.file(ss, r, w)
	default:
		err = fmt.Errorf("unknown stream kind %v", hdr.Kind)
	}
	if err != nil && !errors.Is(err, io.EOF) && !closedByAgent(err) {
		s.cfg.Metrics.StreamErrors.WithLabelValues(kind).Inc()
		ss.log.Warn("stream ended with an error", "stream", kind, "err", err)
	}
	endStream(st)
}

// endStream finishes both directions. QUIC counts a stream against the
// agent's stream limit until its receive side is read to the end or
// cancelled, so every exchange ends here whatever happened.
func endStream(st *quic.Stream) {
	st.CancelRead(0)
	st.Close()
}

// closedByAgent tells an agent's orderly goodbye from a failure.
func closedByAgent(err error) bool {
	var ae *quic.ApplicationError
	return errors.As(err, &ae) && ae.Remote && ae.ErrorCode == 0
}

func (s *Server) seen(ss *session) {
	s.cfg.Metrics.LastSeen.WithLabelValues(ss.dev.NumIdk).Set(float64(s.cfg.Now().UnixNano()) / 1e9)
}

// events stores batches until the agent closes the stream.
func (s *Server) events(ss *session, r *protocol.Reader, w *protocol.Writer) error {
	for {
		var b idkpb.EventBatch
		if err := r.Read(&b); err != nil {
			return err
		}
		s.seen(ss)
		res, err := s.cfg.Store.PutEvents(ss.dev, ss.epoch, b.Events, ss.correct)
		if err != nil {
			w.Write(&idkpb.EventAck{Error: err.Error()})
			return err
		}
		s.cfg.Metrics.EventsStored.WithLabelValues(ss.dev.NumIdk).Add(float64(res.Stored))
		if s.cfg.OnEvent != nil {
			for _, ev := range res.New {
				s.cfg.OnEvent(ss.dev, ss.epoch, ev)
			}
		}
		s.cfg.Metrics.Duplicates.WithLabelValues("event").Add(float64(res.Duplicates))
		if err := w.Write(&idkpb.EventAck{Stored: uint32(res.Stored), Duplicates: uint32(res.Duplicates)}); err != nil {
			return err
		}
	}
}

// file receives one file: offer, chunks, commit.
func (s *Server) file(ss *session, r *protocol.Reader, w *protocol.Writer) error {
	var o idkpb.FileOffer
	if err := r.Read(&o); err != nil {
		return err
	}
	s.seen(ss)
	up, reply, err := s.cfg.Store.Offer(ss.dev, &o, ss.correct(o.ScanTimeUnixNano))
	if err != nil {
		w.Write(&idkpb.FileOfferReply{Status: idkpb.FileOfferReply_STATUS_REFUSED, Error: err.Error()})
		if errors.Is(err, store.ErrBusy) {
			return nil
		}
		if errors.Is(err, store.ErrDiskFull) {
			s.cfg.Metrics.DiskFull.Inc()
			ss.log.Error("file refused: collector disk full", "err", err)
			return nil
		}
		return fmt.Errorf("offer %s/%s: %w", o.NumSnim, o.Name, err)
	}
	if up == nil {
		s.cfg.Metrics.Duplicates.WithLabelValues("file").Inc()
		return w.Write(reply)
	}
	defer up.Close()
	if reply.Offset > 0 {
		s.cfg.Metrics.Resumed.Inc()
		ss.log.Info("resuming file transfer", "num_snim", o.NumSnim, "name", o.Name, "offset", reply.Offset, "size", o.Size)
	}
	if err := w.Write(reply); err != nil {
		return err
	}
	var d idkpb.FileData
	for {
		if err := r.Read(&d); err != nil {
			return fmt.Errorf("file %s/%s at %d: %w", o.NumSnim, o.Name, up.Offset(), err)
		}
		switch b := d.Body.(type) {
		case *idkpb.FileData_Chunk:
			if err := up.Write(b.Chunk); err != nil {
				w.Write(&idkpb.FileResult{Error: err.Error()})
				return fmt.Errorf("file %s/%s: %w", o.NumSnim, o.Name, err)
			}
			s.cfg.Metrics.BytesReceived.Add(float64(len(b.Chunk.Data)))
		case *idkpb.FileData_Commit:
			storedAs, err := up.Commit(b.Commit.Sha256)
			if err != nil {
				w.Write(&idkpb.FileResult{Error: err.Error(), Restart: errors.Is(err, store.ErrRestart)})
				return fmt.Errorf("file %s/%s: %w", o.NumSnim, o.Name, err)
			}
			s.seen(ss)
			s.cfg.Metrics.FilesStored.WithLabelValues(ss.dev.NumIdk).Inc()
			s.cfg.Metrics.BytesStored.WithLabelValues(ss.dev.NumIdk).Add(float64(o.Size))
			ss.log.Debug("file stored", "num_snim", o.NumSnim, "name", o.Name, "bytes", o.Size, "stored_as", storedAs)
			return w.Write(&idkpb.FileResult{StoredAs: storedAs})
		default:
			return fmt.Errorf("file %s/%s: empty data message", o.NumSnim, o.Name)
		}
	}
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// Listen opens the QUIC listener on addr. Its stateless-reset key is kept
// in keyFile (created on first start), so that after a restart or a crash
// the collector can tell agents at once that their old connection is gone
// (a stateless reset) instead of leaving them to wait for the idle timeout.
func Listen(addr string, tlsConf *tls.Config, keyFile string) (*quic.Listener, error) {
	key, err := resetKey(keyFile)
	if err != nil {
		return nil, err
	}
	udpAddr, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, fmt.Errorf("server: listen address %q: %w", addr, err)
	}
	conn, err := net.ListenUDP("udp", udpAddr)
	if err != nil {
		return nil, fmt.Errorf("server: listen %s: %w", addr, err)
	}
	tr := &quic.Transport{Conn: conn, StatelessResetKey: &key}
	ln, err := tr.Listen(tlsConf, QUICConfig())
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("server: listen %s: %w", addr, err)
	}
	return ln, nil
}

func resetKey(path string) (quic.StatelessResetKey, error) {
	var key quic.StatelessResetKey
	b, err := os.ReadFile(path)
	if err == nil && len(b) == len(key) {
		copy(key[:], b)
		return key, nil
	}
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return key, fmt.Errorf("server: reset key %s: %w", path, err)
	}
	if _, err := rand.Read(key[:]); err != nil {
		return key, fmt.Errorf("server: reset key: %w", err)
	}
	if err := os.WriteFile(path, key[:], 0o600); err != nil {
		return key, fmt.Errorf("server: write reset key %s: %w", path, err)
	}
	return key, nil
}
