package filehash

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

func TestFile(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []int{0, 1, bufSize - 1, bufSize, 3*bufSize + 7} {
		data := bytes.Repeat([]byte{byte(n), 0x5a, 0xc3}, n/3+1)[:n]
		path := filepath.Join(dir, "f")
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		sum, size, err := File(path)
		want := sha256.Sum256(data)
		if err != nil || size != int64(n) || !bytes.Equal(sum, want[:]) {
			t.Errorf("%d bytes: File = %x, %d, %v; want %x, %d", n, sum, size, err, want, n)
		}
	}
}

func TestFileMissing(t *testing.T) {
	_, _, err := File(filepath.Join(t.TempDir(), "missing"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("File of a missing file: err = %v, want fs.ErrNotExist", err)
	}
}
