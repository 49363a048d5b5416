package harness

import (
	"context"
	"io"
	"testing"
	"time"
)

// The CI-sized chaos run (make chaos runs the full one): both daemons are
// SIGKILLed, the link is cut and the collector's disk filled while scans
// are written, and in the end nothing is lost, duplicated or corrupted.
func TestChaosShort(t *testing.T) {
	if testing.Short() {
		t.Skip("chaos run")
	}
	rep, err := Chaos(context.Background(), ChaosOptions{
		Dir: t.TempDir(), Bin: bin, Scans: 60, Interval: 100 * time.Millisecond,
		AgentKills: 5, CollectorKills: 5, Outages: 2, MaxOutage: 2 * time.Second, DiskFulls: 1,
		Seed: 7, Drain: 2 * time.Minute,
	}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("\n%s", rep)
	if !rep.OK() {
		t.Fatalf("chaos lost data:\n%s", rep)
	}
	if rep.AgentKills != 5 || rep.CollectorKills != 5 || rep.Outages != 2 {
		t.Fatalf("not every fault was played:\n%s", rep)
	}
}
