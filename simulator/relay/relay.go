// Package relay puts an emulated bad link between UDP clients and one
// upstream server, in user space: latency, jitter, loss, reordering, a
// bandwidth cap, outages and NAT rebinding, so that QUIC between an agent
// and the collector can be tested on loopback without kernel traffic
// control.
package relay

import (
	"bytes"
	"container/heap"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// Outage is a scheduled window in which the link drops everything.
type Outage struct {
	At  time.Duration // from the moment the Config took effect
	For time.Duration
}

// Config shapes the link. The zero Config is a perfect link. Every setting
// applies to each direction on its own, as on a real line where the two
// directions do not share a queue.
type Config struct {
	// Latency is the one-way delay added to every datagram.
	Latency time.Duration
	// Jitter spreads the delay: each datagram waits Latency plus a uniform
	// draw from [-Jitter, +Jitter] (never less than zero), so datagrams
	// overtake each other when Jitter exceeds their spacing.
	Jitter time.Duration
	// Loss is the probability that a datagram is dropped.
	Loss float64
	// Reorder is the probability that a datagram is held back by
	// ReorderDelay on top of its delay, so that the ones behind it pass.
	Reorder float64
	// ReorderDelay defaults to Latency plus Jitter, at least 10 ms: long
	// enough for the next datagrams to overtake the held one.
	ReorderDelay time.Duration
	// Bandwidth caps each direction at so many bytes per second (a token
	// bucket with 20 ms of burst, at least 64 KiB), shared by all clients
	// as they would share one line; 0: no cap.
	Bandwidth int64
	// Outages drop everything in scheduled windows, measured from when
	// this Config was given to Listen or SetConfig.
	Outages []Outage
	// MaxQueue bounds the datagrams held in each direction, waiting for
	// bandwidth or delay; beyond it new ones are dropped (tail drop), which
	// is what bounds the relay's memory. Default 1024.
	MaxQueue int
	// SessionIdle forgets a client (and closes its upstream socket) after
	// this long without a datagram either way, as a NAT forgets a mapping;
	// 0: never. Checked once a second.
	SessionIdle time.Duration
}

const (
	defaultMaxQueue = 1024
	// maxDatagram is the largest UDP payload over IPv4.
	maxDatagram = 65507
	// minBurst lets the token bucket pass any datagram whole.
	minBurst = 64 << 10
	// sockBuf keeps the kernel from dropping datagrams (unaccounted loss)
	// while a reader is briefly descheduled; Linux caps it at rmem_max.
	sockBuf = 4 << 20
)

func (c *Config) check() error {
	switch {
	case c.Latency < 0 || c.Jitter < 0 || c.ReorderDelay < 0 || c.SessionIdle < 0:
		return errors.New("relay: negative duration in config")
	case c.Loss < 0 || c.Loss > 1:
		return fmt.Errorf("relay: loss %v: want 0-1", c.Loss)
	case c.Reorder < 0 || c.Reorder > 1:
		return fmt.Errorf("relay: reorder %v: want 0-1", c.Reorder)
	case c.Bandwidth < 0:
		return fmt.Errorf("relay: bandwidth %d: want >= 0", c.Bandwidth)
	case c.MaxQueue < 0:
		return fmt.Errorf("relay: max queue %d: want >= 0", c.MaxQueue)
	}
	for _, o := range c.Outages {
		if o.At < 0 || o.For < 0 {
			return errors.New("relay: negative outage time")
		}
	}
	return nil
}

func (c *Config) reorderDelay() time.Duration {
	if c.ReorderDelay > 0 {
		return c.ReorderDelay
	}
	return max(c.Latency+c.Jitter, 10*time.Millisecond)
}

func (c *Config) maxQueue() int {
	if c.MaxQueue > 0 {
		return c.MaxQueue
	}
	return defaultMaxQueue
}

// scheduled reports whether a scheduled outage covers the moment since
// the config took effect.
func (c *Config) scheduled(since time.Duration) bool {
	for _, o := range c.Outages {
		if since >= o.At && since < o.At+o.For {
			return true
		}
	}
	return false
}

// Counters are one direction's figures.
type Counters struct {
	Packets, Bytes int64 // forwarded
	DroppedLoss    int64 // by the Loss probability
	DroppedOutage  int64 // during an outage, on arrival or when due
	DroppedQueue   int64 // the direction's queue was full
	DroppedError   int64 // could not be sent: socket error, client forgotten
	// Reordered counts datagrams forwarded after one of the same client
	// that arrived later.
	Reordered int64
}

// Dropped is the sum of the drops for every reason.
func (c Counters) Dropped() int64 {
	return c.DroppedLoss + c.DroppedOutage + c.DroppedQueue + c.DroppedError
}

// Stats is a snapshot of the relay's counters.
type Stats struct {
	Up       Counters // clients to upstream
	Down     Counters // upstream to clients
	Sessions int      // clients known now
	Rebinds  int64    // calls of Rebind
}

// ErrClosed is returned by calls on a closed Relay.
var ErrClosed = errors.New("relay: closed")

// direction indexes the two lanes.
type direction int

const (
	up   direction = iota // client to upstream
	down                  // upstream to client
)

// Relay forwards datagrams between clients and the upstream through a
// shaped link. Its methods are safe for concurrent use.
type Relay struct {
	ln       *net.UDPConn
	upstream *net.UDPAddr
	lanes    [2]*lane
	rebinds  atomic.Int64
	done     chan struct{}
	wg       sync.WaitGroup

	mu     sync.Mutex // guards the fields below
	cfg    Config
	epoch  time.Time // when cfg took effect: the outage schedule's zero
	outage bool      // SetOutage
	// rnd draws each direction's decisions from a stream of its own, so
	// that what happens to one direction's datagrams depends only on
	// their own sequence, not on how the two directions interleave.
	rnd      [2]*rand.Rand
	sessions map[netip.AddrPort]*session
	closed   bool
}

// session is one client, as a NAT mapping: the client's address and the
// relay's own socket towards the upstream.
type session struct {
	client netip.AddrPort
	last   atomic.Int64 // unix nanoseconds of the last datagram either way

	mu sync.Mutex
	up *net.UDPConn // nil once the session is forgotten

	// maxSeq is the highest arrival number forwarded, per direction; only
	// that direction's sender touches it.
	maxSeq [2]uint64
}

func (s *session) conn() *net.UDPConn {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.up
}

// lane is one direction: the datagrams held for their due time, ordered
// by it, and the token bucket they pass.
type lane struct {
	lim  *rate.Limiter
	wake chan struct{} // a datagram became the earliest due

	mu  sync.Mutex
	q   queue
	seq uint64 // arrival number of the last datagram queued

	packets, bytes                            atomic.Int64
	dropLoss, dropOutage, dropQueue, dropFail atomic.Int64
	reordered                                 atomic.Int64
}

type packet struct {
	due time.Time
	seq uint64
	s   *session
	b   []byte
}

// queue is a min-heap by due time; arrival order breaks ties so that a
// link without jitter keeps the order.
type queue []*packet

func (q queue) Len() int { return len(q) }
func (q queue) Less(i, j int) bool {
	if !q[i].due.Equal(q[j].due) {
		return q[i].due.Before(q[j].due)
	}
	return q[i].seq < q[j].seq
}
func (q queue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *queue) Push(x any)   { *q = append(*q, x.(*packet)) }
func (q *queue) Pop() any {
	old := *q
	p := old[len(old)-1]
	old[len(old)-1] = nil
	*q = old[:len(old)-1]
	return p
}

// Listen starts a relay that receives clients' datagrams on listen and
// forwards them to upstream. Every random decision comes from src (one
// stream per direction, seeded from it), so a seeded source repeats a
// run; nil seeds one at random.
func Listen(listen, upstream string, cfg Config, src rand.Source) (*Relay, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	ua, err := net.ResolveUDPAddr("udp", upstream)
	if err != nil {
		return nil, fmt.Errorf("relay: upstream %s: %w", upstream, err)
	}
	la, err := net.ResolveUDPAddr("udp", listen)
	if err != nil {
		return nil, fmt.Errorf("relay: listen %s: %w", listen, err)
	}
	ln, err := net.ListenUDP("udp", la)
	if err != nil {
		return nil, fmt.Errorf("relay: %w", err)
	}
	ln.SetReadBuffer(sockBuf)
	ln.SetWriteBuffer(sockBuf)
	if src == nil {
		src = rand.NewPCG(rand.Uint64(), rand.Uint64())
	}
	r := &Relay{
		ln:       ln,
		upstream: ua,
		done:     make(chan struct{}),
		rnd: [2]*rand.Rand{
			rand.New(rand.NewPCG(src.Uint64(), src.Uint64())),
			rand.New(rand.NewPCG(src.Uint64(), src.Uint64())),
		},
		sessions: map[netip.AddrPort]*session{},
	}
	for i := range r.lanes {
		r.lanes[i] = &lane{lim: rate.NewLimiter(rate.Inf, minBurst), wake: make(chan struct{}, 1)}
	}
	r.apply(cfg)
	r.wg.Add(4)
	go r.readClients()
	go r.send(up)
	go r.send(down)
	go r.expire()
	return r, nil
}

// Addr is where clients send to.
func (r *Relay) Addr() net.Addr { return r.ln.LocalAddr() }

// Config returns the current shaping.
func (r *Relay) Config() Config {
	r.mu.Lock()
	defer r.mu.Unlock()
	cfg := r.cfg
	cfg.Outages = append([]Outage(nil), cfg.Outages...) // ours stays ours
	return cfg
}

// SetConfig changes the shaping from now on; datagrams already held keep
// the delay they were given. The outage schedule starts again from now.
func (r *Relay) SetConfig(cfg Config) error {
	if err := cfg.check(); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.apply(cfg)
	return nil
}

// apply installs cfg; r.mu is held or r is not shared yet.
func (r *Relay) apply(cfg Config) {
	cfg.Outages = append([]Outage(nil), cfg.Outages...) // the caller may reuse its slice
	r.cfg, r.epoch = cfg, time.Now()
	limit, burst := rate.Inf, minBurst
	if cfg.Bandwidth > 0 {
		limit, burst = rate.Limit(cfg.Bandwidth), max(int(cfg.Bandwidth/50), minBurst)
	}
	for _, l := range r.lanes {
		l.lim.SetLimit(limit)
		l.lim.SetBurst(burst)
	}
}

// SetOutage turns a manual outage on or off; while on, every datagram is
// dropped whatever the schedule says.
func (r *Relay) SetOutage(on bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.outage = on
}

// inOutage reports whether the link is down at now.
func (r *Relay) inOutage(now time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.outage || r.cfg.scheduled(now.Sub(r.epoch))
}

// Rebind gives every existing session a new upstream socket, hence a new
// source port: to the upstream this is exactly a NAT rebinding. Datagrams
// the upstream sends to the old port are lost, as behind a real NAT.
func (r *Relay) Rebind() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return ErrClosed
	}
	var errs []error
	for _, s := range r.sessions {
		// The new socket is opened before the old one closes, so the
		// kernel cannot hand out the same port again.
		c, err := r.dial()
		if err != nil {
			errs = append(errs, err)
			continue
		}
		s.mu.Lock()
		old := s.up
		s.up = c
		s.mu.Unlock()
		r.wg.Add(1)
		go r.readUpstream(s, c)
		old.Close()
	}
	r.rebinds.Add(1)
	return errors.Join(errs...)
}

