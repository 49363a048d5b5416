package ship

import (
	"context"

	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"idk/protocol"
	"idk/protocol/idkpb"
)

// An agent holds its lanes only while it sends images: a lane no stripe
// has used for laneIdle is hung up (the gauge drops and the collector sees
// each lane's connection closed), the session's own connection stays, and
// the next large file dials lanes again.
func TestIdleLanesAreClosed(t *testing.T) {
	reg := newRegion(t)
	n := startNode(t, reg, &idkpb.HelloReply{MaxLanes: 3})
	ag := regionAgent(t, reg, n, []string{n.addr}, func(c *Config) { c.Lanes, c.StripeMinRTT = 4, -1 })
	ag.run(t)

	big := func(name string) {
		t.Helper()
		data := make([]byte, StripeFrom+3*protocol.ChunkSize)
		for i := range data {
			data[i] = byte(i * 13)
		}
		ag.queueData(t, name, data, ag.start)
		eventually(t, name+" stored", func() bool { return n.stored(name) })
	}
	lanes := func() float64 { return testutil.ToFloat64(ag.metrics.Lanes) }

	big("one.jpg")
	if lanes() == 0 {
		t.Fatal("no lanes open after a striped file")
	}
	_, stripes := n.counts()
	if stripes == 0 {
		t.Fatal("the large file went without stripes")
	}

	ag.clk.Advance(laneIdle / 2)
	time.Sleep(100 * time.Millisecond) // a wrong close would have happened by now
	if lanes() == 0 {
		t.Fatalf("lanes closed after %v idle, before laneIdle (%v)", laneIdle/2, laneIdle)
	}
	ag.clk.Advance(laneIdle / 2)
	eventually(t, "the idle lanes closed", func() bool { return lanes() == 0 })
	eventually(t, "the collector to see only the session's connection", func() bool { return n.open() == 1 })
	if testutil.ToFloat64(ag.metrics.Connected) != 1 {
		t.Error("the session's connection went with its lanes")
	}

	big("two.jpg")
	if _, after := n.counts(); after <= stripes {
		t.Errorf("stripe offers %d after the second large file, %d before: lanes were not dialled again", after, stripes)
	}
	if lanes() == 0 {
		t.Error("no lanes open after the second striped file")
	}
}

// open counts n's connections that are not closed.
func (n *node) open() int {
	n.nmu.Lock()
	defer n.nmu.Unlock()
	k := 0
	for _, c := range n.conns {
		if context.Cause(c.Context()) == nil {
			k++
		}
	}
	return k
}

// On a round trip under StripeMinRTT (loopback here) a large file goes
// whole on the connection: no stripes, no lanes.
func TestNoStripesOnShortRoundTrips(t *testing.T) {
	reg := newRegion(t)
	n := startNode(t, reg, &idkpb.HelloReply{MaxLanes: 3})
	ag := regionAgent(t, reg, n, []string{n.addr}, func(c *Config) { c.Lanes = 4 })
	ag.run(t)
	data := make([]byte, StripeFrom+3*protocol.ChunkSize)
	ag.queueData(t, "big.jpg", data, ag.start)
	eventually(t, "big.jpg stored", func() bool { return n.stored("big.jpg") })
	if accepted, stripes := n.counts(); stripes != 0 || accepted != 1 {
		t.Errorf("%d stripe offers on %d connections; want the file whole on the one connection", stripes, accepted)
	}
	if got := testutil.ToFloat64(ag.metrics.Lanes); got != 0 {
		t.Errorf("idk_agent_lanes %v, want 0", got)
	}
}
