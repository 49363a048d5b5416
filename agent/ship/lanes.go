package ship

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"idk/agent/spool"
	"idk/internal/clock"
	"idk/protocol"
	"idk/protocol/idkpb"
	"idk/protocol/transport"
)

// Stripes. On a link that loses packets at random (LTE, a long radio
// hop), each QUIC connection's congestion control takes every loss for
// congestion and backs off: measured through the relay at 100 ms RTT and
// 20 Mbit/s (idk-sim linkbench), one connection carries 0.31 of the link
// at 0.1 % loss and 0.08 at 1 %. quic-go has no loss-tolerant controller
// to switch to, so a large file is cut into stripes sent at once over
// several connections (lanes), each with a controller of its own: the
// losses of one halve only its share. The agent's connection carries no
// stripes: its congestion window stays for the events (forms). The collector holds the stripes
// apart and takes them up when the file is offered whole on the
// connection, which sends only what they miss and commits as always: the
// whole file's SHA-256 is checked and synced before the file is marked
// done. Forms, documents and events never go over lanes.
const (
	// DefaultLanes is how many connections a large file is striped over,
	// the agent's connection included: through the relay at 1 % loss, 8
	// carried 0.48 of the link and 16 carried 0.66; on a clean link 16
	// carry what one does (0.93 against 0.94): the stripes share it. See
	// README "Figures".
	DefaultLanes = 16
	// MaxLanes is the most Config.Lanes may be.
	MaxLanes = 16
	// StripeFrom is the smallest file striped: the images, not the
	// documents and forms, which gain nothing worth the extra round trips.
	StripeFrom = 8 << 20
	// StripeMin is the smallest stripe: one chunk.
	StripeMin = protocol.ChunkSize
	// laneIdle: a lane no stripe used for this long is closed (closeIdle),
	// so that an agent holds its lanes only while it sends images.
	laneIdle = time.Minute
	// StripeMinRTT is the shortest round trip at which files are striped
	// by default (Config.StripeMinRTT). A connection regains the window a
	// loss took in a number of round trips, so on a LAN or loopback one
	// connection recovers in milliseconds, and stripes only cost: the
	// collector writes each stripe apart and copies it into the file. On
	// loopback (idk-sim peerbench -lanes 1 against 16) one QUIC connection
	// carried 121 MB/s and sixteen lanes 88; over TCP the agent sat idle
	// while the collector copied the stripes in. The round trip is QUIC's
	// estimate, or over TCP the connect's (transport.MinRTT).
	StripeMinRTT = 5 * time.Millisecond
)

// lanes are a session's extra connections, dialled the first time a
// stripe needs one and closed with the session.
type lanes struct {
	s *Shipper
	// The session's collector and transport: lanes take the same road,
	// to the same collector, whose stripes the whole offer on the
	// session's connection takes up; stripes held by another collector
	// of the region would only be sent again.
	addr string
	kind string
	max  int // lanes beside the connection

	mu    sync.Mutex
	conns map[int]*lane
}

type lane struct {
	mu   sync.Mutex // held while dialling, so that one stripe dials it
	conn transport.Conn
	used time.Time // on the shipper's clock: when a stripe last took it
	busy int       // stripes sending on it now
}

func newLanes(s *Shipper, addr, kind string, max int) *lanes {
	return &lanes{s: s, addr: addr, kind: kind, max: max, conns: map[int]*lane{}}
}

