package harness

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"idk/simulator/relay"
)

// linkedEnv starts a collector and one agent whose traffic goes through
// an in-process relay shaped by cfg. Everything stops when the test ends.
func linkedEnv(t *testing.T, cfg relay.Config) (*Env, *relay.Relay, *Proc) {
	t.Helper()
	env, err := NewEnv(t.TempDir(), bin, Options{Settle: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	DumpLogsOnFailure(t, env)
	rl, err := env.Relay(0, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		t.Logf("relay: %+v", rl.Stats())
		rl.Close()
	})
	coll, err := env.StartCollector()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { coll.Stop() })
	agent, err := env.StartAgent(0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { agent.Stop() })
	return env, rl, agent
}

// scan starts idk-sim writing scans for agent 0 with one document each
// and RAW images of rawMin-rawMax bytes; wait returns what it wrote.
func scan(t *testing.T, env *Env, scans int, rawMin, rawMax int64) (wait func() Expected) {
	t.Helper()
	a := env.Agents[0]
	manifest := filepath.Join(env.Dir, "manifest.jsonl")
	sim, err := env.Start("scanner", "idk-sim", "scanner", "-out", a.OutputDir, "-num-idk", a.NumIDK,
		"-scans", strconv.Itoa(scans), "-raw-min", strconv.FormatInt(rawMin, 10), "-raw-max", strconv.FormatInt(rawMax, 10),
		"-docs", "1", "-manifest", manifest)
	if err != nil {
		t.Fatal(err)
	}
	return func() Expected {
		t.Helper()
		select {
		case <-sim.done:
		case <-time.After(30 * time.Second):
			sim.Kill()
			t.Fatal("scanner did not finish in 30s")
		}
		if sim.err != nil {
			t.Fatalf("scanner: %v", sim.err)
		}
		exp, err := ReadManifest(manifest)
		if err != nil {
			t.Fatal(err)
		}
		if len(exp) != scans {
			t.Fatalf("scanner manifest has %d scans, want %d", len(exp), scans)
		}
		return exp
	}
}

// verify waits up to d for every expected file and requires each to be
// stored exactly once and intact.
func verify(t *testing.T, env *Env, exp Expected, d time.Duration) Report {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	rep, err := env.WaitStored(ctx, exp)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() || rep.Stored != int64(rep.Files) {
		t.Fatalf("verification: %s (missing %v, corrupted %v, duplicated %v)", rep, rep.Missing, rep.Corrupted, rep.Duplicated)
	}
	return rep
}

// lostConnections returns the agent's log lines about losing the collector.
func lostConnections(env *Env) []string {
	b, _ := os.ReadFile(filepath.Join(env.Dir, "agent-"+env.Agents[0].NumIDK+".log"))
	var lines []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, "connection to collector lost") {
			lines = append(lines, l)
		}
	}
	return lines
}

