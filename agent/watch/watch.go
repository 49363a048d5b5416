// Package watch finds files in the scanner's output folder that have
// stopped changing. It listens to fsnotify for speed and also rescans the
// whole folder on start and periodically, because fsnotify events can be
// lost (queue overflow, network shares, a watch added after a file
// appeared); the rescan is what guarantees that no file is missed.
//
// A file is ready when its size and modification time have not changed for
// the settle period. The watcher never opens files for writing, and never
// moves or deletes anything.
package watch

import (
	"context"
	"encoding/binary"
	"errors"
	"hash/maphash"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"

	"idk/internal/clock"
)

// Ready is a file whose content has settled.
type Ready struct {
	Path    string // absolute
	Rel     string // relative to the root, '/'-separated
	Size    int64
	ModTime time.Time
}

// Config tunes the watcher.
type Config struct {
	Root   string
	Settle time.Duration // unchanged this long means ready (default 2s)
	Poll   time.Duration // how often candidates are re-examined (default Settle/4)
	Rescan time.Duration // full rescan period (default 60s)
	Depth  int           // folder levels below Root that hold files (default 1)
	// Quiet: a folder below Root whose own modification time (set when a
	// file is created, renamed or deleted in it) is older than this is
	// no longer watched through fsnotify, only rescanned (default an
	// hour, at least 3 rescan periods). A watch costs about 300 bytes of
	// the agent's memory (fsnotify's maps and the path), and the
	// scanner's folder keeps every scan ever made; a change in a quiet
	// folder is found by the next rescan, and a file created there makes
	// it watched again. An hour covers an inspection's 15/15/30-minute
	// limits (item 35): the shift lead's form edits of a scan under way
	// are seen at once, not at the next rescan.
	Quiet time.Duration
	Clock clock.Clock // settling and the poll and rescan periods; default clock.Real
	Log   *slog.Logger
}

type candidate struct {
	size       int64
	mod        time.Time
	lastChange time.Time
}

// maxCandidates bounds the files observed at once. Beyond it new files
// are left for a rescan, started as soon as half of them are emitted: a
// scanner that writes faster than the intake takes (a backlog after a
// stop) would otherwise have every file it wrote waiting here, about
// 200 bytes each.
const maxCandidates = 20_000

// Watcher emits Ready files on its channel.
type Watcher struct {
	cfg Config
	out chan Ready

	mu         sync.Mutex
	candidates map[string]*candidate // path -> being observed
	// emitted holds, for every file emitted, a hash of its path and one of
	// its path, size and modification time when emitted (see stamps). It
	// has an entry for every file in the output folder: 16 bytes an entry
	// (see emittedSet) instead of the path and stamp themselves, which
	// took about 150.
	emitted emittedSet
	// overflow is set when a file was left unobserved for maxCandidates.
	overflow bool
	limit    int // maxCandidates; tests lower it
	// grown is the most candidates held since the map was last replaced:
	// a Go map keeps its size after its entries are deleted.
	grown int
	// keySeed and stampSeed are independent, so that a file is taken for
	// one already emitted only if both 64-bit hashes collide.
	keySeed, stampSeed maphash.Seed
}

// stamps returns the keys of path's entry in emitted and of its state.
func (w *Watcher) stamps(path string, size int64, mod time.Time) (key, st uint64) {
	var h maphash.Hash
	h.SetSeed(w.stampSeed)
	h.WriteString(path)
	var b [16]byte
	binary.LittleEndian.PutUint64(b[:8], uint64(size))
	binary.LittleEndian.PutUint64(b[8:], uint64(mod.UnixNano()))
	h.Write(b[:])
	// Never 0, which marks a deleted entry in emitted.
	return maphash.String(w.keySeed, path), h.Sum64() | 1
}

// New returns a watcher; Run starts it.
func New(cfg Config) *Watcher {
	if cfg.Settle <= 0 {
		cfg.Settle = 2 * time.Second
	}
	if cfg.Poll <= 0 {
		cfg.Poll = max(cfg.Settle/4, 10*time.Millisecond)
	}
	if cfg.Rescan <= 0 {
		cfg.Rescan = time.Minute
	}
	if cfg.Depth <= 0 {
		cfg.Depth = 1
	}
	if cfg.Quiet <= 0 {
		cfg.Quiet = max(time.Hour, 3*cfg.Rescan)
	}
	cfg.Clock = clock.Or(cfg.Clock)
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	return &Watcher{
		cfg:        cfg,
		out:        make(chan Ready, 64),
		candidates: map[string]*candidate{},
		limit:      maxCandidates,
		keySeed:    maphash.MakeSeed(),
		stampSeed:  maphash.MakeSeed(),
	}
}

