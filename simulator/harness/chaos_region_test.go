package harness

import (
	"context"
	"io"
	"path/filepath"
	"testing"
	"time"

	"idk/internal/testenv"
)

// takeoverBound is the failover time of a region's collectors that this
// test holds them to: from a SIGKILL of the serving collector to the one
// standing by serving (its PostgreSQL session, and the lock with it, ends
// with the killed process; the standby tries the lock once a second, then
// opens the index and the deadline engine from PostgreSQL and listens).
// On a two-core machine running both collectors, two agents, PostgreSQL
// and versitygw, with and without the race detector, takeovers measured
// 0.2–1.4 s; the bound leaves room for a loaded CI runner.
const takeoverBound = 5 * time.Second

// The CI-sized region chaos run (idk-sim chaos-region runs a longer
// one): two collectors on one PostgreSQL database and one S3 bucket, the
// serving one SIGKILLed three times while two ИДК ship. Nothing is lost,
// duplicated or corrupted; the deadline engine records every breach —
// three planted to fall due while no collector serves — exactly once,
// and never later than a takeover and a tick.
func TestChaosRegionShort(t *testing.T) {
	if testing.Short() {
		t.Skip("chaos run")
	}
	if DefaultBackends() != Region {
		// Its collectors are the region's whatever the pass: once, in the
		// pass on the region's backends, is enough.
		t.Skip("runs in the suite's pass on the region's backends (" + BackendsEnv + "=" + Region + ")")
	}
	testenv.Require(t, RegionReady(), "the region's backends are not set up (IDK_TEST_POSTGRES, IDK_TEST_S3_*): make services; . .services/env")
	dir := t.TempDir()
	// ChaosRegion makes its Env in dir/env: the programs' logs are there.
	DumpLogsOnFailure(t, &Env{Dir: filepath.Join(dir, "env")})
	const kills, breaches = 3, 4
	rep, err := ChaosRegion(context.Background(), ChaosRegionOptions{
		Dir: dir, Bin: bin, Agents: 2, Scans: 10, Interval: 1500 * time.Millisecond,
		Kills: kills, Breaches: breaches, MaxRestartDelay: time.Second, Seed: 11, Drain: 2 * time.Minute,
	}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("\n%s", rep)
	if !rep.Intact() {
		t.Errorf("the region lost data across the takeovers:\n%s", rep)
	}
	if rep.Kills != kills || len(rep.Planted) != breaches {
		t.Errorf("%d kills and %d breaches planted, want %d and %d", rep.Kills, len(rep.Planted), kills, breaches)
	}
	if !rep.EngineOnce() {
		t.Errorf("the deadline engine did not record every planted breach exactly once:\n%s", rep)
	}
	if rep.MaxTakeover > takeoverBound {
		t.Errorf("a takeover took %v, over the bound of %v", rep.MaxTakeover, takeoverBound)
	}
	// The engine ticks every second on the serving collector: a breach
	// due during a takeover waits for it, and then at most a tick.
	if rep.MaxBreachLate > takeoverBound+time.Second {
		t.Errorf("a due breach waited %v for the engine, over the takeover bound and a tick", rep.MaxBreachLate)
	}
}
