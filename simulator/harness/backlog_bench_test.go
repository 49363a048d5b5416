package harness

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// BenchmarkAgentBacklogRSS is the agent's memory while a backlog of
// 100 000 files waits for a collector that is down (a week without a
// link, say): the simulated scanner writes 50 000 scans of two small
// images each, the agent takes every one into its spool, and its resident
// set then is printed beside its own at start with an empty spool, the
// peer measured in the same run. Target: under 40 MB. The files are small
// so that the run measures the per-file cost, not the hashing.
//
//	go test -run '^$' -bench '^BenchmarkAgentBacklogRSS$' -benchtime 1x -timeout 1h ./simulator/harness/
func BenchmarkAgentBacklogRSS(b *testing.B) {
	scans := 50_000
	if s := os.Getenv("IDK_BACKLOG_SCANS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			b.Fatalf("IDK_BACKLOG_SCANS=%q: %v", s, err)
		}
		scans = n
	}
	files := 2 * scans
	for range b.N {
		env, err := NewEnv(b.TempDir(), bin, Options{})
		if err != nil {
			b.Fatal(err)
		}
		a := env.Agents[0]
		// No collector: everything the scanner writes stays in the spool.
		agent, err := env.StartAgent(0)
		if err != nil {
			b.Fatal(err)
		}
		queued := `idk_agent_spool_items{kind="file"}`
		waitMetric(b, a.MetricsAddr, queued, 0, time.Minute)
		start, _, err := RSS(agent.Pid())
		if err != nil {
			b.Fatal(err)
		}
		began := time.Now()
		p, err := env.Start("scanner", "idk-sim", "scanner", "-out", a.OutputDir, "-num-idk", a.NumIDK,
			"-scans", strconv.Itoa(scans), "-raws", "2", "-raw-min", "1024", "-raw-max", "1024", "-docs", "0",
			"-manifest", filepath.Join(env.Dir, "manifest.jsonl"))
		if err != nil {
			b.Fatal(err)
		}
		<-p.done
		if p.err != nil {
			b.Fatalf("scanner: %v (see %s.log)", p.err, filepath.Join(env.Dir, p.Name))
		}
		waitMetric(b, a.MetricsAddr, queued, float64(files), 30*time.Minute)
		took := time.Since(began)
		now, peak, err := RSS(agent.Pid())
		if err != nil {
			b.Fatal(err)
		}
		agent.Stop()
		mb := func(n int64) float64 { return float64(n) / (1 << 20) }
		fmt.Printf("agent RSS with %d files waiting in its spool: %.1f MB now, %.1f MB peak (target: under 40 MB); "+
			"peer, the same agent at start with an empty spool: %.1f MB; ratio %.2f; %d files taken in %.0f s\n",
			files, mb(now), mb(peak), mb(start), float64(now)/float64(start), files, took.Seconds())
		b.ReportMetric(mb(now), "MB_rss")
		if now > 40<<20 {
			b.Errorf("agent RSS %.1f MB with %d files waiting: over the 40 MB target", mb(now), files)
		}
	}
}

// waitMetric waits until series at addr reads at least want.
func waitMetric(b *testing.B, addr, series string, want float64, d time.Duration) {
	b.Helper()
	deadline := time.Now().Add(d)
	for {
		v, err := Metric(addr, series)
		if err == nil && v >= want {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("%s at %s: %v (%v), want %v within %v", series, addr, v, err, want, d)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
