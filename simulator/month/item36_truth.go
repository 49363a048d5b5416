package month

import (
	"cmp"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"idk/collector/report"
	"idk/protocol/idkpb"
)

// This file is the truth of the item 36 report (reference §3.3: the
// month's breaches and their causes, which the head of post reports and
// the first deputy decides on) and of the end-of-shift lists of item
// 23б. Like the daily truth it reads the plan, not collector code: the
// breaches are the plan's table 4 rows (truth.go), the shift lists the
// plan's scans and their last saved forms.

// DeputyDecision is the first deputy head's decision on a breached
// inspection after the month (item 36): whether its causes were
// objective. The test records it, at At, for the table 4 row of the scan.
type DeputyDecision struct {
	NumIDK, NumSnim string
	Objective       bool
	By, Note        string
	At              time.Time
}

// deputies are the first deputies of the offices, as they sign: mixed
// case, which the report writes upper case (A4 rule 4).
var deputies = map[string]string{"10216100": "Кузнецов К.К.", "10216200": "Волков В.В."}

// DeputyDecisions are the decisions the first deputies take after the
// month, in time order: on about half of the standing breaches (a
// withdrawn one is no breach to decide on), on the 3rd of the next month
// from 10:00, and for about one in four of those a second decision the
// day after that reverses the first (a new version, which is then in
// force). They are drawn from the seed apart from the month's plan, so
// the plan is the same with or without them.
func (m *Month) DeputyDecisions() []DeputyDecision {
	rng := rand.New(rand.NewPCG(uint64(m.Seed), 0x69746d3336))
	first := m.Start.AddDate(0, 1, 2).Add(10 * time.Hour)
	var out []DeputyDecision
	n := 0
	for _, s := range m.scans {
		b, ok := s.breach()
		if !ok || b.withdrawn != "" || rng.Float64() >= 0.5 {
			continue
		}
		kod := s.dev.siteOf(b.first).KodTO
		d := DeputyDecision{NumIDK: s.dev.dev.NumIDK(), NumSnim: s.numSnim, Objective: rng.IntN(2) == 0,
			By: deputies[kod], At: first.Add(time.Duration(n) * 7 * time.Minute)}
		if d.Objective {
			d.Note = "Причины признаны объективными"
		}
		n++
		out = append(out, d)
		if rng.Float64() < 0.25 {
			again := d
			again.Objective = !d.Objective
			again.Note = "Пересмотрено"
			again.At = d.At.AddDate(0, 0, 1)
			out = append(out, again)
		}
	}
	slices.SortStableFunc(out, func(a, b DeputyDecision) int { return a.At.Compare(b.At) })
	return out
}

// ExpectedItem36 is the item 36 report of office kodTO for the month, in
// the columns of report.Item36Table, given the decisions taken (those of
// DeputyDecisions, applied in order: the last on a scan is in force).
// Its rows are the month's table 4 rows of the office (the daily truth's
// rows on the last day, so withdrawn breaches too), ordered by the post
// (NAIM_ZTK), then the breaches still without a cause (PRICH_NAR empty)
// first, then in table 4's order. RESHENIE is ОБЪЕКТИВНАЯ or
// НЕОБЪЕКТИВНАЯ, KTO_RESHIL who decided, upper case, DATA_RESHENIYA the
// day of the decision; all three empty without one.
func (m *Month) ExpectedItem36(kodTO string, decisions []DeputyDecision) [][]string {
	in := map[string]DeputyDecision{}
	for _, d := range decisions {
		in[d.NumIDK+"/"+d.NumSnim] = d
	}
	field := func(name string) int { return report.Item36Table.Index(name) }
	// Table 4's columns come first in report.Item36Table, as in Table4.
	t4 := m.table4(kodTO, m.Start.AddDate(0, 1, 0))
	rows := make([][]string, 0, len(t4))
	for _, r := range t4 {
		row := make([]string, len(report.Item36Table.Columns))
		for _, name := range Header(4) {
			row[field(name)] = r[Column(4, name)]
		}
		if d, ok := in[row[field("NUM_IDK")]+"/"+row[field("NUM_SNIM")]]; ok {
			row[field("RESHENIE")] = "НЕОБЪЕКТИВНАЯ"
			if d.Objective {
				row[field("RESHENIE")] = "ОБЪЕКТИВНАЯ"
			}
			row[field("KTO_RESHIL")] = upper(d.By)
			row[field("DATA_RESHENIYA")] = date(d.At)
		}
		rows = append(rows, row)
	}
	ztk, prich := field("NAIM_ZTK"), field("PRICH_NAR")
	rank := func(r []string) int {
		if r[prich] == "" {
			return 0
		}
		return 1
	}
	slices.SortStableFunc(rows, func(a, b []string) int {
		return cmp.Or(strings.Compare(a[ztk], b[ztk]), rank(a)-rank(b))
	})
	return rows
}

