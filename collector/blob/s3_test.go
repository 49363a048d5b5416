package blob

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"idk/internal/testenv"
)

// newTestS3 returns a store in a new bucket of the test server, with cfg
// changed by mod if it is not nil. The bucket and its objects are removed
// when the test ends.
func newTestS3(t *testing.T, mod func(*S3Config)) *S3 {
	t.Helper()
	env := testenv.S3(t)
	b := make([]byte, 6)
	rand.Read(b)
	cfg := S3Config{
		Endpoint:  env.Endpoint,
		Bucket:    "idk-test-" + hex.EncodeToString(b),
		AccessKey: env.AccessKey,
		SecretKey: env.SecretKey,
	}
	if mod != nil {
		mod(&cfg)
	}
	st, err := NewS3(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// Twice: the second finds the bucket there and leaves it.
	for range 2 {
		if err := st.CreateBucket(ctx); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { removeBucket(t, st.client, cfg.Bucket) })
	return st
}

// removeBucket deletes the bucket with its objects and unfinished
// uploads.
func removeBucket(t *testing.T, c *s3.Client, bucket string) {
	// t.Context is done by the time cleanups run.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p := s3.NewListObjectsV2Paginator(c, &s3.ListObjectsV2Input{Bucket: aws.String(bucket)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Errorf("remove bucket %s: %v", bucket, err)
			return
		}
		for _, o := range page.Contents {
			if _, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: o.Key}); err != nil {
				t.Errorf("remove bucket %s: %v", bucket, err)
			}
		}
	}
	ups, err := c.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String(bucket)})
	if err == nil {
		for _, u := range ups.Uploads {
			c.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: aws.String(bucket), Key: u.Key, UploadId: u.UploadId})
		}
	}
	if _, err := c.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Errorf("remove bucket %s: %v", bucket, err)
	}
}

// recorder is an http.RoundTripper that records the requests it passes
// on.
type recorder struct {
	mu   sync.Mutex
	reqs []*http.Request
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	r.mu.Lock()
	r.reqs = append(r.reqs, req.Clone(context.Background()))
	r.mu.Unlock()
	return http.DefaultTransport.RoundTrip(req)
}

func (r *recorder) requests() []*http.Request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.reqs)
}

// TestS3 runs the Store checks against the test server, with a key prefix
// to show that it is added and taken away again.
func TestS3(t *testing.T) {
	st := newTestS3(t, func(c *S3Config) { c.Prefix = "idk/" })
	testStore(t, st)
	// Only keys under the prefix were written.
	out, err := st.client.ListObjectsV2(t.Context(), &s3.ListObjectsV2Input{Bucket: aws.String(st.bucket)})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range out.Contents {
		if !strings.HasPrefix(aws.ToString(o.Key), "idk/") {
			t.Errorf("object %s outside the prefix idk/", aws.ToString(o.Key))
		}
	}
}

// TestS3Multipart puts a file larger than the part size and checks that it
// went up in parts, with SHA-256 checksums and none of the SDK's own.
func TestS3Multipart(t *testing.T) {
	rec := &recorder{}
	st := newTestS3(t, func(c *S3Config) {
		c.PartSize = MinPartSize
		c.Concurrency = 2
		c.HTTPClient = &http.Client{Transport: rec}
	})
	const key = "0123/2026/11/28/SNIM-1/big.raw"
	data := random(t, 12<<20)
	put(t, st, key, data)
	got, info := read(t, st, key)
	if !bytes.Equal(got, data) {
		t.Errorf("read back %d bytes that differ from the %d put", len(got), len(data))
	}
	sum := sha256.Sum256(data)
	if info.Size != int64(len(data)) || !bytes.Equal(info.SHA256, sum[:]) {
		t.Errorf("open: size %d, SHA-256 %x; want %d, %x", info.Size, info.SHA256, len(data), sum)
	}

	var parts []int
	for _, req := range rec.requests() {
		if req.Method != http.MethodPut {
			continue
		}
		if n := req.URL.Query().Get("partNumber"); n != "" {
			i, _ := strconv.Atoi(n)
			parts = append(parts, i)
			checkHeaders(t, req)
		}
	}
	slices.Sort(parts)
	if !slices.Equal(parts, []int{1, 2, 3}) {
		t.Errorf("uploaded parts %v, want 1, 2, 3", parts)
	}
}

// TestS3SingleHeaders checks that a put in one request carries the
// agent's SHA-256 and none of the SDK's default checksums, which many
// S3-compatible servers refuse.
func TestS3SingleHeaders(t *testing.T) {
	rec := &recorder{}
	st := newTestS3(t, func(c *S3Config) { c.HTTPClient = &http.Client{Transport: rec} })
	data := random(t, 1<<20)
	put(t, st, "one.raw", data)
	n := 0
	for _, req := range rec.requests() {
		if req.Method == http.MethodPut && strings.HasSuffix(req.URL.Path, "/one.raw") {
			n++
			checkHeaders(t, req)
		}
	}
	if n != 1 {
		t.Errorf("%d PutObject requests, want 1", n)
	}
}

