package blob

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"
)

const (
	// DefaultPartSize is S3Config.PartSize if it is zero.
	DefaultPartSize = 64 << 20
	// MinPartSize is the smallest part S3 accepts (except the last).
	MinPartSize = 5 << 20
	// maxPartSize is the largest part S3 accepts.
	maxPartSize = 5 << 30
	// maxParts is the most parts an S3 multipart upload may have.
	maxParts = 10000
	// metaSHA256 is the user metadata (x-amz-meta-sha256) holding an
	// object's SHA-256 in hex. S3 keeps a checksum of its own, but for a
	// multipart object that is a checksum of the parts' checksums, not
	// the SHA-256 of the content that the agent sent.
	metaSHA256 = "sha256"
)

// S3Config says which bucket an S3 store uses and how.
type S3Config struct {
	Endpoint             string // e.g. https://rgw.rtu.example:443; http is allowed (tests)
	Region               string // default "us-east-1"
	Bucket               string
	Prefix               string // optional key prefix, e.g. "idk/"
	AccessKey, SecretKey string
	PartSize             int64        // multipart part size; default DefaultPartSize; at least MinPartSize
	Concurrency          int          // parts uploaded at once; default 4
	HTTPClient           *http.Client // optional, e.g. with the data centre's TLS roots
}

// S3 is a Store in a bucket of an S3-compatible server (Ceph RGW and the
// like), at the key cfg.Prefix+key. It records each object's SHA-256 in
// the object's metadata.
type S3 struct {
	client      *s3.Client
	bucket      string
	prefix      string
	partSize    int64
	concurrency int
}

var _ Store = (*S3)(nil)

// NewS3 returns a store in the bucket that cfg names. It makes no network
// call; the first operation shows whether the server and bucket answer.
func NewS3(cfg S3Config) (*S3, error) {
	u, err := url.Parse(cfg.Endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("blob: S3 endpoint %q is not an http or https URL", cfg.Endpoint)
	}
	if cfg.Bucket == "" {
		return nil, errors.New("blob: S3 bucket not set")
	}
	if cfg.Prefix != "" {
		if err := CheckKey(strings.TrimSuffix(cfg.Prefix, "/")); err != nil {
			return nil, fmt.Errorf("blob: S3 key prefix %q: %w", cfg.Prefix, err)
		}
	}
	if cfg.AccessKey == "" || cfg.SecretKey == "" {
		return nil, errors.New("blob: S3 access key or secret key not set")
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	switch {
	case cfg.PartSize == 0:
		cfg.PartSize = DefaultPartSize
	case cfg.PartSize < MinPartSize || cfg.PartSize > maxPartSize:
		return nil, fmt.Errorf("blob: S3 part size %d is outside [%d, %d]", cfg.PartSize, MinPartSize, maxPartSize)
	}
	switch {
	case cfg.Concurrency == 0:
		cfg.Concurrency = 4
	case cfg.Concurrency < 0:
		return nil, fmt.Errorf("blob: S3 concurrency %d is negative", cfg.Concurrency)
	}
	return &S3{
		client:      newS3Client(cfg),
		bucket:      cfg.Bucket,
		prefix:      cfg.Prefix,
		partSize:    cfg.PartSize,
		concurrency: cfg.Concurrency,
	}, nil
}

// newS3Client returns a client for cfg's server. It builds the options by
// hand rather than loading the SDK's shared configuration, so that nothing
// in the environment or the home folder changes where evidence goes.
func newS3Client(cfg S3Config) *s3.Client {
	creds := aws.Credentials{AccessKeyID: cfg.AccessKey, SecretAccessKey: cfg.SecretKey, Source: "blob.S3Config"}
	o := s3.Options{
		Region:       cfg.Region,
		BaseEndpoint: aws.String(cfg.Endpoint),
		// Servers in a data centre are reached by name or address, not
		// by bucket subdomains.
		UsePathStyle: true,
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return creds, nil
		}),
		// The SDK otherwise adds CRC32 checksums (in trailers over TLS)
		// to every upload and expects them in downloads, which many
		// S3-compatible servers refuse or lack. The SHA-256 checksums
		// that PutFile sends are what counts.
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
	}
	if cfg.HTTPClient != nil {
		o.HTTPClient = cfg.HTTPClient
	}
	return s3.New(o)
}

