// Package kvtest is the conformance suite every kv.DB implementation must
// pass, so that the code above package kv behaves the same on bbolt and on
// PostgreSQL.
package kvtest

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"

	"idk/collector/kv"
)

// Run runs the suite; open returns a new, empty DB for one subtest, which
// open arranges to close when that subtest ends. The subtests run in
// parallel, each on its own DB, so open may be called from several
// goroutines at once.
func Run(t *testing.T, open func(t *testing.T) kv.DB) {
	tests := []struct {
		name string
		fn   func(t *testing.T, db kv.DB)
	}{
		{"PutGetDelete", testPutGetDelete},
		{"BucketsIndependent", testBuckets},
		{"EmptyValue", testEmptyValue},
		{"ScanBounds", testScanBounds},
		{"ScanStops", testScanStops},
		{"ScanDeletes", testScanDeletes},
		{"ScanPuts", testScanPuts},
		{"ScanAfterDeletes", testScanAfterDeletes},
		{"ViewIsolation", testViewIsolation},
		{"FailedUpdate", testFailedUpdate},
		{"ConcurrentCounter", testCounter},
		{"BinaryKeys", testBinaryKeys},
		{"LargeValue", testLargeValue},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, open(t))
		})
	}
}

// Benchmark measures Updates of 20 Puts of 200-byte values each, about a
// batch of events.
func Benchmark(b *testing.B, db kv.DB) {
	value := bytes.Repeat([]byte{'v'}, 200)
	var n uint64
	for b.Loop() {
		err := db.Update(func(tx kv.Tx) error {
			for range 20 {
				n++
				if err := tx.Put("bench", binary.BigEndian.AppendUint64(nil, n), value); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}

func update(t *testing.T, db kv.DB, fn func(kv.Tx) error) {
	t.Helper()
	if err := db.Update(fn); err != nil {
		t.Fatalf("update: %v", err)
	}
}

func view(t *testing.T, db kv.DB, fn func(kv.Tx) error) {
	t.Helper()
	if err := db.View(fn); err != nil {
		t.Fatalf("view: %v", err)
	}
}

func put(t *testing.T, db kv.DB, bucket string, kvs ...string) {
	t.Helper()
	update(t, db, func(tx kv.Tx) error {
		for i := 0; i+1 < len(kvs); i += 2 {
			if err := tx.Put(bucket, []byte(kvs[i]), []byte(kvs[i+1])); err != nil {
				return err
			}
		}
		return nil
	})
}

// get returns the value of key, copied out of the transaction.
func get(t *testing.T, db kv.DB, bucket, key string) []byte {
	t.Helper()
	var v []byte
	view(t, db, func(tx kv.Tx) error {
		got, err := tx.Get(bucket, []byte(key))
		if got != nil {
			v = append([]byte{}, got...)
		}
		return err
	})
	return v
}

// scan returns the keys of a Scan, copied.
func scan(t *testing.T, db kv.DB, bucket string, from, to []byte, reverse bool) []string {
	t.Helper()
	keys := []string{}
	view(t, db, func(tx kv.Tx) error {
		return tx.Scan(bucket, from, to, reverse, func(k, _ []byte) error {
			keys = append(keys, string(k))
			return nil
		})
	})
	return keys
}

func testPutGetDelete(t *testing.T, db kv.DB) {
	if v := get(t, db, "b", "k"); v != nil {
		t.Fatalf("get from a missing bucket: %q", v)
	}
	put(t, db, "b", "k", "v1")
	if v := get(t, db, "b", "k"); string(v) != "v1" {
		t.Fatalf("get: %q, want v1", v)
	}
	put(t, db, "b", "k", "v2")
	if v := get(t, db, "b", "k"); string(v) != "v2" {
		t.Fatalf("get after overwrite: %q, want v2", v)
	}
	update(t, db, func(tx kv.Tx) error {
		if err := tx.Delete("b", []byte("k")); err != nil {
			return err
		}
		if v, err := tx.Get("b", []byte("k")); err != nil || v != nil {
			return fmt.Errorf("get after delete in the same tx: %q, %v", v, err)
		}
		if err := tx.Delete("b", []byte("missing")); err != nil {
			return fmt.Errorf("delete of a missing key: %w", err)
		}
		return tx.Delete("nobucket", []byte("k"))
	})
	if v := get(t, db, "b", "k"); v != nil {
		t.Fatalf("get after delete: %q", v)
	}
	update(t, db, func(tx kv.Tx) error {
		if err := tx.Put("b", nil, []byte("v")); !errors.Is(err, kv.ErrEmptyKey) {
			return fmt.Errorf("put with an empty key: %v, want ErrEmptyKey", err)
		}
		if err := tx.Put("b", []byte("k"), nil); !errors.Is(err, kv.ErrNilValue) {
			return fmt.Errorf("put with a nil value: %v, want ErrNilValue", err)
		}
		return nil
	})
	if err := db.View(func(tx kv.Tx) error { return tx.Put("b", []byte("k"), []byte("v")) }); err == nil {
		t.Fatal("put in a View succeeded")
	}
	if err := db.View(func(tx kv.Tx) error { return tx.Delete("b", []byte("k")) }); err == nil {
		t.Fatal("delete in a View succeeded")
	}
}

func testBuckets(t *testing.T, db kv.DB) {
	put(t, db, "a", "k", "in a", "only-a", "1")
	put(t, db, "b", "k", "in b")
	put(t, db, "ab", "k", "in ab")
	for bucket, want := range map[string]string{"a": "in a", "b": "in b", "ab": "in ab"} {
		if v := get(t, db, bucket, "k"); string(v) != want {
			t.Errorf("bucket %s: %q, want %q", bucket, v, want)
		}
	}
	if v := get(t, db, "b", "only-a"); v != nil {
		t.Errorf("key of bucket a seen in b: %q", v)
	}
	if got := scan(t, db, "b", nil, nil, false); !slices.Equal(got, []string{"k"}) {
		t.Errorf("scan of b: %q", got)
	}
	update(t, db, func(tx kv.Tx) error { return tx.Delete("a", []byte("k")) })
	if v := get(t, db, "b", "k"); string(v) != "in b" {
		t.Errorf("delete in a changed b: %q", v)
	}
}

func testEmptyValue(t *testing.T, db kv.DB) {
	update(t, db, func(tx kv.Tx) error {
		if err := tx.Put("b", []byte("empty"), []byte{}); err != nil {
			return err
		}
		// Within the writing transaction, too, empty is not missing.
		if v, err := tx.Get("b", []byte("empty")); err != nil || v == nil || len(v) != 0 {
			return fmt.Errorf("get in the writing tx: %q (nil %t), %v", v, v == nil, err)
		}
		return nil
	})
	view(t, db, func(tx kv.Tx) error {
		v, err := tx.Get("b", []byte("empty"))
		if err != nil || v == nil || len(v) != 0 {
			return fmt.Errorf("empty value: %q (nil %t), %v; want non-nil empty", v, v == nil, err)
		}
		if v, err := tx.Get("b", []byte("missing")); err != nil || v != nil {
			return fmt.Errorf("missing key: %q, %v; want nil, nil", v, err)
		}
		n := 0
		err = tx.Scan("b", nil, nil, false, func(k, v []byte) error {
			n++
			if v == nil || len(v) != 0 {
				return fmt.Errorf("scan gave %q for an empty value (nil %t)", v, v == nil)
			}
			return nil
		})
		if err == nil && n != 1 {
			err = fmt.Errorf("scan gave %d keys, want 1", n)
		}
		return err
	})
}

func testScanBounds(t *testing.T, db kv.DB) {
	put(t, db, "b", "b", "1", "d", "2", "f", "3", "h", "4")
	all := []string{"b", "d", "f", "h"}
	bs := func(s string) []byte {
		if s == "" {
			return nil
		}
		return []byte(s)
	}
	cases := []struct {
		from, to string // "" is nil
		reverse  bool
		want     []string
	}{
		{"", "", false, all},
		{"", "", true, []string{"h", "f", "d", "b"}},
		{"d", "", false, []string{"d", "f", "h"}},
		{"c", "", false, []string{"d", "f", "h"}},
		{"", "f", false, []string{"b", "d"}},
		{"", "g", false, []string{"b", "d", "f"}},
		{"d", "h", false, []string{"d", "f"}},
		{"a", "z", false, all},
		{"d", "h", true, []string{"f", "d"}},
		{"c", "g", true, []string{"f", "d"}},
		{"", "z", true, []string{"h", "f", "d", "b"}}, // to beyond the last key
		{"", "i", true, []string{"h", "f", "d", "b"}},
		{"d", "", true, []string{"h", "f", "d"}},
		{"", "b", true, []string{}},
		{"", "a", true, []string{}},
		{"i", "", false, []string{}},
		{"i", "", true, []string{}},
		{"d", "d", false, []string{}},
		{"d", "d", true, []string{}},
		{"f", "d", false, []string{}}, // from after to
		{"f", "d", true, []string{}},
		{"d1", "e", false, []string{}}, // between keys
		{"d1", "e", true, []string{}},
	}
	for _, c := range cases {
		got := scan(t, db, "b", bs(c.from), bs(c.to), c.reverse)
		if !slices.Equal(got, c.want) {
			t.Errorf("scan [%q, %q) reverse=%t: %q, want %q", c.from, c.to, c.reverse, got, c.want)
		}
	}
	if got := scan(t, db, "missing", nil, nil, false); len(got) != 0 {
		t.Errorf("scan of a missing bucket: %q", got)
	}
	// Values come with their keys.
	view(t, db, func(tx kv.Tx) error {
		want := map[string]string{"b": "1", "d": "2", "f": "3", "h": "4"}
		return tx.Scan("b", nil, nil, true, func(k, v []byte) error {
			if want[string(k)] != string(v) {
				return fmt.Errorf("scan gave %q=%q", k, v)
			}
			return nil
		})
	})
}

func testScanStops(t *testing.T, db kv.DB) {
	put(t, db, "b", "1", "", "2", "", "3", "", "4", "")
	stop := errors.New("stop here")
	for _, reverse := range []bool{false, true} {
		n := 0
		err := db.View(func(tx kv.Tx) error {
			return tx.Scan("b", nil, nil, reverse, func(k, v []byte) error {
				n++
				if n == 2 {
					return stop
				}
				return nil
			})
		})
		if err != stop {
			t.Errorf("reverse=%t: scan returned %v, want fn's error unchanged", reverse, err)
		}
		if n != 2 {
			t.Errorf("reverse=%t: fn called %d times after its error, want 2", reverse, n)
		}
	}
}

// testScanDeletes deletes every key a Scan gives, over more keys than a
// page of any implementation is likely to hold, and checks none is
// skipped or given twice.
func testScanDeletes(t *testing.T, db kv.DB) {
	const n = 1300
	for _, reverse := range []bool{false, true} {
		update(t, db, func(tx kv.Tx) error {
			for i := range n {
				if err := tx.Put("b", fmt.Appendf(nil, "k%05d", i), []byte("v")); err != nil {
					return err
				}
			}
			return tx.Put("b", []byte("z-outside"), []byte("v"))
		})
		var seen []string
		update(t, db, func(tx kv.Tx) error {
			seen = seen[:0] // fn may be retried
			return tx.Scan("b", []byte("k"), []byte("l"), reverse, func(k, v []byte) error {
				seen = append(seen, string(k))
				return tx.Delete("b", k)
			})
		})
		if len(seen) != n {
			t.Fatalf("reverse=%t: scan gave %d keys while deleting them, want %d", reverse, len(seen), n)
		}
		for i, k := range seen {
			j := i
			if reverse {
				j = n - 1 - i
			}
			if want := fmt.Sprintf("k%05d", j); k != want {
				t.Fatalf("reverse=%t: key %d is %s, want %s", reverse, i, k, want)
			}
		}
		if got := scan(t, db, "b", nil, nil, false); !slices.Equal(got, []string{"z-outside"}) {
			t.Fatalf("reverse=%t: after deleting while scanning, left %d keys: %.5q", reverse, len(got), got)
		}
	}
}

// testScanAfterDeletes scans, in the transaction that made them, across
// the holes a run of deletes left: in bbolt those are emptied leaves,
// which a cursor going backwards must step over.
func testScanAfterDeletes(t *testing.T, db kv.DB) {
	const n = 3000
	key := func(i int) []byte { return fmt.Appendf(nil, "k%05d", i) }
	update(t, db, func(tx kv.Tx) error {
		for i := range n {
			if err := tx.Put("b", key(i), []byte("v")); err != nil {
				return err
			}
		}
		return nil
	})
	var want []string
	for i := range n {
		if i < 1000 || i >= 2000 {
			want = append(want, string(key(i)))
		}
	}
	for _, reverse := range []bool{false, true} {
		var got []string
		err := db.Update(func(tx kv.Tx) error {
			got = got[:0]
			for i := 1000; i < 2000; i++ {
				if err := tx.Delete("b", key(i)); err != nil {
					return err
				}
			}
			err := tx.Scan("b", nil, nil, reverse, func(k, _ []byte) error {
				got = append(got, string(k))
				return nil
			})
			if err != nil {
				return err
			}
			return errors.New("roll back")
		})
		if err == nil || err.Error() != "roll back" {
			t.Fatalf("update: %v", err)
		}
		w := slices.Clone(want)
		if reverse {
			slices.Reverse(w)
		}
		if !slices.Equal(got, w) {
			t.Fatalf("reverse=%t: scan after deleting a run gave %d keys, want %d", reverse, len(got), len(w))
		}
	}
}

// testScanPuts overwrites each key a Scan gives and writes to another
// bucket meanwhile, as an index does when it moves entries.
func testScanPuts(t *testing.T, db kv.DB) {
	const n = 700
	update(t, db, func(tx kv.Tx) error {
		for i := range n {
			if err := tx.Put("b", fmt.Appendf(nil, "k%05d", i), []byte("old")); err != nil {
				return err
			}
		}
		return nil
	})
	for _, reverse := range []bool{false, true} {
		count := 0
		update(t, db, func(tx kv.Tx) error {
			count = 0
			return tx.Scan("b", nil, nil, reverse, func(k, v []byte) error {
				count++
				if v2, err := tx.Get("b", k); err != nil || !bytes.Equal(v2, v) {
					return fmt.Errorf("get of %s in scan: %q, %v; scan gave %q", k, v2, err, v)
				}
				if err := tx.Put("b", k, []byte("new")); err != nil {
					return err
				}
				return tx.Put("moved", k, []byte("x"))
			})
		})
		if count != n {
			t.Fatalf("reverse=%t: scan gave %d keys while overwriting them, want %d", reverse, count, n)
		}
	}
	view(t, db, func(tx kv.Tx) error {
		for _, bucket := range []string{"b", "moved"} {
			c := 0
			err := tx.Scan(bucket, nil, nil, false, func(k, v []byte) error {
				c++
				if bucket == "b" && string(v) != "new" {
					return fmt.Errorf("%s=%q after the scan, want new", k, v)
				}
				return nil
			})
			if err != nil {
				return err
			}
			if c != n {
				return fmt.Errorf("bucket %s has %d keys, want %d", bucket, c, n)
			}
		}
		return nil
	})
}

func testViewIsolation(t *testing.T, db kv.DB) {
	put(t, db, "b", "k", "old")
	written := make(chan struct{})
	release := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		first := true
		done <- db.Update(func(tx kv.Tx) error {
			if err := tx.Put("b", []byte("k"), []byte("new")); err != nil {
				return err
			}
			if err := tx.Put("b", []byte("k2"), []byte("new")); err != nil {
				return err
			}
			if first { // hold the transaction open while the View looks
				first = false
				close(written)
				<-release
			}
			return nil
		})
	}()
	select {
	case <-written:
	case err := <-done:
		t.Fatalf("update ended before it was released: %v", err)
	}
	func() {
		defer close(release) // let the writer finish even if the View fails
		if v := get(t, db, "b", "k"); string(v) != "old" {
			t.Errorf("view saw an uncommitted overwrite: %q", v)
		}
		if got := scan(t, db, "b", nil, nil, false); !slices.Equal(got, []string{"k"}) {
			t.Errorf("view saw uncommitted keys: %q", got)
		}
	}()
	if err := <-done; err != nil {
		t.Fatalf("update: %v", err)
	}
	if v := get(t, db, "b", "k2"); string(v) != "new" {
		t.Fatalf("after commit: %q, want new", v)
	}
}

func testFailedUpdate(t *testing.T, db kv.DB) {
	put(t, db, "b", "k", "old")
	fail := errors.New("fn failed")
	err := db.Update(func(tx kv.Tx) error {
		if err := tx.Put("b", []byte("k"), []byte("new")); err != nil {
			return err
		}
		if err := tx.Put("fresh", []byte("k"), []byte("v")); err != nil {
			return err
		}
		return fail
	})
	if !errors.Is(err, fail) {
		t.Fatalf("update returned %v, want fn's error", err)
	}
	if v := get(t, db, "b", "k"); string(v) != "old" {
		t.Errorf("failed update kept its put: %q", v)
	}
	if got := scan(t, db, "fresh", nil, nil, false); len(got) != 0 {
		t.Errorf("failed update kept a new bucket's keys: %q", got)
	}
}

func testCounter(t *testing.T, db kv.DB) {
	const workers, each = 8, 50
	if err := Increment([]kv.DB{db}, workers, each); err != nil {
		t.Fatalf("update: %v", err)
	}
	v := get(t, db, "c", "n")
	if len(v) != 8 || binary.BigEndian.Uint64(v) != workers*each {
		t.Fatalf("counter is %x, want %d", v, workers*each)
	}
}

// Increment runs, at once, workers goroutines per DB of dbs that each add
// 1 each times to one counter (key "n" of bucket "c", 8 bytes big-endian)
// in a read-modify-write Update. Writers that exclude each other leave it
// at len(dbs)*workers*each, whether the DBs are one or several handles
// of a shared store. It returns the first error of an Update.
func Increment(dbs []kv.DB, workers, each int) error {
	incr := func(tx kv.Tx) error {
		v, err := tx.Get("c", []byte("n"))
		if err != nil {
			return err
		}
		var n uint64
		if v != nil {
			n = binary.BigEndian.Uint64(v)
		}
		return tx.Put("c", []byte("n"), binary.BigEndian.AppendUint64(nil, n+1))
	}
	var wg sync.WaitGroup
	errs := make(chan error, len(dbs)*workers)
	for _, db := range dbs {
		for range workers {
			wg.Go(func() {
				for range each {
					if err := db.Update(incr); err != nil {
						errs <- err
						return
					}
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	return <-errs
}

func testBinaryKeys(t *testing.T, db kv.DB) {
	keys := [][]byte{
		{0x00}, {0x00, 0x00}, {0x00, 0xff}, {0x01}, {0x7f}, {0x80}, {0x80, 0x00},
		{0xfe, 0xff}, {0xff}, {0xff, 0x00}, {0xff, 0xff}, {0xff, 0xff, 0xff},
		[]byte("A"), []byte("a"), []byte("é"),
	}
	shuffled := slices.Clone(keys)
	rand.New(rand.NewPCG(1, 2)).Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	update(t, db, func(tx kv.Tx) error {
		for _, k := range shuffled {
			if err := tx.Put("bin", k, k); err != nil {
				return err
			}
		}
		return nil
	})
	sorted := slices.Clone(keys)
	slices.SortFunc(sorted, bytes.Compare)
	want := make([]string, len(sorted))
	for i, k := range sorted {
		want[i] = string(k)
	}
	if got := scan(t, db, "bin", nil, nil, false); !slices.Equal(got, want) {
		t.Errorf("ascending: %x\nwant bytewise %x", got, want)
	}
	reversed := slices.Clone(want)
	slices.Reverse(reversed)
	if got := scan(t, db, "bin", nil, nil, true); !slices.Equal(got, reversed) {
		t.Errorf("descending: %x\nwant %x", got, reversed)
	}
	for _, c := range []struct {
		prefix []byte
		want   []string
	}{
		{[]byte{0x00}, []string{"\x00", "\x00\x00", "\x00\xff"}},
		{[]byte{0x80}, []string{"\x80", "\x80\x00"}},
		{[]byte{0xfe}, []string{"\xfe\xff"}},
		{[]byte{0xff}, []string{"\xff", "\xff\x00", "\xff\xff", "\xff\xff\xff"}},
		{[]byte{0xff, 0xff}, []string{"\xff\xff", "\xff\xff\xff"}},
	} {
		if got := scan(t, db, "bin", c.prefix, kv.PrefixEnd(c.prefix), false); !slices.Equal(got, c.want) {
			t.Errorf("prefix %x: %x, want %x", c.prefix, got, c.want)
		}
	}
	view(t, db, func(tx kv.Tx) error {
		for _, k := range keys {
			if v, err := tx.Get("bin", k); err != nil || !bytes.Equal(v, k) {
				return fmt.Errorf("get %x: %x, %v", k, v, err)
			}
		}
		return nil
	})
}

func testLargeValue(t *testing.T, db kv.DB) {
	big := make([]byte, 1<<20)
	r := rand.New(rand.NewPCG(3, 4))
	for i := range big {
		big[i] = byte(r.Uint32())
	}
	update(t, db, func(tx kv.Tx) error { return tx.Put("big", []byte("k"), big) })
	if v := get(t, db, "big", "k"); !bytes.Equal(v, big) {
		t.Fatalf("got %d bytes back, not the 1 MiB put", len(v))
	}
	view(t, db, func(tx kv.Tx) error {
		return tx.Scan("big", nil, nil, false, func(k, v []byte) error {
			if !bytes.Equal(v, big) {
				return fmt.Errorf("scan gave %d bytes, not the 1 MiB put", len(v))
			}
			return nil
		})
	})
}
