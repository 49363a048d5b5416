package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"idk/collector/blob"
	"idk/collector/kv"
)

// layoutVersion 2 puts NUM_IDK in every scan folder's path:
// <KOD_TO>/<YYYYMMDD>/<NUM_IDK>/<NUM_SNIM>. Version 1 had
// <KOD_TO>/<YYYYMMDD>/<NUM_SNIM>, where two ИДК could share a folder.
const layoutVersion = "2"

var keyLayout = []byte("layout")

// migrate moves the scans of a version-1 tree into version-2 folders, file
// by file as the index records them (so two ИДК that shared a folder are
// parted by what the collector recorded, never by a folder's content). It
// is safe to run again after a crash: a file already moved is not moved
// twice. A new, empty store is marked version 2 at once.
func (s *Store) migrate() error {
	var version []byte
	var old []ScanEntry
	err := s.db.View(func(tx kv.Tx) error {
		v, err := tx.Get(bucketMeta, keyLayout)
		if err != nil {
			return fmt.Errorf("%s %s: %w", bucketMeta, keyLayout, err)
		}
		version = bytes.Clone(v) // read after the transaction
		if string(version) == layoutVersion {
			return nil
		}
		return tx.Scan(bucketScans, nil, nil, false, func(k, v []byte) error {
			var sc ScanEntry
			if err := json.Unmarshal(v, &sc); err != nil {
				return fmt.Errorf("decode scan %s: %w", k, err)
			}
			if strings.Count(sc.Dir, "/") == 2 {
				old = append(old, sc)
			}
			return nil
		})
	})
	if err != nil {
		return fmt.Errorf("store: migrate: %w", err)
	}
	if string(version) == layoutVersion {
		return nil
	}
	if len(old) > 0 && s.files != nil {
		return fmt.Errorf("store: migrate: the index lists %d scans in folders of layout version 1, which only a store with its files under the root can move: open it once without Options.Files first", len(old))
	}
	if len(old) > 0 {
		s.log.Warn("moving scan folders to the layout with NUM_IDK in the path", "scans", len(old))
	}
	oldDirs := map[string]bool{}
	for _, sc := range old {
		if err := s.migrateScan(sc); err != nil {
			return fmt.Errorf("store: migrate scan %s/%s: %w", sc.NumIDK, sc.NumSnim, err)
		}
		oldDirs[sc.Dir] = true
	}
	// Old folders that held nothing but their marker go; anything else
	// (a file the index never recorded) stays for an administrator.
	for dir := range oldDirs {
		full := filepath.Join(s.root, filepath.FromSlash(dir))
		os.Remove(filepath.Join(full, scanMarker))
		if err := os.Remove(full); err != nil && !errors.Is(err, fs.ErrNotExist) {
			s.log.Warn("old scan folder kept: it holds files the index does not list", "dir", full)
		}
	}
	return s.db.Update(func(tx kv.Tx) error { return put(tx, bucketMeta, keyLayout, []byte(layoutVersion)) })
}

// bucketNestedKV is the bbolt bucket that held, before the index could
// live in PostgreSQL, one nested bucket per consumer bucket; they are now
// top-level buckets named consumerPrefix+name.
var bucketNestedKV = []byte("kv")

// migrateNestedKV moves the consumers' state out of the nested buckets of
// an index file of the earlier layout: each bucket "kv"/name becomes
// top-level bucket "kv/"+name with the same keys, and "kv" goes. One
// transaction does it all, so a crash leaves either layout, never a mix;
// a file without "kv" is left alone, so it runs once. It needs bbolt's
// nested buckets, which kv.Tx does not show: Open runs it on the bbolt
// file before wrapping it in kv.Bolt.
func migrateNestedKV(db *bolt.DB) error {
	// Nearly always there is nothing to move: a read transaction tells,
	// without a commit's fsync at every start.
	var nested bool
	if err := db.View(func(tx *bolt.Tx) error { nested = tx.Bucket(bucketNestedKV) != nil; return nil }); err != nil || !nested {
		return err
	}
	return db.Update(func(tx *bolt.Tx) error {
		parent := tx.Bucket(bucketNestedKV)
		if parent == nil {
			return nil
		}
		err := parent.ForEach(func(name, v []byte) error {
			if v != nil {
				return fmt.Errorf("migrate consumer state: bucket kv holds a key %q outside any consumer bucket", name)
			}
			to := consumerPrefix + string(name)
			dst, err := tx.CreateBucketIfNotExists([]byte(to))
			if err != nil {
				return fmt.Errorf("migrate consumer state: create bucket %s: %w", to, err)
			}
			return parent.Bucket(name).ForEach(func(k, v []byte) error {
				if v == nil {
					// KV never made deeper buckets: this is not a file
					// the store wrote, and dropping it would lose data.
					return fmt.Errorf("migrate consumer state: bucket kv/%s holds a nested bucket %q", name, k)
				}
				if err := dst.Put(k, v); err != nil {
					return fmt.Errorf("migrate consumer state: put %s %q: %w", to, k, err)
				}
				return nil
			})
		})
		if err != nil {
			return err
		}
		if err := tx.DeleteBucket(bucketNestedKV); err != nil {
			return fmt.Errorf("migrate consumer state: delete bucket kv: %w", err)
		}
		return nil
	})
}

