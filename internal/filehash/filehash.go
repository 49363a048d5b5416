// Package filehash computes the SHA-256 digest and size of a file,
// streaming it, so that memory does not grow with the file: scanner images
// run to gigabytes.
package filehash

import (
	"crypto/sha256"
	"fmt"
	"io"
	"os"
)

// bufSize is the read size. Large reads cost fewer system calls on
// multi-gigabyte images; 1 MiB is also the protocol's chunk size.
const bufSize = 1 << 20

// File returns the SHA-256 digest of the file at path and the number of
// bytes it read. Errors wrap the os errors, so a missing file matches
// fs.ErrNotExist.
func File(path string) (sum []byte, size int64, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, fmt.Errorf("filehash: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	// The struct hides (*os.File).WriteTo, which would otherwise take over
	// the copy with its own 32 KiB buffer.
	size, err = io.CopyBuffer(h, struct{ io.Reader }{f}, make([]byte, bufSize))
	if err != nil {
		return nil, size, fmt.Errorf("filehash: %w", err)
	}
	return h.Sum(nil), size, nil
}
