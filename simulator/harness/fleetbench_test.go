package harness

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

// A small fleet (P5 of issue 14 in miniature): 20 virtual ИДК, each the
// agent's spool, intake and shipper in this process, produce scans, forms
// and telemetry for 20 seconds against the real collector (built by
// TestMain); nothing is lost and the form latency is measured.
func TestFleetBenchSmall(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a collector for 20 s")
	}
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := FleetBench(ctx, FleetBenchOptions{
		Dir: t.TempDir(), Bin: bin, IDK: 20, Duration: 20 * time.Second,
		// Short operator pauses, so that every ИДК's scan ends well
		// inside the run even under the race detector.
		FormGap: 500 * time.Millisecond, Drain: time.Minute,
	}, &out)
	t.Log(out.String())
	if err != nil {
		t.Fatal(err)
	}
	if n := res.LostCount(); n != 0 {
		t.Fatalf("lost %d: %v", n, res.Lost)
	}
	if res.Scans == 0 || res.Forms == 0 || res.Events == 0 {
		t.Fatalf("produced %d scans, %d form revisions, %d events: the fleet did not work", res.Scans, res.Forms, res.Events)
	}
	if !strings.Contains(out.String(), "lost 0 ") || res.FormLatency.Quantile(0.99) <= 0 || !strings.Contains(out.String(), "p99 ") {
		t.Errorf("the report lacks the goal line or the form latency's p99:\n%s", out.String())
	}
	if res.CollectorCPU <= 0 || res.RSSPeak <= 0 {
		t.Errorf("collector CPU %v, peak RSS %d: not measured", res.CollectorCPU, res.RSSPeak)
	}
}
