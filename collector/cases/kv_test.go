package cases

import (
	"context"
	"errors"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"idk/collector/kv"
	"idk/collector/kv/pgkv"
	"idk/internal/testenv"
	"idk/simulator/simclock"
)

// boltStore opens a bbolt file in a temporary folder for each engine
// run, the way a caller of OpenDB does that keeps the file itself.
func boltStore(t *testing.T) func() kv.DB {
	path := filepath.Join(t.TempDir(), "cases.db")
	return func() kv.DB {
		t.Helper()
		db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 2 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		return kv.Bolt(db)
	}
}

// errRetry is retryDB's stand-in for a serialization failure.
var errRetry = errors.New("serialization failure (simulated)")

// retryDB runs every Update's fn twice, the first time to the end and
// then rolled back, as PostgreSQL does when a transaction fails to
// serialise: an fn that changes anything outside its transaction, or
// keeps a result of the first run, shows up as a difference.
type retryDB struct {
	kv.DB
	retries int
}

func (r *retryDB) Update(fn func(kv.Tx) error) error {
	err := r.DB.Update(func(tx kv.Tx) error {
		if err := fn(tx); err != nil {
			return err
		}
		return errRetry
	})
	if !errors.Is(err, errRetry) {
		return err
	}
	r.retries++
	return r.DB.Update(fn)
}

// snapshot is what the scenario reads back from an engine.
type snapshot struct {
	Case      Case
	Rows      []Row
	History   []History
	Audit     []AuditEntry
	Decisions map[string][]BreachDecision
	Facts     ScanFacts
	Zones     []Zone
	Devices   map[string]Device
	Counts    map[countKey]uint64
	Seq       uint64
}

