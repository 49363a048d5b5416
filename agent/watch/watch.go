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
	"errors"
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
	Clock  clock.Clock   // settling and the poll and rescan periods; default clock.Real
	Log    *slog.Logger
}

type candidate struct {
	size       int64
	mod        time.Time
	lastChange time.Time
}

type stamp struct {
	size int64
	mod  time.Time
}

// Watcher emits Ready files on its channel.
type Watcher struct {
	cfg Config
	out chan Ready

	mu         sync.Mutex
	candidates map[string]*candidate // path -> being observed
	emitted    map[string]stamp      // path -> state when last emitted
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
	cfg.Clock = clock.Or(cfg.Clock)
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	return &Watcher{
		cfg:        cfg,
		out:        make(chan Ready, 64),
		candidates: map[string]*candidate{},
		emitted:    map[string]stamp{},
	}
}

// Ready returns the channel of settled files.
func (w *Watcher) Ready() <-chan Ready { return w.out }

// Retry asks the watcher to emit path again once it is settled, even if it
// has not changed: the consumer could not use it yet (a half-written form).
func (w *Watcher) Retry(path string) {
	w.mu.Lock()
	delete(w.emitted, path)
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
	w.walk(fsw, w.cfg.Root)
}

func (w *Watcher) walk(fsw *fsnotify.Watcher, dir string) {
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if path == dir {
				return err
			}
			return nil // a folder that vanished or is unreadable: skip it, rescan again later
		}
		if d.IsDir() {
			if path != dir {
				if w.depth(path) > w.cfg.Depth {
					return fs.SkipDir
				}
				w.addDir(fsw, path)
			}
			return nil
		}
		if !d.Type().IsRegular() {
			return nil // symlinks and devices are not scan files
		}
		if fi, err := d.Info(); err == nil {
			w.observe(path, fi)
		}
		return nil
	})
	if err != nil {
		w.cfg.Log.Warn("rescan failed", "dir", dir, "err", err)
	}
}

// observe notes the current state of a file; it becomes a candidate if it
// differs from what was last emitted.
func (w *Watcher) observe(path string, fi fs.FileInfo) {
	if !fi.Mode().IsRegular() {
		return
	}
	st := stamp{fi.Size(), fi.ModTime()}
	w.mu.Lock()
	defer w.mu.Unlock()
	if e, ok := w.emitted[path]; ok && e == st {
		return
	}
	if _, ok := w.candidates[path]; !ok {
		w.candidates[path] = &candidate{size: -1, lastChange: w.cfg.Clock.Now()}
	}
}

// check re-stats every candidate and emits those that have settled.
func (w *Watcher) check(ctx context.Context) error {
	now := w.cfg.Clock.Now()
	var ready []Ready
	w.mu.Lock()
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
		w.emitted[path] = stamp{c.size, c.mod}
		ready = append(ready, Ready{Path: path, Rel: filepath.ToSlash(rel), Size: c.size, ModTime: c.mod})
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
