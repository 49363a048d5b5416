// Command idk-agent runs on a scanner PC: it watches the image-analysis
// program's output folder, keeps everything in a local spool and ships it
// to the regional collector.
//
//	idk-agent -config agent.toml          run the agent
//	idk-agent -config agent.toml -check   check the configuration and exit
//	idk-agent check [-config agent.toml]  diagnose the installation (folders,
//	                                      devices, certificates, collector, clock)
//	idk-agent state maintenance -note "..." [-config agent.toml]
//	                                      declare a state to the running agent
//	idk-agent case docs_returned -num-snim N -by NAME [-config agent.toml]
//	                                      report an inspection step to the running agent
//	idk-agent archived -before 2026-11-01 [-config agent.toml]
//	                                      scans safely at the collector, which staff may move (item 32)
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"idk/agent/config"
	"idk/agent/intake"
	"idk/agent/layout/cargoriw"
	"idk/agent/ship"
	"idk/agent/spool"
	"idk/agent/telemetry"
	"idk/agent/watch"
	"idk/internal/certexpiry"
	"idk/internal/clock"
	"idk/internal/logging"
	"idk/protocol"
	"idk/protocol/transport"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	if len(os.Args) > 1 && os.Args[1] == "state" {
		os.Exit(stateCommand(os.Args[2:], os.Stdout, os.Stderr))
	}
	if len(os.Args) > 1 && os.Args[1] == "case" {
		os.Exit(caseCommand(os.Args[2:], os.Stdout, os.Stderr))
	}
	if len(os.Args) > 1 && os.Args[1] == "archived" {
		os.Exit(archivedCommand(os.Args[2:], os.Stdout, os.Stderr))
	}
	if len(os.Args) > 1 && os.Args[1] == "check" {
		os.Exit(checkCommand(os.Args[2:], os.Stdout, os.Stderr))
	}
	cfgPath := flag.String("config", "agent.toml", "configuration file")
	check := flag.Bool("check", false, "check the configuration and exit")
	flag.Parse()
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		fmt.Fprintln(os.Stderr, "idk-agent:", err)
		os.Exit(2)
	}
	if *check {
		fmt.Println("configuration OK:", *cfgPath)
		return
	}
	if isWindowsService() {
		// No console and no signals under the Service Control Manager:
		// service_windows.go sends the log to a file and stops the agent
		// when the service is stopped.
		os.Exit(runService(*cfgPath, func(ctx context.Context) error { return run(ctx, cfg, logging.New(os.Stderr, cfg.Log)) }))
	}
	log := logging.New(os.Stderr, cfg.Log)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg, log); err != nil {
		log.Error("agent stopped", "err", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, cfg config.Config, log *slog.Logger) error {
	// The one clock every part times its work on.
	clk := clock.Real()
	// The certificate follows its files: a renewed one copied over them
	// is presented on the next connection, without a restart. The server
	// name is collector.server_name as set: empty, the shipper checks
	// each collector against the host of its own address, as the
	// collectors of a region may each have a certificate of their own.
	tlsConf, err := transport.ClientTLSReloading(cfg.Collector.Cert, cfg.Collector.Key, cfg.Collector.CA, cfg.Collector.ServerName,
		transport.Reload{Clock: clk, Log: log.With("part", "tls")})
	if err != nil {
		return err
	}
	tlsConf.NextProtos = []string{protocol.ALPN}

	sp, err := spool.Open(cfg.Spool.Path)
	if err != nil {
		return err
	}
	defer sp.Close()
	if r := sp.Recovered; r != nil {
		// Nothing is lost: the rescan finds every scan file again, and the
		// collector answers "have it" for what it already stored.
		log.Error("spool was damaged; moved aside and starting a new one, rebuilt from the scanner's folder",
			"spool", cfg.Spool.Path, "moved_to", r.Aside, "cause", r.Cause)
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	// Read from the files at each scrape, so a renewal shows at once.
	reg.MustRegister(
		certexpiry.New("idk_agent_certificate_expiry_timestamp_seconds",
			"When this agent's client certificate (collector.cert) expires, Unix seconds.", cfg.Collector.Cert),
		certexpiry.New("idk_agent_ca_certificate_expiry_timestamp_seconds",
			"When the CA certificate this agent trusts (collector.ca) expires, Unix seconds; the earliest if several.", cfg.Collector.CA))
	metrics := ship.NewMetrics(reg, sp, clk)

	tel, err := telemetry.New(telemetry.Config{
		Engine:     engineConfig(cfg),
		Controller: controllerConfig(cfg),
		GPSPort:    cfg.Telemetry.GPSPort,
		GPSBaud:    cfg.Telemetry.GPSBaud,
		Spool:      sp,
		Clock:      clk,
		SpoolDir:   filepath.Dir(cfg.Spool.Path),
		MinFree:    cfg.Spool.MinFreeBytes,
		Log:        log.With("part", "telemetry"),
	})
	if err != nil {
		return err
	}

	reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "idk_agent_telemetry_shed_total",
		Help: "Telemetry details (positions) not recorded because the spool's disk was nearly full.",
	}, func() float64 { return float64(tel.Shed()) }))

	w := watch.New(watch.Config{
		Root:   cfg.Scanner.OutputDir,
		Settle: cfg.Scanner.Settle,
		Rescan: cfg.Scanner.Rescan,
		Clock:  clk,
		Log:    log.With("part", "watch"),
	})
	in := intake.New(intake.Config{
		Layout:    cargoriw.Layout{},
		Spool:     sp,
		Clock:     clk,
		Log:       log.With("part", "intake"),
		Retry:     w.Retry,
		FormGrace: cfg.Scanner.FormGrace,
		OnDecision: func(_ string, at time.Time) {
			tel.Decision(at)
		},
	})
	sh := ship.New(ship.Config{
		Addrs:       cfg.Collector.Addresses(),
		TLS:         tlsConf,
		QUIC:        transport.QUICConfig(),
		Transport:   cfg.Collector.Transport,
		Device:      cfg.DeviceProto(),
		Spool:       sp,
		Metrics:     metrics,
		Clock:       clk,
		Log:         log.With("part", "ship"),
		Version:     version,
		MaxRate:     cfg.Collector.MaxRate,
		WindowFiles: cfg.Collector.WindowFiles,
		WindowBytes: cfg.Collector.WindowBytes,
		FreshAge:    cfg.Collector.FreshAge,
		Lanes:       cfg.Collector.Lanes,
		OnRehash:    in.Rehash,
		// A longer outage of the link is an НШС of the post (docs/incidents.md).
		OutageThreshold: cfg.Collector.OutageThreshold,
	})

	log.Info("agent starting", "version", version, "num_idk", cfg.Device.NumIDK, "output_dir", cfg.Scanner.OutputDir,
		"collectors", cfg.Collector.Addresses(), "transport", cfg.Collector.Transport, "spool", cfg.Spool.Path)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errc := make(chan error, 4)
	start := func(name string, f func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(ctx); err != nil {
				errc <- fmt.Errorf("%s: %w", name, err)
				cancel()
			}
		}()
	}
	start("watch", w.Run)
	start("intake", func(ctx context.Context) error { return in.Run(ctx, w.Ready()) })
	start("ship", sh.Run)
	start("telemetry", tel.Run)
	if cfg.Metrics.Listen != "" {
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
		mux.Handle("/state", stateHandler(tel))
		mux.Handle("POST /case", caseHandler(sp, clk, log.With("part", "case")))
		mux.Handle("GET /archived", archivedHandler(sp, cfg.Scanner.OutputDir, cargoriw.Layout{}))
		srv := &http.Server{Addr: cfg.Metrics.Listen, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		start("metrics", func(ctx context.Context) error {
			go func() { <-ctx.Done(); srv.Close() }()
			if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		})
	}
	wg.Wait()
	close(errc)
	return <-errc
}
