// Package ship delivers the agent's spool to the collector over QUIC with
// mutual TLS, or, where UDP is blocked, over TLS 1.3 on TCP (transport.go
// here: QUIC first, TCP when QUIC cannot connect, and back to QUIC when it
// can), to one of the region's collectors (failover.go: it keeps to one
// and moves on to the next only when that one cannot be reached). It
// reconnects forever with capped backoff (no retry limit
// that would drop data), sends events and each file on streams of their
// own so a form never waits behind an image, keeps a window of several
// files in flight (window.go) so that a long round trip does not bound
// throughput, resumes a file from the byte the collector already holds,
// and marks an item done in the spool only after the collector has
// acknowledged it as stored.
//
// A file the collector cannot take now (busy, disk full) waits on a backoff
// of its own while the files queued after it go on; a file it will never
// take is set aside with an Integrity event. No one file holds up the queue.
package ship

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"
	"golang.org/x/time/rate"

	"idk/agent/spool"
	"idk/internal/clock"
	"idk/protocol"
	"idk/protocol/idkpb"
	"idk/protocol/transport"
)

// Config wires a Shipper.
type Config struct {
	// Addrs are the region's collectors, host:port each: the shipper
	// keeps to the one of its last session and moves on to the next in
	// this order only when that one cannot be reached (failover.go).
	Addrs []string
	// Addr is one collector, for a caller that knows only one: the same
	// as Addrs of that one. Ignored when Addrs is set.
	Addr string
	// TLS is the client's TLS configuration for every collector. With
	// ServerName empty, each collector's certificate must name the host
	// of its own address; with it set, every collector's that name.
	TLS     *tls.Config
	QUIC    *quic.Config
	Device  *idkpb.Device
	Spool   *spool.Spool
	Metrics *Metrics
	Log     *slog.Logger
	// Clock times reconnections, polls of the spool and the waits of
	// files the collector could not take yet, and dates the hello and the
	// shipper's events; default clock.Real.
	Clock      clock.Clock
	Version    string
	MinBackoff time.Duration // default 500ms
	MaxBackoff time.Duration // default 30s
	// MaxRate caps file bytes per second, so that shipping does not starve
	// the crossing's other traffic on a thin link. 0: no cap.
	MaxRate int64
	// OutageThreshold: a lost link to the collector that lasts longer is
	// recorded, once the spool has drained after it, as a LinkOutage
	// event (see outage.go); a shorter one is forgotten. Default
	// DefaultOutageThreshold (5 minutes).
	OutageThreshold time.Duration
	// OnRehash is called when a queued file no longer has the content
	// hashed when it was first seen. It must re-hash and update the spool.
	// The shipper never calls it for two files at once.
	OnRehash func(f spool.File)

	// The window (window.go): how many files, and how many bytes of
	// files, are in flight on the connection at once, each on its own
	// stream, so that per-file round trips (offer and reply, commit and
	// the collector's fsync) do not bound throughput on a long link.

	// WindowFiles caps the files in flight; default DefaultWindowFiles,
	// at most MaxWindowFiles (the collector's limit per connection). 1
	// sends one file at a time.
	WindowFiles int
	// WindowBytes caps the sizes of the files in flight together, so
	// that large images go a few at a time (each finishes, and is marked
	// done, sooner) while small documents fill the window; one file of
	// each class (fresh, backlog) may be in flight whatever its size.
	// Default DefaultWindowBytes.
	WindowBytes int64
	// FreshAge: a file first seen less than this ago is fresh. Fresh
	// files are started before the backlog, and the backlog leaves part
	// of the window (WindowFiles/8 slots) to them, so that today's scans
	// never wait behind a week's backlog. Default DefaultFreshAge.
	FreshAge time.Duration

	// Transport is how to reach the collector: TransportAuto (the
	// default) QUIC, falling back to TLS over TCP when QUIC cannot
	// connect; TransportQUIC or TransportTCP, that one only.
	Transport string
	// QUICRetry: while on TCP in TransportAuto, how often QUIC is tried
	// again; default DefaultQUICRetry.
	QUICRetry time.Duration
	// Lanes: a file of at least StripeFrom is cut into stripes sent at
	// once over so many connections to the collector, this one included
	// (lanes.go), as far as the collector takes them; 1: none. Default
	// DefaultLanes, at most MaxLanes.
	Lanes int
	// StripeMinRTT: files are striped only when the connection's shortest
	// round trip is at least this (lanes.go); 0: StripeMinRTT;
	// negative: at any round trip (tests, on loopback).
	StripeMinRTT time.Duration
}

