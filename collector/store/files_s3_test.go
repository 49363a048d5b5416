package store

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"idk/collector/blob"
	"idk/collector/blob/blobtest"
	"idk/collector/kv"
	"idk/collector/kv/pgkv"
	"idk/internal/testenv"
	"idk/protocol/idkpb"
	"idk/simulator/simclock"
)

// testBucket is a new bucket of the test S3 server: the store's view of
// it (blob) and the raw bucket, to look behind blob's back.
type testBucket struct {
	blobtest.Bucket
	files *blob.S3
}

// newTestBucket makes a bucket for this test on the server that
// IDK_TEST_S3_* names (the test is skipped without one, outside CI), and
// removes it with its objects when the test ends; mod, if not nil,
// changes the store's configuration.
func newTestBucket(t *testing.T, mod func(*blob.S3Config)) testBucket {
	t.Helper()
	b := blobtest.New(t, "idk-store-test-")
	cfg := b.Config("")
	if mod != nil {
		mod(&cfg)
	}
	files, err := blob.NewS3(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return testBucket{Bucket: b, files: files}
}

// object returns the content of key as the server holds it, and the
// SHA-256 of its metadata; nil content if there is no such object.
func (b testBucket) object(t *testing.T, key string) (data []byte, sha string) {
	t.Helper()
	out, err := b.Client.GetObject(t.Context(), &s3.GetObjectInput{Bucket: aws.String(b.Name), Key: aws.String(key)})
	if err != nil {
		if _, serr := b.files.Stat(t.Context(), key); errors.Is(serr, blob.ErrNotExist) {
			return nil, ""
		}
		t.Fatalf("get %s: %v", key, err)
	}
	defer out.Body.Close()
	data, err = io.ReadAll(out.Body)
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	return data, out.Metadata["sha256"]
}

// putObject stores data under key through blob, as an earlier put would
// have.
func (b testBucket) putObject(t *testing.T, key string, data []byte) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "obj")
	if err := os.WriteFile(p, data, 0o640); err != nil {
		t.Fatal(err)
	}
	if err := b.files.PutFile(t.Context(), key, p, int64(len(data)), sha256Of(data)); err != nil {
		t.Fatal(err)
	}
}

