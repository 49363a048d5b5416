package harness

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"idk/internal/testenv"
	"idk/simulator/scanner"
)

// bin holds the programs built once for all end-to-end tests.
var bin string

func TestMain(m *testing.M) {
	if DefaultBackends() == Region && !RegionReady() {
		// The second pass of make test: the suite again on the region's
		// backends, which only a machine that started them has.
		fmt.Fprintln(os.Stderr, errNoRegion)
		if testenv.CI() {
			os.Exit(1)
		}
		fmt.Fprintln(os.Stderr, "harness: skipping the pass on the region's backends (not under CI)")
		os.Exit(0)
	}
	dir, err := BuildPrograms(raceEnabled)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bin = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// embeddedOnly skips, in the suite's pass on the region's backends, a test
// of what only an embedded collector has (its files on its own disk); the
// first pass runs it.
func embeddedOnly(t *testing.T, why string) {
	t.Helper()
	if DefaultBackends() == Region {
		t.Skip("embedded collector only: " + why)
	}
}

// startEnv makes an Env in a temporary folder, dumps the programs' logs if
// the test fails, and starts the collector (stopped at the end of the test;
// a test that restarts it stops the new one itself).
func startEnv(t *testing.T, opt Options) (*Env, *Proc) {
	t.Helper()
	env, err := NewEnv(t.TempDir(), bin, opt)
	if err != nil {
		t.Fatal(err)
	}
	DumpLogsOnFailure(t, env)
	coll, err := env.StartCollector()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { coll.Stop() })
	return env, coll
}

// partialBytes is the size of the largest partial file the collector is
// receiving, 0 if none.
func partialBytes(env *Env) int64 {
	var most int64
	filepath.Walk(filepath.Join(env.CollectorRoot(), ".incoming"), func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() && strings.HasSuffix(p, ".part") {
			most = max(most, fi.Size())
		}
		return nil
	})
	return most
}

// wantResumed returns the collector's count of resumed transfers and
// fails t when it counted none: after a kill in the middle of a file, the
// transfer must go on from what the collector holds, not start again.
func wantResumed(t *testing.T, env *Env) float64 {
	t.Helper()
	resumed, err := Metric(env.HTTPAddr, "idk_collector_resumed_uploads_total")
	if err != nil {
		t.Fatal(err)
	}
	if resumed < 1 {
		t.Errorf("no transfer was resumed after the kill (idk_collector_resumed_uploads_total = %v)", resumed)
	}
	return resumed
}

