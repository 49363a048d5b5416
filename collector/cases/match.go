package cases

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// maxMerges bounds how many merges a case ID is followed through. A case
// is merged at most once and into a case that is not merged, so the real
// chains are one step long.
const maxMerges = 8

// change collects what one writer call changes. It is computed first and
// stored in one synced transaction. Only then is it applied to memory.
// A failed write therefore leaves the engine as it was.
type change struct {
	e     *Engine
	now   time.Time
	recs  map[string]*record // the new versions of the cases it touches
	seq   uint64             // the last case number given, counting new cases
	added map[countKey]uint64
	evict []string
	// evictedRunning counts, per ИДК, cases evicted over MaxLivePerIDK
	// while a timer still ran: their deadlines are no longer watched.
	evictedRunning map[string]uint64
	seen           []seenEntry
	// audit holds the audit log entries of the change (logAudit).
	audit []AuditEntry
	// device is an identity to store, from SetDevice.
	device *Device
}

type seenEntry struct {
	key []byte
	id  string
}

func (e *Engine) newChange(now time.Time) *change {
	return &change{e: e, now: now, recs: map[string]*record{}, seq: e.seq, added: map[countKey]uint64{}, evictedRunning: map[string]uint64{}}
}

func (ch *change) empty() bool {
	return len(ch.recs) == 0 && len(ch.evict) == 0 && len(ch.seen) == 0 && ch.device == nil
}

// lookup returns the current version of a case: the change's own,
// memory's, or the disk's. It is nil if there is no such case. The
// record must not be modified; use edit.
func (ch *change) lookup(id string) (*record, error) {
	if r, ok := ch.recs[id]; ok {
		return r, nil
	}
	if r, ok := ch.e.cases[id]; ok {
		return r, nil
	}
	return ch.e.loadRecord(id)
}

// resolve is lookup following merges.
func (ch *change) resolve(id string) (*record, error) {
	for range maxMerges {
		r, err := ch.lookup(id)
		if err != nil || r == nil {
			return nil, err
		}
		if r.MergedInto == "" {
			return r, nil
		}
		id = r.MergedInto
	}
	return nil, fmt.Errorf("case %s: more than %d merges", id, maxMerges)
}

// edit returns the change's own, writable copy of r.
func (ch *change) edit(r *record) *record {
	if c, ok := ch.recs[r.ID]; ok {
		return c
	}
	c := r.clone()
	ch.recs[c.ID] = c
	return c
}

// each calls fn for every live case in its current version.
func (ch *change) each(fn func(*record)) {
	for id, r := range ch.e.cases {
		if c, ok := ch.recs[id]; ok {
			r = c
		}
		if r.MergedInto == "" {
			fn(r)
		}
	}
	for id, r := range ch.recs {
		if _, ok := ch.e.cases[id]; !ok && r.MergedInto == "" {
			fn(r)
		}
	}
}

// bySnim is the case holding image snim of ИДК numIDK, or nil.
func (ch *change) bySnim(numIDK, snim string) (*record, error) {
	for _, r := range ch.recs {
		if r.MergedInto == "" && r.NumSnim == snim && r.NumIDK == numIDK {
			return r, nil
		}
	}
	if id, ok := ch.e.snim[snimKey(numIDK, snim)]; ok {
		return ch.resolve(id)
	}
	id, err := ch.e.diskSnim(numIDK, snim)
	if err != nil || id == "" {
		return nil, err
	}
	return ch.resolve(id)
}

// older orders candidates: by key time, then by ID, so the choice is the
// same whatever order the map gives them in.
func older(a, b *record, ka, kb time.Time) bool {
	if !ka.Equal(kb) {
		return ka.Before(kb)
	}
	return a.ID < b.ID
}

// oldest is the case at ИДК numIDK satisfying ok with the earliest key.
func (ch *change) oldest(numIDK string, ok func(*record) bool, key func(*record) time.Time) *record {
	var best *record
	ch.each(func(r *record) {
		if r.NumIDK == numIDK && ok(r) && (best == nil || older(r, best, key(r), key(best))) {
			best = r
		}
	})
	return best
}

func awaitsArrival(r *record) bool    { return r.has(RiskDetected) && !r.has(Arrival) && r.NumSnim == "" }
func awaitsScan(r *record) bool       { return r.has(Arrival) && r.NumSnim == "" }
func arrivalTime(r *record) time.Time { return r.spans()[1].start }
func firstTime(r *record) time.Time   { return r.first() }

// fitsDocs reports whether ev may join r by their shared documents. The
// events that start an inspection join only a case without an image: a
// document seen again after its scan is a new inspection. The end events
// may join any case. An event naming an image never joins a case holding
// another. Documents never carry a case from one ИДК to another: one
// ИДК's form naming another's documents (a typo, or a stolen certificate)
// opens a case of its own; only an officer naming the case_id joins them.
func fitsDocs(r *record, ev Event) bool {
	if ev.NumSnim != "" && r.NumSnim != "" && (r.NumSnim != ev.NumSnim || r.NumIDK != ev.NumIDK) {
		return false
	}
	if r.NumIDK != "" && ev.NumIDK != "" && r.NumIDK != ev.NumIDK {
		return false
	}
	switch ev.Kind {
	case RiskDetected, Arrival, Scan, Decision:
		return r.NumSnim == ""
	}
	return true
}