// Stats returns the counters so far.
func (r *Relay) Stats() Stats {
	r.mu.Lock()
	n := len(r.sessions)
	r.mu.Unlock()
	return Stats{Up: r.lanes[up].counters(), Down: r.lanes[down].counters(), Sessions: n, Rebinds: r.rebinds.Load()}
}

func (l *lane) counters() Counters {
	return Counters{
		Packets:       l.packets.Load(),
		Bytes:         l.bytes.Load(),
		DroppedLoss:   l.dropLoss.Load(),
		DroppedOutage: l.dropOutage.Load(),
		DroppedQueue:  l.dropQueue.Load(),
		DroppedError:  l.dropFail.Load(),
		Reordered:     l.reordered.Load(),
	}
}

// Close stops the relay: its sockets close, every goroutine has returned
// when Close does, and datagrams still held are dropped.
func (r *Relay) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return ErrClosed
	}
	r.closed = true
	var conns []*net.UDPConn
	for _, s := range r.sessions {
		s.mu.Lock()
		conns = append(conns, s.up)
		s.up = nil
		s.mu.Unlock()
	}
	clear(r.sessions)
	r.mu.Unlock()
	close(r.done)
	err := r.ln.Close()
	for _, c := range conns {
		c.Close()
	}
	r.wg.Wait()
	for _, l := range r.lanes {
		l.mu.Lock()
		l.q = nil
		l.mu.Unlock()
	}
	return err
}

