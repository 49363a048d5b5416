package main

import (
	"context"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"idk/collector/config"
	"idk/collector/leader"
	"idk/collector/region"
)

// leaderGauge is idk_collector_leader: 1 on the collector serving the
// region, 0 on those standing by. A region whose collectors all say 0
// serves no one (alert IDKRegionWithoutLeader).
func leaderGauge(v float64) prometheus.Collector {
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "idk_collector_leader",
		Help: "1 if this collector serves the region (elected through PostgreSQL), 0 while it stands by.",
	})
	g.Set(v)
	return g
}

// serveRegion campaigns, with the other collectors of the region, to
// serve it: the one elected runs the whole collector (agents, deadlines,
// reports, console) on the shared backends; the others stand by, with
// listen.http answering that they do and where to look, until the
// elected one stops (killed, cut off, or stopped), when one of them takes
// over. Agents list every collector (collector.addrs) and move to the
// one that answers.
func serveRegion(ctx context.Context, cfg config.Config, log *slog.Logger) error {
	dsn, err := region.PostgresDSN(cfg.Region)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu     sync.Mutex
		runErr error
	)
	standby := startStandby(cfg, log)
	err = leader.Run(ctx, leader.Config{DSN: dsn, Name: leaderJob, Logger: log.With("part", "leader")}, func(lctx context.Context, n int64) {
		standby.stop()
		log.Info("this collector now serves the region", "term", n)
		err := run(lctx, cfg, log, &term{n})
		if lctx.Err() == nil {
			// Stopped by itself (a port taken, a backend gone): end the
			// process, so that its supervisor restarts it and another
			// collector takes over meanwhile.
			mu.Lock()
			runErr = fmt.Errorf("serving the region (term %d): %w", n, err)
			mu.Unlock()
			cancel()
			return
		}
		log.Warn("this collector no longer serves the region; standing by", "term", n, "err", err)
		standby = startStandby(cfg, log)
	})
	standby.stop()
	mu.Lock()
	defer mu.Unlock()
	if runErr != nil {
		return runErr
	}
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// standbyServer is listen.http while the collector stands by.
type standbyServer struct{ stop func() }

var standbyPage = template.Must(template.New("standby").Parse(`<!doctype html>
<html lang="ru"><meta charset="utf-8"><title>Сборщик в резерве</title>
<h1>Сборщик в резерве / collector standing by</h1>
<p>Этот сборщик региона в резерве: сейчас регион обслуживает другой сборщик. Откройте консоль ведущего сборщика.</p>
<p>Another collector of the region serves it now; this one takes over if it stops. Open the serving collector's console.</p>
`))

// startStandby serves, on listen.http, /metrics (idk_collector_leader 0
// and the process's own) and a 503 page for everything else.
func startStandby(cfg config.Config, log *slog.Logger) *standbyServer {
	if cfg.Listen.HTTP == "" {
		return &standbyServer{stop: func() {}}
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), leaderGauge(0))
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Retry-After", "5")
		w.WriteHeader(http.StatusServiceUnavailable)
		standbyPage.Execute(w, nil)
	})
	stop, err := serveHTTP(config.Config{Listen: config.Listen{HTTP: cfg.Listen.HTTP}, API: cfg.API}, mux, log)
	if err != nil {
		// Serving is what matters: the elected collector's own listen
		// fails louder if the address is taken.
		log.Warn("standby page not served", "err", err)
		return &standbyServer{stop: func() {}}
	}
	return &standbyServer{stop: stop}
}
