package server

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/quic-go/quic-go"

	"idk/agent/ship"
	"idk/agent/spool"
	"idk/collector/fleet"
	"idk/protocol"
	"idk/protocol/idkpb"
	"idk/protocol/transport"
	"idk/simulator/simclock"
)

// A real agent's shipper in 'auto' against the real server, at an address
// whose UDP port swallows every datagram (a firewall that drops UDP) and
// whose TCP port is the collector's TCP listener: the agent falls back to
// TLS over TCP with its certificate, its scan file and event arrive
// stored, and the fleet and the agent's metric say tcp. When QUIC answers
// at that port again, the agent's next try (on its own clock) moves it
// back to QUIC, without counting a lost link.
func TestAgentFallsBackToTCPAndReturnsToQUIC(t *testing.T) {
	var fl *fleet.Fleet
	f := start(t, func(c *Config) {
		fl = fleet.New(c.Clock)
		c.Fleet = fl
	})

	// UDP is blocked at the port the agent dials; TCP reaches the
	// collector on the same port number.
	hole, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		buf := make([]byte, 2048)
		for {
			if _, _, err := hole.ReadFrom(buf); err != nil {
				return
			}
		}
	}()
	addr := hole.LocalAddr().String()
	tln, err := transport.ListenTCP(addr, f.tls)
	if err != nil {
		hole.Close()
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan struct{})
	go func() { f.srv.ServeAll(ctx, tln); close(served) }()
	t.Cleanup(func() { cancel(); tln.Close(); hole.Close(); <-served })

	agentClk := simclock.New(time.Now())
	dir := t.TempDir()
	sp, err := spool.Open(filepath.Join(dir, "spool.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sp.Close() })
	// A scan file of several chunks, and an event.
	data := make([]byte, 3*protocol.ChunkSize+12345)
	rand.Read(data)
	path := filepath.Join(dir, "scan.raw")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	err = sp.Update(func(tx *spool.Tx) error {
		if _, err := tx.AppendEvent(&idkpb.Event{TimeUnixNano: agentClk.Now().UnixNano(),
			Body: &idkpb.Event_ScanSeen{ScanSeen: &idkpb.ScanSeen{NumSnim: "S1"}}}); err != nil {
			return err
		}
		return tx.PutFile(spool.File{NumSnim: "S1", Name: "scan.raw", Path: path, Kind: idkpb.FileKind_FILE_KIND_RAW,
			Size: int64(len(data)), SHA256: sum[:], ScanTime: agentClk.Now(), FirstSeen: agentClk.Now()})
	})
	if err != nil {
		t.Fatal(err)
	}

	tlsConf, err := transport.ClientTLS(filepath.Join(f.certs, "agent-850591.crt"), filepath.Join(f.certs, "agent-850591.key"), filepath.Join(f.certs, "ca.crt"), "localhost")
	if err != nil {
		t.Fatal(err)
	}
	tlsConf.NextProtos = []string{protocol.ALPN}
	qc := transport.QUICConfig()
	qc.HandshakeIdleTimeout = 300 * time.Millisecond // the dropped UDP costs the test little
	am := ship.NewMetrics(prometheus.NewRegistry(), sp, agentClk)
	sh := ship.New(ship.Config{
		Addr: addr, TLS: tlsConf, QUIC: qc, Transport: ship.TransportAuto,
		Device: &idkpb.Device{NumIdk: "850591", KodTo: "10216100"},
		Spool:  sp, Metrics: am, Log: slog.New(slog.DiscardHandler), Clock: agentClk,
	})
	actx, acancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		sh.Run(actx)
	}()
	t.Cleanup(func() {
		acancel()
		<-done
	})

	st := waitFor(t, fl, "the agent over TCP", func(st fleet.Status) bool { return st.Connected })
	if st.Transport != "tcp" {
		t.Fatalf("connected over %q, want tcp: UDP is dropped", st.Transport)
	}
	deadline := time.Now().Add(20 * time.Second)
	for testutil.ToFloat64(am.FilesShipped) < 1 || testutil.ToFloat64(am.EventsShipped) < 1 {
		if time.Now().After(deadline) {
			t.Fatalf("over TCP: files shipped %v, events %v", testutil.ToFloat64(am.FilesShipped), testutil.ToFloat64(am.EventsShipped))
		}
		time.Sleep(5 * time.Millisecond)
	}
	files, err := f.store.Files("850591")
	if err != nil || len(files) != 1 {
		t.Fatalf("stored files %v, %v; want the one", files, err)
	}
	got, err := os.ReadFile(filepath.Join(f.store.Root(), filepath.FromSlash(files[0].StoredAs)))
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("stored copy differs from the scan file (%d bytes, %v)", len(got), err)
	}
	if evs, _ := f.store.Events("850591"); len(evs) != 1 {
		t.Errorf("%d events stored, want 1", len(evs))
	}
	if q, tcp := testutil.ToFloat64(am.Transport.WithLabelValues("quic")), testutil.ToFloat64(am.Transport.WithLabelValues("tcp")); q != 0 || tcp != 1 {
		t.Errorf("idk_agent_transport quic %v, tcp %v; want 0, 1", q, tcp)
	}

	// UDP gets through again: QUIC answers at the same port.
	hole.Close()
	qln, err := quic.ListenAddr(addr, f.tls, transport.QUICConfig())
	if err != nil {
		t.Fatal(err)
	}
	qdone := make(chan struct{})
	go func() { f.srv.Serve(ctx, qln); close(qdone) }()
	t.Cleanup(func() { cancel(); qln.Close(); <-qdone })
	deadline = time.Now().Add(20 * time.Second)
	// The agent's metric is set when it has read the hello's reply, a
	// moment after the fleet learns the connection.
	for st, _ := fl.Get("850591"); !st.Connected || st.Transport != "quic" || testutil.ToFloat64(am.Transport.WithLabelValues("quic")) != 1; st, _ = fl.Get("850591") {
		if time.Now().After(deadline) {
			t.Fatalf("the agent never went back to QUIC: %+v", st)
		}
		agentClk.Advance(time.Minute) // ship.DefaultQUICRetry is 10 of them
		time.Sleep(5 * time.Millisecond)
	}
	if tcp := testutil.ToFloat64(am.Transport.WithLabelValues("tcp")); tcp != 0 {
		t.Errorf("after the return: idk_agent_transport tcp %v, want 0", tcp)
	}
	if n := testutil.ToFloat64(am.Reconnects); n != 0 {
		t.Errorf("%v reconnects counted: the fallback and the return are not lost links", n)
	}
}