// PutFile uploads the file at path to key: in one request up to the part
// size, in parts above it. Each request carries the SHA-256 of its body
// (x-amz-checksum-sha256, and as the signed payload hash), which the
// server checks before it keeps anything. The file at path stays.
func (s *S3) PutFile(ctx context.Context, key, path string, size int64, sum []byte) error {
	if err := CheckKey(key); err != nil {
		return err
	}
	if len(sum) != sha256.Size {
		return fmt.Errorf("blob: put %s: SHA-256 sum has %d bytes, want %d", key, len(sum), sha256.Size)
	}
	switch err := s.same(ctx, key, size, sum); {
	case err == nil:
		return nil // a retry: the first put got this far
	case !errors.Is(err, ErrNotExist):
		return fmt.Errorf("blob: put %s: %w", key, err)
	}

	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("blob: put %s: %w", key, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("blob: put %s: %w", key, err)
	}
	if fi.Size() != size {
		return fmt.Errorf("blob: put %s: %w: %s holds %d bytes, not %d", key, ErrChecksum, path, fi.Size(), size)
	}

	partSize := s.partSize
	if size > partSize*maxParts {
		partSize = (size + maxParts - 1) / maxParts
	}
	if size <= partSize {
		err = s.putOne(ctx, key, f, size, sum)
	} else {
		err = s.putParts(ctx, key, f, size, sum, partSize)
	}
	if err != nil {
		return fmt.Errorf("blob: put %s: %w", key, err)
	}

	// Read back what the server says it holds: a server that ignored a
	// header must not go unnoticed.
	if err := s.same(ctx, key, size, sum); err != nil {
		return fmt.Errorf("blob: put %s: after upload: %w", key, err)
	}
	return nil
}

// same returns nil if key holds size bytes recorded with SHA-256 sum, an
// error wrapping ErrNotExist if key holds nothing, and one wrapping
// ErrExist if it holds something else.
func (s *S3) same(ctx context.Context, key string, size int64, sum []byte) error {
	info, err := s.Stat(ctx, key)
	if err != nil {
		return err
	}
	if info.Size != size || !bytes.Equal(info.SHA256, sum) {
		return fmt.Errorf("%w: %s holds %d bytes with SHA-256 %x, not %d bytes with %x", ErrExist, key, info.Size, info.SHA256, size, sum)
	}
	return nil
}

// putOne uploads f in one PutObject.
func (s *S3) putOne(ctx context.Context, key string, f *os.File, size int64, sum []byte) error {
	_, err := s.client.PutObject(ctx, &s3.PutObjectInput{
		Bucket:         aws.String(s.bucket),
		Key:            aws.String(s.prefix + key),
		Body:           io.NewSectionReader(f, 0, size),
		ContentLength:  aws.Int64(size),
		ChecksumSHA256: aws.String(base64.StdEncoding.EncodeToString(sum)),
		Metadata:       map[string]string{metaSHA256: hex.EncodeToString(sum)},
	}, withPayloadHash(sum))
	return checksumError(err)
}

// putParts uploads f in a multipart upload of parts of partSize bytes.
// The server checks each part against its SHA-256; that the parts make up
// the content with SHA-256 sum is checked here, as the parts' sums are
// computed in the same read of the file.
func (s *S3) putParts(ctx context.Context, key string, f *os.File, size int64, sum []byte, partSize int64) (err error) {
	n := int((size + partSize - 1) / partSize)
	sums, err := partSums(f, size, partSize, n, sum)
	if err != nil {
		return err
	}

	up, err := s.client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{
		Bucket:            aws.String(s.bucket),
		Key:               aws.String(s.prefix + key),
		ChecksumAlgorithm: types.ChecksumAlgorithmSha256,
		Metadata:          map[string]string{metaSHA256: hex.EncodeToString(sum)},
	})
	if err != nil {
		return fmt.Errorf("start multipart upload: %w", err)
	}
	defer func() {
		if err == nil {
			return
		}
		// Abort even when ctx is done, or the server keeps the parts
		// (and bills for them) until a lifecycle rule removes them.
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		if _, aerr := s.client.AbortMultipartUpload(actx, &s3.AbortMultipartUploadInput{
			Bucket:   aws.String(s.bucket),
			Key:      aws.String(s.prefix + key),
			UploadId: up.UploadId,
		}); aerr != nil {
			err = fmt.Errorf("%w (and abort multipart upload: %v)", err, aerr)
		}
	}()

	parts := make([]types.CompletedPart, n)
	// The first part to fail stops the others.
	pctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(s.concurrency, n) {
		wg.Go(func() {
			for i := range next {
				off := int64(i) * partSize
				out, err := s.client.UploadPart(pctx, &s3.UploadPartInput{
					Bucket:         aws.String(s.bucket),
					Key:            aws.String(s.prefix + key),
					UploadId:       up.UploadId,
					PartNumber:     aws.Int32(int32(i + 1)),
					Body:           io.NewSectionReader(f, off, min(partSize, size-off)),
					ContentLength:  aws.Int64(min(partSize, size-off)),
					ChecksumSHA256: aws.String(base64.StdEncoding.EncodeToString(sums[i])),
				}, withPayloadHash(sums[i]))
				if err != nil {
					cancel(fmt.Errorf("upload part %d of %d: %w", i+1, n, checksumError(err)))
					return
				}
				parts[i] = types.CompletedPart{
					PartNumber:     aws.Int32(int32(i + 1)),
					ETag:           out.ETag,
					ChecksumSHA256: aws.String(base64.StdEncoding.EncodeToString(sums[i])),
				}
			}
		})
	}
