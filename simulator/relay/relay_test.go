package relay

import (
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"net"
	"net/netip"
	"runtime"
	"sort"
	"sync"
	"testing"
	"time"
)

// datagram is what a test endpoint received: the sender's sequence number
// and clock, stamped into the payload, and when and from where it came.
type datagram struct {
	seq  uint64
	sent time.Time
	at   time.Time
	from netip.AddrPort
	n    int
}

// endpoint is a plain UDP socket on loopback that records what it gets
// and, if asked, sends every datagram straight back.
type endpoint struct {
	c    *net.UDPConn
	got  chan datagram
	done chan struct{}
}

func newEndpoint(t *testing.T, echo bool) *endpoint {
	t.Helper()
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")))
	if err != nil {
		t.Fatal(err)
	}
	c.SetReadBuffer(sockBuf)
	e := &endpoint{c: c, got: make(chan datagram, 1<<14), done: make(chan struct{})}
	go func() {
		defer close(e.done)
		buf := make([]byte, maxDatagram)
		for {
			n, from, err := c.ReadFromUDPAddrPort(buf)
			if errors.Is(err, net.ErrClosed) {
				return
			}
			if err != nil || n < 16 {
				continue
			}
			e.got <- datagram{
				seq:  binary.BigEndian.Uint64(buf),
				sent: time.Unix(0, int64(binary.BigEndian.Uint64(buf[8:]))),
				at:   time.Now(),
				from: from,
				n:    n,
			}
			if echo {
				c.WriteToUDPAddrPort(buf[:n], from)
			}
		}
	}()
	t.Cleanup(e.close)
	return e
}

func (e *endpoint) close() {
	e.c.Close()
	<-e.done
}

func (e *endpoint) addr() netip.AddrPort { return e.c.LocalAddr().(*net.UDPAddr).AddrPort() }

// sendTo sends datagram seq of size bytes (at least 16) to addr.
func (e *endpoint) sendTo(t *testing.T, addr netip.AddrPort, seq uint64, size int) {
	t.Helper()
	b := make([]byte, max(size, 16))
	binary.BigEndian.PutUint64(b, seq)
	binary.BigEndian.PutUint64(b[8:], uint64(time.Now().UnixNano()))
	if _, err := e.c.WriteToUDPAddrPort(b, addr); err != nil {
		t.Fatal(err)
	}
}

// drain collects datagrams until none has come for quiet.
func (e *endpoint) drain(quiet time.Duration) []datagram {
	var out []datagram
	for {
		select {
		case d := <-e.got:
			out = append(out, d)
		case <-time.After(quiet):
			return out
		}
	}
}

// rig is a client, a relay and an upstream server, all on loopback.
type rig struct {
	client, server *endpoint
	r              *Relay
	to             netip.AddrPort // the relay, as the client sees it
}

func newRig(t *testing.T, cfg Config, seed uint64, echo bool) *rig {
	t.Helper()
	server := newEndpoint(t, echo)
	client := newEndpoint(t, false)
	r, err := Listen("127.0.0.1:0", server.addr().String(), cfg, rand.NewPCG(seed, seed))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return &rig{client: client, server: server, r: r, to: r.Addr().(*net.UDPAddr).AddrPort()}
}

