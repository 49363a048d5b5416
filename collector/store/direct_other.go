//go:build !linux

package store

import (
	"errors"
	"os"
)

// directFile is not offered here: partial files are written through the
// cache.
func directFile(string) (*os.File, error) {
	return nil, errors.New("store: no O_DIRECT on this system")
}
