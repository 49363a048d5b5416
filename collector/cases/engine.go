package cases

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"

	"idk/collector/kv"
	"idk/internal/clock"
	"idk/protocol"
)

// Retention is how long a case whose timers have all ended stays in
// memory after its last event. Matching, Cases, OpenCases and Unmatched
// see the cases in memory. Case, Breaches and WithoutReason reach older
// ones on disk. A case with a running timer stays in memory until the
// timer ends. Such a timer is an open breach someone must close.
const Retention = 8 * 24 * time.Hour

// MaxLivePerIDK bounds the cases of one ИДК held in memory. A busy ИДК
// has a few dozen open at once; more is a flood (see evictIdle).
const MaxLivePerIDK = 2000

// unmatchedAfter is how long a case may lack its image before Unmatched
// lists it. The time between a risk being detected and the object
// reaching the ИДК is normally well within it.
const unmatchedAfter = time.Hour

// DefaultBackdateWindow is how far in the past an event's time may be
// without a written reason (Event.Reason). An end event dated earlier
// can withdraw a breach already in table 4, so an event older than the
// window must say why it comes late.
const DefaultBackdateWindow = 24 * time.Hour

// DefaultClockOffsetLimit is how far an agent's clock may be off before
// the rows its events make are flagged (Row.ClockSuspect). The collector
// corrects the agent's times by the offset it measured at the hello, but
// a head of post signing table 4 must know that those times came from a
// wrong clock: the correction is as good as one measurement.
const DefaultClockOffsetLimit = 2 * time.Minute

// maxAhead is how far in the future an event's time may be. Corrected
// agent clocks and API clients drift by seconds. A time further ahead
// would decide a deadline before it came, so it is refused.
const maxAhead = time.Minute

var (
	// ErrInvalid is wrapped by errors about a malformed event or request.
	// The message names the field.
	ErrInvalid = errors.New("invalid request")
	// ErrNotFound is wrapped by errors about a case or breach that cannot
	// be found. The message names the field it was looked up by.
	ErrNotFound = errors.New("not found")
)

// invalid returns an error naming a bad field, wrapping ErrInvalid.
func invalid(format string, a ...any) error {
	return fmt.Errorf(format+": %w", append(a, ErrInvalid)...)
}

// Engine tracks the inspection cases. It is safe for concurrent use.
type Engine struct {
	db      kv.DB
	loc     *time.Location
	clock   clock.Clock
	metrics *metrics

	// wmu serialises the writers (Add, Tick, SetDevice, SetReason),
	// because where an event goes depends on the cases the previous
	// event left. A writer reads the fields below without mu, since no
	// one else changes them. It takes mu only to swap in what it has
	// stored. Readers therefore never wait for a disk sync.
	wmu sync.Mutex

	mu        sync.RWMutex
	cases     map[string]*record     // live cases: recent, running or without an image
	snim      map[string]string      // snimKey of live cases -> ID
	devices   map[string]Device      // NUM_IDK -> identity
	breached  map[string]breachState // every case with breach marks, live or not
	counts    map[countKey]uint64    // breach marks ever made: breaches_total
	unwatched map[string]uint64      // NUM_IDK -> running cases evicted over MaxLivePerIDK
	seq       uint64                 // the last case number given
	// sites is each ИДК's site history, from the feed (see stampSites).
	// Only writers use it, so it needs no lock beyond wmu.
	sites map[string][]siteChange
	// offsets is each ИДК's agent clock offset measured at its last
	// hello (SetClockOffset): collector clock minus agent clock.
	offsets map[string]time.Duration

	backdate atomic.Int64 // see SetBackdateWindow, in nanoseconds: the feed reads it too
	// offsetLimit: see SetClockOffsetLimit, in nanoseconds.
	offsetLimit atomic.Int64
}

