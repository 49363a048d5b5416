package ingest_test

import (
	"crypto/sha256"
	"fmt"
	"path/filepath"
	"reflect"
	"sync/atomic"
	"testing"
	"time"

	"idk/collector/availability"
	"idk/collector/cases"
	"idk/collector/ingest"
	"idk/collector/integrity"
	"idk/collector/store"
	"idk/internal/clock"
	"idk/protocol"
	"idk/protocol/idkpb"
	"idk/simulator/simclock"
)

var moscow = time.FixedZone("MSK", 3*3600)

// countingLog counts the reads of the event log, which start-up must not
// make once the consumers' state exists.
type countingLog struct {
	ingest.Log
	reads atomic.Int64
}

func (l *countingLog) Events(after []byte, limit int, fn func([]byte, *idkpb.Device, uint64, *idkpb.Event) error) error {
	l.reads.Add(1)
	return l.Log.Events(after, limit, fn)
}

// collector is what idk-collector's run builds before it serves: the
// store, every consumer, and the ingest path loaded.
type collector struct {
	opening time.Duration // of the store alone
	st      *store.Store
	log     *countingLog
	tracker *availability.Tracker
	checker *integrity.Checker
	engine  *cases.Engine
	feed    *cases.Feed
	in      *ingest.Ingest
}

func openCollector(tb testing.TB, dir string, clk clock.Clock) *collector {
	tb.Helper()
	start := time.Now()
	st, err := store.Open(filepath.Join(dir, "data"), store.Options{Location: moscow, Clock: clk})
	if err != nil {
		tb.Fatal(err)
	}
	opening := time.Since(start)
	engine, err := cases.Open(filepath.Join(dir, "data", "cases.db"), moscow, clk)
	if err != nil {
		st.Close()
		tb.Fatal(err)
	}
	c := &collector{opening: opening, st: st, engine: engine, log: &countingLog{Log: ingest.FromStore(st)}}
	c.tracker = availability.NewTracker(moscow, clk)
	c.checker = integrity.New(nil, c.log)
	c.feed = cases.NewFeed(engine, nil)
	journal := availability.NewJournal(c.tracker)
	c.in = ingest.New(ingest.Config{
		Log:       c.log,
		Consumers: map[string]ingest.Consumer{"availability": journal, "integrity": c.checker, "cases": c.feed},
		Followers: []ingest.Follower{journal, c.feed},
	})
	if err := c.in.Load(); err != nil {
		c.close()
		tb.Fatal(err)
	}
	return c
}

func (c *collector) close() {
	c.engine.Close()
	c.st.Close()
}

// figures is what a restart must keep.
type figures struct {
	Today, Yesterday, Old []availability.Row
	Incidents             []availability.Incident
	Breaks, Missing       int
	State                 idkpb.DeviceState
	OpenCases             int
}

func (c *collector) figures(t *testing.T, numIDK string, now time.Time) figures {
	t.Helper()
	f := figures{
		Today:     c.tracker.Rows(numIDK, now),
		Yesterday: c.tracker.Rows(numIDK, now.AddDate(0, 0, -1)),
		Old:       c.tracker.Rows(numIDK, now.AddDate(0, 0, -12)),
		Incidents: c.tracker.Incidents(numIDK),
		State:     c.feed.State(numIDK),
		OpenCases: len(c.engine.OpenCases()),
	}
	var err error
	if f.Breaks, _, f.Missing, err = c.checker.Counts(numIDK); err != nil {
		t.Fatal(err)
	}
	return f
}

var dev = &idkpb.Device{NumIdk: "850591", TypeIdk: 2, KodTo: "10216100", NaimTo: "ТЕСТ", NaimZtk: "МАПП", DislIdk: 1}

func identity(n int64) time.Time { return time.Unix(0, n) }

