package store

import (
	"bytes"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// randomBytes returns n bytes from a fixed seed.
func randomBytes(n int, seed uint64) []byte {
	r := rand.NewChaCha8([32]byte{byte(seed)})
	b := make([]byte, n)
	r.Read(b)
	return b
}

// A partial written in pieces of odd sizes, from an unaligned length
// (a resumed upload), flushed in the middle and written on, holds every
// byte in order; on Linux the large file went around the cache.
func TestPartialWriterKeepsEveryByte(t *testing.T) {
	dir := directDir(t)
	p := filepath.Join(dir, "partial")
	data := randomBytes(3*directBlock+directAlign*5+333, 1)
	const held = 5000 // an earlier transfer's bytes, not aligned
	if err := os.WriteFile(p, data[:held], 0o640); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w, err := newPartialWriter(f, held, true)
	if err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS == "linux" && w.direct == nil {
		t.Fatalf("no O_DIRECT in %s: the collector's data folder should be on a disk file system (ext4, xfs), not tmpfs", dir)
	}
	off, flushed := held, false
	for _, n := range []int{1, directAlign - 1, directBlock + 17, 100_000, directBlock, 1 << 20} {
		if _, err := w.Write(data[off : off+n]); err != nil {
			t.Fatal(err)
		}
		off += n
		if !flushed && off > directBlock {
			// A stripe's hold or a commit flushes; another upload of
			// the same partial may write on after it.
			if err := w.Flush(); err != nil {
				t.Fatal(err)
			}
			if got, err := os.ReadFile(p); err != nil || !bytes.Equal(got, data[:off]) {
				t.Fatalf("after the flush at %d the file holds %d bytes (%v), not the bytes written", off, len(got), err)
			}
			flushed = true
		}
	}
	if _, err := w.Write(data[off:]); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("file holds %d bytes, %d written; equal prefix %d", len(got), len(data), commonPrefix(got, data))
	}
}

// directDir is a folder for a test of direct writes: the test's
// temporary folder, or where that is a tmpfs (no O_DIRECT; /tmp is one on
// some systems), a folder beside the test, on the disk of the checkout.
func directDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	probe := filepath.Join(dir, "probe")
	if err := os.WriteFile(probe, nil, 0o640); err != nil {
		t.Fatal(err)
	}
	d, err := directFile(probe)
	if err == nil {
		d.Close()
	}
	if err == nil || runtime.GOOS != "linux" {
		return dir
	}
	dir, err = os.MkdirTemp(".", "partial-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func commonPrefix(a, b []byte) int {
	n := 0
	for n < len(a) && n < len(b) && a[n] == b[n] {
		n++
	}
	return n
}

// A large image cut off at an unaligned offset after a collector restart
// resumes there, and the stored file is the image, byte for byte.
func TestStoreResumesLargeFileAtUnalignedOffset(t *testing.T) {
	root := t.TempDir()
	s := openStore(t, root)
	data := randomBytes(directMinSize+3*directBlock+4321, 2)
	o := offerFor("S1", "S1_1.raw", data)
	up, _, err := s.Offer(dev, o, t0)
	if err != nil {
		t.Fatal(err)
	}
	const piece = 1<<20 + 17
	cut := 0
	for ; cut < 3*piece; cut += piece {
		if err := up.Write(chunk(data[cut:cut+piece], cut)); err != nil {
			t.Fatal(err)
		}
	}
	up.Close() // connection lost
	s.Close()  // collector restarted

	s = openStore(t, root)
	defer s.Close()
	up, rep, err := s.Offer(dev, o, t0)
	if err != nil || rep.Offset != uint64(cut) {
		t.Fatalf("resumed at %v (%v), want %d", rep, err, cut)
	}
	for off := cut; off < len(data); off += piece {
		end := min(off+piece, len(data))
		if err := up.Write(chunk(data[off:end], off)); err != nil {
			t.Fatal(err)
		}
	}
	storedAs, err := up.Commit(o.Sha256)
	up.Close()
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(storedAs)))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("stored %d bytes, sent %d; equal prefix %d", len(got), len(data), commonPrefix(got, data))
	}
}
