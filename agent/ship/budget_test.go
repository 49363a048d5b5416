package ship

import (
	"fmt"
	"testing"
	"time"

	"idk/protocol/idkpb"
)

// The collector's budget, told at the hello, holds even where the
// agent's own settings allow more: no more files in flight than it says,
// no faster than its rate. A fleet back from a long outage then drains at
// the collector's pace.
func TestCollectorBudgetBoundsWindowAndRate(t *testing.T) {
	c := startCollector(t, sendAll)
	const rate = 2 << 20
	c.helloReply = &idkpb.HelloReply{MaxFiles: 2, MaxRate: rate}
	occ := newOccupancy(0)
	c.onOffer = occ.offer
	c.onEnd = occ.end
	a := newAgent(t, c, func(cfg *Config) { cfg.WindowFiles = 8 })
	const files, size = 8, 512 << 10
	for i := range files {
		data := make([]byte, size)
		data[0] = byte(i)
		a.queueData(t, fmt.Sprintf("img_%d.jpg", i), data, a.start)
	}
	began := time.Now()
	a.run(t)
	eventually(t, "every file", func() bool { return len(c.storedNames()) == files })
	took := time.Since(began)
	occ.mu.Lock()
	most := occ.max
	occ.mu.Unlock()
	if most > 2 {
		t.Errorf("%d files in flight at once, the collector allows 2", most)
	}
	// 4 MiB at 2 MiB/s, less the limiter's one-chunk burst: 1.5 s at least.
	if want := 1500 * time.Millisecond; took < want {
		t.Errorf("%d × %d bytes took %v at the collector's %d bytes/s, want at least %v", files, size, took, rate, want)
	}
}