// history is a day of an ИДК's life: changes weeks ago (outside the
// tracker's window), an incident yesterday, scans with a gap in their
// chain, a missing file, and the ИДК working now.
func history(now time.Time) []*idkpb.Event {
	var evs []*idkpb.Event
	add := func(at time.Time, ev *idkpb.Event) {
		ev.Seq = uint64(len(evs) + 1)
		ev.TimeUnixNano = at.UnixNano()
		evs = append(evs, ev)
	}
	state := func(at time.Time, s idkpb.DeviceState) {
		add(at, &idkpb.Event{Body: &idkpb.Event_State{State: &idkpb.StateChange{State: s, Source: "controller"}}})
	}
	state(now.AddDate(0, 0, -20), idkpb.DeviceState_DEVICE_STATE_WORKING)
	state(now.AddDate(0, 0, -10), idkpb.DeviceState_DEVICE_STATE_WAITING)
	state(now.Add(-30*time.Hour), idkpb.DeviceState_DEVICE_STATE_INOPERABLE)
	state(now.Add(-26*time.Hour), idkpb.DeviceState_DEVICE_STATE_WAITING)
	var chain []byte
	for i, snim := range []string{"A1", "A2", "A3", "A4"} {
		idx := uint64(i + 1)
		chain = protocol.ChainNext(chain, idx, snim)
		if snim == "A3" {
			continue // never delivered: one chain break
		}
		add(now.Add(-time.Duration(5-i)*time.Hour), &idkpb.Event{Body: &idkpb.Event_ScanSeen{ScanSeen: &idkpb.ScanSeen{NumSnim: snim, Index: idx, Chain: chain}}})
	}
	add(now.Add(-90*time.Minute), &idkpb.Event{Body: &idkpb.Event_Integrity{Integrity: &idkpb.Integrity{Kind: idkpb.Integrity_KIND_MISSING, NumSnim: "A2", Name: "x.raw"}}})
	state(now.Add(-time.Hour), idkpb.DeviceState_DEVICE_STATE_WORKING)
	return evs
}

func TestRestartKeepsStateWithoutReplay(t *testing.T) {
	now := time.Date(2026, 11, 22, 15, 0, 0, 0, moscow)
	clk := simclock.New(now)
	dir := t.TempDir()
	c := openCollector(t, dir, clk)
	if _, err := c.in.Ingest(dev, 1, history(now), identity); err != nil {
		t.Fatal(err)
	}
	before := c.figures(t, dev.NumIdk, now)
	if before.Breaks != 1 || before.Missing != 1 || before.State != idkpb.DeviceState_DEVICE_STATE_WORKING || len(before.Incidents) != 1 || before.Today == nil {
		t.Fatalf("before the restart: %+v", before)
	}
	if before.Old != nil {
		t.Fatalf("a day older than the tracker's window has rows: %+v", before.Old)
	}
	c.close()

	c = restart(t, dir, now, before)
	defer c.close()
	// The ИДК was WORKING before the restart: more WORKING is no arrival,
	// and the chain goes on from where it was.
	next := &idkpb.Event{Seq: 100, TimeUnixNano: now.UnixNano(), Body: &idkpb.Event_State{State: &idkpb.StateChange{State: idkpb.DeviceState_DEVICE_STATE_WORKING}}}
	if _, err := c.in.Ingest(dev, 1, []*idkpb.Event{next}, identity); err != nil {
		t.Fatal(err)
	}
	if n := len(c.engine.OpenCases()); n != before.OpenCases {
		t.Fatalf("open cases %d after a repeated WORKING, want %d", n, before.OpenCases)
	}
}

