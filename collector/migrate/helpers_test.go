package migrate_test

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	bolt "go.etcd.io/bbolt"

	"idk/collector/blob"
	"idk/collector/blob/blobtest"
	"idk/collector/cases"
	"idk/collector/kv"
	"idk/collector/kv/pgkv"
	"idk/collector/registry"
	"idk/collector/store"
	"idk/internal/testenv"
	"idk/protocol/idkpb"
	"idk/simulator/simclock"
)

var (
	dev    = &idkpb.Device{NumIdk: "850591", KodTo: "10216100"}
	msk    = time.FixedZone("MSK", 3*3600)
	t0     = time.Date(2026, 11, 22, 9, 30, 0, 0, time.UTC)
	quiet  = slog.New(slog.DiscardHandler)
	crcTab = crc32.MakeTable(crc32.Castagnoli)
)

// buildSource makes the store.root of a collector that kept everything to
// itself, through the store's and the engine's own code: n uploaded
// files, events with a form (a file too), a device, consumer state, and
// an engine with a case. It returns the root and the files' content by
// StoredAs.
func buildSource(t *testing.T, n int) (string, map[string][]byte) {
	t.Helper()
	root := t.TempDir()
	clk := simclock.New(t0)
	st, err := store.Open(root, store.Options{Location: msk, Clock: clk, Log: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.PutDevice(dev); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		data := make([]byte, 100+i%7*50)
		rand.Read(data)
		sum := sha256.Sum256(data)
		o := &idkpb.FileOffer{NumSnim: fmt.Sprintf("S%d", i/4), Name: fmt.Sprintf("image%d.raw", i%4), Kind: idkpb.FileKind_FILE_KIND_RAW,
			Size: uint64(len(data)), Sha256: sum[:], ScanTimeUnixNano: t0.UnixNano()}
		up, _, err := st.Offer(dev, o, t0)
		if err != nil {
			t.Fatal(err)
		}
		if err := up.Write(&idkpb.Chunk{Offset: 0, Data: data, Crc32C: crc32.Checksum(data, crcTab)}); err != nil {
			t.Fatal(err)
		}
		if _, err := up.Commit(sum[:]); err != nil {
			t.Fatal(err)
		}
		up.Close()
	}
	form := []byte(`<?xml version="1.0" encoding="windows-1251"?><CargoRIWForm/>`)
	fsum := sha256.Sum256(form)
	evs := []*idkpb.Event{
		{Seq: 1, TimeUnixNano: t0.UnixNano(), Body: &idkpb.Event_ScanSeen{ScanSeen: &idkpb.ScanSeen{NumSnim: "S0"}}},
		{Seq: 2, TimeUnixNano: t0.UnixNano(), Body: &idkpb.Event_Form{Form: &idkpb.FormRevision{NumSnim: "S0", Revision: 1, Content: form, Sha256: fsum[:]}}},
	}
	agent := func(ns int64) time.Time { return time.Unix(0, ns) }
	if _, err := st.PutEvents(dev, 1, evs, agent, nil); err != nil {
		t.Fatal(err)
	}
	// A consumer's state (package ingest's buckets).
	if err := st.Update(func(k *store.KV) error { return k.Put("test.consumer", []byte("position"), []byte{0, 0, 0, 2}) }); err != nil {
		t.Fatal(err)
	}
	all, err := st.Files(dev.NumIdk)
	if err != nil {
		t.Fatal(err)
	}
	// What the index lists, read back from the disk.
	files := map[string][]byte{}
	for _, e := range all {
		files[e.StoredAs] = readFile(t, filepath.Join(root, filepath.FromSlash(e.StoredAs)))
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	engine, err := cases.Open(filepath.Join(root, "cases.db"), msk, clk)
	if err != nil {
		t.Fatal(err)
	}
	if err := engine.SetDevice(registry.DeviceFromProto(dev)); err != nil {
		t.Fatal(err)
	}
	if _, err := engine.Add(cases.Event{Kind: cases.Arrival, Time: t0.Add(-time.Minute), NumIDK: dev.NumIdk, By: "оператор"}); err != nil {
		t.Fatal(err)
	}
	if err := engine.Close(); err != nil {
		t.Fatal(err)
	}
	return root, files
}

// addNestedKV puts consumer state into index.db the way an index of the
// old layout kept it: bucket "kv", a nested bucket per consumer.
func addNestedKV(t *testing.T, root string, consumer string, keys map[string]string) {
	t.Helper()
	db, err := bolt.Open(filepath.Join(root, "index.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Update(func(tx *bolt.Tx) error {
		parent, err := tx.CreateBucketIfNotExists([]byte("kv"))
		if err != nil {
			return err
		}
		b, err := parent.CreateBucketIfNotExists([]byte(consumer))
		if err != nil {
			return err
		}
		for k, v := range keys {
			if err := b.Put([]byte(k), []byte(v)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// sourceBuckets reads every bucket of the bbolt file at path as the
// destination should show it: name (with prefix, nested "kv" buckets
// as "kv/<name>") to keys and values. The clean-stop marker is left out.
func sourceBuckets(t *testing.T, path, prefix string) map[string]map[string]string {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	out := map[string]map[string]string{}
	err = db.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			if string(name) == "boltfile" {
				return nil
			}
			return b.ForEach(func(k, v []byte) error {
				if v == nil {
					nb := b.Bucket(k)
					m := map[string]string{}
					out[prefix+"kv/"+string(k)] = m
					return nb.ForEach(func(k, v []byte) error { m[string(k)] = string(v); return nil })
				}
				m := out[prefix+string(name)]
				if m == nil {
					m = map[string]string{}
					out[prefix+string(name)] = m
				}
				m[string(k)] = string(v)
				return nil
			})
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// destBucket reads bucket name of db.
func destBucket(t *testing.T, db kv.DB, name string) map[string]string {
	t.Helper()
	m := map[string]string{}
	err := db.View(func(tx kv.Tx) error {
		return tx.Scan(name, nil, nil, false, func(k, v []byte) error { m[string(k)] = string(v); return nil })
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// compareIndex checks that db holds every bucket of the source's two
// files, key for key, and nothing more in them.
func compareIndex(t *testing.T, root string, db kv.DB) int {
	t.Helper()
	want := sourceBuckets(t, filepath.Join(root, "index.db"), "")
	for name, m := range sourceBuckets(t, filepath.Join(root, "cases.db"), "cases/") {
		want[name] = m
	}
	keys := 0
	for name, w := range want {
		got := destBucket(t, db, name)
		if len(got) != len(w) {
			t.Errorf("bucket %s: %d keys in the destination, %d in the source", name, len(got), len(w))
		}
		for k, v := range w {
			if g, ok := got[k]; !ok || g != v {
				t.Errorf("bucket %s key %q: destination %q (present %v), source %q", name, k, g, ok, v)
			}
		}
		keys += len(w)
	}
	return keys
}

// newPG returns a PostgreSQL index in a fresh database.
func newPG(t *testing.T) *pgkv.DB {
	t.Helper()
	db, err := pgkv.Open(t.Context(), testenv.Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// testBucket is a new bucket of the test's S3 server, removed at the
// end, and the store in it under the prefix idk/.
type testBucket struct {
	blobtest.Bucket
	store *blob.S3
}

func newBucket(t *testing.T) testBucket {
	t.Helper()
	b := blobtest.New(t, "idk-migrate-")
	st, err := blob.NewS3(b.Config("idk/"))
	if err != nil {
		t.Fatal(err)
	}
	return testBucket{Bucket: b, store: st}
}

// objects reads every object of the bucket through the S3 API: key
// (without the store's prefix) to the SHA-256 of its content.
func (b testBucket) objects(t *testing.T) map[string][32]byte {
	t.Helper()
	out := map[string][32]byte{}
	keys, err := b.Keys(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range keys {
		obj, err := b.Client.GetObject(t.Context(), &s3.GetObjectInput{Bucket: aws.String(b.Name), Key: aws.String(key)})
		if err != nil {
			t.Fatal(err)
		}
		h := sha256.New()
		_, err = io.Copy(h, obj.Body)
		obj.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix([]byte(key), []byte("idk/")) {
			t.Errorf("object %s outside the prefix idk/", key)
		}
		out[key[len("idk/"):]] = [32]byte(h.Sum(nil))
	}
	return out
}

// compareObjects checks that the bucket holds exactly the files, each
// with the same content.
func compareObjects(t *testing.T, b testBucket, files map[string][]byte) {
	t.Helper()
	got := b.objects(t)
	if len(got) != len(files) {
		t.Errorf("%d objects in the bucket, want %d", len(got), len(files))
	}
	for key, data := range files {
		sum, ok := got[key]
		if !ok {
			t.Errorf("object %s missing", key)
		} else if sum != sha256.Sum256(data) {
			t.Errorf("object %s: content differs from the source file", key)
		}
	}
}

// readFile is os.ReadFile that fails the test.
func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
