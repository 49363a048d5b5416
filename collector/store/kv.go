package store

import (
	"encoding/binary"
	"errors"
	"fmt"

	"google.golang.org/protobuf/proto"

	"idk/collector/kv"
	"idk/protocol/idkpb"
)

// consumerPrefix starts the name of every bucket of the state that
// consumers of the events keep beside the log (package ingest): consumer
// bucket "x" is index bucket "kv/x". The store's own buckets have no '/'
// in their names, so nothing a consumer picks can reach them. (Before the
// index could live in PostgreSQL, which has no nested buckets, they were
// nested buckets of one bbolt bucket "kv": see migrateNestedKV.)
const consumerPrefix = "kv/"

// KV is one index transaction seen as named buckets of keys and values:
// what package ingest calls a Tx. Values it returns are valid only until
// the transaction ends.
type KV struct{ tx kv.Tx }

// Get returns the value of key in bucket, or nil if there is none.
func (k *KV) Get(bucket string, key []byte) ([]byte, error) {
	v, err := k.tx.Get(consumerPrefix+bucket, key)
	if err != nil {
		return nil, fmt.Errorf("store: kv %s: get %q: %w", bucket, key, err)
	}
	return v, nil
}

// Put sets key in bucket, creating the bucket the first time. A nil
// value is stored as an empty one, as the bbolt index always did: the
// consumers were written against that, while kv.Tx refuses nil.
func (k *KV) Put(bucket string, key, value []byte) error {
	if value == nil {
		value = []byte{}
	}
	if err := k.tx.Put(consumerPrefix+bucket, key, value); err != nil {
		return fmt.Errorf("store: kv %s: put %q: %w", bucket, key, err)
	}
	return nil
}

// Delete removes key from bucket; a missing key is no error.
func (k *KV) Delete(bucket string, key []byte) error {
	if err := k.tx.Delete(consumerPrefix+bucket, key); err != nil {
		return fmt.Errorf("store: kv %s: delete %q: %w", bucket, key, err)
	}
	return nil
}

// Scan calls fn for each key of bucket in [from, to), ascending, or
// descending when reverse is set; a nil to means no upper bound. It stops
// at fn's first error and returns it unchanged (so it is not wrapped:
// callers stop early with an error of their own and compare it).
func (k *KV) Scan(bucket string, from, to []byte, reverse bool, fn func(key, value []byte) error) error {
	return k.tx.Scan(consumerPrefix+bucket, from, to, reverse, fn)
}

// View runs fn in a read-only transaction of the index.
func (s *Store) View(fn func(*KV) error) error {
	return s.db.View(func(tx kv.Tx) error { return fn(&KV{tx}) })
}

// Update runs fn in a read-write transaction of the index, committed
// (synced) when fn returns nil. fn may be run more than once (the
// PostgreSQL index retries a transaction that lost a conflict): it must
// set every result it reports on each call.
func (s *Store) Update(fn func(*KV) error) error {
	return s.db.Update(func(tx kv.Tx) error { return fn(&KV{tx}) })
}

// errStop ends a Scan early; the scanner drops it.
var errStop = errors.New("store: stop scanning")

// EventsAfter calls fn with up to limit stored events of every device in
// log order (ИДК, spool epoch, sequence number), starting after position
// after (nil: from the first). pos is the event's position, to be passed
// back as after. It reads history: it is for a one-time backfill, never for
// start-up.
func (s *Store) EventsAfter(after []byte, limit int, fn func(pos []byte, numIDK string, epoch uint64, ev *idkpb.Event) error) error {
	return s.db.View(func(tx kv.Tx) error {
		n := 0
		err := tx.Scan(bucketEvents, after, nil, false, func(k, v []byte) error {
			if after != nil && string(k) == string(after) {
				return nil
			}
			if n >= limit {
				return errStop
			}
			n++
			i := len(k) - 17
			if i < 0 || k[i] != '/' {
				return fmt.Errorf("store: event key %x: want NUM_IDK/epoch/seq", k)
			}
			ev := &idkpb.Event{}
			if err := proto.Unmarshal(v, ev); err != nil {
				return fmt.Errorf("store: decode event %x: %w", k, err)
			}
			return fn(k, string(k[:i]), binary.BigEndian.Uint64(k[i+1:]), ev)
		})
		if errors.Is(err, errStop) {
			return nil
		}
		return err
	})
}
