package store

import (
	"sync"

	"idk/collector/kv"
)

// groupCommit runs index updates of concurrent uploads (offers, records)
// in shared transactions: each bbolt commit costs an fsync (a PostgreSQL
// commit a round trip and a flush of the server's log), and a window
// of files in flight asks for several at about the same time. An update
// that finds no commit under way starts one at once (no added wait, unlike
// bolt.DB.Batch's MaxBatchDelay); the ones that arrive while a commit runs
// go together in the next. Each caller returns only after the commit that
// holds its change is on disk (or failed): durable before acknowledged.
type groupCommit struct {
	db kv.DB

	mu    sync.Mutex
	queue []*groupReq
	busy  bool // a commit is under way, and its leader runs the next
}

type groupReq struct {
	fn   func(kv.Tx) error
	done chan error
}

// update runs fn in a write transaction shared with other updates. fn may
// be called more than once (if another update in its transaction fails,
// the rest run again without it; and the index may retry a transaction),
// so it must set every result it reports on each call.
func (g *groupCommit) update(fn func(kv.Tx) error) error {
	req := &groupReq{fn: fn, done: make(chan error, 1)}
	g.mu.Lock()
	g.queue = append(g.queue, req)
	lead := !g.busy
	g.busy = true
	g.mu.Unlock()
	if lead {
		g.drain()
	}
	return <-req.done
}

// drain commits what is queued; if more arrived meanwhile, another
// goroutine commits that, so that this caller returns at once.
func (g *groupCommit) drain() {
	g.mu.Lock()
	batch := g.queue
	g.queue = nil
	g.mu.Unlock()
	g.run(batch)
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.queue) > 0 {
		go g.drain()
		return
	}
	g.busy = false
}

// run commits batch in one transaction. An update whose fn fails is taken
// out and run in a transaction of its own, so that its error is its own,
// and the others are committed without it, as bolt.DB.Batch does.
func (g *groupCommit) run(batch []*groupReq) {
	for len(batch) > 0 {
		failed := -1
		err := g.db.Update(func(tx kv.Tx) error {
			// The index may run this again (PostgreSQL retries a
			// transaction that lost a conflict): only the last run's
			// failure counts.
			failed = -1
			for i, r := range batch {
				if err := r.fn(tx); err != nil {
					failed = i
					return err
				}
			}
			return nil
		})
		if failed < 0 {
			for _, r := range batch {
				r.done <- err
			}
			return
		}
		r := batch[failed]
		batch = append(batch[:failed:failed], batch[failed+1:]...)
		r.done <- g.db.Update(r.fn)
	}
}
