package ship

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// The events stream does not wait for the collector's answer to one batch
// before it sends the next: an event queued while the answer to an
// earlier batch is still on its way goes at once, and each batch is
// forgotten by the spool once answered.
func TestEventBatchesDoNotWaitForAnswers(t *testing.T) {
	c := startCollector(t, nil)
	c.ackGate = make(chan struct{})
	a := newAgent(t, c)
	a.run(t)
	a.queueEvent(t, "one")
	eventually(t, "the batch with one at the collector", func() bool { return c.hasEvent("one") })
	a.queueEvent(t, "two")
	got := false
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if got = c.hasEvent("two"); got {
			break
		}
	}
	if evs, err := a.sp.PendingEvents(10, 1<<20); err != nil || len(evs) != 2 {
		t.Errorf("spool holds %d events before any answer (%v), want both", len(evs), err)
	}
	close(c.ackGate)
	if !got {
		t.Fatal("the batch with two waited for the answer to the batch with one")
	}
	eventually(t, "both batches answered and forgotten", func() bool {
		evs, err := a.sp.PendingEvents(10, 1<<20)
		return err == nil && len(evs) == 0
	})
	if n := testutil.ToFloat64(a.metrics.EventsShipped); n != 2 {
		t.Errorf("events shipped %v, want 2", n)
	}
}
