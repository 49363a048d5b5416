package store

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"

	"idk/collector/kv/pgkv"
	"idk/internal/testenv"
	"idk/simulator/simclock"
)

// The index in PostgreSQL, as a region's collectors share it: the same
// round trip as with bbolt, and a window of uploads committed at once
// through the group commit (whose transactions PostgreSQL may retry).
func TestStorePostgresIndex(t *testing.T) {
	dsn := testenv.Postgres(t)
	open := func() *Store {
		t.Helper()
		db, err := pgkv.Open(context.Background(), dsn)
		if err != nil {
			t.Fatal(err)
		}
		s, err := Open(t.TempDir(), Options{Location: msk, Clock: simclock.New(t0), Index: db})
		if err != nil {
			db.Close()
			t.Fatal(err)
		}
		return s
	}
	s := open()
	roundTrip(t, s)

	const n = 8
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			data := bytes.Repeat([]byte{byte(i)}, 3000+i)
			if _, err := send(t, s, offerFor("S32", fmt.Sprintf("f%d.raw", i), data), data, 1024); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// Another collector of the region (another root) sees what this one
	// indexed.
	s = open()
	defer s.Close()
	if files, err := s.Files(dev.NumIdk); err != nil || len(files) != 3+n {
		t.Fatalf("%d files seen through the shared index, want %d: %v", len(files), 3+n, err)
	}
}
