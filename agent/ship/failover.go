package ship

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"runtime"
	"sync"
	"syscall"
	"time"

	"github.com/quic-go/quic-go"

	"idk/protocol/transport"
)

// Several collectors. A region may run several collectors behind shared
// storage; any of them takes any agent, and what the agent sends is
// idempotent (files by content hash, events by sequence number), so a
// transfer cut on one collector and sent again to another stores nothing
// twice. The agent keeps to one collector, the one of its last session
// (sticky): a session lost is dialled back to the same collector first,
// so a brief loss of the link does not move the agent, and only when
// that collector cannot be reached (both transports, in TransportAuto)
// does it try the next ones in Config.Addrs order, coming round to the
// first after the last. A round in which none answers ends in the
// shipper's usual backoff. Once moved, the agent stays on the new
// collector even when the old one is back: the collectors of a region
// are equal, so returning gains nothing, and would cut the files in
// flight and cost a handshake for no gain; a fleet that failed over
// together also stays spread as it landed instead of converging again
// on one collector whenever it restarts.

// addresses returns the collectors of cfg, in the order tried: Addrs, or
// else Addr alone.
func (cfg Config) addresses() []string {
	if len(cfg.Addrs) > 0 {
		return cfg.Addrs
	}
	if cfg.Addr != "" {
		return []string{cfg.Addr}
	}
	return nil
}

// tlsConfigs returns the TLS configuration of each collector: with
// conf.ServerName empty, a clone of conf naming the host of the address
// dialled, so that collectors with a certificate each (a.region, b.region)
// are each checked against their own name; a ServerName set applies to
// every collector (one certificate name shared by all). The clones keep
// conf's certificate callbacks, so a client certificate that follows its
// files still does.
func tlsConfigs(conf *tls.Config, addrs []string) map[string]*tls.Config {
	m := make(map[string]*tls.Config, len(addrs))
	for _, a := range addrs {
		c := conf
		if conf != nil && conf.ServerName == "" {
			c = conf.Clone()
			c.ServerName, _, _ = net.SplitHostPort(a)
		}
		m[a] = c
	}
	return m
}

// connect connects to a collector and, with greet set, greets it there
// (the session's hello): a connection QUIC handed over for this session
// first, then one round over the collectors from the one of the last
// session. A collector that cannot be dialled or greeted is passed over
// for the next. On success s.at is the collector's index, and the next
// round starts there.
func (s *Shipper) connect(ctx context.Context, greet func(transport.Conn) error) (transport.Conn, error) {
	if c := s.handover; c != nil {
		s.handover = nil
		if c.Context().Err() == nil {
			if greet == nil {
				return c, nil
			}
			err := greet(c)
			if err == nil {
				return c, nil
			}
			c.CloseWithError(0, "agent closing")
			if ctx.Err() != nil {
				return nil, err
			}
			// Lost again already: dial as after any lost session.
		}
	}
	if len(s.addrs) == 0 {
		return nil, errors.New("no collector address configured")
	}
	// An address refused over TCP while refusals prove nothing goes to
	// the end of the round, dialled then as without the probe (a
	// collector with QUIC only), after the others had their chance.
	probe, trust := s.regional(), s.trustRefusal()
	var (
		errs  []error
		later []int
	)
	try := func(i int, probe bool) (transport.Conn, error) {
		conn, err := s.dialAddr(ctx, s.addrs[i], probe)
		if err == nil && greet != nil {
			if err = greet(conn); err != nil {
				conn.CloseWithError(0, "agent closing")
			}
		}
		return conn, err
	}
	reached := func(i int, conn transport.Conn) (transport.Conn, error) {
		if i != s.at {
			s.cfg.Log.Warn("collector not reachable; shipping to another one of the region and staying with it",
				"addr", s.addrs[i], "previous", s.addrs[s.at])
		}
		s.at, s.unreached = i, time.Time{}
		return conn, nil
	}
	for k := range s.addrs {
		i := (s.at + k) % len(s.addrs)
		addr := s.addrs[i]
		conn, err := try(i, probe)
		if err == nil {
			return reached(i, conn)
		}
		if ctx.Err() != nil {
			errs = append(errs, fmt.Errorf("collector %s: %w", addr, err))
			break
		}
		if errors.Is(err, errNothingListens) && !trust {
			s.cfg.Log.Debug("collector refuses TCP; trying it over QUIC after the others", "addr", addr, "err", err)
			later = append(later, i)
			continue
		}
		errs = append(errs, fmt.Errorf("collector %s: %w", addr, err))
		if len(s.addrs) > 1 && k < len(s.addrs)-1 {
			// Info: the round's failure, if all fail, is warned of
			// with every collector's error.
			s.cfg.Log.Info("cannot reach collector; trying the next one", "addr", addr, "next", s.addrs[(i+1)%len(s.addrs)], "err", err)
		}
	}
	for _, i := range later {
		if ctx.Err() != nil {
			break
		}
		conn, err := try(i, false)
		if err == nil {
			// A collector that refuses TCP takes QUIC: refusals in
			// this region prove nothing.
			s.tcpListens.Store(false)
			return reached(i, conn)
		}
		errs = append(errs, fmt.Errorf("collector %s: %w", s.addrs[i], err))
	}
	if s.unreached.IsZero() {
		s.unreached = s.cfg.Clock.Now()
	}
	return nil, errors.Join(errs...)
}

