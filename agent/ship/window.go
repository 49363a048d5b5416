package ship

import (
	"context"
	"errors"
	"maps"
	"slices"
	"sync"
	"time"

	"idk/agent/spool"
	"idk/protocol/transport"
)

// The window's defaults. A 100 KiB document is 40 ms of a 20 Mbit/s link,
// its two round trips and the collector's commit at least 250 ms at 100 ms
// RTT, and more once the link's queue fills: measured through the relay
// (idk-sim linkbench -cases docs), 8 files in flight use 0.80 of the
// link, 16 use 0.86, 32 use 0.93. 64 MiB lets two or three large images
// go at once beside the documents.
const (
	DefaultWindowFiles = 32
	// MaxWindowFiles is the collector's limit on file streams in flight
	// per connection (collector/server); a larger window would only be
	// refused there.
	MaxWindowFiles     = 32
	DefaultWindowBytes = 64 << 20
	DefaultFreshAge    = time.Hour
)

// class splits the queue for the window: fresh files (first seen less
// than Config.FreshAge ago) are started before the backlog and have slots
// of the window kept for them.
type class int

const (
	classBacklog class = iota
	classFresh
)

// window is the set of files in flight and the rule that admits another:
//
//   - at most files in flight in all, and at most files-reserve of the
//     backlog, so that a fresh file finds a free slot at once even while
//     a backlog of small documents keeps the window busy;
//   - the sizes of the files in flight together at most bytes, except
//     that each class may have one file in flight whatever its size: an
//     image larger than the budget still goes, and a large backlog image
//     in flight never shuts today's files out;
//   - while probing a collector that refused every file (a full disk),
//     one file at a time.
//
// Which file goes next is the walk's choice (see next): fresh files
// oldest first, then the backlog oldest first, each the first that fits.
type window struct {
	files, reserve int
	bytes          int64

	n       [2]int // files in flight, by class
	size    int64  // their sizes together
	flights map[string]flight
}

type flight struct {
	class class
	size  int64
}

func newWindow(files int, bytes int64) *window {
	return &window{files: files, reserve: files / 8, bytes: bytes, flights: map[string]flight{}}
}

func (w *window) count() int { return w.n[classBacklog] + w.n[classFresh] }

// fits reports whether a file of class c and size may start now.
func (w *window) fits(c class, size int64, probing bool) bool {
	switch total := w.count(); {
	case probing:
		return total == 0
	case total >= w.files:
		return false
	case c == classBacklog && w.n[classBacklog] >= w.files-w.reserve:
		return false
	}
	return w.n[c] == 0 || w.size+size <= w.bytes
}

func (w *window) add(key string, c class, size int64) {
	w.flights[key] = flight{c, size}
	w.n[c]++
	w.size += size
}

func (w *window) remove(key string) {
	fl, ok := w.flights[key]
	if !ok {
		return
	}
	delete(w.flights, key)
	w.n[fl.class]--
	w.size -= fl.size
}

func (w *window) has(key string) bool {
	_, ok := w.flights[key]
	return ok
}

// sent is the outcome of one file's transfer.
type sent struct {
	f   spool.File
	err error
}

// files keeps the window full: it starts each file on a stream of its
// own, takes the outcomes as they come, in any order (each transfer marks
// its own file in the spool), and ends, aborting the transfers in flight,
// when one fails for a reason that concerns the connection.
func (s *Shipper) files(ctx context.Context, conn transport.Conn) error {
	changed, unsubscribe := s.cfg.Spool.Subscribe()
	defer unsubscribe()
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	w := newWindow(s.windowFiles, s.cfg.WindowBytes)
	// Each transfer sends one outcome and the window holds at most
	// windowFiles of them: the channel never blocks a transfer, even
	// after this loop has returned.
	done := make(chan sent, s.windowFiles)
	defer s.setInFlight(&window{})
	for {
		if err := ctx.Err(); err != nil {
			return err // a file that fails before any network call must not keep the loop from seeing this
		}
		now := s.cfg.Clock.Now()
		start, due, err := s.next(w, now)
		if err != nil {
			return err
		}
		for _, f := range start {
			wg.Go(func() { done <- sent{f, s.sendFile(ctx, conn, f)} })
		}
		s.setInFlight(w)
		wait := pollEvery
		if !due.IsZero() {
			wait = max(due.Sub(now), 0)
		}
		t := s.cfg.Clock.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case r := <-done:
			t.Stop()
			if err := s.finished(w, r); err != nil {
				return err
			}
			// Take every outcome already in before the next walk.
			for more := true; more; {
				select {
				case r := <-done:
					if err := s.finished(w, r); err != nil {
						return err
					}
				default:
					more = false
				}
			}
		case <-changed:
			t.Stop()
		case <-t.C():
		}
	}
}

