// Package simclock is a virtual clock for simulations: time moves only
// when the simulation waits, so a 24-hour day passes in as long as its work
// takes. A hook sees every step forward, which is where a scenario applies
// what was scheduled for that moment.
package simclock

import (
	"sync"
	"time"
)

// Clock is a virtual clock. Its After returns a channel that has already
// fired, having moved the time forward by d.
type Clock struct {
	mu    sync.Mutex
	now   time.Time
	hooks []func(from, to time.Time)
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
// already set to to. Hooks run on the goroutine that waited.
func (c *Clock) OnAdvance(f func(from, to time.Time)) {
	c.mu.Lock()
	c.hooks = append(c.hooks, f)
	c.mu.Unlock()
}

// Advance moves the time forward by d and runs the hooks.
func (c *Clock) Advance(d time.Duration) time.Time {
	c.mu.Lock()
	from := c.now
	c.now = c.now.Add(d)
	to := c.now
	hooks := append([]func(time.Time, time.Time){}, c.hooks...)
	c.mu.Unlock()
	for _, h := range hooks {
		h(from, to)
	}
	return to
}

// After advances the clock by d and returns a channel holding the new time.
func (c *Clock) After(d time.Duration) <-chan time.Time {
	ch := make(chan time.Time, 1)
	ch <- c.Advance(max(d, 0))
	return ch
}
