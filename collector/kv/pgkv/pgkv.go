// Package pgkv keeps the collector's index (package kv) in PostgreSQL, so
// that the collectors of a region can share one.
//
// Every bucket lives in one table, idk_kv(bucket, key, value), keys bytea,
// which PostgreSQL orders bytewise as bbolt does. Writers of every process
// sharing the database take one transaction-level advisory lock, so that
// Update's transactions run one at a time as they do in bbolt, and the
// read-modify-writes the index is made of need no further locking.
package pgkv

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"idk/collector/kv"
)

// WriterLock is the key of the transaction-level advisory lock every
// Update holds: "the index writer" (the ASCII of "idk_kv_w"). Anything
// else that takes advisory locks on the database must not use it.
const WriterLock int64 = 0x69646b5f6b765f77

// VersionTable is goose's table of the migrations applied to idk_kv, of
// its own so that other packages may run their own goose migrations on the
// same database.
const VersionTable = "idk_kv_goose_version"

// maxAttempts bounds the runs of fn in one Update when PostgreSQL reports
// a serialization failure or a deadlock. Writers are serialized by
// WriterLock, so these come only from other writers of the table, and a
// few immediate retries are plenty.
const maxAttempts = 5

//go:embed migrations/*.sql
var migrations embed.FS

// DB is the index in one PostgreSQL database. It implements kv.DB.
type DB struct {
	pool *pgxpool.Pool
	// fence, if set, runs first in every Update's transaction (Fenced).
	fence func(ctx context.Context, tx pgx.Tx) error
}

var _ kv.DB = (*DB)(nil)

// Open connects to the database dsn names and brings its schema up to
// date. Collectors that start together may all call Open: a session-level
// advisory lock (goose's) lets one migrate at a time.
func Open(ctx context.Context, dsn string) (*DB, error) {
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		return nil, fmt.Errorf("pgkv: %w", err)
	}
	if err := migrate(ctx, pool); err != nil {
		pool.Close()
		return nil, err
	}
	return &DB{pool: pool}, nil
}

func migrate(ctx context.Context, pool *pgxpool.Pool) error {
	fsys, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return fmt.Errorf("pgkv: migrations: %w", err)
	}
	locker, err := lock.NewPostgresSessionLocker()
	if err != nil {
		return fmt.Errorf("pgkv: migration lock: %w", err)
	}
	p, err := goose.NewProvider(goose.DialectPostgres, stdlib.OpenDBFromPool(pool), fsys,
		goose.WithSessionLocker(locker),
		goose.WithTableName(VersionTable),
		// Only this package's migrations, whatever else registered Go
		// migrations with goose globally.
		goose.WithDisableGlobalRegistry(true),
	)
	if err != nil {
		return fmt.Errorf("pgkv: migrations: %w", err)
	}
	defer p.Close() // closes the *sql.DB only, not the pool
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("pgkv: migrate: %w", err)
	}
	return nil
}

// Fenced returns db with fence run first in each Update's transaction: an
// error from it refuses the transaction. A leader passes its election's
// check (leader.Fence), so that a collector that lost the region's
// leadership without noticing yet cannot write after the next leader
// began. The returned DB shares db's pool; closing either closes it.
func (db *DB) Fenced(fence func(ctx context.Context, tx pgx.Tx) error) *DB {
	return &DB{pool: db.pool, fence: fence}
}

// Pool returns the connection pool, for packages that keep their own
// tables in the same database (the leader elector).
func (db *DB) Pool() *pgxpool.Pool { return db.pool }

// Close closes the pool.
func (db *DB) Close() error {
	db.pool.Close()
	return nil
}

// View runs fn in a read-only REPEATABLE READ transaction: one snapshot.
func (db *DB) View(fn func(kv.Tx) error) error {
	return db.ViewContext(context.Background(), fn)
}

// ViewContext is View with the statements bound to ctx.
func (db *DB) ViewContext(ctx context.Context, fn func(kv.Tx) error) error {
	tx, err := db.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return fmt.Errorf("pgkv: begin: %w", err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // after Commit it does nothing; after a failure the error that matters is fn's
	if err := fn(&pgTx{ctx: ctx, tx: tx}); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("pgkv: commit: %w", err)
	}
	return nil
}

// Update runs fn in a READ COMMITTED transaction holding WriterLock, and
// runs it again (up to a few times) if PostgreSQL reports a serialization
// failure or deadlock. Any other error, a lost connection among them, is
// returned; fn's own error is returned unchanged.
func (db *DB) Update(fn func(kv.Tx) error) error {
	return db.UpdateContext(context.Background(), fn)
}

// UpdateContext is Update with the statements, and the wait for
// WriterLock, bound to ctx.
func (db *DB) UpdateContext(ctx context.Context, fn func(kv.Tx) error) error {
	for attempt := 1; ; attempt++ {
		err := db.update(ctx, fn)
		if err == nil || attempt == maxAttempts || !retryable(err) || ctx.Err() != nil {
			return err
		}
	}
}

