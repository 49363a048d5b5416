package ship

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"log/slog"
	"math/big"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/quic-go/quic-go"

	"idk/agent/spool"
	"idk/internal/testenv"
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

// node is the fake collector of ship_test.go that can be stopped (its
// listener and every connection closed, each with a CONNECTION_CLOSE),
// killed (closed with no word to the agent, as SIGKILL stops a
// collector), and started again on the same port.
type node struct {
	*collector
	t   *testing.T
	reg *region

	// withTCP: the node listens on TCP on its port too, as a collector
	// with listen.tcp does (it hangs up on every connection: the fake
	// serves QUIC only); tr and tcp are its sockets while started.
	withTCP bool
	tr      *quic.Transport
	tcp     net.Listener

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
	n := newNode(t, reg, hello...)
	n.start("127.0.0.1:0")
	t.Cleanup(n.stop)
	return n
}

// startTCPNode starts a collector of reg that listens on TCP too.
func startTCPNode(t *testing.T, reg *region) *node {
	t.Helper()
	n := newNode(t, reg)
	n.withTCP = true
	n.start("127.0.0.1:0")
	t.Cleanup(n.stop)
	return n
}

func newNode(t *testing.T, reg *region, hello ...*idkpb.HelloReply) *node {
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
	return n
}

func (n *node) start(addr string) {
	n.t.Helper()
	// A UDP socket of its own under the listener, which kill closes.
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		n.t.Fatal(err)
	}
	uc, err := net.ListenUDP("udp", ua)
	if err != nil {
		n.t.Fatal(err)
	}
	tr := &quic.Transport{Conn: uc}
	ln, err := tr.Listen(n.reg.server, transport.QUICConfig())
	if err != nil {
		tr.Close()
		n.t.Fatal(err)
	}
	var tl net.Listener
	if n.withTCP {
		if tl, err = net.Listen("tcp", uc.LocalAddr().String()); err != nil {
			ln.Close()
			tr.Close()
			n.t.Fatal(err)
		}
		go func() {
			for {
				c, err := tl.Accept()
				if err != nil {
					return
				}
				c.Close()
			}
		}()
	}
	ctx, cancel := context.WithCancel(context.Background())
	n.nmu.Lock()
	n.ln, n.tr, n.tcp, n.cancel, n.accepted, n.stripes, n.addr = ln, tr, tl, cancel, 0, 0, ln.Addr().String()
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
// streams served to end. It may be called again, and after kill.
func (n *node) stop() {
	n.drop()
	n.halt()
}

// halt closes the listeners and the sockets, and waits for the streams
// served to end.
func (n *node) halt() {
	n.nmu.Lock()
	ln, tr, tl, cancel := n.ln, n.tr, n.tcp, n.cancel
	n.ln, n.tr, n.tcp = nil, nil, nil
	n.nmu.Unlock()
	if ln == nil {
		return
	}
	if tl != nil {
		tl.Close()
	}
	cancel()
	ln.Close()
	tr.Close()
	tr.Conn.Close() // the Transport leaves a socket it was given open
	n.wg.Wait()
}

