package hostile

import (
	"context"
	"io"
	"path/filepath"
	"testing"
	"time"

	"idk/simulator/harness"
)

// A hostile agent in the fleet: while the honest ИДК ships through agent
// and collector kills and link cuts, a second ИДК's stolen certificate
// forges every one of its scans (same scan numbers, same file names, other
// content, forged forms, files named like the collector's own, hellos that
// claim another customs body). The honest ИДК's evidence is intact, byte
// for byte, and every lie about identity was refused.
func TestChaosWithHostileAgent(t *testing.T) {
	var stats ForgeStats
	rep, err := harness.Chaos(context.Background(), harness.ChaosOptions{
		Dir: t.TempDir(), Bin: bin, Scans: 40, Interval: 100 * time.Millisecond,
		AgentKills: 3, CollectorKills: 3, Outages: 1, MaxOutage: time.Second,
		Seed: 11, Drain: 2 * time.Minute,
		Hostile: func(ctx context.Context, env *harness.Env) string {
			f := Forger{Addr: env.QUICAddr, CertDir: filepath.Join(env.Dir, "certs"),
				NumIDK: env.Agents[1].NumIDK, KodTO: env.Agents[1].KodTO, VictimDir: env.Agents[0].OutputDir}
			stats = f.Run(ctx)
			return stats.String()
		},
	}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("\n%s", rep)
	if !rep.Intact() {
		t.Fatalf("the honest ИДК's evidence was not kept intact:\n%s", rep)
	}
	// How much it forges depends on how fast this machine lets it go
	// between kills; some of every kind is what the run needs (make
	// chaos-hostile forges every file of a thousand scans).
	if stats.Uploads < 10 || stats.Stored == 0 || stats.Forms == 0 {
		t.Fatalf("the hostile agent hardly attacked (%s): the run proves little", stats)
	}
	if stats.LiesAccepted != 0 || stats.LiesRefused == 0 {
		t.Fatalf("hellos claiming another customs body: %s", stats)
	}
}
