package migrate_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"idk/collector/blob"
	"idk/collector/cases"
	"idk/collector/kv"
	"idk/collector/migrate"
	"idk/collector/store"
	"idk/simulator/simclock"
)

// boltDest is a destination index in a bbolt file of the test's own: the
// logic of the index's copy, without a PostgreSQL server.
func boltDest(t *testing.T) kv.DB {
	t.Helper()
	db, err := bolt.Open(filepath.Join(t.TempDir(), "dest.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	d := kv.Bolt(db)
	t.Cleanup(func() { d.Close() })
	return d
}

// The whole history moves into PostgreSQL and an S3 bucket: every key of
// every bucket of index.db and cases.db, every file with its content, and
// the collector's own code reads it there. A second run sends nothing and
// verifies again.
func TestMigrate(t *testing.T) {
	pg := newPG(t)
	bucket := newBucket(t)
	root, files := buildSource(t, 20)
	addNestedKV(t, root, "old.consumer", map[string]string{"a": "1", "b": "2"})

	sum, err := migrate.Run(t.Context(), migrate.Config{Root: root, Index: pg, Files: bucket.store, Log: quiet, BatchKeys: 7})
	if err != nil {
		t.Fatal(err)
	}
	if !sum.OK() {
		t.Fatalf("problems: %v", sum.Problems)
	}
	keys := compareIndex(t, root, pg)
	compareObjects(t, bucket, files)
	if got := destBucket(t, pg, "kv/old.consumer"); got["a"] != "1" || got["b"] != "2" {
		t.Errorf("nested consumer bucket of the old layout: %q", got)
	}
	if sum.Keys != int64(keys) || sum.Files != len(files) || sum.Uploaded != len(files) {
		t.Errorf("summary %+v: want %d keys, %d files all sent", sum, keys, len(files))
	}
	t.Logf("first run: %d buckets, %d keys, %d files, %d bytes in %v", sum.Buckets, sum.Keys, sum.Files, sum.Bytes, sum.Took)

	again, err := migrate.Run(t.Context(), migrate.Config{Root: root, Index: pg, Files: bucket.store, Log: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if !again.OK() || again.Uploaded != 0 || again.Keys != sum.Keys || again.Files != sum.Files {
		t.Errorf("second run: %+v, want nothing sent and the same verified", again)
	}
	compareIndex(t, root, pg)
	compareObjects(t, bucket, files)

	// The collector's own code reads the history there.
	st, err := store.Open(t.TempDir(), store.Options{Index: pg, Files: bucket.store, Location: msk, Log: quiet})
	if err != nil {
		t.Fatal(err)
	}
	entries, err := st.Files(dev.NumIdk)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != len(files) {
		t.Errorf("the store on the destination lists %d files, want %d", len(entries), len(files))
	}
	for _, e := range entries {
		rc, _, err := st.OpenFile(t.Context(), e.StoredAs)
		if err != nil {
			t.Fatal(err)
		}
		rc.Close()
	}
	engine, err := cases.OpenDB(kv.Prefix(nopClose{pg}, migrate.CasesPrefix), msk, simclock.New(t0))
	if err != nil {
		t.Fatal(err)
	}
	if cs := engine.Cases(); len(cs) != 1 {
		t.Errorf("engine on the destination: %d cases, want 1", len(cs))
	}
	engine.Close()
}

// nopClose keeps the test's index open when a part that owns what it is
// given closes it.
type nopClose struct{ kv.DB }

func (nopClose) Close() error { return nil }

// A local file that differs from the index is reported and not sent; the
// others are.
func TestMigrateCorruptFile(t *testing.T) {
	bucket := newBucket(t)
	root, files := buildSource(t, 6)
	var bad string
	for key := range files {
		if !strings.HasSuffix(key, ".xml") {
			bad = key
			break
		}
	}
	path := filepath.Join(root, filepath.FromSlash(bad))
	data := readFile(t, path)
	data[0] ^= 0xff
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	missing := ""
	for key := range files {
		if key != bad && !strings.HasSuffix(key, ".xml") {
			missing = key
			break
		}
	}
	if err := os.Remove(filepath.Join(root, filepath.FromSlash(missing))); err != nil {
		t.Fatal(err)
	}

	sum, err := migrate.Run(t.Context(), migrate.Config{Root: root, Files: bucket.store, Log: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if sum.OK() || len(sum.Problems) != 2 {
		t.Fatalf("problems %v: want the changed and the missing file", sum.Problems)
	}
	for i, key := range []string{bad, missing} {
		found := false
		for _, p := range sum.Problems {
			found = found || p.Subject == key
		}
		if !found {
			t.Errorf("problem %d: %s not reported in %v", i, key, sum.Problems)
		}
		if _, err := bucket.store.Stat(t.Context(), key); !errors.Is(err, blob.ErrNotExist) {
			t.Errorf("%s was sent: %v", key, err)
		}
	}
	if sum.Uploaded != len(files)-2 || sum.Files != len(files)-2 {
		t.Errorf("%d files sent, %d verified; want %d", sum.Uploaded, sum.Files, len(files)-2)
	}
	delete(files, bad)
	delete(files, missing)
	compareObjects(t, bucket, files)
}

// A running collector holds its files' lock: the migration says to stop
// it, and changes nothing.
func TestMigrateRefusesRunningCollector(t *testing.T) {
	root, _ := buildSource(t, 1)
	db, err := bolt.Open(filepath.Join(root, "index.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	_, err = migrate.Run(t.Context(), migrate.Config{Root: root, Index: boltDest(t), Log: quiet, LockWait: 100 * time.Millisecond})
	if !errors.Is(err, migrate.ErrRunning) || !strings.Contains(err.Error(), "stop the collector first") {
		t.Fatalf("err %v, want ErrRunning", err)
	}
}

// A destination holding a collector's index that no migration from here
// wrote is refused unless forced.
func TestMigrateRefusesForeignDestination(t *testing.T) {
	root, _ := buildSource(t, 1)
	dest := boltDest(t)
	if err := dest.Update(func(tx kv.Tx) error { return tx.Put("meta", []byte("layout"), []byte("2")) }); err != nil {
		t.Fatal(err)
	}
	_, err := migrate.Run(t.Context(), migrate.Config{Root: root, Index: dest, Log: quiet})
	if !errors.Is(err, migrate.ErrForeign) {
		t.Fatalf("err %v, want ErrForeign", err)
	}
	if got := destBucket(t, dest, "files"); len(got) != 0 {
		t.Fatalf("refused, yet %d files copied", len(got))
	}
	sum, err := migrate.Run(t.Context(), migrate.Config{Root: root, Index: dest, Log: quiet, Force: true})
	if err != nil || !sum.OK() {
		t.Fatalf("forced: %v %v", err, sum.Problems)
	}

	// Another collector's migration into the same destination is
	// refused too: its progress would be taken for this one's.
	other, _ := buildSource(t, 2)
	if _, err := migrate.Run(t.Context(), migrate.Config{Root: other, Index: dest, Log: quiet}); !errors.Is(err, migrate.ErrForeign) {
		t.Fatalf("second collector: err %v, want ErrForeign", err)
	}
}

// An index.db a collector did not close cleanly has not been checked: it
// is refused unless forced.
func TestMigrateRefusesUncleanIndex(t *testing.T) {
	root, _ := buildSource(t, 1)
	db, err := bolt.Open(filepath.Join(root, "index.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bolt.Tx) error { return tx.DeleteBucket([]byte("boltfile")) }); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if _, err := migrate.Run(t.Context(), migrate.Config{Root: root, Index: boltDest(t), Log: quiet}); !errors.Is(err, migrate.ErrUnclean) {
		t.Fatalf("err %v, want ErrUnclean", err)
	}
	if sum, err := migrate.Run(t.Context(), migrate.Config{Root: root, Index: boltDest(t), Log: quiet, Force: true}); err != nil || !sum.OK() {
		t.Fatalf("forced: %v %v", err, sum.Problems)
	}
}

// failAfter is a destination whose Updates fail after n succeed: a crash
// in the middle of the copy.
type failAfter struct {
	kv.DB
	n    int
	puts int
}

var errCrash = errors.New("crash")

func (f *failAfter) Update(fn func(kv.Tx) error) error {
	if f.n == 0 {
		return errCrash
	}
	f.n--
	return f.DB.Update(func(tx kv.Tx) error { return fn(countPuts{tx, &f.puts}) })
}

type countPuts struct {
	kv.Tx
	n *int
}

func (c countPuts) Put(bucket string, key, value []byte) error {
	if bucket != "migrate" { // the migration's own progress
		*c.n++
	}
	return c.Tx.Put(bucket, key, value)
}

// A copy stopped half-way continues after the last batch it recorded:
// the keys before it are not copied again, and the end result is whole.
func TestMigrateResumesIndex(t *testing.T) {
	root, _ := buildSource(t, 40)
	dest := boltDest(t)
	first := &failAfter{DB: dest, n: 4}
	if _, err := migrate.Run(t.Context(), migrate.Config{Root: root, Index: first, Log: quiet, BatchKeys: 5}); !errors.Is(err, errCrash) {
		t.Fatalf("err %v, want the crash", err)
	}
	again := &failAfter{DB: dest, n: 1 << 30}
	sum, err := migrate.Run(t.Context(), migrate.Config{Root: root, Index: again, Log: quiet, BatchKeys: 5})
	if err != nil || !sum.OK() {
		t.Fatalf("resumed: %v %v", err, sum.Problems)
	}
	keys := compareIndex(t, root, dest)
	// Every key once: each batch committed before the crash recorded
	// its progress with it, and the second run went on after it.
	if first.puts == 0 || first.puts+again.puts != keys {
		t.Errorf("%d keys put before the crash, %d after, for %d keys: want each once", first.puts, again.puts, keys)
	}
}

// An index with a consumer's bucket both nested in "kv" (the old layout)
// and at the top is the collector's to merge: refused, nothing copied.
func TestMigrateRefusesMixedLayout(t *testing.T) {
	root, _ := buildSource(t, 1)
	addNestedKV(t, root, "test.consumer", map[string]string{"position": "old"})
	dest := boltDest(t)
	_, err := migrate.Run(t.Context(), migrate.Config{Root: root, Index: dest, Log: quiet})
	if err == nil || !strings.Contains(err.Error(), "kv/test.consumer") {
		t.Fatalf("err %v, want the bucket named", err)
	}
	if got := destBucket(t, dest, "files"); len(got) != 0 {
		t.Fatalf("refused, yet %d files copied", len(got))
	}
}
