package ship

import (
	"context"
	"math"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"idk/simulator/simclock"
)

// The pace follows the queueing delay: files sending into a queue longer
// than paceTarget are slowed below what they sent, and once the queue is
// short and the files no longer use the pace they go unpaced again.
func TestPaceFollowsQueueDelay(t *testing.T) {
	p := newPacer()
	clk := simclock.New(time.Date(2026, 11, 28, 9, 0, 0, 0, time.UTC))
	var delay atomic.Int64
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.run(ctx, clk, func() (time.Duration, bool) { return time.Duration(delay.Load()), true })
	}()
	defer func() { cancel(); <-done }()
	tick := func(sent int64) {
		t.Helper()
		p.sent.Add(sent)
		clk.Advance(paceEvery)
		time.Sleep(20 * time.Millisecond) // the pacer's tick runs
	}
	time.Sleep(50 * time.Millisecond) // the pacer makes its ticker on clk

	// 250 kB in a tick is 2.5 MB/s into a queue of 400 ms.
	delay.Store(int64(400 * time.Millisecond))
	tick(250_000)
	if got := float64(p.lim.Limit()); math.IsInf(got, 1) || got > 2.5e6*0.95+1 {
		t.Fatalf("pace %v after a long queue, want at most 0.95 × 2.5 MB/s", got)
	}
	slowed := p.lim.Limit()
	tick(250_000)
	if p.lim.Limit() >= slowed {
		t.Fatalf("pace %v, then %v: the queue stays long, it must go down", slowed, p.lim.Limit())
	}
	// The queue is short and nothing is sent: the files go unpaced.
	delay.Store(int64(10 * time.Millisecond))
	for range 3 {
		tick(0)
	}
	if p.lim.Limit() != rate.Inf {
		t.Fatalf("pace %v with a short queue and no files, want none", p.lim.Limit())
	}
}
