package simclock

import (
	"testing"
	"time"
)

func TestAfterAdvancesAndRunsHooks(t *testing.T) {
	start := time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)
	c := New(start)
	var spans [][2]time.Time
	c.OnAdvance(func(from, to time.Time) {
		if !c.Now().Equal(to) {
			t.Errorf("hook sees Now %v, want %v", c.Now(), to)
		}
		spans = append(spans, [2]time.Time{from, to})
	})
	got := <-c.After(10 * time.Second)
	if want := start.Add(10 * time.Second); !got.Equal(want) || !c.Now().Equal(want) {
		t.Fatalf("after: %v, now %v", got, c.Now())
	}
	<-c.After(5 * time.Second)
	if len(spans) != 2 || !spans[1][0].Equal(start.Add(10*time.Second)) || !spans[1][1].Equal(start.Add(15*time.Second)) {
		t.Fatalf("hook spans: %v", spans)
	}
}
