package cases

import (
	"maps"
	"slices"
	"sort"
	"time"
)

// record is a case as stored. A record held by the Engine is never
// changed in place: a change edits a clone and swaps it in after the
// clone is on disk, so readers never see a half-applied change.
type record struct {
	ID      string   `json:"id"`
	NumIDK  string   `json:"num_idk"`
	NumSnim string   `json:"num_snim,omitempty"`
	Docs    []string `json:"docs,omitempty"`
	// Device is the ИДК's identity when the case was last at a known
	// ИДК. A mobile ИДК that moves on keeps its old rows.
	Device  Device    `json:"device"`
	Events  []Event   `json:"events,omitempty"`
	Opened  time.Time `json:"opened"`  // collector clock when the case was opened
	Touched time.Time `json:"touched"` // collector clock at its last event
	// MergedInto is set when this case turned out to be part of another
	// (a scan-only case claimed by a decision's documents). It then holds
	// nothing else and only leads to that case.
	MergedInto string              `json:"merged_into,omitempty"`
	Breaches   map[Rule]breachMark `json:"breaches,omitempty"`
	Reason     string              `json:"reason,omitempty"`
	ReasonBy   string              `json:"reason_by,omitempty"`
	ReasonAt   time.Time           `json:"reason_at,omitzero"`
	// History holds every version of its table 4 row, oldest first. A
	// version is never changed or removed: a correction is a new one.
	History []Version `json:"history,omitempty"`
	// Rev counts the changes of the case: each one is an entry of the
	// audit log (see Audit). 0 before the first change was logged.
	Rev uint64 `json:"rev,omitempty"`
}

// breachMark records that a rule's deadline was passed.
type breachMark struct {
	At     time.Time `json:"at"`      // the deadline passed. DATE_NAR is its date
	NumIDK string    `json:"num_idk"` // the counter it was counted in
	// Withdrawn: a later report showed the timer ended within the limit.
	// The mark is kept so that the counter it was counted in stays true,
	// and so that a re-breach is not counted twice.
	Withdrawn bool `json:"withdrawn,omitempty"`
	// Site is where the ИДК stood at At, from its site history (see
	// stampSites); nil when the history had nothing then.
	Site *Place `json:"site,omitempty"`
}

func (r *record) clone() *record {
	c := *r
	c.Docs = slices.Clone(r.Docs)
	c.Events = slices.Clone(r.Events)
	for i := range c.Events {
		c.Events[i].Docs = slices.Clone(c.Events[i].Docs)
	}
	c.Breaches = maps.Clone(r.Breaches)
	c.History = slices.Clone(r.History)
	return &c
}

// first is the time of the case's earliest event.
func (r *record) first() time.Time {
	if len(r.Events) == 0 {
		return r.Opened
	}
	return r.Events[0].Time
}

// lastActivity is the later of its last event and the last time an event
// reached it, so that neither a late report of an old event nor an
// agent's clock far off keeps it in memory for long.
func (r *record) lastActivity() time.Time {
	t := r.Touched
	if n := len(r.Events); n > 0 && r.Events[n-1].Time.After(t) {
		t = r.Events[n-1].Time
	}
	return t
}

// insert adds ev in time order, after any event of the same time, so
// that equal times keep their arrival order.
func (r *record) insert(ev Event) {
	i := sort.Search(len(r.Events), func(i int) bool { return r.Events[i].Time.After(ev.Time) })
	r.Events = slices.Insert(r.Events, i, ev)
	for _, d := range ev.Docs {
		if !slices.Contains(r.Docs, d) {
			r.Docs = append(r.Docs, d)
		}
	}
}

func (r *record) has(k ...Kind) bool {
	return slices.ContainsFunc(r.Events, func(ev Event) bool { return slices.Contains(k, ev.Kind) })
}

// sharesDocs reports whether any of docs is one of the case's.
func (r *record) sharesDocs(docs []string) bool {
	return slices.ContainsFunc(docs, func(d string) bool { return slices.Contains(r.Docs, d) })
}

// span is one timer as the events define it.
type span struct {
	started, ended bool
	start, end     time.Time
	// withdrawn: TIME_1's risk was withdrawn (risk_withdrawn). The span
	// then ended at the withdrawal at the latest, and is never a breach.
	withdrawn bool
}

// breached reports whether the span exceeds limit by now: its duration,
// or its time so far while running, is longer than the limit.
//
// Durations are judged to the nearest second: the start and the end often
// come from different clocks (an agent's, corrected by its measured
// offset, and the collector's), and a few milliseconds of that correction
// must not turn an inspection of exactly 15:00 into a breach.
func (s span) breached(limit time.Duration, now time.Time) bool {
	if !s.started || s.withdrawn {
		return false
	}
	if s.ended {
		return s.end.Sub(s.start).Round(time.Second) > limit
	}
	return now.Sub(s.start).Round(time.Second) > limit
}

// duration is the span's length, or its time so far while it runs.
func (s span) duration(now time.Time) time.Duration {
	if s.ended {
		return s.end.Sub(s.start)
	}
	return now.Sub(s.start)
}