// Shipper sends the spool to the collector.
type Shipper struct {
	cfg     Config
	limiter *rate.Limiter

	// retries holds, by spool key, the files the collector could not take
	// yet. Only the files loop uses it, and sessions run one after the
	// other, so a file's backoff outlives a reconnection.
	retries map[string]*retry
	walk    uint64 // counts walks of the queue, to find retries of files gone from it
	// pause is how long every file waits after the collector refused one
	// for a reason that holds for all (see errLater.all); paused is when
	// that wait ends, and probing that, once it has, one file goes alone
	// until one is stored. Only the files loop uses them.
	pause   time.Duration
	paused  time.Time
	probing bool

	rehash sync.Mutex // one OnRehash at a time
	// down: linkDown has recorded the outage in progress (Run's goroutine
	// only).
	down bool
	// The transport (transport.go): inUse is the one of the last session
	// that got through its hello, "" before the first; handover a QUIC
	// connection that backToQUIC opened for the next session. Run's
	// goroutine, and backToQUIC before its session ends.
	inUse    string
	handover transport.Conn

	// The collectors (failover.go): addrs in the order tried, at the
	// index of the one of the last session, where the next round of
	// dialling starts; tls each one's TLS configuration. Run's goroutine
	// changes at, between sessions only.
	addrs []string
	at    int
	tls   map[string]*tls.Config
	// tcpListens: a TCP probe or session found a collector of the region
	// listening on TCP, and none refusing TCP was seen to take QUIC
	// since; unreached: when the rounds that reached no collector began,
	// zero while one is reached. Whether a refused probe means the
	// collector is gone (failover.go). unreached: Run's goroutine,
	// between sessions; tcpListens also the probes, which may end later.
	tcpListens atomic.Bool
	unreached  time.Time

	// Set by each session before its loops start, from its hello: the
	// lanes its files may use, and the window the collector allows.
	lanes       *lanes
	windowFiles int
}

// Files the collector will not take now are offered again after a wait of
// their own, growing from retryMin to retryMax while the refusals last.
const (
	retryMin = time.Second
	retryMax = 30 * time.Second
)

// retry is a file the shipper waits to offer again.
type retry struct {
	due  time.Time     // not offered before this (on Config.Clock)
	wait time.Duration // the wait after its next refusal
	walk uint64        // the last walk of the queue that saw the file pending
}

// New returns a shipper.
func New(cfg Config) *Shipper {
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = 500 * time.Millisecond
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = 30 * time.Second
	}
	if cfg.OutageThreshold <= 0 {
		cfg.OutageThreshold = DefaultOutageThreshold
	}
	if cfg.WindowFiles <= 0 {
		cfg.WindowFiles = DefaultWindowFiles
	}
	cfg.WindowFiles = min(cfg.WindowFiles, MaxWindowFiles)
	if cfg.WindowBytes <= 0 {
		cfg.WindowBytes = DefaultWindowBytes
	}
	if cfg.FreshAge <= 0 {
		cfg.FreshAge = DefaultFreshAge
	}
	if cfg.Transport == "" {
		cfg.Transport = TransportAuto
	}
	if cfg.QUICRetry <= 0 {
		cfg.QUICRetry = DefaultQUICRetry
	}
	if cfg.Lanes <= 0 {
		cfg.Lanes = DefaultLanes
	}
	cfg.Lanes = min(cfg.Lanes, MaxLanes)
	if cfg.StripeMinRTT == 0 {
		cfg.StripeMinRTT = StripeMinRTT
	}
	cfg.Clock = clock.Or(cfg.Clock)
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	limiter := rate.NewLimiter(rate.Inf, 0)
	if cfg.MaxRate > 0 {
		limiter = rate.NewLimiter(rate.Limit(cfg.MaxRate), protocol.ChunkSize)
	}
	addrs := cfg.addresses()
	if len(addrs) > 1 && cfg.Transport != TransportTCP {
		// Another collector to go to: a dead one is given up sooner
		// (failover.go).
		cfg.QUIC = regionQUIC(cfg.QUIC)
	}
	s := &Shipper{cfg: cfg, limiter: limiter, retries: map[string]*retry{}, pause: retryMin,
		addrs: addrs, tls: tlsConfigs(cfg.TLS, addrs)}
	s.setCollector("") // every collector's series from the start
	return s
}

