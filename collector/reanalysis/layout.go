package reanalysis

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"idk/collector/store"
	"idk/internal/atomicfile"
	"idk/internal/filehash"
)

// maxNames bounds the names tried for one file in a day's folder: far
// more sessions than a day has.
const maxNames = 1000

// maxRaces bounds how often one name is looked at again after another
// writer took it between the look and the link.
const maxRaces = 10

// layout lays out the RAW files of scans under
// <root>/<Section>/<kodTO>/<day>/<NUM_SNIM>/ and returns the day's folder
// (under the root, '/'-separated), what it placed and what it could not.
// An error is a failure of the disk or the index: what was placed stays,
// and a retry recognises it.
func (r *Recorder) layout(kodTO, day string, scans []ScanRef) (string, []Placed, []Problem, error) {
	folder := path.Join(Section, kodTO, day)
	var placed []Placed
	var problems []Problem
	byIDK := map[string][]store.FileEntry{}
	for _, s := range scans {
		files, ok := byIDK[s.NumIDK]
		if !ok {
			var err error
			if files, err = r.cfg.Files.Files(s.NumIDK); err != nil {
				return "", nil, nil, fmt.Errorf("reanalysis: stored files of ИДК %s: %w", s.NumIDK, err)
			}
			byIDK[s.NumIDK] = files
		}
		var raw []store.FileEntry
		for _, e := range files {
			// The source RAW files (items 11г, 38): the forms and document
			// scans stay in the archive.
			if e.NumSnim == s.NumSnim && e.Kind == "raw" {
				raw = append(raw, e)
			}
		}
		if len(raw) == 0 {
			problems = append(problems, Problem{ScanRef: s, Msg: "the collector holds no RAW file of this scan: nothing to lay out"})
			continue
		}
		dir := filepath.Join(r.cfg.Root, filepath.FromSlash(folder), s.NumSnim)
		if err := mkdirAllSync(r.cfg.Root, dir); err != nil {
			return "", nil, nil, err
		}
		for _, e := range raw {
			p, msg, err := r.place(e, dir)
			if err != nil {
				return "", nil, nil, err
			}
			if msg != "" {
				problems = append(problems, Problem{ScanRef: s, StoredAs: e.StoredAs, Msg: msg})
				continue
			}
			p.ScanRef = s
			p.Path = path.Join(folder, s.NumSnim, p.Path)
			placed = append(placed, p)
		}
		if err := atomicfile.SyncDir(dir); err != nil {
			return "", nil, nil, fmt.Errorf("reanalysis: %w", err)
		}
	}
	return folder, placed, problems, nil
}

// place lays out one stored file in dir. It returns the file placed (Path
// its name in dir), or a message saying why the file is not laid out (a
// problem for the analyst, not a failure), or an error of the disk.
func (r *Recorder) place(e store.FileEntry, dir string) (Placed, string, error) {
	if !filepath.IsLocal(filepath.FromSlash(e.StoredAs)) {
		return Placed{}, fmt.Sprintf("the index names the file %q outside the store: not laid out", e.StoredAs), nil
	}
	if !r.cfg.Files.LocalFiles() {
		return r.placeCopy(e, dir)
	}
	src := filepath.Join(r.cfg.StoreRoot, filepath.FromSlash(e.StoredAs))
	// The archive's file is checked before it is laid out: a file altered
	// on the server since it was stored must not reach the analyst as the
	// source image.
	sum, size, err := filehash.File(src)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return Placed{}, "the stored file is gone from the archive: not laid out", nil
	case err != nil:
		return Placed{}, "", fmt.Errorf("reanalysis: read %s: %w", src, err)
	case hex.EncodeToString(sum) != e.SHA256 || size != e.Size:
		return Placed{}, fmt.Sprintf("the stored file's content (%d bytes, SHA-256 %x) differs from the index's (%d bytes, %s): not laid out", size, sum, e.Size, e.SHA256), nil
	}
	srcInfo, err := os.Stat(src)
	if err != nil {
		return Placed{}, "", fmt.Errorf("reanalysis: %w", err)
	}
	linkable := true
	return placeUnder(e, dir, srcInfo, func(dst string) (string, error) {
		if linkable {
			err := r.link(src, dst)
			if err == nil {
				return "link", nil
			}
			if errors.Is(err, fs.ErrExist) {
				return "", nil
			}
			// Another file system, or one without hard links: copy.
			r.log.Warn("re-analysis: hard link impossible, copying", "from", src, "to", dst, "err", err)
			linkable = false
		}
		ok, err := copyNew(src, dst, e.SHA256)
		if err != nil || !ok {
			return "", err
		}
		return "copy", nil
	})
}

