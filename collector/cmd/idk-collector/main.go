// Command idk-collector receives scans and events from the agents of one
// regional customs office and stores them.
//
//	idk-collector -config collector.toml        run the collector
//	idk-collector pki <init|collector|agent|renew|revoke|demo> ...   manage certificates
//	idk-collector case <kind> -num-idk N ...    report an inspection event
//	idk-collector breach <list|reason> ...      breaches of the 15/15/30-minute rules
//	idk-collector check -config collector.toml  verify every stored file against the index
//	idk-collector report <daily|monthly|item36|shift|versions|incomplete|publish|entry|counts> ...   the reports
//	idk-collector reanalysis <scans|leads|record|show|list> ...   re-analysis of images (items 8-11)
//	idk-collector archive <status|remove> -config collector.toml   the 3-year archive (collector stopped)
//	idk-collector user <add|passwd|disable|enable|list|token> -config collector.toml ...   accounts of the console and the API
//	idk-collector migrate -config collector.toml -to postgres -files s3   move the history into the region's backends (collector stopped)
//	idk-collector national <pull|summary> -config national.toml -month M   the national roll-up of the regions' reports
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"idk/collector/api"
	"idk/collector/auth"
	"idk/collector/availability"
	"idk/collector/cases"
	"idk/collector/config"
	"idk/collector/console"
	"idk/collector/fleet"
	"idk/collector/ingest"
	"idk/collector/integrity"
	"idk/collector/nshs"
	"idk/collector/pki"
	"idk/collector/pki/pkicmd"
	"idk/collector/reanalysis"
	"idk/collector/registry"
	"idk/collector/report"
	"idk/collector/server"
	"idk/collector/store"
	"idk/internal/certexpiry"
	"idk/internal/clock"
	"idk/internal/logging"
	"idk/protocol"
	"idk/protocol/idkpb"
	"idk/protocol/transport"
)

func main() {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "pki":
			os.Exit(pkicmd.Main(os.Args[2:], os.Stdout, os.Stderr))
		case "check":
			os.Exit(checkCommand(os.Args[2:], os.Stdout, os.Stderr))
		case "national":
			os.Exit(nationalCommand(os.Args[2:], os.Stdout, os.Stderr))
		case "migrate":
			os.Exit(migrateCommand(os.Args[2:], os.Stdout, os.Stderr))
		case "case", "breach":
			os.Exit(caseCommand(os.Args[1], os.Args[2:], os.Stdout, os.Stderr))
		case "report":
			os.Exit(reportCommand(os.Args[2:], os.Stdout, os.Stderr))
		case "reanalysis":
			os.Exit(reanalysisCommand(os.Args[2:], os.Stdout, os.Stderr))
		case "archive":
			os.Exit(archiveCommand(os.Args[2:], os.Stdout, os.Stderr))
		case "user":
			os.Exit(userCommand(os.Args[2:], os.Stdin, os.Stdout, os.Stderr))
		}
	}
	cfgPath := flag.String("config", "collector.toml", "configuration file")
	check := flag.Bool("check", false, "check the configuration and exit")
	flag.Parse()
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		fmt.Fprintln(os.Stderr, "idk-collector:", err)
		os.Exit(2)
	}
	if *check {
		fmt.Println("configuration OK:", *cfgPath)
		return
	}
	log := logging.New(os.Stderr, cfg.Log)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := serve(ctx, cfg, log); err != nil {
		log.Error("collector stopped", "err", err)
		os.Exit(1)
	}
}

// serve runs the collector: at once when it keeps its index to itself,
// and in a region sharing PostgreSQL (region.postgres) whenever it is the
// one elected, standing by otherwise (docs/scale-out.md).
func serve(ctx context.Context, cfg config.Config, log *slog.Logger) error {
	if cfg.Region.Postgres == "" {
		return run(ctx, cfg, log, nil)
	}
	return serveRegion(ctx, cfg, log)
}

