package store

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	bolt "go.etcd.io/bbolt"

	"idk/collector/kv"
	"idk/protocol/idkpb"
	"idk/simulator/simclock"
)

// An index file of the earlier layout, the consumers' state in buckets
// nested under "kv", is read after Open through the store's KV as before,
// and "kv" is gone from the file.
func TestStoreMigratesNestedConsumerBuckets(t *testing.T) {
	root := t.TempDir()
	db, err := bolt.Open(filepath.Join(root, "index.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	old := map[string]map[string]string{
		"cases":  {"a": "1", "b": "2", "c": ""},
		"report": {"x/1": "one"},
	}
	err = db.Update(func(tx *bolt.Tx) error {
		parent, err := tx.CreateBucket([]byte("kv"))
		if err != nil {
			return err
		}
		for name, keys := range old {
			b, err := parent.CreateBucket([]byte(name))
			if err != nil {
				return err
			}
			for k, v := range keys {
				if err := b.Put([]byte(k), []byte(v)); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	check := func(s *Store) {
		t.Helper()
		err := s.View(func(tx *KV) error {
			for name, keys := range old {
				got := map[string]string{}
				err := tx.Scan(name, nil, nil, false, func(k, v []byte) error {
					got[string(k)] = string(v)
					return nil
				})
				if err != nil {
					return err
				}
				if fmt.Sprint(got) != fmt.Sprint(keys) {
					return fmt.Errorf("bucket %s: %v, want %v", name, got, keys)
				}
				for k, v := range keys {
					if g, err := tx.Get(name, []byte(k)); err != nil || g == nil || string(g) != v {
						return fmt.Errorf("get %s %s: %q %v, want %q", name, k, g, err, v)
					}
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		err = s.bolt.View(func(tx *bolt.Tx) error {
			if tx.Bucket([]byte("kv")) != nil {
				return errors.New("the nested bucket kv is still there")
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	s := openStore(t, root)
	check(s)
	// Consumers go on writing where they now read.
	if err := s.Update(func(tx *KV) error { return tx.Put("cases", []byte("d"), []byte("4")) }); err != nil {
		t.Fatal(err)
	}
	old["cases"]["d"] = "4"
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// The migration runs once: a second Open finds the new layout as is.
	s = openStore(t, root)
	defer s.Close()
	check(s)
}

// A file under "kv" that KV never wrote (a key outside any consumer
// bucket) stops Open rather than being dropped by the migration.
func TestStoreNestedKVMigrationRefusesStrayKeys(t *testing.T) {
	root := t.TempDir()
	db, err := bolt.Open(filepath.Join(root, "index.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		parent, err := tx.CreateBucket([]byte("kv"))
		if err != nil {
			return err
		}
		return parent.Put([]byte("stray"), []byte("v"))
	})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	if s, err := Open(root, Options{Location: msk, Clock: simclock.New(t0)}); err == nil {
		s.Close()
		t.Fatal("Open dropped a key of the old kv bucket without a word")
	}
}

// roundTrip exercises the index through a store: an upload offered,
// written and committed, offered again, events stored once with a
// consumer's state written in their transaction, and read back.
func roundTrip(t *testing.T, s *Store) {
	t.Helper()
	data := bytes.Repeat([]byte("xray"), 5000)
	o := offerFor("S31", "S31_1.raw", data)
	stored, err := send(t, s, o, data, 4096)
	if err != nil {
		t.Fatal(err)
	}
	if want := "10216100/20261123/850591/S31/S31_1.raw"; stored != want {
		t.Fatalf("stored as %q, want %q", stored, want)
	}
	if up, rep, err := s.Offer(dev, o, t0); err != nil || up != nil || rep.Status != idkpb.FileOfferReply_STATUS_HAVE {
		t.Fatalf("offer of the stored file: %v %v %v", up, rep, err)
	}
	// Other content under the same name is a new revision beside it.
	other := []byte("another")
	if stored, err := send(t, s, offerFor("S31", "S31_1.raw", other), other, 3); err != nil || stored != "10216100/20261123/850591/S31/S31_1~2.raw" {
		t.Fatalf("second revision stored as %q: %v", stored, err)
	}
	files, err := s.Files(dev.NumIdk)
	if err != nil || len(files) != 2 {
		t.Fatalf("files: %+v %v", files, err)
	}

	form := []byte("<CargoRIWForm/>")
	sum := sha256.Sum256(form)
	evs := []*idkpb.Event{
		{Seq: 1, TimeUnixNano: t0.UnixNano(), Body: &idkpb.Event_ScanSeen{ScanSeen: &idkpb.ScanSeen{NumSnim: "S31"}}},
		{Seq: 2, TimeUnixNano: t0.UnixNano(), Body: &idkpb.Event_Form{Form: &idkpb.FormRevision{NumSnim: "S31", Revision: 1, Content: form, Sha256: sum[:]}}},
	}
	apply := func(tx *KV, ev *idkpb.Event) error {
		n, err := tx.Get("count", []byte("n"))
		if err != nil {
			return err
		}
		return tx.Put("count", []byte("n"), append(bytes.Clone(n), byte('0'+ev.Seq)))
	}
	res, err := s.PutEvents(dev, 7, evs, agent, apply)
	if err != nil || res.Stored != 2 || res.Duplicates != 0 {
		t.Fatalf("events: %+v %v", res, err)
	}
	if res, err := s.PutEvents(dev, 7, evs, agent, apply); err != nil || res.Stored != 0 || res.Duplicates != 2 {
		t.Fatalf("events again: %+v %v", res, err)
	}
	var seqs []uint64
	err = s.EachEvent(dev.NumIdk, func(epoch uint64, ev *idkpb.Event) error {
		if epoch != 7 {
			return fmt.Errorf("epoch %d, want 7", epoch)
		}
		seqs = append(seqs, ev.Seq)
		return nil
	})
	if err != nil || fmt.Sprint(seqs) != "[1 2]" {
		t.Fatalf("events read back: %v %v", seqs, err)
	}
	var positions [][]byte
	err = s.EventsAfter(nil, 1, func(pos []byte, numIDK string, _ uint64, _ *idkpb.Event) error {
		positions = append(positions, bytes.Clone(pos))
		return nil
	})
	if err != nil || len(positions) != 1 {
		t.Fatalf("first event of the log: %d %v", len(positions), err)
	}
	n := 0
	err = s.EventsAfter(positions[0], 10, func([]byte, string, uint64, *idkpb.Event) error { n++; return nil })
	if err != nil || n != 1 {
		t.Fatalf("events after the first: %d %v", n, err)
	}
	err = s.View(func(tx *KV) error {
		if v, err := tx.Get("count", []byte("n")); err != nil || string(v) != "12" {
			return fmt.Errorf("consumer state %q %v, want the two new events once", v, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files, _ := s.Files(dev.NumIdk); len(files) != 3 {
		t.Fatalf("files with the form: %+v", files)
	}
}

// A store given an index (Options.Index) keeps everything there, not in
// <root>/index.db, and does not rebuild it from the scan folders.
func TestStoreInjectedIndex(t *testing.T) {
	root, elsewhere := t.TempDir(), filepath.Join(t.TempDir(), "shared.db")
	openIndex := func() kv.DB {
		db, err := bolt.Open(elsewhere, 0o600, nil)
		if err != nil {
			t.Fatal(err)
		}
		return kv.Bolt(db)
	}
	s, err := Open(root, Options{Location: msk, Clock: simclock.New(t0), Index: openIndex()})
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "index.db")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("index.db beside the scans with an index given: %v", err)
	}

	s, err = Open(root, Options{Location: msk, Clock: simclock.New(t0), Index: openIndex()})
	if err != nil {
		t.Fatal(err)
	}
	if files, err := s.Files(dev.NumIdk); err != nil || len(files) != 3 {
		t.Fatalf("files after reopening the index: %+v %v", files, err)
	}
	s.Close()

	// An empty index given beside folders of scans stays empty.
	os.Remove(elsewhere)
	s, err = Open(root, Options{Location: msk, Clock: simclock.New(t0), Index: openIndex()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if files, err := s.Files(""); err != nil || len(files) != 0 || s.Recovered != nil {
		t.Fatalf("given an empty index: %+v %v, recovered %v", files, err, s.Recovered)
	}
}