// Ready returns the channel of settled files.
func (w *Watcher) Ready() <-chan Ready { return w.out }

// Retry asks the watcher to emit path again once it is settled, even if it
// has not changed: the consumer could not use it yet (a half-written form).
func (w *Watcher) Retry(path string) {
	key, _ := w.stamps(path, 0, time.Time{})
	w.mu.Lock()
	w.emitted.delete(key)
	// Always taken, beyond maxCandidates too: a retry is not found again
	// by a rescan until the file changes.
	w.candidates[path] = &candidate{size: -1, lastChange: w.cfg.Clock.Now()}
	w.mu.Unlock()
}

// Run watches until ctx ends. It fails only if the root cannot be watched
// at all; a root that does not exist yet is waited for.
func (w *Watcher) Run(ctx context.Context) error {
	fsw, err := fsnotify.NewWatcher()
	if err != nil {
		// Without fsnotify the rescan still finds everything, only later.
		w.cfg.Log.Warn("fsnotify unavailable; relying on periodic rescans", "err", err)
	}
	var events chan fsnotify.Event
	var errs chan error
	if fsw != nil {
		defer fsw.Close()
		events, errs = fsw.Events, fsw.Errors
	}
	w.rescan(fsw)
	poll := w.cfg.Clock.NewTicker(w.cfg.Poll)
	defer poll.Stop()
	rescan := w.cfg.Clock.NewTicker(w.cfg.Rescan)
	defer rescan.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-events:
			if !ok {
				events = nil
				continue
			}
			w.onEvent(fsw, ev)
		case err, ok := <-errs:
			if !ok {
				errs = nil
				continue
			}
			// Overflow and friends: a rescan recovers whatever was missed.
			w.cfg.Log.Warn("fsnotify error; rescanning", "err", err)
			w.rescan(fsw)
		case <-rescan.C():
			w.rescan(fsw)
		case <-poll.C():
			if err := w.check(ctx); err != nil {
				return nil
			}
			if w.drained() {
				w.rescan(fsw)
			}
		}
	}
}

func (w *Watcher) onEvent(fsw *fsnotify.Watcher, ev fsnotify.Event) {
	if ev.Op&(fsnotify.Create|fsnotify.Write|fsnotify.Rename|fsnotify.Chmod) == 0 {
		return
	}
	fi, err := os.Lstat(ev.Name)
	if err != nil {
		return
	}
	if fi.IsDir() {
		if w.depth(ev.Name) <= w.cfg.Depth {
			w.addDir(fsw, ev.Name)
			// Files may have landed before the watch was added.
			w.walk(fsw, ev.Name)
		}
		return
	}
	w.observe(ev.Name, fi)
}

// depth is how many folder levels path is below the root.
func (w *Watcher) depth(path string) int {
	rel, err := filepath.Rel(w.cfg.Root, path)
	if err != nil {
		return 1 << 10
	}
	n := 1
	for _, c := range rel {
		if c == filepath.Separator {
			n++
		}
	}
	return n
}

func (w *Watcher) addDir(fsw *fsnotify.Watcher, dir string) {
	if fsw == nil {
		return
	}
	if err := fsw.Add(dir); err != nil {
		w.cfg.Log.Warn("cannot watch folder; rescans will still find its files", "dir", dir, "err", err)
	}
}

func (w *Watcher) rescan(fsw *fsnotify.Watcher) {
	if _, err := os.Stat(w.cfg.Root); err != nil {
		w.cfg.Log.Warn("output folder not reachable; will retry", "dir", w.cfg.Root, "err", err)
		return
	}
	w.addDir(fsw, w.cfg.Root)
	w.unwatchQuiet(fsw)
	w.walk(fsw, w.cfg.Root)
}

// quiet says whether a folder last changed at mod is left to the rescans.
// File times are the file system's wall clock, hence time.Now, not the
// configured clock.
func (w *Watcher) quiet(mod time.Time) bool { return time.Since(mod) >= w.cfg.Quiet }