send:
	for i := range n {
		select {
		case next <- i:
		case <-pctx.Done():
			break send
		}
	}
	close(next)
	wg.Wait()
	if err := context.Cause(pctx); err != nil {
		return err
	}

	out, err := s.client.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
		Bucket:          aws.String(s.bucket),
		Key:             aws.String(s.prefix + key),
		UploadId:        up.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: parts},
	})
	if err != nil {
		return fmt.Errorf("complete multipart upload: %w", checksumError(err))
	}
	// The object's checksum is the SHA-256 of the parts' SHA-256s and
	// their count; a server that reports it shows it joined these parts.
	if got, want := aws.ToString(out.ChecksumSHA256), compositeSum(sums); got != "" && got != want {
		err := fmt.Errorf("%w: server reports multipart checksum %s, want %s", ErrChecksum, got, want)
		// The object bears our size and sum in its metadata, so a retry
		// would take it as stored: remove it. The key was free before.
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		if _, derr := s.client.DeleteObject(dctx, &s3.DeleteObjectInput{
			Bucket: aws.String(s.bucket),
			Key:    aws.String(s.prefix + key),
		}); derr != nil {
			err = fmt.Errorf("%w (and delete the object: %v)", err, derr)
		}
		return err
	}
	return nil
}

// partSums reads f once and returns the SHA-256 of each of its n parts of
// partSize bytes, or an error wrapping ErrChecksum if the whole file does
// not have SHA-256 sum.
func partSums(f *os.File, size, partSize int64, n int, sum []byte) ([][]byte, error) {
	whole := sha256.New()
	sums := make([][]byte, n)
	buf := make([]byte, 1<<20)
	for i := range sums {
		off := int64(i) * partSize
		h := sha256.New()
		if _, err := io.CopyBuffer(io.MultiWriter(h, whole), io.NewSectionReader(f, off, min(partSize, size-off)), buf); err != nil {
			return nil, fmt.Errorf("read %s: %w", f.Name(), err)
		}
		sums[i] = h.Sum(nil)
	}
	if got := whole.Sum(nil); !bytes.Equal(got, sum) {
		return nil, fmt.Errorf("%w: %s has SHA-256 %x, not %x", ErrChecksum, f.Name(), got, sum)
	}
	return sums, nil
}

// compositeSum returns the checksum S3 gives a multipart object whose
// parts have SHA-256 sums: base64 of the SHA-256 of their concatenation,
// a dash, and the number of parts.
func compositeSum(sums [][]byte) string {
	h := sha256.New()
	for _, s := range sums {
		h.Write(s)
	}
	return base64.StdEncoding.EncodeToString(h.Sum(nil)) + "-" + strconv.Itoa(len(sums))
}

// withPayloadHash makes a request sign sum as its body's SHA-256
// (x-amz-content-sha256), which the SDK would otherwise compute by
// reading the body once more before sending it. The server checks it.
func withPayloadHash(sum []byte) func(*s3.Options) {
	h := hex.EncodeToString(sum)
	return func(o *s3.Options) {
		o.APIOptions = append(o.APIOptions, func(st *middleware.Stack) error {
			return st.Finalize.Add(middleware.FinalizeMiddlewareFunc("blob.PayloadHash",
				func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
					return next.HandleFinalize(v4.SetPayloadHash(ctx, h), in)
				}), middleware.Before)
		})
	}
}

