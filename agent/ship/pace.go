package ship

import (
	"context"
	"math"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"idk/internal/clock"
	"idk/protocol/transport"
)

// Pacing. Files are background traffic: a form (an event) saved while an
// image is in flight must not wait behind it in the queue of a thin
// link's bottleneck. The connections' congestion controls fill that queue
// until it overflows (on the relay's 20 Mbit/s link, half a second of
// queue; with a file striped over sixteen lanes, always), and a form's
// packets wait there too. So, as LEDBAT does for background transfers,
// the agent watches the queueing delay its connection sees (round trip
// above its shortest) and slows the file bytes down while it exceeds
// paceTarget, and lets them speed up again while it stays below half of
// it. Forms and events are never paced.
const (
	paceTarget = 100 * time.Millisecond
	paceEvery  = 100 * time.Millisecond
	paceFloor  = 32 << 10 // bytes per second: files always move
)

// pacer holds the file-bytes limiter the delay controls; rate.Inf while
// the queue stays short.
type pacer struct {
	lim  *rate.Limiter
	sent atomic.Int64 // file bytes handed to the transport
}

func newPacer() *pacer {
	return &pacer{lim: rate.NewLimiter(rate.Inf, 0)}
}

// wait takes n bytes from the pace.
func (p *pacer) wait(ctx context.Context, n int) error {
	p.sent.Add(int64(n))
	if p.lim.Limit() == rate.Inf {
		return nil
	}
	return p.lim.WaitN(ctx, n)
}

// delays reads the queueing delay that a session's connection and its
// lanes see, for the pacer's ticks.
type delays struct {
	conn  transport.Conn
	lanes *lanes
	// received is each connection's packet count at the last tick: only
	// a connection that has received since then has a fresh estimate. A
	// lane gone idle keeps the inflated round trip of its last busy
	// moment, and counting it held the files at the floor pace until the
	// lane closed, a minute later (seen in make demo on loopback).
	received map[transport.Conn]uint64
}

// delay is the largest fresh queueing delay of the connection and its
// lanes (the lanes carry the stripes, so theirs are the fresh ones), 0 if
// none is fresh; ok is false on a transport without the estimate.
func (d *delays) delay() (time.Duration, bool) {
	if _, _, ok := transport.QueueDelay(d.conn); !ok {
		return 0, false
	}
	if d.received == nil {
		d.received = map[transport.Conn]uint64{}
	}
	seen := map[transport.Conn]uint64{}
	var worst time.Duration
	look := func(c transport.Conn) {
		qd, n, ok := transport.QueueDelay(c)
		if !ok {
			return
		}
		seen[c] = n
		if last, known := d.received[c]; known && n > last {
			worst = max(worst, qd)
		}
	}
	look(d.conn)
	if d.lanes != nil {
		d.lanes.each(look)
	}
	d.received = seen // closed lanes drop out
	return worst, true
}

// run adjusts the pace to the queueing delay until ctx ends.
func (p *pacer) run(ctx context.Context, clk clock.Clock, delay func() (time.Duration, bool)) error {
	if _, ok := delay(); !ok {
		return nil
	}
	defer p.lim.SetLimit(rate.Inf)
	last := p.sent.Load()
	clock.Every(ctx, clk, paceEvery, func() {
		d, _ := delay()
		now := p.sent.Load()
		sentRate := float64(now-last) / paceEvery.Seconds()
		last = now
		cur := float64(p.lim.Limit())
		switch {
		case d > paceTarget && sentRate > paceFloor:
			if cur == math.Inf(1) || cur > sentRate {
				cur = sentRate
			}
			p.set(cur * 0.95)
		case d < paceTarget/2 && cur != math.Inf(1):
			if cur > 4*max(sentRate, paceFloor) {
				// The files are not using the pace (none in flight):
				// let the next ones start unpaced.
				p.lim.SetLimit(rate.Inf)
				return
			}
			p.set(cur*1.05 + paceFloor/10)
		}
	})
	return nil
}

func (p *pacer) set(bps float64) {
	bps = max(bps, paceFloor)
	// A burst of one chunk: WaitN takes a whole chunk at a time.
	p.lim.SetBurst(1 << 20)
	p.lim.SetLimit(rate.Limit(bps))
}
