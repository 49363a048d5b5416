package boltfile

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

var now = func() time.Time { return time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC) }

// sample writes a database with enough data to span many pages.
func sample(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "x.db")
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		b, _ := tx.CreateBucketIfNotExists([]byte("b"))
		for i := range 2000 {
			k := binary.BigEndian.AppendUint64(nil, uint64(i))
			if err := b.Put(k, []byte(strings.Repeat(fmt.Sprint(i), 20))); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	return path
}

func TestHealthyFileOpensAsIs(t *testing.T) {
	path := sample(t)
	db, rec, err := Open(path, now)
	if err != nil || rec != nil {
		t.Fatalf("healthy file: rec=%v err=%v", rec, err)
	}
	db.Close()
}

func TestTruncatedFileIsMovedAsideNotDeleted(t *testing.T) {
	for _, size := range []int64{0, 100, 4096, 9000} {
		path := sample(t)
		orig, _ := os.ReadFile(path)
		if err := os.Truncate(path, size); err != nil {
			t.Fatal(err)
		}
		db, rec, err := Open(path, now)
		if err != nil {
			t.Fatalf("truncated to %d: %v", size, err)
		}
		if rec == nil {
			t.Fatalf("truncated to %d: not reported as damaged", size)
		}
		kept, err := os.ReadFile(rec.Aside)
		if err != nil || int64(len(kept)) != size || string(kept) != string(orig[:size]) {
			t.Fatalf("truncated to %d: damaged file not kept intact at %s: %v", size, rec.Aside, err)
		}
		// The fresh file works.
		if err := db.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucket([]byte("new")); return err }); err != nil {
			t.Fatal(err)
		}
		db.Close()
	}
}

func TestBothMetaPagesFlippedIsRecovered(t *testing.T) {
	path := sample(t)
	b, _ := os.ReadFile(path)
	page := os.Getpagesize()
	b[40] ^= 0xff      // meta page 0
	b[page+40] ^= 0xff // meta page 1
	os.WriteFile(path, b, 0o600)
	db, rec, err := Open(path, now)
	if err != nil || rec == nil {
		t.Fatalf("flipped metas: rec=%v err=%v", rec, err)
	}
	db.Close()
}

// Random bit flips anywhere: whatever bbolt makes of them, Open never
// panics, never deletes anything, and always returns a usable database.
func TestRandomBitFlipsNeverCrashOrLose(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 40 {
		path := sample(t)
		b, _ := os.ReadFile(path)
		for range 1 + r.IntN(8) {
			j := r.IntN(len(b))
			b[j] ^= 1 << r.IntN(8)
		}
		os.WriteFile(path, b, 0o600)
		db, rec, err := Open(path, now)
		if err != nil {
			t.Fatalf("flip %d: %v", i, err)
		}
		if rec != nil {
			if _, err := os.Stat(rec.Aside); err != nil {
				t.Fatalf("flip %d: damaged file gone: %v", i, err)
			}
		}
		db.Close()
	}
}

// After a clean Close the full check is skipped (it reads every key,
// minutes on a year of history); after any other stop it runs. A page
// damaged behind bbolt's back shows which: only the full check sees it.
func TestFullCheckOnlyAfterUncleanStop(t *testing.T) {
	path := sample(t)
	db, _, err := Open(path, now)
	if err != nil {
		t.Fatal(err)
	}
	if err := Close(db); err != nil {
		t.Fatal(err)
	}
	// Garbage over a branch or leaf page deep in the file, past both meta
	// pages and the freelist.
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	fi, _ := f.Stat()
	pageSize := int64(os.Getpagesize())
	for off := 4 * pageSize; off < fi.Size(); off += pageSize {
		f.WriteAt([]byte(strings.Repeat("\xff", 64)), off)
	}
	f.Close()

	db, rec, err := Open(path, now)
	if err != nil || rec != nil {
		t.Fatalf("after a clean stop: rec=%v err=%v; want no check", rec, err)
	}
	db.Close() // not Close: as if the program was killed
	db, rec, err = Open(path, now)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if rec == nil {
		t.Fatal("after an unclean stop the damage was not found")
	}
}