// placeCopy lays out one stored file in dir when the store keeps it out
// of reach of a hard link (in a bucket): it is read once through
// Files.OpenFile into a temporary file in dir, checked against the index
// there (a file altered since it was stored must not reach the analyst),
// and linked under the first free name.
func (r *Recorder) placeCopy(e store.FileEntry, dir string) (Placed, string, error) {
	tmp, msg, err := r.fetch(e, dir)
	if err != nil || msg != "" {
		return Placed{}, msg, err
	}
	defer os.Remove(tmp)
	tmpInfo, err := os.Stat(tmp)
	if err != nil {
		return Placed{}, "", fmt.Errorf("reanalysis: %w", err)
	}
	return placeUnder(e, dir, tmpInfo, func(dst string) (string, error) {
		if err := os.Link(tmp, dst); err != nil {
			if errors.Is(err, fs.ErrExist) {
				return "", nil
			}
			return "", fmt.Errorf("reanalysis: place %s: %w", dst, err)
		}
		return "copy", nil
	})
}

// placeUnder lays out e in dir under the first free name: its own, then
// name~2.ext, name~3.ext and so on. A name that already holds the content
// (src itself, the file to be placed, or a copy of it) is taken as it is,
// as "present"; one that holds anything else is never replaced. put
// places src at dst, a free name, and says how ("link", "copy"), or ""
// when dst was taken meanwhile (the name is looked at again, up to
// maxRaces times). The message says why e is not laid out.
func placeUnder(e store.FileEntry, dir string, src os.FileInfo, put func(dst string) (how string, err error)) (Placed, string, error) {
	p := Placed{StoredAs: e.StoredAs, SHA256: e.SHA256, Size: e.Size}
	name := path.Base(e.StoredAs)
	raced := 0
	for n := 1; n <= maxNames; n++ {
		cand := name
		if n > 1 {
			ext := path.Ext(name)
			cand = fmt.Sprintf("%s~%d%s", strings.TrimSuffix(name, ext), n, ext)
		}
		dst := filepath.Join(dir, cand)
		p.Path = cand
		same, err := holds(dst, src, e.SHA256)
		if err != nil {
			return Placed{}, "", err
		}
		switch same {
		case yes:
			p.How = "present"
			return p, "", nil
		case other:
			continue // another file has the name: never replaced
		}
		how, err := put(dst)
		if err != nil {
			return Placed{}, "", err
		}
		if how == "" {
			if raced < maxRaces {
				raced++
				n-- // taken meanwhile: look at it again
			}
			continue
		}
		p.How = how
		return p, "", nil
	}
	return Placed{}, fmt.Sprintf("more than %d files named %s in %s: not laid out", maxNames, name, dir), nil
}

