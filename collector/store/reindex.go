package store

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	bolt "go.etcd.io/bbolt"
)

// scanMarker is written into every scan folder when it is created. It
// names the ИДК the folder belongs to, which the path alone does not, so
// that a lost index can be rebuilt from the folders.
const scanMarker = ".scan.json"

// scanDir creates the scan's folder (synced) with its marker and returns
// its path.
func (s *Store) scanDir(sc ScanEntry) (string, error) {
	dir := filepath.Join(s.root, filepath.FromSlash(sc.Dir))
	marker := filepath.Join(dir, scanMarker)
	if _, err := os.Stat(marker); err == nil {
		return dir, nil
	}
	if err := mkdirAllSync(s.root, dir); err != nil {
		return "", err
	}
	b, err := json.Marshal(sc)
	if err != nil {
		return "", fmt.Errorf("store: encode scan marker: %w", err)
	}
	return dir, writeFileSync(marker, b)
}

// reindex rebuilds the file, hash and scan records from the scan folders,
// hashing every file again. Events are not in the folders: what the index
// held of them is lost with it (the forms themselves are files and come
// back). It returns the number of files indexed.
func (s *Store) reindex() (int, error) {
	n := 0
	err := filepath.WalkDir(s.root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == ".incoming" {
			return fs.SkipDir
		}
		if d.IsDir() || d.Name() != scanMarker {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		var sc ScanEntry
		if err := json.Unmarshal(b, &sc); err != nil {
			s.log.Error("unreadable scan marker; folder left unindexed", "file", p, "err", err)
			return nil
		}
		entries, err := os.ReadDir(filepath.Dir(p))
		if err != nil {
			return err
		}
		sc.Forms = 0
		for _, e := range entries {
			name := e.Name()
			if e.IsDir() || strings.HasPrefix(name, ".") || strings.HasSuffix(name, ".tmp") {
				continue
			}
			sum, size, err := hashPath(filepath.Join(filepath.Dir(p), name))
			if err != nil {
				return err
			}
			kind, offered := "other", name
			if strings.HasPrefix(name, "form-r") && strings.HasSuffix(name, ".xml") {
				kind = "form"
				sc.Forms++
			} else if strings.HasSuffix(strings.ToLower(name), ".raw") {
				kind = "raw"
			} else {
				kind = "document"
			}
			// A second revision name~2.ext was offered as name.ext.
			if i := strings.LastIndex(offered, "~"); i > 0 && kind != "form" {
				ext := path.Ext(offered)
				offered = offered[:i] + ext
			}
			e := FileEntry{NumIDK: sc.NumIDK, NumSnim: sc.NumSnim, Name: offered, StoredAs: path.Join(sc.Dir, name),
				Kind: kind, Size: size, SHA256: sum, StoredAt: s.now()}
			hashKey := sc.NumIDK + "/" + sc.NumSnim + "/" + offered + "/" + sum
			if kind == "form" {
				hashKey = sc.NumIDK + "/" + sc.NumSnim + "/form/" + sum
			}
			err = s.db.Update(func(tx *bolt.Tx) error {
				if err := putJSON(tx.Bucket(bucketFiles), []byte(sc.NumIDK+"/"+sc.NumSnim+"/"+name), e); err != nil {
					return err
				}
				return tx.Bucket(bucketHashes).Put([]byte(hashKey), []byte(name))
			})
			if err != nil {
				return err
			}
			n++
		}
		return s.db.Update(func(tx *bolt.Tx) error {
			return putJSON(tx.Bucket(bucketScans), []byte(sc.NumIDK+"/"+sc.NumSnim), sc)
		})
	})
	if errors.Is(err, fs.ErrNotExist) {
		err = nil
	}
	return n, err
}

func hashPath(p string) (string, int64, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", 0, fmt.Errorf("hash %s: %w", p, err)
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}