// awaits reports whether ev would end a running timer of r. Among cases
// sharing documents, an end event prefers those.
func awaits(r *record, k Kind) bool {
	sp := r.spans()
	switch k {
	case DocsHanded, CarrierInformed:
		return sp[0].started && !sp[0].ended
	case DocsReturned:
		return sp[1].started && !sp[1].ended
	case ActHanded:
		return sp[2].started && !sp[2].ended
	}
	return false
}

// byDocs is the case ev joins by its documents, or nil: the oldest case
// that shares a number and fits, preferring the cases awaiting ev.
func (ch *change) byDocs(ev Event) *record {
	if len(ev.Docs) == 0 {
		return nil
	}
	var best *record
	bestWaits := false
	ch.each(func(r *record) {
		if !r.sharesDocs(ev.Docs) || !fitsDocs(r, ev) {
			return
		}
		w := awaits(r, ev.Kind)
		if ev.Kind == RiskWithdrawn {
			w, _ = r.riskToWithdraw(ev.Time)
		}
		if best == nil || (w && !bestWaits) || (w == bestWaits && older(r, best, r.first(), best.first())) {
			best, bestWaits = r, w
		}
	})
	return best
}

// place finds or opens the case ev belongs to, adds ev to it and returns
// its ID.
func (ch *change) place(ev Event) (string, error) {
	r, err := ch.find(ev)
	if err != nil {
		return "", err
	}
	if ev.Kind == RiskWithdrawn && r != nil {
		switch standing, had := r.riskToWithdraw(ev.Time); {
		case !had:
			return "", invalid("case %s has no risk_detected: there is no risk to withdraw", r.ID)
		case !standing:
			return "", invalid("case %s has no risk_detected at or before %s that is not withdrawn already", r.ID, ev.Time.Format(time.RFC3339))
		}
	}
	var c *record
	if r == nil {
		c = ch.create(ev)
	} else {
		c = ch.edit(r)
	}
	ch.join(c, ev)
	return c.ID, nil
}

// find applies the matching rules of the package documentation. A nil
// case without an error means that ev opens a case of its own.
func (ch *change) find(ev Event) (*record, error) {
	// 1. The reporter names the case.
	if ev.CaseID != "" {
		r, err := ch.resolve(ev.CaseID)
		if err != nil {
			return nil, err
		}
		if r == nil {
			return nil, fmt.Errorf("case_id %q: no such case: %w", ev.CaseID, ErrNotFound)
		}
		if ev.NumSnim != "" {
			if r.NumSnim != "" && (r.NumSnim != ev.NumSnim || r.NumIDK != ev.NumIDK) {
				return nil, invalid("num_snim %s at ИДК %s: case_id %s holds image %s of ИДК %s", ev.NumSnim, ev.NumIDK, r.ID, r.NumSnim, r.NumIDK)
			}
			other, err := ch.bySnim(ev.NumIDK, ev.NumSnim)
			if err != nil {
				return nil, err
			}
			if other != nil && other.ID != r.ID {
				return nil, invalid("num_snim %s at ИДК %s belongs to case %s, not to case_id %s", ev.NumSnim, ev.NumIDK, other.ID, r.ID)
			}
		}
		return r, nil
	}
	// 2. The case of its image.
	if ev.NumSnim != "" {
		r, err := ch.bySnim(ev.NumIDK, ev.NumSnim)
		if err != nil {
			return nil, err
		}
		if r != nil {
			if into := ch.mergeTarget(r, ev); into != nil {
				return ch.merge(r, into), nil
			}
			return r, nil
		}
	}
	// 3. The case of its documents.
	if r := ch.byDocs(ev); r != nil {
		return r, nil
	}
	// 4. By kind.
	switch ev.Kind {
	case RiskDetected:
		return nil, nil
	case Arrival:
		// The same object reported twice: the working zone holds one.
		if r := ch.oldest(ev.NumIDK, func(r *record) bool {
			if !awaitsScan(r) {
				return false
			}
			d := ev.Time.Sub(arrivalTime(r))
			return d >= -Time2.Limit() && d <= Time2.Limit()
		}, arrivalTime); r != nil {
			return r, nil
		}
		return ch.oldest(ev.NumIDK, awaitsArrival, firstTime), nil
	case Scan, Decision:
		return ch.oldest(ev.NumIDK, awaitsScan, arrivalTime), nil
	}
	var by []string
	if ev.NumSnim != "" {
		by = append(by, fmt.Sprintf("num_snim %q", ev.NumSnim))
	}
	if len(ev.Docs) > 0 {
		by = append(by, fmt.Sprintf("docs %q", ev.Docs))
	}
	if len(by) == 0 {
		return nil, invalid("no case_id, num_snim or docs to find the case of a %s event by", ev.Kind)
	}
	return nil, fmt.Errorf("no case found by %s: %w", strings.Join(by, " or "), ErrNotFound)
}

