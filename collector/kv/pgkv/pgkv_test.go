package pgkv_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"idk/collector/kv"
	"idk/collector/kv/kvtest"
	"idk/collector/kv/pgkv"
	"idk/internal/testenv"
)

func open(tb testing.TB, dsn string) *pgkv.DB {
	tb.Helper()
	db, err := pgkv.Open(context.Background(), dsn)
	if err != nil {
		tb.Fatalf("open: %v", err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

func TestConformance(t *testing.T) {
	kvtest.Run(t, func(t *testing.T) kv.DB { return open(t, testenv.Postgres(t)) })
}

func BenchmarkUpdate(b *testing.B) {
	kvtest.Benchmark(b, open(b, testenv.Postgres(b)))
}

// TestByteaOrder checks, in SQL, the premise Scan stands on: PostgreSQL
// orders bytea bytewise, as unsigned bytes, whatever the collation.
func TestByteaOrder(t *testing.T) {
	db := open(t, testenv.Postgres(t))
	rows, err := db.Pool().Query(context.Background(),
		`SELECT k FROM unnest(ARRAY['\xff'::bytea, '\x80', '\x00', '\x0000', '\x7f', '\xff00', '\x00ff']) AS k ORDER BY k`)
	if err != nil {
		t.Fatal(err)
	}
	var got [][]byte
	for rows.Next() {
		var k []byte
		if err := rows.Scan(&k); err != nil {
			t.Fatal(err)
		}
		got = append(got, k)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	want := [][]byte{{0x00}, {0x00, 0x00}, {0x00, 0xff}, {0x7f}, {0x80}, {0xff}, {0xff, 0x00}}
	if !slices.EqualFunc(got, want, slices.Equal) {
		t.Fatalf("ORDER BY bytea: %x, want %x", got, want)
	}
}

// TestCollectors stands for collectors of a region: several DBs, each
// with its own pool, opened at once on one database (migrating together)
// and incrementing one counter. The writer lock must serialize them
// across pools as bbolt serializes writers within one process.
func TestCollectors(t *testing.T) {
	dsn := testenv.Postgres(t)
	const collectors, each = 4, 40
	dbs := make([]kv.DB, collectors)
	var wg sync.WaitGroup
	errs := make(chan error, collectors)
	for i := range dbs {
		wg.Go(func() {
			db, err := pgkv.Open(context.Background(), dsn)
			if err != nil {
				errs <- err
				return
			}
			dbs[i] = db
		})
	}
	wg.Wait()
	select {
	case err := <-errs:
		t.Fatalf("open at once: %v", err)
	default:
	}
	for _, db := range dbs {
		t.Cleanup(func() { db.Close() })
	}
	if err := kvtest.Increment(dbs, 2, each); err != nil {
		t.Fatalf("update: %v", err)
	}
	var got uint64
	err := dbs[0].View(func(tx kv.Tx) error {
		v, err := tx.Get("c", []byte("n"))
		got = binary.BigEndian.Uint64(v)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := uint64(collectors * 2 * each); got != want {
		t.Fatalf("counter %d, want %d: increments lost between collectors", got, want)
	}
}

// TestRetry checks Update runs fn again on a serialization failure, and
// gives up after a few. The failure is fn's own error, wrapping a
// PostgreSQL error as a failed statement's would: with writers serialized
// by the writer lock, a real one cannot be provoked through kv.Tx.
func TestRetry(t *testing.T) {
	db := open(t, testenv.Postgres(t))
	conflict := fmt.Errorf("pgkv: put in b: %w", &pgconn.PgError{Code: "40001", Message: "could not serialize access"})
	calls := 0
	err := db.Update(func(tx kv.Tx) error {
		calls++
		if err := tx.Put("b", []byte("k"), fmt.Appendf(nil, "run %d", calls)); err != nil {
			return err
		}
		if calls == 1 {
			return conflict
		}
		return nil
	})
	if err != nil || calls != 2 {
		t.Fatalf("update: %v after %d runs, want nil after 2", err, calls)
	}
	err = db.View(func(tx kv.Tx) error {
		v, err := tx.Get("b", []byte("k"))
		if string(v) != "run 2" {
			t.Errorf("value %q, want the second run's", v)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}

	calls = 0
	err = db.Update(func(tx kv.Tx) error { calls++; return conflict })
	if !errors.Is(err, conflict) || calls < 2 || calls > 10 {
		t.Fatalf("update: %v after %d runs, want the conflict after a few", err, calls)
	}
	t.Logf("gave up after %d runs", calls)

	calls = 0
	other := errors.New("not a conflict")
	if err := db.Update(func(tx kv.Tx) error { calls++; return other }); err != other || calls != 1 {
		t.Fatalf("update: %v after %d runs, want fn's error unchanged after 1", err, calls)
	}
}

// TestFenced: the fence runs in each Update's transaction, after the
// writer lock, and its error refuses the transaction whole; a View is not
// fenced. A deposed leader's late write is refused this way (leader.Fence
// as the fence).
func TestFenced(t *testing.T) {
	db := open(t, testenv.Postgres(t))
	deposed := errors.New("deposed")
	var fail bool
	var runs int
	fenced := db.Fenced(func(ctx context.Context, tx pgx.Tx) error {
		runs++
		var locked bool
		if err := tx.QueryRow(ctx, "SELECT count(*) > 0 FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()").Scan(&locked); err != nil {
			return err
		}
		if !locked {
			t.Error("the fence ran before the writer lock was taken")
		}
		if fail {
			return deposed
		}
		return nil
	})
	put := func(v string) error {
		return fenced.Update(func(tx kv.Tx) error { return tx.Put("b", []byte("k"), []byte(v)) })
	}
	if err := put("leader"); err != nil {
		t.Fatal(err)
	}
	fail = true
	if err := put("late"); !errors.Is(err, deposed) {
		t.Fatalf("update after the fence failed: %v, want the fence's error", err)
	}
	if runs != 2 {
		t.Errorf("fence ran %d times for 2 updates", runs)
	}
	err := fenced.View(func(tx kv.Tx) error {
		v, err := tx.Get("b", []byte("k"))
		if err == nil && string(v) != "leader" {
			t.Errorf("k = %q after a refused update, want leader", v)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if runs != 2 {
		t.Errorf("a View ran the fence")
	}
}
