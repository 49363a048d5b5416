package harness

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// BenchmarkAgentBacklogRSS is the agent's memory while a backlog of
// 100 000 files waits for a collector that is down (a week without a
// link, say): the simulated scanner writes 50 000 scans of two small
// images each, the agent takes every one into its spool, and its resident
// set then is printed beside its own at start with an empty spool, the
// peer measured in the same run. Target: under 40 MB, read once the
// backlog has waited backlogSettle after the last file was taken (the
// figure as the last file is taken is printed too). It prints the intake's
// rate, the resident set at start, as the last file is taken and waiting,
// split into the agent's own memory and mapped files, and the peak. The
// files are small so that the run measures the per-file cost, not the
// hashing.
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
		// The intake has just taken the last file: its burst of work is
		// still in the resident set (Go returns freed heap to the system
		// over minutes, not at once). The goal is the agent while the
		// backlog waits, read after a settle.
		now, _, err := RSS(agent.Pid())
		if err != nil {
			b.Fatal(err)
		}
		// A real backlog builds up over days: its scan folders are old,
		// and the agent watches through fsnotify only the folders of the
		// last hour (watch.Config.Quiet). The scanner wrote these within
		// minutes: age them as days would, so that the next rescan finds
		// them quiet.
		if err := ageFolders(a.OutputDir, 48*time.Hour); err != nil {
			b.Fatal(err)
		}
		time.Sleep(backlogSettle)
		waiting, peak, err := RSS(agent.Pid())
		if err != nil {
			b.Fatal(err)
		}
		split := rssSplit(agent.Pid())
		agent.Stop()
		mb := func(n int64) float64 { return float64(n) / (1 << 20) }
		rate := float64(files) / took.Seconds()
		goal := "met"
		if waiting >= 40<<20 {
			goal = "NOT met"
		}
		fmt.Printf("agent backlog: %d files (%d scans) taken into the spool in %.0f s: %.0f files/s of intake\n", files, scans, took.Seconds(), rate)
		fmt.Printf("agent RSS at start, empty spool: %.1f MB\n", mb(start))
		fmt.Printf("agent RSS as the last file was taken: %.1f MB\n", mb(now))
		fmt.Printf("agent RSS with %d files waiting (%v later): %.1f MB (%s; ratio %.2f to start)\n", files, backlogSettle, mb(waiting), split, float64(waiting)/float64(start))
		fmt.Printf("agent RSS peak (VmHWM): %.1f MB\n", mb(peak))
		fmt.Printf("goal < 40 MB: %s\n", goal)
		b.ReportMetric(mb(waiting), "MB_rss")
		b.ReportMetric(mb(peak), "MB_peak")
		b.ReportMetric(rate, "files/s")
		if waiting >= 40<<20 {
			b.Errorf("agent RSS %.1f MB with %d files waiting: over the 40 MB target", mb(waiting), files)
		}
	}
}

// ageFolders sets the modification time of every folder below root to age ago.
func ageFolders(root string, age time.Duration) error {
	entries, err := os.ReadDir(root)
	if err != nil {
		return err
	}
	then := time.Now().Add(-age)
	for _, e := range entries {
		if e.IsDir() {
			if err := os.Chtimes(filepath.Join(root, e.Name()), then, then); err != nil {
				return err
			}
		}
	}
	return nil
}

// backlogSettle is how long the backlog waits before the agent's resident
// set is read for the goal.
const backlogSettle = 30 * time.Second

// rssSplit reads how much of a process's resident set is its own memory
// (RssAnon) and how much is mapped files (RssFile: its program, and the
// spool's pages bbolt has read, which are the page cache's), Linux only.
func rssSplit(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return err.Error()
	}
	var parts []string
	for _, line := range strings.Split(string(b), "\n") {
		if name, v, ok := strings.Cut(line, ":"); ok && (name == "RssAnon" || name == "RssFile") {
			parts = append(parts, name+" "+strings.Join(strings.Fields(v), " "))
		}
	}
	return strings.Join(parts, ", ")
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
