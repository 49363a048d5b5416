package ship

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"idk/agent/spool"
)

// Probe connects to the collector as the shipper does (cfg.Addrs, cfg.TLS,
// cfg.QUIC, cfg.Transport: QUIC, then TCP in TransportAuto), says the same hello for cfg.Device, and hangs up without
// shipping anything. It returns the collector's clock minus this PC's, as
// the hello reply measured it. It is for diagnostics (idk-agent check):
// an error says whether the dial, the handshake or the hello failed.
//
// cfg.Spool and cfg.Metrics may be nil: a probe sends no events, so its
// spool epoch is 0, and its metrics are its own. The collector keeps one
// connection per ИДК, so a probe made while the agent runs replaces the
// agent's connection, which the agent re-establishes at once.
func Probe(ctx context.Context, cfg Config) (clockOffset time.Duration, err error) {
	if cfg.Spool == nil {
		cfg.Spool = &spool.Spool{}
	}
	if cfg.Metrics == nil {
		// A registry of its own that no one scrapes: the spool's
		// backlog, read only when scraped, is never read.
		cfg.Metrics = NewMetrics(prometheus.NewRegistry(), cfg.Spool, cfg.Clock)
	}
	// hello reports the measured offset only to this gauge.
	offset := &lastSet{Gauge: cfg.Metrics.ClockOffset}
	m := *cfg.Metrics
	m.ClockOffset = offset
	cfg.Metrics = &m
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	s := New(cfg)
	conn, err := s.dial(ctx)
	if err != nil {
		return 0, fmt.Errorf("dial: %w", err)
	}
	defer conn.CloseWithError(0, "agent closing")
	if _, err := s.hello(ctx, conn, 0); err != nil {
		return 0, err
	}
	return time.Duration(offset.v * float64(time.Second)), nil
}

// lastSet is a gauge that remembers the value last set through it.
type lastSet struct {
	prometheus.Gauge
	v float64
}

func (g *lastSet) Set(v float64) {
	g.v = v
	g.Gauge.Set(v)
}