func TestBackfillRunsOnce(t *testing.T) {
	now := time.Date(2026, 11, 22, 15, 0, 0, 0, moscow)
	clk := simclock.New(now)

	// What a collector that ingested the events live shows.
	live := openCollector(t, t.TempDir(), clk)
	if _, err := live.in.Ingest(dev, 1, history(now), identity); err != nil {
		t.Fatal(err)
	}
	want := live.figures(t, dev.NumIdk, now)
	live.close()

	// A collector from before ingest: the events are in the log, the
	// consumers have nothing.
	dir := t.TempDir()
	st, err := store.Open(filepath.Join(dir, "data"), store.Options{Location: moscow, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.PutDevice(dev); err != nil {
		t.Fatal(err)
	}
	if _, err := st.PutEvents(dev, 1, history(now), identity, nil); err != nil {
		t.Fatal(err)
	}
	st.Close()

	c := openCollector(t, dir, clk)
	if c.log.reads.Load() == 0 {
		t.Fatal("the upgraded collector did not read its event log")
	}
	got := c.figures(t, dev.NumIdk, now)
	// The engine never had these events: the backfill fills durable
	// state, it does not open cases.
	want.OpenCases = got.OpenCases
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("after the backfill:\n%+v\nwant:\n%+v", got, want)
	}
	c.close()

	restart(t, dir, now, want).close()
}

// restart opens the collector in dir again and checks that it read
// nothing of the event log and shows the figures want.
func restart(t *testing.T, dir string, now time.Time, want figures) *collector {
	t.Helper()
	c := openCollector(t, dir, simclock.New(now))
	if n := c.log.reads.Load(); n != 0 {
		c.close()
		t.Fatalf("start-up read the event log %d times", n)
	}
	if got := c.figures(t, dev.NumIdk, now); !reflect.DeepEqual(got, want) {
		c.close()
		t.Fatalf("after the restart:\n%+v\nwant:\n%+v", got, want)
	}
	return c
}

// generate adds days of history, ending at now, for idks ИДК with scans
// scans a day each: per scan a ScanSeen, a form revision and two state
// changes (WORKING, WAITING). It goes through the ingest path with every
// consumer, one batch per ИДК and day. The forms of one ИДК and day are
// one content under the day's first scan, so the store writes one form
// file per ИДК and day rather than millions: the event log still holds
// every form event whole, and the files are nothing start-up reads.
type generator struct {
	idks, scans int
	now         time.Time
	days        int                  // generated so far, back from now
	seq         map[string]uint64    // by NUM_IDK
	chain       map[string]chainHead // by NUM_IDK
}

type chainHead struct {
	index uint64
	chain []byte
}

func newGenerator(idks, scans int, now time.Time) *generator {
	return &generator{idks: idks, scans: scans, now: now, seq: map[string]uint64{}, chain: map[string]chainHead{}}
}

// extend generates days more, older than those generated so far.
func (g *generator) extend(tb testing.TB, dir string, days int) {
	tb.Helper()
	clk := simclock.New(g.now)
	st, err := store.Open(filepath.Join(dir, "data"), store.Options{Location: moscow, Clock: clk})
	if err != nil {
		tb.Fatal(err)
	}
	defer st.Close()
	tracker := availability.NewTracker(moscow, clk)
	in := ingest.New(ingest.Config{Log: ingest.FromStore(st), Consumers: map[string]ingest.Consumer{
		"availability": availability.NewJournal(tracker),
		"integrity":    integrity.New(nil, ingest.FromStore(st)),
		"cases":        cases.NewFeed(nil, nil),
	}})
	if err := in.Load(); err != nil {
		tb.Fatal(err)
	}
	form := []byte(`<?xml version="1.0" encoding="windows-1251"?><FORM><NUM_SNIM>x</NUM_SNIM><DECISION>1</DECISION></FORM>`)
	sum := sha256.Sum256(form)
	for d := g.days; d < g.days+days; d++ {
		day := g.now.Truncate(24*time.Hour).AddDate(0, 0, -d)
		for i := range g.idks {
			dv := &idkpb.Device{NumIdk: fmt.Sprintf("8505%02d", i), TypeIdk: 2, KodTo: "10216100", DislIdk: 1}
			if d == 0 {
				if err := st.PutDevice(dv); err != nil {
					tb.Fatal(err)
				}
			}
			evs := make([]*idkpb.Event, 0, 4*g.scans)
			add := func(at time.Time, ev *idkpb.Event) {
				g.seq[dv.NumIdk]++
				ev.Seq, ev.TimeUnixNano = g.seq[dv.NumIdk], at.UnixNano()
				evs = append(evs, ev)
			}
			first := ""
			for s := range g.scans {
				at := day.Add(time.Duration(s) * 24 * time.Hour / time.Duration(g.scans))
				h := g.chain[dv.NumIdk]
				snim := fmt.Sprintf("D%dS%d", d, s)
				if first == "" {
					first = snim
				}
				h.index++
				h.chain = protocol.ChainNext(h.chain, h.index, snim)
				g.chain[dv.NumIdk] = h
				add(at, &idkpb.Event{Body: &idkpb.Event_State{State: &idkpb.StateChange{State: idkpb.DeviceState_DEVICE_STATE_WORKING, Source: "controller"}}})
				add(at, &idkpb.Event{Body: &idkpb.Event_ScanSeen{ScanSeen: &idkpb.ScanSeen{NumSnim: snim, Index: h.index, Chain: h.chain}}})
				add(at.Add(time.Minute), &idkpb.Event{Body: &idkpb.Event_Form{Form: &idkpb.FormRevision{NumSnim: first, Revision: 1, Content: form, Sha256: sum[:]}}})
				add(at.Add(2*time.Minute), &idkpb.Event{Body: &idkpb.Event_State{State: &idkpb.StateChange{State: idkpb.DeviceState_DEVICE_STATE_WAITING, Source: "controller"}}})
			}
			if _, err := in.Ingest(dv, 1, evs, identity); err != nil {
				tb.Fatal(err)
			}
		}
	}
	g.days += days
}

// startup opens the collector in dir as run does before serving, and
// returns how long that took, how much of it opening the store took, and
// how often it read the event log.
func startup(tb testing.TB, dir string, now time.Time) (took, opening time.Duration, reads int64) {
	tb.Helper()
	start := time.Now()
	c := openCollector(tb, dir, simclock.New(now))
	took = time.Since(start)
	reads = c.log.reads.Load()
	c.close()
	return took, c.opening, reads
}

func TestStartupDoesNotReadTheLog(t *testing.T) {
	now := time.Date(2026, 11, 22, 15, 0, 0, 0, moscow)
	dir := t.TempDir()
	g := newGenerator(5, 300, now)
	g.extend(t, dir, 1)
	one, _, reads := startup(t, dir, now)
	if reads != 0 {
		t.Fatalf("start-up with 1 day read the event log %d times", reads)
	}
	g.extend(t, dir, 2)
	three, _, reads := startup(t, dir, now)
	if reads != 0 {
		t.Fatalf("start-up with 3 days read the event log %d times", reads)
	}
	t.Logf("start-up: 1 day %v, 3 days %v", one, three)
	// Generous: the machine is shared; replaying would take about 3 times
	// as long.
	if three > 2*one+500*time.Millisecond {
		t.Fatalf("start-up grew with history: 1 day %v, 3 days %v", one, three)
	}
}

// BenchmarkStartup prints the collector's start-up time with 1, 30 and
// 365 days of events of 50 ИДК with 300 scans a day each (make bench).
// Generating the year takes minutes and a few GB of disk.
func BenchmarkStartup(b *testing.B) {
	now := time.Date(2026, 11, 22, 15, 0, 0, 0, moscow)
	dir := b.TempDir()
	g := newGenerator(50, 300, now)
	var took, opening []time.Duration
	for _, days := range []int{1, 30, 365} {
		b.Run(fmt.Sprintf("days=%d", days), func(b *testing.B) {
			gen := time.Now()
			g.extend(b, dir, days-g.days)
			b.Logf("generated %d days in %v", days, time.Since(gen).Round(time.Second))
			var d, o time.Duration
			for b.Loop() {
				var reads int64
				if d, o, reads = startup(b, dir, now); reads != 0 {
					b.Fatalf("start-up read the event log %d times", reads)
				}
			}
			b.ReportMetric(d.Seconds(), "startup-s")
			b.ReportMetric(o.Seconds(), "store-open-s")
			took, opening = append(took, d), append(opening, o)
		})
	}
	if len(took) == 3 {
		ms := func(d time.Duration) time.Duration { return d.Round(time.Millisecond) }
		// The tracker keeps availability.Retention (8 days): past that
		// window start-up should not grow, so 365 days is compared with 30.
		fmt.Printf("collector start-up (50 ИДК × 300 scans a day): 1 day %v, 30 days %v, 365 days %v; ratio 365/30 days %.2f (flat is 1)\n",
			ms(took[0]), ms(took[1]), ms(took[2]), took[2].Seconds()/took[1].Seconds())
		fmt.Printf("  of which opening the store (after a clean stop; a crash makes the next open check every key): %v, %v, %v; loading the consumers: %v, %v, %v\n",
			ms(opening[0]), ms(opening[1]), ms(opening[2]), ms(took[0]-opening[0]), ms(took[1]-opening[1]), ms(took[2]-opening[2]))
	}
}
