package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Postgres returns the DSN of a new, empty database for this test, created
// on the server IDK_TEST_POSTGRES names and dropped when the test ends
// (WITH (FORCE)), or ends the test as Require does when the variable is unset.
//
// IDK_TEST_POSTGRES is a postgres:// URL of a role that may create
// databases; the returned DSN is the same URL naming the new database. A
// database per test keeps tests apart, parallel or not, without cleaning
// up tables.
func Postgres(t testing.TB) string {
	t.Helper()
	admin := os.Getenv("IDK_TEST_POSTGRES")
	Require(t, admin != "", "IDK_TEST_POSTGRES is unset: set it to the postgres:// URL of a PostgreSQL 15 role that may create databases")
	u, err := url.Parse(admin)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		t.Fatalf("IDK_TEST_POSTGRES is not a postgres:// URL (%v)", err)
	}
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read does not fail
	name := "idk_test_" + hex.EncodeToString(b[:])

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pgExec(t, ctx, admin, "CREATE DATABASE "+name)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		// FORCE ends the sessions a test left open, such as a child
		// process's or a pool not yet closed.
		pgExec(t, ctx, admin, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
	})
	u.Path = "/" + name
	u.RawPath = ""
	return u.String()
}

// pgExec runs one statement on a connection of its own to dsn.
func pgExec(t testing.TB, ctx context.Context, dsn, sql string) {
	t.Helper()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect to IDK_TEST_POSTGRES: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}
