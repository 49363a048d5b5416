package kv_test

import (
	"bytes"
	"path/filepath"
	"testing"

	bolt "go.etcd.io/bbolt"

	"idk/collector/kv"
	"idk/collector/kv/kvtest"
)

func openBolt(tb testing.TB) kv.DB {
	db, err := bolt.Open(filepath.Join(tb.TempDir(), "index.db"), 0o600, nil)
	if err != nil {
		tb.Fatalf("open bbolt: %v", err)
	}
	k := kv.Bolt(db)
	tb.Cleanup(func() {
		if err := k.Close(); err != nil {
			tb.Errorf("close: %v", err)
		}
	})
	return k
}

func TestBolt(t *testing.T) {
	kvtest.Run(t, func(t *testing.T) kv.DB { return openBolt(t) })
}

func BenchmarkBoltUpdate(b *testing.B) {
	kvtest.Benchmark(b, openBolt(b))
}

func TestPrefixEnd(t *testing.T) {
	for _, c := range []struct{ prefix, want []byte }{
		{nil, nil},
		{[]byte{}, nil},
		{[]byte("a"), []byte("b")},
		{[]byte("ab"), []byte("ac")},
		{[]byte{0x01, 0xff}, []byte{0x02}},
		{[]byte{0x01, 0xff, 0xff}, []byte{0x02}},
		{[]byte{0xfe}, []byte{0xff}},
		{[]byte{0xff}, nil},
		{[]byte{0xff, 0xff}, nil},
		{[]byte{0x00}, []byte{0x01}},
	} {
		in := bytes.Clone(c.prefix)
		got := kv.PrefixEnd(in)
		if !bytes.Equal(got, c.want) || (got == nil) != (c.want == nil) {
			t.Errorf("PrefixEnd(%x) = %x, want %x", c.prefix, got, c.want)
		}
		if !bytes.Equal(in, c.prefix) {
			t.Errorf("PrefixEnd changed its argument to %x", in)
		}
	}
}

// TestBoltTx checks the wrapper of a caller's own bbolt transaction sees
// and makes the same buckets as Bolt.
func TestBoltTx(t *testing.T) {
	db, err := bolt.Open(filepath.Join(t.TempDir(), "index.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Update(func(tx *bolt.Tx) error {
		return kv.BoltTx(tx).Put("events", []byte("k"), []byte("v"))
	})
	if err != nil {
		t.Fatal(err)
	}
	err = db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket([]byte("events")).Get([]byte("k")); string(v) != "v" {
			t.Errorf("bbolt bucket events has k=%q", v)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestPrefix runs the conformance suite through Prefix, and checks that
// what it writes lands under the prefixed names and nowhere else.
func TestPrefix(t *testing.T) {
	kvtest.Run(t, func(t *testing.T) kv.DB { return kv.Prefix(openBolt(t), "cases/") })

	db := openBolt(t)
	p := kv.Prefix(db, "cases/")
	if err := p.Update(func(tx kv.Tx) error { return tx.Put("scans", []byte("k"), []byte("v")) }); err != nil {
		t.Fatal(err)
	}
	err := db.View(func(tx kv.Tx) error {
		if v, err := tx.Get("cases/scans", []byte("k")); err != nil || string(v) != "v" {
			t.Errorf("cases/scans k = %q, %v; want v", v, err)
		}
		if v, err := tx.Get("scans", []byte("k")); err != nil || v != nil {
			t.Errorf("unprefixed scans k = %q, %v; want none", v, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
