package ship

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/quic-go/quic-go"

	"idk/agent/spool"
	"idk/protocol"
	"idk/protocol/idkpb"
	"idk/protocol/transport"
)

// region is the certificate the collectors of a test region share, and
// the agent's TLS configuration that trusts it.
type region struct {
	server, client *tls.Config
}

func newRegion(t *testing.T) *region {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "collector"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &region{
		server: &tls.Config{
			MinVersion:   tls.VersionTLS13,
			Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}},
			NextProtos:   []string{protocol.ALPN},
		},
		// No ServerName: each collector is checked against the host of
		// its own address (127.0.0.1, which the certificate lists).
		client: &tls.Config{MinVersion: tls.VersionTLS13, RootCAs: pool, NextProtos: []string{protocol.ALPN}},
	}
}

// node is the fake collector of ship_test.go that can be stopped hard
// (its listener and every connection closed, as when its machine dies)
// and started again on the same port.
type node struct {
	*collector
	t   *testing.T
	reg *region

	nmu      sync.Mutex
	ln       *quic.Listener
	conns    []*quic.Conn
	accepted int // connections accepted since the last start
	stripes  int // stripe offers (a range of a file) since the last start
	cancel   context.CancelFunc
	wg       sync.WaitGroup
}

// startNode starts a collector of reg; hello, if given, answers every
// hello.
func startNode(t *testing.T, reg *region, hello ...*idkpb.HelloReply) *node {
	t.Helper()
	n := &node{t: t, reg: reg, collector: &collector{
		tls: reg.client, answer: sendAll,
		offers: map[string]int{}, last: map[string]*idkpb.FileOffer{},
	}}
	if len(hello) > 0 {
		n.helloReply = hello[0]
	}
	n.onOffer = func(o *idkpb.FileOffer) {
		if o.RangeSize > 0 {
			n.nmu.Lock()
			n.stripes++
			n.nmu.Unlock()
		}
	}
	n.start("127.0.0.1:0")
	t.Cleanup(n.stop)
	return n
}

func (n *node) start(addr string) {
	n.t.Helper()
	ln, err := quic.ListenAddr(addr, n.reg.server, transport.QUICConfig())
	if err != nil {
		n.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	n.nmu.Lock()
	n.ln, n.cancel, n.accepted, n.stripes, n.addr = ln, cancel, 0, 0, ln.Addr().String()
	n.nmu.Unlock()
	n.wg.Go(func() {
		for {
			conn, err := ln.Accept(ctx)
			if err != nil {
				return
			}
			n.nmu.Lock()
			n.conns = append(n.conns, conn)
			n.accepted++
			n.nmu.Unlock()
			n.wg.Go(func() {
				for {
					st, err := conn.AcceptStream(ctx)
					if err != nil {
						return
					}
					n.wg.Go(func() {
						defer transport.EndStream(st)
						n.serve(st)
					})
				}
			})
		}
	})
}

// drop closes the connections up now, as a brief loss of the link does,
// and goes on listening.
func (n *node) drop() {
	n.nmu.Lock()
	defer n.nmu.Unlock()
	for _, c := range n.conns {
		c.CloseWithError(0, "dropped")
	}
	n.conns = nil
}

// stop closes the connections and the listener, and waits for the
// streams served to end. It may be called again.
func (n *node) stop() {
	n.drop()
	n.nmu.Lock()
	ln, cancel := n.ln, n.cancel
	n.ln = nil
	n.nmu.Unlock()
	if ln == nil {
		return
	}
	cancel()
	ln.Close()
	n.wg.Wait()
}

// restart starts a stopped node again, on the same port.
func (n *node) restart() { n.start(n.addr) }

func (n *node) counts() (accepted, stripes int) {
	n.nmu.Lock()
	defer n.nmu.Unlock()
	return n.accepted, n.stripes
}

// hasEvent reports whether the collector got the event queueEvent marked
// with mark.
func (n *node) hasEvent(mark string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.ContainsFunc(n.events, func(ev *idkpb.Event) bool { return ev.GetIntegrity().GetNumSnim() == mark })
}

func (n *node) stored(name string) bool { return slices.Contains(n.storedNames(), name) }

// queueEvent queues an event the collector can tell by mark.
func (a *agent) queueEvent(t *testing.T, mark string) {
	t.Helper()
	must(t, a.sp.Update(func(tx *spool.Tx) error {
		_, err := tx.AppendEvent(&idkpb.Event{TimeUnixNano: a.clk.Now().UnixNano(),
			Body: &idkpb.Event_Integrity{Integrity: &idkpb.Integrity{Kind: idkpb.Integrity_KIND_MISSING, NumSnim: mark}}})
		return err
	}))
}

// regionAgent is an agent shipping to the collectors addrs, with a QUIC
// handshake timeout short enough for a test to wait out on a collector
// that is gone.
func regionAgent(t *testing.T, reg *region, first *node, addrs []string, tune ...func(*Config)) *agent {
	t.Helper()
	return newAgent(t, first.collector, append([]func(*Config){func(c *Config) {
		c.Addrs, c.TLS = addrs, reg.client
		c.QUIC = transport.QUICConfig()
		c.QUIC.HandshakeIdleTimeout = 500 * time.Millisecond
	}}, tune...)...)
}

// on reports whether the agent is connected to the collector addr, by
// its metric.
func (a *agent) on(addr string) bool {
	return testutil.ToFloat64(a.metrics.Connected) == 1 && testutil.ToFloat64(a.metrics.Collector.WithLabelValues(addr)) == 1
}

// shipsTo queues a file and an event marked mark and waits for n to
// store them.
func (a *agent) shipsTo(t *testing.T, n *node, mark string) {
	t.Helper()
	a.queue(t, mark+".jpg")
	a.queueEvent(t, mark)
	eventually(t, mark+" at "+n.addr, func() bool { return n.stored(mark+".jpg") && n.hasEvent(mark) })
}

// TestFailoverToNextCollectorAndStay: the agent ships to the first
// collector; when that one dies, to the second; and stays with the second
// when the first comes back, even across a brief loss of its link.
func TestFailoverToNextCollectorAndStay(t *testing.T) {
	reg := newRegion(t)
	a, b := startNode(t, reg), startNode(t, reg)
	ag := regionAgent(t, reg, a, []string{a.addr, b.addr})
	ag.run(t)

	ag.shipsTo(t, a, "one")
	eventually(t, "the metric naming A", func() bool { return ag.on(a.addr) })
	if testutil.ToFloat64(ag.metrics.Collector.WithLabelValues(b.addr)) != 0 {
		t.Error("idk_agent_collector of B is not 0 while on A")
	}
	if _, st := b.counts(); b.stored("one.jpg") || st != 0 {
		t.Error("B got the file shipped to A")
	}

	a.stop()
	ag.shipsTo(t, b, "two")
	eventually(t, "the metric naming B", func() bool { return ag.on(b.addr) })
	if testutil.ToFloat64(ag.metrics.Collector.WithLabelValues(a.addr)) != 0 {
		t.Error("idk_agent_collector of A is not 0 while on B")
	}

	// A is back, and B's link drops for a moment: the agent comes back
	// to B, the collector of its last session, not to the first listed.
	a.restart()
	bBefore, _ := b.counts()
	b.drop()
	eventually(t, "a new connection to B", func() bool { n, _ := b.counts(); return n > bBefore })
	ag.shipsTo(t, b, "three")
	if n, _ := a.counts(); n != 0 || a.stored("three.jpg") || a.hasEvent("three") {
		t.Errorf("A, back, got %d connections (or the data): the agent should stay with B", n)
	}
}

// TestFirstCollectorUnreachableFromStart: the first collector listed does
// not answer at all (a closed port); the agent ships to the second.
func TestFirstCollectorUnreachableFromStart(t *testing.T) {
	reg := newRegion(t)
	b := startNode(t, reg)
	closed := closedUDPPort(t)
	ag := regionAgent(t, reg, b, []string{closed, b.addr})
	ag.run(t)
	ag.shipsTo(t, b, "one")
	if !ag.on(b.addr) || testutil.ToFloat64(ag.metrics.Collector.WithLabelValues(closed)) != 0 {
		t.Error("idk_agent_collector does not name B alone")
	}
}

// closedUDPPort returns a local address nothing listens on, by UDP or TCP.
func closedUDPPort(t *testing.T) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := pc.LocalAddr().String()
	pc.Close()
	return addr
}

