package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
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
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dsn, drop, err := NewPostgresDB(ctx, admin, "idk_test_")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := drop(ctx); err != nil {
			t.Error(err)
		}
	})
	return dsn
}

// NewPostgresDB creates a database with a random name that starts with
// prefix on the server of admin, a postgres:// URL of a role that may
// create databases, and returns the same URL naming it, and what drops it
// (WITH (FORCE): it ends the sessions left open, such as a killed child
// process's). For harnesses that are not tests themselves.
func NewPostgresDB(ctx context.Context, admin, prefix string) (dsn string, drop func(context.Context) error, err error) {
	u, err := url.Parse(admin)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return "", nil, fmt.Errorf("testenv: %q is not a postgres:// URL", admin)
	}
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read does not fail
	name := prefix + hex.EncodeToString(b[:])
	if err := pgExec(ctx, admin, "CREATE DATABASE "+name); err != nil {
		return "", nil, err
	}
	u.Path = "/" + name
	u.RawPath = ""
	drop = func(ctx context.Context) error {
		return pgExec(ctx, admin, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
	}
	return u.String(), drop, nil
}

// pgExec runs one statement on a connection of its own to dsn.
func pgExec(ctx context.Context, dsn, sql string) error {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return fmt.Errorf("testenv: connect to the test PostgreSQL: %w", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql); err != nil {
		return fmt.Errorf("testenv: %s: %w", sql, err)
	}
	return nil
}