// Run ships until ctx ends.
func (s *Shipper) Run(ctx context.Context) error {
	backoff := s.cfg.MinBackoff
	for {
		connected, err := s.session(ctx)
		if ctx.Err() != nil {
			s.closeHandover()
			return nil
		}
		s.cfg.Metrics.Connected.Set(0)
		s.setTransport("")
		s.setCollector("")
		if errors.Is(err, errBackToQUIC) {
			// Not a lost link: the next session goes on at once, on the
			// QUIC connection already made.
			s.cfg.Log.Info("QUIC gets through to the collector again; leaving TCP", "addr", s.addr())
			backoff = s.cfg.MinBackoff
			continue
		}
		s.cfg.Metrics.Reconnects.Inc()
		if err := s.linkDown(err); err != nil {
			s.cfg.Log.Error("cannot record the start of a link outage", "err", err)
		}
		if connected {
			// The collector was there a moment ago (a restart, a lost
			// path): come back promptly. The backoff grows only while it
			// cannot be reached at all.
			backoff = s.cfg.MinBackoff
		}
		// Jitter keeps a fleet that lost the collector together from
		// coming back in lockstep.
		wait := backoff/2 + rand.N(backoff/2+1)
		// addr is the collector tried first on the retry: the one of the
		// last session.
		s.cfg.Log.Warn("connection to collector lost; retrying", "addr", s.addr(), "err", err, "retry_in", wait.Round(time.Millisecond))
		if clock.Sleep(ctx, s.cfg.Clock, wait) != nil {
			return nil
		}
		backoff = min(2*backoff, s.cfg.MaxBackoff)
	}
}

// session runs one connection; connected reports whether the hello got
// through.
func (s *Shipper) session(ctx context.Context) (connected bool, err error) {
	// The hello is part of connecting: a collector that refuses it (or
	// cannot answer) is passed over for the next, as one that cannot be
	// dialled is.
	var rep *idkpb.HelloReply
	conn, err := s.connect(ctx, func(c transport.Conn) error {
		var err error
		rep, err = s.hello(ctx, c, 0)
		return err
	})
	if err != nil {
		return false, err
	}
	defer conn.CloseWithError(0, "agent closing")
	addr := s.addr()
	s.budget(rep)
	s.lanes = newLanes(s, addr, conn.Transport(), min(s.cfg.Lanes-1, int(rep.MaxLanes)))
	defer s.lanes.close()
	s.cfg.Metrics.Connected.Set(1)
	s.setCollector(addr)
	s.using(conn.Transport())
	s.cfg.Log.Info("connected to collector", "addr", addr, "transport", conn.Transport())
	if err := s.linkUp(); err != nil {
		s.cfg.Log.Error("cannot record the end of a link outage", "err", err)
	}

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	watch := func(ctx context.Context, conn transport.Conn) error { return s.watch(ctx, conn, addr) }
	for _, loop := range []func(context.Context, transport.Conn) error{s.events, s.files, s.outages, s.backToQUIC, s.lanes.closeIdle, watch} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := loop(ctx, conn); err != nil {
				cancel(err)
			}
		}()
	}
	wg.Wait()
	return true, context.Cause(ctx)
}

// hello introduces the agent on a new connection: lane 0 for the
// connection, 1 and up for a lane (lanes.go).
func (s *Shipper) hello(ctx context.Context, conn transport.Conn, lane uint32) (*idkpb.HelloReply, error) {
	st, err := conn.OpenStream(ctx)
	if err != nil {
		return nil, fmt.Errorf("open hello stream: %w", err)
	}
	defer transport.EndStream(st)
	// On the wall clock, not Config.Clock: the stream measures its
	// deadline against it.
	st.SetDeadline(time.Now().Add(15 * time.Second))
	w, r := protocol.NewWriter(st), protocol.NewReader(st)
	if err := w.Write(&idkpb.StreamHeader{Kind: idkpb.StreamKind_STREAM_KIND_HELLO}); err != nil {
		return nil, err
	}
	err = w.Write(&idkpb.Hello{
		ProtocolVersion:   protocol.Version,
		Device:            s.cfg.Device,
		AgentTimeUnixNano: s.cfg.Clock.Now().UnixNano(),
		AgentVersion:      s.cfg.Version,
		SpoolEpoch:        s.cfg.Spool.Epoch(),
		Lane:              lane,
	})
	if err != nil {
		return nil, err
	}
	var rep idkpb.HelloReply
	if err := r.Read(&rep); err != nil {
		return nil, fmt.Errorf("hello: %w", err)
	}
	if rep.Error != "" {
		return nil, fmt.Errorf("collector refused hello: %s", rep.Error)
	}
	if lane > 0 {
		return &rep, nil
	}
	offset := time.Duration(rep.ClockOffsetNanos)
	s.cfg.Metrics.ClockOffset.Set(offset.Seconds())
	if offset.Abs() > time.Minute {
		s.cfg.Log.Warn("this PC's clock differs from the collector's; the collector corrects event times", "offset", offset)
	}
	return &rep, nil
}