// kvScenario runs one inspection on an engine over the stores newDB
// opens: TIME_2 breached, a reason, two decisions. It reopens the engine
// on a fresh store handle and checks that it reads back what it wrote,
// and returns that, so that stores can be compared.
func kvScenario(t *testing.T, newDB func() kv.DB) snapshot {
	t.Helper()
	loc := moscow(t)
	clk := simclock.New(at(loc, 5, 9, 0, 0))
	open := func() *Engine {
		t.Helper()
		e, err := OpenDB(newDB(), loc, clk)
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	set := func(now time.Time) { clk.Advance(now.Sub(clk.Now())) }
	e := open()
	defer func() {
		if e != nil {
			e.Close()
		}
	}()
	add := func(ev Event) string {
		t.Helper()
		set(ev.Time)
		ev.By = "оператор"
		id, err := e.Add(ev)
		if err != nil {
			t.Fatalf("add %+v: %v", ev, err)
		}
		return id
	}
	if err := e.SetDevice(stationary); err != nil {
		t.Fatal(err)
	}
	id := add(Event{Kind: RiskDetected, Time: at(loc, 5, 9, 50, 0), NumIDK: idkX, Docs: []string{dt1}, Risk: riskPR})
	add(Event{Kind: DocsHanded, Time: at(loc, 5, 9, 55, 0), NumIDK: idkX, Docs: []string{dt1}})
	add(Event{Kind: CarrierInformed, Time: at(loc, 5, 9, 56, 0), NumIDK: idkX, Docs: []string{dt1}})
	add(Event{Kind: Arrival, Time: at(loc, 5, 10, 0, 0), NumIDK: idkX})
	if got := add(Event{Kind: Scan, Time: at(loc, 5, 10, 1, 0), NumIDK: idkX, NumSnim: "S1"}); got != id {
		t.Fatalf("scan joined %s, want %s", got, id)
	}
	set(at(loc, 5, 10, 16, 0))
	if err := e.Tick(); err != nil {
		t.Fatal(err)
	}
	add(Event{Kind: DocsReturned, Time: at(loc, 5, 10, 20, 0), NumIDK: idkX, NumSnim: "S1"})
	if err := e.SetReason(id, "очередь", "начальник поста"); err != nil {
		t.Fatal(err)
	}
	set(at(loc, 6, 9, 0, 0))
	if err := e.Decide(id, false, "Петров П.П.", "нет акта"); err != nil {
		t.Fatal(err)
	}
	if err := e.Decide(id, true, "Петров П.П.", "представлен акт о поломке"); err != nil {
		t.Fatal(err)
	}

	read := func() snapshot {
		t.Helper()
		var s snapshot
		var ok bool
		var err error
		if s.Case, ok = e.Case(id); !ok {
			t.Fatalf("case %s not found", id)
		}
		if s.Rows, err = e.Breaches(at(loc, 5, 0, 0, 0), at(loc, 5, 0, 0, 0)); err != nil {
			t.Fatal(err)
		}
		if s.History, err = e.BreachHistory(at(loc, 5, 0, 0, 0), at(loc, 5, 0, 0, 0)); err != nil {
			t.Fatal(err)
		}
		if s.Audit, _, err = e.Audit(id); err != nil {
			t.Fatal(err)
		}
		if s.Decisions, err = e.Decisions(id); err != nil {
			t.Fatal(err)
		}
		if s.Facts, ok, err = e.ScanFacts(idkX, "S1"); err != nil || !ok {
			t.Fatalf("scan facts of S1: %v, %v", ok, err)
		}
		if s.Zones, err = e.Zones(idkX, at(loc, 5, 0, 0, 0), at(loc, 6, 0, 0, 0)); err != nil {
			t.Fatal(err)
		}
		// A version's row holds ID and Running in memory only (json:"-"),
		// before this test as now.
		for i := range s.History {
			for j := range s.History[i].Versions {
				s.History[i].Versions[j].Row.ID, s.History[i].Versions[j].Row.Running = "", false
			}
		}
		e.mu.RLock()
		s.Devices, s.Counts, s.Seq = e.devices, e.counts, e.seq
		e.mu.RUnlock()
		return s
	}
	before := read()
	if len(before.Rows) != 1 || before.Rows[0].TIME_2 == "" || before.Rows[0].PRICH_NAR != "ОЧЕРЕДЬ" {
		t.Errorf("table 4: %+v, want one TIME_2 row with the reason", before.Rows)
	}
	if ds := before.Decisions[id]; len(ds) != 2 || ds[0].Version != 1 || ds[1].Version != 2 || !ds[1].Objective {
		t.Errorf("decisions: %+v, want versions 1 and 2, the latest objective", ds)
	}
	if n := len(before.Audit); n != 8 || before.Audit[n-1].Rev != uint64(n) {
		t.Errorf("audit: %+v, want eight entries, revisions 1 to 8", before.Audit)
	}
	if want := (countKey{idkX, Time2}); len(before.Counts) != 1 || before.Counts[want] != 1 {
		t.Errorf("counts: %v, want one TIME_2 mark", before.Counts)
	}
	if before.Facts.Risk != riskPR || len(before.Zones) != 1 {
		t.Errorf("scan index: %+v, %+v", before.Facts, before.Zones)
	}

	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	e = open()
	if after := read(); !reflect.DeepEqual(after, before) {
		t.Errorf("after reopening:\n%+v\nwant\n%+v", after, before)
	}
	return before
}

// TestOpenDBBolt runs the engine through OpenDB on a bbolt file the test
// keeps itself, and through a store that runs every transaction twice:
// the state it reads back must be the same.
func TestOpenDBBolt(t *testing.T) {
	plain := kvScenario(t, boltStore(t))

	var retried int
	newDB := boltStore(t)
	twice := kvScenario(t, func() kv.DB {
		return &countingRetryDB{retryDB: retryDB{DB: newDB()}, total: &retried}
	})
	if retried == 0 {
		t.Fatal("no transaction was retried")
	}
	if !reflect.DeepEqual(twice, plain) {
		t.Errorf("with every transaction retried:\n%+v\nwant\n%+v", twice, plain)
	}
}

// TestOpenDBPostgres runs the same inspection on a region's PostgreSQL
// database (a fresh one, see testenv.Postgres): it must read back what
// the bbolt file does.
func TestOpenDBPostgres(t *testing.T) {
	dsn := testenv.Postgres(t)
	pg := kvScenario(t, func() kv.DB {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		db, err := pgkv.Open(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		return db
	})
	if file := kvScenario(t, boltStore(t)); !reflect.DeepEqual(pg, file) {
		t.Errorf("on PostgreSQL:\n%+v\nwant as on bbolt\n%+v", pg, file)
	}
}

// countingRetryDB adds its retries to total when closed, since the
// scenario opens a store per engine run.
type countingRetryDB struct {
	retryDB
	total *int
}

func (c *countingRetryDB) Close() error {
	*c.total += c.retries
	return c.retryDB.Close()
}

// TestOpenBucketsKept: a file that Open makes has every bucket from the
// start, as files did before the store was behind kv.
func TestOpenBucketsKept(t *testing.T) {
	f := newFixture(t, at(moscow(t), 5, 9, 0, 0))
	db := f.closeToBolt(t)
	defer db.Close()
	err := db.View(func(tx *bolt.Tx) error {
		for _, b := range buckets {
			if tx.Bucket([]byte(b)) == nil {
				t.Errorf("bucket %s is missing", b)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestMigrateRetried: filling the scan index in batches, with every
// batch's transaction run twice, indexes every case. A batch that moved
// its resume point on in a run that was then rolled back would skip the
// cases of that run.
func TestMigrateRetried(t *testing.T) {
	loc := moscow(t)
	f := newFixture(t, at(loc, 5, 9, 0, 0))
	for i, snim := range []string{"S1", "S2", "S3", "S4", "S5"} {
		f.add(Event{Kind: Scan, Time: at(loc, 5, 10, i, 0), NumIDK: idkX, NumSnim: snim})
	}
	if s, n := f.scanEntries(); s != 5 || n != 5 {
		t.Fatalf("index holds %d entries, %d images; want 5, 5", s, n)
	}
	db := f.closeToBolt(t)
	dropScanIndex(t, db)

	defer func(n int) { migrateBatch = n }(migrateBatch)
	migrateBatch = 2
	store := &retryDB{DB: kv.Bolt(db)}
	var err error
	if f.e, err = OpenDB(store, loc, f.clk); err != nil {
		t.Fatal(err)
	}
	if store.retries == 0 {
		t.Fatal("no transaction was retried")
	}
	if s, n := f.scanEntries(); s != 5 || n != 5 {
		t.Errorf("filled index holds %d entries, %d images; want 5, 5", s, n)
	}
	if z := f.zones(idkX, at(loc, 5, 0, 0, 0), at(loc, 6, 0, 0, 0)); len(z) != 5 {
		t.Errorf("zones after filling: %+v, want 5", z)
	}
}