func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Fifty scans go from a scanner process through an agent process to a
// collector process. The agent is SIGKILLed in the middle of an image and
// restarted; in the end every file is at the collector exactly once,
// byte for byte, and the interrupted image was resumed, not resent.
func TestEndToEndShipsFiftyScansAcrossAgentKill(t *testing.T) {
	env, coll := startEnv(t, Options{MaxRate: 24 << 20, Settle: 200 * time.Millisecond})
	agent, err := env.StartAgent(0)
	if err != nil {
		t.Fatal(err)
	}
	a := env.Agents[0]
	manifest := filepath.Join(env.Dir, "manifest.jsonl")
	sim, err := env.Start("scanner", "idk-sim", "scanner", "-out", a.OutputDir, "-num-idk", a.NumIDK,
		"-scans", "50", "-interval", "20ms", "-raw-min", "2300000", "-raw-max", "4000000", "-docs", "1", "-manifest", manifest)
	if err != nil {
		t.Fatal(err)
	}

	// Kill the agent while the collector holds part of an image. Images
	// are over 2 MiB and travel in 1 MiB chunks, so a partial copy of at
	// least 1 MiB has at least one chunk to go; if the transfer still wins
	// the race, try again on a later image.
	var held int64
	for try := 0; held == 0; try++ {
		if try == 5 {
			t.Fatal("could not kill the agent in the middle of an image in 5 tries")
		}
		waitFor(t, 60*time.Second, "an image in flight", func() bool { return partialBytes(env) >= 1<<20 })
		agent.Kill()
		held = partialBytes(env)
		if agent, err = env.StartAgent(0); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("agent SIGKILLed with %d bytes of an image at the collector", held)
	defer agent.Stop()

	select {
	case <-sim.done:
	case <-time.After(2 * time.Minute):
		t.Fatal("scanner did not finish")
	}
	if sim.err != nil {
		t.Fatalf("scanner: %v", sim.err)
	}
	exp, err := ReadManifest(manifest)
	if err != nil {
		t.Fatal(err)
	}
	if len(exp) != 50 {
		t.Fatalf("scanner manifest has %d scans, want 50", len(exp))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	rep, err := env.WaitStored(ctx, exp)
	if err != nil {
		agent.cmd.Process.Signal(syscall.SIGQUIT) // goroutine dump into its log
		time.Sleep(time.Second)
		t.Fatal(err)
	}
	if !rep.OK() || rep.Scans != 50 || rep.Stored != int64(rep.Files) {
		t.Fatalf("verification: %s (missing %v, corrupted %v, duplicated %v)", rep, rep.Missing, rep.Corrupted, rep.Duplicated)
	}
	// Exactly once in the index too: no file of a scan is listed twice.
	files, err := env.Stored()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, f := range files {
		if seen[f.StoredAs] {
			t.Errorf("%s indexed twice", f.StoredAs)
		}
		seen[f.StoredAs] = true
		if f.Kind != "form" && f.Name != filepath.Base(f.StoredAs) {
			t.Errorf("%s stored as a second revision %s", f.Name, f.StoredAs)
		}
	}
	t.Logf("%s; resumed transfers: %v", rep, wantResumed(t, env))

	// The index and the disk agree, file by file, as `idk-collector check`
	// sees them with the collector stopped.
	agent.Stop()
	coll.Stop()
	out, err := exec.Command(filepath.Join(bin, "idk-collector"), "check", "-config", filepath.Join(env.Dir, "collector.toml")).CombinedOutput()
	if err != nil || !strings.Contains(string(out), fmt.Sprintf("%d files checked, 0 disagreements", len(files))) {
		t.Fatalf("idk-collector check: %v\n%s", err, out)
	}
}

// Forms must not wait behind an image: while a 1 GB image is in flight,
// new scans' forms reach the collector, and the image is still not stored.
func TestFormsOvertakeOneGigabyteImage(t *testing.T) {
	if testing.Short() {
		t.Skip("writes and ships 1 GB")
	}
	env, err := NewEnv(t.TempDir(), bin, Options{MaxRate: 64 << 20, Settle: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	DumpLogsOnFailure(t, env)
	a := env.Agents[0]
	big, err := scanner.New(scanner.Config{Out: a.OutputDir, NumIDK: a.NumIDK, RawMin: 1 << 30, RawMax: 1 << 30, Seed: 7}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	bigScan, err := big.WriteScan(ctx)
	if err != nil {
		t.Fatal(err)
	}
	coll, err := env.StartCollector()
	if err != nil {
		t.Fatal(err)
	}
	defer coll.Stop()
	agent, err := env.StartAgent(0)
	if err != nil {
		t.Fatal(err)
	}
	defer agent.Stop()
	waitFor(t, 2*time.Minute, "the 1 GB image in flight", func() bool { return partialBytes(env) > 1<<20 })

	// Forms of new scans, written while the image streams. A second
	// scanner with its own seed numbers its scans after the big one.
	forms, err := scanner.New(scanner.Config{Out: a.OutputDir, NumIDK: a.NumIDK, RawMin: 1 << 10, RawMax: 1 << 10, Seed: 8, FormRevisions: 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	forms.NextNumSnim() // skip the number the big scan took
	exp := Expected{}
	for range 5 {
		w, err := forms.BeginScan()
		if err != nil {
			t.Fatal(err)
		}
		if err := w.WriteForm(0); err != nil {
			t.Fatal(err)
		}
		if err := w.WriteForm(1); err != nil {
			t.Fatal(err)
		}
		s, err := w.Finish()
		if err != nil {
			t.Fatal(err)
		}
		exp[s.NumSnim] = s.Files
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := env.WaitStored(wctx, exp); err != nil {
		t.Fatalf("forms did not arrive while the image was in flight: %v", err)
	}
	rep, err := env.Verify(Expected{bigScan.NumSnim: {bigScan.NumSnim + "_1.raw": bigScan.Files[bigScan.NumSnim+"_1.raw"]}})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Stored != 0 {
		t.Fatal("the 1 GB image was already stored: the test proved nothing")
	}
	t.Logf("5 forms stored while the image was at %d MB", partialBytes(env)>>20)

	// And the image itself still arrives intact.
	wctx2, cancel2 := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel2()
	rep, err = env.WaitStored(wctx2, Expected{bigScan.NumSnim: bigScan.Files})
	if err != nil || !rep.OK() {
		t.Fatalf("big scan: %v %s", err, rep)
	}
}
