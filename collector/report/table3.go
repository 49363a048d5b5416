package report

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"idk/collector/availability"
	"idk/collector/cases"
	"idk/collector/ingest"
)

// ZoneSource gives the objects' stays in each ИДК's working zone (*cases.Engine implements it).
type ZoneSource interface {
	Zones(numIDK string, from, to time.Time) ([]cases.Zone, error)
}

// zoneLookback is how far before a day TIME_WAIT looks for objects that
// may still be in the working zone after midnight, so that the zone is
// never counted as waiting while one is there. No inspection takes a day.
const zoneLookback = 24 * time.Hour

// Table3Rows returns table 3's rows for customs body kodTO (rows whose
// KOD_M_D is kodTO) for each day in [from, to), ordered by DATE, NUM_IDK,
// then the order of the ИДК's places that day.
//
// The days are the calendar days in loc from the one holding from; a day
// that has not begun by now has no rows yet, as nothing of it is known.
// The location and time sections come from the availability journal
// (availability.DayRows, rules 17 and 18), with TIME_WAIT measured from
// the objects' stays in the working zone (see timeWait); TIME_JOB is the
// working and waiting time as the journal has it.
//
// The object counts (OKO_*, KOVR_*) are those the post entered for the
// ИДК and day, 0 when none were. They are counted per ИДК and day, not per
// place, so an ИДК that worked at several places that day has them on its
// first row of the day and 0 on the others: summed over the rows, and over
// the customs bodies' reports when it moved between two, each object
// counts once. A rule 18 row (the ИДК not operated that day) stays 0 in
// every field but DATE, KOD_M_D and NUM_IDK, whatever was entered.
func Table3Rows(v ingest.Viewer, zones ZoneSource, counts CountSource, kodTO string, from, to time.Time, loc *time.Location, now time.Time) ([]Row, error) {
	if loc == nil {
		loc = time.Local
	}
	y, m, d := from.In(loc).Date()
	var out []Row
	for day := time.Date(y, m, d, 0, 0, 0, 0, loc); day.Before(to) && day.Before(now); day = NextDay(day) {
		drs, err := availability.DayRows(v, day, loc, now)
		if err != nil {
			return nil, fmt.Errorf("report: table 3: %w", err)
		}
		// DayRows gives them in this order already; stable, so an ИДК's
		// places keep theirs.
		slices.SortStableFunc(drs, func(a, b availability.DayRow) int { return strings.Compare(a.Row.NUM_IDK, b.Row.NUM_IDK) })
		for i := 0; i < len(drs); {
			j := i + 1
			for j < len(drs) && drs[j].Row.NUM_IDK == drs[i].Row.NUM_IDK {
				j++
			}
			rows, err := idkDay(drs[i:j], zones, counts, kodTO, day)
			if err != nil {
				return nil, fmt.Errorf("report: table 3: ИДК %s, %s: %w", drs[i].Row.NUM_IDK, FormatDate(day), err)
			}
			out = append(out, rows...)
			i = j
		}
	}
	return out, nil
}

// idkDay is the table 3 rows of kodTO of one ИДК's day: drs are all its
// rows that day, in the order of its places. It asks for zones and
// counts only when this report needs them.
func idkDay(drs []availability.DayRow, zones ZoneSource, counts CountSource, kodTO string, day time.Time) ([]Row, error) {
	mine := slices.ContainsFunc(drs, func(d availability.DayRow) bool { return d.Row.KOD_M_D == kodTO })
	if !mine {
		return nil, nil
	}
	numIDK, end := drs[0].Row.NUM_IDK, NextDay(day)
	var zs []cases.Zone
	if slices.ContainsFunc(drs, func(d availability.DayRow) bool { return !d.Zero && d.Row.KOD_M_D == kodTO }) {
		var err error
		if zs, err = zones.Zones(numIDK, day.Add(-zoneLookback), end); err != nil {
			return nil, fmt.Errorf("zones: %w", err)
		}
	}
	var c Counts
	if first := drs[0]; !first.Zero && first.Row.KOD_M_D == kodTO {
		var err error
		if c, _, err = counts.Counts(numIDK, day); err != nil {
			return nil, fmt.Errorf("counts: %w", err)
		}
	}
	var out []Row
	for k, d := range drs {
		if d.Row.KOD_M_D != kodTO {
			continue
		}
		wait := d.Row.TIME_WAIT // the zero row's 0
		if !d.Zero {
			wait = availability.FormatHM(timeWait(zs, day, end, d.Working))
		}
		var rc Counts
		if k == 0 && !d.Zero {
			rc = c
		}
		out = append(out, table3Row(d.Row, wait, rc))
	}
	return out, nil
}

