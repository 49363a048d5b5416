package blob

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// source writes data to a new file, as the collector has it after
// receiving and verifying an image, and returns the file's name and the
// data's SHA-256.
func source(t *testing.T, data []byte) (string, []byte) {
	t.Helper()
	f, err := os.CreateTemp(t.TempDir(), "upload-*")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	return f.Name(), sum[:]
}

func random(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// put stores data under key, failing the test if that fails.
func put(t *testing.T, st Store, key string, data []byte) {
	t.Helper()
	path, sum := source(t, data)
	if err := st.PutFile(t.Context(), key, path, int64(len(data)), sum); err != nil {
		t.Fatalf("put %s: %v", key, err)
	}
}

// read returns key's content and Info, failing the test on an error.
func read(t *testing.T, st Store, key string) ([]byte, Info) {
	t.Helper()
	rc, info, err := st.Open(t.Context(), key)
	if err != nil {
		t.Fatalf("open %s: %v", key, err)
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read %s: %v", key, err)
	}
	return data, info
}

// keys lists the keys starting with prefix.
func keys(t *testing.T, st Store, prefix string) []string {
	t.Helper()
	var got []string
	err := st.List(t.Context(), prefix, func(i Info) error {
		got = append(got, i.Key)
		return nil
	})
	if err != nil {
		t.Fatalf("list %q: %v", prefix, err)
	}
	return got
}

// testStore checks what every Store must do.
func testStore(t *testing.T, st Store) {
	ctx := t.Context()

	t.Run("RoundTrip", func(t *testing.T) {
		const key = "0123/2026/11/28/SNIM-1/image.raw"
		data := random(t, 100<<10)
		put(t, st, key, data)
		info, err := st.Stat(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(data)
		if info.Key != key || info.Size != int64(len(data)) || info.SHA256 != nil && !bytes.Equal(info.SHA256, sum[:]) {
			t.Errorf("stat: %+v, want key %s, size %d, SHA-256 %x or none", info, key, len(data), sum)
		}
		got, info := read(t, st, key)
		if !bytes.Equal(got, data) {
			t.Errorf("read back %d bytes that differ from the %d put", len(got), len(data))
		}
		if info.Key != key || info.Size != int64(len(data)) {
			t.Errorf("open: %+v", info)
		}
	})

	t.Run("Empty", func(t *testing.T) {
		const key = "empty/zero.raw"
		put(t, st, key, nil)
		if got, info := read(t, st, key); len(got) != 0 || info.Size != 0 {
			t.Errorf("read %d bytes, size %d; want none", len(got), info.Size)
		}
	})

	t.Run("PutAgain", func(t *testing.T) {
		const key = "again/image.raw"
		data := random(t, 10<<10)
		put(t, st, key, data)
		// A retry after a crash: the same content from a new file.
		put(t, st, key, data)

		other := random(t, 10<<10)
		path, sum := source(t, other)
		err := st.PutFile(ctx, key, path, int64(len(other)), sum)
		if !errors.Is(err, ErrExist) || !strings.Contains(err.Error(), key) {
			t.Errorf("put of other content: %v; want an error naming %s and wrapping ErrExist", err, key)
		}
		if got, _ := read(t, st, key); !bytes.Equal(got, data) {
			t.Error("put of other content changed the object")
		}
	})

	t.Run("WrongSum", func(t *testing.T) {
		const key = "wrong/image.raw"
		data := random(t, 10<<10)
		path, _ := source(t, data)
		bad := sha256.Sum256([]byte("not the data"))
		err := st.PutFile(ctx, key, path, int64(len(data)), bad[:])
		if !errors.Is(err, ErrChecksum) {
			t.Errorf("put with wrong sum: %v; want ErrChecksum", err)
		}
		if _, err := st.Stat(ctx, key); !errors.Is(err, ErrNotExist) {
			t.Errorf("after put with wrong sum, stat: %v; want ErrNotExist", err)
		}
	})

	t.Run("NotExist", func(t *testing.T) {
		const key = "no/such/image.raw"
		if _, err := st.Stat(ctx, key); !errors.Is(err, ErrNotExist) || !strings.Contains(err.Error(), key) {
			t.Errorf("stat: %v; want ErrNotExist naming %s", err, key)
		}
		if rc, _, err := st.Open(ctx, key); !errors.Is(err, ErrNotExist) {
			if err == nil {
				rc.Close()
			}
			t.Errorf("open: %v; want ErrNotExist", err)
		}
		// A folder on the way to other keys is no object either.
		put(t, st, "dir/sub/file", []byte("x"))
		if _, err := st.Stat(ctx, "dir/sub"); !errors.Is(err, ErrNotExist) {
			t.Errorf("stat of a folder: %v; want ErrNotExist", err)
		}
	})

	t.Run("Delete", func(t *testing.T) {
		const key = "delete/image.raw"
		put(t, st, key, []byte("evidence no more"))
		for range 2 { // a missing key is no error
			if err := st.Delete(ctx, key); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := st.Stat(ctx, key); !errors.Is(err, ErrNotExist) {
			t.Errorf("stat after delete: %v; want ErrNotExist", err)
		}
	})

	t.Run("List", func(t *testing.T) {
		// "l/a.txt" sorts before "l/a/b", as '.' is before '/'.
		all := []string{"l/a.txt", "l/a/b", "l/a/c/d", "l/ab", "l/b", "l2/x", "m"}
		for _, k := range []string{"l/b", "m", "l/a/c/d", "l/a.txt", "l2/x", "l/ab", "l/a/b"} {
			put(t, st, "list/"+k, []byte(k))
		}
		for prefix, want := range map[string][]string{
			"":      all,
			"l":     all[:6],
			"l/":    all[:5],
			"l/a":   all[:4],
			"l/a/":  all[1:3],
			"l/a/c": all[2:3],
			"l/x":   nil,
			"n":     nil,
		} {
			var got []string
			for _, k := range keys(t, st, "list/"+prefix) {
				got = append(got, strings.TrimPrefix(k, "list/"))
			}
			if !slices.Equal(got, want) {
				t.Errorf("list %q: %q, want %q", "list/"+prefix, got, want)
			}
		}
		// Sizes come with the keys.
		err := st.List(ctx, "list/l/a/c/", func(i Info) error {
			if i.Size != int64(len("l/a/c/d")) {
				t.Errorf("list: %+v, want size %d", i, len("l/a/c/d"))
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		// An error from fn stops the listing and comes back as it is.
		stop := errors.New("enough")
		n := 0
		err = st.List(ctx, "list/", func(Info) error { n++; return stop })
		if err != stop || n != 1 {
			t.Errorf("list stopped after %d calls with %v; want 1 call and the error of fn", n, err)
		}
	})

	t.Run("InvalidKey", func(t *testing.T) {
		path, sum := source(t, []byte("x"))
		for _, key := range []string{"", "/abs/key", "a/../b", "..", "../a", "a/..", ".", "a/./b", "a//b", "a/", `a\b`, "a\x00b"} {
			check := func(op string, err error) {
				t.Helper()
				if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("%q", key)) {
					t.Errorf("%s %q: %v; want an error naming the key", op, key, err)
				}
			}
			check("put", st.PutFile(ctx, key, path, 1, sum))
			_, err := st.Stat(ctx, key)
			check("stat", err)
			rc, _, err := st.Open(ctx, key)
			if err == nil {
				rc.Close()
			}
			check("open", err)
			check("delete", st.Delete(ctx, key))
		}
		if _, err := os.Stat(path); err != nil {
			t.Errorf("a refused put touched its file: %v", err)
		}
	})
}

func TestLocal(t *testing.T) {
	st, err := NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	testStore(t, st)
}

func TestLocalPutMovesFile(t *testing.T) {
	root := t.TempDir()
	st, err := NewLocal(root)
	if err != nil {
		t.Fatal(err)
	}
	data := []byte("image")
	path, sum := source(t, data)
	if err := st.PutFile(t.Context(), "a/b/c.raw", path, int64(len(data)), sum); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("source after put: %v; want it gone", err)
	}
	if got, err := os.ReadFile(filepath.Join(root, "a", "b", "c.raw")); err != nil || !bytes.Equal(got, data) {
		t.Errorf("file under root: %q, %v", got, err)
	}
	// A retry after a crash that came after the move but before the
	// source was gone finds the source still there, and removes it.
	path, sum = source(t, data)
	if err := st.PutFile(t.Context(), "a/b/c.raw", path, int64(len(data)), sum); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("source after retried put: %v; want it gone", err)
	}
}

func TestNewLocalNeedsFolder(t *testing.T) {
	if _, err := NewLocal(filepath.Join(t.TempDir(), "unmounted")); err == nil {
		t.Error("NewLocal of a missing folder succeeded")
	}
}
