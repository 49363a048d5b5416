package intake

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"idk/agent/layout/cargoriw"
	"idk/protocol/idkpb"
)

// queuedRaw writes one image of a new scan, records it as the watcher's
// offer would, and returns its path.
func queuedRaw(t *testing.T, f *fixture) string {
	t.Helper()
	w := newScan(t, f.out)
	if err := w.WriteRaw(context.Background(), 1); err != nil {
		t.Fatal(err)
	}
	raw := filepath.Join(w.Dir(), cargoriw.RawName(w.NumSnim(), 1))
	r := f.ready(t, raw)
	if err := f.in.handle(context.Background(), r); err != nil { // records the scan
		t.Fatal(err)
	}
	if err := f.in.blob(r); err != nil {
		t.Fatal(err)
	}
	return raw
}

func changedEvents(t *testing.T, f *fixture) []*idkpb.Integrity {
	t.Helper()
	var out []*idkpb.Integrity
	for _, ig := range pending(t, f, (*idkpb.Event).GetIntegrity) {
		if ig.Kind == idkpb.Integrity_KIND_CHANGED {
			out = append(out, ig)
		}
	}
	return out
}

// A substitute of the same size whose modification time was kept (a copy
// that preserves times) looks unchanged to the watcher and to blob; the
// shipper finds the other content and asks for a re-hash, which must hash
// it and report it, not trust the size and time it has just disproved.
func TestRehashReportsSameSizeSubstituteWithKeptTime(t *testing.T) {
	f := newFixture(t)
	raw := queuedRaw(t, f)
	first, err := f.sp.NextFile(nil)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(raw)
	if err != nil {
		t.Fatal(err)
	}
	substitute := make([]byte, fi.Size())
	copy(substitute, "another image of the same size")
	if err := os.WriteFile(raw, substitute, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(raw, fi.ModTime(), fi.ModTime()); err != nil {
		t.Fatal(err)
	}
	f.in.Rehash(first)
	now, _ := f.sp.NextFile(nil)
	if string(now.SHA256) == string(first.SHA256) {
		t.Fatal("the substitute was not re-hashed: the old record would be offered, and fail, forever")
	}
	if ev := changedEvents(t, f); len(ev) != 1 || string(ev[0].FirstSha256) != string(first.SHA256) || string(ev[0].NowSha256) != string(now.SHA256) {
		t.Fatalf("CHANGED events: %v, want one from the first hash to the new one", ev)
	}
}

// The watcher's offer of a changed file and the shipper's re-hash of it
// (it found the content changed while sending) run on two goroutines; one
// change must make one CHANGED event, not one per caller.
func TestOneChangeIsReportedOnceByIntakeAndShipper(t *testing.T) {
	f := newFixture(t)
	f.in.cfg.Retry = func(string) {} // called from two goroutines here
	raw := queuedRaw(t, f)
	for i := range 50 {
		rec, err := f.sp.NextFile(nil)
		if err != nil {
			t.Fatal(err)
		}
		content := []byte{byte(i), 'x', byte(i)}
		if err := os.WriteFile(raw, content[:1+i%3], 0o644); err != nil {
			t.Fatal(err)
		}
		f.clk.Advance(time.Second)
		r := f.ready(t, raw)
		before := len(changedEvents(t, f))
		var start, done sync.WaitGroup
		start.Add(1)
		done.Add(2)
		go func() { defer done.Done(); start.Wait(); f.in.Rehash(rec) }()
		go func() {
			defer done.Done()
			start.Wait()
			if err := f.in.blob(r); err != nil {
				t.Error(err)
			}
		}()
		start.Done()
		done.Wait()
		if n := len(changedEvents(t, f)) - before; n != 1 {
			t.Fatalf("round %d: %d CHANGED events for one change, want 1", i, n)
		}
	}
}
