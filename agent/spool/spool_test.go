package spool

import (
	"errors"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"idk/protocol/idkpb"
)

func open(t *testing.T, path string) *Spool {
	t.Helper()
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestEventsSurviveReopenAndAck(t *testing.T) {
	path := filepath.Join(t.TempDir(), "spool.db")
	s := open(t, path)
	for i := range 5 {
		err := s.Update(func(tx *Tx) error {
			_, err := tx.AppendEvent(&idkpb.Event{TimeUnixNano: int64(i + 1), Body: &idkpb.Event_ScanSeen{ScanSeen: &idkpb.ScanSeen{NumSnim: "S"}}})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	s.Close()

	s = open(t, path)
	defer s.Close()
	evs, err := s.PendingEvents(3, 1<<20)
	if err != nil || len(evs) != 3 || evs[0].Seq != 1 || evs[2].Seq != 3 {
		t.Fatalf("pending after reopen: %v %v", evs, err)
	}
	if err := s.AckEvents(evs); err != nil {
		t.Fatal(err)
	}
	evs, _ = s.PendingEvents(100, 1<<20)
	if len(evs) != 2 || evs[0].Seq != 4 {
		t.Fatalf("after ack: %v", evs)
	}
	// Sequence numbers are never reused, even after everything is acked.
	s.AckEvents(evs)
	var seq uint64
	s.Update(func(tx *Tx) error { seq, _ = tx.AppendEvent(&idkpb.Event{}); return nil })
	if seq != 6 {
		t.Fatalf("next seq = %d, want 6", seq)
	}
}

func TestPendingEventsByteBudgetReturnsAtLeastOne(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "spool.db"))
	defer s.Close()
	big := make([]byte, 1000)
	for range 3 {
		s.Update(func(tx *Tx) error {
			_, err := tx.AppendEvent(&idkpb.Event{Body: &idkpb.Event_Form{Form: &idkpb.FormRevision{Content: big}}})
			return err
		})
	}
	evs, _ := s.PendingEvents(10, 10)
	if len(evs) != 1 {
		t.Fatalf("got %d events under a tiny budget, want exactly 1", len(evs))
	}
	evs, _ = s.PendingEvents(10, 2100)
	if len(evs) != 2 {
		t.Fatalf("got %d events, want 2", len(evs))
	}
}

// A stream that has sent events up to a sequence number asks for those
// after it; acknowledged events before it are gone either way.
func TestPendingEventsAfterWhatWasSent(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "spool.db"))
	defer s.Close()
	for range 5 {
		s.Update(func(tx *Tx) error { _, err := tx.AppendEvent(&idkpb.Event{}); return err })
	}
	evs, err := s.PendingEventsAfter(2, 2, 1<<20)
	if err != nil || len(evs) != 2 || evs[0].Seq != 3 || evs[1].Seq != 4 {
		t.Fatalf("after 2: %v %v, want 3 and 4", evs, err)
	}
	first, _ := s.PendingEvents(2, 1<<20)
	if err := s.AckEvents(first); err != nil {
		t.Fatal(err)
	}
	if evs, _ := s.PendingEventsAfter(4, 10, 1<<20); len(evs) != 1 || evs[0].Seq != 5 {
		t.Fatalf("after 4: %v, want 5", evs)
	}
	if evs, _ := s.PendingEventsAfter(5, 10, 1<<20); len(evs) != 0 {
		t.Fatalf("after the last: %v, want none", evs)
	}
	if evs, _ := s.PendingEventsAfter(0, 10, 1<<20); len(evs) != 3 || evs[0].Seq != 3 {
		t.Fatalf("after 0 once 1 and 2 are acknowledged: %v, want 3 to 5", evs)
	}
}

func TestFileQueueOrderAndDone(t *testing.T) {
	path := filepath.Join(t.TempDir(), "spool.db")
	s := open(t, path)
	now := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	put := func(f File) {
		t.Helper()
		if err := s.Update(func(tx *Tx) error { return tx.PutFile(f) }); err != nil {
			t.Fatal(err)
		}
	}
	put(File{NumSnim: "B", Name: "b.raw", Size: 10, FirstSeen: now})
	put(File{NumSnim: "A", Name: "a.raw", Size: 20, FirstSeen: now.Add(time.Second)})
	// Re-putting a pending file (say, a new hash) keeps its place in the queue.
	put(File{NumSnim: "B", Name: "b.raw", Size: 11, FirstSeen: now})

	st, _ := s.Stats()
	if st.Files != 2 || st.FileBytes != 31 || !st.OldestFile.Equal(now) {
		t.Fatalf("stats: %+v", st)
	}
	f, err := s.NextFile(nil)
	if err != nil || f.Key() != "B/b.raw" || f.Size != 11 {
		t.Fatalf("next: %+v %v", f, err)
	}
	f.Done = true
	put(f)
	s.Close()

	s = open(t, path)
	defer s.Close()
	f, err = s.NextFile(nil)
	if err != nil || f.Key() != "A/a.raw" {
		t.Fatalf("next after reopen: %+v %v", f, err)
	}
	f.Done = true
	put(f)
	if _, err := s.NextFile(nil); !errors.Is(err, ErrEmpty) {
		t.Fatalf("want ErrEmpty, got %v", err)
	}
	var got File
	s.View(func(tx *Tx) error { got, _, _ = tx.File("B/b.raw"); return nil })
	if !got.Done {
		t.Fatal("done file lost its record")
	}
}

