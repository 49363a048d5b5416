package cases

import (
	"fmt"
	"maps"
	"slices"
	"time"
)

// Version is one state of a case's table 4 row. A breach once recorded
// is never rewritten: a deadline passing, a late end event that
// withdraws the breach, a new duration or a reason each add a version
// that says who caused it, when and why, and the older versions stay.
type Version struct {
	N   int       `json:"version"` // 1, 2, ... within the case, oldest first
	At  time.Time `json:"at"`      // collector time of the change
	By  string    `json:"by"`      // who reported the event that caused it; "collector" for a deadline
	Why string    `json:"why"`     // the event and its reason, or what the collector saw
	// Standing is false when every breach of the case is withdrawn: the
	// row has left table 4, and Row keeps its identity and DATE_NAR.
	Standing bool `json:"standing"`
	// Running lists the rules whose TIME_x still grew at At.
	Running []Rule `json:"running,omitempty"`
	// ClockSuspect and ClockOffset: see Row.
	ClockSuspect bool    `json:"clock_suspect,omitempty"`
	ClockOffset  float64 `json:"clock_offset_seconds,omitempty"`
	Row          Row     `json:"row"`
}

// History is the history of one breached case's table 4 row.
type History struct {
	ID string `json:"id"`
	// Current is the row as table 4 shows it now, nil once withdrawn.
	Current      *Row      `json:"current"`
	Running      bool      `json:"running"`
	ClockSuspect bool      `json:"clock_suspect,omitempty"` // see Row
	Versions     []Version `json:"versions"`
}

// collectorBy is who a version is by when no one reported its cause.
const collectorBy = "collector"

// describe is the Why of a version caused by ev.
func describe(ev Event) string {
	s := fmt.Sprintf("%s event of %s", ev.Kind, ev.Time.Format(time.RFC3339))
	if ev.VerScan != 0 {
		s += fmt.Sprintf(", VER_SCAN %d (%s)", int(ev.VerScan), ev.VerScan)
	}
	if ev.Reason != "" {
		s += ", reason: " + ev.Reason
	}
	return s
}

// versionKey is what makes a version differ from the one before: the
// row, with the TIME_x of a running rule left out, since that grows
// every second until the end is reported.
func versionKey(v Version) Row {
	k := v.Row
	fields := [3]*string{&k.TIME_1, &k.TIME_2, &k.TIME_3}
	for i, rule := range rules {
		if slices.Contains(v.Running, rule) {
			*fields[i] = "running"
		}
	}
	k.ID, k.Running = "", false
	return k
}

// version is r's row as of now, or ok false if r has no row at all: no
// breach was ever marked, or every mark is withdrawn and no version
// was published to take the identity and date from.
func (ch *change) version(r *record) (v Version, ok bool) {
	if len(r.Breaches) == 0 {
		return Version{}, false
	}
	row, standing := ch.e.row(r, ch.now, ch.e.devices)
	if !standing {
		n := len(r.History)
		if n == 0 {
			return Version{}, false
		}
		row = r.History[n-1].Row
		row.TIME_1, row.TIME_2, row.TIME_3, row.PRICH_NAR = "", "", "", r.Reason
	}
	v = Version{At: ch.now, Standing: standing, ClockSuspect: row.ClockSuspect, ClockOffset: row.ClockOffset.Seconds(), Row: row}
	sp := r.spans()
	for i, rule := range rules {
		if m, ok := r.Breaches[rule]; ok && !m.Withdrawn && !sp[i].ended {
			v.Running = append(v.Running, rule)
		}
	}
	return v, true
}

// cause is who and what caused a change. The case id gets by and what,
// and ev when an event caused it; the other cases of the change are the
// collector's own doing, a deadline that passed. With id empty, every
// case of the change gets by and what.
type cause struct {
	id       string
	by, what string
	ev       *Event
}

// whyDeadline is the Why of a version the collector made on its own.
const whyDeadline = "deadline passed with no end reported"

// of is who and why for case r of the change.
func (c cause) of(r *record) (by, what string, ev *Event) {
	if c.id == "" || r.ID == c.id || r.MergedInto == c.id {
		return c.by, c.what, c.ev
	}
	return collectorBy, whyDeadline, nil
}

// versions adds a version to each case of the change whose row differs
// from its last version, by and why as c says.
func (ch *change) versions(c cause) {
	for _, id := range slices.Sorted(maps.Keys(ch.recs)) {
		r := ch.recs[id]
		if r.MergedInto != "" {
			continue
		}
		v, ok := ch.version(r)
		if !ok {
			continue
		}
		if n := len(r.History); n > 0 && versionKey(r.History[n-1]) == versionKey(v) {
			continue
		}
		if len(r.History) == 0 {
			// A row recorded before versions were kept: its last stored
			// state is the first version, so a correction cannot hide it.
			if old, err := ch.lookupStored(id); err == nil && old != nil && len(old.Breaches) > 0 {
				if ov, ok := (&change{e: ch.e, now: old.Touched}).version(old); ok && ov.Standing {
					ov.By, ov.Why = collectorBy, "as stored before versions were kept"
					r.History = append(r.History, ov)
				}
			}
		}
		v.By, v.Why, _ = c.of(r)
		r.History = append(r.History, v)
	}
}

// lookupStored is the version of case id before this change: memory's
// or the disk's.
func (ch *change) lookupStored(id string) (*record, error) {
	if r, ok := ch.e.cases[id]; ok {
		return r, nil
	}
	return ch.e.loadRecord(id)
}

// BreachHistory returns the history of every case with a breach ever
// marked whose first mark falls on a day from the day of from to the
// day of to, both included, in the engine's time zone: withdrawn rows
// too, each with every version. The cases are in the order of their
// first mark.
func (e *Engine) BreachHistory(from, to time.Time) ([]History, error) {
	start, _ := e.dayBounds(from)
	_, end := e.dayBounds(to)
	now := e.clock.Now()
	recs, devices, err := e.breachedCases(func(st breachState) (time.Time, bool) {
		first := st.First
		if first.IsZero() {
			first = st.At // stored before First was kept
		}
		return first, !first.Before(start) && first.Before(end)
	})
	if err != nil {
		return nil, fmt.Errorf("cases: breach history: %w", err)
	}
	out := make([]History, 0, len(recs))
	for _, r := range recs {
		h := History{ID: r.ID, Versions: slices.Clone(r.History)}
		if row, ok := e.row(r, now, devices); ok {
			h.Current, h.Running, h.ClockSuspect = &row, row.Running, row.ClockSuspect
		}
		for i := range h.Versions {
			h.Versions[i].N = i + 1
			h.Versions[i].At = h.Versions[i].At.In(e.loc)
		}
		if h.Versions == nil {
			h.Versions = []Version{}
		}
		out = append(out, h)
	}
	return out, nil
}
