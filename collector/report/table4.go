package report

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"idk/collector/cases"
)

// BreachSource is the case engine's table 4 (*cases.Engine implements it).
type BreachSource interface {
	BreachHistory(from, to time.Time) ([]cases.History, error)
}

// breachLookback is how far before the report's first day Table4Rows asks
// for histories. BreachHistory lists a case under the day of its first
// breach mark, withdrawn or not, while DATE_NAR is the day of its first
// standing one: a case whose first mark was withdrawn and whose later
// mark stands has a later DATE_NAR. Every mark of a case comes while the
// case is live, within the case engine's Retention of its previous event,
// so a case listed more than that before the report's first day cannot
// have its DATE_NAR in it but in the rarest of cases (a correction naming
// an old case by its ID).
const breachLookback = cases.Retention

// Table4Rows returns table 4's rows for kodTO whose DATE_NAR is in [from, to):
// every breach ever recorded, in its latest version, ordered by DATE_NAR,
// NUM_IDK, NUM_SNIM. A breach later withdrawn (a late end event showed it
// within the limit, or its risk was withdrawn) is never removed from the
// report (A4 rule 5): its row stays with the times of its last standing
// version and PRICH_NAR saying it was withdrawn, when, by whom and why
// (upper case, e.g. "ОТМЕНЕНО 28.11.2026 ИВАНОВ: <reason>"), and a
// correction that changed its times shows the new times.
//
// A row whose case still stands is the case's current row: a breach still
// running shows its time so far. When only one of a row's breaches was
// withdrawn (its risk withdrawn, its TIME_2 breach standing), that TIME_x
// keeps its last value too and PRICH_NAR adds "TIME_1 ОТМЕНЕНО ...", so no
// recorded time leaves the report. DATE_NAR is a date: a day counts when
// it overlaps [from, to), in from's time zone, which must be the case
// engine's. TYPE_IDK and DISL_IDK are empty when the ИДК's identity is not
// known, rather than 0, which is no code. Rows of one DATE_NAR, NUM_IDK
// and NUM_SNIM (an arrival never scanned has no NUM_SNIM) are in the order
// of their cases' IDs.
func Table4Rows(src BreachSource, kodTO string, from, to time.Time) ([]Row, error) {
	bs, err := tableBreaches(src, kodTO, from, to)
	if err != nil {
		return nil, fmt.Errorf("report: table 4: %w", err)
	}
	rows := make([]Row, len(bs))
	for i, b := range bs {
		rows[i] = table4Row(b.row)
	}
	return rows, nil
}

// breach is a case's table 4 row with its DATE_NAR.
type breach struct {
	date    time.Time
	history cases.History
	row     cases.Row
}

// tableBreaches selects the table 4 rows of kodTO whose DATE_NAR is in
// [from, to), in the table's order: DATE_NAR, NUM_IDK, NUM_SNIM, case.
// Table4Rows writes them; the item 36 report keeps their cases too.
func tableBreaches(src BreachSource, kodTO string, from, to time.Time) ([]breach, error) {
	if !from.Before(to) {
		return nil, nil
	}
	loc := from.Location()
	hs, err := src.BreachHistory(from.Add(-breachLookback), to.Add(-time.Nanosecond))
	if err != nil {
		return nil, err
	}
	var picked []breach
	for _, h := range hs {
		row, ok := latest(h)
		if !ok || row.KOD_TO != kodTO {
			continue
		}
		date, err := ParseDate(row.DATE_NAR, loc)
		if err != nil {
			return nil, fmt.Errorf("case %s: DATE_NAR: %w", h.ID, err)
		}
		if !NextDay(date).After(from) || !date.Before(to) {
			continue
		}
		picked = append(picked, breach{date, h, row})
	}
	slices.SortFunc(picked, func(a, b breach) int {
		return cmp.Or(a.date.Compare(b.date), strings.Compare(a.row.NUM_IDK, b.row.NUM_IDK),
			strings.Compare(a.row.NUM_SNIM, b.row.NUM_SNIM), strings.Compare(a.history.ID, b.history.ID))
	})
	return picked, nil
}

// latest is the row a case's history puts in table 4: its current row,
// or the last standing version's once every breach is withdrawn, with
// every withdrawn TIME_x restored and PRICH_NAR saying what was withdrawn.
// ok is false for a history with no version to show.
func latest(h cases.History) (row cases.Row, ok bool) {
	vs := h.Versions
	var notes []string
	switch last := lastStanding(vs); {
	case h.Current != nil:
		row = *h.Current
	case last >= 0:
		row = vs[last].Row
		if last+1 < len(vs) {
			notes = append(notes, withdrawal("ОТМЕНЕНО", vs[last+1]))
		}
	default:
		return cases.Row{}, false
	}
	times := [3]*string{&row.TIME_1, &row.TIME_2, &row.TIME_3}
	for i, name := range []string{"TIME_1", "TIME_2", "TIME_3"} {
		if *times[i] != "" {
			continue
		}
		// The last version that showed this breach, and the one after
		// it, which withdrew it.
		j := len(vs) - 1
		for j >= 0 && *fieldOf(&vs[j].Row, i) == "" {
			j--
		}
		if j < 0 {
			continue // never breached
		}
		*times[i] = *fieldOf(&vs[j].Row, i)
		if j+1 < len(vs) {
			notes = append(notes, withdrawal(name+" ОТМЕНЕНО", vs[j+1]))
		}
	}
	row.PRICH_NAR = strings.Join(slices.DeleteFunc(append([]string{row.PRICH_NAR}, notes...), func(s string) bool { return s == "" }), "; ")
	return row, true
}