func openBucketStore(t *testing.T, root string, files blob.Store, index kv.DB, clk *simclock.Clock) *Store {
	t.Helper()
	if clk == nil {
		clk = simclock.New(t0)
	}
	s, err := Open(root, Options{Location: msk, Clock: clk, Files: files, Index: index})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// onlyStaging fails the test if root holds anything but the index file
// and the staging folder .incoming with no file in it.
func onlyStaging(t *testing.T, root string) {
	t.Helper()
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		switch {
		case rel == "." || (rel == "index.db" && !d.IsDir()):
			return nil
		case strings.HasPrefix(rel, ".incoming") && d.IsDir():
			return nil // the partials' folders of a device stay, as without Options.Files
		}
		t.Errorf("under the root with the files in a bucket: %s", rel)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// bucketUpload commits an upload into the bucket and checks where it
// went: the object with its content and SHA-256, nothing under the root
// but the staging folder, the index entry; OpenFile reads it back, and
// offering it again answers HAVE.
func bucketUpload(t *testing.T, s *Store, b testBucket, root string) {
	t.Helper()
	data := bytes.Repeat([]byte("x-ray in a bucket "), 20000)
	o := offerFor("202611230001", "202611230001_1.raw", data)
	got, err := send(t, s, o, data, 64<<10)
	if err != nil {
		t.Fatal(err)
	}
	const key = "10216100/20261123/850591/202611230001/202611230001_1.raw"
	if got != key {
		t.Fatalf("stored as %q, want %q", got, key)
	}
	obj, sha := b.object(t, key)
	if !bytes.Equal(obj, data) || sha != hexSHA(data) {
		t.Fatalf("object %s: %d bytes with sha256 %q, want %d bytes with %s", key, len(obj), sha, len(data), hexSHA(data))
	}
	onlyStaging(t, root)
	files, err := s.Files(dev.NumIdk)
	if err != nil || len(files) != 1 || files[0].StoredAs != key || files[0].Size != int64(len(data)) || files[0].SHA256 != hexSHA(data) || files[0].Pending {
		t.Fatalf("index: %+v %v", files, err)
	}
	rc, size, err := s.OpenFile(t.Context(), key)
	if err != nil {
		t.Fatal(err)
	}
	back, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || size != int64(len(data)) || !bytes.Equal(back, data) {
		t.Fatalf("OpenFile: %d bytes (size %d), %v", len(back), size, err)
	}
	if _, _, err := s.OpenFile(t.Context(), "10216100/20261123/850591/202611230001/none.raw"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("OpenFile of a missing object: %v, want fs.ErrNotExist", err)
	}
	up, rep, err := s.Offer(dev, o, t0)
	if err != nil || up != nil || rep.Status != idkpb.FileOfferReply_STATUS_HAVE {
		t.Fatalf("second offer: %v %v %v", up, rep, err)
	}
}

// (a) An upload with the files in a bucket and the index in bbolt.
func TestStoreFilesInBucket(t *testing.T) {
	b := newTestBucket(t, nil)
	root := t.TempDir()
	s := openBucketStore(t, root, b.files, nil, nil)
	defer s.Close()
	bucketUpload(t, s, b, root)
}

// (a) with both shared backends: the index in PostgreSQL, the files in
// the bucket; another collector (another root) sees and reads them.
func TestStoreFilesInBucketIndexInPostgres(t *testing.T) {
	b := newTestBucket(t, nil)
	dsn := testenv.Postgres(t)
	open := func(root string) *Store {
		t.Helper()
		db, err := pgkv.Open(context.Background(), dsn)
		if err != nil {
			t.Fatal(err)
		}
		s, err := Open(root, Options{Location: msk, Clock: simclock.New(t0), Index: db, Files: b.files})
		if err != nil {
			db.Close()
			t.Fatal(err)
		}
		return s
	}
	root := t.TempDir()
	s := open(root)
	bucketUpload(t, s, b, root)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	other := open(t.TempDir())
	defer other.Close()
	files, err := other.Files(dev.NumIdk)
	if err != nil || len(files) != 1 {
		t.Fatalf("files seen by another collector: %+v %v", files, err)
	}
	rc, _, err := other.OpenFile(t.Context(), files[0].StoredAs)
	if err != nil {
		t.Fatal(err)
	}
	rc.Close()
}

// A file larger than a part goes up in parts, and is acknowledged only
// once the bucket holds all of it with its SHA-256.
func TestStoreFilesInBucketMultipart(t *testing.T) {
	b := newTestBucket(t, func(c *blob.S3Config) { c.PartSize = blob.MinPartSize })
	root := t.TempDir()
	s := openBucketStore(t, root, b.files, nil, nil)
	defer s.Close()
	data := make([]byte, blob.MinPartSize+blob.MinPartSize/2)
	rand.Read(data)
	key, err := send(t, s, offerFor("S3", "S3_1.raw", data), data, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if obj, sha := b.object(t, key); !bytes.Equal(obj, data) || sha != hexSHA(data) {
		t.Fatalf("object %s: %d bytes, sha256 %s", key, len(obj), sha)
	}
	onlyStaging(t, root)
}

// (b) A crash between the put and the record: the object is there, the
// index still has the name reserved. The next offer adopts it.
func TestStoreAdoptsObjectPutBeforeACrash(t *testing.T) {
	b := newTestBucket(t, nil)
	root := t.TempDir()
	s := openBucketStore(t, root, b.files, nil, nil)
	defer s.Close()
	data := bytes.Repeat([]byte{1, 2, 3}, 10000)
	o := offerFor("S1", "S1_1.raw", data)
	up, _, err := s.Offer(dev, o, t0)
	if err != nil || up == nil {
		t.Fatal(up, err)
	}
	if err := up.Write(chunk(data, 0)); err != nil {
		t.Fatal(err)
	}
	up.Close() // the collector stops before its commit's record
	const key = "10216100/20261123/850591/S1/S1_1.raw"
	b.putObject(t, key, data)

	up, rep, err := s.Offer(dev, o, t0)
	if err != nil || up != nil || rep.Status != idkpb.FileOfferReply_STATUS_HAVE {
		t.Fatalf("offer after the crash: %v %v %v", up, rep, err)
	}
	files, err := s.Files(dev.NumIdk)
	if err != nil || len(files) != 1 || files[0].StoredAs != key || files[0].Pending {
		t.Fatalf("index: %+v %v", files, err)
	}
	if obj, _ := b.object(t, key); !bytes.Equal(obj, data) {
		t.Fatal("adopted object changed")
	}
}

// (c) Other content under the reserved name was never recorded, so never
// acknowledged: it is deleted and the upload takes the name.
func TestStoreReplacesUnrecordedObject(t *testing.T) {
	b := newTestBucket(t, nil)
	root := t.TempDir()
	s := openBucketStore(t, root, b.files, nil, nil)
	defer s.Close()
	const key = "10216100/20261123/850591/S2/S2_1.raw"
	b.putObject(t, key, []byte("never recorded"))
	data := bytes.Repeat([]byte("the real scan "), 1000)
	got, err := send(t, s, offerFor("S2", "S2_1.raw", data), data, 4096)
	if err != nil || got != key {
		t.Fatalf("stored as %q, %v", got, err)
	}
	if obj, sha := b.object(t, key); !bytes.Equal(obj, data) || sha != hexSHA(data) {
		t.Fatalf("object %s holds %q", key, obj)
	}
	onlyStaging(t, root)
}

// (d) Forms, written inside the index transaction, land in the bucket;
// an unrecorded object of another content under the form's name (left
// by a transaction that rolled back) is replaced.
func TestStoreFormsInBucket(t *testing.T) {
	b := newTestBucket(t, nil)
	root := t.TempDir()
	s := openBucketStore(t, root, b.files, nil, nil)
	defer s.Close()
	b.putObject(t, "10216100/20261123/850591/S8/form-r001.xml", []byte("<rolled-back/>"))
	form := []byte("<?xml version=\"1.0\" encoding=\"windows-1251\"?><CargoRIWForm/>")
	form2 := []byte("<CargoRIWForm rev=\"2\"/>")
	evs := []*idkpb.Event{
		{Seq: 1, TimeUnixNano: t0.UnixNano(), Body: &idkpb.Event_Form{Form: &idkpb.FormRevision{NumSnim: "S8", Revision: 1, Content: form, Sha256: sha256Of(form)}}},
		{Seq: 2, TimeUnixNano: t0.UnixNano(), Body: &idkpb.Event_Form{Form: &idkpb.FormRevision{NumSnim: "S8", Revision: 2, Content: form2, Sha256: sha256Of(form2)}}},
	}
	res, err := s.PutEvents(dev, 1, evs, agent, nil)
	if err != nil || res.Stored != 2 {
		t.Fatalf("%+v %v", res, err)
	}
	for name, want := range map[string][]byte{"form-r001.xml": form, "form-r002.xml": form2} {
		key := "10216100/20261123/850591/S8/" + name
		if obj, sha := b.object(t, key); !bytes.Equal(obj, want) || sha != hexSHA(want) {
			t.Errorf("object %s holds %q (sha256 %s)", key, obj, sha)
		}
	}
	onlyStaging(t, root)
}

// (e) Check reads every object again: one overwritten behind the store's
// back is reported, as is an object the index does not list.
func TestStoreCheckReadsBucket(t *testing.T) {
	b := newTestBucket(t, nil)
	root := t.TempDir()
	s := openBucketStore(t, root, b.files, nil, nil)
	defer s.Close()
	good, bad := bytes.Repeat([]byte("g"), 3000), bytes.Repeat([]byte("b"), 3000)
	pGood := putScanFile(t, s, "S1", "good.raw", good, t0)
	pBad := putScanFile(t, s, "S1", "bad.raw", bad, t0)
	// Same size, other bytes: only the content tells.
	if _, err := b.Client.PutObject(t.Context(), &s3.PutObjectInput{Bucket: aws.String(b.Name), Key: aws.String(pBad),
		Body: bytes.NewReader(bytes.Repeat([]byte("x"), 3000))}); err != nil {
		t.Fatal(err)
	}
	stray := "10216100/20261123/850591/S1/stray.bin"
	b.putObject(t, stray, []byte("stray"))
	var problems []Problem
	n, err := s.Check(func(p Problem) { problems = append(problems, p) })
	if err != nil || n != 2 {
		t.Fatalf("checked %d: %v", n, err)
	}
	if len(problems) != 2 || problems[0] != (Problem{Path: pBad, What: "sha256", Want: hexSHA(bad), Got: hexSHA(bytes.Repeat([]byte("x"), 3000))}) ||
		problems[1] != (Problem{Path: stray, What: "unindexed"}) {
		t.Fatalf("problems: %+v (good %s)", problems, pGood)
	}
}

// (f) RemoveMonth deletes the month's objects, indexed or not, and keeps
// the other months'; Months counts what the bucket holds.
func TestRetentionRemovesMonthFromBucket(t *testing.T) {
	b := newTestBucket(t, nil)
	root := t.TempDir()
	clk := simclock.New(time.Date(2026, 11, 1, 0, 0, 0, 0, msk))
	s := openBucketStore(t, root, b.files, nil, clk)
	defer s.Close()
	oct := time.Date(2023, 10, 31, 23, 0, 0, 0, msk)
	nov := time.Date(2023, 11, 1, 0, 30, 0, 0, msk)
	raw1, raw2 := bytes.Repeat([]byte("a"), 1000), bytes.Repeat([]byte("b"), 500)
	p1 := putScanFile(t, s, "202310310001", "202310310001_1.raw", raw1, oct)
	keep := putScanFile(t, s, "202311010001", "202311010001_1.raw", raw2, nov)
	stray := "10216100/20231005/850591/202310050007/stray.bin"
	b.putObject(t, stray, []byte("stray"))

	months, err := s.Months()
	if err != nil {
		t.Fatal(err)
	}
	if len(months) != 2 || months[0].Month != "2023-10" || months[0].Files != 1 || months[0].Bytes != int64(len(raw1)+len("stray")) ||
		!months[0].Expired || months[1].Bytes != int64(len(raw2)) {
		t.Fatalf("months: %+v", months)
	}

	rm, err := s.RemoveMonth("2023-10", "ИВАНОВ И.И.")
	if err != nil {
		t.Fatal(err)
	}
	if rm.Files != 2 || len(rm.List) != 2 || rm.List[0].Path != stray || !rm.List[0].Unindexed || rm.List[1].Path != p1 || rm.List[1].SHA256 != hexSHA(raw1) {
		t.Fatalf("removal: %+v", rm)
	}
	for _, key := range []string{p1, stray} {
		if obj, _ := b.object(t, key); obj != nil {
			t.Errorf("%s still in the bucket", key)
		}
	}
	if obj, _ := b.object(t, keep); !bytes.Equal(obj, raw2) {
		t.Errorf("%s of another month gone", keep)
	}
	if rec, _ := b.object(t, rm.Record); !strings.Contains(string(rec), p1) {
		t.Errorf("record %s in the bucket: %q", rm.Record, rec)
	}
	files, _ := s.Files(dev.NumIdk)
	if len(files) != 1 || files[0].StoredAs != keep {
		t.Fatalf("index after removal: %+v", files)
	}
}

// The same paths with blob.Local as Options.Files, which needs no server:
// it moves the partial in rather than copying it, and records no SHA-256
// beside a file (an orphan is hashed to be recognised).
func TestStoreFilesInLocalBlob(t *testing.T) {
	root, tree := t.TempDir(), t.TempDir()
	files, err := blob.NewLocal(tree)
	if err != nil {
		t.Fatal(err)
	}
	s := openBucketStore(t, root, files, nil, nil)
	defer s.Close()
	data := bytes.Repeat([]byte("local tree "), 3000)
	o := offerFor("S1", "S1_1.raw", data)
	key, err := send(t, s, o, data, 4096)
	if err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(tree, filepath.FromSlash(key))); err != nil || !bytes.Equal(b, data) {
		t.Fatalf("object %s: %v", key, err)
	}
	onlyStaging(t, root)
	if up, rep, err := s.Offer(dev, o, t0); err != nil || up != nil || rep.Status != idkpb.FileOfferReply_STATUS_HAVE {
		t.Fatalf("second offer: %v %v %v", up, rep, err)
	}

	// An object put before a crash, without a SHA-256 beside it.
	orphan := bytes.Repeat([]byte("orphan"), 100)
	oo := offerFor("S1", "S1_2.raw", orphan)
	up, _, err := s.Offer(dev, oo, t0)
	if err != nil || up == nil {
		t.Fatal(up, err)
	}
	up.Close()
	p := filepath.Join(t.TempDir(), "o")
	os.WriteFile(p, orphan, 0o640)
	if err := files.PutFile(t.Context(), "10216100/20261123/850591/S1/S1_2.raw", p, int64(len(orphan)), sha256Of(orphan)); err != nil {
		t.Fatal(err)
	}
	if up, rep, err := s.Offer(dev, oo, t0); err != nil || up != nil || rep.Status != idkpb.FileOfferReply_STATUS_HAVE {
		t.Fatalf("offer of the orphan: %v %v %v", up, rep, err)
	}

	form := []byte("<form/>")
	if _, err := s.PutEvents(dev, 1, []*idkpb.Event{{Seq: 1, TimeUnixNano: t0.UnixNano(), Body: &idkpb.Event_Form{Form: &idkpb.FormRevision{
		NumSnim: "S1", Revision: 1, Content: form, Sha256: sha256Of(form)}}}}, agent, nil); err != nil {
		t.Fatal(err)
	}
	rc, _, err := s.OpenFile(t.Context(), "10216100/20261123/850591/S1/form-r001.xml")
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := io.ReadAll(rc); !bytes.Equal(b, form) {
		t.Fatalf("form %q", b)
	}
	rc.Close()
	var problems []Problem
	if n, err := s.Check(func(p Problem) { problems = append(problems, p) }); err != nil || n != 3 || len(problems) != 0 {
		t.Fatalf("check: %d %v %+v", n, err, problems)
	}
}

// A damaged bbolt index is not rebuilt from the files when they are in
// Options.Files (a bucket may hold other indexes' files); Open still
// succeeds, and a file offered again is adopted from where it is.
func TestStoreDoesNotRebuildIndexFromFiles(t *testing.T) {
	root, tree := t.TempDir(), t.TempDir()
	files, err := blob.NewLocal(tree)
	if err != nil {
		t.Fatal(err)
	}
	s := openBucketStore(t, root, files, nil, nil)
	data := []byte("an image that must not be forgotten")
	o := offerFor("S10", "S10_1.raw", data)
	if _, err := send(t, s, o, data, 8); err != nil {
		t.Fatal(err)
	}
	s.Close()
	os.Truncate(filepath.Join(root, "index.db"), 5000)

	s = openBucketStore(t, root, files, nil, nil)
	defer s.Close()
	if s.Recovered == nil {
		t.Fatal("damage not reported")
	}
	if got, _ := s.Files(dev.NumIdk); len(got) != 0 {
		t.Fatalf("index rebuilt from the files: %+v", got)
	}
	up, rep, err := s.Offer(dev, o, t0)
	if err != nil || up != nil || rep.Status != idkpb.FileOfferReply_STATUS_HAVE {
		t.Fatalf("offer after the loss: %v %v %v", up, rep, err)
	}
	if got, _ := s.Files(dev.NumIdk); len(got) != 1 || got[0].Name != "S10_1.raw" {
		t.Fatalf("index after the offer: %+v", got)
	}
}