// breachState summarises a breached case, so that the reports and the
// metrics need not read every old case.
type breachState struct {
	At       time.Time `json:"at"`       // its first standing breach: DATE_NAR
	Standing bool      `json:"standing"` // some mark is not withdrawn: it is a table 4 row
	Reasoned bool      `json:"reasoned"` // PRICH_NAR is given
	// First is its first mark, withdrawn or not: the date its history is
	// listed under once every mark is withdrawn.
	First time.Time `json:"first,omitzero"`
}

func stateOf(r *record) (breachState, bool) {
	if len(r.Breaches) == 0 {
		return breachState{}, false
	}
	at, standing := r.breachedAt()
	st := breachState{At: at, Standing: standing, Reasoned: r.Reason != ""}
	for _, m := range r.Breaches {
		if st.First.IsZero() || m.At.Before(st.First) {
			st.First = m.At
		}
	}
	return st, true
}

type countKey struct {
	numIDK string
	rule   Rule
}

// Open opens (creating if needed) the engine's bbolt file at path and
// runs the engine on it (see OpenDB). Close closes the file.
func Open(path string, loc *time.Location, clk clock.Clock) (*Engine, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 2 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("cases: open %s: %w", path, err)
	}
	if err := createBuckets(db); err != nil {
		db.Close()
		return nil, fmt.Errorf("cases: load %s: %w", path, err)
	}
	return openDB(kv.Bolt(db), " "+path, loc, clk)
}

// createBuckets creates every bucket of a new bbolt file. kv creates a
// bucket with its first key, but a file has always had all its buckets
// from the first Open, and tools that look inside it may expect them.
func createBuckets(db *bolt.DB) error {
	return db.Update(func(tx *bolt.Tx) error {
		for _, b := range buckets {
			if _, err := tx.CreateBucketIfNotExists([]byte(b)); err != nil {
				return fmt.Errorf("create bucket %s: %w", b, err)
			}
		}
		return nil
	})
}

// OpenDB runs the engine on db: its own bbolt file (kv.Bolt) or the
// region's shared database. The engine owns db from then on: Close
// closes it, and so does OpenDB when it fails. Dates (DATE_NAR, case IDs)
// are in loc, or time.Local if loc is nil. clk is the collector's clock,
// or clock.Real if nil; it decides the deadlines, so that tests and
// simulations can run an inspection in a moment. OpenDB loads the live
// cases and records at once every deadline that passed while the engine
// was closed, each dated by its deadline.
//
// Only one Engine may run on a store at a time, even a shared one: it
// holds the live cases, the case number and the counters in memory, read
// at OpenDB, and writes them back as its own, so a second engine on the
// same store would give the same case numbers and record the same
// deadlines twice.
func OpenDB(db kv.DB, loc *time.Location, clk clock.Clock) (*Engine, error) {
	return openDB(db, "", loc, clk)
}

// openDB is OpenDB with where (" " and the file's path, or "") in its
// errors, so that Open's errors name the file as they always have.
func openDB(db kv.DB, where string, loc *time.Location, clk clock.Clock) (*Engine, error) {
	if loc == nil {
		loc = time.Local
	}
	e := &Engine{
		db:        db,
		loc:       loc,
		clock:     clock.Or(clk),
		cases:     map[string]*record{},
		snim:      map[string]string{},
		devices:   map[string]Device{},
		breached:  map[string]breachState{},
		counts:    map[countKey]uint64{},
		unwatched: map[string]uint64{},
		sites:     map[string][]siteChange{},
		offsets:   map[string]time.Duration{},
	}
	e.backdate.Store(int64(DefaultBackdateWindow))
	e.offsetLimit.Store(int64(DefaultClockOffsetLimit))
	if err := e.load(); err != nil {
		db.Close()
		return nil, fmt.Errorf("cases: load%s: %w", where, err)
	}
	if err := e.Tick(); err != nil {
		db.Close()
		return nil, fmt.Errorf("cases: open%s: %w", where, err)
	}
	e.metrics = newMetrics(e)
	return e, nil
}

