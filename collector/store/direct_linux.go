package store

import (
	"os"
	"syscall"
)

// directFile opens path for writing with O_DIRECT: writes go from the
// caller's memory to the disk, not through the page cache.
func directFile(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_WRONLY|syscall.O_DIRECT, 0)
}
