package ship

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/quic-go/quic-go"
	"google.golang.org/protobuf/proto"

	"idk/agent/spool"
	"idk/protocol"
	"idk/protocol/idkpb"
	"idk/protocol/transport"
	"idk/simulator/simclock"
)

// answer is what the fake collector says to the n-th offer (from 1) of a
// name: an offer status, and for STATUS_SEND the FileResult error after
// the commit ("" stores the file).
type answer func(name string, n int) (status idkpb.FileOfferReply_Status, msg, resultErr string)

// collector is a small fake of the collector's QUIC side: it speaks the
// protocol, answers offers as told and records what it was offered and
// what it stored.
type collector struct {
	addr   string
	tls    *tls.Config // for the agent: trusts the collector's certificate
	answer answer

	mu     sync.Mutex
	offers map[string]int // by offered name
	last   map[string]*idkpb.FileOffer
	stored []string // offered names, in the order stored
	events []*idkpb.Event
	// statuses are the agent's reports, with the time on clk when each
	// arrived (zero without clk).
	clk      atomic.Pointer[simclock.Clock]
	statuses []statusAt
	batches  int // event batches received, with or without events

	// onOffer, if set, sees each file offer before it is answered (and
	// may hold it there); onEnd sees the end of each file stream. Set
	// them before the agent runs.
	onOffer, onEnd func(*idkpb.FileOffer)
	// ackGate, if set before the agent runs, holds every answer to an
	// event batch until it is closed; the batches are read and recorded
	// meanwhile, as the collector reads on while its answers travel.
	ackGate chan struct{}
	// helloReply, if set before the agent runs, answers every hello.
	helloReply *idkpb.HelloReply
}

type statusAt struct {
	st *idkpb.AgentStatus
	at time.Time
}

func startCollector(t *testing.T, a answer) *collector {
	t.Helper()
	reg := newRegion(t)
	ln, err := quic.ListenAddr("127.0.0.1:0", reg.server, transport.QUICConfig())
	if err != nil {
		t.Fatal(err)
	}
	c := &collector{
		addr:   ln.Addr().String(),
		tls:    reg.client,
		answer: a,
		offers: map[string]int{},
		last:   map[string]*idkpb.FileOffer{},
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() {
		cancel()
		ln.Close()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			conn, err := ln.Accept(ctx)
			if err != nil {
				return
			}
			wg.Go(func() {
				for {
					st, err := conn.AcceptStream(ctx)
					if err != nil {
						return
					}
					wg.Go(func() {
						defer transport.EndStream(st)
						c.serve(st)
					})
				}
			})
		}
	})
	return c
}