// Close closes the store. Everything is already stored.
func (e *Engine) Close() error {
	e.wmu.Lock()
	defer e.wmu.Unlock()
	if err := e.db.Close(); err != nil {
		return fmt.Errorf("cases: close: %w", err)
	}
	return nil
}

// SetBackdateWindow sets how far in the past an event's time may be
// without a reason (DefaultBackdateWindow until set). d must be positive.
func (e *Engine) SetBackdateWindow(d time.Duration) error {
	if d <= 0 {
		return fmt.Errorf("cases: backdate window %v: %w", d, invalid("the window must be positive"))
	}
	e.backdate.Store(int64(d))
	return nil
}

// SetClockOffsetLimit sets how far an agent's clock may be off before
// its events are marked (DefaultClockOffsetLimit until set). d must be
// positive.
func (e *Engine) SetClockOffsetLimit(d time.Duration) error {
	if d <= 0 {
		return fmt.Errorf("cases: clock offset limit %v: %w", d, invalid("the limit must be positive"))
	}
	e.offsetLimit.Store(int64(d))
	return nil
}

// SetClockOffset records the clock offset of ИДК numIDK's agent that the
// collector measured at its hello (collector clock minus agent clock).
// Every event of the connection is corrected by it, so the feed marks
// the connection's events with it when it is over the limit. It is kept
// in memory only: an agent says hello again before it sends anything
// after a restart.
func (e *Engine) SetClockOffset(numIDK string, offset time.Duration) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.offsets[norm(numIDK)] = offset
}

// suspectOffset is numIDK's clock offset when it is over the limit, or 0.
func (e *Engine) suspectOffset(numIDK string) time.Duration {
	e.mu.RLock()
	o := e.offsets[norm(numIDK)]
	e.mu.RUnlock()
	if o.Abs() > time.Duration(e.offsetLimit.Load()) {
		return o
	}
	return 0
}

// late reports whether t is more than the backdating window before now.
func (e *Engine) late(t, now time.Time) bool {
	return now.Sub(t) > time.Duration(e.backdate.Load())
}

// SetDevice records an ИДК's identity from its hello, for the identity
// fields of table 4. It is stored before it returns. An unchanged
// identity costs nothing.
func (e *Engine) SetDevice(d Device) error {
	d.NumIDK = norm(d.NumIDK)
	if d.NumIDK == "" {
		return fmt.Errorf("cases: set device: %w", invalid("num_idk is empty"))
	}
	e.wmu.Lock()
	defer e.wmu.Unlock()
	if old, ok := e.devices[d.NumIDK]; ok && old == d {
		return nil
	}
	ch := e.newChange(e.clock.Now())
	ch.device = &d
	if err := e.db.Update(ch.write); err != nil {
		return fmt.Errorf("cases: set device %s: %w", d.NumIDK, err)
	}
	e.apply(ch)
	return nil
}

