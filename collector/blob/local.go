package blob

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"idk/internal/atomicfile"
)

// Local is a Store in a folder tree on a local disk: the object under key
// a/b/c is the file root/a/b/c. It records no SHA-256 beside a file, so
// its Info.SHA256 is always nil.
type Local struct {
	root string
}

var _ Store = (*Local)(nil)

// NewLocal returns a store in the folder root, which must exist: a missing
// root is more likely an unmounted disk than a folder to create, and
// objects written to the disk underneath would be lost from view.
func NewLocal(root string) (*Local, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("blob: local store root %s: %w", root, err)
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return nil, fmt.Errorf("blob: local store root: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("blob: local store root %s: not a folder", abs)
	}
	return &Local{root: abs}, nil
}

// file returns the name of key's file; key must have passed CheckKey.
func (l *Local) file(key string) string {
	return filepath.Join(l.root, filepath.FromSlash(key))
}

// PutFile hashes and syncs the file at path, then links it under key and
// removes path, so that an object is never replaced even by a concurrent
// put. The file must be on the same file system as the store's root.
func (l *Local) PutFile(ctx context.Context, key, src string, size int64, sum []byte) error {
	if err := CheckKey(key); err != nil {
		return err
	}
	if len(sum) != sha256.Size {
		return fmt.Errorf("blob: put %s: SHA-256 sum has %d bytes, want %d", key, len(sum), sha256.Size)
	}
	dst := l.file(key)
	switch err := sameFile(dst, size, sum); {
	case err == nil: // a retry: the first put got this far
		return removeSource(key, src)
	case !errors.Is(err, ErrNotExist):
		return fmt.Errorf("blob: put %s: %w", key, err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("blob: put %s: %w", key, err)
	}
	if err := checkAndSync(src, size, sum); err != nil {
		return fmt.Errorf("blob: put %s: %w", key, err)
	}
	dir := filepath.Dir(dst)
	if err := mkdirAll(dir); err != nil {
		return fmt.Errorf("blob: put %s: %w", key, err)
	}
	// A hard link, unlike a rename, fails if dst exists, so a concurrent
	// put of other content cannot replace an object. File systems without
	// hard links get a rename, after the check above.
	err := os.Link(src, dst)
	switch {
	case errors.Is(err, fs.ErrExist):
		if err := sameFile(dst, size, sum); err != nil {
			return fmt.Errorf("blob: put %s: %w", key, err)
		}
	case errors.Is(err, syscall.EXDEV):
		return fmt.Errorf("blob: put %s: %s is on another file system than the store: %w", key, src, err)
	case err != nil:
		if err := os.Rename(src, dst); err != nil {
			return fmt.Errorf("blob: put %s: %w", key, err)
		}
	}
	if err := removeSource(key, src); err != nil {
		return err
	}
	if err := atomicfile.SyncDir(dir); err != nil {
		return fmt.Errorf("blob: put %s: %w", key, err)
	}
	return nil
}

// removeSource removes the put file src, if it is still there.
func removeSource(key, src string) error {
	if err := os.Remove(src); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("blob: put %s: remove %s: %w", key, src, err)
	}
	return nil
}

// sameFile returns nil if the file name holds size bytes with SHA-256
// sum, an error wrapping ErrNotExist if there is no such file, and one
// wrapping ErrExist if it holds something else.
func sameFile(name string, size int64, sum []byte) error {
	f, err := os.Open(name)
	if err != nil {
		if notExist(err) {
			return ErrNotExist
		}
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%w: %s is not a regular file", ErrExist, name)
	}
	if fi.Size() != size {
		return fmt.Errorf("%w: %s holds %d bytes, not %d", ErrExist, name, fi.Size(), size)
	}
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return fmt.Errorf("read %s: %w", name, err)
	}
	if got := h.Sum(nil); !bytes.Equal(got, sum) {
		return fmt.Errorf("%w: %s has SHA-256 %x, not %x", ErrExist, name, got, sum)
	}
	return nil
}

// checkAndSync checks that the file name holds size bytes with SHA-256
// sum and makes its content durable before it becomes an object.
func checkAndSync(name string, size int64, sum []byte) error {
	f, err := os.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return fmt.Errorf("read %s: %w", name, err)
	}
	if n != size {
		return fmt.Errorf("%w: %s holds %d bytes, not %d", ErrChecksum, name, n, size)
	}
	if got := h.Sum(nil); !bytes.Equal(got, sum) {
		return fmt.Errorf("%w: %s has SHA-256 %x, not %x", ErrChecksum, name, got, sum)
	}
	// Linux syncs a file opened for reading; the writer may not have.
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", name, err)
	}
	return nil
}

// mkdirAll is os.MkdirAll, but syncs the parent of each folder it
// creates, so that after a power cut the object's path still leads to it.
func mkdirAll(dir string) error {
	fi, err := os.Stat(dir)
	if err == nil {
		if !fi.IsDir() {
			return fmt.Errorf("%s is not a folder", dir)
		}
		return nil
	}
	if !notExist(err) {
		return err
	}
	parent := filepath.Dir(dir)
	if parent == dir {
		return err
	}
	if err := mkdirAll(parent); err != nil {
		return err
	}
	if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	return atomicfile.SyncDir(parent)
}

