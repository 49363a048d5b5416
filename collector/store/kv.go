package store

import (
	"bytes"
	"encoding/binary"
	"fmt"

	bolt "go.etcd.io/bbolt"
	"google.golang.org/protobuf/proto"

	"idk/protocol/idkpb"
)

// bucketKV holds, one nested bucket each, the state that consumers of the
// events keep beside the log (package ingest). Nesting them under one
// parent keeps every name a consumer picks away from the store's own
// buckets.
var bucketKV = []byte("kv")

// KV is one index transaction seen as named buckets of keys and values:
// what package ingest calls a Tx. Values it returns are valid only until
// the transaction ends.
type KV struct{ tx *bolt.Tx }

// Get returns the value of key in bucket, or nil if there is none.
func (k *KV) Get(bucket string, key []byte) ([]byte, error) {
	b := k.bucket(bucket)
	if b == nil {
		return nil, nil
	}
	return b.Get(key), nil
}

// Put sets key in bucket, creating the bucket the first time.
func (k *KV) Put(bucket string, key, value []byte) error {
	parent, err := k.tx.CreateBucketIfNotExists(bucketKV)
	if err != nil {
		return fmt.Errorf("store: kv: %w", err)
	}
	b, err := parent.CreateBucketIfNotExists([]byte(bucket))
	if err != nil {
		return fmt.Errorf("store: kv bucket %s: %w", bucket, err)
	}
	if err := b.Put(key, value); err != nil {
		return fmt.Errorf("store: kv %s: %w", bucket, err)
	}
	return nil
}

// Delete removes key from bucket; a missing key is no error.
func (k *KV) Delete(bucket string, key []byte) error {
	b := k.bucket(bucket)
	if b == nil {
		return nil
	}
	if err := b.Delete(key); err != nil {
		return fmt.Errorf("store: kv %s: %w", bucket, err)
	}
	return nil
}

// Scan calls fn for each key of bucket in [from, to), ascending, or
// descending when reverse is set; a nil to means no upper bound. It stops
// at fn's first error and returns it unchanged.
func (k *KV) Scan(bucket string, from, to []byte, reverse bool, fn func(key, value []byte) error) error {
	b := k.bucket(bucket)
	if b == nil {
		return nil
	}
	c := b.Cursor()
	if !reverse {
		for key, v := c.Seek(from); key != nil && (to == nil || bytes.Compare(key, to) < 0); key, v = c.Next() {
			if err := fn(key, v); err != nil {
				return err
			}
		}
		return nil
	}
	// Descending: start at the last key below to.
	var key, v []byte
	if to == nil {
		key, v = c.Last()
	} else if key, _ = c.Seek(to); key == nil {
		key, v = c.Last()
	} else {
		key, v = c.Prev()
	}
	for ; key != nil && bytes.Compare(key, from) >= 0; key, v = c.Prev() {
		if err := fn(key, v); err != nil {
			return err
		}
	}
	return nil
}

func (k *KV) bucket(name string) *bolt.Bucket {
	parent := k.tx.Bucket(bucketKV)
	if parent == nil {
		return nil
	}
	return parent.Bucket([]byte(name))
}

// View runs fn in a read-only transaction of the index.
func (s *Store) View(fn func(*KV) error) error {
	return s.db.View(func(tx *bolt.Tx) error { return fn(&KV{tx}) })
}

// Update runs fn in a read-write transaction of the index, committed
// (synced) when fn returns nil.
func (s *Store) Update(fn func(*KV) error) error {
	return s.db.Update(func(tx *bolt.Tx) error { return fn(&KV{tx}) })
}

// EventsAfter calls fn with up to limit stored events of every device in
// log order (ИДК, spool epoch, sequence number), starting after position
// after (nil: from the first). pos is the event's position, to be passed
// back as after. It reads history: it is for a one-time backfill, never for
// start-up.
func (s *Store) EventsAfter(after []byte, limit int, fn func(pos []byte, numIDK string, epoch uint64, ev *idkpb.Event) error) error {
	return s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketEvents).Cursor()
		k, v := c.First()
		if after != nil {
			if k, v = c.Seek(after); k != nil && bytes.Equal(k, after) {
				k, v = c.Next()
			}
		}
		for n := 0; k != nil && n < limit; k, v = c.Next() {
			n++
			i := len(k) - 17
			if i < 0 || k[i] != '/' {
				return fmt.Errorf("store: event key %x: want NUM_IDK/epoch/seq", k)
			}
			ev := &idkpb.Event{}
			if err := proto.Unmarshal(v, ev); err != nil {
				return fmt.Errorf("store: decode event %x: %w", k, err)
			}
			if err := fn(k, string(k[:i]), binary.BigEndian.Uint64(k[i+1:]), ev); err != nil {
				return err
			}
		}
		return nil
	})
}