// unwatchQuiet removes the fsnotify watches of the folders gone quiet.
func (w *Watcher) unwatchQuiet(fsw *fsnotify.Watcher) {
	if fsw == nil {
		return
	}
	for _, dir := range fsw.WatchList() {
		if dir == w.cfg.Root {
			continue
		}
		fi, err := os.Stat(dir)
		if err != nil || !w.quiet(fi.ModTime()) {
			continue // a folder gone is unwatched by fsnotify itself
		}
		if err := fsw.Remove(dir); err != nil {
			w.cfg.Log.Debug("cannot stop watching a quiet folder", "dir", dir, "err", err)
		}
	}
}

// walk observes the files below dir, down to the configured depth, and
// watches the folders there that are not quiet. It reads each folder in
// chunks, in the file system's order: filepath.WalkDir reads a whole
// folder and sorts it first, and the output folder holds a folder for
// every scan ever made, 50 000 entries (some 5 MB) at every rescan.
func (w *Watcher) walk(fsw *fsnotify.Watcher, dir string) {
	if err := w.walkDir(fsw, dir); err != nil {
		w.cfg.Log.Warn("rescan failed", "dir", dir, "err", err)
	}
}

func (w *Watcher) walkDir(fsw *fsnotify.Watcher, dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	for {
		entries, err := f.ReadDir(256)
		for _, d := range entries {
			path := filepath.Join(dir, d.Name())
			switch {
			case d.IsDir():
				if w.depth(path) > w.cfg.Depth {
					continue
				}
				if fi, err := d.Info(); err != nil || !w.quiet(fi.ModTime()) {
					w.addDir(fsw, path)
				}
				// A folder that vanished or is unreadable is skipped; the
				// next rescan tries it again.
				_ = w.walkDir(fsw, path)
			case d.Type().IsRegular(): // symlinks and devices are not scan files
				if fi, err := d.Info(); err == nil {
					w.observe(path, fi)
				}
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// observe notes the current state of a file; it becomes a candidate if it
// differs from what was last emitted.
func (w *Watcher) observe(path string, fi fs.FileInfo) {
	if !fi.Mode().IsRegular() {
		return
	}
	key, st := w.stamps(path, fi.Size(), fi.ModTime())
	w.mu.Lock()
	defer w.mu.Unlock()
	if e, ok := w.emitted.get(key); ok && e == st {
		return
	}
	if _, ok := w.candidates[path]; !ok {
		if len(w.candidates) >= w.limit {
			w.overflow = true
			return
		}
		w.candidates[path] = &candidate{size: -1, lastChange: w.cfg.Clock.Now()}
	}
}

// drained says whether files were left unobserved for maxCandidates and
// there is room for them again: the caller rescans to find them.
func (w *Watcher) drained() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.overflow || len(w.candidates) > w.limit/2 {
		return false
	}
	w.overflow = false
	return true
}

// check re-stats every candidate and emits those that have settled.
func (w *Watcher) check(ctx context.Context) error {
	now := w.cfg.Clock.Now()
	var ready []Ready
	w.mu.Lock()
	w.grown = max(w.grown, len(w.candidates))
	for path, c := range w.candidates {
		fi, err := os.Lstat(path)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				delete(w.candidates, path)
			}
			continue
		}
		if fi.Size() != c.size || !fi.ModTime().Equal(c.mod) {
			c.size, c.mod, c.lastChange = fi.Size(), fi.ModTime(), now
			continue
		}
		if now.Sub(c.lastChange) < w.cfg.Settle {
			continue
		}
		rel, err := filepath.Rel(w.cfg.Root, path)
		if err != nil {
			delete(w.candidates, path)
			continue
		}
		delete(w.candidates, path)
		key, st := w.stamps(path, c.size, c.mod)
		w.emitted.put(key, st)
		ready = append(ready, Ready{Path: path, Rel: filepath.ToSlash(rel), Size: c.size, ModTime: c.mod})
	}
	if len(w.candidates) == 0 && w.grown > 1024 {
		// A burst (a backlog after a stop) is over: give back its map.
		w.candidates, w.grown = map[string]*candidate{}, 0
	}
	w.mu.Unlock()
	for _, r := range ready {
		select {
		case w.out <- r:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}
