package migrate

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	bolt "go.etcd.io/bbolt"

	"idk/collector/kv"
)

// The buckets of the collector's files that the migration reads by name.
// They are the store's (collector/store) and internal/boltfile's, which
// keep them unexported; the bbolt files on disk are what must match.
const (
	bucketFiles = "files"
	bucketMeta  = "meta"
	// markerBucket is boltfile's record of a clean stop: a fact about
	// the local file, meaningless in the destination, and not copied.
	markerBucket = "boltfile"
	// nestedKV is the bucket under which an index of the old layout kept
	// one nested bucket per consumer; consumer bucket x is now the
	// top-level bucket consumerPrefix+x (store.migrateNestedKV).
	nestedKV       = "kv"
	consumerPrefix = "kv/"
)

// source is one of the collector's bbolt files, read in one transaction.
type source struct {
	name   string // "index" or "cases", in the progress keys
	prefix string // before its buckets' names in the destination
	tx     *bolt.Tx
}

// bucketRef is a bucket of a source: where it is in the bbolt file and
// its name as package kv sees it (without the source's prefix).
type bucketRef struct {
	path [][]byte
	name string
}

func (b bucketRef) open(tx *bolt.Tx) *bolt.Bucket {
	bk := tx.Bucket(b.path[0])
	for _, p := range b.path[1:] {
		if bk == nil {
			return nil
		}
		bk = bk.Bucket(p)
	}
	return bk
}

// first returns the first key of b, or nil if it is empty.
func first(b *bolt.Bucket) []byte {
	k, _ := b.Cursor().First()
	return k
}