func (s *Store) migrateScan(sc ScanEntry) error {
	parts := strings.Split(sc.Dir, "/")
	newDir := path.Join(parts[0], parts[1], sc.NumIDK, parts[2])
	moved := sc
	moved.Dir = newDir
	dir, err := s.scanDir(moved)
	if err != nil {
		return err
	}
	prefix := []byte(sc.NumIDK + "/" + sc.NumSnim + "/")
	var entries []FileEntry
	var keys [][]byte
	err = s.db.View(func(tx kv.Tx) error {
		return tx.Scan(bucketFiles, prefix, kv.PrefixEnd(prefix), false, func(k, v []byte) error {
			var e FileEntry
			if err := json.Unmarshal(v, &e); err != nil {
				return fmt.Errorf("decode %s: %w", k, err)
			}
			entries = append(entries, e)
			keys = append(keys, bytes.Clone(k))
			return nil
		})
	})
	if err != nil {
		return err
	}
	for i := range entries {
		e := &entries[i]
		from := filepath.Join(s.root, filepath.FromSlash(e.StoredAs))
		to := filepath.Join(dir, path.Base(e.StoredAs))
		if _, err := os.Stat(to); err == nil {
			e.StoredAs = path.Join(newDir, path.Base(e.StoredAs))
			continue // moved before a crash
		}
		if err := os.Rename(from, to); err != nil && !e.Pending {
			return err
		}
		e.StoredAs = path.Join(newDir, path.Base(e.StoredAs))
	}
	if err := syncDir(dir); err != nil {
		return err
	}
	return s.db.Update(func(tx kv.Tx) error {
		for i, e := range entries {
			if err := putJSON(tx, bucketFiles, keys[i], e); err != nil {
				return err
			}
		}
		return putJSON(tx, bucketScans, []byte(sc.NumIDK+"/"+sc.NumSnim), moved)
	})
}

// SweepPartials drops uploads abandoned for longer than age: partial files
// nobody resumed, and the names reserved for them. An agent that comes back
// later offers the file again from the start.
func (s *Store) SweepPartials(age time.Duration) (int, error) {
	cutoff := s.clock.Now().Add(-age)
	incoming := filepath.Join(s.root, ".incoming")
	n := 0
	err := filepath.WalkDir(incoming, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		fi, err := d.Info()
		if err != nil || !fi.ModTime().Before(cutoff) {
			return nil
		}
		s.mu.Lock()
		busy := s.active[p]
		s.mu.Unlock()
		if busy {
			return nil
		}
		rel, _ := filepath.Rel(incoming, p)
		if err := os.Remove(p); err != nil {
			return err
		}
		n++
		// .incoming/<NUM_IDK>/<NUM_SNIM>/<stored name>.part
		if parts := strings.Split(filepath.ToSlash(rel), "/"); len(parts) == 3 && strings.HasSuffix(parts[2], ".part") {
			return s.dropReservation(parts[0], parts[1], strings.TrimSuffix(parts[2], ".part"))
		}
		return nil
	})
	if errors.Is(err, fs.ErrNotExist) {
		err = nil
	}
	if err != nil {
		return n, fmt.Errorf("store: sweep %s: %w", incoming, err)
	}
	// Reservations that never got a partial file (refused for space).
	type reservation struct{ numIDK, numSnim, storedAs string }
	var stale []reservation
	err = s.db.View(func(tx kv.Tx) error {
		return tx.Scan(bucketPending, nil, nil, false, func(k, v []byte) error {
			parts := strings.SplitN(string(k), "/", 3)
			if len(parts) == 3 && len(v) == 8 && int64(binary.BigEndian.Uint64(v)) < cutoff.UnixNano() {
				stale = append(stale, reservation{parts[0], parts[1], parts[2]})
			}
			return nil
		})
	})
	for _, r := range stale {
		p := filepath.Join(incoming, r.numIDK, r.numSnim, r.storedAs+".part")
		if _, serr := os.Stat(p); serr == nil {
			continue // still being resumed
		}
		if err := s.dropReservation(r.numIDK, r.numSnim, r.storedAs); err != nil {
			return n, err
		}
	}
	return n, err
}