// The TCP listener verifies the client certificate as QUIC's does: a
// client without one gets no connection, and a good one is served.
func TestTCPListenerRequiresTheClientCertificate(t *testing.T) {
	f := start(t)
	tln, err := transport.ListenTCP("127.0.0.1:0", f.tls)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan struct{})
	go func() { f.srv.ServeAll(ctx, tln); close(served) }()
	t.Cleanup(func() { cancel(); tln.Close(); <-served })

	good, err := transport.ClientTLS(filepath.Join(f.certs, "agent-850591.crt"), filepath.Join(f.certs, "agent-850591.key"), filepath.Join(f.certs, "ca.crt"), "localhost")
	if err != nil {
		t.Fatal(err)
	}
	good.NextProtos = []string{protocol.ALPN}
	anon := good.Clone()
	anon.Certificates = nil

	dctx, dcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer dcancel()
	if c, err := transport.DialTCP(dctx, tln.Addr().String(), anon); err == nil {
		// TLS 1.3 clients finish before the server checks them: the
		// refusal shows on the first exchange.
		if _, err := helloOver(dctx, c); err == nil {
			t.Fatal("a client without a certificate said its hello over TCP")
		}
		c.CloseWithError(0, "")
	}
	c, err := transport.DialTCP(dctx, tln.Addr().String(), good)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseWithError(0, "")
	rep, err := helloOver(dctx, c)
	if err != nil || rep.Error != "" {
		t.Fatalf("hello over TCP: %v, %q", err, rep.GetError())
	}
}

// helloOver says 850591's hello on c.
func helloOver(ctx context.Context, c transport.Conn) (*idkpb.HelloReply, error) {
	st, err := c.OpenStream(ctx)
	if err != nil {
		return nil, err
	}
	defer transport.EndStream(st)
	st.SetDeadline(time.Now().Add(10 * time.Second))
	w, r := protocol.NewWriter(st), protocol.NewReader(st)
	w.Write(&idkpb.StreamHeader{Kind: idkpb.StreamKind_STREAM_KIND_HELLO})
	w.Write(&idkpb.Hello{ProtocolVersion: protocol.Version, Device: &idkpb.Device{NumIdk: "850591", KodTo: "10216100"}, AgentTimeUnixNano: time.Now().UnixNano()})
	var rep idkpb.HelloReply
	if err := r.Read(&rep); err != nil {
		return nil, err
	}
	return &rep, nil
}
