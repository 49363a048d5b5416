// Package server accepts agents' connections, over QUIC or over TLS on TCP
// where UDP is blocked (transport.Conn: one code path for both), and
// stores what they send. Each connection is tied to one ИДК by its client certificate: the
// hello must name the same ИДК and the customs body the registry has it
// enrolled for, and everything on the connection is stored under that ИДК,
// whatever the messages say. The limits in this file (connections, streams,
// frame sizes, idle deadlines) keep one stolen certificate from exhausting
// the collector; docs/security.md lists them.
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
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"

	"idk/collector/fleet"
	"idk/collector/ingest"
	"idk/collector/store"
	"idk/internal/clock"
	"idk/protocol"
	"idk/protocol/idkpb"
	"idk/protocol/transport"
)

// Application error codes on QUIC connections and streams.
const (
	codeRefused   quic.ApplicationErrorCode = 1 // identity or hello refused
	codeReplaced  quic.ApplicationErrorCode = 2 // a newer connection of the same ИДК took over
	codeRevoked   quic.ApplicationErrorCode = 3 // the certificate was revoked while connected
	streamAborted quic.StreamErrorCode      = 1
)

// Limits. A hello, an offer and a reply are a few hundred bytes; a chunk is
// ChunkSize plus framing.
const (
	maxHelloFrame = 64 << 10
	maxOfferFrame = 64 << 10
	maxChunkFrame = protocol.ChunkSize + 1<<10
	// maxPreHelloPerIDK and maxPreHello bound connections that finished
	// the TLS handshake but not yet their hello: an honest agent has its
	// connection and at most fifteen lanes dialled at once (agent/ship).
	maxPreHelloPerIDK = 20
	maxPreHello       = 256
	// maxFileStreams bounds the file streams of one connection in flight:
	// the agent's window (agent/ship.MaxWindowFiles) at its largest.
	maxFileStreams = 32
	// streamIdle is how long a file stream may send nothing before the
	// collector gives up on it (a live connection's keep-alives do not
	// count: they keep the connection, not a stalled stream).
	streamIdle = 60 * time.Second
	// helloTimeout bounds the whole hello.
	helloTimeout = 15 * time.Second
	// revocationEvery is how often live connections are checked against
	// the revocation list.
	revocationEvery = 2 * time.Second
)

// Config wires a Server.
type Config struct {
	Store   *store.Store
	Metrics *Metrics
	Log     *slog.Logger
	// Clock dates hellos and last-seen times and paces the periodic
	// checks; default clock.Real. Deadlines handed to QUIC streams stay on
	// the wall clock, which is what the network measures them against.
	Clock    clock.Clock
	Identify func(tls.ConnectionState) (numIDK string, err error)
	// Enrolled returns the customs body (KOD_TO) numIDK is enrolled for in
	// the collector's registry; ok is false for an ИДК not enrolled, which
	// is refused. Nil: nothing is enrolled.
	Enrolled func(numIDK string) (kodTO string, ok bool)
	// Revoked, if set, is asked every two seconds about each live
	// connection's certificate; a revoked one is closed.
	Revoked func(tls.ConnectionState) bool
	// MaxConnections caps agent connections after their hello; default 4096.
	MaxConnections int
	// Ingest takes each event batch to durable state (the log and every
	// consumer's state) and hands it on. Nil: the events go into Store
	// with no consumers.
	Ingest *ingest.Ingest
	// OnHello, if set, sees each accepted device identity.
	OnHello func(dev *idkpb.Device)
	// OnClockOffset, if set, sees the clock offset measured at each
	// accepted hello (collector clock minus agent clock) before any event
	// of the connection is stored: every event of the connection is
	// corrected by it, and table 4 flags the rows of an agent whose
	// clock is far off.
	OnClockOffset func(numIDK string, offset time.Duration)
	// Fleet, if set, is told of each agent's link: its connection and
	// its end, every message, the clock offset and the backlog the agent
	// reports. Nil: nothing is recorded.
	Fleet *fleet.Fleet
	// MaxLanes is how many lanes (Hello.lane) each agent may open besides
	// its connection; 0: none. Fifteen is what agent/ship uses by default
	// (its DefaultLanes, the connection included).
	MaxLanes int
	// AgentRate and AgentFiles are the budget told to each agent at its
	// hello (HelloReply.max_rate, max_files): file bytes per second and
	// files in flight. 0: no limit from the collector.
	AgentRate  int64
	AgentFiles int
}

