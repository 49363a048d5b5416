// Package ingest is the one path from a received event batch to durable
// state. It appends the batch to the event log and, inside the same
// transaction, applies each new event to every Consumer, so the state the
// consumers derive from the events is committed with the log: a crash
// cannot leave them apart, and nothing is replayed at start. After the
// commit it hands the new events to each Follower, whose state is live
// only (memory, or a store of its own).
//
// At start, Load brings each consumer up: one whose state this store has
// never held (an upgraded collector) is filled once from the event log,
// then each loads what it keeps in memory, which must not grow with
// history.
package ingest

import (
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"idk/protocol/idkpb"
)

// Tx is a transaction over named buckets of keys and values. Keys sort
// bytewise. Values it returns are valid only until the transaction ends.
type Tx interface {
	// Get returns key's value in bucket, or nil if there is none.
	Get(bucket string, key []byte) ([]byte, error)
	// Put sets key in bucket, creating the bucket the first time.
	Put(bucket string, key, value []byte) error
	// Delete removes key from bucket; a missing key is no error.
	Delete(bucket string, key []byte) error
	// Scan calls fn for each key in [from, to) of bucket, ascending, or
	// descending when reverse is set; a nil to means no upper bound. It
	// stops at fn's first error and returns it unchanged: to stop early,
	// return an error of your own and ignore it.
	Scan(bucket string, from, to []byte, reverse bool, fn func(key, value []byte) error) error
}

// PrefixEnd is the first key after every key that starts with prefix: the
// to of a Scan over the keys with that prefix. nil (no bound) when there
// is none, as for a prefix of 0xff bytes only.
func PrefixEnd(prefix []byte) []byte {
	end := slices.Clone(prefix)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}

// A Consumer keeps durable state derived from the events. Apply runs in
// the transaction that appends ev to the log, once per event, in each
// device's log order (spool epoch, sequence number). An error refuses the
// whole batch, which the agent sends again. Apply must not change anything
// outside tx: the transaction may still be rolled back.
type Consumer interface {
	Apply(tx Tx, dev *idkpb.Device, epoch uint64, ev *idkpb.Event) error
}

// A Loader is a Consumer with state in memory, read from tx at start.
// What it reads must be bounded (per ИДК, or a recent window), never the
// history.
type Loader interface {
	Load(tx Tx) error
}

// A Follower is handed each batch's new events after they are committed,
// in each device's log order. It keeps live state only: a crash between
// the commit and Follow loses what Follow would have done.
type Follower interface {
	Follow(dev *idkpb.Device, epoch uint64, evs []*idkpb.Event)
}

// Viewer runs read-only transactions: what consumers answer queries from.
type Viewer interface {
	View(fn func(Tx) error) error
}

// Log is the event log and the transactions the consumers' state lives in:
// the collector's bbolt index (FromStore) now, PostgreSQL later.
type Log interface {
	Viewer
	// Append stores a batch of dev's spool epoch, each event once, and
	// calls apply in the same transaction for each new one. correct maps
	// the agent's clock to the collector's.
	Append(dev *idkpb.Device, epoch uint64, evs []*idkpb.Event, correct func(int64) time.Time, apply func(Tx, *idkpb.Event) error) (Result, error)
	// Update runs fn in a read-write transaction.
	Update(fn func(Tx) error) error
	// Events calls fn with up to limit stored events, in log order, after
	// position after (nil: from the start). It reads history: backfill
	// only.
	Events(after []byte, limit int, fn func(pos []byte, dev *idkpb.Device, epoch uint64, ev *idkpb.Event) error) error
}

// Result counts what one batch did.
type Result struct {
	Stored, Duplicates int
	New                []*idkpb.Event // the events stored now, with CollectorTimeUnixNano set
}

// Config wires an Ingest.
type Config struct {
	Log Log
	// Consumers by name. A name is kept in the store to mark the
	// consumer's backfill done: do not rename one.
	Consumers map[string]Consumer
	Followers []Follower
	Logger    *slog.Logger
}

// Ingest is safe for concurrent use.
type Ingest struct {
	log       Log
	names     []string // of consumers, sorted: one order for every event
	consumers []Consumer
	followers []Follower
	logger    *slog.Logger

	mu      sync.Mutex
	devices map[string]*sync.Mutex // by NUM_IDK: one batch at a time
}

// New returns an Ingest. Call Load before the first batch.
func New(cfg Config) *Ingest {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	in := &Ingest{log: cfg.Log, followers: cfg.Followers, logger: cfg.Logger, devices: map[string]*sync.Mutex{}}
	in.names = slices.Sorted(maps.Keys(cfg.Consumers))
	for _, n := range in.names {
		in.consumers = append(in.consumers, cfg.Consumers[n])
	}
	return in
}