func run(ctx context.Context, cfg config.Config, log *slog.Logger, elected *term) error {
	loc, err := cfg.Location()
	if err != nil {
		return err
	}

	// The one clock every part decides by; tests and simulations build
	// these parts on a virtual one instead.
	clk := clock.Real()
	// The server certificate is re-read when its files change, so a
	// renewed one (idk-collector pki renew --collector) needs no restart.
	tlsConf, err := transport.ServerTLSReloading(cfg.TLS.Cert, cfg.TLS.Key, cfg.TLS.CA,
		transport.Reload{Clock: clk, Log: log.With("part", "tls")})
	if err != nil {
		return err
	}
	tlsConf.NextProtos = []string{protocol.ALPN}
	// No session tickets: a resumed TLS session skips certificate
	// verification, so a revoked agent could come back on an old ticket.
	tlsConf.SessionTicketsDisabled = true

	crlFile := cfg.TLS.CRL
	if crlFile == "" {
		crlFile = filepath.Join(filepath.Dir(cfg.TLS.CA), pki.CRLFile)
	}
	revocations, err := pki.NewRevocationChecker(crlFile, cfg.TLS.CA, clk)
	if err != nil {
		return err
	}

	regPath := cfg.TLS.Registry
	if regPath == "" {
		regPath = filepath.Join(filepath.Dir(cfg.TLS.CA), registry.FileName)
	}
	agents, err := registry.Open(regPath, clk)
	if err != nil {
		return err
	}

	ix, err := openIndexes(ctx, cfg, elected)
	if err != nil {
		return err
	}
	defer ix.Close()
	st, err := ix.openStore(cfg, store.Options{Location: loc, Clock: clk, MinFree: cfg.Store.MinFreeBytes, Log: log.With("part", "store")})
	if err != nil {
		return err
	}
	defer st.Close()

	tracker := availability.NewTracker(loc, clk)
	if cfg.API.ExposeCoordinates {
		tracker.ExposePosition()
	}
	if err := tracker.UseAckStore(ackStore{st}); err != nil {
		return err
	}
	engine, err := ix.openEngine(cfg, loc, clk)
	if err != nil {
		return err
	}
	defer engine.Close()
	if err := engine.SetBackdateWindow(cfg.Cases.BackdateWindow); err != nil {
		return err
	}
	if err := engine.SetClockOffsetLimit(cfg.Cases.ClockOffsetLimit); err != nil {
		return err
	}
	index := ingest.FromStore(st)
	checker := integrity.New(log.With("part", "integrity"), index)
	journal := availability.NewJournal(tracker)
	feed := cases.NewFeed(engine, log.With("part", "cases"))
	scans := report.NewScanJournal(loc)
	scans.Use(index)
	book := nshs.NewBook(index, loc, clk)
	book.UseSteps(tracker)
	events := ingest.New(ingest.Config{
		Log: index,
		Consumers: map[string]ingest.Consumer{"availability": journal, "integrity": checker, "cases": feed, "report.scans": scans,
			"nshs.link": nshs.NewLinkJournal(book)},
		Followers: []ingest.Follower{journal, feed},
		Logger:    log.With("part", "ingest"),
	})
	if err := events.Load(); err != nil {
		return err
	}
	go clock.Every(ctx, clk, time.Second, func() {
		if err := engine.Tick(); err != nil {
			log.Error("deadline check failed", "err", err)
		}
	})
	roster, err := report.OpenRoster(cfg.Report.Roster, clk)
	if err != nil {
		return err
	}
	entries := report.NewEntries(index, scans, loc, clk)
	builder := report.NewBuilder(report.Sources{Index: index, Scans: scans, Entries: entries, Cases: engine, Roster: roster, Location: loc, Clock: clk})
	archive, err := report.OpenArchive(cfg.Report.Dir, builder, clk, log.With("part", "report"))
	if err != nil {
		return err
	}
	// The customs bodies reported on are those of the enrolled ИДК.
	offices := func() []string {
		o, err := agents.Offices()
		if err != nil {
			log.Error("agent registry unreadable; the last good one stays in force", "file", regPath, "err", err)
		}
		return o
	}
	// The collector's own outage (an НШС of the ICT rules): from the last
	// heartbeat before an unclean stop to now.
	heartbeat := nshs.HeartbeatPath(st.Root())
	if ns, err := nshs.RecordOutage(index, book, heartbeat, st.Recovered != nil, clk.Now(), offices()); err != nil {
		log.Error("cannot record the collector's own outage", "err", err)
	} else if len(ns) > 0 {
		log.Warn("collector restarted after an unclean stop; its outage is recorded as an НШС", "since", ns[0].Start, "until", ns[0].End)
	}
	beat, err := nshs.StartHeartbeat(heartbeat, clk, log.With("part", "nshs"))
	if err != nil {
		return err
	}
	// Clean only when told to stop: a stop on an error is an outage.
	defer func() { beat.Stop(ctx.Err() != nil) }()
	go (&report.Schedule{Archive: archive, At: cfg.Report.PublishAt, Offices: offices}).Run(ctx)
	go (&report.MonthlySchedule{Archive: archive, At: cfg.Report.PublishAt + 15*time.Minute, Offices: offices}).Run(ctx)
	rean, err := reanalysis.New(reanalysis.Config{
		Root: cfg.Reanalysis.Root, StoreRoot: st.Root(), Files: st, Events: st,
		Scans:   reanalysis.JournalScans{Journal: scans, Index: index, Facts: engine},
		Entries: entries, DB: index, Location: loc, Clock: clk, Log: log.With("part", "reanalysis"),
	})
	if err != nil {
		return err
	}
	reports := http.NewServeMux()
	daily := &report.DailyHandler{Archive: archive, Builder: builder, Offices: offices}
	monthly := &report.MonthlyHandler{Archive: archive, Builder: builder, Offices: offices}
	reports.Handle("/api/v1/reports/daily", daily)
	reports.Handle("/api/v1/reports/daily/", daily)
	reports.Handle("/api/v1/reports/monthly", monthly)
	reports.Handle("/api/v1/reports/monthly/", monthly)
	item36 := &report.Item36Handler{Cases: engine, Location: loc, Offices: offices, Clock: clk}
	reports.Handle("/api/v1/reports/item36", item36)
	reports.Handle("/api/v1/reports/item36/", item36)
	reports.Handle("/api/v1/reports/shift", &report.ShiftHandler{Index: index, Scans: scans})
	reports.Handle("/api/v1/reports/relocations", &report.RelocationHandler{Index: index, Location: loc})
	reports.Handle("/api/v1/reports/", entries.Handler())
	reports.Handle("/api/v1/reanalysis/", rean.Handler())
	reports.Handle("/api/v1/nshs", book.Handler())
	reports.Handle("/api/v1/nshs/", book.Handler())
	reports.Handle("/api/v1/nshs/form", &nshs.FormHandler{Book: book, Location: loc, Clock: clk})

	// The old shared token, kept while systems move to their own.
	sharedToken := ""
	if cfg.API.TokenFile != "" {
		if sharedToken, err = loadOrCreateToken("api.token_file", cfg.API.TokenFile); err != nil {
			return err
		}
	}
	correctionsToken, err := loadOrCreateToken("api.corrections_token_file", cfg.API.CorrectionsTokenFile)
	if err != nil {
		return err
	}

	// What each agent's link looks like now, for the fleet board.
	agentsLink := fleet.New(clk)
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), tracker.Collector(), checker, engine.Collector(), agentsLink.Collector(),
		archive.MonthlyCollector(offices, archive.Since()),
		certexpiry.New("idk_collector_certificate_expiry_timestamp_seconds",
			"When the collector's server certificate (tls.cert) expires, Unix seconds.", cfg.TLS.Cert),
		certexpiry.New("idk_collector_ca_certificate_expiry_timestamp_seconds",
			"When the CA certificate (tls.ca) expires, Unix seconds; the earliest if several.", cfg.TLS.CA),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "idk_collector_index_recovered",
			Help: "1 if the index was damaged at start, moved aside and rebuilt from the scan folders.",
		}, func() float64 {
			if st.Recovered != nil {
				return 1
			}
			return 0
		}))
	if elected != nil {
		reg.MustRegister(leaderGauge(1))
	}
	metrics := server.NewMetrics(reg)
	(&pki.ClientVerifier{
		Clock:       clk,
		Revocations: revocations,
		OnRefuse: func(reason string, err error) {
			metrics.Handshakes.WithLabelValues(reason).Inc()
			log.Warn("agent handshake refused", "reason", reason, "err", err)
		},
		OnListError: func(err error) {
			log.Error("revocation list unreadable; the last good one stays in force", "file", crlFile, "err", err)
		},
	}).Apply(tlsConf)
	srv := server.New(server.Config{
		Clock:  clk,
		Ingest: events,
		OnHello: func(dev *idkpb.Device) {
			if err := engine.SetDevice(registry.DeviceFromProto(dev)); err != nil {
				log.Error("cannot record device for table 4", "num_idk", dev.NumIdk, "err", err)
			}
		},
		OnClockOffset: engine.SetClockOffset,
		MaxLanes:      cfg.Agents.Lanes,
		AgentRate:     cfg.Agents.MaxRate,
		AgentFiles:    cfg.Agents.MaxFiles,
		Store:         st,
		Metrics:       metrics,
		Fleet:         agentsLink,
		Log:           log.With("part", "server"),
		Enrolled: func(numIDK string) (string, bool) {
			a, ok, err := agents.Lookup(numIDK)
			if err != nil {
				log.Error("agent registry unreadable; the last good one stays in force", "file", regPath, "err", err)
			}
			return a.KodTO, ok
		},
		Revoked: func(cs tls.ConnectionState) bool {
			if len(cs.PeerCertificates) == 0 {
				return true
			}
			revoked, _ := revocations.Revoked(cs.PeerCertificates[0].SerialNumber)
			return revoked
		},
		// The certificate was verified in the handshake (ClientVerifier
		// below); here it only names the ИДК.
		Identify: func(cs tls.ConnectionState) (string, error) {
			if len(cs.PeerCertificates) == 0 {
				return "", errors.New("no client certificate")
			}
			return pki.IdentityFromCert(cs.PeerCertificates[0])
		},
	})

	ln, udp, err := server.Listen(cfg.Listen.QUIC, tlsConf, filepath.Join(cfg.Store.Root, ".quic-reset-key"))
	if err != nil {
		return err
	}
	metrics.SetUDP(udp)
	if !udp.GSO || udp.ReceiveBuffer < udp.WantBuffer {
		log.Warn("QUIC socket not set up as quic-go advises: see deploy/systemd/90-idk-quic.conf", "gso", udp.GSO,
			"receive_buffer", udp.ReceiveBuffer, "want", udp.WantBuffer)
	}
	defer ln.Close()
	listeners := []transport.Listener{transport.QUICListener(ln)}
	tcpAddr := "off"
	if cfg.Listen.TCP != "" {
		// For agents whose network passes only TCP: the same TLS
		// configuration, so the same verification and revocation.
		tln, err := transport.ListenTCP(cfg.Listen.TCP, tlsConf)
		if err != nil {
			return fmt.Errorf("listen.tcp: %w", err)
		}
		defer tln.Close()
		listeners, tcpAddr = append(listeners, tln), tln.Addr().String()
	}
	metricsToken := ""
	if cfg.API.MetricsTokenFile != "" {
		if metricsToken, err = loadOrCreateToken("api.metrics_token_file", cfg.API.MetricsTokenFile); err != nil {
			return err
		}
	}
	accounts, err := auth.OpenAccounts(cfg.Console.Accounts, clk)
	if err != nil {
		return err
	}
	audit, err := auth.OpenAudit(cfg.Console.Audit, clk)
	if err != nil {
		return err
	}
	defer audit.Close()
	gate := &auth.Gate{
		Accounts: accounts, Audit: audit, Clock: clk, Log: log.With("part", "auth"),
		Secure:      cfg.Listen.HTTPS != "",
		SharedToken: sharedToken,
		Post: func(numIDK string) (string, bool) {
			a, ok, err := agents.Lookup(numIDK)
			if err != nil {
				log.Error("agent registry unreadable; the last good one stays in force", "file", regPath, "err", err)
			}
			return a.KodTO, ok
		},
		SessionIdle: cfg.Console.SessionIdle, SessionMax: cfg.Console.SessionMax,
		LockoutFailures: cfg.Console.LockoutFailures, LockoutFor: cfg.Console.LockoutFor,
	}
	if sharedToken != "" {
		log.Warn("the old shared API token (api.token_file) is on: give each system its own token (idk-collector user token) and turn it off")
	}
	accounts.UseAudit(audit)
	reg.MustRegister(gate.Collector())
	pages, err := console.New(console.Config{
		Sessions: gate, Audit: audit,
		Fleet: agentsLink, Live: tracker,
		History: console.StoreHistory{Index: index, Location: loc, Clock: clk},
		Cases:   engine, NSHS: book, Scans: st, Versions: archive,
		Daily: daily, Monthly: monthly,
		Post: gate.Post, Offices: offices,
		Location: loc, Clock: clk, Log: log.With("part", "console"), Secure: gate.Secure,
	})
	if err != nil {
		return err
	}
	handler := api.Handler(st, reg, tracker.Handler(), cases.Corrections(engine.Handler(), correctionsToken), reports, pages, gate, metricsToken)
	stopHTTP, err := serveHTTP(cfg, handler, log)
	if err != nil {
		return err
	}
	defer stopHTTP()
	// Uploads abandoned for a week leave neither partial files nor
	// reserved names behind.
	sweep := func() {
		if n, err := st.SweepPartials(7 * 24 * time.Hour); err != nil {
			log.Error("sweeping abandoned uploads failed", "err", err)
		} else if n > 0 {
			log.Info("abandoned uploads dropped", "files", n)
		}
	}
	go func() {
		sweep() // at start too: a collector restarted often never reaches the hour
		clock.Every(ctx, clk, time.Hour, sweep)
	}()
	log.Info("collector listening", "quic", ln.Addr().String(), "tcp", tcpAddr, "http", cfg.Listen.HTTP, "root", cfg.Store.Root)
	return srv.ServeAll(ctx, listeners...)
}