// budget applies the collector's budget for this agent (HelloReply) to
// the session: the lower of its rate and Config.MaxRate, the smaller of
// its files in flight and Config.WindowFiles. A fleet coming back from a
// long outage then drains at the pace the collector sets.
func (s *Shipper) budget(rep *idkpb.HelloReply) {
	rateCap := s.cfg.MaxRate
	if r := int64(min(rep.MaxRate, 1<<62)); r > 0 && (rateCap == 0 || r < rateCap) {
		rateCap = r
	}
	if rateCap > 0 {
		s.limiter.SetBurst(protocol.ChunkSize)
		s.limiter.SetLimit(rate.Limit(rateCap))
	} else {
		s.limiter.SetLimit(rate.Inf)
	}
	s.windowFiles = s.cfg.WindowFiles
	if n := int(rep.MaxFiles); n > 0 && n < s.windowFiles {
		s.windowFiles = n
	}
	if rateCap != s.cfg.MaxRate || s.windowFiles != s.cfg.WindowFiles {
		s.cfg.Log.Info("shipping within the collector's budget", "max_rate", rateCap, "window_files", s.windowFiles)
	}
}

// pollEvery is how long a loop with nothing to send waits for the spool to
// change before it looks again anyway.
const pollEvery = 2 * time.Second

// The events loop tells the collector what the spool still holds (an
// idkpb.AgentStatus) for its fleet board: with the first batch of a
// connection, then with a batch at most every statusMin while the spool
// changes (reading it walks every pending item, which a long backlog
// draining batch after batch must not pay each time), and alone, in a
// batch without events, at least every statusEvery while connected, so
// the board's backlog is never older than that.
const (
	statusMin   = 5 * time.Second
	statusEvery = 30 * time.Second
)

// status reads the spool's backlog as the collector is told it: files
// queued, their bytes, and the time the oldest item waiting, event or
// file, was queued.
func (s *Shipper) status() (*idkpb.AgentStatus, error) {
	st, err := s.cfg.Spool.Stats()
	if err != nil {
		return nil, fmt.Errorf("read spool backlog: %w", err)
	}
	as := &idkpb.AgentStatus{BacklogFiles: int64(st.Files), BacklogBytes: st.FileBytes}
	var oldest time.Time
	for _, t := range []time.Time{st.OldestEvent, st.OldestFile} {
		if !t.IsZero() && (oldest.IsZero() || t.Before(oldest)) {
			oldest = t
		}
	}
	if !oldest.IsZero() {
		as.OldestUnsentUnixNano = oldest.UnixNano()
	}
	return as, nil
}

// eventsInFlight is how many batches the events stream sends before the
// oldest of them is acknowledged. One at a time, a form saved while a
// status batch waited for its answer waited a round trip more, and on a
// link whose queue an image fills that was the half second that put P2
// over its goal (idk-sim linkbench -cases forms).
const eventsInFlight = 8