func (c *collector) serve(st *quic.Stream) {
	w, r := protocol.NewWriter(st), protocol.NewReader(st)
	var h idkpb.StreamHeader
	if r.Read(&h) != nil {
		return
	}
	switch h.Kind {
	case idkpb.StreamKind_STREAM_KIND_HELLO:
		var hello idkpb.Hello
		if r.Read(&hello) == nil {
			rep := &idkpb.HelloReply{}
			if c.helloReply != nil {
				rep = c.helloReply
			}
			w.Write(rep)
		}
	case idkpb.StreamKind_STREAM_KIND_EVENTS:
		acks := make(chan *idkpb.EventAck, 1024)
		written := make(chan struct{})
		go func() {
			defer close(written)
			for ack := range acks {
				if c.ackGate != nil {
					<-c.ackGate
				}
				if w.Write(ack) != nil {
					return
				}
			}
		}()
		defer func() {
			close(acks)
			<-written
		}()
		for {
			var b idkpb.EventBatch
			if r.Read(&b) != nil {
				return
			}
			c.mu.Lock()
			c.events = append(c.events, b.Events...)
			c.batches++
			if b.Status != nil {
				var at time.Time
				if clk := c.clk.Load(); clk != nil {
					at = clk.Now()
				}
				c.statuses = append(c.statuses, statusAt{b.Status, at})
			}
			c.mu.Unlock()
			acks <- &idkpb.EventAck{Stored: uint32(len(b.Events))}
		}
	case idkpb.StreamKind_STREAM_KIND_FILE:
		var o idkpb.FileOffer
		if r.Read(&o) != nil {
			return
		}
		if c.onOffer != nil {
			c.onOffer(&o)
		}
		// The end is told before the stream's last answer: the agent may
		// start its next file the moment it has it.
		end := sync.OnceFunc(func() {
			if c.onEnd != nil {
				c.onEnd(&o)
			}
		})
		defer end()
		c.mu.Lock()
		c.offers[o.Name]++
		c.last[o.Name] = &o
		n := c.offers[o.Name]
		c.mu.Unlock()
		status, msg, resultErr := c.answer(o.Name, n)
		// "collector disk full" is the one refusal that holds for every
		// file, as the real collector says it.
		allFiles := status == idkpb.FileOfferReply_STATUS_REFUSED && msg == "collector disk full"
		if status != idkpb.FileOfferReply_STATUS_SEND {
			end()
		}
		if w.Write(&idkpb.FileOfferReply{Status: status, Error: msg, AllFiles: allFiles}) != nil || status != idkpb.FileOfferReply_STATUS_SEND {
			return
		}
		h := sha256.New()
		for {
			var d idkpb.FileData
			if r.Read(&d) != nil {
				return
			}
			if ch := d.GetChunk(); ch != nil {
				h.Write(ch.Data)
				continue
			}
			end()
			if string(d.GetCommit().GetSha256()) != string(h.Sum(nil)) || string(o.Sha256) != string(h.Sum(nil)) {
				w.Write(&idkpb.FileResult{Restart: true})
				return
			}
			if resultErr != "" {
				w.Write(&idkpb.FileResult{Error: resultErr})
				return
			}
			c.mu.Lock()
			c.stored = append(c.stored, o.Name)
			c.mu.Unlock()
			w.Write(&idkpb.FileResult{StoredAs: "850591/" + o.NumSnim + "/" + o.Name})
			return
		}
	}
}

func (c *collector) offered(name string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.offers[name]
}

func (c *collector) storedNames() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.stored)
}

func (c *collector) integrity() []*idkpb.Integrity {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*idkpb.Integrity
	for _, ev := range c.events {
		if ig := ev.GetIntegrity(); ig != nil {
			out = append(out, ig)
		}
	}
	return out
}

// agent is a shipper on a spool of real files, with a virtual clock that
// run moves on a hundred times faster than real time, so a backoff of
// seconds takes milliseconds, and the offers counted against the virtual
// time show whether it waited.
type agent struct {
	sp      *spool.Spool
	dir     string
	clk     *simclock.Clock
	start   time.Time
	metrics *Metrics
	sh      *Shipper
	n       int // files written
}