// Server serves agents.
type Server struct {
	cfg Config

	mu       sync.Mutex
	conns    map[string]transport.Conn            // by NUM_IDK: the newest connection
	lanes    map[string]map[uint32]transport.Conn // by NUM_IDK and lane: the newest of each
	preHello map[string]int                       // by NUM_IDK: connections not past their hello
}

// New returns a server.
func New(cfg Config) *Server {
	cfg.Clock = clock.Or(cfg.Clock)
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.MaxConnections <= 0 {
		cfg.MaxConnections = 4096
	}
	cfg.MaxLanes = max(cfg.MaxLanes, 0)
	if cfg.Ingest == nil {
		cfg.Ingest = ingest.New(ingest.Config{Log: ingest.FromStore(cfg.Store), Logger: cfg.Log})
	}
	return &Server{cfg: cfg, conns: map[string]transport.Conn{}, lanes: map[string]map[uint32]transport.Conn{}, preHello: map[string]int{}}
}

// Serve accepts QUIC connections until ctx ends or the listener fails.
func (s *Server) Serve(ctx context.Context, ln *quic.Listener) error {
	return s.ServeAll(ctx, transport.QUICListener(ln))
}

// ServeAll accepts connections on every listener (the QUIC one and the
// TCP one) until ctx ends or one of them fails, which stops them all.
func (s *Server) ServeAll(ctx context.Context, lns ...transport.Listener) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg     sync.WaitGroup
		once   sync.Once
		failed error // the first listener's failure
	)
	if s.cfg.Revoked != nil {
		wg.Go(func() { s.closeRevoked(ctx) })
	}
	for _, ln := range lns {
		wg.Go(func() {
			for {
				conn, err := ln.Accept(ctx)
				if err != nil {
					if ctx.Err() == nil {
						once.Do(func() { failed = fmt.Errorf("server: accept on %s: %w", ln.Addr(), err) })
						cancel()
					}
					return
				}
				wg.Go(func() { s.handleConn(ctx, conn) })
			}
		})
	}
	<-ctx.Done()
	wg.Wait()
	return failed
}

// session is one agent connection after a good hello.
type session struct {
	dev     *idkpb.Device
	version string        // the agent's, from its hello
	epoch   uint64        // of the agent's spool
	offset  time.Duration // collector clock minus agent clock
	log     *slog.Logger
	lane    uint32 // 0: the agent's connection; else one of its lanes, for stripes only
	// ctx ends with the connection: what the collector does for it alone
	// (an upload into S3) stops then.
	ctx context.Context

	fileSlots chan struct{} // one per file stream in flight
	events    atomic.Bool   // an events stream is open
}

func (ss *session) correct(agentNanos int64) time.Time {
	return time.Unix(0, agentNanos).Add(ss.offset)
}