func fieldOf(r *cases.Row, i int) *string {
	return [3]*string{&r.TIME_1, &r.TIME_2, &r.TIME_3}[i]
}

// lastStanding is the index of the last version in which the row stood,
// or -1.
func lastStanding(vs []cases.Version) int {
	for i := len(vs) - 1; i >= 0; i-- {
		if vs[i].Standing {
			return i
		}
	}
	return -1
}

// withdrawal says what withdrew a breach, upper case (A4 rule 4): what,
// the day, who and why, e.g. "ОТМЕНЕНО 28.11.2026 ИВАНОВ: ЗАПИСЬ ИЗ
// ЖУРНАЛА". v is the version that withdrew it.
func withdrawal(what string, v cases.Version) string {
	by := v.By
	if by == "collector" {
		by = "КОЛЛЕКТОР" // no one reported it: the collector saw it
	}
	return strings.ToUpper(fmt.Sprintf("%s %s %s: %s", what, FormatDate(v.At), strings.TrimSpace(by), whyOf(v.Why)))
}

// eventNames are the Russian names of the case events that can withdraw
// a breach, for a withdrawal reported without a reason.
var eventNames = map[cases.Kind]string{
	cases.DocsHanded:      "документы переданы (п. 20в)",
	cases.CarrierInformed: "перевозчик проинформирован (п. 20г)",
	cases.Arrival:         "прибытие в зону",
	cases.Scan:            "сканирование",
	cases.Decision:        "решение",
	cases.DocsReturned:    "документы возвращены (п. 22д)",
	cases.ActHanded:       "акт передан (п. 24б)",
	cases.RiskWithdrawn:   "риск отозван",
}

// whyOf is the reason of a withdrawal from a version's Why, whole. The
// case engine writes it as "<kind> event of <RFC 3339 time>[, VER_SCAN
// <code> (<short name>)][, reason: <reason>]": the reason given, else the
// event in Russian with its time, and in either case the kind of scan
// when the event declared one, as "ВИД СНИМКА <code> (<short name>)": a
// scan kind that inspects no object withdraws the object's timers, and
// the row must say which kind did. A Why of any other shape is given as
// it is.
func whyOf(why string) string {
	head, reason, _ := strings.Cut(why, ", reason: ")
	reason = strings.TrimSpace(reason)
	kind, rest, ok := strings.Cut(head, " event of ")
	name, known := eventNames[cases.Kind(kind)]
	if !ok || !known {
		if reason != "" {
			return reason
		}
		return why
	}
	stamp, verScan, _ := strings.Cut(rest, ", ")
	var parts []string
	switch at, err := time.Parse(time.RFC3339, stamp); {
	case reason != "":
		parts = append(parts, reason)
	case err != nil:
		parts = append(parts, name)
	default:
		parts = append(parts, name+" "+at.Format("02.01.2006 15:04"))
	}
	if code, found := strings.CutPrefix(strings.TrimSpace(verScan), "VER_SCAN "); found {
		parts = append(parts, "вид снимка "+code)
	}
	return strings.Join(parts, ", ")
}

// table4Row writes a case engine's row in table 4's columns.
func table4Row(c cases.Row) Row {
	r := make(Row, len(Table4.Columns))
	set := func(name, v string) { r[Table4.Field(name)] = v }
	code := func(n uint32) string {
		if n == 0 {
			return ""
		}
		return strconv.FormatUint(uint64(n), 10)
	}
	set("KOD_TO", c.KOD_TO)
	set("NAIM_TO", c.NAIM_TO)
	set("NAIM_ZTK", c.NAIM_ZTK)
	set("TYPE_IDK", code(c.TYPE_IDK))
	set("NUM_IDK", c.NUM_IDK)
	set("DISL_IDK", code(c.DISL_IDK))
	set("DATE_NAR", c.DATE_NAR)
	set("NUM_SNIM", c.NUM_SNIM)
	set("TIME_1", c.TIME_1)
	set("TIME_2", c.TIME_2)
	set("TIME_3", c.TIME_3)
	set("PRICH_NAR", strings.ToUpper(c.PRICH_NAR))
	return r
}
