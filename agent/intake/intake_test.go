package intake

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"idk/agent/layout"
	"idk/agent/layout/cargoriw"
	"idk/agent/spool"
	"idk/agent/watch"
	"idk/protocol/idkpb"
	"idk/simulator/scanner"
)

type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *fakeClock) Add(d time.Duration) { c.mu.Lock(); c.now = c.now.Add(d); c.mu.Unlock() }

type fixture struct {
	out       string
	sp        *spool.Spool
	in        *Intake
	clk       *fakeClock
	retried   []string
	decisions int
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	dir := t.TempDir()
	sp, err := spool.Open(filepath.Join(dir, "spool.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sp.Close() })
	f := &fixture{out: filepath.Join(dir, "out"), sp: sp, clk: &fakeClock{now: time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC)}}
	f.in = New(Config{Layout: cargoriw.Layout{}, Spool: sp, Now: f.clk.Now, FormGrace: time.Minute,
		Retry:      func(p string) { f.retried = append(f.retried, p) },
		OnDecision: func(string, time.Time) { f.decisions++ }})
	return f
}

func (f *fixture) ready(t *testing.T, path string) watch.Ready {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	rel, _ := filepath.Rel(f.out, path)
	return watch.Ready{Path: path, Rel: filepath.ToSlash(rel), Size: fi.Size(), ModTime: fi.ModTime()}
}

func (f *fixture) forms(t *testing.T) []*idkpb.FormRevision {
	t.Helper()
	evs, err := f.sp.PendingEvents(1000, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	var out []*idkpb.FormRevision
	for _, ev := range evs {
		if fr := ev.GetForm(); fr != nil {
			out = append(out, fr)
		}
	}
	return out
}

func newScan(t *testing.T, out string) *scanner.ScanWriter {
	t.Helper()
	sc, err := scanner.New(scanner.Config{Out: out, NumIDK: "850591", RawMin: 4096, RawMax: 4096, FormRevisions: 1, SuspectRatio: 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	w, err := sc.BeginScan()
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func TestHalfWrittenFormIsRetriedQuietlyThenRecorded(t *testing.T) {
	f := newFixture(t)
	w := newScan(t, f.out)
	form := filepath.Join(w.Dir(), cargoriw.FormName)
	if err := w.WriteFormPartial(1, 200); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := f.in.handle(ctx, f.ready(t, form)); err != nil {
		t.Fatal(err)
	}
	if len(f.forms(t)) != 0 || len(f.retried) != 1 {
		t.Fatalf("half-written form: %d revisions, %d retries; want 0 and 1", len(f.forms(t)), len(f.retried))
	}
	if err := w.WriteForm(1); err != nil {
		t.Fatal(err)
	}
	f.in.handle(ctx, f.ready(t, form))
	revs := f.forms(t)
	if len(revs) != 1 || revs[0].Revision != 1 || revs[0].ParseError != "" || revs[0].Form.Decision != idkpb.Decision_DECISION_SUSPECTED {
		t.Fatalf("complete form: %+v", revs)
	}
	// The same content again (a rescan, a touch) is not a new revision.
	f.in.handle(ctx, f.ready(t, form))
	if len(f.forms(t)) != 1 {
		t.Fatal("unchanged form recorded twice")
	}
	// A new revision is; but it is not a second decision for the
	// device's time accounting.
	b, _ := os.ReadFile(form)
	os.WriteFile(form, []byte(strings.Replace(string(b), "<Marks count=\"", "<Marks count=\"1", 1)), 0o644)
	f.in.handle(ctx, f.ready(t, form))
	if revs := f.forms(t); len(revs) != 2 || revs[1].Revision != 2 || revs[1].ParseError != "" {
		t.Fatalf("second revision: %+v", revs)
	}
	if f.decisions != 1 {
		t.Fatalf("decisions reported: %d, want 1", f.decisions)
	}
}

func TestFormBrokenPastGraceIsShippedWithItsError(t *testing.T) {
	f := newFixture(t)
	w := newScan(t, f.out)
	form := filepath.Join(w.Dir(), cargoriw.FormName)
	w.WriteFormPartial(1, 300)
	ctx := context.Background()
	f.in.handle(ctx, f.ready(t, form))
	f.clk.Add(59 * time.Second)
	f.in.handle(ctx, f.ready(t, form))
	if len(f.forms(t)) != 0 {
		t.Fatal("shipped before the grace period ended")
	}
	f.clk.Add(2 * time.Second)
	f.in.handle(ctx, f.ready(t, form))
	revs := f.forms(t)
	if len(revs) != 1 || revs[0].ParseError == "" || revs[0].Form != nil || len(revs[0].Content) != 300 {
		t.Fatalf("after grace: %+v", revs)
	}
}

func TestMalformedFormIsShippedAtOnceNamingFileAndField(t *testing.T) {
	f := newFixture(t)
	w := newScan(t, f.out)
	form := filepath.Join(w.Dir(), cargoriw.FormName)
	w.WriteForm(1)
	b, _ := os.ReadFile(form)
	b = []byte(strings.Replace(string(b), "<Marks count=\"", "<Marks count=\"-", 1))
	os.WriteFile(form, b, 0o644)
	f.in.handle(context.Background(), f.ready(t, form))
	revs := f.forms(t)
	if len(revs) != 1 || !strings.Contains(revs[0].ParseError, "form.xml") || !strings.Contains(revs[0].ParseError, "Marks") {
		t.Fatalf("malformed form: %+v", revs)
	}
}

func TestImagesAreHashedOnceAndRehashedWhenChanged(t *testing.T) {
	f := newFixture(t)
	w := newScan(t, f.out)
	if err := w.WriteRaw(context.Background(), 1); err != nil {
		t.Fatal(err)
	}
	raw := filepath.Join(w.Dir(), cargoriw.RawName(w.NumSnim(), 1))
	r := f.ready(t, raw)
	f.in.handle(context.Background(), r) // records the scan
	if err := f.in.blob(r); err != nil {
		t.Fatal(err)
	}
	first, err := f.sp.NextFile()
	if err != nil || first.Kind != idkpb.FileKind_FILE_KIND_RAW || len(first.SHA256) != 32 || !first.ScanTime.Equal(f.clk.Now()) {
		t.Fatalf("queued: %+v %v", first, err)
	}
	f.clk.Add(time.Hour)
	if err := f.in.blob(r); err != nil { // the same file again, as after a restart
		t.Fatal(err)
	}
	again, _ := f.sp.NextFile()
	if !again.FirstSeen.Equal(first.FirstSeen) {
		t.Fatal("an unchanged file was hashed and recorded again")
	}
	// Substituted content: a new hash, and the record keeps its place.
	os.WriteFile(raw, []byte("another image"), 0o644)
	if err := f.in.blob(f.ready(t, raw)); err != nil {
		t.Fatal(err)
	}
	changed, _ := f.sp.NextFile()
	if string(changed.SHA256) == string(first.SHA256) || changed.Size != 13 {
		t.Fatalf("changed file: %+v", changed)
	}
}

func TestStrayFilesAreIgnored(t *testing.T) {
	f := newFixture(t)
	os.MkdirAll(f.out, 0o755)
	stray := filepath.Join(f.out, "notes.txt")
	os.WriteFile(stray, []byte("x"), 0o644)
	if err := f.in.handle(context.Background(), f.ready(t, stray)); err != nil {
		t.Fatal(err)
	}
	if evs, _ := f.sp.PendingEvents(10, 1<<20); len(evs) != 0 {
		t.Fatalf("stray file produced events: %v", evs)
	}
}

var _ layout.Layout = cargoriw.Layout{}
