package harness

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A power cut on a cheap SSD leaves the agent's spool truncated. The agent
// must start anyway, keep the damaged file, and still deliver every scan —
// those shipped before and those written since — exactly once.
func TestEndToEndDamagedSpoolIsRebuilt(t *testing.T) {
	env, _ := startEnv(t, Options{Settle: 200 * time.Millisecond})
	a := env.Agents[0]
	manifest := filepath.Join(env.Dir, "manifest.jsonl")
	scan := func(n, seed string) {
		t.Helper()
		p, err := env.Start("scanner-"+seed, "idk-sim", "scanner", "-out", a.OutputDir, "-num-idk", a.NumIDK, "-seed", seed,
			"-scans", n, "-raw-min", "100000", "-raw-max", "300000", "-docs", "1", "-manifest", manifest)
		if err != nil {
			t.Fatal(err)
		}
		<-p.done
		if p.err != nil {
			t.Fatalf("scanner: %v", p.err)
		}
	}
	scan("10", "1")
	agent, err := env.StartAgent(0)
	if err != nil {
		t.Fatal(err)
	}
	exp, _ := ReadManifest(manifest)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := env.WaitStored(ctx, exp); err != nil {
		t.Fatal(err)
	}
	agent.Kill()
	spoolPath := filepath.Join(env.Dir, "spool-"+a.NumIDK+".db")
	if err := os.Truncate(spoolPath, 6000); err != nil {
		t.Fatal(err)
	}

	// Scans keep coming while the agent is down.
	scan("5", "2")
	agent, err = env.StartAgent(0)
	if err != nil {
		t.Fatal(err)
	}
	defer agent.Stop()
	exp, _ = ReadManifest(manifest)
	if len(exp) != 15 {
		t.Fatalf("manifest has %d scans, want 15", len(exp))
	}
	rep, err := env.WaitStored(ctx, exp)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() {
		t.Fatalf("after rebuild: %s (duplicated %v)", rep, rep.Duplicated)
	}
	aside, _ := filepath.Glob(spoolPath + ".damaged-*")
	if len(aside) != 1 {
		t.Fatalf("damaged spool not kept aside: %v", aside)
	}
	if v, err := Metric(a.MetricsAddr, "idk_agent_spool_recovered"); err != nil || v != 1 {
		t.Errorf("idk_agent_spool_recovered = %v, %v; want 1", v, err)
	}
	// Every form is stored once per content: the rescan sent the final
	// forms of the first ten scans again, and they were recognised.
	files, _ := env.Stored()
	forms := map[string]int{}
	for _, f := range files {
		if f.Kind == "form" {
			forms[f.NumSnim+"/"+f.SHA256]++
		}
	}
	for k, n := range forms {
		if n > 1 {
			t.Errorf("form %s stored %d times", k, n)
		}
	}
	log, _ := os.ReadFile(filepath.Join(env.Dir, "agent-"+a.NumIDK+".log"))
	if !strings.Contains(string(log), "spool was damaged") {
		t.Error("the agent did not log the damaged spool")
	}
	t.Logf("%s", rep)
}
