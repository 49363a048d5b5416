package harness

import (
	"os"
	"path/filepath"
	"strings"
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
	// One image vanishes, one document is substituted. The scanner names
	// a document doc_NNN.jpg or doc_NNN.pdf, so the document is taken by
	// its name in the manifest: writing a name the scan does not have
	// would make a new file, not a substituted one.
	gone := filepath.Join(a.OutputDir, snims[0], snims[0]+"_1.raw")
	var docName string
	for name := range exp[snims[1]] {
		if strings.HasPrefix(name, "doc_") {
			docName = name
		}
	}
	if docName == "" {
		t.Fatalf("scan %s has no document: %v", snims[1], exp[snims[1]])
	}
	doc := filepath.Join(a.OutputDir, snims[1], docName)
	was, err := os.Stat(doc)
	if err != nil {
		t.Fatal(err)
	}
	queued, err := Metric(a.MetricsAddr, `idk_agent_spool_bytes{kind="file"}`)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(gone); err != nil {
		t.Fatal(err)
	}
	substitute := []byte("not the document that was scanned")
	if err := os.WriteFile(doc, substitute, 0o644); err != nil {
		t.Fatal(err)
	}
	// The agent records the new content and the CHANGED event in one
	// spool transaction: once the queued bytes are exactly those of the
	// substitute in place of the document, the agent has seen the change,
	// before the collector is there to be offered the old record.
	want := queued - float64(was.Size()) + float64(len(substitute))
	waitFor(t, 30*time.Second, "the substituted document re-hashed", func() bool {
		v, err := Metric(a.MetricsAddr, `idk_agent_spool_bytes{kind="file"}`)
		return err == nil && v == want
	})
	if v, err := Metric(a.MetricsAddr, `idk_agent_spool_items{kind="file"}`); err != nil || v != 6 {
		t.Fatalf("files queued after the substitution: %v %v, want 6 (the document replaced, not added)", v, err)
	}

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
