package report_test

import (
	"bytes"
	"flag"
	"fmt"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"idk/collector/report"
	"idk/simulator/month"
)

// monthSeed is the simulated month's seed: the same seed, the same month.
const monthSeed = 20261101

// monthReadAll makes TestMonth read every workbook back, as it does by
// default: the test is of the 30 files themselves. -month.readall=false
// reads back only the 1st's, the 15th's and the last day's, for a quicker
// run while working on the report.
var monthReadAll = flag.Bool("month.readall", true, "TestMonth: read every daily workbook back, not only some")

// TestMonth plays a simulated month (simulator/month) at five ИДК of two
// customs offices through the collector's real parts — the store, ingest
// with the availability journal, the case feed and the scan journal, the
// case engine, officers' entries and the roster — on a virtual clock,
// then builds the 30 daily reports of each office, writes each as a
// workbook, reads it back, and compares every cell with the month's
// ground truth, which the simulator computes from its plan by its own
// reading of the rules.
//
// The files are built once the month is over and the breaches' reasons
// are given (item 36), so each day's file must hold everything dated from
// the 1st to that day. The test is in package report_test because
// simulator/month takes the tables' column lists from this package.
//
// Every file is built, written and read back as a spreadsheet shows its
// cells, and every cell is compared (-month.readall=false reads back only
// the files of the 1st, the 15th and the last day of each office, which
// hold every row of the month, and compares the others as written).
func TestMonth(t *testing.T) {
	w := theMonth(t)
	m, played := w.m, w.played
	began := time.Now().Add(-played)

	// The 60 files, built, written and read back on every core; each is
	// compared as it comes, and the findings are merged in file order so
	// that "first in" names the earliest file.
	b := w.builder
	type job struct {
		kodTO    string
		day      time.Time
		readBack bool
		found    []finding
		err      error
	}
	var jobs []*job
	for _, o := range m.Offices {
		for i := range m.Days {
			rb := *monthReadAll || i == 0 || i == 14 || i == m.Days-1
			jobs = append(jobs, &job{kodTO: o.KodTO, day: m.Start.AddDate(0, 0, i), readBack: rb})
		}
	}
	// The biggest files first, so that no worker is left with one at the
	// end.
	order := slices.Clone(jobs)
	slices.SortStableFunc(order, func(a, b *job) int {
		if a.readBack != b.readBack {
			if a.readBack {
				return -1
			}
			return 1
		}
		return b.day.Compare(a.day)
	})
	next := make(chan *job)
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for j := range next {
				j.found, j.err = checkDaily(b, m, j.kodTO, j.day, j.readBack)
			}
		})
	}
	for _, j := range order {
		next <- j
	}
	close(next)
	wg.Wait()
	diffs := newDiffs()
	for _, j := range jobs {
		if j.err != nil {
			t.Fatalf("office %s, %s: %v", j.kodTO, j.day.Format("02.01.2006"), j.err)
		}
		diffs.merge(j.found)
	}
	t.Logf("%d actions played in %v; %d workbooks built and compared in %v", len(m.Actions), played.Round(time.Millisecond),
		len(jobs), (time.Since(began) - played).Round(time.Millisecond))
	diffs.report(t)
}

// checkDaily builds the report of kodTO for day, writes it, and compares
// it with the truth: the workbook read back when readBack is set, else
// the rows as they were written.
func checkDaily(b *report.Builder, m *month.Month, kodTO string, day time.Time, readBack bool) ([]finding, error) {
	d, err := b.Daily(kodTO, day)
	if err != nil {
		return nil, err
	}
	written := map[string][][]string{}
	for i, s := range d.Sheets {
		rows := s.Rows
		written[s.Table.Sheet] = [][]string{month.Header(s.Table.Number)}
		d.Sheets[i].Rows = func(emit func(report.Row) error) error {
			return rows(func(r report.Row) error {
				written[s.Table.Sheet] = append(written[s.Table.Sheet], slices.Clone(r))
				return emit(r)
			})
		}
	}
	var buf bytes.Buffer
	if err := d.WriteXLSX(&buf); err != nil {
		return nil, fmt.Errorf("write: %w", err)
	}
	wb := written
	if readBack {
		if wb, err = report.ReadWorkbook(&buf); err != nil {
			return nil, fmt.Errorf("read back: %w", err)
		}
	}
	want := m.Expected(kodTO, day)
	var found []finding
	for n, tbl := range report.Tables {
		found = compareTable(found, kodTO, day, n+1, tbl, wb[tbl.Sheet], want[n+1])
	}
	return found, nil
}

// rowKeys name a row for the comparison, so that a missing row shows as
// one missing row rather than every row after it differing: the fields
// that identify it, and its rank among rows with the same ones.
var rowKeys = map[int][]string{
	1: {"NUM_IDK", "NUM_SNIM"},
	2: {"NUM_SNIM"},
	3: {"DATE", "NUM_IDK", "NAIM_ZTK_M_D"},
	4: {"NUM_IDK", "NUM_SNIM"},
	5: {"KOD_TO", "DATE_SYS"},
	6: {"DATE_SYS_V", "NUM_SNIM"},
}

