// Package kv is the collector's index: transactions over named buckets of
// keys and values, keys in bytewise order. Bolt keeps it in a bbolt file
// on one machine; package pgkv keeps it in PostgreSQL for the collectors
// of a region.
//
// The interface is the small part of bbolt the index uses, so that the
// code above it does not care which store holds it: a transaction gets,
// puts, deletes and scans keys of a bucket, and writers run one at a time.
package kv

import "errors"

// ErrEmptyKey is returned by Put for an empty key: bbolt cannot store one,
// so no implementation accepts it.
var ErrEmptyKey = errors.New("kv: empty key")

// ErrNilValue is returned by Put for a nil value; an empty non-nil value is
// allowed. A nil value is refused rather than stored as empty so that a
// forgotten value does not pass as a deliberate empty one.
var ErrNilValue = errors.New("kv: nil value")

// Tx is one transaction. Values it returns, and the keys and values Scan
// passes to fn, are valid only until the transaction ends: copy what must
// outlive it. They must not be modified.
type Tx interface {
	// Get returns the value of key in bucket, or nil, nil if there is
	// none (an empty value is a non-nil empty slice).
	Get(bucket string, key []byte) ([]byte, error)
	// Put sets key to value in bucket, creating the bucket the first
	// time. key must not be empty, value must not be nil (empty is
	// allowed).
	Put(bucket string, key, value []byte) error
	// Delete removes key from bucket; a missing key or bucket is no
	// error.
	Delete(bucket string, key []byte) error
	// Scan calls fn for each key in [from, to) of bucket, ascending, or
	// descending when reverse is set; a nil to means no upper bound, a
	// nil from means from the start. It stops at fn's first error and
	// returns it unchanged. fn may call Get/Put/Delete on the same Tx,
	// for example to delete the key it is given; whether fn sees its own
	// changes to keys the scan has not reached yet is unspecified.
	Scan(bucket string, from, to []byte, reverse bool, fn func(key, value []byte) error) error
}

// DB runs transactions. Update's transactions run one at a time, across
// every process sharing the DB, so a read-modify-write in fn needs no
// further locking; fn may be called more than once (a retry) and must not
// change anything outside tx. If fn returns an error, nothing it did is
// kept and Update returns that error. View sees one consistent snapshot;
// its Tx refuses Put and Delete.
type DB interface {
	View(fn func(Tx) error) error
	Update(fn func(Tx) error) error
	Close() error
}

// PrefixEnd returns the first key after every key that starts with prefix,
// the to of a Scan over the prefix: prefix with its last byte below 0xff
// incremented and what follows that byte dropped. It returns nil, no upper
// bound, when prefix is empty or all 0xff.
func PrefixEnd(prefix []byte) []byte {
	for i := len(prefix) - 1; i >= 0; i-- {
		if prefix[i] != 0xff {
			end := make([]byte, i+1)
			copy(end, prefix)
			end[i]++
			return end
		}
	}
	return nil
}
