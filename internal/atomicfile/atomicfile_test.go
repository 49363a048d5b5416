package atomicfile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// names lists the entries of dir.
func names(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}

func TestWriteFileWritesAndReplaces(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "ca.key")
	for _, content := range []string{"first", "second, longer than the first", "3"} {
		if err := WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(path)
		if err != nil || string(got) != content {
			t.Fatalf("after writing %q: read %q, %v", content, got, err)
		}
		if got := names(t, dir); len(got) != 1 || got[0] != "ca.key" {
			t.Fatalf("folder holds %q, want just ca.key", got)
		}
	}
	if runtime.GOOS == "windows" {
		return // no Unix modes
	}
	// The mode is perm whatever the umask and whatever the old file's mode.
	for _, perm := range []fs.FileMode{0o644, 0o600} {
		if err := WriteFile(path, []byte("x"), perm); err != nil {
			t.Fatal(err)
		}
		if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != perm {
			t.Errorf("mode %v, %v; want %v", fi.Mode().Perm(), err, perm)
		}
	}
}

func TestWriteFileFailureKeepsOldFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "ca.crl")
	if err := WriteFile(path, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}

	full := errors.New("no space left on device")
	syncFile = func(*os.File) error { return full }
	defer func() { syncFile = (*os.File).Sync }()
	err := WriteFile(path, []byte("new"), 0o644)
	if !errors.Is(err, full) {
		t.Errorf("WriteFile err = %v, want it to wrap %v", err, full)
	}
	if got, _ := os.ReadFile(path); string(got) != "old" {
		t.Errorf("after a failed write the file holds %q, want the old content", got)
	}
	if got := names(t, dir); len(got) != 1 {
		t.Errorf("after a failed write the folder holds %q, want just ca.crl", got)
	}
}

func TestWriteFileMissingFolder(t *testing.T) {
	path := filepath.Join(t.TempDir(), "missing", "ca.crl")
	if err := WriteFile(path, []byte("x"), 0o644); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("WriteFile into a missing folder: err = %v, want fs.ErrNotExist", err)
	}
}

func TestWriteFileOverFolderLeavesNoTemp(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "taken")
	if err := os.Mkdir(path, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(path, []byte("x"), 0o644); err == nil {
		t.Fatal("WriteFile replaced a folder")
	}
	if got := names(t, dir); len(got) != 1 || got[0] != "taken" {
		t.Errorf("after a failed rename the folder holds %q, want just taken", got)
	}
}