// listBuckets returns the buckets of src to copy, in the file's order.
func listBuckets(src source) ([]bucketRef, error) {
	file := src.tx.DB().Path()
	var refs []bucketRef
	err := src.tx.ForEach(func(name []byte, b *bolt.Bucket) error {
		switch {
		case string(name) == markerBucket:
			return nil
		case src.name == "index" && string(name) == nestedKV:
			return b.ForEach(func(k, v []byte) error {
				if v != nil {
					return fmt.Errorf("migrate: %s: bucket kv holds a key %q outside any consumer bucket: not a file the collector wrote", file, k)
				}
				refs = append(refs, bucketRef{path: [][]byte{bytes.Clone(name), bytes.Clone(k)}, name: consumerPrefix + string(k)})
				return nil
			})
		}
		refs = append(refs, bucketRef{path: [][]byte{bytes.Clone(name)}, name: string(name)})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("migrate: list the buckets of %s: %w", file, err)
	}
	// An index half-way between the layouts could have both; which
	// wins is the collector's to decide (it merges them at Open).
	seen := map[string]bool{}
	for _, r := range refs {
		if seen[r.name] {
			return nil, fmt.Errorf("migrate: %s has bucket %s both nested in bucket kv (the old layout) and at the top: start the collector once so that it merges them, stop it, and migrate", file, r.name)
		}
		seen[r.name] = true
	}
	return refs, nil
}

// sourceID names the collector a destination's migration comes from.
type sourceID struct {
	Host string `json:"host"`
	Root string `json:"root"`
}

var keySource = []byte("source")

// errStop ends a Scan early.
var errStop = errors.New("stop")

// claim makes sure the destination index is this source's to migrate
// into, and records so: it refuses one that holds a collector's index
// (bucket meta) with no migration from here recorded, unless forced.
func (m *migrator) claim() error {
	host, _ := os.Hostname() // an empty name still tells roots apart
	root, err := filepath.Abs(m.cfg.Root)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	id, err := json.Marshal(sourceID{Host: host, Root: root})
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	var have []byte
	var holds bool
	err = m.cfg.Index.View(func(tx kv.Tx) error {
		v, err := tx.Get(progressBucket, keySource)
		if err != nil {
			return fmt.Errorf("bucket %s key %s: %w", progressBucket, keySource, err)
		}
		have = bytes.Clone(v)
		err = tx.Scan(bucketMeta, nil, nil, false, func(_, _ []byte) error { holds = true; return errStop })
		if err != nil && !errors.Is(err, errStop) {
			return fmt.Errorf("bucket %s: %w", bucketMeta, err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("migrate: read the destination: %w", err)
	}
	switch {
	case bytes.Equal(have, id):
		m.log.Info("continuing the migration recorded in the destination")
		return nil
	case have != nil && !m.cfg.Force:
		return fmt.Errorf("%w: it records a migration from %s, not from this store.root; force the migration to merge this one into it", ErrForeign, have)
	case have == nil && holds && !m.cfg.Force:
		return fmt.Errorf("%w: its bucket meta is not empty and no migration into it is recorded; force the migration to merge this collector into it", ErrForeign)
	case have != nil || holds:
		m.log.Warn("merging into a destination that holds another collector's data (forced)")
	}
	// A migration of another source recorded its progress: this one
	// starts afresh (Puts are upserts, so copying again is harmless).
	return m.cfg.Index.Update(func(tx kv.Tx) error {
		var old [][]byte
		prefix := []byte("index/")
		err := tx.Scan(progressBucket, prefix, kv.PrefixEnd(prefix), false, func(k, _ []byte) error {
			old = append(old, bytes.Clone(k))
			return nil
		})
		if err != nil {
			return fmt.Errorf("migrate: bucket %s: %w", progressBucket, err)
		}
		for _, k := range old {
			if err := tx.Delete(progressBucket, k); err != nil {
				return fmt.Errorf("migrate: bucket %s key %s: %w", progressBucket, k, err)
			}
		}
		if err := tx.Put(progressBucket, keySource, id); err != nil {
			return fmt.Errorf("migrate: bucket %s key %s: %w", progressBucket, keySource, err)
		}
		return nil
	})
}

// progress is how far the copy of one bucket got, recorded in the
// destination in the transaction of each batch.
type progress struct {
	After []byte `json:"after,omitempty"` // the last key copied
	Keys  int64  `json:"keys"`            // keys copied so far
	Done  bool   `json:"done,omitempty"`
}

// copyIndex copies every bucket of src into the destination index.
func (m *migrator) copyIndex(ctx context.Context, src source) error {
	refs, err := listBuckets(src)
	if err != nil {
		return err
	}
	for _, b := range refs {
		if err := m.copyBucket(ctx, src, b); err != nil {
			return err
		}
	}
	return nil
}

type pair struct{ k, v []byte }

// copyBucket copies bucket b of src in batches, each with its progress in
// one destination transaction, starting after the last key an earlier run
// recorded. A batch repeated (the crash came after its commit but before
// the next) puts the same values again and changes nothing.
func (m *migrator) copyBucket(ctx context.Context, src source, b bucketRef) error {
	file := src.tx.DB().Path()
	pkey := []byte("index/" + src.name + "/" + b.name)
	dest := src.prefix + b.name
	var p progress
	err := m.cfg.Index.View(func(tx kv.Tx) error {
		v, err := tx.Get(progressBucket, pkey)
		if err != nil || v == nil {
			return err
		}
		return json.Unmarshal(v, &p)
	})
	if err != nil {
		return fmt.Errorf("migrate: bucket %s key %s: %w", progressBucket, pkey, err)
	}
	if p.Done {
		m.log.Debug("bucket copied by an earlier run", "source", src.name, "bucket", b.name, "keys", p.Keys)
		return nil
	}
	bk := b.open(src.tx)
	if bk == nil {
		return fmt.Errorf("migrate: %s: bucket %s vanished", file, b.name)
	}
	c := bk.Cursor()
	var k, v []byte
	if p.After == nil {
		k, v = c.First()
	} else {
		m.log.Info("resuming bucket", "source", src.name, "bucket", b.name, "copied", p.Keys)
		if k, v = c.Seek(p.After); bytes.Equal(k, p.After) {
			k, v = c.Next()
		}
	}
	var batch []pair
	for {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("migrate: bucket %s: %w", dest, err)
		}
		batch = batch[:0]
		size := 0
		for k != nil && len(batch) < m.cfg.BatchKeys && size < batchBytes {
			if v == nil {
				return fmt.Errorf("migrate: %s: bucket %s: key %q is a nested bucket, which the collector never makes: not a file it wrote", file, b.name, k)
			}
			// The values stay valid: the read transaction lasts the run.
			batch = append(batch, pair{k, v})
			size += len(k) + len(v)
			k, v = c.Next()
		}
		next := p
		next.Keys += int64(len(batch))
		if len(batch) > 0 {
			next.After = batch[len(batch)-1].k
		}
		next.Done = k == nil
		rec, err := json.Marshal(next)
		if err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
		err = m.cfg.Index.Update(func(tx kv.Tx) error {
			for _, p := range batch {
				if err := tx.Put(dest, p.k, p.v); err != nil {
					return fmt.Errorf("migrate: put bucket %s key %q: %w", dest, p.k, err)
				}
			}
			if err := tx.Put(progressBucket, pkey, rec); err != nil {
				return fmt.Errorf("migrate: put bucket %s key %s: %w", progressBucket, pkey, err)
			}
			return nil
		})
		if err != nil {
			return err
		}
		p = next
		if p.Done {
			m.log.Info("bucket copied", "source", src.name, "bucket", b.name, "to", dest, "keys", p.Keys)
			return nil
		}
		m.log.Debug("batch copied", "bucket", dest, "keys", p.Keys)
	}
}

// verifyIndex compares every bucket of src with the destination, key by
// key, reading both in order: a key missing, a value that differs, and
// (unless forced to merge) a key the source does not have are problems.
func (m *migrator) verifyIndex(src source) error {
	refs, err := listBuckets(src)
	if err != nil {
		return err
	}
	for _, b := range refs {
		if err := m.verifyBucket(src, b); err != nil {
			return err
		}
	}
	return nil
}

func (m *migrator) verifyBucket(src source, b bucketRef) error {
	dest := src.prefix + b.name
	subject := "bucket " + dest
	bk := b.open(src.tx)
	if bk == nil {
		return fmt.Errorf("migrate: %s: bucket %s vanished", src.tx.DB().Path(), b.name)
	}
	var n, bad, extra int64
	note := func(format string, args ...any) {
		if bad++; bad <= maxBucketProblems {
			m.problem(subject, format, args...)
		}
	}
	c := bk.Cursor()
	k, v := c.First()
	var from []byte // nil: from the start
	var batch []pair
	for {
		batch = batch[:0]
		for k != nil && len(batch) < m.cfg.BatchKeys {
			batch = append(batch, pair{k, v})
			k, v = c.Next()
		}
		// The destination's keys from where the last batch ended to
		// just after this one's last key, or to the end with the last
		// batch: each of its keys is looked at once.
		var to []byte
		if k != nil {
			to = append(bytes.Clone(batch[len(batch)-1].k), 0)
		}
		var i int
		var missing, differ []pair
		var more int64
		err := m.cfg.Index.View(func(tx kv.Tx) error {
			i, missing, differ, more = 0, nil, nil, 0
			return tx.Scan(dest, from, to, false, func(dk, dv []byte) error {
				for i < len(batch) && bytes.Compare(batch[i].k, dk) < 0 {
					missing = append(missing, batch[i])
					i++
				}
				if i < len(batch) && bytes.Equal(batch[i].k, dk) {
					if !bytes.Equal(batch[i].v, dv) {
						differ = append(differ, batch[i])
					}
					i++
					return nil
				}
				more++
				return nil
			})
		})
		if err != nil {
			return fmt.Errorf("migrate: verify bucket %s: %w", dest, err)
		}
		missing = append(missing, batch[i:]...)
		for _, p := range missing {
			note("key %q is missing in the destination", p.k)
		}
		for _, p := range differ {
			note("key %q has another value in the destination", p.k)
		}
		extra += more
		n += int64(len(batch))
		if k == nil {
			break
		}
		from = to
	}
	if bad > maxBucketProblems {
		m.problem(subject, "and %d more keys that do not verify", bad-maxBucketProblems)
	}
	if extra > 0 {
		if m.cfg.Force {
			m.log.Info("the destination's bucket holds keys of another collector too (merged)", "bucket", dest, "keys", extra)
		} else {
			m.problem(subject, "the destination holds %d keys the source does not", extra)
		}
	}
	m.mu.Lock()
	m.sum.Buckets++
	m.sum.Keys += n
	m.mu.Unlock()
	m.log.Debug("bucket verified", "bucket", dest, "keys", n)
	return nil
}