// kill stops n as SIGKILL stops a collector's process: its UDP socket
// closed first, under its connections, so that no CONNECTION_CLOSE can
// reach the agent (the agent's packets to the port are then dropped),
// and its TCP port refused from then on.
func (n *node) kill() {
	n.nmu.Lock()
	tr := n.tr
	n.conns = nil
	n.nmu.Unlock()
	if tr != nil {
		tr.Conn.Close()
	}
	n.halt()
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
func (c *collector) hasEvent(mark string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.ContainsFunc(c.events, func(ev *idkpb.Event) bool { return ev.GetIntegrity().GetNumSnim() == mark })
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
	ag := regionAgent(t, reg, a, []string{a.addr, b.addr}, func(c *Config) { c.Lanes, c.StripeMinRTT = 4, -1 })
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

// TestFailoverWhenCollectorKilled: the collector the agent ships to dies
// as a killed process does, without a word to the agent (no
// CONNECTION_CLOSE), and the other collector of the region listens; the
// agent ships to the other one within seconds, not after the QUIC idle
// timeout and a handshake timeout on the dead address.
func TestFailoverWhenCollectorKilled(t *testing.T) {
	reg := newRegion(t)
	a, b := startTCPNode(t, reg), startTCPNode(t, reg)
	var logs testenv.LogBuffer
	ag := regionAgent(t, reg, a, []string{a.addr, b.addr}, func(c *Config) {
		c.Log = slog.New(slog.NewTextHandler(&logs, nil))
		// The shared handshake timeout, as in the field: the round
		// must not wait it out on the dead address.
		c.QUIC.HandshakeIdleTimeout = transport.QUICConfig().HandshakeIdleTimeout
	})
	ag.run(t)
	ag.shipsTo(t, a, "one")

	killed := time.Now()
	a.kill()
	ag.shipsTo(t, b, "two")
	took := time.Since(killed)
	t.Logf("shipping to B %v after A was killed", took.Round(time.Millisecond))
	if took > 5*time.Second {
		t.Errorf("the agent took %v to ship to B after A died; want a few seconds", took)
	}
	if !ag.on(b.addr) {
		t.Error("the agent is not on B")
	}
	if !strings.Contains(logs.String(), errNothingListens.Error()) {
		t.Errorf("the session did not end on A's refused TCP port; log:\n%s", logs.String())
	}
	if ag.sh.cfg.QUIC.MaxIdleTimeout != regionIdleTimeout || ag.sh.cfg.QUIC.KeepAlivePeriod != regionKeepAlive {
		t.Errorf("idle timeout %v, keep-alive %v: want %v, %v for an agent of several collectors",
			ag.sh.cfg.QUIC.MaxIdleTimeout, ag.sh.cfg.QUIC.KeepAlivePeriod, regionIdleTimeout, regionKeepAlive)
	}
}

// TestQUICOnlyCollectorNotTakenForDead: collectors that listen on QUIC
// alone (listen.tcp off) refuse TCP, which must not make the agent take
// them for dead: one alone is reached over QUIC with the shared tuning,
// and so is the first of a region of them, although a TCP probe of each
// is refused.
func TestQUICOnlyCollectorNotTakenForDead(t *testing.T) {
	reg := newRegion(t)
	t.Run("alone", func(t *testing.T) {
		n := startNode(t, reg)
		ag := newAgent(t, n.collector, func(c *Config) { c.Addrs, c.TLS = []string{n.addr}, reg.client })
		ag.run(t)
		ag.shipsTo(t, n, "one")
		if testutil.ToFloat64(ag.metrics.Transport.WithLabelValues(TransportQUIC)) != 1 {
			t.Error("not shipping over QUIC")
		}
		if ag.sh.cfg.QUIC.MaxIdleTimeout != transport.QUICConfig().MaxIdleTimeout {
			t.Errorf("idle timeout %v: an agent of one collector keeps the shared one", ag.sh.cfg.QUIC.MaxIdleTimeout)
		}
	})
	t.Run("region", func(t *testing.T) {
		a, b := startNode(t, reg), startNode(t, reg)
		ag := regionAgent(t, reg, a, []string{a.addr, b.addr})
		ag.run(t)
		ag.shipsTo(t, a, "one")
		if n, _ := b.counts(); n != 0 {
			t.Errorf("B got %d connections: the agent should be on A, the first listed", n)
		}
		if ag.sh.tcpListens.Load() {
			t.Error("refusals trusted in a region that takes QUIC where it refuses TCP")
		}
	})
}

// TestRefusalsDistrustedWhenNoneReached: refusals are trusted once the
// region was seen listening on TCP (A does), but B, the only collector
// left, listens on QUIC alone; once rounds have reached no collector
// for distrustAfter, the agent dials the refused ones over QUIC again
// and ships to B, and trusts refusals no more.
func TestRefusalsDistrustedWhenNoneReached(t *testing.T) {
	reg := newRegion(t)
	a, b := startTCPNode(t, reg), startNode(t, reg)
	ag := regionAgent(t, reg, a, []string{a.addr, b.addr})
	ag.run(t)
	ag.shipsTo(t, a, "one")
	eventually(t, "refusals trusted", func() bool { return ag.sh.tcpListens.Load() })

	a.kill()
	ag.shipsTo(t, b, "two")
	if ag.sh.tcpListens.Load() {
		t.Error("refusals still trusted after a collector refusing TCP took QUIC")
	}
}