// Add records one event and returns the ID of the case it joined or
// opened (see the package documentation for the rules). The event, the
// case and any breach due by now are on disk before Add returns. Adding
// an identical event again changes nothing and returns the same case.
//
// An event is refused (ErrInvalid) if its kind is unknown, its time is
// zero or more than a minute ahead, num_idk or by is empty, a scan lacks
// num_snim, a decision lacks both num_snim and case_id, or suspected is
// set on anything but a decision, or a risk_withdrawn lacks its reason.
// An end event or a risk_withdrawn for which no case can be found is
// refused with ErrNotFound, naming the fields it was looked up by, and a
// risk_withdrawn of a case with no risk (or none left) with ErrInvalid,
// naming the case.
func (e *Engine) Add(ev Event) (string, error) {
	ev, err := e.normalise(ev)
	if err != nil {
		return "", fmt.Errorf("cases: add event: %w", err)
	}
	e.wmu.Lock()
	defer e.wmu.Unlock()
	now := e.clock.Now()
	key := eventKey(ev)
	ch := e.newChange(now)
	if id, err := e.seenEvent(key); err != nil {
		return "", fmt.Errorf("cases: add %s event: %w", ev.Kind, err)
	} else if id != "" {
		r, err := ch.resolve(id)
		if err != nil {
			return "", fmt.Errorf("cases: add %s event: case %s of the identical event: %w", ev.Kind, id, err)
		}
		if r == nil {
			return "", fmt.Errorf("cases: add %s event: case %s of the identical event is missing from the file", ev.Kind, id)
		}
		return r.ID, nil
	}
	if ev.Time.After(now.Add(maxAhead)) {
		return "", fmt.Errorf("cases: add %s event: %w", ev.Kind,
			invalid("time %s is in the future (now %s)", ev.Time.Format(time.RFC3339), now.In(e.loc).Format(time.RFC3339)))
	}
	if ev.Reason == "" && e.late(ev.Time, now) {
		return "", fmt.Errorf("cases: add %s event: %w", ev.Kind,
			invalid("reason is empty: time %s is more than %v before now (%s); say why the event is reported late",
				ev.Time.Format(time.RFC3339), time.Duration(e.backdate.Load()), now.In(e.loc).Format(time.RFC3339)))
	}
	id, err := ch.place(ev)
	if err != nil {
		return "", fmt.Errorf("cases: add %s event at ИДК %s: %w", ev.Kind, ev.NumIDK, err)
	}
	ch.seen = append(ch.seen, seenEntry{key: key, id: id})
	ch.reconcileAll()
	c := cause{id: id, by: ev.By, what: describe(ev), ev: &ev}
	ch.versions(c)
	ch.logAudit(c)
	if err := e.db.Update(ch.write); err != nil {
		return "", fmt.Errorf("cases: add %s event at ИДК %s: store: %w", ev.Kind, ev.NumIDK, err)
	}
	e.apply(ch)
	return id, nil
}

// normalise checks ev and puts its fields in their stored form.
func (e *Engine) normalise(ev Event) (Event, error) {
	if !slices.Contains(kinds, ev.Kind) {
		names := make([]string, len(kinds))
		for i, k := range kinds {
			names[i] = string(k)
		}
		return ev, invalid("kind %q is not one of %s", ev.Kind, strings.Join(names, ", "))
	}
	if ev.Time.IsZero() {
		return ev, invalid("time of the %s event is not given", ev.Kind)
	}
	ev.Time = ev.Time.In(e.loc)
	ev.NumIDK, ev.NumSnim = norm(ev.NumIDK), norm(ev.NumSnim)
	ev.CaseID = strings.TrimSpace(ev.CaseID)
	ev.By, ev.Source = strings.TrimSpace(ev.By), strings.TrimSpace(ev.Source)
	ev.Reason = strings.TrimSpace(ev.Reason)
	if ev.NumIDK == "" {
		return ev, invalid("num_idk of the %s event is empty", ev.Kind)
	}
	// num_idk becomes a metric label and a key: only what an ИДК number
	// can be.
	if err := protocol.CheckNumIDK(ev.NumIDK); err != nil {
		return ev, invalid("%v", err)
	}
	if ev.NumSnim != "" {
		if err := protocol.CheckNumSnim(ev.NumSnim); err != nil {
			return ev, invalid("%v", err)
		}
	}
	if ev.By == "" {
		return ev, invalid("by of the %s event is empty: say who reported it", ev.Kind)
	}
	var docs []string
	for _, s := range ev.Docs {
		for _, d := range ParseDocs(s) {
			if !slices.Contains(docs, d) {
				docs = append(docs, d)
			}
		}
	}
	ev.Docs = docs
	switch {
	case ev.Kind == Scan && ev.NumSnim == "":
		return ev, invalid("num_snim of the scan event is empty")
	case ev.Kind == Decision && ev.NumSnim == "" && ev.CaseID == "":
		return ev, invalid("num_snim of the decision event is empty and no case_id is given")
	case ev.Kind == RiskWithdrawn && ev.Reason == "":
		return ev, invalid("reason of the risk_withdrawn event is empty: say why the risk is withdrawn (wrong profile, entered in error)")
	case ev.Suspected && ev.Kind != Decision:
		return ev, invalid("suspected is set on a %s event: only a decision carries it", ev.Kind)
	case !ev.VerScan.valid():
		return ev, invalid("ver_scan %d is not a VER_SCAN code (1 to 5)", int(ev.VerScan))
	case ev.VerScan != 0 && ev.Kind != Scan && ev.Kind != Decision:
		return ev, invalid("ver_scan is set on a %s event: only a scan or a decision carries it", ev.Kind)
	case ev.Risk != (RiskProfile{}) && ev.Kind != RiskDetected:
		return ev, invalid("risk is given with a %s event: only risk_detected carries a risk profile", ev.Kind)
	}
	// Table 1 copies the risk profile as it is: only well-formed fields,
	// whether an agent or a person sent them.
	if err := protocol.CheckRiskProfile(ev.Risk.proto()); err != nil {
		return ev, invalid("risk: %v", err)
	}
	return ev, nil
}