// dial opens a socket towards the upstream; r.mu is held.
func (r *Relay) dial() (*net.UDPConn, error) {
	c, err := net.DialUDP("udp", nil, r.upstream)
	if err != nil {
		return nil, fmt.Errorf("relay: socket to upstream: %w", err)
	}
	c.SetReadBuffer(sockBuf)
	c.SetWriteBuffer(sockBuf)
	return c, nil
}

// session finds or creates the session of a client.
func (r *Relay) session(client netip.AddrPort) (*session, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if s, ok := r.sessions[client]; ok {
		return s, nil
	}
	if r.closed {
		return nil, ErrClosed
	}
	c, err := r.dial()
	if err != nil {
		return nil, err
	}
	s := &session{client: client, up: c}
	s.last.Store(time.Now().UnixNano())
	r.sessions[client] = s
	r.wg.Add(1)
	go r.readUpstream(s, c)
	return s, nil
}

func (r *Relay) readClients() {
	defer r.wg.Done()
	buf := make([]byte, maxDatagram)
	for {
		n, from, err := r.ln.ReadFromUDPAddrPort(buf)
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil {
			continue // an error queued on the socket does not stop the next datagram
		}
		s, err := r.session(from)
		if err != nil {
			r.lanes[up].dropFail.Add(1)
			continue
		}
		r.arrive(up, s, buf[:n])
	}
}

