package report

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"idk/internal/atomicfile"
	"idk/internal/clock"
	"idk/protocol"
)

// Archive keeps every published version of every day's report file, so
// that the file published for any past day can be fetched again byte for
// byte. A correction made after publication (a late event, an officer's
// entry, a withdrawn breach) leads to a new version of the day's file at
// the next publication; the old versions are never changed or removed.
//
// Layout under its folder:
//
//	daily/<KOD_TO>/<YYYY-MM>/<YYYY-MM-DD>.v<N>.xlsx   version N of the day's file
//	daily/<KOD_TO>/<YYYY-MM>/<YYYY-MM-DD>.json        the day's versions (Version list)
type Archive struct {
	dir   string
	b     *Builder
	clock clock.Clock
	log   *slog.Logger

	mu    sync.Mutex // one publication at a time: version numbers are given in order
	since time.Time  // when this archive was first opened (Since)
}

// Version is one published file of a day's report.
type Version struct {
	Version    int       `json:"version"`
	Published  time.Time `json:"published"`
	File       string    `json:"file"`           // its name in the day's folder
	Size       int64     `json:"size"`           // bytes
	SHA256     string    `json:"sha256"`         // of the file
	Digest     string    `json:"content_digest"` // of its cells (Daily.Digest): what decides a new version
	By         string    `json:"by"`             // who published it: "schedule" or the person
	Reason     string    `json:"reason,omitempty"`
	Incomplete int       `json:"incomplete_rows"` // table 1 rows with a field nobody supplied
}

// ErrNotPublished is returned for a day (or version) that has no
// published file.
var ErrNotPublished = errors.New("report not published")

// OpenArchive returns the archive in folder dir, creating it.
func OpenArchive(dir string, b *Builder, clk clock.Clock, log *slog.Logger) (*Archive, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("report archive: %w", err)
	}
	if log == nil {
		log = slog.Default()
	}
	a := &Archive{dir: dir, b: b, clock: clock.Or(clk), log: log}
	// The first start is kept, so that a deadline of a month before it is
	// not demanded, and a restart does not forget one that is owed.
	started := filepath.Join(dir, "started")
	data, err := os.ReadFile(started)
	switch {
	case err == nil:
		if a.since, err = time.Parse(time.RFC3339, strings.TrimSpace(string(data))); err != nil {
			return nil, fmt.Errorf("report archive: %s: %w", started, err)
		}
	case errors.Is(err, fs.ErrNotExist):
		a.since = a.clock.Now()
		if err := atomicfile.WriteFile(started, []byte(a.since.Format(time.RFC3339)+"\n"), 0o644); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("report archive: %w", err)
	}
	return a, nil
}

// Since is when the archive was first opened: the collector's first start
// with reports.
func (a *Archive) Since() time.Time { return a.since }

func (a *Archive) dayDir(kodTO string, day time.Time) string {
	return filepath.Join(a.dir, "daily", kodTO, day.Format("2006-01"))
}

func (a *Archive) manifest(kodTO string, day time.Time) string {
	return filepath.Join(a.dayDir(kodTO, day), day.Format("2006-01-02")+".json")
}

// day is the calendar day that holds t, in the builder's zone.
func (a *Archive) day(t time.Time) time.Time {
	y, m, d := t.In(a.b.Location()).Date()
	return time.Date(y, m, d, 0, 0, 0, 0, a.b.Location())
}

// Versions lists the published versions of kodTO's report for day, oldest
// first; none is an empty list.
func (a *Archive) Versions(kodTO string, day time.Time) ([]Version, error) {
	if err := protocol.CheckKodTO(kodTO); err != nil {
		return nil, err
	}
	return a.versions(kodTO, a.day(day))
}

func (a *Archive) versions(kodTO string, day time.Time) ([]Version, error) {
	return readManifest(a.manifest(kodTO, day))
}

// readManifest reads a list of versions; a missing file is none.
func readManifest(path string) ([]Version, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("report archive: %w", err)
	}
	var vs []Version
	if err := json.Unmarshal(data, &vs); err != nil {
		return nil, fmt.Errorf("report archive: %s: %w", path, err)
	}
	return vs, nil
}

// Open opens version n (0: the latest) of kodTO's published report for
// day. The caller closes the file.
func (a *Archive) Open(kodTO string, day time.Time, n int) (*os.File, Version, error) {
	if err := protocol.CheckKodTO(kodTO); err != nil {
		return nil, Version{}, err
	}
	day = a.day(day)
	vs, err := a.versions(kodTO, day)
	if err != nil {
		return nil, Version{}, err
	}
	return openVersion(a.dayDir(kodTO, day), vs, n, kodTO+" "+FormatDate(day))
}

// openVersion opens version n (0: the latest) of vs, the versions kept in
// dir; what names the report in the error for one not published.
func openVersion(dir string, vs []Version, n int, what string) (*os.File, Version, error) {
	if len(vs) == 0 || n < 0 || n > len(vs) {
		return nil, Version{}, fmt.Errorf("%s version %d: %w", what, n, ErrNotPublished)
	}
	v := vs[len(vs)-1]
	if n > 0 {
		v = vs[n-1]
	}
	f, err := os.Open(filepath.Join(dir, v.File))
	if err != nil {
		return nil, Version{}, fmt.Errorf("report archive: %w", err)
	}
	return f, v, nil
}