func (s *Server) handleConn(ctx context.Context, conn transport.Conn) {
	m := s.cfg.Metrics
	// Serving ends with ctx: the connection's streams (the events stream
	// has no deadline) would otherwise hold it up for as long as the agent
	// keeps them open.
	defer context.AfterFunc(ctx, func() { conn.CloseWithError(0, "collector stopping") })()
	log := s.cfg.Log.With("remote", conn.RemoteAddr().String(), "transport", conn.Transport())
	numIDK, err := s.cfg.Identify(conn.TLS())
	if err != nil {
		m.Refused.WithLabelValues("identity").Inc()
		log.Warn("connection refused: certificate does not name an ИДК", "err", err)
		conn.CloseWithError(codeRefused, "certificate does not name an ИДК")
		return
	}
	log = log.With("num_idk", numIDK)
	if !s.enterHello(numIDK) {
		m.Refused.WithLabelValues("too_many").Inc()
		log.Warn("connection refused: too many connections waiting for their hello")
		conn.CloseWithError(codeRefused, "too many connections")
		return
	}
	ss, reason, err := s.hello(ctx, conn, numIDK, log)
	s.leaveHello(numIDK)
	if err != nil && closedByAgent(err) {
		// An agent on TCP checking whether QUIC gets through again
		// (agent/ship) hangs up after the handshake: no refusal.
		log.Debug("agent closed the connection before its hello", "err", err)
		return
	}
	if err != nil {
		m.Refused.WithLabelValues(reason).Inc()
		log.Warn("connection refused at hello", "reason", reason, "err", err)
		conn.CloseWithError(codeRefused, truncate(err.Error(), 200))
		return
	}
	if ss.lane > 0 {
		s.serveLane(ctx, conn, ss)
		return
	}
	s.mu.Lock()
	if old := s.conns[numIDK]; old != nil {
		// The agent reconnected (new address, or the old path died without
		// us noticing yet): the old connection's streams would only hold
		// locks on partial files.
		old.CloseWithError(codeReplaced, "replaced by a newer connection")
	} else if len(s.conns) >= s.cfg.MaxConnections {
		s.mu.Unlock()
		m.Refused.WithLabelValues("too_many").Inc()
		log.Warn("connection refused: connection limit reached", "limit", s.cfg.MaxConnections)
		conn.CloseWithError(codeRefused, "too many connections")
		return
	}
	s.conns[numIDK] = conn
	s.mu.Unlock()
	m.Connections.Inc()
	defer m.Connections.Dec()
	defer func() {
		s.mu.Lock()
		if s.conns[numIDK] == conn {
			delete(s.conns, numIDK)
		}
		s.mu.Unlock()
	}()
	log.Info("agent connected", "kod_to", ss.dev.KodTo, "agent_version", ss.version, "clock_offset", ss.offset)
	if fl := s.cfg.Fleet; fl != nil {
		// Recorded only now, past the connection limit, so that the
		// board never shows a connection the server refused. The hello
		// checked the device's KOD_TO against the registry's.
		var notAfter time.Time
		if certs := conn.TLS().PeerCertificates; len(certs) > 0 {
			notAfter = certs[0].NotAfter
		}
		fl.Connected(numIDK, ss.dev.KodTo, ss.version, conn.RemoteAddr().String(), conn.Transport(), notAfter)
		fl.SetClockOffset(numIDK, ss.offset)
		defer fl.Disconnected(numIDK)
	}
	// A connected agent with nothing to send is alive too: keep its
	// last-seen fresh so a quiet night does not look like an outage.
	go clock.Every(conn.Context(), s.cfg.Clock, 30*time.Second, func() { s.seen(ss) })

	s.acceptStreams(ctx, conn, ss)
	log.Info("agent disconnected", "err", context.Cause(conn.Context()))
}

// acceptStreams serves the connection's streams until it ends.
func (s *Server) acceptStreams(ctx context.Context, conn transport.Conn, ss *session) {
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		st, err := conn.AcceptStream(ctx)
		if err != nil {
			return
		}
		wg.Go(func() { s.handleStream(ss, st) })
	}
}

