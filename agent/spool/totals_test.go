package spool

import (
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"idk/protocol/idkpb"
)

// walked is Stats as it was before the totals were kept: a walk of every
// pending item.
func walked(t *testing.T, s *Spool) totals {
	t.Helper()
	var w totals
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		w, err = countTotals(tx)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func checkTotals(t *testing.T, s *Spool, when string) {
	t.Helper()
	st, err := s.Stats()
	if err != nil {
		t.Fatal(err)
	}
	w := walked(t, s)
	if got := (totals{int64(st.Events), st.EventBytes, int64(st.Files), st.FileBytes}); got != w {
		t.Fatalf("%s: Stats says %+v, a walk of the spool %+v", when, got, w)
	}
}

// The totals kept as items come and go are those a walk of the spool
// finds, through every kind of change and across a reopen.
func TestStatsTotalsFollowEveryChange(t *testing.T) {
	path := filepath.Join(t.TempDir(), "spool.db")
	s := open(t, path)
	checkTotals(t, s, "empty")
	var evs []*idkpb.Event
	err := s.Update(func(tx *Tx) error {
		for i := range 5 {
			ev := &idkpb.Event{TimeUnixNano: int64(i + 1), Body: &idkpb.Event_ScanSeen{ScanSeen: &idkpb.ScanSeen{NumSnim: fmt.Sprint("S", i)}}}
			if _, err := tx.AppendEvent(ev); err != nil {
				return err
			}
			evs = append(evs, ev)
		}
		for i := range 4 {
			if err := tx.PutFile(File{NumSnim: "S", Name: fmt.Sprint(i, ".raw"), Size: int64(100 * (i + 1)), FirstSeen: time.Unix(int64(i+10), 0)}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	checkTotals(t, s, "after appends")
	st, _ := s.Stats()
	if st.Files != 4 || st.FileBytes != 1000 || st.Events != 5 || !st.OldestFile.Equal(time.Unix(10, 0)) || !st.OldestEvent.Equal(time.Unix(0, 1)) {
		t.Fatalf("stats: %+v", st)
	}
	// Acknowledged twice (a batch resent after a reconnect): counted once.
	if err := s.AckEvents(evs[:2]); err != nil {
		t.Fatal(err)
	}
	if err := s.AckEvents(evs[:3]); err != nil {
		t.Fatal(err)
	}
	checkTotals(t, s, "after acks")
	err = s.Update(func(tx *Tx) error {
		f, _, _ := tx.File("S/0.raw")
		f.Done = true
		if err := tx.PutFile(f); err != nil {
			return err
		}
		if err := tx.PutFile(f); err != nil { // done again: no change
			return err
		}
		f, _, _ = tx.File("S/1.raw")
		f.Size = 7 // new content, still queued
		if err := tx.PutFile(f); err != nil {
			return err
		}
		f, _, _ = tx.File("S/0.raw")
		f.Done, f.Size = false, 1 // substituted after it was shipped: queued again
		return tx.PutFile(f)
	})
	if err != nil {
		t.Fatal(err)
	}
	checkTotals(t, s, "after done, resize and requeue")
	want, _ := s.Stats()
	s.Close()
	s = open(t, path)
	defer s.Close()
	if got, _ := s.Stats(); got != want {
		t.Fatalf("after reopen: %+v, want %+v", got, want)
	}
	checkTotals(t, s, "after reopen")
}

// A spool written before the totals were kept gets them counted at Open.
func TestTotalsCountedForAnOlderSpool(t *testing.T) {
	path := filepath.Join(t.TempDir(), "spool.db")
	s := open(t, path)
	s.Update(func(tx *Tx) error {
		tx.AppendEvent(&idkpb.Event{TimeUnixNano: 1})
		tx.PutFile(File{NumSnim: "S", Name: "a.raw", Size: 42})
		return tx.PutFile(File{NumSnim: "S", Name: "b.raw", Size: 8, Done: true})
	})
	s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Delete(keyTotals) })
	s.Close()
	s = open(t, path)
	defer s.Close()
	st, err := s.Stats()
	if err != nil || st.Events != 1 || st.Files != 1 || st.FileBytes != 42 {
		t.Fatalf("stats of an older spool: %+v %v", st, err)
	}
}

// Many files recorded in one transaction, as the intake batches them, are
// all there, in order, after the spool is closed and opened again.
func TestBatchedFilesSurviveReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "spool.db")
	s := open(t, path)
	const n = 500
	err := s.Update(func(tx *Tx) error {
		for i := range n {
			if err := tx.PutFile(File{NumSnim: fmt.Sprintf("S%04d", i/2), Name: fmt.Sprint(i%2, ".raw"), Size: 1024}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = open(t, path)
	defer s.Close()
	i := 0
	err = s.Queued(false, func(f File) bool {
		if want := fmt.Sprintf("S%04d/%d.raw", i/2, i%2); f.Key() != want {
			t.Fatalf("queued #%d is %s, want %s", i, f.Key(), want)
		}
		i++
		return true
	})
	if err != nil || i != n {
		t.Fatalf("%d files queued after reopen, want %d (%v)", i, n, err)
	}
	checkTotals(t, s, "after reopen")
}

// Dropping the map's pages from memory, while other goroutines write and
// read, loses nothing: the next read maps them again from the file.
func TestUnmapWhileInUseKeepsContent(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "spool.db"))
	defer s.Close()
	var wg sync.WaitGroup
	for g := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				err := s.Update(func(tx *Tx) error {
					return tx.PutFile(File{NumSnim: fmt.Sprint("G", g), Name: fmt.Sprintf("%04d.raw", i), Size: int64(i), Path: fmt.Sprintf("/out/%d/%d", g, i)})
				})
				if err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for range 200 {
			s.unmap()
			if _, err := s.Stats(); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	wg.Wait()
	s.unmap()
	err := s.View(func(tx *Tx) error {
		for g := range 2 {
			for i := range 200 {
				f, ok, err := tx.File(fmt.Sprintf("G%d/%04d.raw", g, i))
				if err != nil || !ok || f.Size != int64(i) || f.Path != fmt.Sprintf("/out/%d/%d", g, i) {
					return fmt.Errorf("G%d/%04d.raw: %+v %v %v", g, i, f, ok, err)
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	checkTotals(t, s, "after unmaps")
}

// The unmap due after an Update does not outlive Close.
func TestCloseStopsThePendingUnmap(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "spool.db"))
	if err := s.Update(func(tx *Tx) error { return tx.PutMeta("k", []byte("v")) }); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * unmapAfter)
	s.unmap() // as a timer that fired as Close ran: returns quietly
	if s.warned {
		t.Fatal("unmap after Close warned")
	}
}
