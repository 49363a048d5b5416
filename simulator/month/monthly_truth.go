package month

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"idk/collector/report"
)

// This file is the ground truth of the monthly report (item 37) of the
// simulated month: the rows of its two summary sheets, «Сводка по
// таможням» and «Сводка по ИДК». Their counts are sums over the month's
// expected daily tables (Expected of the last day, every office), which
// the truth derives from the plan; who is listed, with which name and
// type, comes from the plan itself. Only the summaries' column lists are
// taken from collector/report, for their names and order.

// monthlyTally is one summary row being counted, by column name.
type monthlyTally struct {
	counts  map[string]int // KOL_VO_* columns
	minutes map[string]int // table 3's duration columns, in minutes
}

func newTally() *monthlyTally {
	return &monthlyTally{counts: map[string]int{}, minutes: map[string]int{}}
}

// durations are table 3's duration fields the summaries add up.
var durations = []string{"TIME_JOB", "TIME_WAIT", "TIME_OPER", "TIME_TEH", "TIME_NEPAB", "TIME_PEREDISL"}

// minutesOf reads the truth's own "H,MM" (hm above) back as minutes.
func minutesOf(s string) int {
	h, mm, ok := strings.Cut(s, ",")
	hours, err1 := strconv.Atoi(h)
	mins, err2 := strconv.Atoi(mm)
	if !ok || err1 != nil || err2 != nil {
		panic(fmt.Sprintf("month: duration %q is not H,MM", s))
	}
	return hours*60 + mins
}

func (t *monthlyTally) fields() map[string]string {
	f := map[string]string{}
	for k, n := range t.counts {
		f[k] = strconv.Itoa(n)
	}
	for _, d := range durations {
		n := t.minutes[d]
		f[d] = fmt.Sprintf("%d,%02d", n/60, n%60)
	}
	return f
}

func (t *monthlyTally) plus(o *monthlyTally) {
	for k, n := range o.counts {
		t.counts[k] += n
	}
	for k, n := range o.minutes {
		t.minutes[k] += n
	}
}

// ExpectedMonthly is the content of the two summary sheets of the monthly
// report of the month for the offices in m.Offices' order: the rows of
// «Сводка по таможням» (one per office) and of «Сводка по ИДК» (one per
// ИДК of each office, by NUM_IDK), below the header, in the column order
// of report.SummaryOffices and report.SummaryIDK.
//
// Per ИДК, from the office's tables of the month's last day:
//
//   - KOL_VO_SNIM: its table 1 rows; KOL_VO_PODOZR those with REZ 2;
//   - KOL_VO_NAR: its table 4 rows; KOL_VO_NAR_TIME_x those with TIME_x
//     filled; KOL_VO_BEZ_PRICH those with no PRICH_NAR;
//   - TIME_*: its table 3 durations summed; KOL_VO_DN_NEPAB its table 3
//     rows with TIME_NEPAB above zero.
//
// An office's row is the sum of its ИДК's, with NAIM_TO the office's name
// and KOL_VO_IDK the number of its ИДК (every ИДК of the plan works in its
// own office only and has a table 3 row every day, so each has a row).
func (m *Month) ExpectedMonthly() (offices, idk [][]string) {
	last := m.Start.AddDate(0, 0, m.Days-1)
	for _, o := range m.Offices {
		var nums []string
		types := map[string]string{}
		for _, d := range m.Devices {
			if d.Hello.KodTo == o.KodTO {
				nums = append(nums, d.NumIDK())
				types[d.NumIDK()] = strconv.Itoa(int(d.Hello.TypeIdk))
			}
		}
		slices.Sort(nums)
		tallies := map[string]*monthlyTally{}
		for _, n := range nums {
			tallies[n] = newTally()
		}
		of := func(table int, row []string) *monthlyTally {
			n := row[Column(table, "NUM_IDK")]
			t, ok := tallies[n]
			if !ok {
				panic(fmt.Sprintf("month: office %s table %d has a row of ИДК %s, not one of its own", o.KodTO, table, n))
			}
			return t
		}
		want := m.Expected(o.KodTO, last)
		for _, r := range want[1] {
			t := of(1, r)
			t.counts["KOL_VO_SNIM"]++
			if r[Column(1, "REZ")] == "2" {
				t.counts["KOL_VO_PODOZR"]++
			}
		}
		for _, r := range want[3] {
			t := of(3, r)
			for _, d := range durations {
				t.minutes[d] += minutesOf(r[Column(3, d)])
			}
			if minutesOf(r[Column(3, "TIME_NEPAB")]) > 0 {
				t.counts["KOL_VO_DN_NEPAB"]++
			}
		}
		for _, r := range want[4] {
			t := of(4, r)
			t.counts["KOL_VO_NAR"]++
			for i := 1; i <= 3; i++ {
				if r[Column(4, fmt.Sprintf("TIME_%d", i))] != "" {
					t.counts[fmt.Sprintf("KOL_VO_NAR_TIME_%d", i)]++
				}
			}
			if strings.TrimSpace(r[Column(4, "PRICH_NAR")]) == "" {
				t.counts["KOL_VO_BEZ_PRICH"]++
			}
		}
		total := newTally()
		for _, n := range nums {
			t := tallies[n]
			total.plus(t)
			f := t.fields()
			f["KOD_TO"], f["NUM_IDK"], f["TYPE_IDK"] = o.KodTO, n, types[n]
			idk = append(idk, summaryRow(&report.SummaryIDK, f))
		}
		f := total.fields()
		f["KOD_TO"], f["NAIM_TO"], f["KOL_VO_IDK"] = o.KodTO, upper(o.NaimTO), strconv.Itoa(len(nums))
		offices = append(offices, summaryRow(&report.SummaryOffices, f))
	}
	return offices, idk
}

// summaryRow writes f in t's column order; a count not given is 0.
func summaryRow(t *report.Table, f map[string]string) []string {
	row := make([]string, len(t.Columns))
	for i, c := range t.Columns {
		v, ok := f[c.Name]
		if !ok && strings.HasPrefix(c.Name, "KOL_VO_") {
			v = "0"
		}
		row[i] = v
	}
	for k := range f {
		if t.Index(k) < 0 {
			panic(fmt.Sprintf("month: %s has no column %s", t.Sheet, k))
		}
	}
	return row
}

// SummaryHeader is the header row of a summary sheet.
func SummaryHeader(t *report.Table) []string {
	h := make([]string, len(t.Columns))
	for i, c := range t.Columns {
		h[i] = c.Name
	}
	return h
}