// serveLane serves one of an agent's lanes: stripes of its large files,
// nothing else. A lane replaces only an older lane of the same number
// (the agent redialled it), never the agent's connection or its other
// lanes; lanes count neither against MaxConnections nor on the fleet
// board, and the hello bounded their number per ИДК.
func (s *Server) serveLane(ctx context.Context, conn transport.Conn, ss *session) {
	numIDK := ss.dev.NumIdk
	s.mu.Lock()
	lanes := s.lanes[numIDK]
	if lanes == nil {
		lanes = map[uint32]transport.Conn{}
		s.lanes[numIDK] = lanes
	}
	if old := lanes[ss.lane]; old != nil {
		old.CloseWithError(codeReplaced, "replaced by a newer connection")
	}
	lanes[ss.lane] = conn
	s.mu.Unlock()
	s.cfg.Metrics.Lanes.Inc()
	defer s.cfg.Metrics.Lanes.Dec()
	defer func() {
		s.mu.Lock()
		if s.lanes[numIDK][ss.lane] == conn {
			delete(s.lanes[numIDK], ss.lane)
			if len(s.lanes[numIDK]) == 0 {
				delete(s.lanes, numIDK)
			}
		}
		s.mu.Unlock()
	}()
	ss.log.Debug("agent lane connected", "lane", ss.lane)
	s.acceptStreams(ctx, conn, ss)
	ss.log.Debug("agent lane disconnected", "lane", ss.lane, "err", context.Cause(conn.Context()))
}

// enterHello admits a connection to its hello unless its ИДК, or everyone
// together, already has too many waiting there.
func (s *Server) enterHello(numIDK string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	total := 0
	for _, n := range s.preHello {
		total += n
	}
	if s.preHello[numIDK] >= maxPreHelloPerIDK || total >= maxPreHello {
		return false
	}
	s.preHello[numIDK]++
	return true
}

func (s *Server) leaveHello(numIDK string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.preHello[numIDK]--; s.preHello[numIDK] <= 0 {
		delete(s.preHello, numIDK)
	}
}

// closeRevoked closes, within revocationEvery, the live connections whose
// certificate has been revoked since they connected: a handshake checks
// the list once, and a connection can last for days.
func (s *Server) closeRevoked(ctx context.Context) {
	clock.Every(ctx, s.cfg.Clock, revocationEvery, func() {
		s.mu.Lock()
		type live struct {
			numIDK string
			conn   transport.Conn
		}
		var conns []live
		for numIDK, conn := range s.conns {
			conns = append(conns, live{numIDK, conn})
		}
		for numIDK, lanes := range s.lanes {
			for _, conn := range lanes {
				conns = append(conns, live{numIDK, conn})
			}
		}
		s.mu.Unlock()
		for _, c := range conns {
			if s.cfg.Revoked(c.conn.TLS()) {
				s.cfg.Metrics.Refused.WithLabelValues("revoked").Inc()
				s.cfg.Log.Warn("closing the connection of a revoked certificate", "num_idk", c.numIDK)
				c.conn.CloseWithError(codeRevoked, "certificate revoked")
			}
		}
	})
}