// mergeTarget is the case that image case s belongs to by the documents of
// decision ev, or nil. That is the case when s came from the scan alone
// (no risk-phase event, none of these documents) and another case
// without an image holds the documents.
func (ch *change) mergeTarget(s *record, ev Event) *record {
	if ev.Kind != Decision || len(ev.Docs) == 0 || s.sharesDocs(ev.Docs) || s.has(RiskDetected, DocsHanded, CarrierInformed) {
		return nil
	}
	return ch.byDocs(ev) // a decision fits only cases without an image, so never s
}

// merge moves case s into case into and returns into's writable copy.
// Marks and a reason that into lacks come along. Reconciling afterwards
// settles the marks by the merged timers.
func (ch *change) merge(s, into *record) *record {
	c, m := ch.edit(into), ch.edit(s)
	for _, ev := range m.Events {
		c.insert(ev)
	}
	c.NumIDK, c.NumSnim = m.NumIDK, m.NumSnim
	if m.Device.NumIDK != "" {
		c.Device = m.Device
	}
	for rule, b := range m.Breaches {
		if _, ok := c.Breaches[rule]; !ok {
			if c.Breaches == nil {
				c.Breaches = map[Rule]breachMark{}
			}
			c.Breaches[rule] = b
		}
	}
	if c.Reason == "" {
		c.Reason, c.ReasonBy, c.ReasonAt = m.Reason, m.ReasonBy, m.ReasonAt
	}
	// The rows the merged case published stay in the history.
	c.History = append(c.History, m.History...)
	*m = record{ID: m.ID, MergedInto: c.ID, Opened: m.Opened, Touched: ch.now, Rev: m.Rev}
	return c
}

// create opens a case for ev. IDs are the date of the first event and a
// number that is never reused: "20240305-000042".
func (ch *change) create(ev Event) *record {
	ch.seq++
	id := fmt.Sprintf("%s-%06d", ev.Time.In(ch.e.loc).Format("20060102"), ch.seq)
	r := &record{ID: id, NumIDK: ev.NumIDK, Opened: ch.now}
	ch.recs[id] = r
	return r
}

// join adds ev to case c. An event bringing the case's image also brings
// its ИДК: the image was made there.
func (ch *change) join(c *record, ev Event) {
	if ev.NumSnim != "" && c.NumSnim == "" {
		c.NumSnim, c.NumIDK = ev.NumSnim, ev.NumIDK
	}
	c.insert(ev)
	c.Touched = ch.now
	// The identity is taken once per ИДК, so a mobile ИДК that later
	// moves does not move the rows of its earlier cases.
	if d, ok := ch.e.devices[c.NumIDK]; ok && c.Device.NumIDK != c.NumIDK {
		c.Device = d
	}
}

// reconcileAll brings every live case's breach marks up to date as of
// the change's time. The marks made for the first time are counted.
func (ch *change) reconcileAll() {
	var todo []*record
	ch.each(func(r *record) { todo = append(todo, r) })
	for _, r := range todo {
		marks, added, changed := r.reconciled(ch.now)
		if !changed {
			continue
		}
		c := ch.edit(r)
		c.Breaches = marks
		for _, rule := range added {
			ch.added[countKey{c.NumIDK, rule}]++
		}
	}
	ch.stampSites(nil)
}

// evictIdle lets go of the cases with no running timer whose last
// activity is older than Retention. They stay on disk. It also holds each
// ИДК to MaxLivePerIDK cases in memory, however many scans it reports: past
// that, its least recently active cases leave memory first (those without
// a running timer before those with one), so one agent flooding the
// collector with scans cannot exhaust its memory.
func (ch *change) evictIdle() {
	perIDK := map[string][]*record{}
	for id, r := range ch.e.cases {
		if _, touched := ch.recs[id]; touched {
			continue
		}
		if ch.now.Sub(r.lastActivity()) > Retention && !r.running() {
			ch.evict = append(ch.evict, id)
			continue
		}
		perIDK[r.NumIDK] = append(perIDK[r.NumIDK], r)
	}
	for numIDK, rs := range perIDK {
		excess := len(rs) - MaxLivePerIDK
		if excess <= 0 {
			continue
		}
		slices.SortFunc(rs, func(a, b *record) int {
			if ar, br := a.running(), b.running(); ar != br {
				if ar {
					return 1
				}
				return -1
			}
			return a.lastActivity().Compare(b.lastActivity())
		})
		for _, r := range rs[:excess] {
			ch.evict = append(ch.evict, r.ID)
			if r.running() {
				ch.evictedRunning[numIDK]++
			}
		}
	}
}