func (s *Store) dropReservation(numIDK, numSnim, storedAs string) error {
	return s.db.Update(func(tx kv.Tx) error {
		key := []byte(numIDK + "/" + numSnim + "/" + storedAs)
		v, err := tx.Get(bucketFiles, key)
		if err != nil || v == nil {
			return err
		}
		var e FileEntry
		if err := json.Unmarshal(v, &e); err != nil || !e.Pending {
			return err
		}
		if err := del(tx, bucketHashes, []byte(numIDK+"/"+numSnim+"/"+e.Name+"/"+e.SHA256)); err != nil {
			return err
		}
		if err := del(tx, bucketPending, key); err != nil {
			return err
		}
		return del(tx, bucketFiles, key)
	})
}

// Problem is one disagreement between the index and the disk (or the
// bucket, with Options.Files).
type Problem struct {
	Path string // under the root; with Options.Files, the object's key
	What string // "missing", "size", "sha256", "unindexed"
	Want string
	Got  string
}

// Check hashes every stored file again and compares it with the index,
// then looks for files in scan folders that the index does not list. It
// returns the number of files checked; problems go to report.
//
// With Options.Files it reads every indexed object from the bucket, and
// lists the bucket for objects in the scan tree that the index does not
// list. In a bucket that collectors with indexes of their own share, the
// others' objects show as unindexed.
func (s *Store) Check(report func(Problem)) (int, error) {
	var entries []FileEntry
	err := s.db.View(func(tx kv.Tx) error {
		return tx.Scan(bucketFiles, nil, nil, false, func(k, v []byte) error {
			var e FileEntry
			if err := json.Unmarshal(v, &e); err != nil {
				return fmt.Errorf("decode %s: %w", k, err)
			}
			if !e.Pending {
				entries = append(entries, e)
			}
			return nil
		})
	})
	if err != nil {
		return 0, fmt.Errorf("store: check: %w", err)
	}
	listed := make(map[string]bool, len(entries))
	for _, e := range entries {
		listed[e.StoredAs] = true
		sum, size, err := s.hashStored(e.StoredAs)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			report(Problem{Path: e.StoredAs, What: "missing", Want: e.SHA256})
		case err != nil:
			return 0, fmt.Errorf("store: check: %w", err)
		case size != e.Size:
			report(Problem{Path: e.StoredAs, What: "size", Want: fmt.Sprint(e.Size), Got: fmt.Sprint(size)})
		case sum != e.SHA256:
			report(Problem{Path: e.StoredAs, What: "sha256", Want: e.SHA256, Got: sum})
		}
	}
	if s.files != nil {
		err = s.files.List(context.Background(), "", func(o blob.Info) error {
			if strings.Count(o.Key, "/") == 4 && monthOf(o.Key) != "" && !listed[o.Key] {
				report(Problem{Path: o.Key, What: "unindexed"})
			}
			return nil
		})
		if err != nil {
			return len(entries), fmt.Errorf("store: check: %w", err)
		}
		return len(entries), nil
	}
	err = filepath.WalkDir(s.root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if strings.HasPrefix(d.Name(), ".") && p != s.root {
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		rel, _ := filepath.Rel(s.root, p)
		rel = filepath.ToSlash(rel)
		if d.Type().IsRegular() && strings.Count(rel, "/") == 4 && !listed[rel] {
			report(Problem{Path: rel, What: "unindexed"})
		}
		return nil
	})
	if err != nil {
		return len(entries), fmt.Errorf("store: check: %w", err)
	}
	return len(entries), nil
}
