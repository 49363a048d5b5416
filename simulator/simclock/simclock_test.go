package simclock

import (
	"testing"
	"time"
)

var start = time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)

func TestPacerWaitAdvancesAndRunsHooks(t *testing.T) {
	c := New(start)
	var spans [][2]time.Time
	c.OnAdvance(func(from, to time.Time) {
		if !c.Now().Equal(to) {
			t.Errorf("hook sees Now %v, want %v", c.Now(), to)
		}
		spans = append(spans, [2]time.Time{from, to})
	})
	p := c.Pacer()
	got := <-p.NewTimer(10 * time.Second).C()
	if want := start.Add(10 * time.Second); !got.Equal(want) || !c.Now().Equal(want) {
		t.Fatalf("after: %v, now %v", got, c.Now())
	}
	<-p.NewTimer(5 * time.Second).C()
	if len(spans) != 2 || !spans[1][0].Equal(start.Add(10*time.Second)) || !spans[1][1].Equal(start.Add(15*time.Second)) {
		t.Fatalf("hook spans: %v", spans)
	}
}

func TestTimersFireAsTimePasses(t *testing.T) {
	c := New(start)
	tm := c.NewTimer(10 * time.Second)
	tk := c.NewTicker(3 * time.Second)
	defer tk.Stop()
	stopped := c.NewTimer(time.Second)
	if !stopped.Stop() {
		t.Fatal("Stop of a pending timer reported it was not pending")
	}
	ran := make(chan time.Time, 1)
	c.AfterFunc(4*time.Second, func() { ran <- c.Now() })

	c.Advance(2 * time.Second)
	select {
	case <-tm.C():
		t.Fatal("timer fired early")
	case <-tk.C():
		t.Fatal("ticker fired early")
	default:
	}
	c.Advance(8 * time.Second) // to 10 s: ticks at 3, 6 and 9 s fold into one
	if got := <-tk.C(); !got.Equal(start.Add(3 * time.Second)) {
		t.Errorf("tick at %v, want the first deadline", got)
	}
	if got := <-tm.C(); !got.Equal(start.Add(10 * time.Second)) {
		t.Errorf("timer fired at %v", got)
	}
	if got := <-ran; got.Before(start.Add(4 * time.Second)) {
		t.Errorf("AfterFunc ran at %v", got)
	}
	select {
	case <-stopped.C():
		t.Error("a stopped timer fired")
	default:
	}
	c.Advance(2 * time.Second) // the next tick is due at 12 s
	if got := <-tk.C(); !got.Equal(start.Add(12 * time.Second)) {
		t.Errorf("tick at %v, want 12 s", got)
	}
	if tm.Reset(time.Second); !c.Now().Equal(start.Add(12 * time.Second)) {
		t.Fatal("Reset moved the time")
	}
	c.Advance(time.Second)
	if got := <-tm.C(); !got.Equal(start.Add(13 * time.Second)) {
		t.Errorf("reset timer fired at %v", got)
	}
}