// spans computes the three timers from the events, indexed like rules.
// Events are in time order, so "latest" is the last seen and "first" the
// first seen:
//
//   - TIME_1 starts at the latest risk_detected (table 4: the later of the
//     risk and the other grounds) and ends at the later of the first
//     docs_handed and the first carrier_informed;
//   - TIME_2 runs from the first arrival to the first docs_returned;
//   - TIME_3 runs from the first suspected decision to the first
//     act_handed.
//
// A repeated end report does not move the end: the action happened once.
// A risk_withdrawn cancels the risks before it: TIME_1 is then withdrawn
// and ends at the withdrawal, or at its own end if that came first. A
// risk_detected after the withdrawal starts TIME_1 anew.
func (r *record) spans() [3]span {
	var s [3]span
	var handed, informed, withdrawn *time.Time
	for i := range r.Events {
		ev := &r.Events[i]
		switch ev.Kind {
		case RiskDetected:
			s[0].started, s[0].start, s[0].withdrawn, withdrawn = true, ev.Time, false, nil
		case RiskWithdrawn:
			if s[0].started && !s[0].withdrawn {
				s[0].withdrawn, withdrawn = true, &ev.Time
			}
		case DocsHanded:
			if handed == nil {
				handed = &ev.Time
			}
		case CarrierInformed:
			if informed == nil {
				informed = &ev.Time
			}
		case Arrival:
			if !s[1].started {
				s[1].started, s[1].start = true, ev.Time
			}
		case DocsReturned:
			if !s[1].ended {
				s[1].ended, s[1].end = true, ev.Time
			}
		case Decision:
			if ev.Suspected && !s[2].started {
				s[2].started, s[2].start = true, ev.Time
			}
		case ActHanded:
			if !s[2].ended {
				s[2].ended, s[2].end = true, ev.Time
			}
		}
	}
	if handed != nil && informed != nil {
		s[0].ended, s[0].end = true, *handed
		if informed.After(*handed) {
			s[0].end = *informed
		}
	}
	if withdrawn != nil && (!s[0].ended || withdrawn.Before(s[0].end)) {
		s[0].ended, s[0].end = true, *withdrawn
	}
	// An end without a start is not a timer.
	for i := range s {
		if !s[i].started {
			s[i] = span{}
		}
	}
	// A radiation-control, test or repeat scan times no inspection: its
	// arrival and decision start nothing (see ScanKind.Inspects).
	if !r.scanKind().Inspects() {
		s[1], s[2] = span{}, span{}
	}
	return s
}

// riskToWithdraw reports whether the case has a risk_detected at or
// before t that no risk_withdrawn at or before t cancelled already, and
// whether it has a risk_detected at all.
func (r *record) riskToWithdraw(t time.Time) (standing, had bool) {
	for _, ev := range r.Events {
		if ev.Time.After(t) {
			break
		}
		switch ev.Kind {
		case RiskDetected:
			standing = true
		case RiskWithdrawn:
			standing = false
		}
	}
	return standing, r.has(RiskDetected)
}

// running reports whether any timer of the case is running.
func (r *record) running() bool {
	for _, s := range r.spans() {
		if s.started && !s.ended {
			return true
		}
	}
	return false
}

// open: a timer runs, or the object has not been scanned yet.
func (r *record) open() bool { return r.NumSnim == "" || r.running() }

// reconciled computes the case's breach marks as of now. Each started
// timer past its limit has a mark at its deadline. A mark whose timer
// turned out within the limit is withdrawn. It returns the new marks, the
// rules marked for the first time (to be counted) and whether anything
// differs from the record's marks. Tick calls it for every live case
// every second, so the marks are copied only when something changes.
func (r *record) reconciled(now time.Time) (marks map[Rule]breachMark, added []Rule, changed bool) {
	marks = r.Breaches
	set := func(rule Rule, m breachMark) {
		if !changed {
			marks, changed = maps.Clone(r.Breaches), true
			if marks == nil {
				marks = map[Rule]breachMark{}
			}
		}
		marks[rule] = m
	}
	sp := r.spans()
	for i, rule := range rules {
		m, had := r.Breaches[rule]
		if sp[i].breached(rule.Limit(), now) {
			// The deadline moves if a later risk_detected moves the
			// start. DATE_NAR follows the deadline.
			deadline := sp[i].start.Add(rule.Limit())
			switch {
			case !had:
				set(rule, breachMark{At: deadline, NumIDK: r.NumIDK})
				added = append(added, rule)
			case m.Withdrawn || !m.At.Equal(deadline):
				m.At, m.Withdrawn = deadline, false
				set(rule, m)
			}
		} else if had && !m.Withdrawn {
			m.Withdrawn = true
			set(rule, m)
		}
	}
	return marks, added, changed
}

// breachedAt is the time of the case's first standing breach. ok is false
// when it has none.
func (r *record) breachedAt() (at time.Time, ok bool) {
	m, ok := r.firstMark()
	return m.At, ok
}

// firstMark is the case's first standing breach mark, in rule order
// among equal times. ok is false when it has none.
func (r *record) firstMark() (first breachMark, ok bool) {
	for _, rule := range rules {
		if m, had := r.Breaches[rule]; had && !m.Withdrawn && (!ok || m.At.Before(first.At)) {
			first, ok = m, true
		}
	}
	return first, ok
}

// clockOffset is the largest agent clock offset, by size, that the
// case's events were corrected by when it was over the limit (see
// Event.ClockOffset); 0 when none was.
func (r *record) clockOffset() time.Duration {
	var o time.Duration
	for _, ev := range r.Events {
		if ev.ClockOffset.Abs() > o.Abs() {
			o = ev.ClockOffset
		}
	}
	return o
}