// events sends the spool's events, in sequence order, on a stream of
// conn, and forgets each batch once the collector has acknowledged it.
// Batches follow each other without waiting for the answers (up to
// eventsInFlight); the collector answers them in order.
func (s *Shipper) events(ctx context.Context, conn transport.Conn) error {
	changed, unsubscribe := s.cfg.Spool.Subscribe()
	defer unsubscribe()
	st, err := conn.OpenStream(ctx)
	if err != nil {
		return fmt.Errorf("open event stream: %w", err)
	}
	defer transport.EndStream(st)
	w, r := protocol.NewWriter(st), protocol.NewReader(st)
	if err := w.Write(&idkpb.StreamHeader{Kind: idkpb.StreamKind_STREAM_KIND_EVENTS}); err != nil {
		return err
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	sent := make(chan []*idkpb.Event, eventsInFlight) // batches awaiting their answers, oldest first
	acked := make(chan struct{})
	go func() {
		defer close(acked)
		if err := s.eventAcks(ctx, r, sent); err != nil {
			cancel(err)
			st.CancelWrite(streamAborted) // a writer blocked on the stream ends too
		}
	}()
	defer func() {
		// The reader may be waiting for an answer that will not come.
		cancel(nil)
		st.CancelRead(streamAborted)
		<-acked
	}()
	var (
		after      uint64    // the last event sent on this stream
		lastStatus time.Time // when the last status was read; zero: none on this connection yet
		dirty      bool      // the spool changed since
	)
	for {
		evs, err := s.cfg.Spool.PendingEventsAfter(after, 256, 1<<20)
		if err != nil {
			return err
		}
		now := s.cfg.Clock.Now()
		since := now.Sub(lastStatus)
		statusDue := lastStatus.IsZero() || since >= statusEvery || (dirty && since >= statusMin)
		if len(evs) == 0 && !statusDue {
			// Wait for the spool, or for the next status to fall due:
			// statusMin after the last one if the backlog changed since,
			// statusEvery if it did not.
			wait := statusEvery - since
			if dirty {
				wait = statusMin - since
			}
			woke, err := s.wait(ctx, changed, min(wait, pollEvery))
			if err != nil {
				return context.Cause(ctx)
			}
			dirty = dirty || woke
			continue
		}
		b := &idkpb.EventBatch{Events: evs}
		if statusDue {
			// Read or not, the next try is due statusMin on: a spool that
			// cannot be read now must not be walked in a tight loop.
			lastStatus, dirty = now, false
			if b.Status, err = s.status(); err != nil {
				s.cfg.Log.Warn("cannot tell the collector the spool's backlog", "err", err)
				if len(evs) == 0 {
					continue
				}
			}
		}
		select {
		case sent <- evs: // a place among the batches in flight
		case <-ctx.Done():
			return context.Cause(ctx)
		}
		if err := w.Write(b); err != nil {
			if ctx.Err() != nil {
				return context.Cause(ctx)
			}
			return err
		}
		if len(evs) > 0 {
			after = evs[len(evs)-1].Seq
		}
	}
}

// eventAcks reads the collector's answers to the batches sent, in their
// order, and forgets the events of each acknowledged one.
func (s *Shipper) eventAcks(ctx context.Context, r *protocol.Reader, sent <-chan []*idkpb.Event) error {
	for {
		var evs []*idkpb.Event
		select {
		case evs = <-sent:
		case <-ctx.Done():
			return nil
		}
		var ack idkpb.EventAck
		if err := r.Read(&ack); err != nil {
			return fmt.Errorf("event ack: %w", err)
		}
		if len(evs) == 0 {
			if ack.Error != "" {
				return fmt.Errorf("collector refused the agent's status: %s", ack.Error)
			}
			continue
		}
		if ack.Error != "" {
			return fmt.Errorf("collector refused events %d-%d: %s", evs[0].Seq, evs[len(evs)-1].Seq, ack.Error)
		}
		if err := s.cfg.Spool.AckEvents(evs); err != nil {
			return err
		}
		s.cfg.Metrics.EventsShipped.Add(float64(len(evs)))
	}
}

// sleep blocks for d on the shipper's clock, until the spool changes, or
// until ctx ends.
func (s *Shipper) sleep(ctx context.Context, changed <-chan struct{}, d time.Duration) error {
	_, err := s.wait(ctx, changed, d)
	return err
}

// wait is sleep that reports whether the spool changed.
func (s *Shipper) wait(ctx context.Context, changed <-chan struct{}, d time.Duration) (bool, error) {
	t := s.cfg.Clock.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false, ctx.Err()
	case <-changed:
		return true, nil
	case <-t.C():
	}
	return false, nil
}

// later puts f aside until its backoff has passed.
func (s *Shipper) later(f spool.File, err error) {
	r := s.retries[f.Key()]
	if r == nil {
		r = &retry{wait: retryMin}
		s.retries[f.Key()] = r
		s.cfg.Log.Warn("scan file not delivered now; offering it again later while the rest of the queue goes on",
			"file", f.Key(), "err", err, "retry_in", r.wait)
	} else {
		// Once per file is enough: a collector with a full disk refuses
		// every file, again and again.
		s.cfg.Log.Debug("scan file still not delivered", "file", f.Key(), "err", err, "retry_in", r.wait)
	}
	r.due = s.cfg.Clock.Now().Add(r.wait)
	r.wait = min(2*r.wait, retryMax)
}

// errLater means the file could not be delivered now, for a reason that
// concerns that file only (the collector refused it for now, could not
// store it, or this PC cannot read it): the shipper offers it again later
// and goes on with the rest of the queue.
type errLater struct {
	err error
	all bool // the reason holds for every file (a full collector disk)
}

func (e errLater) Error() string { return e.err.Error() }
func (e errLater) Unwrap() error { return e.err }

// errChanged means the file on disk no longer matches the spool record.
var errChanged = errors.New("file changed since it was first seen")

// changed handles a file found changed while it was being sent (err
// wraps errChanged): hashed again, its new content goes at once.
func (s *Shipper) changed(f spool.File, err error) error {
	s.cfg.Log.Warn("scan file changed after it was first seen; hashing it again", "file", f.Path)
	s.rehashFile(f)
	if s.requeued(f) {
		return nil // the new content goes now
	}
	// Not re-hashed (it cannot be read, or is still changing): offered
	// again at once, it would keep the rest waiting.
	return errLater{err: err}
}

// rehashFile has the intake hash f again (Config.OnRehash).
func (s *Shipper) rehashFile(f spool.File) {
	if s.cfg.OnRehash != nil {
		s.rehash.Lock()
		s.cfg.OnRehash(f)
		s.rehash.Unlock()
	}
}

