package testenv

import (
	"os"
	"testing"
)

// S3Env is where a test's S3-compatible server is (deploy/dev/services
// starts one).
type S3Env struct{ Endpoint, AccessKey, SecretKey string }

// S3 returns the server from IDK_TEST_S3_ENDPOINT, IDK_TEST_S3_ACCESS_KEY
// and IDK_TEST_S3_SECRET_KEY, or ends the test as Require does.
func S3(t testing.TB) S3Env {
	t.Helper()
	e := S3Env{
		Endpoint:  os.Getenv("IDK_TEST_S3_ENDPOINT"),
		AccessKey: os.Getenv("IDK_TEST_S3_ACCESS_KEY"),
		SecretKey: os.Getenv("IDK_TEST_S3_SECRET_KEY"),
	}
	Require(t, e.Endpoint != "" && e.AccessKey != "" && e.SecretKey != "",
		"no S3-compatible server: set IDK_TEST_S3_ENDPOINT, IDK_TEST_S3_ACCESS_KEY and IDK_TEST_S3_SECRET_KEY (deploy/dev/services starts one)")
	return e
}
