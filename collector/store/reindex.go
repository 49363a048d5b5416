package store

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"idk/collector/kv"
	"idk/internal/atomicfile"
	"idk/internal/filehash"
	"idk/protocol"
)

// scanMarker is written into every scan folder when it is created, with
// the scan's time, so that a lost index can be rebuilt with it. Who the
// folder belongs to is its path; the marker is not trusted for that.
const scanMarker = ".scan.json"

// scanDir creates the scan's folder (synced) with its marker and returns
// its path. With the files in a bucket (Options.Files) there is no local
// folder to make: it refuses, so that nothing lands under the root by
// mistake.
func (s *Store) scanDir(sc ScanEntry) (string, error) {
	if s.files != nil {
		return "", fmt.Errorf("store: scan folder %s: the files are in a bucket, not under %s", sc.Dir, s.root)
	}
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
	return dir, atomicfile.WriteFile(marker, b, 0o640)
}

// reindex rebuilds the file, hash and scan records from the scan folders,
// hashing every file again. Who a file belongs to comes from where it is:
// <KOD_TO>/<YYYYMMDD>/<NUM_IDK>/<NUM_SNIM>/, folders only the collector
// names, from the registry and the certificate. A folder's marker gives
// the scan's time and nothing else. Events are not in the folders: what
// the index held of them is lost with it (the forms themselves are files
// and come back). It returns the number of files indexed.
func (s *Store) reindex() (int, error) {
	if s.files != nil {
		// A bucket shared by a region's collectors holds files of other
		// indexes too, and no scan markers: Open does not call this then.
		s.log.Error("index not rebuilt: the files are in a bucket (Options.Files), and an index is rebuilt only from local scan folders")
		return 0, nil
	}
	n := 0
	kods, err := os.ReadDir(s.root)
	if err != nil {
		return 0, err
	}
	for _, kod := range kods {
		if !kod.IsDir() || protocol.CheckKodTO(kod.Name()) != nil {
			continue
		}
		days, err := os.ReadDir(filepath.Join(s.root, kod.Name()))
		if err != nil {
			return n, err
		}
		for _, day := range days {
			date, err := time.ParseInLocation("20060102", day.Name(), s.loc)
			if !day.IsDir() || err != nil {
				continue
			}
			idks, err := os.ReadDir(filepath.Join(s.root, kod.Name(), day.Name()))
			if err != nil {
				return n, err
			}
			for _, idk := range idks {
				if !idk.IsDir() || protocol.CheckNumIDK(idk.Name()) != nil {
					continue
				}
				snims, err := os.ReadDir(filepath.Join(s.root, kod.Name(), day.Name(), idk.Name()))
				if err != nil {
					return n, err
				}
				for _, snim := range snims {
					if !snim.IsDir() || protocol.CheckNumSnim(snim.Name()) != nil {
						continue
					}
					sc := ScanEntry{NumIDK: idk.Name(), NumSnim: snim.Name(), KodTO: kod.Name(), ScanTime: date,
						Dir: path.Join(kod.Name(), day.Name(), idk.Name(), snim.Name())}
					k, err := s.reindexScan(sc)
					if err != nil {
						return n, err
					}
					n += k
				}
			}
		}
	}
	return n, nil
}

func (s *Store) reindexScan(sc ScanEntry) (int, error) {
	dir := filepath.Join(s.root, filepath.FromSlash(sc.Dir))
	if b, err := os.ReadFile(filepath.Join(dir, scanMarker)); err == nil {
		var m ScanEntry
		if json.Unmarshal(b, &m) == nil && m.Dir == sc.Dir && !m.ScanTime.IsZero() {
			sc.ScanTime = m.ScanTime
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, e := range entries {
		name := e.Name()
		if !e.Type().IsRegular() || strings.HasPrefix(name, ".") {
			continue
		}
		sum, size, err := hashPath(filepath.Join(dir, name))
		if err != nil {
			return n, err
		}
		kind, offered := "document", name
		switch {
		case strings.HasPrefix(name, "form-r") && strings.HasSuffix(name, ".xml"):
			kind = "form"
			sc.Forms++
		case strings.HasSuffix(strings.ToLower(name), ".raw"):
			kind = "raw"
		}
		// A second revision name~2.ext was offered as name.ext.
		if i := strings.LastIndex(offered, "~"); i > 0 && kind != "form" {
			offered = offered[:i] + path.Ext(offered)
		}
		fe := FileEntry{NumIDK: sc.NumIDK, NumSnim: sc.NumSnim, Name: offered, StoredAs: path.Join(sc.Dir, name),
			Kind: kind, Size: size, SHA256: sum, StoredAt: s.clock.Now()}
		hashKey := sc.NumIDK + "/" + sc.NumSnim + "/" + offered + "/" + sum
		if kind == "form" {
			hashKey = sc.NumIDK + "/" + sc.NumSnim + "/form/" + sum
		}
		err = s.db.Update(func(tx kv.Tx) error {
			if err := putJSON(tx, bucketFiles, []byte(sc.NumIDK+"/"+sc.NumSnim+"/"+name), fe); err != nil {
				return err
			}
			return put(tx, bucketHashes, []byte(hashKey), []byte(name))
		})
		if err != nil {
			return n, err
		}
		n++
	}
	return n, s.db.Update(func(tx kv.Tx) error {
		return putJSON(tx, bucketScans, []byte(sc.NumIDK+"/"+sc.NumSnim), sc)
	})
}

func hashPath(p string) (string, int64, error) {
	sum, n, err := filehash.File(p)
	return hex.EncodeToString(sum), n, err
}
