package intake

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"idk/agent/layout"
	"idk/agent/layout/cargoriw"
	"idk/agent/spool"
	"idk/agent/watch"
	"idk/protocol"
	"idk/protocol/idkpb"
	"idk/simulator/scanner"
	"idk/simulator/simclock"
)

type fixture struct {
	out       string
	sp        *spool.Spool
	in        *Intake
	clk       *simclock.Clock
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
	f := &fixture{out: filepath.Join(dir, "out"), sp: sp, clk: simclock.New(time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC))}
	f.in = New(Config{Layout: cargoriw.Layout{}, Spool: sp, Clock: f.clk, FormGrace: time.Minute,
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
	return pending(t, f, (*idkpb.Event).GetForm)
}

// pending returns the body of each pending event that has one of the kind
// get picks.
func pending[T any](t *testing.T, f *fixture, get func(*idkpb.Event) *T) []*T {
	t.Helper()
	evs, err := f.sp.PendingEvents(1000, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	var out []*T
	for _, ev := range evs {
		if b := get(ev); b != nil {
			out = append(out, b)
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
	f.clk.Advance(59 * time.Second)
	f.in.handle(ctx, f.ready(t, form))
	if len(f.forms(t)) != 0 {
		t.Fatal("shipped before the grace period ended")
	}
	f.clk.Advance(2 * time.Second)
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
	first, err := f.sp.NextFile(nil)
	if err != nil || first.Kind != idkpb.FileKind_FILE_KIND_RAW || len(first.SHA256) != 32 || !first.ScanTime.Equal(f.clk.Now()) {
		t.Fatalf("queued: %+v %v", first, err)
	}
	f.clk.Advance(time.Hour)
	if err := f.in.blob(r); err != nil { // the same file again, as after a restart
		t.Fatal(err)
	}
	again, _ := f.sp.NextFile(nil)
	if !again.FirstSeen.Equal(first.FirstSeen) {
		t.Fatal("an unchanged file was hashed and recorded again")
	}
	// Substituted content: a new hash, and the record keeps its place.
	os.WriteFile(raw, []byte("another image"), 0o644)
	if err := f.in.blob(f.ready(t, raw)); err != nil {
		t.Fatal(err)
	}
	changed, _ := f.sp.NextFile(nil)
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

// A name the collector cannot store is queued under its real name (two
// originals that map to one safe name stay two files) and reported once,
// when first seen, with the safe name it will be shipped as.
func TestUnstorableNameIsQueuedAndReportedRenamed(t *testing.T) {
	f := newFixture(t)
	dir := filepath.Join(f.out, "S1")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	bad, twin, ok := "a:b.jpg", "a%3Ab.jpg", "ok.jpg"
	for i, name := range []string{bad, twin, ok} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte{byte(i)}, 0o644); err != nil {
			t.Skipf("this file system does not take the name %q: %v", name, err)
		}
	}
	if protocol.SafeName(bad) != twin {
		t.Fatalf("SafeName(%q) = %q; the test expects %q", bad, protocol.SafeName(bad), twin)
	}
	for range 2 { // the second pass is a rescan: nothing new
		for _, name := range []string{bad, twin, ok} {
			r := f.ready(t, filepath.Join(dir, name))
			if err := f.in.handle(context.Background(), r); err != nil {
				t.Fatal(err)
			}
			if err := f.in.blob(r); err != nil {
				t.Fatal(err)
			}
		}
	}

	var keys []string
	for {
		q, err := f.sp.NextFile(func(key string) bool { return slices.Contains(keys, key) })
		if err != nil {
			break
		}
		keys = append(keys, q.Key())
	}
	if want := []string{"S1/" + bad, "S1/" + twin, "S1/" + ok}; !slices.Equal(keys, want) {
		t.Fatalf("queued %v, want %v", keys, want)
	}

	renamed := pending(t, f, (*idkpb.Event).GetIntegrity)
	if len(renamed) != 1 {
		t.Fatalf("integrity events: %v, want one RENAMED", renamed)
	}
	if ig := renamed[0]; ig.Kind != idkpb.Integrity_KIND_RENAMED || ig.NumSnim != "S1" || ig.Name != twin || ig.OriginalName != bad || len(ig.FirstSha256) != 32 {
		t.Fatalf("renamed event: %v", ig)
	}
}
