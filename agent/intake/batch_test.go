package intake

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"idk/agent/layout/cargoriw"
	"idk/agent/spool"
	"idk/agent/watch"
	"idk/protocol/idkpb"
	"idk/simulator/scanner"
)

// writeScans writes n scans of two images each and returns the images as
// the watcher would offer them.
func writeScans(t *testing.T, f *fixture, n int) []watch.Ready {
	t.Helper()
	sc, err := scanner.New(scanner.Config{Out: f.out, NumIDK: "850591", RawPerScan: 2, RawMin: 4096, RawMax: 4096, FormRevisions: 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var rs []watch.Ready
	for range n {
		w, err := sc.BeginScan()
		if err != nil {
			t.Fatal(err)
		}
		for i := 1; i <= 2; i++ {
			if err := w.WriteRaw(context.Background(), i); err != nil {
				t.Fatal(err)
			}
			rs = append(rs, f.ready(t, filepath.Join(w.Dir(), cargoriw.RawName(w.NumSnim(), i))))
		}
	}
	return rs
}

// Files taken in batches are all recorded, each scan once and chained in
// order, and all are there after the spool is closed and opened again.
func TestBatchesRecordEveryFileAndSurviveReopen(t *testing.T) {
	f := newFixture(t)
	rs := writeScans(t, f, 40)
	for i, err := range f.in.handleBatch(context.Background(), rs) {
		if err != nil {
			t.Fatalf("%s: %v", rs[i].Rel, err)
		}
	}
	var queued []watch.Ready
	for len(f.in.blobs) > 0 {
		queued = append(queued, <-f.in.blobs)
	}
	if len(queued) != len(rs) {
		t.Fatalf("%d files passed on to be hashed, want %d", len(queued), len(rs))
	}
	for len(queued) > 0 {
		batch := gather(queued[0], nil)
		n := min(len(queued), 7) // batches of several sizes
		f.in.recordBatch(append(batch, queued[1:n]...))
		queued = queued[n:]
	}
	if len(f.retried) != 0 {
		t.Fatalf("retried: %v", f.retried)
	}
	seen := pending(t, f, (*idkpb.Event).GetScanSeen)
	if len(seen) != 40 {
		t.Fatalf("%d scans recorded, want 40", len(seen))
	}
	for i, s := range seen {
		if s.Index != uint64(i+1) {
			t.Fatalf("scan #%d has index %d", i, s.Index)
		}
	}
	path := filepath.Join(filepath.Dir(f.out), "spool.db")
	f.sp.Close()
	sp, err := spool.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	var size int64
	for _, r := range rs {
		size += r.Size
	}
	st, err := sp.Stats()
	if err != nil || st.Files != len(rs) || st.FileBytes != size {
		t.Fatalf("after reopen: %+v %v, want %d files, %d bytes", st, err, len(rs), size)
	}
	err = sp.View(func(tx *spool.Tx) error {
		for _, r := range rs {
			rec, ok, err := tx.File(r.Rel)
			if err != nil || !ok || len(rec.SHA256) != 32 || rec.ScanTime.IsZero() {
				return fmt.Errorf("%s: %+v %v %v", r.Rel, rec, ok, err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// One change the spool refuses fails alone: the others of its batch are
// committed, and only theirs are followed up.
func TestFailedChangeDoesNotHoldBackItsBatch(t *testing.T) {
	f := newFixture(t)
	bad := errors.New("refused")
	var after []int
	var ops []op
	for i := range 5 {
		ops = append(ops, op{
			apply: func(tx *spool.Tx) error {
				if i == 2 {
					return bad
				}
				return tx.PutFile(spool.File{NumSnim: "202611228505910001", Name: fmt.Sprint(i, ".raw"), Size: 1})
			},
			after: func() { after = append(after, i) },
		})
	}
	errs := f.in.commit(ops)
	for i, err := range errs {
		if (i == 2) != errors.Is(err, bad) {
			t.Fatalf("op %d: %v", i, err)
		}
	}
	if st, _ := f.sp.Stats(); st.Files != 4 {
		t.Fatalf("%d files committed, want 4", st.Files)
	}
	if fmt.Sprint(after) != "[0 1 3 4]" {
		t.Fatalf("followed up: %v", after)
	}
}

// The intake running as in the agent, fed faster than it commits, while
// the shipper asks for re-hashes: every file is taken once.
func TestRunTakesABurstOfFiles(t *testing.T) {
	f := newFixture(t)
	f.in.cfg.Retry = func(string) {}
	rs := writeScans(t, f, 150)
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan watch.Ready, 64)
	done := make(chan error)
	go func() { done <- f.in.Run(ctx, ready) }()
	go func() {
		for i, r := range rs {
			ready <- r
			if i%50 == 0 {
				// The shipper's path, on its own goroutine, for a file
				// already queued or still in the pipeline.
				go f.in.Rehash(spool.File{NumSnim: filepath.Dir(r.Rel), Name: filepath.Base(r.Rel), Path: r.Path})
			}
		}
	}()
	deadline := time.Now().Add(20 * time.Second)
	for {
		st, err := f.sp.Stats()
		if err != nil {
			t.Fatal(err)
		}
		if st.Files == len(rs) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d files taken", st.Files, len(rs))
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n := len(pending(t, f, (*idkpb.Event).GetScanSeen)); n != 150 {
		t.Fatalf("%d scans recorded, want 150", n)
	}
	if n := len(changedEvents(t, f)); n != 0 {
		t.Fatalf("%d CHANGED events for files that did not change", n)
	}
	if _, err := os.Stat(f.out); err != nil {
		t.Fatal(err)
	}
}