// Tick records every breach that is due by now: a running timer past its
// deadline, or a late report that changed a timer. It also lets cases
// that have been idle for Retention leave memory. The collector calls
// it every second. Add calls it too. It touches the disk only when
// something changed.
func (e *Engine) Tick() error {
	e.wmu.Lock()
	defer e.wmu.Unlock()
	ch := e.newChange(e.clock.Now())
	ch.reconcileAll()
	c := cause{by: collectorBy, what: whyDeadline}
	ch.versions(c)
	ch.logAudit(c)
	ch.evictIdle()
	if ch.empty() {
		return nil
	}
	if err := e.db.Update(ch.write); err != nil {
		return fmt.Errorf("cases: record breaches: %w", err)
	}
	e.apply(ch)
	return nil
}

// apply swaps in a change that is on disk.
func (e *Engine) apply(ch *change) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for id, r := range ch.recs {
		if r.MergedInto != "" {
			if old := e.cases[id]; old != nil && e.snim[snimKey(old.NumIDK, old.NumSnim)] == id {
				delete(e.snim, snimKey(old.NumIDK, old.NumSnim))
			}
			delete(e.cases, id)
		} else {
			e.cases[id] = r
			if r.NumSnim != "" {
				e.snim[snimKey(r.NumIDK, r.NumSnim)] = id
			}
		}
		if st, ok := stateOf(r); ok {
			e.breached[id] = st
		} else {
			delete(e.breached, id)
		}
	}
	for _, id := range ch.evict {
		if r := e.cases[id]; r != nil {
			if e.snim[snimKey(r.NumIDK, r.NumSnim)] == id {
				delete(e.snim, snimKey(r.NumIDK, r.NumSnim))
			}
			delete(e.cases, id)
		}
	}
	for k, n := range ch.added {
		e.counts[k] += n
	}
	for k, n := range ch.evictedRunning {
		e.unwatched[k] += n
	}
	e.seq = ch.seq
	if ch.device != nil {
		e.devices[ch.device.NumIDK] = *ch.device
	}
}

// Case returns the case with the given ID. The ID of a case that was
// merged into another returns that other case.
func (e *Engine) Case(id string) (Case, bool) {
	r, err := e.find(strings.TrimSpace(id))
	if err != nil || r == nil {
		return Case{}, false
	}
	return e.view(r, e.clock.Now()), true
}

// Cases lists the cases in memory (see Retention), oldest first.
func (e *Engine) Cases() []Case { return e.list(func(*record, time.Time) bool { return true }) }