// newAgent returns an agent for c; run starts its shipper. tune, if
// given, adjusts the shipper's Config.
func newAgent(t *testing.T, c *collector, tune ...func(*Config)) *agent {
	t.Helper()
	dir := t.TempDir()
	sp, err := spool.Open(filepath.Join(dir, "spool.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sp.Close() })
	start := time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC)
	a := &agent{sp: sp, dir: dir, clk: simclock.New(start), start: start}
	a.metrics = NewMetrics(prometheus.NewRegistry(), sp, a.clk)
	cfg := Config{
		Addr: c.addr, TLS: c.tls, QUIC: transport.QUICConfig(), Device: &idkpb.Device{NumIdk: "850591"},
		Spool: sp, Metrics: a.metrics, Log: slog.New(slog.DiscardHandler),
		Clock: a.clk,
	}
	for _, f := range tune {
		f(&cfg)
	}
	a.sh = New(cfg)
	return a
}

func (a *agent) run(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		a.sh.Run(ctx)
	}()
	go func() {
		for ctx.Err() == nil {
			time.Sleep(time.Millisecond)
			a.clk.Advance(100 * time.Millisecond)
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
}

// queue writes a scan file and queues it, behind those queued before,
// as first seen at the start of the agent's clock.
func (a *agent) queue(t *testing.T, name string) {
	t.Helper()
	a.queueData(t, name, []byte("content of "+name), a.start)
}

// queueData is queue with the file's content and the time it was first
// seen.
func (a *agent) queueData(t *testing.T, name string, data []byte, firstSeen time.Time) {
	t.Helper()
	a.n++
	path := filepath.Join(a.dir, fmt.Sprintf("f%03d", a.n))
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	f := spool.File{NumSnim: "S1", Name: name, Path: path, Kind: idkpb.FileKind_FILE_KIND_DOCUMENT,
		Size: int64(len(data)), SHA256: sum[:], ScanTime: a.start, FirstSeen: firstSeen}
	if err := a.sp.Update(func(tx *spool.Tx) error { return tx.PutFile(f) }); err != nil {
		t.Fatal(err)
	}
}

// files lists the spool's pending files, oldest first.
func (a *agent) files(t *testing.T) []string {
	t.Helper()
	var keys []string
	for {
		f, err := a.sp.NextFile(func(key string) bool { return slices.Contains(keys, key) })
		if errors.Is(err, spool.ErrEmpty) {
			return keys
		}
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, f.Key())
	}
}

func (a *agent) record(t *testing.T, key string) spool.File {
	t.Helper()
	var f spool.File
	var ok bool
	err := a.sp.View(func(tx *spool.Tx) error {
		var err error
		f, ok, err = tx.File(key)
		return err
	})
	if err != nil || !ok {
		t.Fatalf("spool record %s: %v %v", key, ok, err)
	}
	return f
}

// elapsed is the virtual time the shipper has waited.
func (a *agent) elapsed() time.Duration { return a.clk.Now().Sub(a.start) }

// maxOffers is the most offers of one file that a shipper waiting as it
// should (retryMin doubling to retryMax) can make in elapsed virtual time.
func maxOffers(elapsed time.Duration) int {
	n, at, wait := 1, time.Duration(0), retryMin
	for at+wait <= elapsed {
		at += wait
		wait = min(2*wait, retryMax)
		n++
	}
	return n
}

// waitsItsBackoff waits until the file behind is stored and the file
// name was offered at least three times, and fails if name was offered
// more often than its backoff allows.
func (a *agent) waitsItsBackoff(t *testing.T, c *collector, name, behind string) {
	t.Helper()
	eventually(t, behind+", behind "+name+", stored", func() bool { return slices.Contains(c.storedNames(), behind) })
	eventually(t, name+" offered again", func() bool { return c.offered(name) >= 3 })
	n := c.offered(name)
	if limit := maxOffers(a.elapsed()); n > limit {
		t.Fatalf("%s offered %d times in %v of waiting; at most %d with its backoff", name, n, a.elapsed(), limit)
	}
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// queueBehindBad queues "bad.jpg" at the head and 99 good files behind it.
func queueBehindBad(t *testing.T, a *agent) []string {
	var good []string
	a.queue(t, "bad.jpg")
	for i := range 99 {
		name := fmt.Sprintf("doc_%03d.jpg", i)
		a.queue(t, name)
		good = append(good, name)
	}
	return good
}

func TestRefusedHeadDoesNotHoldBackTheQueue(t *testing.T) {
	c := startCollector(t, func(name string, n int) (idkpb.FileOfferReply_Status, string, string) {
		if name == "bad.jpg" {
			return idkpb.FileOfferReply_STATUS_REFUSED, "disk full", ""
		}
		return idkpb.FileOfferReply_STATUS_SEND, "", ""
	})
	a := newAgent(t, c)
	good := queueBehindBad(t, a)
	a.run(t)

	eventually(t, "the 99 files behind the refused one", func() bool { return len(c.storedNames()) == len(good) })
	// Several files are in flight at once: they are stored in the order
	// their transfers end.
	if got := slices.Sorted(slices.Values(c.storedNames())); !slices.Equal(got, good) {
		t.Fatalf("stored %v, want the 99", got)
	}
	// The refused file is kept, and offered again now and then: never
	// faster than its backoff allows on the virtual clock, which only a
	// waiting shipper moves. A shipper that spun would offer it many times
	// with the clock standing still.
	eventually(t, "the refused file offered again", func() bool { return c.offered("bad.jpg") >= 4 })
	n := c.offered("bad.jpg") // before the clock is read: the clock is at least where it was at this offer
	if limit := maxOffers(a.elapsed()); n > limit {
		t.Fatalf("refused file offered %d times in %v of waiting; at most %d with its backoff", n, a.elapsed(), limit)
	}
	// The collector stores before it answers, and the agent marks a file
	// done on the answer, while the clock runs on.
	eventually(t, "only the refused file pending", func() bool { return slices.Equal(a.files(t), []string{"S1/bad.jpg"}) })
}

func TestRejectedFileIsSetAsideAndNeverOfferedAgain(t *testing.T) {
	const reason = `file name "bad.jpg": not storable`
	c := startCollector(t, func(name string, n int) (idkpb.FileOfferReply_Status, string, string) {
		if name == "bad.jpg" {
			return idkpb.FileOfferReply_STATUS_REJECTED, reason, ""
		}
		return idkpb.FileOfferReply_STATUS_SEND, "", ""
	})
	a := newAgent(t, c)
	good := queueBehindBad(t, a)
	a.run(t)

	eventually(t, "the 99 files behind the rejected one", func() bool { return len(c.storedNames()) == len(good) })
	eventually(t, "the REJECTED integrity event at the collector", func() bool { return len(c.integrity()) > 0 })
	ig := c.integrity()
	if len(ig) != 1 || ig[0].Kind != idkpb.Integrity_KIND_REJECTED || ig[0].NumSnim != "S1" || ig[0].Name != "bad.jpg" ||
		ig[0].Reason != reason || len(ig[0].FirstSha256) != 32 || ig[0].OriginalName != "" {
		t.Fatalf("integrity events: %v", ig)
	}
	if f := a.record(t, "S1/bad.jpg"); !f.Done || f.StoredAs != "" {
		t.Fatalf("rejected file's record: %+v", f)
	}
	if got := testutil.ToFloat64(a.metrics.FilesRejected); got != 1 {
		t.Fatalf("idk_agent_files_rejected_total = %v, want 1", got)
	}
	// Never again: not on a new file's arrival, nor after a long while.
	a.queue(t, "late.jpg")
	eventually(t, "a file queued later", func() bool { return len(c.storedNames()) == len(good)+1 })
	a.clk.Advance(time.Hour)
	a.queue(t, "later.jpg")
	eventually(t, "a file queued an hour later", func() bool { return len(c.storedNames()) == len(good)+2 })
	if n := c.offered("bad.jpg"); n != 1 {
		t.Fatalf("rejected file offered %d times, want 1", n)
	}
	// The collector stores before it answers, and the agent marks a file
	// done on the answer.
	eventually(t, "an empty queue", func() bool { return len(a.files(t)) == 0 })
}

func TestRefusedFileIsRetriedAndStored(t *testing.T) {
	// The virtual times of the offers, read on the agent's clock, which the
	// collector's goroutines learn through clk.
	var (
		clk    atomic.Pointer[simclock.Clock]
		mu     sync.Mutex
		offers []time.Time
	)
	c := startCollector(t, func(name string, n int) (idkpb.FileOfferReply_Status, string, string) {
		if name != "a%3Ab.jpg" {
			return idkpb.FileOfferReply_STATUS_SEND, "", ""
		}
		mu.Lock()
		offers = append(offers, clk.Load().Now())
		mu.Unlock()
		switch n {
		case 1, 2:
			return idkpb.FileOfferReply_STATUS_REFUSED, "busy", ""
		case 3: // taken, then not stored: as much "not now" as a refusal
			return idkpb.FileOfferReply_STATUS_SEND, "", "disk full"
		}
		return idkpb.FileOfferReply_STATUS_SEND, "", ""
	})
	a := newAgent(t, c)
	clk.Store(a.clk)
	a.queue(t, "a:b.jpg") // offered under its safe name
	a.queue(t, "next.jpg")
	a.run(t)

	eventually(t, "the refused file stored", func() bool { return len(c.storedNames()) == 2 })
	if got := c.storedNames(); !slices.Equal(got, []string{"next.jpg", "a%3Ab.jpg"}) {
		t.Fatalf("stored %v: the file behind should not have waited", got)
	}
	if n := c.offered("a%3Ab.jpg"); n != 4 {
		t.Fatalf("offered %d times, want 4", n)
	}
	// Three waits, 1 s, 2 s and 4 s, each on the file's own clock. The
	// clock runs on while the shipper works, so a gap may be longer, never
	// shorter.
	mu.Lock()
	for i, want := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second} {
		if gap := offers[i+1].Sub(offers[i]); gap < want {
			t.Errorf("offer %d came %v after the one before, want at least its backoff of %v", i+2, gap, want)
		}
	}
	mu.Unlock()
	c.mu.Lock()
	o := c.last["a%3Ab.jpg"]
	c.mu.Unlock()
	if o.OriginalName != "a:b.jpg" {
		t.Fatalf("offer's original_name = %q, want %q", o.OriginalName, "a:b.jpg")
	}
	eventually(t, "an empty queue", func() bool { return len(a.files(t)) == 0 })
	if f := a.record(t, "S1/a:b.jpg"); !f.Done || f.StoredAs != "850591/S1/a%3Ab.jpg" {
		t.Fatalf("record: %+v", f)
	}
}

// A file this PC cannot open (a path too long for the system, as on
// Windows) or read (here a folder where the file was) waits like a refused
// one, instead of ending the connection or being offered again at once,
// either of which would keep the files behind it waiting.
func TestUnreadableFileDoesNotHoldBackTheQueue(t *testing.T) {
	c := startCollector(t, func(string, int) (idkpb.FileOfferReply_Status, string, string) {
		return idkpb.FileOfferReply_STATUS_SEND, "", ""
	})
	a := newAgent(t, c)
	a.queue(t, "long.jpg")
	a.queue(t, "folder.jpg")
	a.queue(t, "next.jpg")
	long := a.record(t, "S1/long.jpg")
	long.Path = filepath.Join(a.dir, strings.Repeat("x", 250), strings.Repeat("y", 250), strings.Repeat("z", 5000))
	folder := a.record(t, "S1/folder.jpg")
	if err := a.sp.Update(func(tx *spool.Tx) error { return tx.PutFile(long) }); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(folder.Path); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(folder.Path, 0o755); err != nil {
		t.Fatal(err)
	}
	a.run(t)

	a.waitsItsBackoff(t, c, "folder.jpg", "next.jpg")
	if c.offered("long.jpg") != 0 {
		t.Fatal("a file that cannot be opened was offered")
	}
	if got := a.files(t); !slices.Equal(got, []string{"S1/long.jpg", "S1/folder.jpg"}) {
		t.Fatalf("pending %v, want the two unreadable files kept", got)
	}
}

// A full collector disk refuses every file: the shipper pauses its whole
// queue, backing off, instead of offering a long queue file by file.
func TestFullCollectorPausesTheWholeQueue(t *testing.T) {
	var full atomic.Bool
	full.Store(true)
	c := startCollector(t, func(name string, n int) (idkpb.FileOfferReply_Status, string, string) {
		if full.Load() {
			return idkpb.FileOfferReply_STATUS_REFUSED, "collector disk full", ""
		}
		return idkpb.FileOfferReply_STATUS_SEND, "", ""
	})
	a := newAgent(t, c)
	var names []string
	for i := range 50 {
		name := fmt.Sprintf("doc_%03d.jpg", i)
		a.queue(t, name)
		names = append(names, name)
	}
	a.run(t)
	eventually(t, "a few refusals", func() bool { return c.offered("doc_000.jpg") >= 3 })
	total := 0
	for _, name := range names {
		total += c.offered(name)
	}
	// The first window's files are refused together; after that each
	// pause lets one offer through: as many offers as one file's backoff
	// allows, not fifty per round.
	if limit := maxOffers(a.elapsed()) + DefaultWindowFiles; total > limit {
		t.Fatalf("%d offers in %v of a full collector; at most %d with one backoff for the queue", total, a.elapsed(), limit)
	}
	full.Store(false)
	eventually(t, "every file once the disk has room", func() bool { return len(c.storedNames()) == len(names) })
}

func (c *collector) reports() []statusAt {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.statuses)
}