// hello reads and checks the agent's hello. On refusal, reason labels the
// refusal in idk_collector_connections_refused_total.
func (s *Server) hello(ctx context.Context, conn transport.Conn, numIDK string, log *slog.Logger) (ss *session, reason string, err error) {
	// The hello's deadlines are on the wall clock, whatever clock the
	// server runs on: the network measures them against it.
	hctx, cancel := context.WithTimeout(ctx, helloTimeout)
	defer cancel()
	st, err := conn.AcceptStream(hctx)
	if err != nil {
		return nil, "hello", fmt.Errorf("no hello stream: %w", err)
	}
	defer transport.EndStream(st)
	st.SetDeadline(time.Now().Add(helloTimeout))
	r, w := protocol.NewReader(st), protocol.NewWriter(st)
	r.SetLimit(maxHelloFrame)
	var hdr idkpb.StreamHeader
	if err := r.Read(&hdr); err != nil {
		return nil, "hello", err
	}
	if hdr.Kind != idkpb.StreamKind_STREAM_KIND_HELLO {
		return nil, "hello", fmt.Errorf("first stream is %v, want hello", hdr.Kind)
	}
	var h idkpb.Hello
	if err := r.Read(&h); err != nil {
		return nil, "hello", err
	}
	now := s.cfg.Clock.Now()
	refuse := func(reason string, err error) (*session, string, error) {
		w.Write(&idkpb.HelloReply{Error: err.Error(), CollectorTimeUnixNano: now.UnixNano()})
		return nil, reason, err
	}
	switch {
	case h.ProtocolVersion != protocol.Version:
		return refuse("hello", fmt.Errorf("protocol version %d not supported; this collector speaks %d", h.ProtocolVersion, protocol.Version))
	case h.Device == nil:
		return refuse("hello", errors.New("hello without device"))
	case h.Device.NumIdk != numIDK:
		return refuse("hello", fmt.Errorf("hello names NUM_IDK %q but the certificate is for %q", h.Device.NumIdk, numIDK))
	}
	if err := protocol.CheckKodTO(h.Device.KodTo); err != nil {
		return refuse("hello", fmt.Errorf("hello: %w", err))
	}
	kodTO, ok := "", false
	if s.cfg.Enrolled != nil {
		kodTO, ok = s.cfg.Enrolled(numIDK)
	}
	if !ok {
		return refuse("not_enrolled", fmt.Errorf("ИДК %s is not enrolled at this collector: ask its administrator (idk-collector pki agent --kod-to)", numIDK))
	}
	if h.Device.KodTo != kodTO {
		return refuse("kod_to", fmt.Errorf("hello names KOD_TO %s but ИДК %s is enrolled for %s: correct device.kod_to in the agent's configuration, or ask the collector's administrator to change the registry", h.Device.KodTo, numIDK, kodTO))
	}
	if h.Lane > uint32(s.cfg.MaxLanes) {
		return refuse("lanes", fmt.Errorf("lane %d: this collector takes at most %d lanes per ИДК", h.Lane, s.cfg.MaxLanes))
	}
	// The hello left the agent about half a round trip ago.
	rtt := conn.RTT()
	offset := now.Sub(time.Unix(0, h.AgentTimeUnixNano).Add(rtt / 2))
	// The version is the agent's word, shown on the console and logged:
	// bounded, whatever a hello may carry.
	ss = &session{dev: h.Device, version: truncate(h.AgentVersion, 64), epoch: h.SpoolEpoch, offset: offset, log: log, lane: h.Lane, ctx: conn.Context(), fileSlots: make(chan struct{}, maxFileStreams)}
	reply := &idkpb.HelloReply{CollectorTimeUnixNano: now.UnixNano(), ClockOffsetNanos: int64(offset),
		MaxLanes: uint32(s.cfg.MaxLanes), MaxRate: uint64(max(s.cfg.AgentRate, 0)), MaxFiles: uint32(max(s.cfg.AgentFiles, 0))}
	if h.Lane > 0 {
		// The agent's connection recorded the device, its clock and its
		// last sight: a lane adds nothing to them.
		if err := w.Write(reply); err != nil {
			return nil, "hello", err
		}
		return ss, "", nil
	}
	if err := s.cfg.Store.PutDevice(h.Device); err != nil {
		return refuse("hello", err)
	}
	if s.cfg.OnHello != nil {
		s.cfg.OnHello(h.Device)
	}
	if s.cfg.OnClockOffset != nil {
		s.cfg.OnClockOffset(numIDK, offset)
	}
	s.cfg.Metrics.ClockOffset.WithLabelValues(numIDK).Set(offset.Seconds())
	s.cfg.Metrics.LastSeen.WithLabelValues(numIDK).Set(float64(now.UnixNano()) / 1e9)
	if err := w.Write(reply); err != nil {
		return nil, "hello", err
	}
	return ss, "", nil
}

