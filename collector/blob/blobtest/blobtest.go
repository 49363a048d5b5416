// Package blobtest gives tests a bucket of their own on the test S3
// server, removed with its objects when the test ends, and a raw client
// to look at or tamper with objects as only someone with the server's
// keys could.
package blobtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"idk/collector/blob"
	"idk/internal/testenv"
)

// Bucket is a test's bucket on the test S3 server.
type Bucket struct {
	Name   string
	Env    testenv.S3Env
	Client *s3.Client // raw, behind blob's back
}

// New makes a bucket named prefix and a random suffix on the server that
// IDK_TEST_S3_* names (the test ends as testenv.Require does without
// one), and removes it with its objects when the test ends.
func New(t testing.TB, prefix string) Bucket {
	t.Helper()
	env := testenv.S3(t)
	r := make([]byte, 6)
	_, _ = rand.Read(r) // crypto/rand.Read does not fail
	b := Bucket{Name: prefix + hex.EncodeToString(r), Env: env}
	creds := aws.Credentials{AccessKeyID: env.AccessKey, SecretAccessKey: env.SecretKey}
	b.Client = s3.New(s3.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(env.Endpoint),
		UsePathStyle: true,
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return creds, nil
		}),
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := b.Client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(b.Name)}); err != nil {
		t.Fatalf("create bucket %s: %v", b.Name, err)
	}
	t.Cleanup(func() {
		// t.Context is done by the time cleanups run.
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := b.remove(ctx); err != nil {
			t.Errorf("remove bucket %s: %v", b.Name, err)
		}
	})
	return b
}

// remove deletes the bucket's objects and then the bucket.
func (b Bucket) remove(ctx context.Context) error {
	keys, err := b.Keys(ctx)
	if err != nil {
		return err
	}
	for _, k := range keys {
		// A failure shows as the bucket's removal failing.
		_, _ = b.Client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(b.Name), Key: aws.String(k)})
	}
	_, err = b.Client.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String(b.Name)})
	return err
}

// Config is the configuration for blob.NewS3 of a store in the bucket
// under keyPrefix ("" for none).
func (b Bucket) Config(keyPrefix string) blob.S3Config {
	return blob.S3Config{Endpoint: b.Env.Endpoint, Bucket: b.Name, Prefix: keyPrefix,
		AccessKey: b.Env.AccessKey, SecretKey: b.Env.SecretKey}
}

// Keys returns the keys of the bucket's objects, the store's prefix
// included.
func (b Bucket) Keys(ctx context.Context) ([]string, error) {
	var keys []string
	p := s3.NewListObjectsV2Paginator(b.Client, &s3.ListObjectsV2Input{Bucket: aws.String(b.Name)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, err
		}
		for _, o := range page.Contents {
			keys = append(keys, aws.ToString(o.Key))
		}
	}
	return keys, nil
}