// checkHeaders checks that req, an upload, carries a SHA-256 checksum and
// a signed payload hash, and no SDK default checksum.
func checkHeaders(t *testing.T, req *http.Request) {
	t.Helper()
	if req.Header.Get("X-Amz-Checksum-Sha256") == "" {
		t.Errorf("%s %s: no x-amz-checksum-sha256", req.Method, req.URL)
	}
	if h := req.Header.Get("X-Amz-Content-Sha256"); len(h) != 64 {
		t.Errorf("%s %s: x-amz-content-sha256 %q, want a SHA-256", req.Method, req.URL, h)
	}
	for _, h := range []string{"X-Amz-Sdk-Checksum-Algorithm", "X-Amz-Checksum-Crc32", "X-Amz-Checksum-Crc32c", "X-Amz-Checksum-Crc64nvme", "X-Amz-Trailer"} {
		if v := req.Header.Get(h); v != "" {
			t.Errorf("%s %s: header %s: %s", req.Method, req.URL, h, v)
		}
	}
}

// TestS3WrongSum checks that a put whose file does not match the sum
// fails with ErrChecksum and leaves nothing behind, in one request (where
// the server finds the mismatch) and in parts (where PutFile finds it
// while computing the parts' sums).
func TestS3WrongSum(t *testing.T) {
	st := newTestS3(t, func(c *S3Config) { c.PartSize = MinPartSize })
	bad := sha256.Sum256([]byte("not the data"))
	for _, size := range []int{1 << 10, MinPartSize + 1} {
		key := fmt.Sprintf("wrong-%d.raw", size)
		path, _ := source(t, random(t, size))
		err := st.PutFile(t.Context(), key, path, int64(size), bad[:])
		if !errors.Is(err, ErrChecksum) {
			t.Errorf("put of %d bytes with a wrong sum: %v; want ErrChecksum", size, err)
		}
		if _, err := st.Stat(t.Context(), key); !errors.Is(err, ErrNotExist) {
			t.Errorf("after put of %d bytes with a wrong sum, stat: %v; want ErrNotExist", size, err)
		}
	}
	ups, err := st.client.ListMultipartUploads(t.Context(), &s3.ListMultipartUploadsInput{Bucket: aws.String(st.bucket)})
	if err != nil {
		t.Fatal(err)
	}
	if len(ups.Uploads) != 0 {
		t.Errorf("%d unfinished multipart uploads left", len(ups.Uploads))
	}
}

// TestS3ServerChecksSHA256 checks that the server itself refuses a body
// whose x-amz-checksum-sha256 is wrong, while the signed payload hash is
// right, both for a whole object and for a part: PutFile relies on it.
func TestS3ServerChecksSHA256(t *testing.T) {
	st := newTestS3(t, nil)
	ctx := t.Context()
	data := []byte("scan")
	bad := sha256.Sum256([]byte("not the scan"))
	badB64 := base64.StdEncoding.EncodeToString(bad[:])

	_, err := st.client.PutObject(ctx, &s3.PutObjectInput{
		Bucket:         aws.String(st.bucket),
		Key:            aws.String("k"),
		Body:           bytes.NewReader(data),
		ChecksumSHA256: aws.String(badB64),
	})
	if !errors.Is(checksumError(err), ErrChecksum) {
		t.Errorf("PutObject with a wrong checksum: %v; want a checksum error", err)
	}

	up, err := st.client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{
		Bucket:            aws.String(st.bucket),
		Key:               aws.String("k"),
		ChecksumAlgorithm: types.ChecksumAlgorithmSha256,
	})
	if err != nil {
		t.Fatal(err)
	}
	_, err = st.client.UploadPart(ctx, &s3.UploadPartInput{
		Bucket:         aws.String(st.bucket),
		Key:            aws.String("k"),
		UploadId:       up.UploadId,
		PartNumber:     aws.Int32(1),
		Body:           bytes.NewReader(data),
		ChecksumSHA256: aws.String(badB64),
	})
	if !errors.Is(checksumError(err), ErrChecksum) {
		t.Errorf("UploadPart with a wrong checksum: %v; want a checksum error", err)
	}
	if _, err := st.Stat(ctx, "k"); !errors.Is(err, ErrNotExist) {
		t.Errorf("stat after refused uploads: %v; want ErrNotExist", err)
	}
}

func TestNewS3Config(t *testing.T) {
	good := S3Config{Endpoint: "https://rgw.example:443", Bucket: "b", AccessKey: "a", SecretKey: "s"}
	for name, mod := range map[string]func(*S3Config){
		"no endpoint":     func(c *S3Config) { c.Endpoint = "" },
		"ftp endpoint":    func(c *S3Config) { c.Endpoint = "ftp://rgw.example" },
		"no bucket":       func(c *S3Config) { c.Bucket = "" },
		"no secret":       func(c *S3Config) { c.SecretKey = "" },
		"bad prefix":      func(c *S3Config) { c.Prefix = "/idk/" },
		"small parts":     func(c *S3Config) { c.PartSize = MinPartSize - 1 },
		"negative concur": func(c *S3Config) { c.Concurrency = -1 },
	} {
		cfg := good
		mod(&cfg)
		if _, err := NewS3(cfg); err == nil {
			t.Errorf("%s: NewS3 succeeded", name)
		}
	}
	st, err := NewS3(good)
	if err != nil {
		t.Fatal(err)
	}
	if st.partSize != DefaultPartSize || st.concurrency != 4 {
		t.Errorf("defaults: part size %d, concurrency %d", st.partSize, st.concurrency)
	}
}