func (s *Server) handleStream(ss *session, st transport.Stream) {
	// Every read waits at most streamIdle: a stream that stalls is ended,
	// whatever the connection's keep-alives say.
	in := &idleReader{st: st, idle: streamIdle}
	r, w := protocol.NewReader(in), protocol.NewWriter(st)
	r.SetLimit(maxOfferFrame)
	var hdr idkpb.StreamHeader
	if err := r.Read(&hdr); err != nil {
		st.CancelRead(streamAborted)
		st.CancelWrite(streamAborted)
		return
	}
	var err error
	kind := "unknown"
	switch {
	case ss.lane > 0 && hdr.Kind != idkpb.StreamKind_STREAM_KIND_FILE:
		err = fmt.Errorf("a %v stream on lane %d, which carries only stripes of files", hdr.Kind, ss.lane)
	case hdr.Kind == idkpb.StreamKind_STREAM_KIND_EVENTS:
		kind = "events"
		if !ss.events.CompareAndSwap(false, true) {
			w.Write(&idkpb.EventAck{Error: "one events stream per connection"})
			err = errors.New("a second events stream")
			break
		}
		// An events stream is quiet while the ИДК has nothing to say, so
		// it has no idle deadline; it is one per connection.
		in.idle = 0
		st.SetReadDeadline(time.Time{})
		r.SetLimit(protocol.MaxMessageSize)
		err = s.events(ss, r, w)
		ss.events.Store(false)
	case hdr.Kind == idkpb.StreamKind_STREAM_KIND_FILE:
		kind = "file"
		select {
		case ss.fileSlots <- struct{}{}:
			// The slot is given back before the stream's last answer (see
			// file): an agent that starts its next file the moment it has
			// the answer must find the slot free, not be refused.
			var once sync.Once
			release := func() { once.Do(func() { <-ss.fileSlots }) }
			err = s.file(ss, r, w, release)
			release()
		default:
			w.Write(&idkpb.FileOfferReply{Status: idkpb.FileOfferReply_STATUS_REFUSED, Error: "too many files in flight on this connection"})
		}
	default:
		err = fmt.Errorf("unknown stream kind %v", hdr.Kind)
	}
	if err != nil && !errors.Is(err, io.EOF) && !closedByAgent(err) {
		s.cfg.Metrics.StreamErrors.WithLabelValues(kind).Inc()
		ss.log.Warn("stream ended with an error", "stream", kind, "err", err)
	}
	transport.EndStream(st)
}

// idleReader gives each read of a stream idle to deliver something (0:
// no limit). Its deadlines are on the wall clock, which the network
// measures them against.
type idleReader struct {
	st   transport.Stream
	idle time.Duration
}

func (r *idleReader) Read(p []byte) (int, error) {
	if r.idle > 0 {
		r.st.SetReadDeadline(time.Now().Add(r.idle))
	}
	return r.st.Read(p)
}

// closedByAgent tells an agent's orderly goodbye from a failure.
func closedByAgent(err error) bool {
	var ae *quic.ApplicationError
	return errors.As(err, &ae) && ae.Remote && ae.ErrorCode == 0
}

func (s *Server) seen(ss *session) {
	s.cfg.Metrics.LastSeen.WithLabelValues(ss.dev.NumIdk).Set(float64(s.cfg.Clock.Now().UnixNano()) / 1e9)
	if s.cfg.Fleet != nil {
		s.cfg.Fleet.Seen(ss.dev.NumIdk)
	}
}

// status records the backlog the agent reported, its oldest item's time
// corrected by the agent's clock offset like every time it sends.
func (s *Server) status(ss *session, st *idkpb.AgentStatus) {
	if s.cfg.Fleet == nil {
		return
	}
	var oldest time.Time
	if st.OldestUnsentUnixNano != 0 {
		oldest = ss.correct(st.OldestUnsentUnixNano)
	}
	s.cfg.Fleet.SetBacklog(ss.dev.NumIdk, st.BacklogFiles, st.BacklogBytes, oldest)
}

