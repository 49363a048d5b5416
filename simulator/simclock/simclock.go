// Package simclock is the virtual clock of the tree's tests and
// simulations, the fake behind internal/clock.Clock: time moves only when
// the simulation moves it, so a 24-hour day passes in as long as its work
// takes. A hook sees every step forward, which is where a scenario applies
// what was scheduled for that moment.
//
// Time moves in two ways. Advance moves it from outside, as a test does.
// And the one part of a simulation that sets its pace (a poller, a
// generator) gets Pacer's view of the clock, whose waits end at once by
// moving the time forward; the timers and tickers of every other part fire
// as the time passes them.
package simclock

import (
	"slices"
	"sync"
	"time"

	"idk/internal/clock"
)

// Clock is a virtual clock.
type Clock struct {
	mu     sync.Mutex
	now    time.Time
	hooks  []func(from, to time.Time)
	timers []*timer // pending, in no order
}

// New returns a clock set to start.
func New(start time.Time) *Clock { return &Clock{now: start} }

// Now is the virtual time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// OnAdvance adds a hook called after each step forward, with the time
// already set to to and before the timers due by to fire. Hooks run on the
// goroutine that moved the time.
func (c *Clock) OnAdvance(f func(from, to time.Time)) {
	c.mu.Lock()
	c.hooks = append(c.hooks, f)
	c.mu.Unlock()
}

// Advance moves the time forward by d (not at all if d is negative), runs
// the hooks, then fires the timers, tickers and AfterFuncs due, in the
// order of their deadlines. A ticker that missed several ticks fires once,
// as a time.Ticker with a slow receiver does.
func (c *Clock) Advance(d time.Duration) time.Time {
	c.mu.Lock()
	from := c.now
	c.now = c.now.Add(max(d, 0))
	to := c.now
	hooks := slices.Clone(c.hooks)
	c.mu.Unlock()
	for _, h := range hooks {
		h(from, to)
	}
	c.fire(to)
	return to
}

// fire fires what is due at now. It sends under the lock, which a send
// that never blocks allows, so that a Stop that returns has seen it.
func (c *Clock) fire(now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var due []*timer
	c.timers = slices.DeleteFunc(c.timers, func(t *timer) bool {
		if t.when.After(now) {
			return false
		}
		due = append(due, t)
		return t.period == 0
	})
	slices.SortStableFunc(due, func(a, b *timer) int { return a.when.Compare(b.when) })
	for _, t := range due {
		when := t.when
		for t.period > 0 && !t.when.After(now) {
			t.when = t.when.Add(t.period)
		}
		if t.f != nil {
			go t.f()
			continue
		}
		select {
		case t.ch <- when:
		default: // the receiver has not taken the last tick yet
		}
	}
}

// NewTimer returns a timer that fires when the time reaches now+d.
func (c *Clock) NewTimer(d time.Duration) clock.Timer {
	return c.add(&timer{ch: make(chan time.Time, 1)}, d)
}

// NewTicker returns a ticker that fires every d of virtual time.
func (c *Clock) NewTicker(d time.Duration) clock.Ticker {
	if d <= 0 {
		panic("simclock: non-positive interval for NewTicker")
	}
	return ticker{c.add(&timer{ch: make(chan time.Time, 1), period: d}, d)}
}

// AfterFunc calls f in its own goroutine when the time reaches now+d.
func (c *Clock) AfterFunc(d time.Duration, f func()) clock.Timer {
	return c.add(&timer{f: f}, d)
}

// add schedules t at now+d; a timer due already fires at once.
func (c *Clock) add(t *timer, d time.Duration) *timer {
	t.c = c
	c.mu.Lock()
	now := c.now
	t.when = now.Add(d)
	c.timers = append(c.timers, t)
	c.mu.Unlock()
	if d <= 0 {
		c.fire(now)
	}
	return t
}

// Pacer returns c as seen by the part of a simulation that sets its pace:
// a timer it makes moves the time forward to the timer's deadline (running
// the hooks, firing what falls due) before it is returned, fired. Waiting
// thus costs no real time, and the simulation runs as fast as its work.
// Its tickers and AfterFuncs are c's and do not move the time.
func (c *Clock) Pacer() clock.Clock { return pacer{c} }

type pacer struct{ *Clock }

func (p pacer) NewTimer(d time.Duration) clock.Timer {
	t := p.Clock.NewTimer(d)
	p.Advance(d)
	return t
}

// timer is a pending timer, ticker or AfterFunc of a Clock.
type timer struct {
	c      *Clock
	ch     chan time.Time // nil for an AfterFunc
	f      func()
	when   time.Time
	period time.Duration // a ticker's
}

func (t *timer) C() <-chan time.Time { return t.ch }

// Stop unschedules t and drops a time it fired but was not received, as
// time.Timer's Stop does since Go 1.23. It reports whether t was pending.
func (t *timer) Stop() bool {
	c := t.c
	c.mu.Lock()
	defer c.mu.Unlock()
	n := len(c.timers)
	c.timers = slices.DeleteFunc(c.timers, func(u *timer) bool { return u == t })
	if t.ch != nil {
		select {
		case <-t.ch:
		default:
		}
	}
	return len(c.timers) < n
}

// ticker is a timer with a period, stopped as a time.Ticker is.
type ticker struct{ *timer }

func (t ticker) Stop() { t.timer.Stop() }

// Reset reschedules t at now+d; it reports whether t was pending.
func (t *timer) Reset(d time.Duration) bool {
	pending := t.Stop()
	t.c.add(t, d)
	return pending
}