// The agent reports its spool's backlog when it connects and, with no
// events to send, at least every statusEvery of its clock, in batches
// without events; once the backlog drains, it says so within statusMin.
func TestStatusReportsTheBacklogWithoutEvents(t *testing.T) {
	var accept atomic.Bool
	c := startCollector(t, func(string, int) (idkpb.FileOfferReply_Status, string, string) {
		if accept.Load() {
			return idkpb.FileOfferReply_STATUS_SEND, "", ""
		}
		return idkpb.FileOfferReply_STATUS_REFUSED, "busy", ""
	})
	a := newAgent(t, c)
	c.clk.Store(a.clk)
	a.queue(t, "a.jpg")
	a.clk.Advance(time.Minute)
	a.queue(t, "b.jpg") // first seen a minute after a.jpg: a.jpg is the oldest
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		a.sh.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})

	// At the connection, before the clock moves at all.
	eventually(t, "the status sent at the connection", func() bool { return len(c.reports()) > 0 })
	first := c.reports()[0]
	want := &idkpb.AgentStatus{BacklogFiles: 2, BacklogBytes: 2 * int64(len("content of a.jpg")), OldestUnsentUnixNano: a.start.UnixNano()}
	if !proto.Equal(first.st, want) {
		t.Fatalf("first status %v, want %v", first.st, want)
	}

	// step moves the agent's clock on in small steps, with real time for
	// the shipper to act between them, until cond holds.
	step := func(what string, cond func() bool) {
		t.Helper()
		giveUp := time.Now().Add(30 * time.Second)
		for !cond() {
			if time.Now().After(giveUp) {
				t.Fatalf("timed out waiting for %s (agent's clock at %v)", what, a.clk.Now())
			}
			a.clk.Advance(250 * time.Millisecond)
			time.Sleep(5 * time.Millisecond)
		}
	}
	// The refused files leave the spool as it was: the next report is
	// the periodic one, statusEvery after the first, not sooner. The
	// upper bound leaves the shipper a few steps of real time to send it.
	step("two more statuses", func() bool { return len(c.reports()) >= 3 })
	reps := c.reports()
	for i := 1; i < 3; i++ {
		gap := reps[i].at.Sub(reps[i-1].at)
		if gap < statusEvery || gap > statusEvery+5*time.Second {
			t.Errorf("status %d came %v after the one before, want %v (no events to carry it)", i+1, gap, statusEvery)
		}
		if !proto.Equal(reps[i].st, want) {
			t.Errorf("status %d: %v, want %v", i+1, reps[i].st, want)
		}
	}
	c.mu.Lock()
	batches, events := c.batches, len(c.events)
	c.mu.Unlock()
	if events != 0 || batches < 3 {
		t.Fatalf("%d batches with %d events: want status-only batches", batches, events)
	}

	// Once the collector takes the files, the drained backlog is reported
	// within statusMin of the spool's last change, not at the next
	// periodic report.
	accept.Store(true)
	step("the files stored", func() bool { return len(c.storedNames()) == 2 })
	stored := a.clk.Now()
	step("an empty backlog reported", func() bool {
		r := c.reports()
		return r[len(r)-1].st.BacklogFiles == 0
	})
	r := c.reports()
	last := r[len(r)-1]
	if !proto.Equal(last.st, &idkpb.AgentStatus{}) {
		t.Fatalf("status after the drain %v, want an empty backlog", last.st)
	}
	if late := last.at.Sub(stored); late > statusMin+5*time.Second {
		t.Fatalf("empty backlog reported %v after the files were stored, want within %v", late, statusMin)
	}
}