// setInFlight exports the window's occupation.
func (s *Shipper) setInFlight(w *window) {
	s.cfg.Metrics.FilesInFlight.Set(float64(w.count()))
	s.cfg.Metrics.BytesInFlight.Set(float64(w.size))
}

// finished takes one transfer's outcome; an error it returns ends the
// session.
func (s *Shipper) finished(w *window, r sent) error {
	w.remove(r.f.Key())
	var later errLater
	switch {
	case errors.As(r.err, &later):
		s.later(r.f, r.err)
		if later.all {
			// Every file would get the same answer: the whole queue waits,
			// backing off, and then one file probes alone, instead of the
			// window offering the queue file by file. The other transfers
			// of the same window were refused together: one backoff step
			// for them all.
			now := s.cfg.Clock.Now()
			if !now.Before(s.paused) {
				s.paused = now.Add(s.pause)
				s.pause = min(2*s.pause, retryMax)
			}
			s.probing = true
		}
		return nil
	case r.err != nil:
		return r.err
	}
	delete(s.retries, r.f.Key())
	s.pause, s.probing = retryMin, false
	return nil
}

// next chooses the files to start now, and returns the earliest time a
// file passed over (waiting on its backoff, or the whole queue paused)
// may go. It reads the queue from the oldest end as far as it needs: up
// to a window's worth of candidates of each class beyond those in
// flight. Files are queued in the order they were first seen, so the
// fresh ones are at the newest end: when the backlog alone fills the
// candidates, the fresh ones are read from that end, and only they.
func (s *Shipper) next(w *window, now time.Time) (start []spool.File, due time.Time, err error) {
	if now.Before(s.paused) {
		return nil, s.paused, nil
	}
	if w.count() >= w.files || s.probing && w.count() > 0 {
		return nil, time.Time{}, nil
	}
	cut := now.Add(-s.cfg.FreshAge)
	isFresh := func(f spool.File) bool { return !f.FirstSeen.Before(cut) }
	// waiting reports a file that is not a candidate now: in flight, or
	// on its backoff.
	walk := s.walk + 1
	s.walk = walk
	waiting := func(f spool.File) bool {
		r := s.retries[f.Key()]
		if r != nil {
			r.walk = walk // still queued: its backoff is kept, in flight or not
		}
		if w.has(f.Key()) {
			return true
		}
		if r == nil {
			return false
		}
		if !now.Before(r.due) {
			return false
		}
		if due.IsZero() || r.due.Before(due) {
			due = r.due
		}
		return true
	}
	want := 2 * w.files
	var old, recent []spool.File
	whole, reachedFresh := true, false
	err = s.cfg.Spool.Queued(false, func(f spool.File) bool {
		if waiting(f) {
			return true
		}
		if isFresh(f) {
			reachedFresh = true
			recent = append(recent, f)
		} else if len(old) < want {
			old = append(old, f)
		} else {
			whole = false
			return false
		}
		if len(recent) >= want {
			whole = false
			return false
		}
		return true
	})
	if err == nil && !reachedFresh && !whole {
		err = s.cfg.Spool.Queued(true, func(f spool.File) bool {
			if !isFresh(f) {
				return false
			}
			if !waiting(f) {
				recent = append(recent, f)
			}
			return true
		})
		slices.Reverse(recent)
		recent = recent[:min(len(recent), want)]
	}
	if err != nil {
		return nil, time.Time{}, err
	}
	if whole {
		// This walk saw every queued file: forget the waits of files that
		// have left the queue (re-queued later, they start afresh).
		maps.DeleteFunc(s.retries, func(_ string, r *retry) bool { return r.walk != walk })
	}
	for _, c := range []struct {
		class class
		files []spool.File
	}{{classFresh, recent}, {classBacklog, old}} {
		for _, f := range c.files {
			if w.fits(c.class, f.Size, s.probing) {
				w.add(f.Key(), c.class, f.Size)
				start = append(start, f)
			}
		}
	}
	return start, due, nil
}