// ShiftEntry is one scan of an end-of-shift list (item 23б): an object
// found «без подозрения» whose image the operator marked.
type ShiftEntry struct {
	KodTO, NaimTO, NaimZTK, NumIDK, NumSnim string
	At                                      time.Time // the ScanSeen
	NumTS, NumPTS, NumCont, NaimTov, Prim   string    // as table 1 has them
	Operator                                string    // the login on the form
}

// Shift is one shift of one ИДК and its end-of-shift list.
type Shift struct {
	NumIDK   string
	From, To time.Time
	Items    []ShiftEntry
}

// Shifts are the end-of-shift lists of every ИДК for every shift of the
// month, 08:00-20:00 and 20:00-08:00 local, from the night shift that
// began on the last evening of the month before to the one that ends on
// the 1st of the next: per ИДК, in time order. A list holds the shift's
// scans, by ScanSeen time, whose last saved form decided «Объект без
// подозрения» (REZ 1) with marks on the image (OS_OTM 1), in scan order;
// most shifts' lists are empty.
func (m *Month) Shifts() []Shift {
	var out []Shift
	for _, d := range m.devs {
		for i := -1; i < m.Days; i++ {
			y, mo, dd := m.Start.AddDate(0, 0, i).Date()
			day := time.Date(y, mo, dd, 8, 0, 0, 0, m.Loc)
			night := time.Date(y, mo, dd, 20, 0, 0, 0, m.Loc)
			next := time.Date(y, mo, dd+1, 8, 0, 0, 0, m.Loc)
			if i >= 0 {
				out = append(out, m.shift(d, day, night))
			}
			out = append(out, m.shift(d, night, next))
		}
	}
	return out
}

func (m *Month) shift(d *devPlan, from, to time.Time) Shift {
	sh := Shift{NumIDK: d.dev.NumIDK(), From: from, To: to}
	for _, s := range m.scans {
		if s.dev != d || s.scanAt.Before(from) || !s.scanAt.Before(to) {
			continue
		}
		f := s.forms[len(s.forms)-1]
		if f.Decision != idkpb.Decision_DECISION_NOT_SUSPECTED || f.Marks == 0 {
			continue
		}
		r := m.scanRow(s)
		sh.Items = append(sh.Items, ShiftEntry{
			KodTO: r["KOD_TO"], NaimTO: r["NAIM_TO"], NaimZTK: r["NAIM_ZTK"], NumIDK: r["NUM_IDK"], NumSnim: s.numSnim,
			At: s.scanAt, NumTS: r["NUM_TS"], NumPTS: r["NUM_P_TS"], NumCont: r["NUM_CONT"], NaimTov: r["NAIM_TOV"],
			Prim: r["PRIM"], Operator: strings.TrimSpace(f.Operator),
		})
	}
	slices.SortStableFunc(sh.Items, func(a, b ShiftEntry) int {
		return cmp.Or(a.At.Compare(b.At), strings.Compare(a.NumSnim, b.NumSnim))
	})
	return sh
}