// OpenCases lists the open cases, oldest first. A case is open while one
// of its timers runs or its object has not been scanned yet.
func (e *Engine) OpenCases() []Case {
	return e.list(func(r *record, _ time.Time) bool { return r.open() })
}

// Unmatched lists, oldest first, the cases still without an image an
// hour after their first event. These are risks whose object never
// reached an ИДК and arrivals no scan claimed. An event that joined no
// other case is held in a case of its own, so these include the events
// that joined nothing.
func (e *Engine) Unmatched() []Case {
	return e.list(func(r *record, now time.Time) bool {
		return r.NumSnim == "" && now.Sub(r.first()) > unmatchedAfter
	})
}

// DayCounts counts, per ИДК, the scans and the «Объект под подозрением»
// decisions of the calendar day (in the engine's location) that holds
// day, from the cases in memory (which hold a week): the fleet board's
// figures and the idk_collector_*_today metrics.
func (e *Engine) DayCounts(day time.Time) (scans, suspects map[string]int) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return e.dayCountsLocked(day)
}

func (e *Engine) dayCountsLocked(day time.Time) (scans, suspects map[string]int) {
	y, m, d := day.In(e.loc).Date()
	from := time.Date(y, m, d, 0, 0, 0, 0, e.loc)
	to := from.AddDate(0, 0, 1)
	scans, suspects = map[string]int{}, map[string]int{}
	for _, r := range e.cases {
		if r.MergedInto != "" {
			continue // its events live on in the case it joined
		}
		for _, ev := range r.Events {
			if ev.Time.Before(from) || !ev.Time.Before(to) {
				continue
			}
			switch {
			case ev.Kind == Scan:
				scans[r.NumIDK]++
			case ev.Kind == Decision && ev.Suspected:
				suspects[r.NumIDK]++
			}
		}
	}
	return scans, suspects
}