// addr is the collector of the session (the last one connected to).
func (s *Shipper) addr() string {
	if len(s.addrs) == 0 {
		return ""
	}
	return s.addrs[s.at]
}

// setCollector sets idk_agent_collector: 1 for addr, 0 for the others;
// all 0 while not connected ("").
func (s *Shipper) setCollector(addr string) {
	if s.cfg.Metrics == nil || s.cfg.Metrics.Collector == nil {
		return
	}
	for _, a := range s.addrs {
		v := 0.0
		if a == addr {
			v = 1
		}
		s.cfg.Metrics.Collector.WithLabelValues(a).Set(v)
	}
}

// Telling a dead collector from a live one. A collector's process that
// dies (killed, crashed) sends no QUIC CONNECTION_CLOSE, so over QUIC the
// agent would learn of it only when the connection's idle timeout ends
// it, and dialling the dead address again waits out a whole QUIC
// handshake timeout: UDP gets no answer from a port nothing listens on.
// TCP does: the collector's host refuses a TCP connection to that port
// at once (ECONNREFUSED) while the host is up. A collector listens on
// TCP on its QUIC port by default (listen.tcp), so an agent with several
// collectors probes TCP beside its QUIC dials, and beside its QUIC
// sessions, and takes a refusal to mean that the collector is gone: the
// round moves on to the next collector in milliseconds instead of a
// handshake timeout, and a session whose collector died ends within
// watchEvery instead of the idle timeout.
//
// A refusal proves nothing where a collector does not listen on TCP at
// all (listen.tcp off: QUIC only), so it is trusted only once a probe or
// a session has found a collector of the region listening on TCP, and
// not while a collector refusing TCP is seen to take QUIC; an address
// refused but not trusted is dialled over QUIC after the round's others,
// as before. And so that a region that stops listening on TCP (a
// firewall that resets TCP, listen.tcp turned off) is never shut out, a
// round that has reached no collector for distrustAfter dials every
// refused one over QUIC again. With one collector there is no other to
// go to, and none of this applies: such an agent waits for its
// collector as before.
const (
	// watchEvery is how often a QUIC session with a collector of
	// several probes that the collector still listens: the time a dead
	// collector's agents take to notice, at the cost of a TCP handshake
	// (which the collector hangs up on without logging) per agent so
	// often.
	watchEvery = 3 * time.Second
	// probeTimeout bounds a probe of the watch: a host that does not
	// answer says nothing either way (the link may be down), and the
	// idle timeout below deals with it.
	probeTimeout = 5 * time.Second
	// distrustAfter: rounds that have reached no collector for so long
	// take refusals as proving nothing again.
	distrustAfter = time.Minute

	// regionIdleTimeout is the QUIC idle timeout of an agent with
	// several collectors (the idle timeout is the lower of both ends'):
	// a collector whose whole host died, or whose path broke, answers no
	// probe, and the connection then ends after so long without a packet
	// from it instead of the shared 45 s, so that the agent moves to
	// another collector. 15 s still outlasts the outages of a few
	// seconds of the links the agents sit on (simulator/relay), and a
	// session cut by a longer one resumes its files from the collector's
	// offset. An agent with one collector keeps the shared tuning: it has
	// nowhere else to go, and only loses by giving up on a link sooner.
	regionIdleTimeout = 15 * time.Second
	// regionKeepAlive keeps an idle but live connection from the idle
	// timeout: three keep-alive PINGs, each answered, fall in every
	// regionIdleTimeout, so one or two of them lost on a bad link do not
	// end it.
	regionKeepAlive = 5 * time.Second
)

// errNothingListens: the collector's host refused TCP to its address.
var errNothingListens = errors.New("nothing listens there (TCP connection refused)")

// refused reports whether err is a refused TCP connection: the host is
// up, and nothing listens on the port.
func refused(err error) bool {
	if errors.Is(err, syscall.ECONNREFUSED) {
		return true
	}
	// Windows reports WSAECONNREFUSED (10061), which its syscall
	// package has no name for.
	var errno syscall.Errno
	return runtime.GOOS == "windows" && errors.As(err, &errno) && errno == 10061
}