// checksumError wraps err with ErrChecksum if the server says the body
// did not match a checksum sent with it.
func checksumError(err error) error {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "BadDigest", "XAmzContentChecksumMismatch", "XAmzContentSHA256Mismatch":
			return fmt.Errorf("%w: %w", ErrChecksum, err)
		}
	}
	return err
}

// notFound reports whether err says the object is missing. A HEAD
// response has no body, so a missing object and a missing bucket both
// show as NotFound there.
func notFound(err error) bool {
	var nsk *types.NoSuchKey
	var nf *types.NotFound
	if errors.As(err, &nsk) || errors.As(err, &nf) {
		return true
	}
	var ae smithy.APIError
	return errors.As(err, &ae) && (ae.ErrorCode() == "NoSuchKey" || ae.ErrorCode() == "NotFound")
}

// wrap adds op and key to err, as ErrNotExist if it says so.
func wrap(op, key string, err error) error {
	if notFound(err) {
		return fmt.Errorf("blob: %s %s: %w", op, key, ErrNotExist)
	}
	return fmt.Errorf("blob: %s %s: %w", op, key, err)
}

// parseSum returns the SHA-256 in the metadata m, or nil.
func parseSum(m map[string]string) []byte {
	sum, err := hex.DecodeString(m[metaSHA256])
	if err != nil || len(sum) != sha256.Size {
		return nil
	}
	return sum
}

// Open gets key's object.
func (s *S3) Open(ctx context.Context, key string) (io.ReadCloser, Info, error) {
	if err := CheckKey(key); err != nil {
		return nil, Info{}, err
	}
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{
		Bucket: aws.String(s.bucket),
		Key:    aws.String(s.prefix + key),
	})
	if err != nil {
		return nil, Info{}, wrap("open", key, err)
	}
	return out.Body, Info{Key: key, Size: aws.ToInt64(out.ContentLength), SHA256: parseSum(out.Metadata)}, nil
}

// Stat heads key's object.
func (s *S3) Stat(ctx context.Context, key string) (Info, error) {
	if err := CheckKey(key); err != nil {
		return Info{}, err
	}
	out, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{
		Bucket: aws.String(s.bucket),
		Key:    aws.String(s.prefix + key),
	})
	if err != nil {
		return Info{}, wrap("stat", key, err)
	}
	return Info{Key: key, Size: aws.ToInt64(out.ContentLength), SHA256: parseSum(out.Metadata)}, nil
}

// Delete deletes key's object.
func (s *S3) Delete(ctx context.Context, key string) error {
	if err := CheckKey(key); err != nil {
		return err
	}
	_, err := s.client.DeleteObject(ctx, &s3.DeleteObjectInput{
		Bucket: aws.String(s.bucket),
		Key:    aws.String(s.prefix + key),
	})
	if err != nil && !notFound(err) {
		return wrap("delete", key, err)
	}
	return nil
}

// List lists the bucket a page at a time. Info.SHA256 is nil: a listing
// has no metadata, and a HEAD per object would make it slow.
func (s *S3) List(ctx context.Context, prefix string, fn func(Info) error) error {
	if strings.ContainsAny(prefix, "\\\x00") || strings.HasPrefix(prefix, "/") {
		return fmt.Errorf("blob: list: invalid prefix %q", prefix)
	}
	p := s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{
		Bucket: aws.String(s.bucket),
		Prefix: aws.String(s.prefix + prefix),
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("blob: list %s: %w", prefix, err)
		}
		for _, o := range page.Contents {
			key := strings.TrimPrefix(aws.ToString(o.Key), s.prefix)
			if err := fn(Info{Key: key, Size: aws.ToInt64(o.Size)}); err != nil {
				return err
			}
		}
	}
	return nil
}

// CreateBucket creates the store's bucket if the server does not hold it
// yet: for a new region, or a test's bucket of its own. A data centre
// usually creates buckets itself, with its lifecycle rules (see
// docs/scale-out.md), and gives the collectors no right to.
func (s *S3) CreateBucket(ctx context.Context) error {
	_, err := s.client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(s.bucket)})
	if err == nil {
		return nil
	}
	if _, err := s.client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(s.bucket)}); err != nil {
		return fmt.Errorf("blob: create bucket %s: %w", s.bucket, err)
	}
	return nil
}
