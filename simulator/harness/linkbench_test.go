package harness

import (
	"context"
	"testing"
	"time"

	"idk/simulator/relay"
)

// Three hundred small files cross a link of 40 ms round trip: the agent
// keeps several in flight at once (its window), every file arrives once
// and byte for byte, and the agent's spool drains.
func TestLinkWindowShipsManySmallFiles(t *testing.T) {
	t.Parallel()
	env, _, _ := linkedEnv(t, relay.Config{Latency: 20 * time.Millisecond, Bandwidth: 4_000_000})
	a := env.Agents[0]
	// 150 scans of two 20 kB images each, and their forms.
	sim, err := env.Start("scanner", "idk-sim", "scanner", "-out", a.OutputDir, "-num-idk", a.NumIDK, "-scans", "150",
		"-raws", "2", "-raw-min", "20000", "-raw-max", "20000", "-docs", "0", "-manifest", env.Dir+"/manifest.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	// The most files the agent reported in flight while it shipped.
	most := 0.0
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			if v, err := Metric(a.MetricsAddr, "idk_agent_files_in_flight"); err == nil {
				most = max(most, v)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	<-sim.done
	if sim.err != nil {
		t.Fatalf("scanner: %v", sim.err)
	}
	exp, err := ReadManifest(env.Dir + "/manifest.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	rep := verify(t, env, exp, 90*time.Second)
	cancel()
	<-done
	if rep.Files != 450 { // 300 images and 150 forms
		t.Fatalf("verified %d files, want 450", rep.Files)
	}
	if most < 4 {
		t.Errorf("at most %v files in flight: the window was not used", most)
	}
	waitFor(t, 10*time.Second, "the agent's spool drained", func() bool {
		files := agentMetric(t, env, `idk_agent_spool_items{kind="file"}`)
		events := agentMetric(t, env, `idk_agent_spool_items{kind="event"}`)
		return files == 0 && events == 0
	})
	t.Logf("%s; at most %v files in flight", rep, most)
}
