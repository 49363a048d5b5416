// Package blob keeps the collector's files: a folder tree on a local disk,
// or an S3-compatible bucket. An object counts as stored only once the
// backend has confirmed all of it with the SHA-256 the agent sent.
//
// Objects are write-once: they are evidence, so a store never replaces
// one with different content. Putting the same content again succeeds, so
// that a collector that crashed mid-put can simply retry.
package blob

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"
)

var (
	// ErrNotExist means no object is stored under the key.
	ErrNotExist = errors.New("blob: no such object")
	// ErrChecksum means the content differs from the SHA-256 given for it.
	ErrChecksum = errors.New("blob: checksum mismatch")
	// ErrExist means another object is already stored under the key, and
	// a put would have replaced it.
	ErrExist = errors.New("blob: a different object is stored under the key")
)

// Info describes a stored object.
type Info struct {
	Key    string
	Size   int64
	SHA256 []byte // as recorded at Put (nil if the backend has none)
}

// Store is where the collector keeps objects. Keys are slash-separated
// relative paths such as 0123/2026/11/28/SNIM-1/image.raw, the collector's
// folder tree, so that an operator recognises them in either backend.
type Store interface {
	// PutFile moves the complete, already verified local file at path
	// (size bytes, SHA-256 sum) into the store under key. It returns only
	// once the backend holds all of it durably and has confirmed the sum;
	// content that does not match sum is refused with an error wrapping
	// ErrChecksum. The local file may be gone afterwards (Local renames
	// it) or still there (S3 copies it; the caller removes it).
	//
	// Putting the same key again with the same size and sum succeeds (a
	// retry after a crash); if other content is stored under key, PutFile
	// refuses with an error wrapping ErrExist and leaves it as it is.
	PutFile(ctx context.Context, key, path string, size int64, sum []byte) error
	// Open returns the object's content, which the caller must close.
	Open(ctx context.Context, key string) (io.ReadCloser, Info, error)
	// Stat returns what is stored under key, or an error wrapping
	// ErrNotExist.
	Stat(ctx context.Context, key string) (Info, error)
	// Delete removes key; a missing key is no error.
	Delete(ctx context.Context, key string) error
	// List calls fn for each object whose key starts with prefix, in key
	// (byte) order. An error from fn stops the listing and is returned.
	List(ctx context.Context, prefix string, fn func(Info) error) error
}

// CheckKey reports whether key is acceptable as an object key: a relative,
// slash-separated path without empty, "." or ".." segments, backslashes or
// NUL bytes. Such a key means the same in a folder tree and in a bucket,
// and cannot escape the store's root.
func CheckKey(key string) error {
	var why string
	switch {
	case key == "":
		why = "empty"
	case strings.HasPrefix(key, "/"):
		why = "absolute"
	case strings.ContainsRune(key, '\\'):
		why = "contains a backslash"
	case strings.ContainsRune(key, 0):
		why = "contains a NUL byte"
	case key == "." || !fs.ValidPath(key):
		// fs.ValidPath refuses "." and ".." segments, empty segments
		// and a trailing slash.
		why = `has an empty, "." or ".." segment`
	default:
		return nil
	}
	return fmt.Errorf("blob: invalid key %q: %s", key, why)
}
