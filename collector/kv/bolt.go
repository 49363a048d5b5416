package kv

import (
	"bytes"
	"fmt"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// Bolt returns the index kept in db, an open bbolt database: each bucket
// is a top-level bbolt bucket of the same name. Close on the result closes
// db, so that whoever holds the DB can release it without knowing which
// store is behind it.
func Bolt(db *bolt.DB) DB { return boltDB{db} }

type boltDB struct{ db *bolt.DB }

func (b boltDB) View(fn func(Tx) error) error {
	return b.db.View(func(tx *bolt.Tx) error { return fn(BoltTx(tx)) })
}

// Update runs fn once: bbolt has a single writer and nothing to retry.
func (b boltDB) Update(fn func(Tx) error) error {
	return b.db.Update(func(tx *bolt.Tx) error { return fn(BoltTx(tx)) })
}

func (b boltDB) Close() error { return b.db.Close() }

// BoltTx wraps a bbolt transaction the caller already has, for code that
// mixes the index with its own bbolt buckets in one transaction. The
// caller commits or rolls back tx.
func BoltTx(tx *bolt.Tx) Tx { return &boltTx{tx: tx} }

type boltTx struct {
	tx *bolt.Tx
	// writes counts Puts and Deletes, so that Scan knows when fn may
	// have moved the ground under its cursor.
	writes uint64
}

func (t *boltTx) Get(bucket string, key []byte) ([]byte, error) {
	b := t.tx.Bucket([]byte(bucket))
	if b == nil {
		return nil, nil
	}
	return b.Get(key), nil
}

func (t *boltTx) Put(bucket string, key, value []byte) error {
	if len(key) == 0 {
		return ErrEmptyKey
	}
	if value == nil {
		return ErrNilValue
	}
	if !t.tx.Writable() {
		return fmt.Errorf("kv: put in %s: %w", bucket, berrors.ErrTxNotWritable)
	}
	t.writes++
	b, err := t.tx.CreateBucketIfNotExists([]byte(bucket))
	if err != nil {
		return fmt.Errorf("kv: create bucket %s: %w", bucket, err)
	}
	if err := b.Put(key, value); err != nil {
		return fmt.Errorf("kv: put in %s: %w", bucket, err)
	}
	return nil
}

func (t *boltTx) Delete(bucket string, key []byte) error {
	if !t.tx.Writable() {
		return fmt.Errorf("kv: delete in %s: %w", bucket, berrors.ErrTxNotWritable)
	}
	b := t.tx.Bucket([]byte(bucket))
	if b == nil {
		return nil
	}
	t.writes++
	if err := b.Delete(key); err != nil {
		return fmt.Errorf("kv: delete in %s: %w", bucket, err)
	}
	return nil
}

// Scan walks a bbolt cursor. A bbolt cursor does not survive changes to
// its bucket (deleting the key under it makes Next skip the following
// one), so when fn has written anything Scan seeks afresh from the key it
// last gave fn instead of stepping.
func (t *boltTx) Scan(bucket string, from, to []byte, reverse bool, fn func(key, value []byte) error) error {
	b := t.tx.Bucket([]byte(bucket))
	if b == nil {
		return nil
	}
	c := b.Cursor()
	inRange := func(k []byte) bool {
		if k == nil {
			return false
		}
		if reverse {
			return from == nil || bytes.Compare(k, from) >= 0
		}
		return to == nil || bytes.Compare(k, to) < 0
	}
	var k, v []byte
	switch {
	case !reverse:
		k, v = c.Seek(from) // a nil from seeks to the first key
	case to == nil:
		k, v = c.Last()
	default:
		k, v = before(c, to)
	}
	var cur []byte
	for inRange(k) {
		cur = append(cur[:0], k...)
		if v != nil { // nil is a nested bucket, which the index never makes
			writes := t.writes
			if err := fn(k, v); err != nil {
				return err
			}
			if t.writes != writes {
				if reverse {
					k, v = before(c, cur)
				} else if k, v = c.Seek(cur); bytes.Equal(k, cur) {
					k, v = c.Next()
				}
				continue
			}
		}
		if reverse {
			k, v = back(c, cur)
		} else {
			k, v = c.Next()
		}
	}
	return nil
}

// before moves c to the last key before k.
func before(c *bolt.Cursor, k []byte) ([]byte, []byte) {
	if at, _ := c.Seek(k); at == nil {
		return c.Last()
	}
	return back(c, k)
}

// back is c.Prev from a place at or after key from, made to step over the
// leaves that deletes earlier in the transaction emptied: bbolt rebalances
// them only at commit, and its Prev stops at one as if it were the start
// of the bucket (Next, Seek and Last step over them).
func back(c *bolt.Cursor, from []byte) ([]byte, []byte) {
	k, v := c.Prev()
	if k != nil {
		return k, v
	}
	// Truly at the start unless some key comes before from; if one does,
	// c stands on an empty leaf, and further Prevs go on from there.
	if first, _ := c.Bucket().Cursor().First(); first == nil || bytes.Compare(first, from) >= 0 {
		return nil, nil
	}
	for k == nil {
		k, v = c.Prev()
	}
	return k, v
}