// TestLanesFollowTheSessionsCollector: after a failover, a large file
// goes in stripes over lanes to the session's collector, B, and none of
// them to A, back by then.
func TestLanesFollowTheSessionsCollector(t *testing.T) {
	reg := newRegion(t)
	lanes := &idkpb.HelloReply{MaxLanes: 3}
	a, b := startNode(t, reg, lanes), startNode(t, reg, lanes)
	ag := regionAgent(t, reg, a, []string{a.addr, b.addr}, func(c *Config) { c.Lanes = 4 })
	ag.run(t)
	ag.shipsTo(t, a, "one")
	a.stop()
	eventually(t, "the agent on B", func() bool { return ag.on(b.addr) })
	a.restart()

	data := make([]byte, StripeFrom+3*protocol.ChunkSize)
	for i := range data {
		data[i] = byte(i * 7)
	}
	ag.queueData(t, "big.jpg", data, ag.start)
	eventually(t, "big.jpg stored at B", func() bool { return b.stored("big.jpg") })
	// The fake collector does not hold stripes (ship_test.go), so the
	// whole offer sent the file; the stripe offers show where the lanes
	// went.
	if n, st := b.counts(); st == 0 || n < 2 {
		t.Errorf("B got %d stripe offers on %d connections: the large file did not go over lanes to B", st, n)
	}
	if n, st := a.counts(); n != 0 || st != 0 {
		t.Errorf("A, back, got %d connections and %d stripe offers: lanes must dial the session's collector only", n, st)
	}
}

// Each collector is checked against the host of its own address unless
// a server name is set, which then applies to all.
func TestTLSConfigsNameEachCollector(t *testing.T) {
	base := &tls.Config{MinVersion: tls.VersionTLS13}
	m := tlsConfigs(base, []string{"a.region.example:7443", "10.0.0.2:7443"})
	if m["a.region.example:7443"].ServerName != "a.region.example" || m["10.0.0.2:7443"].ServerName != "10.0.0.2" {
		t.Errorf("server names %q, %q", m["a.region.example:7443"].ServerName, m["10.0.0.2:7443"].ServerName)
	}
	if base.ServerName != "" {
		t.Error("the shared configuration was changed")
	}
	base.ServerName = "collector.region.example"
	m = tlsConfigs(base, []string{"10.0.0.1:7443", "10.0.0.2:7443"})
	for a, c := range m {
		if c.ServerName != "collector.region.example" {
			t.Errorf("%s: server name %q, want the one set for all", a, c.ServerName)
		}
	}
}
