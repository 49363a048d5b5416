package secretfile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

func TestRead(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	if got, err := Read(write("tok", "  s3cr3t\n")); err != nil || got != "s3cr3t" {
		t.Errorf("Read = %q, %v; want s3cr3t", got, err)
	}
	if _, err := Read(write("blank", " \n\t")); !errors.Is(err, ErrEmpty) {
		t.Errorf("a blank file: %v, want ErrEmpty", err)
	}
	if _, err := Read(filepath.Join(dir, "none")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a missing file: %v, want fs.ErrNotExist", err)
	}
}