// A file whose content changed on disk after it was first seen (same
// size, so nothing the agent reads on the way tells) reaches the
// collector with the first-seen SHA-256 in its commit; the collector's
// hash disagrees and it answers Restart; the agent has the file hashed
// again, and its new content is shipped: the copy the collector stores
// is what is on disk, and the transfer is not counted as a damaged one.
func TestFileChangedOnDiskIsHashedAgainAndShipped(t *testing.T) {
	c := startCollector(t, sendAll)
	var rehashed atomic.Int32
	var a *agent
	a = newAgent(t, c, func(cfg *Config) {
		cfg.OnRehash = func(f spool.File) {
			// What the intake's Rehash does: the file's new content
			// replaces its record.
			rehashed.Add(1)
			data, err := os.ReadFile(f.Path)
			if err != nil {
				t.Error(err)
				return
			}
			sum := sha256.Sum256(data)
			f.SHA256, f.Size = sum[:], int64(len(data))
			if err := a.sp.Update(func(tx *spool.Tx) error { return tx.PutFile(f) }); err != nil {
				t.Error(err)
			}
		}
	})
	first := bytes.Repeat([]byte("first "), 400_000) // more than two chunks
	a.queueData(t, "img.jpg", first, a.start)
	now := bytes.Repeat([]byte("later "), 400_000)
	if err := os.WriteFile(filepath.Join(a.dir, "f001"), now, 0o644); err != nil {
		t.Fatal(err)
	}
	a.run(t)
	eventually(t, "img.jpg stored", func() bool { return slices.Contains(c.storedNames(), "img.jpg") })
	want := sha256.Sum256(now)
	c.mu.Lock()
	got := c.last["img.jpg"].Sha256
	c.mu.Unlock()
	if !bytes.Equal(got, want[:]) {
		t.Errorf("stored offer's SHA-256 %x, want the new content's %x", got, want)
	}
	if n := rehashed.Load(); n != 1 {
		t.Errorf("hashed again %d times, want 1", n)
	}
	if n := testutil.ToFloat64(a.metrics.FileRestarts); n != 0 {
		t.Errorf("idk_agent_file_restarts_total %v: a changed file is not a damaged transfer", n)
	}
}