// notExist reports whether err says a file is missing, including the
// ENOTDIR of a path through a file.
func notExist(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR)
}

// Open opens key's file.
func (l *Local) Open(ctx context.Context, key string) (io.ReadCloser, Info, error) {
	if err := CheckKey(key); err != nil {
		return nil, Info{}, err
	}
	f, err := os.Open(l.file(key))
	if err != nil {
		return nil, Info{}, l.statError("open", key, err)
	}
	fi, err := f.Stat()
	if err == nil && !fi.Mode().IsRegular() {
		err = fs.ErrNotExist // a folder on the way to other keys
	}
	if err != nil {
		f.Close()
		return nil, Info{}, l.statError("open", key, err)
	}
	return f, Info{Key: key, Size: fi.Size()}, nil
}

// Stat returns key's size.
func (l *Local) Stat(ctx context.Context, key string) (Info, error) {
	if err := CheckKey(key); err != nil {
		return Info{}, err
	}
	fi, err := os.Stat(l.file(key))
	if err == nil && !fi.Mode().IsRegular() {
		err = fs.ErrNotExist
	}
	if err != nil {
		return Info{}, l.statError("stat", key, err)
	}
	return Info{Key: key, Size: fi.Size()}, nil
}

// statError wraps err from op on key, as ErrNotExist if it says so.
func (l *Local) statError(op, key string, err error) error {
	if notExist(err) {
		return fmt.Errorf("blob: %s %s: %w", op, key, ErrNotExist)
	}
	return fmt.Errorf("blob: %s %s: %w", op, key, err)
}

// Delete removes key's file. Folders left empty stay: another put may be
// about to use them.
func (l *Local) Delete(ctx context.Context, key string) error {
	if err := CheckKey(key); err != nil {
		return err
	}
	name := l.file(key)
	fi, err := os.Lstat(name)
	if notExist(err) || err == nil && fi.IsDir() {
		return nil
	}
	if err != nil {
		return fmt.Errorf("blob: delete %s: %w", key, err)
	}
	if err := os.Remove(name); err != nil && !notExist(err) {
		return fmt.Errorf("blob: delete %s: %w", key, err)
	}
	if err := atomicfile.SyncDir(filepath.Dir(name)); err != nil {
		return fmt.Errorf("blob: delete %s: %w", key, err)
	}
	return nil
}

// List walks the folders that can hold keys starting with prefix. It
// orders each folder's entries as their keys sort, which is not the order
// of their names: "a.txt" comes before "a/b", as '.' is before '/', yet
// the folder a is before the file a.txt.
func (l *Local) List(ctx context.Context, prefix string, fn func(Info) error) error {
	if strings.ContainsAny(prefix, "\\\x00") || strings.HasPrefix(prefix, "/") {
		return fmt.Errorf("blob: list: invalid prefix %q", prefix)
	}
	// Start in the deepest folder that the prefix names in full.
	dir := ""
	if i := strings.LastIndexByte(prefix, '/'); i >= 0 {
		dir = prefix[:i]
		if CheckKey(dir) != nil {
			return fmt.Errorf("blob: list: invalid prefix %q", prefix)
		}
	}
	// An error from fn is returned as it is, not as a failure to list.
	var fnErr error
	err := l.walk(ctx, dir, prefix, func(i Info) error {
		fnErr = fn(i)
		return fnErr
	})
	if fnErr != nil {
		return fnErr
	}
	if err != nil {
		return fmt.Errorf("blob: list %s: %w", prefix, err)
	}
	return nil
}

// walk calls fn for the files in the folder dir (a key, or "" for the
// root) and below whose keys start with prefix, in key order.
func (l *Local) walk(ctx context.Context, dir, prefix string, fn func(Info) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	name := l.root
	if dir != "" {
		name = l.file(dir)
	}
	entries, err := os.ReadDir(name)
	if err != nil {
		if notExist(err) {
			return nil
		}
		return err
	}
	type entry struct {
		sortKey string // the key, with a trailing slash for a folder
		de      fs.DirEntry
	}
	var list []entry
	for _, de := range entries {
		key := path.Join(dir, de.Name())
		if de.IsDir() {
			key += "/"
		}
		// Keep what starts with prefix, and folders that prefix goes into.
		if strings.HasPrefix(key, prefix) || strings.HasPrefix(prefix, key) {
			list = append(list, entry{key, de})
		}
	}
	slices.SortFunc(list, func(a, b entry) int { return strings.Compare(a.sortKey, b.sortKey) })
	for _, e := range list {
		if e.de.IsDir() {
			if err := l.walk(ctx, strings.TrimSuffix(e.sortKey, "/"), prefix, fn); err != nil {
				return err
			}
			continue
		}
		if !e.de.Type().IsRegular() || !strings.HasPrefix(e.sortKey, prefix) {
			continue
		}
		fi, err := e.de.Info()
		if notExist(err) {
			continue // deleted while we list
		}
		if err != nil {
			return err
		}
		if err := fn(Info{Key: e.sortKey, Size: fi.Size()}); err != nil {
			return err
		}
	}
	return nil
}