func (e *Engine) list(keep func(*record, time.Time) bool) []Case {
	now := e.clock.Now()
	e.mu.RLock()
	var recs []*record
	for _, r := range e.cases {
		if keep(r, now) {
			recs = append(recs, r)
		}
	}
	e.mu.RUnlock()
	slices.SortFunc(recs, func(a, b *record) int {
		if c := a.first().Compare(b.first()); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	out := make([]Case, 0, len(recs))
	for _, r := range recs {
		out = append(out, e.view(r, now))
	}
	return out
}

// find returns the record of a case for a reader, following merges. It
// is nil if there is no such case.
func (e *Engine) find(id string) (*record, error) {
	for range maxMerges {
		e.mu.RLock()
		r := e.cases[id]
		e.mu.RUnlock()
		if r == nil {
			var err error
			if r, err = e.loadRecord(id); err != nil || r == nil {
				return nil, err
			}
		}
		if r.MergedInto == "" {
			return r, nil
		}
		id = r.MergedInto
	}
	return nil, fmt.Errorf("cases: case %s: more than %d merges", id, maxMerges)
}

// view is the public form of a record as of now.
func (e *Engine) view(r *record, now time.Time) Case {
	c := Case{
		ID:       r.ID,
		NumIDK:   r.NumIDK,
		NumSnim:  r.NumSnim,
		Docs:     slices.Clone(r.Docs),
		Open:     r.open(),
		Timers:   []Timer{},
		Events:   make([]Event, len(r.Events)),
		Reason:   r.Reason,
		ReasonBy: r.ReasonBy,
	}
	if !r.ReasonAt.IsZero() {
		c.ReasonAt = r.ReasonAt.In(e.loc)
	}
	for i, ev := range r.Events {
		ev.Time = ev.Time.In(e.loc)
		ev.Docs = slices.Clone(ev.Docs)
		c.Events[i] = ev
	}
	sp := r.spans()
	for i, s := range sp {
		if !s.started {
			continue
		}
		rule := rules[i]
		t := Timer{
			Rule:      rule,
			Start:     s.start.In(e.loc),
			Deadline:  s.start.Add(rule.Limit()).In(e.loc),
			Running:   !s.ended,
			Breached:  s.breached(rule.Limit(), now),
			Withdrawn: s.withdrawn,
		}
		if s.ended {
			t.End = s.end.In(e.loc)
		}
		c.Timers = append(c.Timers, t)
	}
	// A repeat scan's suspected decision starts no TIME_3, but it was
	// still made.
	c.Suspected = slices.ContainsFunc(r.Events, func(ev Event) bool { return ev.Kind == Decision && ev.Suspected })
	c.VerScan = r.scanKind()
	return c
}

// Breaches returns the table 4 rows whose DATE_NAR falls on a day from
// the day of from to the day of to, both included, in the engine's time
// zone. The rows are in DATE_NAR order. A running breached timer shows
// its time so far, and its row is marked Running.
func (e *Engine) Breaches(from, to time.Time) ([]Row, error) {
	start, _ := e.dayBounds(from)
	_, end := e.dayBounds(to)
	return e.rows(func(st breachState) bool { return !st.At.Before(start) && st.At.Before(end) })
}

// WithoutReason returns the table 4 rows of every date that still lack
// PRICH_NAR, which item 36 requires for the monthly report. They are in
// DATE_NAR order.
func (e *Engine) WithoutReason() ([]Row, error) {
	return e.rows(func(st breachState) bool { return !st.Reasoned })
}

// dayBounds is the calendar day of t in the engine's zone: [00:00, next
// 00:00). The next midnight is taken from the calendar, not by adding 24
// hours.
func (e *Engine) dayBounds(t time.Time) (time.Time, time.Time) {
	y, m, d := t.In(e.loc).Date()
	return time.Date(y, m, d, 0, 0, 0, 0, e.loc), time.Date(y, m, d+1, 0, 0, 0, 0, e.loc)
}

func (e *Engine) rows(keep func(breachState) bool) ([]Row, error) {
	now := e.clock.Now()
	recs, devices, err := e.breachedCases(func(st breachState) (time.Time, bool) { return st.At, st.Standing && keep(st) })
	if err != nil {
		return nil, fmt.Errorf("cases: table 4 rows: %w", err)
	}
	rows := make([]Row, 0, len(recs))
	for _, r := range recs {
		if row, ok := e.row(r, now, devices); ok {
			rows = append(rows, row)
		}
	}
	return rows, nil
}

// breachedCases returns the breached cases that keep picks, ordered by the
// time keep gives them and then by ID, with the device identities to
// build their rows from. Cases no longer in memory are read from disk.
func (e *Engine) breachedCases(keep func(breachState) (time.Time, bool)) ([]*record, map[string]Device, error) {
	type pick struct {
		id string
		at time.Time
		r  *record
	}
	var picks []pick
	e.mu.RLock()
	for id, st := range e.breached {
		if at, ok := keep(st); ok {
			picks = append(picks, pick{id, at, e.cases[id]})
		}
	}
	devices := maps.Clone(e.devices)
	e.mu.RUnlock()
	slices.SortFunc(picks, func(a, b pick) int {
		if c := a.at.Compare(b.at); c != 0 {
			return c
		}
		return strings.Compare(a.id, b.id)
	})
	recs := make([]*record, 0, len(picks))
	for _, p := range picks {
		r := p.r
		if r == nil {
			var err error
			if r, err = e.loadRecord(p.id); err != nil {
				return nil, nil, err
			}
			if r == nil {
				return nil, nil, fmt.Errorf("breached case %s is missing", p.id)
			}
		}
		recs = append(recs, r)
	}
	return recs, devices, nil
}

// breachRow is the table 4 row of case id (or of the case it was merged
// into). ok is false when there is no such case or it has no standing
// breach.
func (e *Engine) breachRow(id string) (row Row, ok bool, err error) {
	r, err := e.find(id)
	if err != nil || r == nil {
		return Row{}, false, err
	}
	e.mu.RLock()
	devices := maps.Clone(e.devices)
	e.mu.RUnlock()
	row, ok = e.row(r, e.clock.Now(), devices)
	return row, ok, nil
}

// row is the case's table 4 row as of now. ok is false when it has no
// standing breach.
func (e *Engine) row(r *record, now time.Time, devices map[string]Device) (Row, bool) {
	at, ok := r.breachedAt()
	if !ok {
		return Row{}, false
	}
	dev := r.Device
	if dev.NumIDK == "" {
		dev = devices[r.NumIDK]
	}
	// Where the ИДК stood when the row's breach happened, as table 3
	// has it (see stampSites).
	if m, ok := r.firstMark(); ok && m.Site != nil {
		dev = m.Site.over(dev)
	}
	up := func(s string) string { return strings.ToUpper(strings.TrimSpace(s)) }
	row := Row{
		ID:        r.ID,
		KOD_TO:    norm(dev.KodTO),
		NAIM_TO:   up(dev.NaimTO),
		NAIM_ZTK:  up(dev.NaimZTK),
		TYPE_IDK:  dev.TypeIDK,
		NUM_IDK:   r.NumIDK,
		DISL_IDK:  dev.DislIDK,
		DATE_NAR:  at.In(e.loc).Format("02.01.2006"),
		NUM_SNIM:  r.NumSnim,
		PRICH_NAR: r.Reason,
	}
	fields := [3]*string{&row.TIME_1, &row.TIME_2, &row.TIME_3}
	sp := r.spans()
	for i, rule := range rules {
		if m, ok := r.Breaches[rule]; ok && !m.Withdrawn {
			*fields[i] = FormatMinutes(sp[i].duration(now))
			row.Running = row.Running || !sp[i].ended
		}
	}
	row.ClockOffset = r.clockOffset()
	row.ClockSuspect = row.ClockOffset != 0
	return row, true
}

// SetReason gives the reason (PRICH_NAR) for the breach row id: the
// breached case's ID, or the ID of a case merged into it. The reason is
// stored in upper case (A4 rule 4) with who gave it and when. Giving it
// again replaces it: a reason may be corrected before the monthly report.
func (e *Engine) SetReason(id, reason, by string) error {
	id = strings.TrimSpace(id)
	reason = strings.ToUpper(strings.TrimSpace(reason))
	by = strings.TrimSpace(by)
	switch {
	case id == "":
		return fmt.Errorf("cases: set reason: %w", invalid("id is empty"))
	case reason == "":
		return fmt.Errorf("cases: set reason for %s: %w", id, invalid("reason is empty: item 36 needs a specific reason"))
	case by == "":
		return fmt.Errorf("cases: set reason for %s: %w", id, invalid("by is empty: say who gives the reason"))
	}
	e.wmu.Lock()
	defer e.wmu.Unlock()
	ch := e.newChange(e.clock.Now())
	r, err := ch.resolve(id)
	if err != nil {
		return fmt.Errorf("cases: set reason for %s: %w", id, err)
	}
	if r == nil {
		return fmt.Errorf("cases: set reason: id %q: no such case: %w", id, ErrNotFound)
	}
	if _, ok := r.breachedAt(); !ok {
		return fmt.Errorf("cases: set reason: id %q: case %s has no breach: %w", id, r.ID, ErrNotFound)
	}
	c := ch.edit(r)
	c.Reason, c.ReasonBy, c.ReasonAt = reason, by, ch.now
	cs := cause{id: c.ID, by: by, what: "PRICH_NAR given: " + reason}
	ch.versions(cs)
	ch.logAudit(cs)
	if err := e.db.Update(ch.write); err != nil {
		return fmt.Errorf("cases: set reason for %s: store: %w", id, err)
	}
	e.apply(ch)
	return nil
}
