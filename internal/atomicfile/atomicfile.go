// Package atomicfile replaces a file's content atomically and durably: after
// a crash or a power cut the file holds either its old content or the new,
// never a mix, and a failed write leaves no temporary file behind.
package atomicfile

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
)

// syncFile is (*os.File).Sync; tests replace it to make a write fail
// after the temporary file exists.
var syncFile = (*os.File).Sync

// WriteFile writes data to path with mode perm, replacing any file there.
// It writes a temporary file in the same folder (named after path and
// starting with '.', so listings and globs pass it over), syncs it,
// renames it over path and syncs the folder, so that once WriteFile
// returns nil the new content survives a power cut. Only on Windows is the
// folder not synced: it cannot be, and NTFS journals the rename.
//
// The mode is set with Chmod, so the umask does not narrow it and it is the
// same on every machine; until then the file is readable by its owner only
// (os.CreateTemp makes it 0600), so a private key is never exposed.
func WriteFile(path string, data []byte, perm fs.FileMode) error {
	dir := filepath.Dir(path)
	tmp, err := writeTemp(dir, filepath.Base(path), data, perm)
	if err != nil {
		return fmt.Errorf("atomicfile: write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("atomicfile: write %s: %w", path, err)
	}
	return SyncDir(dir)
}

// writeTemp writes data to a new temporary file in dir, syncs it and
// returns its name. On error it leaves no file behind.
func writeTemp(dir, base string, data []byte, perm fs.FileMode) (name string, err error) {
	f, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return "", err
	}
	defer func() {
		if err != nil {
			f.Close() // a second Close after a failed one only reports it again
			os.Remove(f.Name())
		}
	}()
	if err := f.Chmod(perm); err != nil {
		return "", err
	}
	if _, err := f.Write(data); err != nil {
		return "", err
	}
	// Without this sync the rename could reach the disk before the data,
	// and a power cut would leave path empty.
	if err := syncFile(f); err != nil {
		return "", err
	}
	if err := f.Close(); err != nil {
		return "", err
	}
	return f.Name(), nil
}

// SyncDir makes the entries of folder dir durable: a file created, renamed
// or removed in it. On Windows it does nothing, as a folder cannot be
// synced there and NTFS journals such changes itself.
func SyncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("atomicfile: open folder %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("atomicfile: sync folder %s: %w", dir, err)
	}
	return nil
}