// get returns lane k (1 to max), connected.
func (l *lanes) get(ctx context.Context, k int) (transport.Conn, error) {
	l.mu.Lock()
	ln := l.conns[k]
	if ln == nil {
		ln = &lane{}
		l.conns[k] = ln
	}
	l.mu.Unlock()
	ln.mu.Lock()
	defer ln.mu.Unlock()
	ln.used = l.s.cfg.Clock.Now()
	if ln.conn != nil && ln.conn.Context().Err() == nil {
		ln.busy++
		return ln.conn, nil
	}
	if ln.conn != nil {
		l.s.cfg.Metrics.Lanes.Dec()
		ln.conn = nil
	}
	dial := l.s.dialQUIC
	if l.kind == TransportTCP {
		dial = l.s.dialTCP
	}
	conn, err := dial(ctx, l.addr)
	if err != nil {
		return nil, fmt.Errorf("dial lane %d to %s: %w", k, l.addr, err)
	}
	if _, err := l.s.hello(ctx, conn, uint32(k)); err != nil {
		conn.CloseWithError(0, "agent closing")
		return nil, fmt.Errorf("lane %d: %w", k, err)
	}
	ln.conn = conn
	ln.busy++
	l.s.cfg.Metrics.Lanes.Inc()
	return conn, nil
}

// put gives lane k back after a stripe (or a run of stripes) is done with it.
func (l *lanes) put(k int) {
	l.mu.Lock()
	ln := l.conns[k]
	l.mu.Unlock()
	ln.mu.Lock()
	ln.busy--
	ln.used = l.s.cfg.Clock.Now()
	ln.mu.Unlock()
}

// closeIdle runs beside a session's loops: it hangs up, every half
// laneIdle, the lanes that no stripe has used for laneIdle.
func (l *lanes) closeIdle(ctx context.Context, _ transport.Conn) error {
	clock.Every(ctx, l.s.cfg.Clock, laneIdle/2, func() {
		now := l.s.cfg.Clock.Now()
		l.mu.Lock()
		defer l.mu.Unlock()
		for _, ln := range l.conns {
			ln.mu.Lock()
			if ln.conn != nil && ln.busy == 0 && now.Sub(ln.used) >= laneIdle {
				ln.conn.CloseWithError(0, "lane idle")
				ln.conn = nil
				l.s.cfg.Metrics.Lanes.Dec()
			}
			ln.mu.Unlock()
		}
	})
	return nil
}

// close hangs up every lane.
func (l *lanes) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, ln := range l.conns {
		ln.mu.Lock()
		if ln.conn != nil {
			ln.conn.CloseWithError(0, "agent closing")
			ln.conn = nil
			l.s.cfg.Metrics.Lanes.Dec()
		}
		ln.mu.Unlock()
	}
}

// stripes is how many stripes file f is cut into on conn: one (not
// striped) for a small file, with no lanes, or on a connection whose
// round trip is under Config.StripeMinRTT.
func (l *lanes) stripes(conn transport.Conn, f spool.File) int {
	if l == nil || l.max == 0 || f.Size < StripeFrom {
		return 1
	}
	if rtt, ok := transport.MinRTT(conn); ok && rtt < l.s.cfg.StripeMinRTT {
		return 1
	}
	return int(min(int64(l.max+1), f.Size/StripeMin))
}

// errHave: the collector has the whole file already.
var errHave = errors.New("collector has the file")

// sendStripes sends file f in stripes over lanes 1 to n-1 at once. The stripes are a few times more than the connections, and
// each connection takes the next one when it is done with the last: a
// lane slowed by its losses sends fewer, and the file does not wait long
// for its slowest lane. It is best effort: a stripe that fails (its lane
// lost, the file gone) goes on another connection, twice at most, and is
// otherwise left to the whole offer that follows (sendFile), which sends
// whatever the held stripes miss. It returns an error only when ctx ends.
func (s *Shipper) sendStripes(ctx context.Context, conn transport.Conn, l *lanes, f spool.File, n int) error {
	q := newStripes(uint64(f.Size), n-1)
	var wg sync.WaitGroup
	// Lanes 1 to n-1 only: the connection keeps its congestion window for
	// the events stream (forms), documents and the whole offers.
	for k := 1; k < n; k++ {
		wg.Go(func() {
			c := conn
			for {
				st, ok := q.next()
				if !ok {
					return
				}
				if c == conn {
					var err error
					if c, err = l.get(ctx, k); err != nil {
						q.failed(st)
						s.cfg.Log.Debug("lane not available", "lane", k, "err", err)
						return
					}
					defer l.put(k)
				}
				err := s.sendStripe(ctx, c, f, st.off, st.size)
				switch {
				case errors.Is(err, errHave):
					q.stop() // the collector has the file: nothing more to send
				case err != nil:
					q.failed(st)
					if ctx.Err() == nil {
						s.cfg.Log.Debug("stripe not sent", "file", f.Key(), "offset", st.off, "lane", k, "err", err)
					}
					return // this connection is given up for the file
				}
			}
		})
	}
	wg.Wait()
	return ctx.Err()
}

