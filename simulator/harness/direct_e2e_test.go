package harness

import (
	"context"
	"testing"
	"time"

	"idk/simulator/scanner"
)

// The collector is SIGKILLed while it writes a large image around the page
// cache (O_DIRECT, collector/store/partial.go), with part of the image in
// its aligned blocks; started again, it takes the transfer up from what
// its partial file holds, and every image is stored once, byte for byte.
func TestCollectorKilledMidLargeImageResumes(t *testing.T) {
	env, coll := startEnv(t, Options{MaxRate: 16 << 20, Settle: 200 * time.Millisecond})
	a := env.Agents[0]
	// Over the 8 MiB from which uploads are written directly, and of a
	// size no alignment divides.
	const size = 40<<20 + 12345
	sc, err := scanner.New(scanner.Config{Out: a.OutputDir, NumIDK: a.NumIDK, RawMin: size, RawMax: size, Seed: 5}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	exp := Expected{}
	for range 2 {
		s, err := sc.WriteScan(ctx)
		if err != nil {
			t.Fatal(err)
		}
		exp[s.NumSnim] = s.Files
	}
	agent, err := env.StartAgent(0)
	if err != nil {
		t.Fatal(err)
	}
	defer agent.Stop()

	waitFor(t, 60*time.Second, "10 MiB of an image at the collector", func() bool { return partialBytes(env) >= 10<<20 })
	coll.Kill()
	held := partialBytes(env)
	if coll, err = env.StartCollector(); err != nil {
		t.Fatal(err)
	}
	defer coll.Stop()
	t.Logf("collector SIGKILLed with %d bytes of an image in its partial file", held)

	rep, err := env.WaitStored(ctx, exp, agent, coll)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() {
		t.Fatalf("verification: %s (missing %v, corrupted %v, duplicated %v)", rep, rep.Missing, rep.Corrupted, rep.Duplicated)
	}
	t.Logf("%s; resumed after the kill: %v", rep, wantResumed(t, env))
}
