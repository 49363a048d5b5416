package report_test

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"idk/collector/availability"
	"idk/collector/cases"
	"idk/collector/ingest"
	"idk/collector/registry"
	"idk/collector/report"
	"idk/collector/store"
	"idk/protocol/idkpb"
	"idk/simulator/month"
	"idk/simulator/simclock"
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
	if testing.Short() {
		t.Skip("a month of five ИДК")
	}
	began := time.Now()
	loc := time.FixedZone("MSK", 3*3600)
	m := month.Generate(monthSeed, time.Date(2026, time.November, 1, 0, 0, 0, 0, loc), loc)
	clk := simclock.New(m.Start.Add(-time.Hour))
	dir := scratchDir(t)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))

	st, err := store.Open(filepath.Join(dir, "store"), store.Options{Location: loc, Clock: clk, Log: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	index := ingest.FromStore(st)
	engine, err := cases.Open(filepath.Join(dir, "cases.db"), loc, clk)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { engine.Close() })
	journal := availability.NewJournal(availability.NewTracker(loc, clk))
	feed := cases.NewFeed(engine, quiet)
	scans := report.NewScanJournal(loc)
	scans.Use(index)
	events := ingest.New(ingest.Config{Log: index, Logger: quiet,
		Consumers: map[string]ingest.Consumer{"availability": journal, "cases": feed, "report.scans": scans},
		Followers: []ingest.Follower{journal, feed}})
	if err := events.Load(); err != nil {
		t.Fatal(err)
	}
	roster, err := report.OpenRoster(writeRoster(t, dir, m.Roster), clk)
	if err != nil {
		t.Fatal(err)
	}
	entries := report.NewEntries(index, scans, loc, clk)

	// The agents' hellos.
	for _, d := range m.Devices {
		if err := st.PutDevice(d.Hello); err != nil {
			t.Fatal(err)
		}
		if err := engine.SetDevice(registry.DeviceFromProto(d.Hello)); err != nil {
			t.Fatal(err)
		}
	}
	// The agents' clocks are right: the collector's correction is none.
	correct := func(ns int64) time.Time { return time.Unix(0, ns).In(loc) }
	lastTick := clk.Now()
	deadlines := m.Deadlines
	for _, a := range m.Actions {
		// The collector ticks every second: a breach is recorded the
		// second after its deadline, and a breach withdrawn while it
		// runs keeps the time it had then. Tick there.
		for len(deadlines) > 0 && !deadlines[0].Add(time.Second).After(a.At) {
			if d := deadlines[0].Add(time.Second).Sub(clk.Now()); d > 0 {
				clk.Advance(d)
			}
			if err := engine.Tick(); err != nil {
				t.Fatal(err)
			}
			deadlines = deadlines[1:]
		}
		if d := a.At.Sub(clk.Now()); d > 0 {
			clk.Advance(d)
		}
		// The collector ticks the engine every second; every quarter of
		// an hour is as good here (and a month of seconds too slow): a
		// breach is dated by its deadline whenever it is seen, and its
		// row shows the final duration once the end is reported.
		if clk.Now().Sub(lastTick) >= 15*time.Minute {
			if err := engine.Tick(); err != nil {
				t.Fatal(err)
			}
			lastTick = clk.Now()
		}
		switch {
		case a.Event != nil:
			if _, err := events.Ingest(a.Device.Hello, a.Device.Epoch, []*idkpb.Event{a.Event}, correct); err != nil {
				t.Fatalf("%v: ИДК %s event %d: %v", a.At, a.Device.NumIDK(), a.Event.Seq, err)
			}
		case a.Case != nil:
			c := a.Case
			ev := cases.Event{Kind: cases.Kind(c.Kind), Time: a.At, NumIDK: c.NumIDK, NumSnim: c.NumSnim, Docs: c.Docs,
				VerScan: cases.ScanKind(c.VerScan), By: c.By, Source: "api"}
			if r := c.Risk; r != nil {
				ev.Risk = cases.RiskProfile{KodTeh: r.KodTeh, VidPr: r.VidPr, KodToPr: r.KodToPr, DateReg: r.DateReg, NumPr: r.NumPr, DocType: int(r.DocType)}
			}
			if _, err := engine.Add(ev); err != nil {
				t.Fatalf("%v: %s: %v", a.At, c.Kind, err)
			}
		case a.Entry != nil:
			if _, err := entries.Add(a.Entry.Table, []map[string]string{a.Entry.Row}, a.Entry.By); err != nil {
				t.Fatalf("%v: table %d entry %v: %v", a.At, a.Entry.Table, a.Entry.Row, err)
			}
		case a.Counts != nil:
			c := report.Counts{}
			for k, v := range a.Counts.Fields {
				c[k] = v
			}
			if err := entries.SetCounts(a.Counts.NumIDK, a.Counts.Day, c, a.Counts.By); err != nil {
				t.Fatalf("%v: counts of %s: %v", a.At, a.Counts.NumIDK, err)
			}
		}
	}
	clk.Advance(m.End.Sub(clk.Now()))
	if err := engine.Tick(); err != nil {
		t.Fatal(err)
	}
	played := time.Since(began)

	// Item 36: the post gives reasons for the month's breaches.
	last := m.Start.AddDate(0, 0, m.Days-1)
	breaches, err := engine.Breaches(m.Start, last)
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]string{}
	for _, r := range breaches {
		ids[r.NUM_IDK+"/"+r.NUM_SNIM] = r.ID
	}
	for _, r := range m.Reasons {
		id, ok := ids[r.NumIDK+"/"+r.NumSnim]
		if !ok {
			t.Errorf("no table 4 row for scan %s of ИДК %s, which the truth says breached", r.NumSnim, r.NumIDK)
			continue
		}
		if err := engine.SetReason(id, r.Reason, r.By); err != nil {
			t.Fatal(err)
		}
	}

	// The 60 files, built, written and read back on every core; each is
	// compared as it comes, and the findings are merged in file order so
	// that "first in" names the earliest file.
	b := report.NewBuilder(report.Sources{Index: index, Scans: scans, Entries: entries, Cases: engine, Roster: roster, Location: loc, Clock: clk})
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

// scratchDir is a directory for the collector's files: in memory when the
// machine has /dev/shm, since a month is tens of thousands of synced
// transactions.
func scratchDir(t *testing.T) string {
	t.Helper()
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		dir, err := os.MkdirTemp("/dev/shm", "idk-month-")
		if err == nil {
			t.Cleanup(func() { os.RemoveAll(dir) })
			return dir
		}
	}
	return t.TempDir()
}

func writeRoster(t *testing.T, dir string, officers []month.Officer) string {
	t.Helper()
	var b strings.Builder
	for _, o := range officers {
		fmt.Fprintf(&b, "[[officer]]\nlogin = %q\nfio = %q\nlnp = %q\n\n", o.Login, o.FIO, o.LNP)
	}
	path := filepath.Join(dir, "roster.toml")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
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