// stripe is a range of a file, and how often it failed.
type stripe struct {
	off, size uint64
	tries     int
}

// stripeQueue hands out a file's stripes to its connections.
type stripeQueue struct {
	mu   sync.Mutex
	left []stripe
}

// newStripes cuts size bytes into stripes of whole chunks, four per
// connection or StripeMin each, whichever is larger.
func newStripes(size uint64, conns int) *stripeQueue {
	per := max(size/uint64(4*conns), StripeMin)
	per = (per + protocol.ChunkSize - 1) / protocol.ChunkSize * protocol.ChunkSize
	q := &stripeQueue{}
	for off := uint64(0); off < size; off += per {
		q.left = append(q.left, stripe{off: off, size: min(per, size-off)})
	}
	return q
}

func (q *stripeQueue) next() (stripe, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.left) == 0 {
		return stripe{}, false
	}
	st := q.left[0]
	q.left = q.left[1:]
	return st, true
}

// failed puts st back for another connection, unless it failed thrice.
func (q *stripeQueue) failed(st stripe) {
	if st.tries++; st.tries >= 3 {
		return
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	q.left = append(q.left, st)
}

func (q *stripeQueue) stop() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.left = nil
}

// sendStripe sends bytes [off, off+length) of f on a stream of conn, from
// where the collector's copy of the stripe ends.
func (s *Shipper) sendStripe(ctx context.Context, conn transport.Conn, f spool.File, off, length uint64) error {
	src, err := os.Open(f.Path)
	if err != nil {
		return err
	}
	defer src.Close()
	offer := s.offer(f)
	offer.RangeOffset, offer.RangeSize = off, length
	_, w, r, end, err := openFileStream(ctx, conn, offer)
	if err != nil {
		return err
	}
	defer end()
	var rep idkpb.FileOfferReply
	if err := r.Read(&rep); err != nil {
		return fmt.Errorf("stripe offer: %w", err)
	}
	switch {
	case rep.Status == idkpb.FileOfferReply_STATUS_HAVE:
		return errHave
	case rep.Status != idkpb.FileOfferReply_STATUS_SEND:
		return fmt.Errorf("stripe %v: %s", rep.Status, rep.Error)
	case rep.Offset < off || rep.Offset > off+length:
		return fmt.Errorf("collector asks for the stripe at %d from %d, outside it", off, rep.Offset)
	}
	if _, err := src.Seek(int64(rep.Offset), io.SeekStart); err != nil {
		return err
	}
	// A read that fails (the file shorter than when first seen) ends the
	// stripe: the whole offer finds out and hashes the file again.
	if _, err := s.sendChunks(ctx, w, src, f, rep.Offset, off+length); err != nil {
		return err
	}
	// The stripe's bytes are not hashed here: the collector hashes the
	// copy it assembled before it stores the file.
	if err := w.Write(&idkpb.FileData{Body: &idkpb.FileData_Commit{Commit: &idkpb.Commit{Sha256: f.SHA256}}}); err != nil {
		return err
	}
	var res idkpb.FileResult
	if err := r.Read(&res); err != nil {
		return fmt.Errorf("stripe commit: %w", err)
	}
	if !res.RangeHeld {
		return fmt.Errorf("collector did not hold the stripe: %s", res.Error)
	}
	return nil
}
