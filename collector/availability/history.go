package availability

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"idk/collector/ingest"
)

// Span is an interval of time, [Start, End).
type Span struct {
	Start, End time.Time
}

// DayRow is one of table 3's availability rows with the spans, within
// the row's day, in which the ИДК was working (WORKING or WAITING) at the
// row's site: the only time TIME_WAIT may count. Adjacent working and
// waiting intervals are one span.
type DayRow struct {
	Row     Row
	Working []Span
	// Zero marks the rule 18 row of a day the ИДК was not operated: its
	// fields must stay 0 whatever else the report would add to them.
	Zero bool
}

// DayRows computes table 3's availability rows (the location and time
// sections) of every ИДК the journal knows, for the calendar day starting
// at day (midnight in loc), from the stored changes: the last change
// before the day and the day's changes. Also returns, per row, the spans
// the ИДК was working (WORKING or WAITING states) at that row's site, for
// TIME_WAIT.
//
// It reads two key ranges per ИДК, whatever the day and however long the
// history, so it serves any past day, also one the Tracker no longer
// keeps. The rows are in NUM_IDK order, then in the order Rows gives an
// ИДК's places. An ИДК with no change stored before the day's end was not
// yet known to the collector that day and gets no row; any other gets the
// rule 18 row for a day it was not operated. The identity used is the one
// the ИДК's latest change came with, as in the Tracker; where the ИДК
// stood comes from the changes' sites, which the agent sends with every
// change, so the last change before the day says where the day began.
func DayRows(v ingest.Viewer, day time.Time, loc *time.Location, now time.Time) ([]DayRow, error) {
	if loc == nil {
		loc = time.Local
	}
	from, to := dayBounds(day, loc)
	var out []DayRow
	err := eachDevice(v, func(tx ingest.Tx, numIDK string) ([]Change, error) { return dayChanges(tx, numIDK, from, to) }, func(d Device, changes []Change) {
		if len(changes) > 0 {
			out = append(out, dayRows(d, changes, from, loc, now)...)
		}
	})

	if err != nil {
		return nil, fmt.Errorf("availability: rows of %s: %w", from.Format("02.01.2006"), err)
	}
	return out, nil
}

// dayChanges reads numIDK's changes that decide the day [from, to): the
// last one before from, which says what state and site the day began in,
// and those in the day. Later changes are not needed: the day's last
// interval is cut at to anyway.
func dayChanges(tx ingest.Tx, numIDK string, from, to time.Time) ([]Change, error) {
	var out []Change
	prefix, start, end := []byte(numIDK+"/"), timeKey(numIDK, from), timeKey(numIDK, to)
	err := tx.Scan(bucketChanges, prefix, start, true, func(k, v []byte) error {
		c, err := decodeChange(k, v)
		if err != nil {
			return err
		}
		out = append(out, c)
		return errEnough
	})
	if err != nil && !errors.Is(err, errEnough) {
		return nil, err
	}
	err = tx.Scan(bucketChanges, start, end, false, func(k, v []byte) error {
		c, err := decodeChange(k, v)
		if err == nil {
			out = append(out, c)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Run is an interval in which an ИДК stayed in one state: a piece of the
// day's timeline.
type Run struct {
	Start, End time.Time
	State      string // a key of Row.Seconds: WORKING, WAITING, ...
	Note       string // the cause of an inoperable state and the staff's note
}

// DayRuns returns numIDK's runs of one state within the calendar day (in
// loc) that contains day, up to now, oldest first, from the stored
// changes: like DayRows, two key ranges whatever the history. A change
// that keeps the state (a new site, a refined note) starts no new run.
func DayRuns(v ingest.Viewer, numIDK string, day time.Time, loc *time.Location, now time.Time) ([]Run, error) {
	if loc == nil {
		loc = time.Local
	}
	from, to := dayBounds(day, loc)
	var changes []Change
	err := v.View(func(tx ingest.Tx) error {
		var err error
		changes, err = dayChanges(tx, numIDK, from, to)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("availability: runs of %s on %s: %w", numIDK, from.Format("02.01.2006"), err)
	}
	end := to
	if now.Before(end) {
		end = now
	}
	var runs []Run
	for i, c := range changes {
		start, stop := c.Time, end
		if start.Before(from) {
			start = from
		}
		if i+1 < len(changes) && changes[i+1].Time.Before(end) {
			stop = changes[i+1].Time
		}
		if !stop.After(start) {
			continue
		}
		r := Run{Start: start.In(loc), End: stop.In(loc), State: stateName(c.State), Note: c.Note}
		if isInoperable(c) {
			r.Note = strings.TrimSpace(CauseName(c.Cause) + " " + c.Note)
		}
		if n := len(runs); n > 0 && runs[n-1].State == r.State && runs[n-1].End.Equal(r.Start) {
			runs[n-1].End = r.End
			continue
		}
		runs = append(runs, r)
	}
	return runs, nil
}
