package harness

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"idk/collector/blob"
	"idk/internal/testenv"
)

// Backends an Env's collector keeps its index and files in
// (Options.Backends).
const (
	// Embedded: bbolt and files under the store's root, one machine.
	Embedded = "embedded"
	// Region: the backends a region's collectors share, PostgreSQL and an
	// S3-compatible bucket (docs/scale-out.md): a database and a bucket
	// of the Env's own on the servers IDK_TEST_POSTGRES and
	// IDK_TEST_S3_ENDPOINT name (deploy/dev/services starts both).
	Region = "region"
)

// BackendsEnv, set to Region, puts every Env of the process on the
// region's backends: the end-to-end suite's second pass (make test).
const BackendsEnv = "IDK_E2E_BACKENDS"

// DefaultBackends is Options.Backends left empty: BackendsEnv's value, or
// Embedded.
func DefaultBackends() string {
	if b := os.Getenv(BackendsEnv); b != "" {
		return b
	}
	return Embedded
}

// errNoRegion says the region's backends are asked for but not there.
var errNoRegion = errors.New("harness: the region's backends are not set up: IDK_TEST_POSTGRES, IDK_TEST_S3_ENDPOINT, IDK_TEST_S3_ACCESS_KEY, IDK_TEST_S3_SECRET_KEY (make services; . .services/env)")

// RegionReady reports whether the environment names the region's
// backends, as Region needs.
func RegionReady() bool {
	for _, v := range []string{"IDK_TEST_POSTGRES", "IDK_TEST_S3_ENDPOINT", "IDK_TEST_S3_ACCESS_KEY", "IDK_TEST_S3_SECRET_KEY"} {
		if os.Getenv(v) == "" {
			return false
		}
	}
	return true
}

// regionBackends are an Env's database and bucket.
type regionBackends struct {
	dsn   string
	files *blob.S3
}

// newRegion makes the Env's database and bucket and writes the key files
// into dir; it returns the [region] section of collector.toml.
func newRegion(dir string) (*regionBackends, string, error) {
	if !RegionReady() {
		return nil, "", errNoRegion
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// Databases and buckets outlive the Env (a killed collector's session
	// would hold the database): the servers deploy/dev/services starts are
	// thrown away whole.
	dsn, _, err := testenv.NewPostgresDB(ctx, os.Getenv("IDK_TEST_POSTGRES"), "idk_e2e_")
	if err != nil {
		return nil, "", fmt.Errorf("harness: %w", err)
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	cfg := blob.S3Config{
		Endpoint:  os.Getenv("IDK_TEST_S3_ENDPOINT"),
		Bucket:    "idk-e2e-" + hex.EncodeToString(b[:]),
		AccessKey: os.Getenv("IDK_TEST_S3_ACCESS_KEY"),
		SecretKey: os.Getenv("IDK_TEST_S3_SECRET_KEY"),
		Prefix:    "idk/",
		// The smallest parts S3 allows, so that the suite's images go
		// in several.
		PartSize: blob.MinPartSize,
	}
	files, err := blob.NewS3(cfg)
	if err != nil {
		return nil, "", fmt.Errorf("harness: %w", err)
	}
	if err := files.CreateBucket(ctx); err != nil {
		return nil, "", fmt.Errorf("harness: %w", err)
	}
	for name, v := range map[string]string{"s3-access.key": cfg.AccessKey, "s3-secret.key": cfg.SecretKey} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(v+"\n"), 0o600); err != nil {
			return nil, "", err
		}
	}
	section := fmt.Sprintf(`[region]
postgres = %q
[region.s3]
endpoint = %q
bucket = %q
prefix = %q
access_key_file = "s3-access.key"
secret_key_file = "s3-secret.key"
part_size = %d
`, dsn, cfg.Endpoint, cfg.Bucket, cfg.Prefix, cfg.PartSize)
	return &regionBackends{dsn: dsn, files: files}, section, nil
}
