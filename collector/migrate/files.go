package migrate

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"

	bolt "go.etcd.io/bbolt"

	"idk/collector/blob"
	"idk/collector/store"
)

// copyFiles sends every file the index lists that the destination does
// not hold yet. A reservation for an upload never committed (Pending) is
// no file and is skipped.
func (m *migrator) copyFiles(ctx context.Context, tx *bolt.Tx) error {
	var seen, sent int
	var sentBytes int64
	err := m.eachFile(ctx, tx, func(ctx context.Context, e store.FileEntry) error {
		up, err := m.putFile(ctx, e)
		if err != nil {
			return err
		}
		m.mu.Lock()
		defer m.mu.Unlock()
		seen++
		if up {
			sent++
			sentBytes += e.Size
			m.sum.Uploaded++
			m.sum.UploadedBytes += e.Size
		}
		if seen%m.cfg.LogEvery == 0 {
			m.log.Info("files", "seen", seen, "sent", sent, "sent_bytes", sentBytes, "problems", len(m.sum.Problems))
		}
		return nil
	})
	m.log.Info("files done", "seen", seen, "sent", sent, "sent_bytes", sentBytes)
	return err
}

// putFile sends the file of e unless the destination holds it already,
// and reports whether it sent it. A file that is not as the index says,
// locally or in the destination, is a problem, not an error: the others
// go on. An error is a failure of the destination, which a new run may not
// meet.
func (m *migrator) putFile(ctx context.Context, e store.FileEntry) (bool, error) {
	key := e.StoredAs
	sum, ok := m.entrySum(e)
	if !ok {
		return false, nil
	}
	info, err := m.cfg.Files.Stat(ctx, key)
	switch {
	case err == nil && info.Size == e.Size && bytes.Equal(info.SHA256, sum):
		// Sent by an earlier run, whose put the server checked against
		// this sum: the local file need not be read again.
		return false, nil
	case err == nil:
		m.fileProblem(key, "the destination holds other content under this key (%d bytes, SHA-256 %x; the index: %d bytes, %s): not replaced",
			info.Size, info.SHA256, e.Size, e.SHA256)
		return false, nil
	case !errors.Is(err, blob.ErrNotExist):
		return false, fmt.Errorf("migrate: file %s: %w", key, err)
	}
	path := filepath.Join(m.cfg.Root, filepath.FromSlash(key))
	// Checked here although the server checks the sum too: a file
	// damaged on the collector's disk is then reported as that, and no
	// request is spent on it.
	if err := checkLocal(path, e.Size, sum); err != nil {
		m.fileProblem(key, "%v: not sent", err)
		return false, nil
	}
	err = m.cfg.Files.PutFile(ctx, key, path, e.Size, sum)
	switch {
	case errors.Is(err, blob.ErrChecksum):
		m.fileProblem(key, "the content sent did not match the index's SHA-256 (changed while sent?): %v", err)
		return false, nil
	case errors.Is(err, blob.ErrExist):
		m.fileProblem(key, "the destination got other content under this key meanwhile: %v", err)
		return false, nil
	case err != nil:
		return false, fmt.Errorf("migrate: file %s: %w", key, err)
	}
	return true, nil
}

// entrySum returns the SHA-256 e records, or reports e and returns false.
func (m *migrator) entrySum(e store.FileEntry) ([]byte, bool) {
	if err := blob.CheckKey(e.StoredAs); err != nil {
		m.fileProblem(e.StoredAs, "the index's path is no object key: %v", err)
		return nil, false
	}
	sum, err := hex.DecodeString(e.SHA256)
	if err != nil || len(sum) != sha256.Size {
		m.fileProblem(e.StoredAs, "the index's SHA-256 %q is not one", e.SHA256)
		return nil, false
	}
	return sum, true
}

// checkLocal hashes the file at path and compares it with what the index
// says it is.
func checkLocal(path string, size int64, sum []byte) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("the local file cannot be read: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return fmt.Errorf("the local file cannot be read: %w", err)
	}
	if n != size {
		return fmt.Errorf("the local file has %d bytes, the index says %d", n, size)
	}
	if got := h.Sum(nil); !bytes.Equal(got, sum) {
		return fmt.Errorf("the local file has SHA-256 %x, the index says %x", got, sum)
	}
	return nil
}

func (m *migrator) fileProblem(key, format string, args ...any) {
	m.mu.Lock()
	m.reported[key] = true
	m.mu.Unlock()
	m.problem(key, format, args...)
}

// verifyFiles compares what the destination says of every file the index
// lists with the index: the size and the SHA-256 recorded when it was put,
// which the server checked the content against. Files already reported
// are not reported again.
func (m *migrator) verifyFiles(ctx context.Context, tx *bolt.Tx) error {
	return m.eachFile(ctx, tx, func(ctx context.Context, e store.FileEntry) error {
		m.mu.Lock()
		done := m.reported[e.StoredAs]
		m.mu.Unlock()
		if done {
			return nil
		}
		sum, ok := m.entrySum(e)
		if !ok {
			return nil
		}
		info, err := m.cfg.Files.Stat(ctx, e.StoredAs)
		switch {
		case errors.Is(err, blob.ErrNotExist):
			m.fileProblem(e.StoredAs, "not in the destination")
			return nil
		case err != nil:
			return fmt.Errorf("migrate: verify file %s: %w", e.StoredAs, err)
		case info.Size != e.Size || !bytes.Equal(info.SHA256, sum):
			m.fileProblem(e.StoredAs, "the destination holds %d bytes with SHA-256 %x; the index says %d bytes, %s", info.Size, info.SHA256, e.Size, e.SHA256)
			return nil
		}
		m.mu.Lock()
		m.sum.Files++
		m.sum.Bytes += e.Size
		m.mu.Unlock()
		return nil
	})
}

// eachFile calls fn for each committed file of the index, on
// Config.Workers goroutines. The first error fn returns stops the rest and
// is returned.
func (m *migrator) eachFile(ctx context.Context, tx *bolt.Tx, fn func(context.Context, store.FileEntry) error) error {
	b := tx.Bucket([]byte(bucketFiles))
	if b == nil {
		return nil
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	jobs := make(chan store.FileEntry)
	var wg sync.WaitGroup
	for range m.cfg.Workers {
		wg.Go(func() {
			for e := range jobs {
				if ctx.Err() != nil {
					continue // stopping: drain
				}
				if err := fn(ctx, e); err != nil {
					cancel(err)
				}
			}
		})
	}
	err := b.ForEach(func(k, v []byte) error {
		var e store.FileEntry
		if err := json.Unmarshal(v, &e); err != nil {
			// Both passes meet it: reported once.
			subject := fmt.Sprintf("bucket %s key %q", bucketFiles, k)
			m.mu.Lock()
			done := m.reported[subject]
			m.mu.Unlock()
			if !done {
				m.fileProblem(subject, "no file entry: %v", err)
			}
			return nil
		}
		if e.Pending {
			return nil
		}
		select {
		case jobs <- e:
			return nil
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	})
	close(jobs)
	wg.Wait()
	if cause := context.Cause(ctx); cause != nil {
		return cause
	}
	return err
}
