package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"time"

	"idk/collector/blob"
	"idk/protocol/idkpb"
)

// smallOpTimeout bounds what the store asks of Options.Files where no
// caller's context bounds it: a look at an object at an offer, and the
// put of a form, which holds the index's write transaction meanwhile. A
// server that hangs must not stall every upload behind it.
const smallOpTimeout = 2 * time.Minute

// LocalFiles reports whether the stored files are under Root (no
// Options.Files): only then may a reader hard-link or open them there.
func (s *Store) LocalFiles() bool { return s.files == nil }

// OpenFile opens the stored file storedAs (a FileEntry.StoredAs) wherever
// the store keeps it: under the root, or in Options.Files. It returns the
// content, which the caller closes, and its size. A file that is not
// there gives an error wrapping fs.ErrNotExist in either place.
func (s *Store) OpenFile(ctx context.Context, storedAs string) (io.ReadCloser, int64, error) {
	// Both places refuse a path that could leave the tree: the index is
	// trusted, but a name from a request may reach here.
	if err := blob.CheckKey(storedAs); err != nil {
		return nil, 0, fmt.Errorf("store: open %q: %w", storedAs, err)
	}
	if s.files != nil {
		rc, info, err := s.files.Open(ctx, storedAs)
		if errors.Is(err, blob.ErrNotExist) {
			return nil, 0, fmt.Errorf("store: open %s: %w: %w", storedAs, fs.ErrNotExist, err)
		}
		if err != nil {
			return nil, 0, fmt.Errorf("store: open %s: %w", storedAs, err)
		}
		return rc, info.Size, nil
	}
	f, err := os.Open(filepath.Join(s.root, filepath.FromSlash(storedAs)))
	if err != nil {
		return nil, 0, fmt.Errorf("store: open %s: %w", storedAs, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("store: open %s: %w", storedAs, err)
	}
	return f, fi.Size(), nil
}

// commitBlob puts the upload's synced and checked partial file into
// Options.Files, then drops it and records the file: the agent is told
// only once the bucket has confirmed the content and the index lists it.
// A crash after the put leaves an unrecorded object, which the next offer
// adopts (adoptBlobOrphan).
func (u *Upload) commitBlob(ctx context.Context) (string, error) {
	key := path.Join(u.scan.Dir, u.storedAs)
	// The name was reserved for this content: an object with other bytes
	// under it was never recorded (adoptBlobOrphan deleted such objects
	// at the offer), and PutFile refuses rather than replace one that
	// appeared since. The partial stays then, for the next offer.
	if err := u.s.files.PutFile(ctx, key, u.partial, int64(u.offset), u.offer.Sha256); err != nil {
		return "", fmt.Errorf("store: put %s: %w", key, err)
	}
	// blob.Local moves the partial in; S3 copies it, and it goes now.
	if err := os.Remove(u.partial); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("store: %w", err)
	}
	os.Remove(filepath.Dir(u.partial)) // the scan's partials folder, once empty
	if err := u.s.record(u.dev, u.offer, u.scan, u.storedAs, int64(u.offset)); err != nil {
		return "", err
	}
	return key, nil
}

// adoptBlobOrphan is adoptOrphan for Options.Files: an object under the
// reserved name that the index does not record is a put whose record a
// crash prevented. With the offered content it is recorded now; with
// other content it was never acknowledged to anyone, and it is deleted
// (a bucket has no cheap rename to move it aside) so the upload can take
// the name.
func (s *Store) adoptBlobOrphan(dev *idkpb.Device, o *idkpb.FileOffer, sc ScanEntry, storedAs, _ string) (bool, error) {
	key := path.Join(sc.Dir, storedAs)
	ctx, cancel := context.WithTimeout(context.Background(), smallOpTimeout)
	defer cancel()
	info, err := s.files.Stat(ctx, key)
	if errors.Is(err, blob.ErrNotExist) {
		return false, nil
	} else if err != nil {
		return false, fmt.Errorf("store: check %s: %w", key, err)
	}
	sum := info.SHA256
	if sum == nil && info.Size == int64(o.Size) {
		// Put by other means, without the SHA-256 in its metadata: the
		// content itself tells. Reading it takes what its size takes.
		if sum, _, err = s.hashObject(context.Background(), key); err != nil && !errors.Is(err, blob.ErrNotExist) {
			return false, err
		}
	}
	if info.Size == int64(o.Size) && bytes.Equal(sum, o.Sha256) {
		return true, s.record(dev, o, sc, storedAs, info.Size)
	}
	s.log.Warn("unrecorded object with other content under a reserved name deleted", "key", key,
		"size", info.Size, "sha256", hex.EncodeToString(sum))
	// A fresh bound: reading the object above may have used up ctx's.
	dctx, dcancel := context.WithTimeout(context.Background(), smallOpTimeout)
	defer dcancel()
	if err := s.files.Delete(dctx, key); err != nil {
		return false, fmt.Errorf("store: delete unrecorded %s: %w", key, err)
	}
	return false, nil
}

// hashObject reads key's object through SHA-256, returning the sum and
// the bytes read.
func (s *Store) hashObject(ctx context.Context, key string) ([]byte, int64, error) {
	rc, _, err := s.files.Open(ctx, key)
	if err != nil {
		return nil, 0, fmt.Errorf("store: read %s: %w", key, err)
	}
	defer rc.Close()
	h := sha256.New()
	n, err := io.Copy(h, rc)
	if err != nil {
		return nil, n, fmt.Errorf("store: read %s: %w", key, err)
	}
	return h.Sum(nil), n, nil
}

// putFormBlob puts a form's content into Options.Files under key. It runs
// inside the index transaction that records the form: an object left by
// a transaction that rolled back (or that PostgreSQL retries) may hold
// the name. With the same content the put succeeds as it is; with other
// content it was never recorded, and it is replaced, once.
func (s *Store) putFormBlob(key string, content, sum []byte) error {
	ctx, cancel := context.WithTimeout(context.Background(), smallOpTimeout)
	defer cancel()
	// blob.Store puts files, which S3 can send again on a retry: the
	// form goes through a temporary file in the staging area.
	tmp, err := os.CreateTemp(filepath.Join(s.root, ".incoming"), ".form-*")
	if err != nil {
		return fmt.Errorf("store: form %s: %w", key, err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(content)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("store: form %s: write %s: %w", key, tmp.Name(), err)
	}
	err = s.files.PutFile(ctx, key, tmp.Name(), int64(len(content)), sum)
	if errors.Is(err, blob.ErrExist) {
		s.log.Warn("unrecorded form object with other content replaced", "key", key)
		if err := s.files.Delete(ctx, key); err != nil {
			return fmt.Errorf("store: form %s: delete unrecorded object: %w", key, err)
		}
		err = s.files.PutFile(ctx, key, tmp.Name(), int64(len(content)), sum)
	}
	if err != nil {
		return fmt.Errorf("store: form %s: %w", key, err)
	}
	return nil
}

// hashStored returns the SHA-256 (hex) and size of the stored file
// storedAs, read in full from where the store keeps it. A missing file
// gives an error wrapping fs.ErrNotExist.
func (s *Store) hashStored(storedAs string) (string, int64, error) {
	if s.files == nil {
		return hashPath(filepath.Join(s.root, filepath.FromSlash(storedAs)))
	}
	sum, n, err := s.hashObject(context.Background(), storedAs)
	if errors.Is(err, blob.ErrNotExist) {
		return "", 0, fmt.Errorf("%w: %w", fs.ErrNotExist, err)
	}
	return hex.EncodeToString(sum), n, err
}