// Ingest appends a batch of dev's spool epoch to the log with every
// consumer's state, then hands the new events to the followers.
func (in *Ingest) Ingest(dev *idkpb.Device, epoch uint64, evs []*idkpb.Event, correct func(int64) time.Time) (Result, error) {
	// Batches of one ИДК pass one at a time, so followers see its events
	// in the order they were committed. A reconnecting agent can have two
	// connections for a moment.
	lock := in.deviceLock(dev.NumIdk)
	lock.Lock()
	defer lock.Unlock()
	res, err := in.log.Append(dev, epoch, evs, correct, func(tx Tx, ev *idkpb.Event) error {
		for i, c := range in.consumers {
			if err := c.Apply(tx, dev, epoch, ev); err != nil {
				return fmt.Errorf("ingest: %s: %w", in.names[i], err)
			}
		}
		return nil
	})
	if err != nil {
		return Result{}, err
	}
	if len(res.New) > 0 {
		for _, f := range in.followers {
			f.Follow(dev, epoch, res.New)
		}
	}
	return res, nil
}

func (in *Ingest) deviceLock(numIDK string) *sync.Mutex {
	in.mu.Lock()
	defer in.mu.Unlock()
	l := in.devices[numIDK]
	if l == nil {
		l = &sync.Mutex{}
		in.devices[numIDK] = l
	}
	return l
}

// Load brings every consumer up to the log before serving: it backfills
// each consumer this store has never held state for, once, then loads
// every Loader's state.
func (in *Ingest) Load() error {
	if err := in.backfill(); err != nil {
		return err
	}
	return in.log.View(func(tx Tx) error {
		for i, c := range in.consumers {
			if l, ok := c.(Loader); ok {
				if err := l.Load(tx); err != nil {
					return fmt.Errorf("ingest: load %s: %w", in.names[i], err)
				}
			}
		}
		return nil
	})
}

// Backfill state, in the bucket bucketIngest: per consumer name, the
// position of the last event applied (keyAt) and a mark once all were
// (keyDone). Both are written in the transaction that applies the
// events, so a crash mid-backfill resumes where it stopped and never
// applies an event twice.
const (
	bucketIngest  = "ingest"
	keyAt         = "backfill-at/"
	keyDone       = "backfilled/"
	backfillBatch = 20000 // events per transaction: bounded memory, few syncs
)

var done = []byte{1}

// backfill applies the whole event log to the consumers not yet marked
// done. It takes as long as history, once per consumer.
func (in *Ingest) backfill() error {
	var pending []int
	at := map[int][]byte{}
	err := in.log.View(func(tx Tx) error {
		for i, n := range in.names {
			v, err := tx.Get(bucketIngest, []byte(keyDone+n))
			if err != nil {
				return err
			}
			if v != nil {
				continue
			}
			pending = append(pending, i)
			if p, err := tx.Get(bucketIngest, []byte(keyAt+n)); err != nil {
				return err
			} else if p != nil {
				at[i] = clone(p)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("ingest: backfill state: %w", err)
	}
	if len(pending) == 0 {
		return nil
	}
	names := make([]string, len(pending))
	for j, i := range pending {
		names[j] = in.names[i]
	}
	start := time.Now()
	// Start from the earliest position any pending consumer stopped at.
	var from []byte
	for _, i := range pending {
		if at[i] == nil {
			from = nil
			break
		}
		if from == nil || string(at[i]) < string(from) {
			from = at[i]
		}
	}
	total := 0
	for {
		type logged struct {
			pos   []byte
			dev   *idkpb.Device
			epoch uint64
			ev    *idkpb.Event
		}
		var batch []logged
		err := in.log.Events(from, backfillBatch, func(pos []byte, dev *idkpb.Device, epoch uint64, ev *idkpb.Event) error {
			batch = append(batch, logged{clone(pos), dev, epoch, ev})
			return nil
		})
		if err != nil {
			return fmt.Errorf("ingest: backfill: read the log: %w", err)
		}
		if len(batch) == 0 {
			break
		}
		if total == 0 {
			in.logger.Warn("filling new consumers' state from the event log, once; this takes as long as the history", "consumers", names)
		}
		err = in.log.Update(func(tx Tx) error {
			for _, e := range batch {
				for _, i := range pending {
					if at[i] != nil && string(e.pos) <= string(at[i]) {
						continue // applied before a crash
					}
					if err := in.consumers[i].Apply(tx, e.dev, e.epoch, e.ev); err != nil {
						return fmt.Errorf("%s: %w", in.names[i], err)
					}
				}
			}
			last := batch[len(batch)-1].pos
			for _, i := range pending {
				if err := tx.Put(bucketIngest, []byte(keyAt+in.names[i]), last); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("ingest: backfill: %w", err)
		}
		from = batch[len(batch)-1].pos
		for _, i := range pending {
			at[i] = from
		}
		total += len(batch)
	}
	err = in.log.Update(func(tx Tx) error {
		for _, i := range pending {
			if err := tx.Put(bucketIngest, []byte(keyDone+in.names[i]), done); err != nil {
				return err
			}
			if err := tx.Delete(bucketIngest, []byte(keyAt+in.names[i])); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("ingest: backfill: mark done: %w", err)
	}
	if total > 0 {
		in.logger.Warn("consumers' state filled from the event log", "consumers", names, "events", total, "took", time.Since(start).Round(time.Millisecond))
	}
	return nil
}

func clone(b []byte) []byte { return append([]byte(nil), b...) }