func (db *DB) update(ctx context.Context, fn func(kv.Tx) error) error {
	tx, err := db.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("pgkv: begin: %w", err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // after Commit it does nothing; after a failure the error that matters is fn's
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", WriterLock); err != nil {
		return fmt.Errorf("pgkv: writer lock: %w", err)
	}
	if db.fence != nil {
		if err := db.fence(ctx, tx); err != nil {
			return fmt.Errorf("pgkv: fence: %w", err)
		}
	}
	if err := fn(&pgTx{ctx: ctx, tx: tx}); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("pgkv: commit: %w", err)
	}
	return nil
}

// retryable reports whether err is PostgreSQL's word that the transaction
// lost a race and may simply be run again.
func retryable(err error) bool {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return false
	}
	switch pgErr.Code {
	case "40001", // serialization_failure
		"40P01": // deadlock_detected
		return true
	}
	return false
}

// pgTx is one transaction. Each call is a statement of its own; pgx
// prepares and caches them per connection.
type pgTx struct {
	ctx context.Context
	tx  pgx.Tx
}

func (t *pgTx) Get(bucket string, key []byte) ([]byte, error) {
	var v []byte
	err := t.tx.QueryRow(t.ctx, "SELECT value FROM idk_kv WHERE bucket = $1 AND key = $2", bucket, key).Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("pgkv: get from %s: %w", bucket, err)
	}
	if v == nil { // not NULL in the table: an empty value, which is not a missing one
		v = []byte{}
	}
	return v, nil
}

func (t *pgTx) Put(bucket string, key, value []byte) error {
	if len(key) == 0 {
		return kv.ErrEmptyKey
	}
	if value == nil {
		return kv.ErrNilValue
	}
	_, err := t.tx.Exec(t.ctx, `INSERT INTO idk_kv (bucket, key, value) VALUES ($1, $2, $3)
		ON CONFLICT (bucket, key) DO UPDATE SET value = excluded.value`, bucket, key, value)
	if err != nil {
		return fmt.Errorf("pgkv: put in %s: %w", bucket, err)
	}
	return nil
}

func (t *pgTx) Delete(bucket string, key []byte) error {
	if _, err := t.tx.Exec(t.ctx, "DELETE FROM idk_kv WHERE bucket = $1 AND key = $2", bucket, key); err != nil {
		return fmt.Errorf("pgkv: delete in %s: %w", bucket, err)
	}
	return nil
}

// Scan pages, the page size growing from firstPage to maxPage: a scan that
// stops early (the first key after some point) reads little, a long one
// makes few round trips.
const (
	firstPage = 16
	maxPage   = 1024
)

// The queries of a page, by direction and whether there is an upper
// bound. The lower bound is always there (the empty key is below every
// key), inclusive; the upper is exclusive.
const (
	scanAsc    = "SELECT key, value FROM idk_kv WHERE bucket = $1 AND key >= $2 ORDER BY key LIMIT $3"
	scanAscTo  = "SELECT key, value FROM idk_kv WHERE bucket = $1 AND key >= $2 AND key < $3 ORDER BY key LIMIT $4"
	scanDesc   = "SELECT key, value FROM idk_kv WHERE bucket = $1 AND key >= $2 ORDER BY key DESC LIMIT $3"
	scanDescTo = "SELECT key, value FROM idk_kv WHERE bucket = $1 AND key >= $2 AND key < $3 ORDER BY key DESC LIMIT $4"
)

// Scan reads a page of rows into memory before calling fn for each,
// because a pgx connection cannot run fn's statements while a query's rows
// are open; the next page starts just past the last key of this one
// (keyset pagination), so it sees what fn changed further on.
func (t *pgTx) Scan(bucket string, from, to []byte, reverse bool, fn func(key, value []byte) error) error {
	lo, hi := from, to
	if lo == nil {
		lo = []byte{}
	}
	type row struct{ k, v []byte }
	var page []row
	for n := firstPage; ; n = min(2*n, maxPage) {
		var rows pgx.Rows
		var err error
		switch {
		case !reverse && hi == nil:
			rows, err = t.tx.Query(t.ctx, scanAsc, bucket, lo, n)
		case !reverse:
			rows, err = t.tx.Query(t.ctx, scanAscTo, bucket, lo, hi, n)
		case hi == nil:
			rows, err = t.tx.Query(t.ctx, scanDesc, bucket, lo, n)
		default:
			rows, err = t.tx.Query(t.ctx, scanDescTo, bucket, lo, hi, n)
		}
		if err != nil {
			return fmt.Errorf("pgkv: scan %s: %w", bucket, err)
		}
		page = page[:0]
		var r row
		_, err = pgx.ForEachRow(rows, []any{&r.k, &r.v}, func() error {
			if r.v == nil {
				r.v = []byte{}
			}
			page = append(page, r)
			return nil
		})
		if err != nil {
			return fmt.Errorf("pgkv: scan %s: %w", bucket, err)
		}
		for _, r := range page {
			if err := fn(r.k, r.v); err != nil {
				return err
			}
		}
		if len(page) < n {
			return nil
		}
		last := page[len(page)-1].k
		if reverse {
			hi = last
		} else {
			// The first key after last in bytewise order.
			lo = append(last[:len(last):len(last)], 0)
		}
	}
}