// Publish builds kodTO's report for day and keeps it as the day's next
// version, unless its content equals the latest version's: then nothing
// is written and the latest is returned with created false.
func (a *Archive) Publish(kodTO string, day time.Time, by, reason string) (v Version, created bool, err error) {
	if err := protocol.CheckKodTO(kodTO); err != nil {
		return Version{}, false, err
	}
	if by == "" {
		return Version{}, false, errors.New("report: publish: who publishes (by) is required")
	}
	day = a.day(day)
	a.mu.Lock()
	defer a.mu.Unlock()
	vs, err := a.versions(kodTO, day)
	if err != nil {
		return Version{}, false, err
	}
	d, err := a.b.Daily(kodTO, day)
	if err != nil {
		return Version{}, false, err
	}
	v, created, err = a.keepVersion(a.dayDir(kodTO, day), day.Format("2006-01-02"), vs, func(w io.Writer) ([]byte, int, error) {
		err := d.WriteXLSX(w)
		return d.Digest, len(d.Incomplete), err
	}, by, reason)
	if err != nil || !created {
		return v, created, err
	}
	a.log.Info("daily report published", "kod_to", kodTO, "date", FormatDate(day), "version", v.Version, "by", by,
		"bytes", v.Size, "incomplete_rows", v.Incomplete)
	return v, true, nil
}

// keepVersion writes a file with write into dir as stem.v<N>.xlsx, N the
// version after vs, and adds it to the manifest stem.json, unless the
// digest write returns equals the latest version's. It is the daily
// Publish's procedure, written once more so as not to change Publish
// while others work on it; Publish can call it.
func (a *Archive) keepVersion(dir, stem string, vs []Version, write func(io.Writer) (digest []byte, incomplete int, err error), by, reason string) (Version, bool, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return Version{}, false, fmt.Errorf("report archive: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".publish-*")
	if err != nil {
		return Version{}, false, fmt.Errorf("report archive: %w", err)
	}
	defer func() {
		if tmp != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	fileHash := sha256.New()
	counter := &countingWriter{w: io.MultiWriter(tmp, fileHash)}
	sum, incomplete, err := write(counter)
	if err != nil {
		return Version{}, false, err
	}
	digest := hex.EncodeToString(sum)
	if n := len(vs); n > 0 && vs[n-1].Digest == digest {
		return vs[n-1], false, nil
	}
	if err := tmp.Sync(); err != nil {
		return Version{}, false, fmt.Errorf("report archive: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return Version{}, false, fmt.Errorf("report archive: %w", err)
	}
	v := Version{
		Version:    len(vs) + 1,
		Published:  a.clock.Now(),
		Size:       counter.n,
		SHA256:     hex.EncodeToString(fileHash.Sum(nil)),
		Digest:     digest,
		By:         by,
		Reason:     reason,
		Incomplete: incomplete,
	}
	v.File = fmt.Sprintf("%s.v%d.xlsx", stem, v.Version)
	// A file of this name can only be left by a publication that crashed
	// before its manifest was written: it was never published.
	if err := os.Rename(tmp.Name(), filepath.Join(dir, v.File)); err != nil {
		return Version{}, false, fmt.Errorf("report archive: %w", err)
	}
	tmp = nil
	if err := atomicfile.SyncDir(dir); err != nil {
		return Version{}, false, err
	}
	data, err := json.MarshalIndent(append(vs, v), "", "  ")
	if err != nil {
		return Version{}, false, err
	}
	if err := atomicfile.WriteFile(filepath.Join(dir, stem+".json"), append(data, '\n'), 0o644); err != nil {
		return Version{}, false, err
	}
	return v, true, nil
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// Schedule publishes on its own: each day once the clock passes at
// (time after midnight, in the builder's zone), it publishes every
// customs body's report for the day before, and re-publishes the earlier
// days of that month (and, until the 5th, of the month before: the
// monthly report's deadline, item 37) so that a correction made since
// becomes a new version. A day whose content did not change gets no new
// version. Run it on a goroutine; it returns when ctx ends.
type Schedule struct {
	Archive *Archive
	At      time.Duration       // after midnight; default 30 minutes
	Offices func() []string     // the customs bodies (KOD_TO) to publish for
	Check   time.Duration       // how often the clock is looked at; default a minute
	OnError func(error)         // default: logged
	done    map[string]struct{} // days already published by this run, by date
}

// Run publishes until ctx ends. A collector started after the hour
// publishes what it missed at the first check, a Check after its start
// (not at once: a collector restarted in a hurry has its agents to serve
// first).
func (s *Schedule) Run(ctx context.Context) {
	if s.At <= 0 {
		s.At = 30 * time.Minute
	}
	if s.Check <= 0 {
		s.Check = time.Minute
	}
	s.done = map[string]struct{}{}
	clock.Every(ctx, s.Archive.clock, s.Check, s.tick)
}

func (s *Schedule) tick() {
	a := s.Archive
	now := a.clock.Now().In(a.b.Location())
	today := a.day(now)
	if now.Sub(today) < s.At {
		return
	}
	key := today.Format("2006-01-02")
	if _, ok := s.done[key]; ok {
		return
	}
	yesterday := a.day(today.Add(-time.Hour))
	from := MonthStart(yesterday)
	if today.Day() <= 5 {
		from = MonthStart(a.day(from.Add(-time.Hour)))
	}
	failed := false
	for _, kod := range s.Offices() {
		for day := from; !day.After(yesterday); day = NextDay(day) {
			if _, _, err := a.Publish(kod, day, "schedule", ""); err != nil {
				failed = true
				err = fmt.Errorf("publish %s %s: %w", kod, FormatDate(day), err)
				if s.OnError != nil {
					s.OnError(err)
				} else {
					a.log.Error("daily report not published; retried at the next check", "err", err)
				}
			}
		}
	}
	if !failed {
		s.done[key] = struct{}{}
	}
}
