// Package boltfile opens a bbolt database the way a program that must
// start after a power cut on a cheap SSD needs it: a file that fails to
// open or fails bbolt's consistency check is moved aside (never deleted,
// it is evidence and may be salvageable) and a fresh one is created in
// its place. The caller rebuilds what it can and reports the recovery.
//
// The full check reads every key, which takes minutes on a year of
// history, so it runs only when it can find something: after a stop that
// was not clean (a crash, a power cut, a SIGKILL). Close records a clean
// stop in the file; Open clears the record before returning, so that a
// crash from then on is seen at the next start.
package boltfile

import (
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// Recovery describes a damaged file that was moved aside.
type Recovery struct {
	Aside string // where the damaged file now is
	Cause error  // why it was judged damaged
}

// markerBucket holds the clean-stop record, beside the caller's buckets.
var (
	markerBucket = []byte("boltfile")
	keyClean     = []byte("clean")
)

// Close records a clean stop in db, then closes it. Open after a Close
// skips the full check.
func Close(db *bolt.DB) error {
	err := db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(markerBucket)
		if err != nil {
			return err
		}
		return b.Put(keyClean, []byte{1})
	})
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	return err
}

// Open opens path, checking it. If it is damaged, it is renamed to
// path.damaged-<UTC time> and a new empty database is opened; rec says so.
// A file locked by another process is not damage: that is an error.
func Open(path string, now func() time.Time) (db *bolt.DB, rec *Recovery, err error) {
	db, err = openChecked(path)
	if err == nil {
		return db, nil, nil
	}
	if errors.Is(err, berrors.ErrTimeout) || errors.Is(err, os.ErrPermission) {
		return nil, nil, fmt.Errorf("open %s: %w", path, err)
	}
	aside := path + ".damaged-" + now().UTC().Format("20060102T150405.000")
	if rerr := os.Rename(path, aside); rerr != nil {
		return nil, nil, fmt.Errorf("open %s: %w; and cannot move it aside: %v", path, err, rerr)
	}
	db, err2 := openChecked(path)
	if err2 != nil {
		return nil, nil, fmt.Errorf("open a fresh %s after moving a damaged one to %s: %w", path, aside, err2)
	}
	return db, &Recovery{Aside: aside, Cause: err}, nil
}

// openChecked opens and verifies the file. bbolt panics on some kinds of
// corruption instead of returning an error; that is damage too.
func openChecked(path string) (db *bolt.DB, err error) {
	// A truncated file is mapped in memory beyond its end: reading there
	// faults, which Go turns into a recoverable panic only when asked to.
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if p := recover(); p != nil {
			if db != nil {
				db.Close()
			}
			db, err = nil, fmt.Errorf("bbolt panicked reading %s: %v", path, p)
		}
	}()
	// bbolt makes a new database of an empty file, but a file that once
	// held one and is now empty lost everything: say so.
	if fi, err := os.Stat(path); err == nil && fi.Size() == 0 {
		return nil, fmt.Errorf("%s is empty: truncated", path)
	}
	db, err = bolt.Open(path, 0o600, &bolt.Options{Timeout: 2 * time.Second})
	if err != nil {
		return nil, err
	}
	clean := false
	err = db.View(func(tx *bolt.Tx) error {
		// The meta page says how big the file must be; a shorter file lost
		// its tail.
		if fi, err := os.Stat(path); err == nil && fi.Size() < tx.Size() {
			return fmt.Errorf("file is %d bytes, its meta page says %d: truncated", fi.Size(), tx.Size())
		}
		if b := tx.Bucket(markerBucket); b != nil && b.Get(keyClean) != nil {
			clean = true
			return nil
		}
		// Read every key of every bucket on this goroutine, where a panic
		// or a fault on a garbage page can be recovered. (tx.Check runs on
		// a goroutine of its own, where it cannot.)
		return walk(tx.Cursor(), 0)
	})
	if err == nil && clean {
		// From here on a crash must be seen: the record goes until the
		// next Close.
		err = db.Update(func(tx *bolt.Tx) error { return tx.Bucket(markerBucket).Delete(keyClean) })
	}
	if err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// walk reads every key and value below c, descending into buckets.
func walk(c *bolt.Cursor, depth int) error {
	if depth > 16 {
		return fmt.Errorf("buckets nested deeper than 16: corrupt")
	}
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if v != nil {
			continue
		}
		b := c.Bucket().Bucket(k)
		if b == nil {
			return fmt.Errorf("key %q has no value and is no bucket: corrupt", k)
		}
		if err := walk(b.Cursor(), depth+1); err != nil {
			return err
		}
	}
	return nil
}
