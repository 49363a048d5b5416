package harness

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// Scan files that change or vanish after the agent first saw them, before
// they could be shipped, are reported and counted at the collector per ИДК
// (table 5 evidence), and the scan chain shows no scan was dropped.
func TestEndToEndChangedAndMissingFilesAreReported(t *testing.T) {
	env, err := NewEnv(t.TempDir(), bin, Options{Settle: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	DumpLogsOnFailure(t, env)
	a := env.Agents[0]
	// The collector is not up yet: the agent keeps everything in its spool.
	agent, err := env.StartAgent(0)
	if err != nil {
		t.Fatal(err)
	}
	defer agent.Stop()
	manifest := filepath.Join(env.Dir, "manifest.jsonl")
	sim, err := env.Start("scanner", "idk-sim", "scanner", "-out", a.OutputDir, "-num-idk", a.NumIDK,
		"-scans", "3", "-raw-min", "100000", "-raw-max", "100000", "-docs", "1", "-manifest", manifest)
	if err != nil {
		t.Fatal(err)
	}
	<-sim.done
	exp, err := ReadManifest(manifest)
	if err != nil || len(exp) != 3 {
		t.Fatalf("manifest: %v %v", exp, err)
	}
	waitFor(t, 30*time.Second, "6 files hashed and queued", func() bool {
		v, err := Metric(a.MetricsAddr, `idk_agent_spool_items{kind="file"}`)
		return err == nil && v == 6
	})
	var snims []string
	for s := range exp {
		snims = append(snims, s)
	}
	// One image vanishes, one document is substituted.
	gone := filepath.Join(a.OutputDir, snims[0], snims[0]+"_1.raw")
	if err := os.Remove(gone); err != nil {
		t.Fatal(err)
	}
	doc := filepath.Join(a.OutputDir, snims[1], "doc_001.jpg")
	if err := os.WriteFile(doc, []byte("not the document that was scanned"), 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the substituted document re-hashed", func() bool {
		v, err := Metric(a.MetricsAddr, `idk_agent_spool_bytes{kind="file"}`)
		return err == nil && v < 6*100000 // the 33-byte substitute replaced a larger file
	})

	coll, err := env.StartCollector()
	if err != nil {
		t.Fatal(err)
	}
	defer coll.Stop()
	series := func(kind string) func() bool {
		return func() bool {
			v, err := Metric(env.HTTPAddr, `idk_collector_integrity_events_total{kind="`+kind+`",num_idk="`+a.NumIDK+`"}`)
			return err == nil && v == 1
		}
	}
	waitFor(t, 60*time.Second, "the missing image counted", series("missing"))
	waitFor(t, 60*time.Second, "the substituted document counted", series("changed"))
	if v, err := Metric(env.HTTPAddr, `idk_collector_integrity_events_total{kind="chain_break",num_idk="`+a.NumIDK+`"}`); err == nil && v != 0 {
		t.Errorf("chain breaks: %v, want none", v)
	}
}
