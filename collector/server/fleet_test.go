package server

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"idk/agent/ship"
	"idk/agent/spool"
	"idk/collector/fleet"
	"idk/protocol"
	"idk/protocol/idkpb"
	"idk/protocol/transport"
	"idk/simulator/simclock"
)

// A real agent's shipper against the real server: the fleet learns the
// agent's link at the hello (KOD_TO, version, address, certificate
// expiry, clock offset), the backlog its spool reports in batches without
// events, which the server acks, and the end of the connection.
func TestFleetLearnsTheAgentsLinkAndBacklog(t *testing.T) {
	var fl *fleet.Fleet
	f := start(t, func(c *Config) {
		// On the server's clock, as the collector's main sets it up.
		fl = fleet.New(c.Clock)
		c.Fleet = fl
	})

	// The agent's clock is 7 minutes slow; its spool holds a file this PC
	// cannot read (a folder where the file was), which stays queued.
	agentClk := simclock.New(f.clk.Now().Add(-7 * time.Minute))
	dir := t.TempDir()
	sp, err := spool.Open(filepath.Join(dir, "spool.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sp.Close() })
	firstSeen := agentClk.Now().Add(-time.Hour)
	queue := func(name string, size int64) {
		t.Helper()
		path := filepath.Join(dir, name)
		if err := os.Mkdir(path, 0o755); err != nil {
			t.Fatal(err)
		}
		file := spool.File{NumSnim: "S1", Name: name, Path: path, Kind: idkpb.FileKind_FILE_KIND_RAW,
			Size: size, SHA256: make([]byte, 32), ScanTime: firstSeen, FirstSeen: firstSeen}
		if err := sp.Update(func(tx *spool.Tx) error { return tx.PutFile(file) }); err != nil {
			t.Fatal(err)
		}
	}
	queue("a.raw", 1000)

	tlsConf, err := transport.ClientTLS(filepath.Join(f.certs, "agent-850591.crt"), filepath.Join(f.certs, "agent-850591.key"), filepath.Join(f.certs, "ca.crt"), "localhost")
	if err != nil {
		t.Fatal(err)
	}
	tlsConf.NextProtos = []string{protocol.ALPN}
	am := ship.NewMetrics(prometheus.NewRegistry(), sp, agentClk)
	sh := ship.New(ship.Config{
		Addr: f.addr, TLS: tlsConf, QUIC: transport.QUICConfig(),
		Device: &idkpb.Device{NumIdk: "850591", KodTo: "10216100"},
		Spool:  sp, Metrics: am, Log: slog.New(slog.DiscardHandler), Clock: agentClk, Version: "1.2.3",
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		sh.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})

	// The status the agent sends when it connects, with no events.
	st := waitFor(t, fl, "the backlog at the connection", func(st fleet.Status) bool { return st.BacklogFiles == 1 })
	if off := st.ClockOffset; off < 7*time.Minute-10*time.Second || off > 7*time.Minute+10*time.Second {
		t.Errorf("clock offset %v, want about 7m", off)
	}
	if !st.Connected || st.KodTO != "10216100" || st.AgentVersion != "1.2.3" || st.Transport != "quic" ||
		!strings.HasPrefix(st.Remote, "127.0.0.1:") || !st.LastSeen.Equal(f.clk.Now()) {
		t.Errorf("status at the hello: %+v", st)
	}
	if want := certNotAfter(t, filepath.Join(f.certs, "agent-850591.crt")); !st.CertNotAfter.Equal(want) {
		t.Errorf("certificate expiry %v, want the agent certificate's %v", st.CertNotAfter, want)
	}
	// The oldest item's time is the agent's, corrected by its offset.
	if st.BacklogBytes != 1000 || !st.OldestUnsent.Equal(firstSeen.Add(st.ClockOffset)) {
		t.Errorf("backlog %d bytes, oldest %v; want 1000 bytes, oldest %v", st.BacklogBytes, st.OldestUnsent, firstSeen.Add(st.ClockOffset))
	}

	// A change of the spool is reported on the agent's clock, again in a
	// batch without events; the server acks it, so the agent keeps its
	// connection.
	queue("b.raw", 500)
	step := time.NewTicker(5 * time.Millisecond)
	defer step.Stop()
	giveUp := time.After(20 * time.Second)
	for st, _ := fl.Get("850591"); st.BacklogFiles != 2; st, _ = fl.Get("850591") {
		select {
		case <-giveUp:
			t.Fatalf("the second file never reported: %+v", st)
		case <-step.C:
			agentClk.Advance(250 * time.Millisecond)
		}
	}
	if st, _ := fl.Get("850591"); st.BacklogBytes != 1500 {
		t.Errorf("backlog %d bytes, want 1500", st.BacklogBytes)
	}
	if n := testutil.ToFloat64(am.Reconnects); n != 0 {
		t.Errorf("the agent reconnected %v times: its status-only batches were not acked", n)
	}
	if evs, _ := f.store.Events("850591"); len(evs) != 0 {
		t.Errorf("%d events stored from status-only batches", len(evs))
	}
	if n := testutil.ToFloat64(f.metrics.StreamErrors.WithLabelValues("events")); n != 0 {
		t.Errorf("%v events streams ended with an error", n)
	}

	// The agent goes away: the fleet keeps it, disconnected.
	cancel()
	<-done
	st = waitFor(t, fl, "the end of the connection", func(st fleet.Status) bool { return !st.Connected })
	if st.BacklogFiles != 2 || st.KodTO != "10216100" {
		t.Errorf("after the disconnection: %+v, want what was known kept", st)
	}
}

func waitFor(t *testing.T, fl *fleet.Fleet, what string, cond func(fleet.Status) bool) fleet.Status {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		st, ok := fl.Get("850591")
		if ok && cond(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s: %+v (known: %v)", what, st, ok)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func certNotAfter(t *testing.T, path string) time.Time {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatalf("%s: no PEM block", path)
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c.NotAfter
}