// probeTCP connects to addr over TCP and hangs up at once: nil if
// something listens, an error that refused tells if the host says that
// nothing does, another error if it could not be asked.
func probeTCP(ctx context.Context, addr string) error {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	return c.Close()
}

// regional reports whether the agent probes TCP for its collectors: in
// TransportAuto, with more than one.
func (s *Shipper) regional() bool {
	return s.cfg.Transport == TransportAuto && len(s.addrs) > 1
}

// trustRefusal reports whether a refused TCP probe now means the
// collector is gone (see above).
func (s *Shipper) trustRefusal() bool {
	return s.regional() && s.tcpListens.Load() &&
		(s.unreached.IsZero() || s.cfg.Clock.Now().Sub(s.unreached) < distrustAfter)
}

// dialQUICProbed is dialQUIC with a TCP probe of addr beside it: a
// refusal before QUIC gets through ends the dial with errNothingListens
// at once, where QUIC would wait out its handshake timeout. A probe that
// connects lets QUIC go on, and records that the region listens on TCP;
// QUIC through where the probe is refused (it may win the race) records
// the opposite. The probe goes on after QUIC got through (for at most
// probeTimeout), which on a short round trip it often does first.
func (s *Shipper) dialQUICProbed(ctx context.Context, addr string) (transport.Conn, error) {
	var (
		mu                   sync.Mutex
		quicUp, probeRefused bool
	)
	probeDone := make(chan error, 1)
	pctx, pcancel := context.WithTimeout(ctx, probeTimeout)
	go func() {
		defer pcancel()
		err := probeTCP(pctx, addr)
		mu.Lock()
		switch {
		case err == nil:
			s.tcpListens.Store(true)
		case refused(err):
			probeRefused = true
			if quicUp {
				s.tcpListens.Store(false)
			}
		}
		mu.Unlock()
		probeDone <- err
	}()
	up := func(c transport.Conn) (transport.Conn, error) {
		mu.Lock()
		defer mu.Unlock()
		quicUp = true
		if probeRefused {
			s.tcpListens.Store(false)
		}
		return c, nil
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type dialed struct {
		conn transport.Conn
		err  error
	}
	quicDone := make(chan dialed, 1)
	go func() {
		c, err := s.dialQUIC(ctx, addr)
		quicDone <- dialed{c, err}
	}()
	for {
		select {
		case d := <-quicDone:
			if d.err != nil {
				return nil, d.err
			}
			return up(d.conn)
		case err := <-probeDone:
			probeDone = nil
			if refused(err) {
				cancel()
				if d := <-quicDone; d.err == nil {
					return up(d.conn) // through just before the cancel
				}
				return nil, fmt.Errorf("%w: %w", errNothingListens, err)
			}
			// Connected, or not answered (which says nothing):
			// QUIC goes on.
		}
	}
}

// watch runs beside the loops of a QUIC session with a collector of
// several: every watchEvery it probes TCP to the session's collector,
// and ends the session when that is refused while refusals are trusted,
// the collector's process being gone. A probe not answered ends nothing:
// the link may be down for a moment, and the idle timeout judges that.
// On the wall clock: it watches the network, which runs on it.
func (s *Shipper) watch(ctx context.Context, conn transport.Conn, addr string) error {
	if conn.Transport() != TransportQUIC || !s.regional() {
		return nil
	}
	t := time.NewTicker(watchEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		pctx, cancel := context.WithTimeout(ctx, probeTimeout)
		err := probeTCP(pctx, addr)
		cancel()
		switch {
		case err == nil:
			s.tcpListens.Store(true)
		case refused(err) && ctx.Err() == nil && s.trustRefusal():
			// Closed here: a loop waiting on a stream's read (an
			// event batch's ack) watches the connection, not ctx.
			conn.CloseWithError(0, "collector gone")
			return fmt.Errorf("collector %s gone: %w: %w", addr, errNothingListens, err)
		}
	}
}

// regionQUIC returns conf tuned for an agent with several collectors:
// regionIdleTimeout and regionKeepAlive, on a copy. nil stands for
// quic-go's defaults, which it fills in around the two.
func regionQUIC(conf *quic.Config) *quic.Config {
	if conf == nil {
		conf = &quic.Config{}
	} else {
		conf = conf.Clone()
	}
	if conf.MaxIdleTimeout == 0 || conf.MaxIdleTimeout > regionIdleTimeout {
		conf.MaxIdleTimeout = regionIdleTimeout
	}
	if conf.KeepAlivePeriod == 0 || conf.KeepAlivePeriod > regionKeepAlive {
		conf.KeepAlivePeriod = regionKeepAlive
	}
	return conf
}
