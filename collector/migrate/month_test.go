package migrate_test

import (
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"

	"idk/collector/cases"
	"idk/collector/ingest"
	"idk/collector/kv"
	"idk/collector/migrate"
	"idk/collector/report"
	"idk/collector/store"
	"idk/simulator/monthplay"
	"idk/simulator/simclock"
)

// TestMigrateMonth moves a collector with a month of history and proves
// every file and report identical afterwards. The simulated month
// (simulator/monthplay, as collector/report's month tests play it) is
// played into an embedded store (bbolt, files under the root); every
// daily report of each office and the monthly report are built; the
// history is migrated to PostgreSQL and an S3 bucket; the store and the
// engine are opened on those, the same reports are built from them and
// compared cell by cell (and by digest), and every object is read back
// through the S3 API and compared with its source file.
func TestMigrateMonth(t *testing.T) {
	if testing.Short() {
		t.Skip("a month of five ИДК")
	}
	pg := newPG(t)
	bucket := newBucket(t)
	// In memory when the machine has /dev/shm: a month is tens of
	// thousands of synced transactions.
	dir, err := os.MkdirTemp("/dev/shm", "idk-migrate-month-")
	if err != nil {
		dir = t.TempDir()
	} else {
		t.Cleanup(func() { os.RemoveAll(dir) })
	}
	p, err := monthplay.Play(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	m := p.Month
	var offices []string
	for _, o := range m.Offices {
		offices = append(offices, o.KodTO)
	}
	began := time.Now()
	want := buildReports(t, p.Builder, m.Start, m.Days, offices)
	t.Logf("month played in %v; %d reports built from the embedded store in %v", p.Took.Round(time.Millisecond), len(want), time.Since(began).Round(time.Millisecond))

	files := map[string][]byte{}
	for _, d := range m.Devices {
		entries, err := p.Store.Files(d.NumIDK())
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if !e.Pending {
				files[e.StoredAs] = readFile(t, filepath.Join(p.Root, filepath.FromSlash(e.StoredAs)))
			}
		}
	}
	if len(files) == 0 {
		t.Fatal("the month stored no files: the comparison of files proves nothing")
	}
	end := p.Clock.Now()
	if err := p.Close(); err != nil { // the collector stops
		t.Fatal(err)
	}

	sum, err := migrate.Run(t.Context(), migrate.Config{Root: p.Root, Index: pg, Files: bucket.store, Log: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if !sum.OK() {
		t.Fatalf("problems: %v", sum.Problems)
	}
	t.Logf("migrated: %d buckets, %d keys, %d files, %d bytes in %v", sum.Buckets, sum.Keys, sum.Files, sum.Bytes, sum.Took.Round(time.Millisecond))
	compareIndex(t, p.Root, pg)
	compareObjects(t, bucket, files)

	// The collector's parts on the destination, at the same moment.
	clk := simclock.New(end)
	st, err := store.Open(t.TempDir(), store.Options{Index: nopClose{pg}, Files: bucket.store, Location: p.Location, Clock: clk, Log: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	engine, err := cases.OpenDB(kv.Prefix(nopClose{pg}, migrate.CasesPrefix), p.Location, clk)
	if err != nil {
		t.Fatal(err)
	}
	defer engine.Close()
	index := ingest.FromStore(st)
	scans := report.NewScanJournal(p.Location)
	scans.Use(index)
	roster, err := report.OpenRoster(p.RosterFile, clk)
	if err != nil {
		t.Fatal(err)
	}
	entries := report.NewEntries(index, scans, p.Location, clk)
	b := report.NewBuilder(report.Sources{Index: index, Scans: scans, Entries: entries, Cases: engine, Roster: roster, Location: p.Location, Clock: clk})
	began = time.Now()
	got := buildReports(t, b, m.Start, m.Days, offices)
	t.Logf("%d reports built from PostgreSQL in %v", len(got), time.Since(began).Round(time.Millisecond))

	for name, w := range want {
		g, ok := got[name]
		switch {
		case !ok:
			t.Errorf("%s: not built from the destination", name)
		case !reflect.DeepEqual(g, w):
			t.Errorf("%s differs after the migration:\n%s", name, firstDifference(w, g))
		}
	}
	rows := 0
	for _, r := range want {
		for _, s := range r.Sheets {
			rows += len(s.Rows)
		}
	}
	if rows == 0 {
		t.Fatal("the reports have no rows: the comparison proves nothing")
	}

	// Every object read back through the store on the destination too.
	for key, data := range files {
		rc, _, err := st.OpenFile(t.Context(), key)
		if err != nil {
			t.Fatal(err)
		}
		h := sha256.New()
		_, err = io.Copy(h, rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		if [32]byte(h.Sum(nil)) != sha256.Sum256(data) {
			t.Errorf("%s: the store on the destination reads other content", key)
		}
	}
}

// built is a report's content: what a workbook of it shows, without the
// moment it was built.
type built struct {
	Sheets     []builtSheet
	Incomplete string
	Summary    string
	Digest     []byte
}

type builtSheet struct {
	Name string
	Rows [][]string
}

// buildReports builds every daily report of each office and the monthly
// report, and writes each (the digest and the incomplete rows are set as
// it is written), keeping every row.
func buildReports(t *testing.T, b *report.Builder, start time.Time, days int, offices []string) map[string]built {
	t.Helper()
	out := map[string]built{}
	capture := func(sheets []report.Sheet) *[]builtSheet {
		var got []builtSheet
		for i := range sheets {
			s := &sheets[i]
			rows := s.Rows
			n := len(got)
			got = append(got, builtSheet{Name: s.Table.Sheet})
			s.Rows = func(emit func(report.Row) error) error {
				return rows(func(r report.Row) error {
					got[n].Rows = append(got[n].Rows, slices.Clone(r))
					return emit(r)
				})
			}
		}
		return &got
	}
	for _, kod := range offices {
		for i := range days {
			day := start.AddDate(0, 0, i)
			d, err := b.Daily(kod, day)
			if err != nil {
				t.Fatalf("daily %s %s: %v", kod, day.Format("02.01.2006"), err)
			}
			sheets := capture(d.Sheets)
			if err := d.WriteXLSX(io.Discard); err != nil {
				t.Fatal(err)
			}
			out[fmt.Sprintf("daily %s %s", kod, day.Format("02.01.2006"))] = built{Sheets: *sheets, Incomplete: fmt.Sprint(d.Incomplete), Digest: d.Digest}
		}
	}
	mo, err := b.Monthly(start, offices)
	if err != nil {
		t.Fatal(err)
	}
	sheets := capture(mo.Sheets)
	if err := mo.WriteXLSX(io.Discard); err != nil {
		t.Fatal(err)
	}
	out["monthly"] = built{Sheets: *sheets, Incomplete: fmt.Sprint(mo.Incomplete), Summary: fmt.Sprint(mo.Summary, mo.IDK), Digest: mo.Digest}
	return out
}

// firstDifference describes where two builds of a report part.
func firstDifference(want, got built) string {
	if want.Incomplete != got.Incomplete {
		return fmt.Sprintf("incomplete rows: %s, want %s", got.Incomplete, want.Incomplete)
	}
	if want.Summary != got.Summary {
		return fmt.Sprintf("summary: %s, want %s", got.Summary, want.Summary)
	}
	for i, ws := range want.Sheets {
		if i >= len(got.Sheets) {
			return fmt.Sprintf("sheet %s missing", ws.Name)
		}
		gs := got.Sheets[i]
		for j, r := range ws.Rows {
			if j >= len(gs.Rows) {
				return fmt.Sprintf("%s: %d rows, want %d", ws.Name, len(gs.Rows), len(ws.Rows))
			}
			if !slices.Equal(r, gs.Rows[j]) {
				return fmt.Sprintf("%s row %d: %q, want %q", ws.Name, j+1, gs.Rows[j], r)
			}
		}
		if len(gs.Rows) != len(ws.Rows) {
			return fmt.Sprintf("%s: %d rows, want %d", ws.Name, len(gs.Rows), len(ws.Rows))
		}
	}
	return fmt.Sprintf("digest %x, want %x", got.Digest, want.Digest)
}