// events stores batches until the agent closes the stream.
func (s *Server) events(ss *session, r *protocol.Reader, w *protocol.Writer) error {
	for {
		var b idkpb.EventBatch
		if err := r.Read(&b); err != nil {
			if !errors.Is(err, io.EOF) {
				w.Write(&idkpb.EventAck{Error: truncate(err.Error(), 200)})
			}
			return err
		}
		s.seen(ss)
		if b.Status != nil {
			s.status(ss, b.Status)
		}
		if len(b.Events) == 0 {
			// The agent's heartbeat with its status: nothing to store, so
			// no index transaction (and its fsync) every 30 seconds per
			// agent. The ack tells the agent it got through.
			if err := w.Write(&idkpb.EventAck{}); err != nil {
				return err
			}
			continue
		}
		res, err := s.cfg.Ingest.Ingest(ss.dev, ss.epoch, b.Events, ss.correct)
		if err != nil {
			w.Write(&idkpb.EventAck{Error: publicError(err)})
			return err
		}
		s.cfg.Metrics.EventsStored.WithLabelValues(ss.dev.NumIdk).Add(float64(res.Stored))
		s.cfg.Metrics.Duplicates.WithLabelValues("event").Add(float64(res.Duplicates))
		if err := w.Write(&idkpb.EventAck{Stored: uint32(res.Stored), Duplicates: uint32(res.Duplicates)}); err != nil {
			return err
		}
	}
}

// file receives one file: offer, chunks, commit. It calls release, which
// frees the stream's slot, before it writes the stream's last answer,
// once it holds nothing of the file any more.
func (s *Server) file(ss *session, r *protocol.Reader, w *protocol.Writer, release func()) error {
	var o idkpb.FileOffer
	if err := r.Read(&o); err != nil {
		if !errors.Is(err, io.EOF) {
			release()
			w.Write(&idkpb.FileOfferReply{Status: idkpb.FileOfferReply_STATUS_REJECTED, Error: truncate(err.Error(), 200)})
		}
		return err
	}
	s.seen(ss)
	if ss.lane > 0 && o.RangeSize == 0 {
		release()
		w.Write(&idkpb.FileOfferReply{Status: idkpb.FileOfferReply_STATUS_REJECTED, Error: "a lane carries only stripes of files (range_size); offer the whole file on the connection"})
		return fmt.Errorf("whole file %s/%s offered on lane %d", o.NumSnim, o.Name, ss.lane)
	}
	up, reply, err := s.cfg.Store.Offer(ss.dev, &o, ss.correct(o.ScanTimeUnixNano))
	if err != nil {
		release()
		switch {
		case errors.Is(err, store.ErrInvalid):
			w.Write(&idkpb.FileOfferReply{Status: idkpb.FileOfferReply_STATUS_REJECTED, Error: truncate(err.Error(), 400)})
			s.cfg.Metrics.Rejected.Inc()
			ss.log.Warn("file offer rejected", "num_snim", o.NumSnim, "name", o.Name, "err", err)
			return nil
		case errors.Is(err, store.ErrBusy):
			w.Write(&idkpb.FileOfferReply{Status: idkpb.FileOfferReply_STATUS_REFUSED, Error: "the same file is being received on another stream; try later"})
			return nil
		case errors.Is(err, store.ErrDiskFull):
			w.Write(&idkpb.FileOfferReply{Status: idkpb.FileOfferReply_STATUS_REFUSED, Error: "collector disk full; try later", AllFiles: true})
			s.cfg.Metrics.DiskFull.Inc()
			ss.log.Error("file refused: collector disk full", "num_snim", o.NumSnim, "name", o.Name, "size", o.Size)
			return nil
		}
		// The collector's own trouble: say so without its details, and let
		// the agent try again later.
		w.Write(&idkpb.FileOfferReply{Status: idkpb.FileOfferReply_STATUS_REFUSED, Error: "collector could not take the file now; try later"})
		return fmt.Errorf("offer %s/%s: %w", o.NumSnim, o.Name, err)
	}
	if up == nil {
		s.cfg.Metrics.Duplicates.WithLabelValues("file").Inc()
		release()
		return w.Write(reply)
	}
	// Closed before the last answer too, and once only (a second Close
	// would release another stream's upload of the same file): the agent
	// may offer the file again at once (after a restart), and must not
	// find it busy.
	closed := false
	closeUp := func() {
		if !closed {
			closed = true
			up.Close()
		}
	}
	defer closeUp()
	last := func(res *idkpb.FileResult) error {
		closeUp()
		release()
		return w.Write(res)
	}
	if up.Resumed() {
		s.cfg.Metrics.Resumed.Inc()
		ss.log.Info("resuming file transfer", "num_snim", o.NumSnim, "name", o.Name, "offset", reply.Offset, "size", o.Size)
	}
	if err := w.Write(reply); err != nil {
		return err
	}
	r.SetLimit(maxChunkFrame)
	var d idkpb.FileData
	for {
		if err := r.ReadFileData(&d); err != nil {
			if !errors.Is(err, io.EOF) {
				last(&idkpb.FileResult{Error: truncate(err.Error(), 200)})
			}
			return fmt.Errorf("file %s/%s at %d: %w", o.NumSnim, o.Name, up.Offset(), err)
		}
		switch b := d.Body.(type) {
		case *idkpb.FileData_Chunk:
			if err := up.Write(b.Chunk); err != nil {
				last(&idkpb.FileResult{Error: publicError(err)})
				return fmt.Errorf("file %s/%s: %w", o.NumSnim, o.Name, err)
			}
			s.cfg.Metrics.BytesReceived.Add(float64(len(b.Chunk.Data)))
		case *idkpb.FileData_Commit:
			if up.IsStripe() {
				if err := up.Hold(b.Commit.Sha256); err != nil {
					last(&idkpb.FileResult{Error: publicError(err)})
					return fmt.Errorf("file %s/%s: %w", o.NumSnim, o.Name, err)
				}
				return last(&idkpb.FileResult{RangeHeld: true})
			}
			storedAs, err := up.CommitContext(ss.ctx, b.Commit.Sha256)
			if err != nil {
				last(&idkpb.FileResult{Error: publicError(err), Restart: errors.Is(err, store.ErrRestart)})
				return fmt.Errorf("file %s/%s: %w", o.NumSnim, o.Name, err)
			}
			s.seen(ss)
			s.cfg.Metrics.FilesStored.WithLabelValues(ss.dev.NumIdk).Inc()
			s.cfg.Metrics.BytesStored.WithLabelValues(ss.dev.NumIdk).Add(float64(o.Size))
			ss.log.Debug("file stored", "num_snim", o.NumSnim, "name", o.Name, "bytes", o.Size, "stored_as", storedAs)
			return last(&idkpb.FileResult{StoredAs: storedAs})
		default:
			last(&idkpb.FileResult{Error: "empty data message"})
			return fmt.Errorf("file %s/%s: empty data message", o.NumSnim, o.Name)
		}
	}
}