func agentMetric(t *testing.T, env *Env, series string) float64 {
	t.Helper()
	v, err := Metric(env.Agents[0].MetricsAddr, series)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// Twenty scans cross a bad link — 30±20 ms each way, 2 % loss each way,
// reordering, 4 MB/s — which also goes down twice for 3 s during the
// transfer. Every file arrives exactly once, byte for byte.
//
// The images are 200-400 kB, not the 1-3 MB of a real crossing's: 2 %
// random loss at a 60 ms round trip holds any loss-based congestion
// control, QUIC's Cubic included, to about 0.25 MB/s (1.22·MSS/RTT/√p),
// whatever the cap, and per-packet jitter reorders most packets, which
// QUIC's loss detection partly takes for loss as well; and every file
// costs round trips of its own (offer, commit). Forty megabytes would
// take three minutes; badLinkRawMin and badLinkRawMax scale the test to
// fit the suite.
func TestBadLinkShipsTwentyScans(t *testing.T) {
	t.Parallel() // mostly waiting on the link: the three together take as long as the longest
	cfg := relay.Config{
		Latency:   30 * time.Millisecond,
		Jitter:    20 * time.Millisecond,
		Loss:      0.02,
		Reorder:   0.01,
		Bandwidth: 4_000_000,
	}
	env, rl, _ := linkedEnv(t, cfg)
	wait := scan(t, env, 20, badLinkRawMin, badLinkRawMax)

	waitFor(t, 30*time.Second, "the first image in flight", func() bool { return partialBytes(env) > 0 })
	began := time.Now()
	// The schedule counts from SetConfig, so both outages fall inside the
	// transfer, which needs well over 10 s on this link.
	const outages = 6 * time.Second
	cfg.Outages = []relay.Outage{{At: time.Second, For: 3 * time.Second}, {At: 7 * time.Second, For: 3 * time.Second}}
	if err := rl.SetConfig(cfg); err != nil {
		t.Fatal(err)
	}
	exp := wait()
	rep := verify(t, env, exp, 60*time.Second)
	took := time.Since(began)
	if took < 10*time.Second {
		t.Errorf("stored everything %v after the first image began, before the second outage ended", took.Round(time.Millisecond))
	}
	st := rl.Stats()
	if st.Up.DroppedOutage == 0 || st.Up.DroppedLoss == 0 || st.Down.DroppedLoss == 0 || st.Up.Reordered == 0 {
		t.Errorf("the link was kinder than configured: %+v", st)
	}
	t.Logf("%s in %v: %.2f MB/s overall, %.2f MB/s not counting the outages; reconnects %v",
		rep, took.Round(time.Millisecond), float64(rep.Bytes)/took.Seconds()/1e6, float64(rep.Bytes)/(took-outages).Seconds()/1e6,
		agentMetric(t, env, "idk_agent_reconnects_total"))
	for _, l := range lostConnections(env) {
		t.Log(l)
	}
}

// The RAW image size range of TestBadLinkShipsTwentyScans.
const badLinkRawMin, badLinkRawMax = 200_000, 400_000

// The agent's NAT mapping changes twice, a second apart, while an image
// is in flight: the collector sees the same connection come from a new
// port. QUIC may migrate the connection or the agent may reconnect and
// resume; either way nothing is lost or stored twice.
func TestNATRebindingDuringTransfer(t *testing.T) {
	t.Parallel()
	env, rl, _ := linkedEnv(t, relay.Config{Latency: 10 * time.Millisecond, Bandwidth: 2_000_000})
	wait := scan(t, env, 2, 6_000_000, 8_000_000)

	// Documents are small: a partial copy of 1 MiB is an image, with at
	// least 2 s to go at 2 MB/s.
	waitFor(t, 30*time.Second, "an image in flight", func() bool { return partialBytes(env) >= 1<<20 })
	var held [2]int64
	for i := range held {
		if i > 0 {
			time.Sleep(time.Second)
		}
		held[i] = partialBytes(env)
		if err := rl.Rebind(); err != nil {
			t.Fatal(err)
		}
	}
	if held[1] == 0 {
		t.Error("no image was in flight at the second rebinding: the test proved less than it claims")
	}
	exp := wait()
	rep := verify(t, env, exp, 45*time.Second)

	reconnects := agentMetric(t, env, "idk_agent_reconnects_total")
	resumed, err := Metric(env.HTTPAddr, "idk_collector_resumed_uploads_total")
	if err != nil {
		t.Fatal(err)
	}
	how := "by QUIC connection migration: the agent never reconnected"
	if reconnects > 0 {
		how = "by reconnecting and resuming"
	}
	t.Logf("rebound with %d and %d bytes of an image at the collector; %s; survived %s (reconnects %v, resumed uploads %v, relay sessions %d)",
		held[0], held[1], rep, how, reconnects, resumed, rl.Stats().Sessions)
	for _, l := range lostConnections(env) {
		t.Log(l)
	}
}

// The link is down for 20 s in the middle of a transfer. The agent keeps
// trying all along and, once the link is back, delivers everything. (An
// outage beyond QUIC's 45 s idle timeout, which forces a reconnect, would
// not fit the suite's time.)
func TestLongOutageDrainsAfterwards(t *testing.T) {
	t.Parallel()
	env, rl, agent := linkedEnv(t, relay.Config{Latency: 10 * time.Millisecond, Bandwidth: 2_000_000})
	wait := scan(t, env, 3, 2_000_000, 3_000_000)

	waitFor(t, 30*time.Second, "an image in flight", func() bool { return partialBytes(env) > 0 })
	rl.SetOutage(true)
	const outage = 20 * time.Second
	time.Sleep(outage / 2)
	mid := rl.Stats().Up.DroppedOutage
	time.Sleep(outage / 2)
	end := rl.Stats().Up.DroppedOutage
	if agent.Exited() {
		t.Fatal("the agent exited during the outage")
	}
	if end <= mid {
		t.Errorf("the agent sent nothing in the second half of the outage (%d datagrams dropped by then, %d at the end)", mid, end)
	}
	rl.SetOutage(false)
	back := time.Now()
	exp := wait()
	rep := verify(t, env, exp, 40*time.Second)
	t.Logf("%s; drained %v after the %v outage; the agent's datagrams dropped: %d in the first half, %d in the second; reconnects %v",
		rep, time.Since(back).Round(time.Millisecond), outage, mid, end-mid, agentMetric(t, env, "idk_agent_reconnects_total"))
	for _, l := range lostConnections(env) {
		t.Log(l)
	}
}