// timeWait is TIME_WAIT of one row of the day [from, to): the ИДК's
// working time from the operator's last decision until the next
// uninspected object arrives in the working zone.
//
// The objects' stays (zones, in arrival order) are merged into busy
// intervals, from an arrival to the decision on the objects that overlap
// it. Waiting is the time from one busy interval's end (a decision) to
// the next one's start (an arrival in the day) or, after the day's last
// decision, to the day's end: the ИДК waits for the next object all that
// time, whether or not one comes that day, and the working spans say when
// it stopped working. Only the part inside the row's working spans
// counts, never before the day's first arrival (before it, no decision of
// that day is waited from), and never while an object is in the zone. An
// object with no decision yet is in the zone still: nothing after its
// arrival counts. The day's figure does not change when the next day's
// objects arrive.
//
// Zones arriving before the day only keep the zone busy until their
// decision past midnight. One of them with no decision at all is taken as
// gone: a decision never recorded the day before must not wipe out the
// next day's waiting.
func timeWait(zs []cases.Zone, from, to time.Time, working []availability.Span) time.Duration {
	type busy struct {
		start, end time.Time
		open       bool // an object with no decision yet: busy for good
	}
	var first time.Time
	var bs []busy
	for _, z := range zs {
		if (z.Arrival.Before(from) && z.Decision.IsZero()) || !z.Arrival.Before(to) {
			continue
		}
		if first.IsZero() && !z.Arrival.Before(from) {
			first = z.Arrival
		}
		b := busy{start: z.Arrival, end: z.Decision, open: z.Decision.IsZero()}
		if !b.open && b.end.Before(b.start) {
			b.end = b.start // a decision timed before its arrival: no stay
		}
		if n := len(bs); n > 0 && (bs[n-1].open || !b.start.After(bs[n-1].end)) {
			last := &bs[n-1]
			last.open = last.open || b.open
			if b.end.After(last.end) {
				last.end = b.end
			}
			continue
		}
		bs = append(bs, b)
	}
	if first.IsZero() {
		return 0
	}
	var total time.Duration
	for i := 0; i < len(bs) && !bs[i].open; i++ {
		gapStart, gapEnd := bs[i].end, to
		if i+1 < len(bs) {
			gapEnd = bs[i+1].start
		}
		if gapStart.Before(first) {
			gapStart = first
		}
		for _, w := range working {
			s, e := w.Start, w.End
			if s.Before(gapStart) {
				s = gapStart
			}
			if e.After(gapEnd) {
				e = gapEnd
			}
			if e.After(s) {
				total += e.Sub(s)
			}
		}
	}
	return total
}

// table3Row writes an availability row in table 3's columns, with
// TIME_WAIT wait and the object counts c (nil: all 0).
func table3Row(a availability.Row, wait string, c Counts) Row {
	r := make(Row, len(Table3.Columns))
	set := func(name, v string) { r[Table3.Field(name)] = v }
	set("DATE", a.DATE)
	set("PRIZ_PEREDISL", strconv.Itoa(a.PRIZ_PEREDISL))
	set("TYPE_IDK", strconv.FormatUint(uint64(a.TYPE_IDK), 10))
	set("NUM_IDK", a.NUM_IDK)
	set("KOD_M_D", a.KOD_M_D)
	set("NAIM_M_D", a.NAIM_M_D)
	set("NAIM_ZTK_M_D", a.NAIM_ZTK_M_D)
	set("DISL_P", strconv.FormatUint(uint64(a.DISL_P), 10))
	set("TIME_JOB", a.TIME_JOB)
	set("TIME_WAIT", wait)
	set("TIME_OPER", a.TIME_OPER)
	set("TIME_TEH", a.TIME_TEH)
	set("TIME_NEPAB", a.TIME_NEPAB)
	set("TIME_PEREDISL", a.TIME_PEREDISL)
	for i, col := range Table3.Columns {
		if strings.HasPrefix(col.Name, "OKO_") || strings.HasPrefix(col.Name, "KOVR_") {
			r[i] = strconv.Itoa(c[col.Name])
		}
	}
	return r
}
