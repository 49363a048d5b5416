package nshs

import (
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"idk/collector/ingest"
	"idk/collector/store"
	"idk/simulator/simclock"
)

// txDB is a fake index: Update runs fn with no transaction, for a fake
// book that needs none.
type txDB struct{ err error }

func (d txDB) View(fn func(ingest.Tx) error) error { return fn(nil) }
func (d txDB) Update(fn func(ingest.Tx) error) error {
	if d.err != nil {
		return d.err
	}
	return fn(nil)
}

func eventuallyBeat(t *testing.T, path string, want time.Time) Beat {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, ok, err := ReadHeartbeat(path)
		if err != nil {
			t.Fatal(err)
		}
		if ok && b.Time.Equal(want) {
			return b
		}
		if time.Now().After(deadline) {
			t.Fatalf("heartbeat %+v %v, want %s", b, ok, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestHeartbeat(t *testing.T) {
	path := HeartbeatPath(t.TempDir())
	t0 := time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC)
	clk := simclock.New(t0)
	h, err := StartHeartbeat(path, clk, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if b := eventuallyBeat(t, path, t0); b.Clean {
		t.Fatal("a running collector's beat says clean")
	}
	clk.Advance(HeartbeatEvery - time.Second)
	eventuallyBeat(t, path, t0) // not yet
	clk.Advance(time.Second)
	eventuallyBeat(t, path, t0.Add(HeartbeatEvery))
	clk.Advance(HeartbeatEvery)
	eventuallyBeat(t, path, t0.Add(2*HeartbeatEvery))
	clk.Advance(3 * time.Second)
	if err := h.Stop(true); err != nil {
		t.Fatal(err)
	}
	if b := eventuallyBeat(t, path, t0.Add(2*HeartbeatEvery+3*time.Second)); !b.Clean {
		t.Fatal("the last beat of a stop told is not clean")
	}
	if err := h.Stop(false); err != nil { // a second Stop does nothing
		t.Fatal(err)
	}
	if b, _, _ := ReadHeartbeat(path); !b.Clean {
		t.Fatal("a second Stop rewrote the beat")
	}
	// Written atomically: no temporary file is left beside it.
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Fatalf("folder holds %v, want the heartbeat only", entries)
	}
}

func TestRecordOutage(t *testing.T) {
	t0 := time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC)
	now := t0.Add(47 * time.Minute)
	offices := []string{"10216100", "10702030", "10216100", ""}
	for _, c := range []struct {
		name    string
		beat    *Beat
		unclean bool
		want    int
	}{
		{name: "first start", beat: nil},
		{name: "clean stop", beat: &Beat{Time: t0, Clean: true}},
		{name: "crash", beat: &Beat{Time: t0}, want: 2},
		{name: "clean beat but the index recovered", beat: &Beat{Time: t0, Clean: true}, unclean: true, want: 2},
		{name: "clock went back", beat: &Beat{Time: now.Add(time.Minute)}},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := HeartbeatPath(t.TempDir())
			if c.beat != nil {
				if err := writeHeartbeat(path, *c.beat); err != nil {
					t.Fatal(err)
				}
			}
			p := &putRecorder{}
			ns, err := RecordOutage(txDB{}, p, path, c.unclean, now, offices)
			if err != nil {
				t.Fatal(err)
			}
			if len(ns) != c.want || len(p.byID) != c.want {
				t.Fatalf("recorded %d, put %d, want %d", len(ns), len(p.byID), c.want)
			}
			for _, n := range ns {
				id := "collector-" + n.KodTO + "-1795338000"
				if n.ID != id || p.byID[id].ID != id || n.Source != SourceCollector || n.Systems != "коллектор РТУ" ||
					!n.Start.Equal(t0) || !n.End.Equal(now) || !n.Closed() || n.Category != CategoryI || n.Cause != CauseInternalICT {
					t.Errorf("НШС %+v", n)
				}
			}
			if c.want > 0 && (ns[0].KodTO != "10216100" || ns[1].KodTO != "10702030") {
				t.Errorf("offices %s, %s: want each served office once", ns[0].KodTO, ns[1].KodTO)
			}
		})
	}
}

func TestRecordOutageEdges(t *testing.T) {
	t0 := time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC)
	path := HeartbeatPath(t.TempDir())
	if err := writeHeartbeat(path, Beat{Time: t0}); err != nil {
		t.Fatal(err)
	}
	// Short: restored within 30 minutes, category IV.
	ns, err := RecordOutage(txDB{}, &putRecorder{}, path, false, t0.Add(30*time.Minute), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(ns) != 1 || ns[0].ID != "collector-1795338000" || ns[0].KodTO != "" || ns[0].Category != CategoryIV {
		t.Fatalf("no office known, 30 minutes: %+v", ns)
	}
	// The index fails: an error, nothing claimed recorded.
	if ns, err := RecordOutage(txDB{err: errors.New("disk")}, &putRecorder{}, path, false, t0.Add(time.Hour), nil); err == nil || ns != nil {
		t.Fatalf("index failure: %v %v", ns, err)
	}
	// An unreadable heartbeat is an error for the caller to log.
	if err := os.WriteFile(path, []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := RecordOutage(txDB{}, &putRecorder{}, path, true, t0.Add(time.Hour), nil); err == nil {
		t.Fatal("unreadable heartbeat: no error")
	}
}

// TestRecordOutageWithTheBook records into the real book on a real index.
func TestRecordOutageWithTheBook(t *testing.T) {
	t0 := time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC)
	now := t0.Add(2 * time.Hour)
	clk := simclock.New(now)
	dir := t.TempDir()
	st, err := store.Open(dir, store.Options{Location: time.UTC, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	index := ingest.FromStore(st)
	book := NewBook(index, time.UTC, clk)
	path := HeartbeatPath(dir)
	if err := writeHeartbeat(path, Beat{Time: t0}); err != nil {
		t.Fatal(err)
	}
	for range 2 { // a second start after the same stop replaces, not doubles
		if _, err := RecordOutage(index, book, path, false, now, []string{"10216100"}); err != nil {
			t.Fatal(err)
		}
	}
	ns, err := book.Between(t0.Add(-time.Hour), now)
	if err != nil {
		t.Fatal(err)
	}
	if len(ns) != 1 || ns[0].Source != SourceCollector || !ns[0].Closed() || ns[0].Category != CategoryI || ns[0].KodTO != "10216100" {
		t.Fatalf("book holds %+v, want one closed category I НШС of the collector", ns)
	}
}
