// Package migrate moves the history of a collector that kept everything
// to itself (the bbolt files index.db and cases.db, and the files under
// store.root) into the backends a region's collectors share: the index
// into a kv.DB (PostgreSQL), the files into a blob.Store (an S3 bucket).
//
// The source is only read: nothing under store.root is changed or
// removed, so the collector can go on as it was if the migration is
// abandoned. The copy is resumable: the index is copied in batches, each
// recording in the same destination transaction how far it got, and a
// file already in the bucket with the index's size and SHA-256 is not sent
// again. Every SHA-256 is checked: a local file against the index before
// it is sent, the server's copy against the index as it is received (blob
// sends the sum with the content) and again at the end, when every bucket
// and every file is compared with the source.
package migrate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"idk/collector/blob"
	"idk/collector/kv"
)

// Defaults of Config.
const (
	DefaultBatchKeys = 2000
	DefaultWorkers   = 4
	DefaultLogEvery  = 500
	// defaultLockWait is how long Run waits for the collector's lock on
	// its files: a running collector holds it for good, so a short wait
	// tells.
	defaultLockWait = 2 * time.Second
	// batchBytes caps the keys and values of one destination transaction
	// besides BatchKeys, so a bucket of large values does not make one
	// huge transaction.
	batchBytes = 16 << 20
	// maxBucketProblems is how many disagreeing keys of one bucket are
	// listed one by one; the rest are counted, so a bucket gone wrong as
	// a whole does not print a million lines.
	maxBucketProblems = 20
)

// ErrRunning means the collector's files are locked: it is running.
var ErrRunning = errors.New("migrate: the collector is running (its files are locked): stop the collector first")

// ErrForeign means the destination already holds a collector's index that
// no migration from this source wrote: merging two collectors' histories
// must be asked for (Config.Force), never happen by a wrong address.
var ErrForeign = errors.New("migrate: the destination already holds another collector's data")

// ErrUnclean means index.db was not closed by a collector that stopped
// cleanly, so it has not had the check a collector runs on such a file.
var ErrUnclean = errors.New("migrate: index.db was not closed cleanly: start the collector and stop it (it checks the file at start), or force the migration")

// Config says what to move where.
type Config struct {
	// Root is the collector's store.root: index.db, cases.db and the
	// files the index lists.
	Root string
	// Index receives the index (store.root's index.db unprefixed, its
	// cases.db under CasesPrefix); nil leaves the index alone.
	Index kv.DB
	// Files receives the files, each under its FileEntry.StoredAs; nil
	// leaves the files alone. It must copy (blob.S3): a store that moves
	// the file it is given (blob.Local) is refused, since the migration
	// never takes anything away from the source.
	Files blob.Store
	// Force migrates into a destination that holds another collector's
	// index (merging the two), or from an index.db not closed cleanly.
	Force bool
	// BatchKeys is the most keys copied in one destination transaction;
	// default DefaultBatchKeys.
	BatchKeys int
	// Workers is how many files are hashed and sent at once; default
	// DefaultWorkers.
	Workers int
	// LogEvery logs the files' progress every so many files; default
	// DefaultLogEvery.
	LogEvery int
	// LockWait is how long to wait for the collector's lock on its files;
	// default two seconds.
	LockWait time.Duration
	Log      *slog.Logger
}

// CasesPrefix goes before the name of every bucket of the deadline
// engine's cases.db in the destination, as kv.Prefix(db, CasesPrefix)
// shows them to the engine (cases.OpenDB).
const CasesPrefix = "cases/"

// progressBucket holds the migration's progress in the destination index:
// "source" names the collector migrated, "index/<source>/<bucket>" how
// far each bucket got.
const progressBucket = "migrate"

// Problem is something that did not verify: a file or a bucket.
type Problem struct {
	Subject string // a file's StoredAs, or "bucket <name>"
	Detail  string
}

func (p Problem) String() string { return p.Subject + ": " + p.Detail }

// Summary is what a run did and found.
type Summary struct {
	Buckets int   // buckets of the index compared with the destination
	Keys    int64 // their keys in the source
	Files   int   // files compared with the destination
	Bytes   int64 // their size
	// Uploaded and UploadedBytes are the files this run sent; the
	// others were in the destination already (an earlier run).
	Uploaded      int
	UploadedBytes int64
	Problems      []Problem
	Took          time.Duration
}

// OK reports whether everything verified.
func (s Summary) OK() bool { return len(s.Problems) == 0 }

// migrator is one run.
type migrator struct {
	cfg Config
	log *slog.Logger

	mu       sync.Mutex
	sum      Summary
	reported map[string]bool // files with a problem already listed
}

func (m *migrator) problem(subject, format string, args ...any) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sum.Problems = append(m.sum.Problems, Problem{Subject: subject, Detail: fmt.Sprintf(format, args...)})
	m.log.Warn("does not verify", "what", subject, "problem", fmt.Sprintf(format, args...))
}