// offer is the whole-file offer of f.
func (s *Shipper) offer(f spool.File) *idkpb.FileOffer {
	o := &idkpb.FileOffer{
		NumSnim:          f.NumSnim,
		Name:             protocol.SafeName(f.Name),
		Kind:             f.Kind,
		Size:             uint64(f.Size),
		Sha256:           f.SHA256,
		ScanTimeUnixNano: f.ScanTime.UnixNano(),
	}
	if o.Name != f.Name {
		o.OriginalName = f.Name
	}
	return o
}

func (s *Shipper) sendFile(ctx context.Context, conn transport.Conn, f spool.File) error {
	if n := s.lanes.stripes(conn, f); n > 1 {
		// Striped over the lanes first; the whole offer below then
		// sends only what the stripes held at the collector miss.
		if err := s.sendStripes(ctx, conn, s.lanes, f, n); err != nil {
			return err
		}
	}
	src, err := os.Open(f.Path)
	if errors.Is(err, fs.ErrNotExist) {
		// Gone from the scanner before it could be shipped: record it and
		// move on, so one missing file does not hold up the rest.
		s.cfg.Log.Error("scan file disappeared before it was shipped", "file", f.Path, "num_snim", f.NumSnim)
		return s.markMissing(f)
	} else if err != nil {
		// Locked by the scanner's program, no permission, a path Windows
		// cannot open: perhaps later, and the rest need not wait.
		return errLater{err: fmt.Errorf("open %s: %w", f.Path, err)}
	}
	defer src.Close()

	offer := s.offer(f)
	st, w, r, end, err := openFileStream(ctx, conn, offer)
	if err != nil {
		return err
	}
	defer end()
	var rep idkpb.FileOfferReply
	if err := r.Read(&rep); err != nil {
		return fmt.Errorf("offer %s: %w", f.Key(), err)
	}
	switch rep.Status {
	case idkpb.FileOfferReply_STATUS_HAVE:
		return s.markDone(f, "")
	case idkpb.FileOfferReply_STATUS_SEND:
	case idkpb.FileOfferReply_STATUS_REJECTED:
		if rep.Error == "" {
			rep.Error = rep.Status.String()
		}
		return s.markRejected(f, offer, rep.Error)
	default:
		// STATUS_REFUSED ("not now": busy, disk full), or a status this
		// agent does not know, which must not lose the file either.
		if rep.Error == "" {
			rep.Error = rep.Status.String()
		}
		return errLater{err: fmt.Errorf("collector refused %s for now: %s", f.Key(), rep.Error), all: rep.AllFiles}
	}
	if rep.Offset > uint64(f.Size) {
		return errLater{err: fmt.Errorf("collector asks for %s from %d, beyond its %d bytes", f.Key(), rep.Offset, f.Size)}
	}

	err = s.stream(ctx, src, w, f, rep.Offset)
	if errors.Is(err, errChanged) {
		st.CancelWrite(streamAborted)
		return s.changed(f, err)
	}
	if err != nil {
		return err
	}
	var res idkpb.FileResult
	if err := r.Read(&res); err != nil {
		return fmt.Errorf("commit %s: %w", f.Key(), err)
	}
	if res.Restart {
		// What the collector received is not what was first seen: the
		// file changed on disk since, or the copy was damaged on the
		// way or at the collector. Hashing it again tells which.
		s.rehashFile(f)
		if s.requeued(f) {
			s.cfg.Log.Warn("scan file changed after it was first seen; its new content goes next", "file", f.Path)
			return nil
		}
		// Damaged on the way, or the file could not be hashed again
		// (unreadable, still being written): sent again from zero after
		// its own backoff, so that a file that keeps failing does not
		// take the link from the rest.
		s.cfg.Metrics.FileRestarts.Inc()
		s.cfg.Log.Warn("collector's copy failed its checksum; sending again from the start", "file", f.Key())
		return errLater{err: fmt.Errorf("collector's copy of %s failed its checksum", f.Key())}
	}
	if res.Error != "" {
		return errLater{err: fmt.Errorf("collector did not store %s: %s", f.Key(), res.Error)}
	}
	s.cfg.Metrics.FilesShipped.Inc()
	return s.markDone(f, res.StoredAs)
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// sendChunks sends bytes [from, to) of f, read from src (at from), as
// chunks, paced by the limiter. A read that fails wraps errChanged: the
// file is shorter than when first seen.
// It returns a buffer, for the caller's last look at src.
//
// A file of more than one chunk is read and checksummed a chunk ahead on
// a goroutine of its own (readChunks), so that the disk and the CRC work
// while the previous chunk is being sent.
func (s *Shipper) sendChunks(ctx context.Context, w *protocol.Writer, src io.Reader, f spool.File, from, to uint64) ([]byte, error) {
	// A document needs a buffer of its own size, not a chunk's: a window
	// of small files in flight holds little memory.
	size := min(protocol.ChunkSize, max(to-from, 1))
	buffers := 1
	if to-from > size {
		buffers = 2
	}
	r := readChunks(src, f, from, to, int(size), buffers)
	defer r.stop()
	chunk := &idkpb.Chunk{}
	msg := &idkpb.FileData{Body: &idkpb.FileData_Chunk{Chunk: chunk}}
	for pos := from; pos < to; {
		c := <-r.full
		if c.err != nil {
			return nil, c.err
		}
		n := len(c.data)
		if err := s.limiter.WaitN(ctx, n); err != nil {
			return nil, err
		}
		chunk.Offset, chunk.Data, chunk.Crc32C = pos, c.data, c.crc
		if err := w.Write(msg); err != nil {
			return nil, err
		}
		pos += uint64(n)
		s.cfg.Metrics.SentBytes.Add(float64(n))
		r.free <- c.data[:cap(c.data)]
	}
	r.stop()
	return <-r.free, nil
}

// chunkReader reads a range of a file in chunks on its own goroutine
// into a few buffers that go round: free ones to the reader, full ones to
// the sender, and back.
type chunkReader struct {
	free chan []byte
	full chan readChunk
	done chan struct{}
	wg   sync.WaitGroup
	once sync.Once
}

// readChunk is one chunk read, with its CRC32C, or the read's error.
type readChunk struct {
	data []byte
	crc  uint32
	err  error
}

// readChunks starts reading bytes [from, to) of src in chunks of size,
// with the given number of buffers.
func readChunks(src io.Reader, f spool.File, from, to uint64, size, buffers int) *chunkReader {
	r := &chunkReader{free: make(chan []byte, buffers), full: make(chan readChunk, buffers), done: make(chan struct{})}
	for range buffers {
		r.free <- make([]byte, size)
	}
	r.wg.Go(func() {
		for pos := from; pos < to; {
			var buf []byte
			select {
			case buf = <-r.free:
			case <-r.done:
				return
			}
			n, err := io.ReadFull(src, buf[:min(uint64(len(buf)), to-pos)])
			if err != nil {
				r.full <- readChunk{err: fmt.Errorf("%w: read %s at %d: %v", errChanged, f.Path, pos, err)}
				return
			}
			// The channel holds as many as there are buffers: never
			// blocks.
			r.full <- readChunk{data: buf[:n], crc: crc32.Checksum(buf[:n], castagnoli)}
			pos += uint64(n)
		}
	})
	return r
}

// stop ends the reader and waits for it: src is the caller's again.
func (r *chunkReader) stop() {
	r.once.Do(func() { close(r.done) })
	r.wg.Wait()
}

// streamAborted is the code a file stream is cancelled with when the
// agent gives it up: the file changed, or the session ended.
const streamAborted quic.StreamErrorCode = 1

// openFileStream opens a file stream on conn and sends its header and
// the offer. end ends the stream; until then, the end of ctx aborts it.
func openFileStream(ctx context.Context, conn transport.Conn, offer *idkpb.FileOffer) (st transport.Stream, w *protocol.Writer, r *protocol.Reader, end func(), err error) {
	st, err = conn.OpenStream(ctx)
	if err != nil {
		return nil, nil, nil, nil, fmt.Errorf("open file stream: %w", err)
	}
	// A stream's reads and writes do not watch ctx: when the session ends
	// (another file's stream failed), abort this one so that the window's
	// other transfers end with it, to resume on the next connection.
	stop := context.AfterFunc(ctx, func() {
		st.CancelWrite(streamAborted)
		st.CancelRead(streamAborted)
	})
	end = func() {
		stop()
		transport.EndStream(st)
	}
	w, r = protocol.NewWriter(st), protocol.NewReader(st)
	if err := w.Write(&idkpb.StreamHeader{Kind: idkpb.StreamKind_STREAM_KIND_FILE}); err != nil {
		end()
		return nil, nil, nil, nil, err
	}
	if err := w.Write(offer); err != nil {
		end()
		return nil, nil, nil, nil, err
	}
	return st, w, r, end, nil
}

// stream sends the file from offset and the commit with the SHA-256 the
// file had when first seen. The collector hashes what it received, the
// bytes it held from an earlier transfer included, and stores the file
// only if the two agree; a file changed since is answered Restart
// (sendFile). The agent does not hash it again on the way: that cost a
// pass over every image for what the collector checks anyway. A file
// that got shorter or longer is seen here. Only a chunk or two is ever
// in memory.
func (s *Shipper) stream(ctx context.Context, src *os.File, w *protocol.Writer, f spool.File, offset uint64) error {
	if _, err := src.Seek(int64(offset), io.SeekStart); err != nil {
		return fmt.Errorf("%w: %s: %v", errChanged, f.Path, err)
	}
	buf, err := s.sendChunks(ctx, w, src, f, offset, uint64(f.Size))
	if err != nil {
		return err
	}
	if n, _ := src.Read(buf[:1]); n > 0 {
		return fmt.Errorf("%w: %s grew", errChanged, f.Path)
	}
	return w.Write(&idkpb.FileData{Body: &idkpb.FileData_Commit{Commit: &idkpb.Commit{Sha256: f.SHA256}}})
}

// markMissing closes a file that vanished from the scanner's folder and
// records the fact as evidence for table 5 (missing images).
func (s *Shipper) markMissing(f spool.File) error {
	return s.cfg.Spool.Update(func(tx *spool.Tx) error {
		cur, ok, err := tx.File(f.Key())
		if err != nil {
			return err
		}
		if ok && (cur.Done || string(cur.SHA256) != string(f.SHA256)) {
			// Written again and re-hashed meanwhile (deleted and
			// replaced): that record is the file now, and must not be
			// closed in the place of the vanished one.
			return nil
		}
		_, err = tx.AppendEvent(&idkpb.Event{TimeUnixNano: s.cfg.Clock.Now().UnixNano(), Body: &idkpb.Event_Integrity{Integrity: &idkpb.Integrity{
			Kind: idkpb.Integrity_KIND_MISSING, NumSnim: f.NumSnim, Name: f.Name, FirstSha256: f.SHA256}}})
		if err != nil {
			return err
		}
		f.Done, f.DoneAt, f.StoredAs = true, s.cfg.Clock.Now(), ""
		return tx.PutFile(f)
	})
}

// markRejected sets aside a file the collector will never store: done in
// the spool with nothing stored, so it is never offered again, and an
// Integrity event with the collector's reason, so the collector still
// learns that the file exists. The file stays in the scanner's folder.
func (s *Shipper) markRejected(f spool.File, offer *idkpb.FileOffer, reason string) error {
	rejected := false
	err := s.cfg.Spool.Update(func(tx *spool.Tx) error {
		cur, ok, err := tx.File(f.Key())
		if err != nil {
			return err
		}
		if ok && string(cur.SHA256) != string(f.SHA256) {
			return nil // re-hashed meanwhile: the new content is offered on its own
		}
		_, err = tx.AppendEvent(&idkpb.Event{TimeUnixNano: s.cfg.Clock.Now().UnixNano(), Body: &idkpb.Event_Integrity{Integrity: &idkpb.Integrity{
			Kind: idkpb.Integrity_KIND_REJECTED, NumSnim: f.NumSnim, Name: offer.Name, OriginalName: offer.OriginalName,
			FirstSha256: f.SHA256, Reason: reason}}})
		if err != nil {
			return err
		}
		f.Done, f.DoneAt, f.StoredAs = true, s.cfg.Clock.Now(), ""
		rejected = true
		return tx.PutFile(f)
	})
	if err != nil {
		return fmt.Errorf("set aside %s: %w", f.Key(), err)
	}
	if rejected {
		s.cfg.Metrics.FilesRejected.Inc()
		s.cfg.Log.Error("collector rejected a scan file for good; it stays in the scanner's folder and is not offered again",
			"file", f.Path, "num_snim", f.NumSnim, "name", f.Name, "offered_as", offer.Name, "reason", reason)
	}
	return nil
}

// requeued reports whether the spool no longer holds f as it was offered:
// re-hashed to new content, or done.
func (s *Shipper) requeued(f spool.File) bool {
	var cur spool.File
	var ok bool
	err := s.cfg.Spool.View(func(tx *spool.Tx) error {
		var err error
		cur, ok, err = tx.File(f.Key())
		return err
	})
	return err == nil && (!ok || cur.Done || string(cur.SHA256) != string(f.SHA256))
}

func (s *Shipper) markDone(f spool.File, storedAs string) error {
	return s.cfg.Spool.Update(func(tx *spool.Tx) error {
		cur, ok, err := tx.File(f.Key())
		if err != nil {
			return err
		}
		if ok && string(cur.SHA256) != string(f.SHA256) {
			return nil // re-hashed meanwhile: the new content still has to go
		}
		f.Done, f.DoneAt, f.StoredAs = true, s.cfg.Clock.Now(), storedAs
		return tx.PutFile(f)
	})
}