// serveHTTP serves handler on listen.http (plain, for this host) and
// listen.https (TLS, for the office network), whichever are set, and
// returns what stops both.
func serveHTTP(cfg config.Config, handler http.Handler, log *slog.Logger) (stop func(), err error) {
	var servers []*http.Server
	stop = func() {
		for _, s := range servers {
			s.Close()
		}
	}
	listen := func(addr string, tlsConf *tls.Config) error {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("listen %s: %w", addr, err)
		}
		if tlsConf != nil {
			ln = tls.NewListener(ln, tlsConf)
		}
		// Every limit a client could otherwise hold open without a token:
		// slow headers and bodies, idle keep-alives, and the number of
		// connections (idle ones make room for new ones), so the agents'
		// port keeps its file descriptors.
		hs := &http.Server{
			Handler:           handler,
			ReadHeaderTimeout: 10 * time.Second,
			ReadTimeout:       30 * time.Second,
			WriteTimeout:      5 * time.Minute,
			IdleTimeout:       60 * time.Second,
			MaxHeaderBytes:    64 << 10,
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		}
		servers = append(servers, hs)
		go func() {
			if err := hs.Serve(api.LimitConns(hs, ln, cfg.API.MaxConnections)); !errors.Is(err, http.ErrServerClosed) {
				log.Error("http server stopped", "addr", addr, "err", err)
			}
		}()
		return nil
	}
	if cfg.Listen.HTTP != "" {
		if err := listen(cfg.Listen.HTTP, nil); err != nil {
			return stop, fmt.Errorf("listen.http: %w", err)
		}
	}
	if cfg.Listen.HTTPS != "" {
		cert, key := cfg.Listen.HTTPSCert, cfg.Listen.HTTPSKey
		if cert == "" {
			cert, key = cfg.TLS.Cert, cfg.TLS.Key
		}
		pair, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			stop()
			return nil, fmt.Errorf("listen.https: certificate %s: %w", cert, err)
		}
		tlsConf := &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12, NextProtos: []string{"h2", "http/1.1"}}
		if err := listen(cfg.Listen.HTTPS, tlsConf); err != nil {
			stop()
			return nil, fmt.Errorf("listen.https: %w", err)
		}
	}
	return stop, nil
}

// ackStore keeps incident acknowledgements and reporting steps in the
// collector's index.
type ackStore struct{ st *store.Store }

func (a ackStore) SaveAck(numIDK, id, by string, at time.Time) error {
	return a.st.SaveAck(numIDK, id, by, at)
}

func (a ackStore) LoadAcks() ([]availability.Ack, error) {
	acks, err := a.st.Acks()
	out := make([]availability.Ack, len(acks))
	for i, k := range acks {
		out[i] = availability.Ack{NumIDK: k.NumIDK, ID: k.ID, By: k.By, At: k.At}
	}
	return out, err
}

func (a ackStore) SaveStep(numIDK, id, step, by string, at time.Time) error {
	return a.st.SaveStep(numIDK, id, step, by, at)
}

func (a ackStore) LoadSteps() ([]availability.StepReport, error) {
	steps, err := a.st.Steps()
	out := make([]availability.StepReport, len(steps))
	for i, k := range steps {
		out[i] = availability.StepReport{NumIDK: k.NumIDK, ID: k.ID, Step: k.Step, By: k.By, At: k.At}
	}
	return out, err
}