func keysOf(n int, tbl *report.Table, rows [][]string) []string {
	seen := map[string]int{}
	keys := make([]string, len(rows))
	for i, r := range rows {
		var parts []string
		for _, f := range rowKeys[n] {
			if j := tbl.Index(f); j < len(r) {
				parts = append(parts, r[j])
			}
		}
		k := strings.Join(parts, " ")
		seen[k]++
		if seen[k] > 1 {
			k += fmt.Sprintf(" #%d", seen[k])
		}
		keys[i] = k
	}
	return keys
}

// finding is one difference: key names it (a file repeats the days
// before it, so each is reported once), field groups the cell
// differences ("" for the rest: headers, missing and extra rows, order).
type finding struct {
	key, field, msg string
}

// compareTable adds the differences of one sheet to found.
func compareTable(found []finding, kodTO string, day time.Time, n int, tbl *report.Table, got, want [][]string) []finding {
	where := fmt.Sprintf("%s %s table %d", kodTO, day.Format("02.01.2006"), n)
	note := func(key, msg string) { found = append(found, finding{key: key, msg: msg}) }
	if len(got) == 0 {
		note("sheet "+tbl.Sheet, fmt.Sprintf("%s: sheet %q missing or empty", where, tbl.Sheet))
		return found
	}
	if h := month.Header(n); !slices.Equal(got[0], h) {
		note(fmt.Sprintf("header %d", n), fmt.Sprintf("table %d: header %q, want %q", n, got[0], h))
	}
	got = got[1:]
	gk, wk := keysOf(n, tbl, got), keysOf(n, tbl, want)
	gi := map[string]int{}
	for i, k := range gk {
		gi[k] = i
	}
	wi := map[string]int{}
	for i, k := range wk {
		wi[k] = i
	}
	var missing, extra []string
	for i, k := range wk {
		j, ok := gi[k]
		if !ok {
			missing = append(missing, k)
			continue
		}
		g, w := got[j], want[i]
		for c, col := range tbl.Columns {
			gv := ""
			if c < len(g) {
				gv = g[c]
			}
			if gv == w[c] {
				continue
			}
			id := fmt.Sprintf("table %d %s", n, col.Name)
			cell := fmt.Sprintf("%s row %s: want %q, got %q", id, k, w[c], gv)
			found = append(found, finding{key: cell, field: id, msg: fmt.Sprintf("%s (first in %s)", cell, where)})
		}
	}
	var firstExtra []string
	for j, k := range gk {
		if _, ok := wi[k]; !ok {
			if extra == nil {
				firstExtra = got[j]
			}
			extra = append(extra, k)
		}
	}
	if len(missing) > 0 {
		note(fmt.Sprintf("missing %d %q", n, missing), fmt.Sprintf("table %d: %d rows missing (first in %s), e.g. %q", n, len(missing), where, missing[:min(3, len(missing))]))
	}
	if len(extra) > 0 {
		note(fmt.Sprintf("extra %d %q", n, extra), fmt.Sprintf("table %d: %d rows not in the truth (first in %s), e.g. %q; the first is %q", n, len(extra), where, extra[:min(3, len(extra))], firstExtra))
	}
	if len(missing) == 0 && len(extra) == 0 && !slices.Equal(gk, wk) {
		for i := range gk {
			if gk[i] != wk[i] {
				note(fmt.Sprintf("order %d", n), fmt.Sprintf("table %d: row order differs (first in %s): row %d is %q, want %q", n, where, i+1, gk[i], wk[i]))
				break
			}
		}
	}
	return found
}

// diffs collects the findings of all the files, each once.
type diffs struct {
	seen    map[string]bool
	byField map[string]int      // "table N FIELD" -> distinct cells
	example map[string][]string // first examples per field
	other   []string
}

func newDiffs() *diffs {
	return &diffs{seen: map[string]bool{}, byField: map[string]int{}, example: map[string][]string{}}
}

func (d *diffs) merge(found []finding) {
	for _, f := range found {
		if d.seen[f.key] {
			continue
		}
		d.seen[f.key] = true
		if f.field == "" {
			d.other = append(d.other, f.msg)
			continue
		}
		d.byField[f.field]++
		if len(d.example[f.field]) < 3 {
			d.example[f.field] = append(d.example[f.field], f.msg)
		}
	}
}

// report fails the test with a bounded summary of the differences.
func (d *diffs) report(t *testing.T) {
	t.Helper()
	const maxOther = 30
	for i, s := range d.other {
		if i == maxOther {
			t.Errorf("... and %d more", len(d.other)-i)
			break
		}
		t.Error(s)
	}
	ids := make([]string, 0, len(d.byField))
	for id := range d.byField {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		t.Errorf("%s: %d cells differ, e.g.\n\t%s", id, d.byField[id], strings.Join(d.example[id], "\n\t"))
	}
}