// publicError is what an agent is told of a failure: the whole text when
// the agent's input was at fault, and nothing of the collector's paths or
// disks otherwise (the log has those).
func publicError(err error) string {
	switch {
	case errors.Is(err, store.ErrInvalid), errors.Is(err, store.ErrRestart):
		return truncate(err.Error(), 400)
	case errors.Is(err, store.ErrDiskFull):
		return "collector disk full; try later"
	}
	return "collector could not store it now; try later"
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
// It also says whether quic-go got GSO and the socket buffers it wants
// (Metrics.SetUDP).
func Listen(addr string, tlsConf *tls.Config, keyFile string) (*quic.Listener, transport.UDPInfo, error) {
	key, err := resetKey(keyFile)
	if err != nil {
		return nil, transport.UDPInfo{}, err
	}
	udpAddr, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, transport.UDPInfo{}, fmt.Errorf("server: listen address %q: %w", addr, err)
	}
	conn, err := net.ListenUDP("udp", udpAddr)
	if err != nil {
		return nil, transport.UDPInfo{}, fmt.Errorf("server: listen %s: %w", addr, err)
	}
	tr := &quic.Transport{Conn: conn, StatelessResetKey: &key}
	ln, err := tr.Listen(tlsConf, transport.QUICConfig())
	if err != nil {
		conn.Close()
		return nil, transport.UDPInfo{}, fmt.Errorf("server: listen %s: %w", addr, err)
	}
	// quic-go set the socket up in Listen: GSO decided, buffers raised
	// as far as the kernel lets it. An error leaves what could be read.
	udp, _ := transport.InspectUDP(conn)
	return ln, udp, nil
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