// Run migrates what cfg names and verifies it. It returns an error when
// it could not run to the end (the collector is running, a backend fails,
// ctx is done): a new run continues where this one stopped. What it ran
// through but found wrong (a local file that differs from the index, a key
// or an object that differs in the destination) is in Summary.Problems.
func Run(ctx context.Context, cfg Config) (Summary, error) {
	began := time.Now()
	if cfg.Index == nil && cfg.Files == nil {
		return Summary{}, errors.New("migrate: neither the index nor the files to move")
	}
	if _, ok := cfg.Files.(*blob.Local); ok {
		return Summary{}, errors.New("migrate: blob.Local moves the files it stores; the migration copies")
	}
	if cfg.BatchKeys <= 0 {
		cfg.BatchKeys = DefaultBatchKeys
	}
	if cfg.Workers <= 0 {
		cfg.Workers = DefaultWorkers
	}
	if cfg.LogEvery <= 0 {
		cfg.LogEvery = DefaultLogEvery
	}
	if cfg.LockWait <= 0 {
		cfg.LockWait = defaultLockWait
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	m := &migrator{cfg: cfg, log: cfg.Log, reported: map[string]bool{}}
	m.log.Info("migrating", "root", cfg.Root, "index", cfg.Index != nil, "files", cfg.Files != nil)

	index, err := openSource(filepath.Join(cfg.Root, "index.db"), cfg.LockWait)
	if err != nil {
		return Summary{}, err
	}
	defer index.Close()
	// One read transaction for the whole run: nothing writes to the
	// files while they are locked, and every pass sees the same state.
	itx, err := index.Begin(false)
	if err != nil {
		return Summary{}, fmt.Errorf("migrate: read %s: %w", index.Path(), err)
	}
	defer itx.Rollback() //nolint:errcheck // a read transaction: nothing to lose
	if err := m.checkSource(itx); err != nil {
		return Summary{}, err
	}

	sources := []source{{name: "index", prefix: "", tx: itx}}
	if cfg.Index != nil {
		cases, err := openSource(filepath.Join(cfg.Root, "cases.db"), cfg.LockWait)
		if errors.Is(err, os.ErrNotExist) {
			m.log.Warn("no cases.db beside index.db: the deadline engine has nothing to move", "root", cfg.Root)
		} else if err != nil {
			return Summary{}, err
		} else {
			defer cases.Close()
			ctxn, err := cases.Begin(false)
			if err != nil {
				return Summary{}, fmt.Errorf("migrate: read %s: %w", cases.Path(), err)
			}
			defer ctxn.Rollback() //nolint:errcheck // a read transaction
			sources = append(sources, source{name: "cases", prefix: CasesPrefix, tx: ctxn})
		}
		if err := m.claim(); err != nil {
			return Summary{}, err
		}
		for _, src := range sources {
			if err := m.copyIndex(ctx, src); err != nil {
				return m.sum, err
			}
		}
	}
	if cfg.Files != nil {
		if err := m.copyFiles(ctx, itx); err != nil {
			return m.sum, err
		}
	}

	// Verification reads everything back from the destination.
	if cfg.Index != nil {
		for _, src := range sources {
			if err := m.verifyIndex(src); err != nil {
				return m.sum, err
			}
		}
		m.log.Info("index compared", "buckets", m.sum.Buckets, "keys", m.sum.Keys, "problems", len(m.sum.Problems))
	}
	if cfg.Files != nil {
		if err := m.verifyFiles(ctx, itx); err != nil {
			return m.sum, err
		}
		m.log.Info("files compared", "verified", m.sum.Files, "bytes", m.sum.Bytes, "problems", len(m.sum.Problems))
	}
	m.sum.Took = time.Since(began)
	return m.sum, nil
}

// openSource opens a bbolt file of the collector read-only. A read-only
// open takes a shared lock, which the running collector's exclusive one
// refuses: a timeout means it runs. While the migration holds the shared
// lock the collector cannot start on the files either.
func openSource(path string, wait time.Duration) (*bolt.DB, error) {
	if _, err := os.Stat(path); err != nil {
		// bbolt would create a missing file, read-only or not.
		return nil, fmt.Errorf("migrate: %w", err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: wait})
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, fmt.Errorf("%w: %s", ErrRunning, path)
	}
	if err != nil {
		return nil, fmt.Errorf("migrate: open %s: %w", path, err)
	}
	return db, nil
}

// checkSource refuses an index the collector has not checked or whose
// paths are of the old layout.
func (m *migrator) checkSource(tx *bolt.Tx) error {
	// boltfile.Close records a clean stop in bucket "boltfile"; a
	// collector's Open checks every page of a file without it before
	// using it, which a bare read here does not.
	clean := false
	if b := tx.Bucket([]byte(markerBucket)); b != nil && b.Get([]byte("clean")) != nil {
		clean = true
	}
	if !clean {
		if !m.cfg.Force {
			return fmt.Errorf("%w (%s)", ErrUnclean, tx.DB().Path())
		}
		m.log.Warn("index.db was not closed cleanly; migrating it anyway (forced)", "file", tx.DB().Path())
	}
	// Layout 1 had no NUM_IDK in the scan folders' paths; the collector
	// moves them at its Open, and StoredAs names the new ones only then.
	var layout []byte
	if b := tx.Bucket([]byte(bucketMeta)); b != nil {
		layout = b.Get([]byte("layout"))
	}
	files := tx.Bucket([]byte(bucketFiles))
	if string(layout) != "2" && files != nil && first(files) != nil {
		return fmt.Errorf("migrate: %s has folder layout %q, not 2: start this version of the collector once, so that it moves its scan folders, then stop it and migrate", tx.DB().Path(), layout)
	}
	return nil
}