// waitStats polls the relay's counters until cond holds or 10 s pass.
func waitStats(t *testing.T, r *Relay, what string, cond func(Stats) bool) Stats {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st := r.Stats()
		if cond(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s: %+v", what, st)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestRelayLatencyWithinBounds(t *testing.T) {
	const lat, jit = 40 * time.Millisecond, 10 * time.Millisecond
	g := newRig(t, Config{Latency: lat, Jitter: jit}, 1, true)
	const n = 100
	for i := range n {
		g.client.sendTo(t, g.to, uint64(i), 200)
		time.Sleep(2 * time.Millisecond)
	}
	// The scheduler may be late under load, never early; allow lateness.
	const slack = 40 * time.Millisecond
	oneWay := g.server.drain(500 * time.Millisecond)
	back := g.client.drain(500 * time.Millisecond)
	if len(oneWay) != n || len(back) != n {
		t.Fatalf("got %d at the server and %d back, want %d", len(oneWay), len(back), n)
	}
	var delays []time.Duration
	for _, d := range oneWay {
		dl := d.at.Sub(d.sent)
		if dl < lat-jit || dl > lat+jit+slack {
			t.Errorf("datagram %d took %v one way, want %v-%v", d.seq, dl, lat-jit, lat+jit)
		}
		delays = append(delays, dl)
	}
	for _, d := range back {
		// The echo's stamp is the client's: this is the round trip.
		if rtt := d.at.Sub(d.sent); rtt < 2*(lat-jit) || rtt > 2*(lat+jit)+slack {
			t.Errorf("datagram %d round trip %v, want %v-%v", d.seq, rtt, 2*(lat-jit), 2*(lat+jit))
		}
	}
	sort.Slice(delays, func(i, j int) bool { return delays[i] < delays[j] })
	t.Logf("one-way delay: min %v, median %v, max %v", delays[0], delays[n/2], delays[n-1])
}

func TestRelayLossRatioIsSeeded(t *testing.T) {
	const n, loss = 2000, 0.1
	run := func() Stats {
		g := newRig(t, Config{Loss: loss}, 42, true)
		for i := range n {
			g.client.sendTo(t, g.to, uint64(i), 100)
			if i%20 == 0 {
				time.Sleep(time.Millisecond) // keep socket buffers from overflowing
			}
		}
		st := waitStats(t, g.r, "every datagram decided", func(st Stats) bool {
			return st.Up.Packets+st.Up.Dropped() == n && st.Down.Packets+st.Down.Dropped() == st.Up.Packets
		})
		if got := len(g.client.drain(200 * time.Millisecond)); int64(got) != st.Down.Packets {
			t.Errorf("client got %d datagrams, relay forwarded %d", got, st.Down.Packets)
		}
		return st
	}
	st := run()
	// Binomial: n·p = 200 with σ ≈ 13; 4.5σ either way.
	if st.Up.DroppedLoss < 140 || st.Up.DroppedLoss > 260 {
		t.Errorf("dropped %d of %d on the way up, want about %d", st.Up.DroppedLoss, n, int(n*loss))
	}
	if ratio := float64(st.Down.DroppedLoss) / float64(st.Up.Packets); ratio < 0.065 || ratio > 0.135 {
		t.Errorf("dropped %d of %d on the way down (%.3f), want about %v", st.Down.DroppedLoss, st.Up.Packets, ratio, loss)
	}
	if st.Up.Dropped() != st.Up.DroppedLoss || st.Down.Dropped() != st.Down.DroppedLoss {
		t.Errorf("drops for other reasons than loss: %+v", st)
	}
	again := run()
	if again.Up.DroppedLoss != st.Up.DroppedLoss || again.Down.DroppedLoss != st.Down.DroppedLoss {
		t.Errorf("same seed, different drops: %d/%d then %d/%d",
			st.Up.DroppedLoss, st.Down.DroppedLoss, again.Up.DroppedLoss, again.Down.DroppedLoss)
	}
	t.Logf("lost %d of %d up, %d of %d down", st.Up.DroppedLoss, n, st.Down.DroppedLoss, st.Up.Packets)
}

func TestRelayBandwidthCap(t *testing.T) {
	const bw, size, n = 250_000, 1000, 500 // 2 s of traffic
	g := newRig(t, Config{Bandwidth: bw}, 1, false)
	for i := range n {
		g.client.sendTo(t, g.to, uint64(i), size)
		if i%20 == 0 {
			time.Sleep(time.Millisecond) // far faster than the cap, but no kernel drops
		}
	}
	got := g.server.drain(time.Second)
	if len(got) != n {
		t.Fatalf("got %d datagrams, want %d", len(got), n)
	}
	// Measure over the second half: the bucket's initial burst is spent
	// by then, and the rest came at the capped rate.
	half := got[n/2:]
	elapsed := half[len(half)-1].at.Sub(half[0].at)
	rate := float64((len(half)-1)*size) / elapsed.Seconds()
	if rate < 0.8*bw || rate > 1.2*bw {
		t.Errorf("measured %.0f B/s through a %d B/s cap", rate, bw)
	}
	t.Logf("measured %.0f B/s through a %d B/s cap", rate, bw)
}

func TestRelayOutageDropsAllThenPasses(t *testing.T) {
	g := newRig(t, Config{}, 1, false)
	g.r.SetOutage(true)
	for i := range 50 {
		g.client.sendTo(t, g.to, uint64(i), 100)
	}
	if got := g.server.drain(200 * time.Millisecond); len(got) != 0 {
		t.Fatalf("%d datagrams passed during the outage", len(got))
	}
	g.r.SetOutage(false)
	for i := range 50 {
		g.client.sendTo(t, g.to, uint64(100+i), 100)
	}
	if got := g.server.drain(200 * time.Millisecond); len(got) != 50 {
		t.Fatalf("%d of 50 datagrams passed after the outage", len(got))
	}
	if st := g.r.Stats(); st.Up.DroppedOutage != 50 || st.Up.Packets != 50 {
		t.Errorf("counters: %+v", st.Up)
	}

	// Datagrams on the wire when the link goes down are lost as well.
	if err := g.r.SetConfig(Config{Latency: 100 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		g.client.sendTo(t, g.to, uint64(200+i), 100)
	}
	g.r.SetOutage(true)
	time.Sleep(200 * time.Millisecond)
	g.r.SetOutage(false)
	if got := g.server.drain(100 * time.Millisecond); len(got) != 0 {
		t.Fatalf("%d datagrams in flight survived the outage", len(got))
	}
	if st := g.r.Stats(); st.Up.DroppedOutage != 60 {
		t.Errorf("dropped %d in outages, want 60", st.Up.DroppedOutage)
	}
}

func TestRelayScheduledOutage(t *testing.T) {
	g := newRig(t, Config{}, 1, false)
	const at, dur, margin = 200 * time.Millisecond, 400 * time.Millisecond, 50 * time.Millisecond
	start := time.Now()
	if err := g.r.SetConfig(Config{Outages: []Outage{{At: at, For: dur}}}); err != nil {
		t.Fatal(err)
	}
	sentAt := map[uint64]time.Duration{}
	for i := uint64(0); time.Since(start) < at+dur+300*time.Millisecond; i++ {
		sentAt[i] = time.Since(start)
		g.client.sendTo(t, g.to, i, 100)
		time.Sleep(10 * time.Millisecond)
	}
	arrived := map[uint64]bool{}
	for _, d := range g.server.drain(200 * time.Millisecond) {
		arrived[d.seq] = true
	}
	var before, during, after int
	for seq, off := range sentAt {
		switch {
		case off < at-margin:
			before++
			if !arrived[seq] {
				t.Errorf("datagram sent at %v, before the outage, was dropped", off)
			}
		case off > at+margin && off < at+dur-margin:
			during++
			if arrived[seq] {
				t.Errorf("datagram sent at %v, during the outage, passed", off)
			}
		case off > at+dur+margin:
			after++
			if !arrived[seq] {
				t.Errorf("datagram sent at %v, after the outage, was dropped", off)
			}
		}
	}
	if before == 0 || during == 0 || after == 0 {
		t.Errorf("sent %d before, %d during, %d after the outage: the test proved little", before, during, after)
	}
}

func TestRelayRebindChangesSourcePort(t *testing.T) {
	g := newRig(t, Config{}, 1, false)
	g.client.sendTo(t, g.to, 1, 100)
	first := g.server.drain(100 * time.Millisecond)
	if len(first) != 1 {
		t.Fatalf("got %d datagrams, want 1", len(first))
	}
	old := first[0].from
	g.server.sendTo(t, old, 2, 100)
	if got := g.client.drain(100 * time.Millisecond); len(got) != 1 {
		t.Fatalf("reply before rebinding: got %d datagrams, want 1", len(got))
	}

	if err := g.r.Rebind(); err != nil {
		t.Fatal(err)
	}
	g.client.sendTo(t, g.to, 3, 100)
	second := g.server.drain(100 * time.Millisecond)
	if len(second) != 1 {
		t.Fatalf("after rebinding: got %d datagrams, want 1", len(second))
	}
	if second[0].from == old {
		t.Fatalf("the upstream still sees %v after rebinding", old)
	}
	// As behind a NAT: the old mapping is gone, the new one works.
	g.server.sendTo(t, old, 4, 100)
	g.server.sendTo(t, second[0].from, 5, 100)
	got := g.client.drain(100 * time.Millisecond)
	if len(got) != 1 || got[0].seq != 5 {
		t.Fatalf("replies after rebinding: %+v, want only datagram 5", got)
	}
	if st := g.r.Stats(); st.Rebinds != 1 || st.Sessions != 1 {
		t.Errorf("rebinds %d, sessions %d; want 1, 1", st.Rebinds, st.Sessions)
	}
	t.Logf("upstream saw %v, then %v", old, second[0].from)
}

// inversions counts datagrams that arrived after one with a higher number.
func inversions(ds []datagram) int64 {
	var n int64
	var top uint64
	for i, d := range ds {
		if i > 0 && d.seq < top {
			n++
		}
		top = max(top, d.seq)
	}
	return n
}

func TestRelayReorders(t *testing.T) {
	for _, tc := range []struct {
		name    string
		cfg     Config
		reorder bool
	}{
		{"latency only keeps order", Config{Latency: 20 * time.Millisecond}, false},
		{"jitter", Config{Latency: 20 * time.Millisecond, Jitter: 15 * time.Millisecond}, true},
		{"held back", Config{Latency: 5 * time.Millisecond, Reorder: 0.1, ReorderDelay: 30 * time.Millisecond}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := newRig(t, tc.cfg, 7, false)
			const n = 200
			for i := range n {
				g.client.sendTo(t, g.to, uint64(i), 100)
				time.Sleep(time.Millisecond)
			}
			got := g.server.drain(300 * time.Millisecond)
			if len(got) != n {
				t.Fatalf("got %d datagrams, want %d", len(got), n)
			}
			inv := inversions(got)
			st := g.r.Stats()
			if st.Up.Reordered != inv {
				t.Errorf("relay counted %d reordered, the server saw %d", st.Up.Reordered, inv)
			}
			if tc.reorder != (inv > 0) {
				t.Errorf("%d of %d datagrams out of order", inv, n)
			}
			t.Logf("%d of %d datagrams out of order", inv, n)
		})
	}
}

func TestRelayQueueIsBounded(t *testing.T) {
	g := newRig(t, Config{Latency: 300 * time.Millisecond, MaxQueue: 10}, 1, false)
	for i := range 50 {
		g.client.sendTo(t, g.to, uint64(i), 1000)
	}
	got := g.server.drain(500 * time.Millisecond)
	st := g.r.Stats()
	if len(got) != 10 || st.Up.DroppedQueue != 40 {
		t.Fatalf("got %d datagrams, %d dropped at the queue; want 10, 40", len(got), st.Up.DroppedQueue)
	}
	for i, d := range got {
		if d.seq != uint64(i) {
			t.Fatalf("datagram %d is number %d: the tail should be dropped, not the head", i, d.seq)
		}
	}
}

func TestRelayRejectsBadConfig(t *testing.T) {
	for _, cfg := range []Config{
		{Loss: 1.5},
		{Reorder: -0.1},
		{Latency: -time.Second},
		{Bandwidth: -1},
		{Outages: []Outage{{At: -time.Second, For: time.Second}}},
	} {
		if r, err := Listen("127.0.0.1:0", "127.0.0.1:9", cfg, nil); err == nil {
			r.Close()
			t.Errorf("Listen accepted %+v", cfg)
		}
	}
	r, err := Listen("127.0.0.1:0", "127.0.0.1:9", Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := r.SetConfig(Config{Loss: 2}); err == nil {
		t.Error("SetConfig accepted loss 2")
	}
}

// Close stops every goroutine: the readers of all sessions, including
// sockets replaced by Rebind, the two senders and the expiry loop.
func TestRelayCloseStopsGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	server := newEndpoint(t, true)
	r, err := Listen("127.0.0.1:0", server.addr().String(), Config{Latency: 50 * time.Millisecond}, rand.NewPCG(1, 1))
	if err != nil {
		t.Fatal(err)
	}
	to := r.Addr().(*net.UDPAddr).AddrPort()
	var clients []*endpoint
	for range 3 {
		c := newEndpoint(t, false)
		clients = append(clients, c)
		c.sendTo(t, to, 1, 100)
	}
	waitStats(t, r, "three sessions", func(st Stats) bool { return st.Sessions == 3 })
	if err := r.Rebind(); err != nil {
		t.Fatal(err)
	}
	for _, c := range clients {
		c.sendTo(t, to, 2, 100) // some still held when Close comes
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); !errors.Is(err, ErrClosed) {
		t.Errorf("second Close: %v, want ErrClosed", err)
	}
	if err := r.Rebind(); !errors.Is(err, ErrClosed) {
		t.Errorf("Rebind after Close: %v, want ErrClosed", err)
	}
	server.close()
	for _, c := range clients {
		c.close()
	}
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines before, %d after Close:\n%s", before, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Many clients at once, each its own session and upstream socket, with
// everything else changing underneath: a test for the race detector.
func TestRelayConcurrentClientsAndChanges(t *testing.T) {
	server := newEndpoint(t, true)
	r, err := Listen("127.0.0.1:0", server.addr().String(), Config{Latency: time.Millisecond, Jitter: time.Millisecond}, rand.NewPCG(3, 3))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	to := r.Addr().(*net.UDPAddr).AddrPort()
	var wg sync.WaitGroup
	for c := range 4 {
		ep := newEndpoint(t, false)
		wg.Go(func() {
			b := make([]byte, 300)
			for i := range 200 {
				binary.BigEndian.PutUint64(b, uint64(c*1000+i))
				ep.c.WriteToUDPAddrPort(b, to)
				time.Sleep(100 * time.Microsecond)
			}
		})
	}
	wg.Go(func() {
		for i := range 20 {
			r.SetConfig(Config{Latency: time.Duration(i%3) * time.Millisecond, Loss: 0.01, Bandwidth: 1 << 20, SessionIdle: time.Minute})
			r.SetOutage(i%5 == 0)
			r.Rebind()
			r.Stats()
			time.Sleep(5 * time.Millisecond)
		}
		r.SetOutage(false)
	})
	wg.Wait()
	st := waitStats(t, r, "every datagram decided", func(st Stats) bool { return st.Up.Packets+st.Up.Dropped() == 800 })
	if st.Sessions != 4 || st.Up.Packets == 0 || st.Down.Packets == 0 {
		t.Errorf("stats: %+v", st)
	}
}

func TestRelayForgetsIdleSessions(t *testing.T) {
	g := newRig(t, Config{SessionIdle: 500 * time.Millisecond}, 1, false)
	g.client.sendTo(t, g.to, 1, 100)
	waitStats(t, g.r, "a session", func(st Stats) bool { return st.Sessions == 1 })
	first := g.server.drain(100 * time.Millisecond)
	waitStats(t, g.r, "the idle session forgotten", func(st Stats) bool { return st.Sessions == 0 })
	// The client comes back as a new mapping with a new port, like after
	// a NAT timeout.
	g.client.sendTo(t, g.to, 2, 100)
	second := g.server.drain(100 * time.Millisecond)
	if len(first) != 1 || len(second) != 1 || first[0].from == second[0].from {
		t.Fatalf("before %+v, after %+v: want one each from different ports", first, second)
	}
}
