package watch

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func start(t *testing.T, cfg Config) *Watcher {
	t.Helper()
	w := New(cfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return w
}

func next(t *testing.T, w *Watcher) Ready {
	t.Helper()
	select {
	case r := <-w.Ready():
		return r
	case <-time.After(5 * time.Second):
		t.Fatal("no ready file within 5s")
	}
	return Ready{}
}

func none(t *testing.T, w *Watcher, d time.Duration) {
	t.Helper()
	select {
	case r := <-w.Ready():
		t.Fatalf("unexpected ready file %s", r.Rel)
	case <-time.After(d):
	}
}

func TestGrowingFileIsReadyOnlyWhenSettled(t *testing.T) {
	root := t.TempDir()
	settle := 300 * time.Millisecond
	w := start(t, Config{Root: root, Settle: settle, Rescan: time.Hour})
	dir := filepath.Join(root, "201701040006080003")
	os.Mkdir(dir, 0o755)
	path := filepath.Join(dir, "x.raw")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	// Keep writing for longer than the settle time: nothing may be emitted.
	began := time.Now()
	for range 8 {
		f.Write(make([]byte, 1000))
		time.Sleep(settle / 3)
	}
	f.Close()
	select {
	case r := <-w.Ready():
		t.Fatalf("emitted %s while it was still growing", r.Rel)
	default:
	}
	r := next(t, w)
	if r.Rel != "201701040006080003/x.raw" || r.Size != 8000 {
		t.Fatalf("got %+v", r)
	}
	if time.Since(began) < 8*settle/3 {
		t.Fatal("emitted too early")
	}
	none(t, w, 2*settle)

	// A rewrite makes it a candidate again.
	os.WriteFile(path, []byte("new"), 0o644)
	if r := next(t, w); r.Size != 3 {
		t.Fatalf("after rewrite: %+v", r)
	}
	// Retry re-emits an unchanged file.
	w.Retry(path)
	if r := next(t, w); r.Size != 3 {
		t.Fatalf("after retry: %+v", r)
	}
}

func TestExistingFilesFoundOnStartAndDepthRespected(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "S1", "deeper"), 0o755)
	os.WriteFile(filepath.Join(root, "S1", "a.raw"), []byte("a"), 0o644)
	os.WriteFile(filepath.Join(root, "S1", "deeper", "no.raw"), []byte("n"), 0o644)
	os.Symlink("/etc/passwd", filepath.Join(root, "S1", "link.raw"))
	w := start(t, Config{Root: root, Settle: 50 * time.Millisecond, Rescan: time.Hour})
	if r := next(t, w); r.Rel != "S1/a.raw" {
		t.Fatalf("got %+v", r)
	}
	none(t, w, 300*time.Millisecond)
}

func TestRescanFindsWhatEventsMissed(t *testing.T) {
	root := t.TempDir()
	// The root does not exist yet when the agent starts: fsnotify cannot
	// watch it, so only a rescan can find the file.
	out := filepath.Join(root, "out")
	w := start(t, Config{Root: out, Settle: 50 * time.Millisecond, Rescan: 200 * time.Millisecond})
	time.Sleep(100 * time.Millisecond)
	os.MkdirAll(filepath.Join(out, "S2"), 0o755)
	os.WriteFile(filepath.Join(out, "S2", "b.raw"), []byte("b"), 0o644)
	if r := next(t, w); r.Rel != "S2/b.raw" {
		t.Fatalf("got %+v", r)
	}
}

// A rescan offers a file again only if it changed since it was emitted:
// the watcher remembers what it emitted (as hashes, see Watcher.emitted).
func TestRescanOffersOnlyChangedFiles(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "S1"), 0o755)
	a := filepath.Join(root, "S1", "a.raw")
	os.WriteFile(a, []byte("a"), 0o644)
	os.WriteFile(filepath.Join(root, "S1", "b.raw"), []byte("b"), 0o644)
	w := start(t, Config{Root: root, Settle: 50 * time.Millisecond, Rescan: 100 * time.Millisecond})
	got := map[string]bool{next(t, w).Rel: true, next(t, w).Rel: true}
	if !got["S1/a.raw"] || !got["S1/b.raw"] {
		t.Fatalf("got %v", got)
	}
	none(t, w, 500*time.Millisecond) // several rescans
	os.WriteFile(a, []byte("longer"), 0o644)
	if r := next(t, w); r.Rel != "S1/a.raw" || r.Size != 6 {
		t.Fatalf("got %+v", r)
	}
	none(t, w, 300*time.Millisecond)
}

// More new files than the watcher observes at once: those left over are
// found by the rescan it starts when there is room again, long before the
// periodic one.
func TestFilesBeyondTheCandidateLimitAreFoundByARescan(t *testing.T) {
	root := t.TempDir()
	const n = 60
	for i := range n {
		dir := filepath.Join(root, fmt.Sprintf("S%02d", i))
		os.MkdirAll(dir, 0o755)
		os.WriteFile(filepath.Join(dir, "x.raw"), []byte{byte(i)}, 0o644)
	}
	w := New(Config{Root: root, Settle: 30 * time.Millisecond, Rescan: time.Hour})
	w.limit = 8
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	seen := map[string]bool{}
	for len(seen) < n {
		r := next(t, w)
		if seen[r.Rel] {
			t.Fatalf("%s offered twice", r.Rel)
		}
		seen[r.Rel] = true
		w.mu.Lock()
		c := len(w.candidates)
		w.mu.Unlock()
		if c > 8 {
			t.Fatalf("%d candidates, limit 8", c)
		}
	}
	none(t, w, 200*time.Millisecond)
}

// A folder that has not changed for Quiet is left to the rescans: a file
// rewritten in it is found by the next rescan, not through fsnotify,
// while one in a folder still being worked on is found at once.
func TestQuietFoldersAreLeftToTheRescans(t *testing.T) {
	root := t.TempDir()
	old, young := filepath.Join(root, "OLD"), filepath.Join(root, "NEW")
	for _, dir := range []string{old, young} {
		os.MkdirAll(dir, 0o755)
		os.WriteFile(filepath.Join(dir, "a.raw"), []byte("a"), 0o644)
	}
	hourAgo := time.Now().Add(-time.Hour)
	os.Chtimes(old, hourAgo, hourAgo)
	w := start(t, Config{Root: root, Settle: 50 * time.Millisecond, Rescan: time.Hour, Quiet: time.Minute})
	next(t, w)
	next(t, w)
	// Rewritten in place: the folders' own times do not change.
	os.WriteFile(filepath.Join(old, "a.raw"), []byte("bb"), 0o644)
	os.WriteFile(filepath.Join(young, "a.raw"), []byte("bb"), 0o644)
	if r := next(t, w); r.Rel != "NEW/a.raw" {
		t.Fatalf("got %+v", r)
	}
	none(t, w, 300*time.Millisecond)

	// The same with rescans: the quiet folder's change is found by one.
	w = start(t, Config{Root: root, Settle: 50 * time.Millisecond, Rescan: 200 * time.Millisecond, Quiet: time.Minute})
	next(t, w)
	next(t, w)
	os.WriteFile(filepath.Join(old, "a.raw"), []byte("ccc"), 0o644)
	if r := next(t, w); r.Rel != "OLD/a.raw" || r.Size != 3 {
		t.Fatalf("got %+v", r)
	}
}
