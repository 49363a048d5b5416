package server

import (
	"context"
	"crypto/tls"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/quic-go/quic-go"

	"idk/collector/pki"
	"idk/collector/store"
	"idk/protocol"
	"idk/protocol/idkpb"
	"idk/protocol/transport"
	"idk/simulator/simclock"
)

type fixture struct {
	addr    string
	certs   string
	store   *store.Store
	metrics *Metrics
	clk     *simclock.Clock // the server's; stream deadlines stay on the wall clock
	revoked atomic.Bool     // every certificate, from when it is set
	offsets sync.Map        // NUM_IDK -> the offset OnClockOffset was given
	srv     *Server         // for more listeners
	tls     *tls.Config     // the server's
}

// start runs a real collector server on loopback with real certificates;
// each option may change its Config.
func start(t *testing.T, options ...func(*Config)) *fixture {
	t.Helper()
	dir := t.TempDir()
	certs := filepath.Join(dir, "certs")
	if _, err := pki.CreateCA(certs, pki.Options{}); err != nil {
		t.Fatal(err)
	}
	if _, err := pki.IssueCollector(certs, []string{"localhost", "127.0.0.1"}, pki.Options{}); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"850591", "850592", "850593"} {
		if _, err := pki.IssueAgent(certs, n, pki.Options{}); err != nil {
			t.Fatal(err)
		}
	}
	tlsConf, err := transport.ServerTLS(filepath.Join(certs, "collector.crt"), filepath.Join(certs, "collector.key"), filepath.Join(certs, "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	tlsConf.NextProtos = []string{protocol.ALPN}
	st, err := store.Open(filepath.Join(dir, "data"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	m := NewMetrics(prometheus.NewRegistry())
	f := &fixture{certs: certs, store: st, metrics: m, clk: simclock.New(time.Now())}
	cfg := Config{Store: st, Metrics: m, Clock: f.clk, Identify: func(cs tls.ConnectionState) (string, error) {
		if len(cs.PeerCertificates) == 0 {
			return "", errors.New("no certificate")
		}
		return pki.IdentityFromCert(cs.PeerCertificates[0])
	},
		// The registry: 850591 and 850592 at one post; 850593 holds a
		// certificate but was never enrolled.
		Enrolled: func(numIDK string) (string, bool) {
			return "10216100", numIDK == "850591" || numIDK == "850592"
		},
		Revoked:       func(tls.ConnectionState) bool { return f.revoked.Load() },
		OnClockOffset: func(numIDK string, offset time.Duration) { f.offsets.Store(numIDK, offset) },
	}
	for _, o := range options {
		o(&cfg)
	}
	srv := New(cfg)
	f.srv, f.tls = srv, tlsConf
	ln, err := quic.ListenAddr("127.0.0.1:0", tlsConf, transport.QUICConfig())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { srv.Serve(ctx, ln); close(done) }()
	t.Cleanup(func() { cancel(); ln.Close(); <-done })
	f.addr = ln.Addr().String()
	return f
}

// dial connects with agent num's certificate and says hello as device.
func (f *fixture) dial(t *testing.T, num string, device *idkpb.Device) (*quic.Conn, *idkpb.HelloReply, error) {
	t.Helper()
	return f.dialHello(t, num, &idkpb.Hello{ProtocolVersion: protocol.Version, Device: device, AgentTimeUnixNano: time.Now().Add(-7 * time.Minute).UnixNano()})
}

// dialHello connects with agent num's certificate and says hello h.
func (f *fixture) dialHello(t *testing.T, num string, h *idkpb.Hello) (*quic.Conn, *idkpb.HelloReply, error) {
	t.Helper()
	tlsConf, err := transport.ClientTLS(filepath.Join(f.certs, "agent-"+num+".crt"), filepath.Join(f.certs, "agent-"+num+".key"), filepath.Join(f.certs, "ca.crt"), "localhost")
	if err != nil {
		t.Fatal(err)
	}
	tlsConf.NextProtos = []string{protocol.ALPN}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := quic.DialAddr(ctx, f.addr, tlsConf, transport.QUICConfig())
	if err != nil {
		return nil, nil, err
	}
	st, err := conn.OpenStreamSync(ctx)
	if err != nil {
		return conn, nil, err
	}
	w, r := protocol.NewWriter(st), protocol.NewReader(st)
	w.Write(&idkpb.StreamHeader{Kind: idkpb.StreamKind_STREAM_KIND_HELLO})
	w.Write(h)
	var rep idkpb.HelloReply
	if err := r.Read(&rep); err != nil {
		return conn, nil, err
	}
	return conn, &rep, nil
}

func sendEvents(conn *quic.Conn, evs ...*idkpb.Event) (*idkpb.EventAck, error) {
	st, err := conn.OpenStreamSync(context.Background())
	if err != nil {
		return nil, err
	}
	defer st.Close()
	w, r := protocol.NewWriter(st), protocol.NewReader(st)
	w.Write(&idkpb.StreamHeader{Kind: idkpb.StreamKind_STREAM_KIND_EVENTS})
	w.Write(&idkpb.EventBatch{Events: evs})
	var ack idkpb.EventAck
	return &ack, r.Read(&ack)
}

func TestAgentWritesOnlyUnderItsCertificate(t *testing.T) {
	f := start(t)
	// ИДК 850591's certificate, claiming to be 850592: refused at hello.
	conn, rep, err := f.dial(t, "850591", &idkpb.Device{NumIdk: "850592", KodTo: "10216100"})
	if err == nil && rep.Error == "" {
		t.Fatal("hello for another ИДК accepted")
	}
	if rep != nil && !strings.Contains(rep.Error, "certificate") {
		t.Errorf("refusal does not say why: %q", rep.Error)
	}
	if conn != nil {
		if _, err := sendEvents(conn, &idkpb.Event{Seq: 1, Body: &idkpb.Event_ScanSeen{ScanSeen: &idkpb.ScanSeen{NumSnim: "X"}}}); err == nil {
			t.Error("events accepted on a refused connection")
		}
	}
	if got := testutil.ToFloat64(f.metrics.Refused.WithLabelValues("hello")); got != 1 {
		t.Errorf("refused{hello} = %v, want 1", got)
	}
	if evs, _ := f.store.Events("850592"); len(evs) != 0 {
		t.Fatalf("850592 has %d events written by 850591", len(evs))
	}
}

func TestHelloMeasuresClockOffsetAndEventsAreStored(t *testing.T) {
	f := start(t)
	conn, rep, err := f.dial(t, "850592", &idkpb.Device{NumIdk: "850592", KodTo: "10216100"})
	if err != nil || rep.Error != "" {
		t.Fatalf("hello: %v %q", err, rep.GetError())
	}
	defer conn.CloseWithError(0, "")
	// The agent's clock is 7 minutes slow.
	if off := time.Duration(rep.ClockOffsetNanos); off < 6*time.Minute+50*time.Second || off > 7*time.Minute+10*time.Second {
		t.Errorf("clock offset %v, want about 7m", off)
	}
	// The hook has the offset the reply told, before any event.
	if off, ok := f.offsets.Load("850592"); !ok || off.(time.Duration) != time.Duration(rep.ClockOffsetNanos) {
		t.Errorf("OnClockOffset got %v (%v), want %v", off, ok, time.Duration(rep.ClockOffsetNanos))
	}
	ack, err := sendEvents(conn, &idkpb.Event{Seq: 1, TimeUnixNano: time.Now().UnixNano(), Body: &idkpb.Event_ScanSeen{ScanSeen: &idkpb.ScanSeen{NumSnim: "S1"}}})
	if err != nil || ack.Error != "" || ack.Stored != 1 {
		t.Fatalf("ack: %v %v", ack, err)
	}
	if evs, _ := f.store.Events("850592"); len(evs) != 1 {
		t.Fatalf("stored events: %d", len(evs))
	}
}

func TestWrongProtocolVersionRefusedClearly(t *testing.T) {
	f := start(t)
	tlsConf, _ := transport.ClientTLS(filepath.Join(f.certs, "agent-850591.crt"), filepath.Join(f.certs, "agent-850591.key"), filepath.Join(f.certs, "ca.crt"), "localhost")
	tlsConf.NextProtos = []string{protocol.ALPN}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := quic.DialAddr(ctx, f.addr, tlsConf, transport.QUICConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.CloseWithError(0, "")
	st, _ := conn.OpenStreamSync(ctx)
	w, r := protocol.NewWriter(st), protocol.NewReader(st)
	w.Write(&idkpb.StreamHeader{Kind: idkpb.StreamKind_STREAM_KIND_HELLO})
	w.Write(&idkpb.Hello{ProtocolVersion: 99, Device: &idkpb.Device{NumIdk: "850591", KodTo: "10216100"}})
	// The reason arrives in the reply or, if the connection closes first,
	// in the connection's close message: the agent logs either.
	var rep idkpb.HelloReply
	err = r.Read(&rep)
	if !strings.Contains(rep.Error, "version 99") && (err == nil || !strings.Contains(err.Error(), "version 99")) {
		t.Fatalf("reply %q, %v", rep.Error, err)
	}
}

// KOD_TO comes from the registry: a hello that names another customs body
// is refused, and so is an ИДК the registry does not list.
func TestHelloMustMatchTheRegistry(t *testing.T) {
	f := start(t)
	for _, c := range []struct {
		num, kodTO, reason string
	}{
		{"850591", "10216200", "kod_to"},
		{"850593", "10216100", "not_enrolled"},
	} {
		conn, rep, err := f.dial(t, c.num, &idkpb.Device{NumIdk: c.num, KodTo: c.kodTO})
		if err == nil && rep.Error == "" {
			t.Errorf("%s with KOD_TO %s: accepted", c.num, c.kodTO)
		}
		if conn != nil {
			conn.CloseWithError(0, "")
		}
		// Counted once the hello has ended, which may be just after the
		// agent read the refusal.
		got := testutil.ToFloat64(f.metrics.Refused.WithLabelValues(c.reason))
		for deadline := time.Now().Add(5 * time.Second); got == 0 && time.Now().Before(deadline); {
			time.Sleep(10 * time.Millisecond)
			got = testutil.ToFloat64(f.metrics.Refused.WithLabelValues(c.reason))
		}
		if got != 1 {
			t.Errorf("refused{%s} = %v, want 1", c.reason, got)
		}
	}
}

// A name that can never be stored is rejected for good, not "try later".
func TestOfferOfUnstorableNameIsRejected(t *testing.T) {
	f := start(t)
	conn, rep, err := f.dial(t, "850591", &idkpb.Device{NumIdk: "850591", KodTo: "10216100"})
	if err != nil || rep.Error != "" {
		t.Fatalf("hello: %v %q", err, rep.GetError())
	}
	defer conn.CloseWithError(0, "")
	st, err := conn.OpenStreamSync(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	w, r := protocol.NewWriter(st), protocol.NewReader(st)
	w.Write(&idkpb.StreamHeader{Kind: idkpb.StreamKind_STREAM_KIND_FILE})
	w.Write(&idkpb.FileOffer{NumSnim: "S1", Name: "a:b.raw", Size: 1, Sha256: make([]byte, 32)})
	var or idkpb.FileOfferReply
	if err := r.Read(&or); err != nil {
		t.Fatal(err)
	}
	if or.Status != idkpb.FileOfferReply_STATUS_REJECTED || !strings.Contains(or.Error, "a:b.raw") {
		t.Fatalf("reply %v %q, want REJECTED naming the file", or.Status, or.Error)
	}
}

// A live connection whose certificate becomes revoked is closed at the
// next check, revocationEvery of the server's clock later.
func TestRevokedConnectionIsClosed(t *testing.T) {
	f := start(t)
	conn, rep, err := f.dial(t, "850591", &idkpb.Device{NumIdk: "850591", KodTo: "10216100"})
	if err != nil || rep.Error != "" {
		t.Fatalf("hello: %v %q", err, rep.GetError())
	}
	f.revoked.Store(true)
	// The check runs on its own goroutine: move the clock on until it has
	// run, giving it real time to act between steps.
	step := time.NewTicker(10 * time.Millisecond)
	defer step.Stop()
	giveUp := time.After(10 * time.Second)
	for {
		f.clk.Advance(revocationEvery)
		select {
		case <-conn.Context().Done():
			var ae *quic.ApplicationError
			if err := context.Cause(conn.Context()); !errors.As(err, &ae) || ae.ErrorCode != codeRevoked {
				t.Fatalf("closed with %v, want application error %d", err, codeRevoked)
			}
			return
		case <-giveUp:
			t.Fatal("revoked connection still open")
		case <-step.C:
		}
	}
}

// A connected agent that sends nothing is still seen, every 30 seconds of
// the server's clock.
func TestQuietAgentIsSeen(t *testing.T) {
	f := start(t)
	conn, rep, err := f.dial(t, "850591", &idkpb.Device{NumIdk: "850591", KodTo: "10216100"})
	if err != nil || rep.Error != "" {
		t.Fatalf("hello: %v %q", err, rep.GetError())
	}
	defer conn.CloseWithError(0, "")
	seen := func() float64 { return testutil.ToFloat64(f.metrics.LastSeen.WithLabelValues("850591")) }
	if got, want := seen(), float64(f.clk.Now().UnixNano())/1e9; got != want {
		t.Fatalf("last seen at the hello: %v, want the server's clock %v", got, want)
	}
	step := time.NewTicker(10 * time.Millisecond)
	defer step.Stop()
	giveUp := time.After(10 * time.Second)
	for {
		at := float64(f.clk.Advance(30*time.Second).UnixNano()) / 1e9
		select {
		case <-giveUp:
			t.Fatal("last seen never moved without traffic")
		case <-step.C:
		}
		if seen() >= at {
			return
		}
	}
}
