// Package secretfile reads the one-line secrets (API tokens, keys,
// passwords) that configurations keep in files of their own, out of the
// configuration and its logs.
package secretfile

import (
	"errors"
	"fmt"
	"os"
	"strings"
)

// ErrEmpty is wrapped by Read's error for a file that holds only
// whitespace: a secret forgotten, not an empty one.
var ErrEmpty = errors.New("empty")

// Read returns the secret in the file at path, without the surrounding
// whitespace (the newline an editor adds). A missing file's error wraps
// fs.ErrNotExist.
func Read(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "", fmt.Errorf("%s is %w", path, ErrEmpty)
	}
	return s, nil
}
