package store

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"idk/collector/blob"
	"idk/collector/kv"
	"idk/internal/atomicfile"
	"idk/protocol"
)

// RetentionYears is how long images are kept on the РТУ/ТНП servers,
// counted from the date of scanning (item 38). The source is silent on
// what happens afterwards, so nothing is ever removed automatically:
// RemoveMonth is run by a person, who is named in the record it leaves.
const RetentionYears = 3

// RetentionDir is the folder under the store's root that keeps the
// records of what retention removed. Its name is not a KOD_TO, so the
// rebuild of a lost index and Check pass over it.
const RetentionDir = "retention"

// ErrTooYoung is returned by RemoveMonth for a month whose scans have not
// all been kept RetentionYears yet.
var ErrTooYoung = errors.New("store: month is not past its retention period")

// MonthUsage is what the store holds of one calendar month of scan dates.
type MonthUsage struct {
	Month string // "2006-01", the month of the date folders
	Files int    // indexed files (not uploads in progress)
	Bytes int64
	// Removable is the first moment the whole month may be removed:
	// RetentionYears after the end of its last day, in the store's zone.
	Removable time.Time
	Expired   bool // Removable has passed, by the store's clock
}

// monthOf is the month ("2006-01") of a path under the root that starts
// <KOD_TO>/<YYYYMMDD>/, or "" when it does not.
func monthOf(p string) string {
	kod, rest, ok := strings.Cut(p, "/")
	if !ok || protocol.CheckKodTO(kod) != nil {
		return ""
	}
	day, _, _ := strings.Cut(rest, "/")
	t, err := time.Parse("20060102", day)
	if err != nil || len(day) != 8 {
		return ""
	}
	return t.Format("2006-01")
}

// removableFrom is the first moment month (midnight in loc of its first
// day) may be removed: the month's last scan, made just before midnight
// of its last day, has then been kept RetentionYears.
func removableFrom(month time.Time, loc *time.Location) time.Time {
	y, m, _ := month.Date()
	return time.Date(y+RetentionYears, m+1, 1, 0, 0, 0, 0, loc)
}

// parseMonth reads "2006-01" as midnight of the month's first day in loc.
func parseMonth(s string, loc *time.Location) (time.Time, error) {
	t, err := time.ParseInLocation("2006-01", s, loc)
	if err != nil {
		return time.Time{}, fmt.Errorf("month %q: want YYYY-MM: %w", s, err)
	}
	return t, nil
}

