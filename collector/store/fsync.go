package store

import (
	"fmt"
	"os"
	"path/filepath"

	"idk/internal/atomicfile"
)

// mkdirAllSync creates dir and syncs every parent whose entry changed, up
// to root, so the new folders survive a power cut.
func mkdirAllSync(root, dir string) error {
	if _, err := os.Stat(dir); err == nil {
		return nil
	}
	parent := filepath.Dir(dir)
	if parent != dir && parent != root {
		if err := mkdirAllSync(root, parent); err != nil {
			return err
		}
	}
	if err := os.Mkdir(dir, 0o750); err != nil && !os.IsExist(err) {
		return fmt.Errorf("store: create %s: %w", dir, err)
	}
	return syncDir(parent)
}

// syncDir makes a folder's entries durable.
func syncDir(dir string) error { return atomicfile.SyncDir(dir) }
