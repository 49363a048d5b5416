// Package clock is the one clock every timer and ticker of the tree goes
// through.
//
// Code that decides by time (a poll interval, a backoff, a retry's due time,
// how long a file has been still) takes a Clock instead of calling package
// time, so that a test or a simulation can run it on virtual time
// (simulator/simclock) while the programs run it on Real. Times that only
// stamp a log line, and deadlines handed to the network, which measures them
// against the wall clock, stay with package time.
//
// The shape follows Tailscale's tstime.Clock: timers and tickers are small
// interfaces, so that a fake can stand behind them.
package clock

import (
	"context"
	"time"
)

// Clock tells the time and makes timers on it.
type Clock interface {
	// Now is the current time.
	Now() time.Time
	// NewTimer returns a timer that fires once, after d, like
	// time.NewTimer.
	NewTimer(d time.Duration) Timer
	// NewTicker returns a ticker that fires every d, dropping ticks for a
	// slow receiver, like time.NewTicker. d must be positive.
	NewTicker(d time.Duration) Ticker
	// AfterFunc calls f in its own goroutine after d, like time.AfterFunc.
	// The Timer it returns has a nil C.
	AfterFunc(d time.Duration, f func()) Timer
}

// Timer is a single event, as a time.Timer. Stop and Reset behave as
// time.Timer's do since Go 1.23: after either returns, no stale time is
// received from C.
type Timer interface {
	C() <-chan time.Time
	Stop() bool
	Reset(d time.Duration) bool
}

// Ticker is a series of events, as a time.Ticker.
type Ticker interface {
	C() <-chan time.Time
	Stop()
}

// Real returns the clock of package time.
func Real() Clock { return wall{} }

type wall struct{}

func (wall) Now() time.Time                   { return time.Now() }
func (wall) NewTimer(d time.Duration) Timer   { return realTimer{time.NewTimer(d)} }
func (wall) NewTicker(d time.Duration) Ticker { return realTicker{time.NewTicker(d)} }
func (wall) AfterFunc(d time.Duration, f func()) Timer {
	return realTimer{time.AfterFunc(d, f)}
}

type realTimer struct{ t *time.Timer }

func (t realTimer) C() <-chan time.Time        { return t.t.C }
func (t realTimer) Stop() bool                 { return t.t.Stop() }
func (t realTimer) Reset(d time.Duration) bool { return t.t.Reset(d) }

type realTicker struct{ t *time.Ticker }

func (t realTicker) C() <-chan time.Time { return t.t.C }
func (t realTicker) Stop()               { t.t.Stop() }

// Or returns c, or Real if c is nil: the default of every Config that
// takes a Clock.
func Or(c Clock) Clock {
	if c == nil {
		return Real()
	}
	return c
}

// Sleep waits d on c, or until ctx ends, whichever comes first. It returns
// ctx.Err() if ctx ended, so that a loop can stop on it. A d of zero or
// less does not wait.
func Sleep(ctx context.Context, c Clock, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := c.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C():
		return nil
	}
}

// Every calls f every d on c until ctx ends: the loop of a daemon's
// periodic chores. The first call comes after d. A call that outlasts d
// delays the next rather than stacking calls up, as a time.Ticker drops
// ticks for a slow receiver. Every returns when ctx ends, after the call
// in progress if any; d must be positive.
func Every(ctx context.Context, c Clock, d time.Duration, f func()) {
	t := c.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C():
		}
		// A tick and the end of ctx can be ready together, and select
		// picks either: the end wins, so no call starts after it.
		if ctx.Err() != nil {
			return
		}
		f()
	}
}
