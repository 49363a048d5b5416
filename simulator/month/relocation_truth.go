package month

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"idk/collector/report"
)

// This file is the truth of the monthly return of relocations of mobile
// ИДК (reference §4, items 28-31): the place and period of each
// relocation of the month. It reads the plan's state timelines and the
// sites they set, not collector code; only the column list of
// report.RelocationTable is shared, for the columns' names and order.

// PlannedRelocation is one relocation of the plan: a run of RELOCATION
// time from the site the ИДК stood at when it began to the site in force
// when the next state began.
type PlannedRelocation struct {
	NumIDK     string
	TypeIDK    uint32
	From, To   Site
	Start, End time.Time
}

// Relocations are the plan's relocations, of every ИДК, in time order
// per ИДК (ИДК in the order of Devices).
func (m *Month) Relocations() []PlannedRelocation {
	var out []PlannedRelocation
	for _, d := range m.devs {
		changes := slices.Clone(d.changes)
		slices.SortStableFunc(changes, func(a, b change) int { return a.at.Compare(b.at) })
		var open *PlannedRelocation
		for _, c := range changes {
			switch {
			case c.state == relocation && open == nil:
				open = &PlannedRelocation{NumIDK: d.dev.NumIDK(), TypeIDK: d.dev.Hello.TypeIdk, From: d.siteOf(c.at), Start: c.at}
			case c.state != relocation && open != nil:
				open.To, open.End = d.siteOf(c.at), c.at
				out = append(out, *open)
				open = nil
			}
		}
		if open != nil {
			// Every planned day ends with the ИДК deployed and switched
			// off: a relocation the month leaves open is a plan error.
			panic(fmt.Sprintf("month: ИДК %s: relocation from %v never ends", d.dev.NumIDK(), open.Start))
		}
	}
	return out
}

// relocRegion is the region (РТУ, or a customs office directly under the
// FTS) of a customs body's 8-digit code. The reference's examples
// (§5.3: «10200000» an РТУ, «10012000» a body under the FTS, «10209000»
// a customs office) suggest: the first three digits are the РТУ, the
// next two the customs office; codes beginning "100" are of bodies
// under the FTS, their own region at the office level.
func relocRegion(kod string) string {
	if len(kod) != 8 {
		return kod
	}
	if strings.HasPrefix(kod, "100") {
		return kod[:5] + "000"
	}
	return kod[:3] + "00000"
}

// relocPunkt is the item that says who decides a relocation (§4): 28
// within one customs office (same first five digits), 29 within one
// РТУ, 30 between РТУ.
func relocPunkt(from, to string) int {
	switch {
	case len(from) == 8 && len(to) == 8 && from[:5] == to[:5], from == to:
		return 28
	case relocRegion(from) == relocRegion(to):
		return 29
	}
	return 30
}

// calendarDays is how many calendar days (in loc) [start, end] touches;
// arriving exactly at midnight does not touch the day that begins then.
func calendarDays(start, end time.Time, loc *time.Location) int {
	s, e := start.In(loc), end.In(loc)
	if e.After(s) && e.Hour() == 0 && e.Minute() == 0 && e.Second() == 0 && e.Nanosecond() == 0 {
		e = e.AddDate(0, 0, -1)
	}
	n := 1
	for d := time.Date(s.Year(), s.Month(), s.Day(), 0, 0, 0, 0, loc); ; n++ {
		d = d.AddDate(0, 0, 1)
		if d.After(e) {
			return n
		}
	}
}

// ExpectedRelocations are the rows of the month's relocation return, in
// the columns of report.RelocationTable: every planned relocation that
// overlaps the month (all do: each is a drive of an hour or so within a
// day), ordered by REGION, NUM_IDK and start. Text is upper case (A4
// rule 4), dates DD.MM.YYYY HH:MM in the month's zone, TIME_PEREDISL the
// duration in H,MM (to the nearest minute, half up), KOL_DN the calendar
// days touched, PUNKT the deciding item (28/29/30).
func (m *Month) ExpectedRelocations() [][]string {
	from, to := m.Start, m.Start.AddDate(0, 0, m.Days)
	var rels []PlannedRelocation
	for _, r := range m.Relocations() {
		if r.Start.Before(to) && r.End.After(from) {
			rels = append(rels, r)
		}
	}
	slices.SortStableFunc(rels, func(a, b PlannedRelocation) int {
		return cmp.Or(strings.Compare(relocRegion(a.From.KodTO), relocRegion(b.From.KodTO)),
			strings.Compare(a.NumIDK, b.NumIDK), a.Start.Compare(b.Start))
	})
	stamp := func(t time.Time) string { return t.In(m.Loc).Format("02.01.2006 15:04") }
	t := &report.RelocationTable
	var out [][]string
	for _, r := range rels {
		row := make([]string, len(t.Columns))
		set := func(name, v string) { row[t.Field(name)] = v }
		set("REGION", relocRegion(r.From.KodTO))
		set("NUM_IDK", r.NumIDK)
		set("TYPE_IDK", strconv.FormatUint(uint64(r.TypeIDK), 10))
		set("KOD_M_D_OT", r.From.KodTO)
		set("NAIM_M_D_OT", strings.ToUpper(r.From.NaimTO))
		set("NAIM_ZTK_M_D_OT", strings.ToUpper(r.From.NaimZTK))
		set("KOD_M_D_DO", r.To.KodTO)
		set("NAIM_M_D_DO", strings.ToUpper(r.To.NaimTO))
		set("NAIM_ZTK_M_D_DO", strings.ToUpper(r.To.NaimZTK))
		set("DATE_START", stamp(r.Start))
		set("DATE_END", stamp(r.End))
		set("TIME_PEREDISL", hm(r.End.Sub(r.Start)))
		set("KOL_DN", strconv.Itoa(calendarDays(r.Start, r.End, m.Loc)))
		set("PUNKT", strconv.Itoa(relocPunkt(r.From.KodTO, r.To.KodTO)))
		out = append(out, row)
	}
	return out
}