// A Restart that hashing the file again does not explain (the copy was
// damaged on the way, or the file cannot be hashed now) is counted, and
// the file is offered again on its own backoff, not at once in a loop,
// while the files behind it are stored.
func TestUnexplainedRestartWaitsItsBackoff(t *testing.T) {
	c := startCollector(t, sendAll)
	var rehashed atomic.Int32
	a := newAgent(t, c, func(cfg *Config) {
		cfg.OnRehash = func(spool.File) { rehashed.Add(1) } // cannot read it: the record stays
	})
	a.queueData(t, "bad.jpg", bytes.Repeat([]byte("a"), 100), a.start)
	// On disk now: other bytes of the same size, which the agent will
	// not see until it can hash them again.
	if err := os.WriteFile(filepath.Join(a.dir, "f001"), bytes.Repeat([]byte("b"), 100), 0o644); err != nil {
		t.Fatal(err)
	}
	a.queue(t, "good.jpg")
	a.run(t)
	a.waitsItsBackoff(t, c, "bad.jpg", "good.jpg")
	if got := testutil.ToFloat64(a.metrics.FileRestarts); got < 2 {
		t.Errorf("idk_agent_file_restarts_total %v, want one per failed commit", got)
	}
	if rehashed.Load() < 2 {
		t.Errorf("hashed again %d times, want once per Restart", rehashed.Load())
	}
}