// fetch copies the stored file e into a new temporary file in dir,
// synced, and returns its path; or a message saying why it is not laid
// out (gone, or not the content the index records).
func (r *Recorder) fetch(e store.FileEntry, dir string) (tmpPath, msg string, err error) {
	in, _, err := r.cfg.Files.OpenFile(context.Background(), e.StoredAs)
	if errors.Is(err, fs.ErrNotExist) {
		return "", "the stored file is gone from the archive: not laid out", nil
	} else if err != nil {
		return "", "", fmt.Errorf("reanalysis: read %s: %w", e.StoredAs, err)
	}
	defer in.Close()
	tmp, sum, size, err := copyTemp(dir, in)
	if err != nil {
		return "", "", fmt.Errorf("reanalysis: copy %s: %w", e.StoredAs, err)
	}
	if hex.EncodeToString(sum) != e.SHA256 || size != e.Size {
		os.Remove(tmp)
		return "", fmt.Sprintf("the stored file's content (%d bytes, SHA-256 %x) differs from the index's (%d bytes, %s): not laid out", size, sum, e.Size, e.SHA256), nil
	}
	return tmp, "", nil
}

// copyTemp copies in into a new temporary file in dir, synced and
// readable by the group, and returns its path, the SHA-256 of what it
// holds and its size; on an error there is no such file.
func copyTemp(dir string, in io.Reader) (name string, sum []byte, size int64, err error) {
	tmp, err := os.CreateTemp(dir, ".copy-*")
	if err != nil {
		return "", nil, 0, err
	}
	h := sha256.New()
	size, err = io.Copy(io.MultiWriter(tmp, h), in)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp.Name(), 0o640)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return "", nil, 0, err
	}
	return tmp.Name(), h.Sum(nil), size, nil
}

type holding int

const (
	absent holding = iota // no file of the name
	yes                   // the name holds this content
	other                 // the name holds something else
)

// holds tells what dst holds: the source itself (a link), a copy of its
// content, something else, or nothing.
func holds(dst string, src os.FileInfo, sha string) (holding, error) {
	fi, err := os.Lstat(dst)
	if errors.Is(err, fs.ErrNotExist) {
		return absent, nil
	}
	if err != nil {
		return absent, fmt.Errorf("reanalysis: %w", err)
	}
	if os.SameFile(fi, src) {
		return yes, nil
	}
	if !fi.Mode().IsRegular() || fi.Size() != src.Size() {
		return other, nil
	}
	sum, _, err := filehash.File(dst)
	if err != nil {
		return absent, fmt.Errorf("reanalysis: %w", err)
	}
	if hex.EncodeToString(sum) == sha {
		return yes, nil
	}
	return other, nil
}

// copyNew copies src to dst, which must not exist: the copy is written to
// a temporary name, synced, checked against sha and linked into place, so
// that dst is never a partial file nor replaces another. ok is false when
// dst appeared meanwhile.
func copyNew(src, dst, sha string) (ok bool, err error) {
	in, err := os.Open(src)
	if err != nil {
		return false, fmt.Errorf("reanalysis: %w", err)
	}
	defer in.Close()
	tmp, sum, _, err := copyTemp(filepath.Dir(dst), in)
	if err != nil {
		return false, fmt.Errorf("reanalysis: copy %s: %w", src, err)
	}
	defer os.Remove(tmp)
	if got := hex.EncodeToString(sum); got != sha {
		return false, fmt.Errorf("reanalysis: copy of %s has SHA-256 %s, want %s: the file changed while it was copied", src, got, sha)
	}
	if err := os.Link(tmp, dst); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return false, nil
		}
		return false, fmt.Errorf("reanalysis: place %s: %w", dst, err)
	}
	return true, nil
}

// mkdirAllSync creates dir and syncs each parent whose entries changed,
// up to root, so that the new folders survive a power cut.
func mkdirAllSync(root, dir string) error {
	if _, err := os.Stat(dir); err == nil {
		return nil
	}
	parent := filepath.Dir(dir)
	if parent != dir && parent != filepath.Clean(root) {
		if err := mkdirAllSync(root, parent); err != nil {
			return err
		}
	} else if err := os.MkdirAll(parent, 0o750); err != nil {
		return fmt.Errorf("reanalysis: create %s: %w", parent, err)
	}
	if err := os.Mkdir(dir, 0o750); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("reanalysis: create %s: %w", dir, err)
	}
	if err := atomicfile.SyncDir(parent); err != nil {
		return fmt.Errorf("reanalysis: %w", err)
	}
	return nil
}