func TestSecondOpenFailsInsteadOfHanging(t *testing.T) {
	path := filepath.Join(t.TempDir(), "spool.db")
	s := open(t, path)
	defer s.Close()
	start := time.Now()
	if _, err := Open(path); err == nil {
		t.Fatal("second open of a locked spool succeeded")
	}
	if time.Since(start) > 10*time.Second {
		t.Fatal("second open waited too long")
	}
}

func TestMetaSurvivesReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "spool.db")
	s := open(t, path)
	if err := s.Update(func(tx *Tx) error { return tx.PutMeta("devstate", []byte(`{"a":1}`)) }); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = open(t, path)
	defer s.Close()
	var got []byte
	s.View(func(tx *Tx) error { got = tx.Meta("devstate"); return nil })
	if string(got) != `{"a":1}` {
		t.Fatalf("meta after reopen: %q", got)
	}
	s.View(func(tx *Tx) error { got = tx.Meta("missing"); return nil })
	if got != nil {
		t.Fatalf("missing meta: %q", got)
	}
}

func TestNextFileSkipsKeepingOrder(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "spool.db"))
	defer s.Close()
	for _, name := range []string{"1.raw", "2.raw", "3.raw"} {
		if err := s.Update(func(tx *Tx) error { return tx.PutFile(File{NumSnim: "S", Name: name}) }); err != nil {
			t.Fatal(err)
		}
	}
	waiting := map[string]bool{"S/1.raw": true}
	var seen []string
	skip := func(key string) bool {
		seen = append(seen, key)
		return waiting[key]
	}
	f, err := s.NextFile(skip)
	if err != nil || f.Key() != "S/2.raw" {
		t.Fatalf("next skipping the head: %+v %v", f, err)
	}
	if len(seen) != 2 {
		t.Fatalf("skip saw %v, want the head and the file returned only", seen)
	}

	// When every queued file is skipped, skip has seen them all, oldest first.
	waiting["S/2.raw"], waiting["S/3.raw"] = true, true
	seen = nil
	if _, err := s.NextFile(skip); !errors.Is(err, ErrEmpty) {
		t.Fatalf("all skipped: want ErrEmpty, got %v", err)
	}
	if want := []string{"S/1.raw", "S/2.raw", "S/3.raw"}; !slices.Equal(seen, want) {
		t.Fatalf("skip saw %v, want %v", seen, want)
	}

	// The head is offered again once it is no longer skipped.
	delete(waiting, "S/1.raw")
	if f, err := s.NextFile(skip); err != nil || f.Key() != "S/1.raw" {
		t.Fatalf("head after its wait: %+v %v", f, err)
	}
}

// Queued reads the queue from either end, as far as the caller wants,
// and leaves out the files that are done.
func TestQueuedFromEitherEnd(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "spool.db"))
	for _, name := range []string{"a", "b", "c", "d"} {
		if err := s.Update(func(tx *Tx) error { return tx.PutFile(File{NumSnim: "S1", Name: name, Size: 1}) }); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Update(func(tx *Tx) error { return tx.PutFile(File{NumSnim: "S1", Name: "b", Done: true}) }); err != nil {
		t.Fatal(err)
	}
	read := func(newestFirst bool, most int) []string {
		t.Helper()
		var names []string
		err := s.Queued(newestFirst, func(f File) bool {
			names = append(names, f.Name)
			return len(names) < most
		})
		if err != nil {
			t.Fatal(err)
		}
		return names
	}
	if got := read(false, 10); !slices.Equal(got, []string{"a", "c", "d"}) {
		t.Fatalf("oldest first: %v", got)
	}
	if got := read(true, 10); !slices.Equal(got, []string{"d", "c", "a"}) {
		t.Fatalf("newest first: %v", got)
	}
	if got := read(true, 1); !slices.Equal(got, []string{"d"}) {
		t.Fatalf("newest first, stopping after one: %v", got)
	}
}
