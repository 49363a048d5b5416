// Command idk-collector receives scans and events from the agents of one
// regional customs office and stores them.
//
//	idk-collector -config collector.toml        run the collector
//	idk-collector pki <init|collector|agent|revoke|demo> ...   manage certificates
//	idk-collector case <kind> -num-idk N ...    report an inspection event
//	idk-collector breach <list|reason> ...      breaches of the 15/15/30-minute rules
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"idk/collector/api"
	"idk/collector/availability"
	"idk/collector/cases"
	"idk/collector/config"
	"idk/collector/integrity"
	"idk/collector/pki"
	"idk/collector/server"
	"idk/collector/store"
	"idk/protocol"
	"idk/protocol/idkpb"
)

func main() {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "pki":
			os.Exit(pki.Main(os.Args[2:], os.Stdout, os.Stderr))
		case "case", "breach":
			os.Exit(caseCommand(os.Args[1], os.Args[2:], os.Stdout, os.Stderr))
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
	log := newLogger(cfg.Log)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg, log); err != nil {
		log.Error("collector stopped", "err", err)
		os.Exit(1)
	}
}

func newLogger(c config.Log) *slog.Logger {
	var level slog.Level
	level.UnmarshalText([]byte(c.Level))
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, opts))
}

func run(ctx context.Context, cfg config.Config, log *slog.Logger) error {
	loc, err := cfg.Location()
	if err != nil {
		return err
	}
	tlsConf, err := pki.ServerTLSConfig(cfg.TLS.Cert, cfg.TLS.Key, cfg.TLS.CA)
	if err != nil {
		return err
	}
	tlsConf.NextProtos = []string{protocol.ALPN}

	crlFile := cfg.TLS.CRL
	if crlFile == "" {
		crlFile = filepath.Join(filepath.Dir(cfg.TLS.CA), pki.CRLFile)
	}
	revocations, err := pki.NewRevocationChecker(crlFile, cfg.TLS.CA, time.Now)
	if err != nil {
		return err
	}

	st, err := store.Open(cfg.Store.Root, store.Options{Location: loc, MinFree: cfg.Store.MinFreeBytes, Log: log.With("part", "store")})
	if err != nil {
		return err
	}
	defer st.Close()

	tracker := availability.NewTracker(loc, time.Now)
	if err := tracker.UseAckStore(ackStore{st}); err != nil {
		return err
	}
	checker := integrity.New(log.With("part", "integrity"))
	engine, err := cases.Open(filepath.Join(cfg.Store.Root, "cases.db"), loc, time.Now)
	if err != nil {
		return err
	}
	defer engine.Close()
	feed := cases.NewFeed(engine, log.With("part", "cases"))
	replaying := true
	apply := func(dev *idkpb.Device, epoch uint64, ev *idkpb.Event) {
		applyState(tracker, dev, ev)
		checker.Apply(dev.NumIdk, epoch, ev)
		// The cases engine keeps its own durable record: on replay it only
		// needs the device states, to tell an arrival from a later change.
		feed.Event(dev, ev, !replaying)
	}
	if err := replay(st, apply); err != nil {
		return err
	}
	replaying = false
	go func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if err := engine.Tick(); err != nil {
					log.Error("deadline check failed", "err", err)
				}
			}
		}
	}()
	token, err := loadOrCreateToken(cfg.API.TokenFile)
	if err != nil {
		return err
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), tracker.Collector(), checker, engine.Collector(),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "idk_collector_index_recovered",
			Help: "1 if the index was damaged at start, moved aside and rebuilt from the scan folders.",
		}, func() float64 {
			if st.Recovered != nil {
				return 1
			}
			return 0
		}))
	metrics := server.NewMetrics(reg)
	(&pki.ClientVerifier{
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
		OnEvent: apply,
		OnHello: func(dev *idkpb.Device) {
			if err := engine.SetDevice(cases.DeviceFromProto(dev)); err != nil {
				log.Error("cannot record device for table 4", "num_idk", dev.NumIdk, "err", err)
			}
		},
		Store:   st,
		Metrics: metrics,
		Log:     log.With("part", "server"),
		// The certificate was verified in the handshake (ClientVerifier
		// below); here it only names the ИДК.
		Identify: func(cs tls.ConnectionState) (string, error) {
			if len(cs.PeerCertificates) == 0 {
				return "", errors.New("no client certificate")
			}
			return pki.IdentityFromCert(cs.PeerCertificates[0])
		},
	})

	ln, err := server.Listen(cfg.Listen.QUIC, tlsConf, filepath.Join(cfg.Store.Root, ".quic-reset-key"))
	if err != nil {
		return err
	}
	defer ln.Close()
	if cfg.Listen.HTTP != "" {
		hs := &http.Server{Addr: cfg.Listen.HTTP, Handler: api.Handler(st, reg, tracker.Handler(), engine.Handler(), token), ReadHeaderTimeout: 10 * time.Second}
		go func() {
			if err := hs.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
				log.Error("http server stopped", "addr", cfg.Listen.HTTP, "err", err)
			}
		}()
		defer hs.Close()
	}
	log.Info("collector listening", "quic", ln.Addr().String(), "http", cfg.Listen.HTTP, "root", cfg.Store.Root)
	return srv.Serve(ctx, ln)
}

// applyState feeds a stored event to the device time accounting.
func applyState(t *availability.Tracker, dev *idkpb.Device, ev *idkpb.Event) {
	if sc := ev.GetState(); sc != nil {
		t.Apply(availability.DeviceFromProto(dev), availability.ChangeFromProto(time.Unix(0, ev.CollectorTimeUnixNano), sc))
	}
}

// replay rebuilds the live state (device time accounting, integrity
// checks) from the stored events after a restart, so today's figures and
// open incidents are not lost.
func replay(st *store.Store, apply func(*idkpb.Device, uint64, *idkpb.Event)) error {
	devs, err := st.Devices()
	if err != nil {
		return err
	}
	for _, dev := range devs {
		err := st.EachEvent(dev.NumIdk, func(epoch uint64, ev *idkpb.Event) error {
			apply(dev, epoch, ev)
			return nil
		})
		if err != nil {
			return fmt.Errorf("replay events of %s: %w", dev.NumIdk, err)
		}
	}
	return nil
}

// ackStore keeps incident acknowledgements in the collector's index.
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