// Months reports, per month of scan dates (the date folders, as the
// index records them), how much the store holds and whether the month is
// past its retention period. The months are in calendar order. It only
// reads.
//
// With Options.Files, Bytes is what the bucket holds under the month's
// prefixes (<KOD_TO>/<YYYYMM>, for every customs body the index knows),
// listed, unrecorded objects included; Files still counts the index's
// entries.
func (s *Store) Months() ([]MonthUsage, error) {
	by := map[string]*MonthUsage{}
	err := s.db.View(func(tx kv.Tx) error {
		return tx.Scan(bucketFiles, nil, nil, false, func(k, v []byte) error {
			var e FileEntry
			if err := json.Unmarshal(v, &e); err != nil {
				return fmt.Errorf("decode %s: %w", k, err)
			}
			m := monthOf(e.StoredAs)
			if e.Pending || m == "" {
				return nil
			}
			u := by[m]
			if u == nil {
				u = &MonthUsage{Month: m}
				by[m] = u
			}
			u.Files++
			u.Bytes += e.Size
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("store: months: %w", err)
	}
	var kods []string
	if s.files != nil && len(by) > 0 {
		if kods, err = s.kodTOs(); err != nil {
			return nil, fmt.Errorf("store: months: %w", err)
		}
	}
	now := s.clock.Now()
	out := make([]MonthUsage, 0, len(by))
	for _, u := range by {
		start, err := parseMonth(u.Month, s.loc)
		if err != nil {
			return nil, err
		}
		if s.files != nil {
			objs, err := s.monthObjects(context.Background(), kods, start)
			if err != nil {
				return nil, fmt.Errorf("store: months: %w", err)
			}
			u.Bytes = 0
			for _, o := range objs {
				u.Bytes += o.Size
			}
		}
		u.Removable = removableFrom(start, s.loc)
		u.Expired = !now.Before(u.Removable)
		out = append(out, *u)
	}
	slices.SortFunc(out, func(a, b MonthUsage) int { return strings.Compare(a.Month, b.Month) })
	return out, nil
}

// RemovedFile is one file in the record of a removal.
type RemovedFile struct {
	Path   string `json:"path"` // under the root, '/'-separated
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"` // of the bytes removed, hashed just before
	// IndexSHA256 is the index's hash where it differs from the bytes on
	// disk: the removal records what was there, and that it disagreed.
	IndexSHA256 string    `json:"index_sha256,omitempty"`
	NumIDK      string    `json:"num_idk,omitempty"`
	NumSnim     string    `json:"num_snim,omitempty"`
	Name        string    `json:"name,omitempty"` // as the agent offered it
	Kind        string    `json:"kind,omitempty"`
	StoredAt    time.Time `json:"stored_at,omitzero"`
	Unindexed   bool      `json:"unindexed,omitempty"` // in a date folder of the month, not in the index
	Missing     bool      `json:"missing,omitempty"`   // in the index, not on disk: only its index entry is removed
}

// Removal is the record RemoveMonth keeps of what it removed, written as
// JSON under RetentionDir before anything is removed.
type Removal struct {
	Month     string        `json:"month"`
	By        string        `json:"by"`
	At        time.Time     `json:"at"`
	Removable time.Time     `json:"removable_from"`
	Scans     int           `json:"scans"`
	Files     int           `json:"files"`
	Bytes     int64         `json:"bytes"`
	List      []RemovedFile `json:"files_removed"`
	// Record is the path of this record under the root.
	Record string `json:"-"`
}

// RemoveMonth removes every scan of month ("2006-01", the month of the
// date folders): its files from disk and its file, hash and scan entries
// from the index. It refuses (ErrTooYoung) a month not past its retention
// period by the store's clock. by names the person who asked for it.
//
// First it hashes every file and writes, synced, a record of each (path,
// size, SHA-256) under <root>/retention/; that record is kept. Then it
// removes the index entries in one transaction, and then the files and
// the emptied folders. A crash midway leaves files on disk that the index
// no longer lists; running RemoveMonth again removes them too, as it
// takes every file in the month's date folders, indexed or not. The
// events (the reports' history) are kept.
//
// With Options.Files the month's objects are those listed under
// <KOD_TO>/<YYYYMM> for every customs body the index knows (its scans and
// devices), indexed or not, and they are deleted instead of folders. The
// record is also put into the bucket under retention/, beside what it
// describes. In a bucket shared by collectors with indexes of their own,
// the others' objects of the month are removed too (the whole month is
// past its retention period); their indexes then list them as missing.
func (s *Store) RemoveMonth(month, by string) (Removal, error) {
	start, err := parseMonth(month, s.loc)
	if err != nil {
		return Removal{}, fmt.Errorf("store: remove: %w", err)
	}
	month = start.Format("2006-01")
	if strings.TrimSpace(by) == "" {
		return Removal{}, errors.New("store: remove: who removes it must be named")
	}
	now := s.clock.Now()
	rm := Removal{Month: month, By: by, At: now, Removable: removableFrom(start, s.loc)}
	if now.Before(rm.Removable) {
		return Removal{}, fmt.Errorf("%w: %s may be removed from %s", ErrTooYoung, month, rm.Removable.Format("02.01.2006 15:04 MST"))
	}

	// The index's side: the scans whose folder is in the month, and
	// every entry of them.
	var scanKeys [][]byte
	indexed := map[string]FileEntry{}
	err = s.db.View(func(tx kv.Tx) error {
		err := tx.Scan(bucketScans, nil, nil, false, func(k, v []byte) error {
			var sc ScanEntry
			if err := json.Unmarshal(v, &sc); err != nil {
				return fmt.Errorf("decode scan %s: %w", k, err)
			}
			if monthOf(sc.Dir) == month {
				scanKeys = append(scanKeys, append([]byte(nil), k...))
			}
			return nil
		})
		if err != nil {
			return err
		}
		return tx.Scan(bucketFiles, nil, nil, false, func(k, v []byte) error {
			var e FileEntry
			if err := json.Unmarshal(v, &e); err != nil {
				return fmt.Errorf("decode %s: %w", k, err)
			}
			if monthOf(e.StoredAs) == month && !e.Pending {
				indexed[e.StoredAs] = e
			}
			return nil
		})
	})
	if err != nil {
		return Removal{}, fmt.Errorf("store: remove %s: %w", month, err)
	}

	// The disk's side: every file in the month's date folders (with
	// Options.Files, every object under the month's prefixes).
	var dayDirs, onDisk []string
	if s.files != nil {
		kods, err := s.kodTOs()
		if err != nil {
			return Removal{}, fmt.Errorf("store: remove %s: %w", month, err)
		}
		objs, err := s.monthObjects(context.Background(), kods, start)
		if err != nil {
			return Removal{}, fmt.Errorf("store: remove %s: %w", month, err)
		}
		for _, o := range objs {
			onDisk = append(onDisk, o.Key)
		}
	} else if dayDirs, onDisk, err = s.monthFiles(start); err != nil {
		return Removal{}, fmt.Errorf("store: remove %s: %w", month, err)
	}
	paths := slices.Clone(onDisk)
	for p := range indexed {
		if !slices.Contains(onDisk, p) {
			paths = append(paths, p)
		}
	}
	slices.Sort(paths)
	for _, p := range paths {
		f := RemovedFile{Path: p}
		if e, ok := indexed[p]; ok {
			f.NumIDK, f.NumSnim, f.Name, f.Kind, f.StoredAt = e.NumIDK, e.NumSnim, e.Name, e.Kind, e.StoredAt
		} else {
			f.Unindexed = true
		}
		sum, size, err := s.hashStored(p)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			f.Missing, f.Size, f.SHA256 = true, indexed[p].Size, indexed[p].SHA256
		case err != nil:
			return Removal{}, fmt.Errorf("store: remove %s: %w", month, err)
		default:
			f.Size, f.SHA256 = size, sum
			if e, ok := indexed[p]; ok && e.SHA256 != sum {
				f.IndexSHA256 = e.SHA256
			}
			rm.Files++
			rm.Bytes += size
		}
		rm.List = append(rm.List, f)
	}
	rm.Scans = len(scanKeys)
	if len(rm.List) == 0 && len(scanKeys) == 0 {
		return rm, nil // nothing held: no record of nothing
	}

	// The record goes first, synced: whatever happens next, what was
	// there is known.
	data, err := json.MarshalIndent(rm, "", "  ")
	if err != nil {
		return Removal{}, fmt.Errorf("store: remove %s: encode record: %w", month, err)
	}
	dir := filepath.Join(s.root, RetentionDir)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return Removal{}, fmt.Errorf("store: remove %s: %w", month, err)
	}
	// Records are kept: a second removal of the month (leftovers of a
	// crash) in the same second gets a name of its own.
	name := fmt.Sprintf("removed-%s-%s.json", month, now.UTC().Format("20060102T150405Z"))
	for n := 2; ; n++ {
		if _, err := os.Lstat(filepath.Join(dir, name)); errors.Is(err, fs.ErrNotExist) {
			break
		}
		name = fmt.Sprintf("removed-%s-%s~%d.json", month, now.UTC().Format("20060102T150405Z"), n)
	}
	if err := atomicfile.WriteFile(filepath.Join(dir, name), data, 0o640); err != nil {
		return Removal{}, fmt.Errorf("store: remove %s: write record: %w", month, err)
	}
	rm.Record = path.Join(RetentionDir, name)
	if s.files != nil {
		// The bucket is what the region shares: the record goes there
		// too, before anything is removed from it.
		sum := sha256.Sum256(data)
		if err := s.files.PutFile(context.Background(), rm.Record, filepath.Join(dir, name), int64(len(data)), sum[:]); err != nil {
			return Removal{}, fmt.Errorf("store: remove %s: put record %s: %w", month, rm.Record, err)
		}
	}

	err = s.db.Update(func(tx kv.Tx) error {
		for _, k := range scanKeys {
			prefix := append(slices.Clone(k), '/')
			for _, b := range []string{bucketFiles, bucketHashes, bucketPending} {
				if err := deletePrefix(tx, b, prefix); err != nil {
					return err
				}
			}
			if err := del(tx, bucketScans, k); err != nil {
				return err
			}
		}
		// A file whose scan entry is gone (an index rebuilt by hand) is
		// still removed from the files bucket.
		for _, e := range indexed {
			if err := del(tx, bucketFiles, []byte(e.NumIDK+"/"+e.NumSnim+"/"+path.Base(e.StoredAs))); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return Removal{}, fmt.Errorf("store: remove %s: index: %w", month, err)
	}

	for _, f := range rm.List {
		if f.Missing {
			continue
		}
		if s.files != nil {
			if err := s.files.Delete(context.Background(), f.Path); err != nil {
				return Removal{}, fmt.Errorf("store: remove %s: %w", month, err)
			}
			continue
		}
		if err := os.Remove(filepath.Join(s.root, filepath.FromSlash(f.Path))); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return Removal{}, fmt.Errorf("store: remove %s: %w", month, err)
		}
	}
	for _, d := range dayDirs {
		// The scan markers and folders go with the day; RemoveAll is safe
		// here because every regular file in them is in the record.
		if err := os.RemoveAll(filepath.Join(s.root, filepath.FromSlash(d))); err != nil {
			return Removal{}, fmt.Errorf("store: remove %s: %w", month, err)
		}
		syncDir(filepath.Join(s.root, filepath.FromSlash(path.Dir(d))))
	}
	s.log.Warn("retention: month of scans removed", "month", month, "by", by, "scans", rm.Scans,
		"files", rm.Files, "bytes", rm.Bytes, "record", rm.Record)
	return rm, nil
}

// kodTOs lists the customs bodies (KOD_TO, the tree's top level) that the
// index knows: of its scans, and of every device that said hello. A bucket
// cannot list its top level without reading every key; these are where a
// month's objects can be.
func (s *Store) kodTOs() ([]string, error) {
	set := map[string]bool{}
	err := s.db.View(func(tx kv.Tx) error {
		return tx.Scan(bucketScans, nil, nil, false, func(k, v []byte) error {
			var sc ScanEntry
			if err := json.Unmarshal(v, &sc); err != nil {
				return fmt.Errorf("decode scan %s: %w", k, err)
			}
			// The folder, not KodTO, says where its files are.
			if kod, _, ok := strings.Cut(sc.Dir, "/"); ok {
				set[kod] = true
			}
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	devs, err := s.Devices()
	if err != nil {
		return nil, err
	}
	for _, d := range devs {
		set[d.KodTo] = true
	}
	var out []string
	for kod := range set {
		if protocol.CheckKodTO(kod) == nil {
			out = append(out, kod)
		}
	}
	slices.Sort(out)
	return out, nil
}

// monthObjects lists the objects of Options.Files under the date folders
// of month for each of kods: <KOD_TO>/<YYYYMM>, then a day of the month.
func (s *Store) monthObjects(ctx context.Context, kods []string, month time.Time) ([]blob.Info, error) {
	want := month.Format("2006-01")
	var out []blob.Info
	for _, kod := range kods {
		err := s.files.List(ctx, kod+"/"+month.Format("200601"), func(o blob.Info) error {
			// The prefix also matches a day folder of another length;
			// monthOf takes only <YYYYMMDD>/.
			if monthOf(o.Key) == want && strings.Contains(o.Key[len(kod)+1:], "/") {
				out = append(out, o)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// monthFiles lists the date folders of month (<KOD_TO>/<YYYYMMDD>) and
// every regular file in them but the scan markers, '/'-separated under
// the root.
func (s *Store) monthFiles(month time.Time) (dirs, files []string, err error) {
	kods, err := os.ReadDir(s.root)
	if err != nil {
		return nil, nil, err
	}
	prefix := month.Format("200601")
	for _, kod := range kods {
		if !kod.IsDir() || protocol.CheckKodTO(kod.Name()) != nil {
			continue
		}
		days, err := os.ReadDir(filepath.Join(s.root, kod.Name()))
		if err != nil {
			return nil, nil, err
		}
		for _, day := range days {
			if !day.IsDir() || len(day.Name()) != 8 || !strings.HasPrefix(day.Name(), prefix) {
				continue
			}
			d := kod.Name() + "/" + day.Name()
			dirs = append(dirs, d)
			err := filepath.WalkDir(filepath.Join(s.root, filepath.FromSlash(d)), func(p string, e fs.DirEntry, err error) error {
				if err != nil || !e.Type().IsRegular() || e.Name() == scanMarker {
					return err
				}
				rel, err := filepath.Rel(s.root, p)
				if err != nil {
					return err
				}
				files = append(files, filepath.ToSlash(rel))
				return nil
			})
			if err != nil {
				return nil, nil, err
			}
		}
	}
	return dirs, files, nil
}

// deletePrefix deletes every key of bucket that starts with prefix. The
// keys are collected first and deleted after the scan, which every index
// allows whatever it does with a scan's position.
func deletePrefix(tx kv.Tx, bucket string, prefix []byte) error {
	var keys [][]byte
	err := tx.Scan(bucket, prefix, kv.PrefixEnd(prefix), false, func(k, _ []byte) error {
		keys = append(keys, slices.Clone(k))
		return nil
	})
	if err != nil {
		return fmt.Errorf("scan %s %q: %w", bucket, prefix, err)
	}
	for _, k := range keys {
		if err := del(tx, bucket, k); err != nil {
			return err
		}
	}
	return nil
}
