package ship

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"

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
	var errs []error
	for k := range s.addrs {
		i := (s.at + k) % len(s.addrs)
		addr := s.addrs[i]
		conn, err := s.dialAddr(ctx, addr)
		if err == nil && greet != nil {
			if err = greet(conn); err != nil {
				conn.CloseWithError(0, "agent closing")
			}
		}
		if err == nil {
			if i != s.at {
				s.cfg.Log.Warn("collector not reachable; shipping to another one of the region and staying with it",
					"addr", addr, "previous", s.addrs[s.at])
			}
			s.at = i
			return conn, nil
		}
		errs = append(errs, fmt.Errorf("collector %s: %w", addr, err))
		if ctx.Err() != nil {
			break
		}
		if len(s.addrs) > 1 && k < len(s.addrs)-1 {
			// Info: the round's failure, if all fail, is warned of
			// with every collector's error.
			s.cfg.Log.Info("cannot reach collector; trying the next one", "addr", addr, "next", s.addrs[(i+1)%len(s.addrs)], "err", err)
		}
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