// readUpstream reads the upstream's datagrams for one session until its
// socket closes (Rebind, expiry or Close).
func (r *Relay) readUpstream(s *session, c *net.UDPConn) {
	defer r.wg.Done()
	buf := make([]byte, maxDatagram)
	for {
		n, err := c.Read(buf)
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil {
			// A connected UDP socket reports the ICMP "port unreachable"
			// of an earlier datagram, e.g. before the upstream listens.
			continue
		}
		r.arrive(down, s, buf[:n])
	}
}

// arrive decides a datagram's fate on arrival and queues it for its due
// time. The decisions are drawn in a fixed pattern, so a seeded relay
// fed the same datagrams decides the same.
func (r *Relay) arrive(d direction, s *session, b []byte) {
	now := time.Now()
	s.last.Store(now.UnixNano())
	l := r.lanes[d]

	r.mu.Lock()
	c, rnd := &r.cfg, r.rnd[d]
	out := r.outage || c.scheduled(now.Sub(r.epoch))
	lost := c.Loss > 0 && rnd.Float64() < c.Loss
	delay := c.Latency
	if c.Jitter > 0 {
		delay += time.Duration(rnd.Int64N(2*int64(c.Jitter)+1)) - c.Jitter
	}
	if c.Reorder > 0 && rnd.Float64() < c.Reorder {
		delay += c.reorderDelay()
	}
	limit := c.maxQueue()
	r.mu.Unlock()

	switch {
	case out:
		l.dropOutage.Add(1)
		return
	case lost:
		l.dropLoss.Add(1)
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.q) >= limit {
		l.dropQueue.Add(1)
		return
	}
	// The bucket models the bottleneck: a datagram leaves it when its
	// tokens are there, then travels for its delay.
	res := l.lim.ReserveN(now, len(b))
	if !res.OK() { // cannot happen: the burst holds any datagram
		l.dropFail.Add(1)
		return
	}
	l.seq++
	p := &packet{due: now.Add(res.DelayFrom(now) + max(delay, 0)), seq: l.seq, s: s, b: bytes.Clone(b)}
	heap.Push(&l.q, p)
	if l.q[0] == p {
		select {
		case l.wake <- struct{}{}:
		default:
		}
	}
}

// send forwards one direction's datagrams as they fall due.
func (r *Relay) send(d direction) {
	defer r.wg.Done()
	l := r.lanes[d]
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		var p *packet
		wait := time.Hour
		l.mu.Lock()
		if len(l.q) > 0 {
			if w := time.Until(l.q[0].due); w <= 0 {
				p = heap.Pop(&l.q).(*packet)
			} else {
				wait = w
			}
		}
		l.mu.Unlock()
		if p != nil {
			r.forward(d, p)
			continue
		}
		timer.Reset(wait)
		select {
		case <-r.done:
			return
		case <-l.wake:
		case <-timer.C:
		}
	}
}

var errForgotten = errors.New("relay: session forgotten")

func (r *Relay) forward(d direction, p *packet) {
	l := r.lanes[d]
	// An outage takes what is on the wire as well, not only what arrives.
	if r.inOutage(time.Now()) {
		l.dropOutage.Add(1)
		return
	}
	var err error
	if d == up {
		if c := p.s.conn(); c != nil {
			_, err = c.Write(p.b)
		} else {
			err = errForgotten
		}
	} else {
		_, err = r.ln.WriteToUDPAddrPort(p.b, p.s.client)
	}
	if err != nil {
		l.dropFail.Add(1)
		return
	}
	l.packets.Add(1)
	l.bytes.Add(int64(len(p.b)))
	if p.seq < p.s.maxSeq[d] {
		l.reordered.Add(1)
	} else {
		p.s.maxSeq[d] = p.seq
	}
}

// expire forgets idle sessions, as a NAT drops idle mappings.
func (r *Relay) expire() {
	defer r.wg.Done()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-r.done:
			return
		case now := <-tick.C:
			r.mu.Lock()
			if idle := r.cfg.SessionIdle; idle > 0 && !r.closed {
				for k, s := range r.sessions {
					if now.Sub(time.Unix(0, s.last.Load())) > idle {
						delete(r.sessions, k)
						s.mu.Lock()
						s.up.Close()
						s.up = nil
						s.mu.Unlock()
					}
				}
			}
			r.mu.Unlock()
		}
	}
}
