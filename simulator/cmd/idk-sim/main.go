// Command idk-sim plays scanners without hardware.
//
//	idk-sim scanner -out DIR -num-idk N -scans 20     write CargoRIW-style scans
//	idk-sim demo -bin bin -dir .demo -scans 20        collector + agent + scanner, verified
//	idk-sim bench -bin bin -dir .bench                throughput and memory figures
//	idk-sim linkbench -bin bin -dir .linkbench        throughput and form latency through an emulated link
//	idk-sim fleetbench -bin bin -dir DIR -idk 300 -duration 10m
//	                                                  a fleet of virtual ИДК against one collector: lost 0, CPU, RSS
//	idk-sim peerbench -bin bin -dir .peerbench        the agent→collector pipeline against bare quic-go, scp, rsync, nginx
//	idk-sim backendsbench -bin bin -dir DIR           the collector on bbolt + local files against PostgreSQL + S3
//	idk-sim chaos -bin bin -dir .chaos                kills, outages, full disks; nothing lost
//	idk-sim chaos-region -bin bin -dir .chaos-region  two collectors on PostgreSQL and S3, the serving one killed; nothing lost, breaches once
//	idk-sim relay -listen ADDR -upstream ADDR ...     a bad link between an agent and a collector
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"idk/internal/clock"
	"idk/simulator/harness"
	"idk/simulator/hostile"
	"idk/simulator/relay"
	"idk/simulator/scanner"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	clk := clock.Real() // the one clock the simulated devices run on
	defer stop()
	var err error
	switch os.Args[1] {
	case "scanner":
		err = runScanner(ctx, clk, os.Args[2:])
	case "demo":
		err = runDemo(ctx, os.Args[2:])
	case "bench":
		err = runBench(ctx, os.Args[2:])
	case "linkbench":
		err = runLinkBench(ctx, os.Args[2:])
	case "fleetbench":
		err = runFleetBench(ctx, os.Args[2:])
	case "peerbench":
		err = runPeerBench(ctx, os.Args[2:])
	case "backendsbench":
		err = runBackendsBench(ctx, os.Args[2:])
	// The ends of peerbench's peers, run by it as processes of their own.
	case "peer-quic-recv":
		err = runPeerQUICRecv(ctx, os.Args[2:])
	case "peer-quic-send":
		err = runPeerQUICSend(ctx, os.Args[2:])
	case "peer-https-put":
		err = runPeerHTTPSPut(ctx, os.Args[2:])
	case "relay":
		err = runRelay(ctx, clk, os.Args[2:])
	case "chaos":
		err = runChaos(ctx, os.Args[2:])
	case "chaos-region":
		err = runChaosRegion(ctx, os.Args[2:])
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "idk-sim:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: idk-sim scanner|demo|bench|linkbench|fleetbench|peerbench|backendsbench|chaos|relay [flags]   (idk-sim <command> -h for flags)")
	os.Exit(2)
}

func runScanner(ctx context.Context, clk clock.Clock, args []string) error {
	fs := flag.NewFlagSet("scanner", flag.ExitOnError)
	out := fs.String("out", "", "output folder of the simulated CargoRIW (required)")
	num := fs.String("num-idk", "850591", "NUM_IDK of the simulated scanner")
	scans := fs.Int("scans", 20, "number of scans to write")
	interval := fs.Duration("interval", 0, "pause between scans")
	rawMin := fs.Int64("raw-min", scanner.DefaultRawMin, "smallest RAW image, bytes")
	rawMax := fs.Int64("raw-max", scanner.DefaultRawMax, "largest RAW image, bytes")
	raws := fs.Int("raws", 1, "RAW images per scan (1 or 2)")
	docs := fs.Int("docs", 2, "scanned documents per scan")
	seed := fs.Uint64("seed", 1, "content seed")
	manifest := fs.String("manifest", "", "append one JSON line per finished scan here")
	fs.Parse(args)
	if *out == "" {
		return fmt.Errorf("scanner: -out is required")
	}
	sc, err := scanner.New(scanner.Config{Out: *out, NumIDK: *num, RawMin: *rawMin, RawMax: *rawMax,
		RawPerScan: *raws, DocsPerScan: *docs, Seed: *seed, SuspectRatio: 0.2}, clk)
	if err != nil {
		return err
	}
	var mf *os.File
	if *manifest != "" {
		if mf, err = os.OpenFile(*manifest, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644); err != nil {
			return err
		}
		defer mf.Close()
	}
	for i := 0; i < *scans; i++ {
		s, err := sc.WriteScan(ctx)
		if err != nil {
			return err
		}
		if mf != nil {
			b, _ := json.Marshal(harness.ManifestEntry{NumSnim: s.NumSnim, Files: s.Files})
			if _, err := mf.Write(append(b, '\n')); err != nil {
				return fmt.Errorf("manifest: %w", err)
			}
		}
		fmt.Printf("scan %s written: %d files\n", s.NumSnim, len(s.Files))
		if *interval > 0 && i+1 < *scans {
			if err := clock.Sleep(ctx, clk, *interval); err != nil {
				return err
			}
		}
	}
	return nil
}

func runDemo(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("demo", flag.ExitOnError)
	var o harness.DemoOptions
	fs.StringVar(&o.Bin, "bin", "bin", "folder with the built programs")
	fs.StringVar(&o.Dir, "dir", ".demo", "working folder (certificates, configs, data, logs)")
	fs.IntVar(&o.Scans, "scans", 20, "scans to ship")
	fs.Int64Var(&o.RawMin, "raw-min", scanner.DefaultRawMin, "smallest RAW image, bytes")
	fs.Int64Var(&o.RawMax, "raw-max", scanner.DefaultRawMax, "largest RAW image, bytes")
	fs.DurationVar(&o.Timeout, "timeout", 10*time.Minute, "give up after")
	fs.Parse(args)
	return harness.Demo(ctx, o, os.Stdout)
}

func runChaos(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("chaos", flag.ExitOnError)
	var o harness.ChaosOptions
	fs.StringVar(&o.Bin, "bin", "bin", "folder with the built programs")
	fs.StringVar(&o.Dir, "dir", ".chaos", "working folder")
	fs.IntVar(&o.Scans, "scans", 1000, "scans the simulated scanner writes")
	fs.DurationVar(&o.Interval, "interval", 100*time.Millisecond, "pause between scans")
	fs.IntVar(&o.AgentKills, "agent-kills", 50, "SIGKILLs of the agent")
	fs.IntVar(&o.CollectorKills, "collector-kills", 50, "SIGKILLs of the collector")
	fs.IntVar(&o.Outages, "outages", 10, "link outages")
	fs.DurationVar(&o.MaxOutage, "max-outage", 5*time.Second, "longest link outage")
	fs.IntVar(&o.DiskFulls, "disk-fulls", 3, "times the collector's disk is filled (needs root for a tmpfs)")
	fs.Uint64Var(&o.Seed, "seed", 1, "random seed: the same seed plays the same faults")
	fs.DurationVar(&o.Drain, "drain", 5*time.Minute, "time allowed to catch up at the end")
	fs.StringVar(&o.Transport, "transport", "", "the agent's collector.transport (auto, quic, tcp); tcp also puts the link through a TCP relay. Default: the agent's default")
	// A developer without root still gets the rest of the run, and the
	// report says in capitals that the disk was never filled; a run whose
	// figures are to be quoted passes -require-disk-full.
	requireDiskFull := fs.Bool("require-disk-full", false, "fail when the disk-full faults cannot be played (no tmpfs: not root)")
	withHostile := fs.Bool("hostile", false, "add a hostile agent: a second ИДК's stolen certificate forging the honest one's scans all along")
	fs.Parse(args)
	o.DiskFullOptional = !*requireDiskFull
	if *withHostile {
		o.Hostile = hostileAgent
	}
	rep, err := harness.Chaos(ctx, o, os.Stdout)
	if err != nil {
		return err
	}
	fmt.Println()
	fmt.Println(rep)
	switch {
	case !rep.Intact():
		return fmt.Errorf("chaos: something was lost, duplicated or corrupted")
	case !rep.OK():
		return fmt.Errorf("chaos: the disk-full faults were not played (%s), and -require-disk-full was given", rep.DiskFullSkipped)
	}
	return nil
}

func runChaosRegion(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("chaos-region", flag.ExitOnError)
	var o harness.ChaosRegionOptions
	fs.StringVar(&o.Bin, "bin", "bin", "folder with the built programs")
	fs.StringVar(&o.Dir, "dir", ".chaos-region", "working folder")
	fs.IntVar(&o.Agents, "agents", 2, "ИДК shipping, each with a simulated scanner")
	fs.IntVar(&o.Scans, "scans", 100, "scans each simulated scanner writes")
	fs.DurationVar(&o.Interval, "interval", 500*time.Millisecond, "pause between scans")
	fs.IntVar(&o.Kills, "kills", 10, "SIGKILLs of the serving collector")
	fs.IntVar(&o.Breaches, "breaches", 12, "breaches planted: one due during each takeover, the rest between")
	fs.DurationVar(&o.MaxRestartDelay, "max-restart-delay", time.Second, "longest a killed collector stays down")
	fs.Uint64Var(&o.Seed, "seed", 1, "random seed: the same seed plays the same kills")
	fs.DurationVar(&o.Drain, "drain", 5*time.Minute, "time allowed to catch up at the end")
	maxTakeover := fs.Duration("max-takeover", 5*time.Second, "fail when a takeover, or a due breach's wait for the engine beyond a tick, takes longer")
	fs.Parse(args)
	// The run needs the region's backends (IDK_TEST_POSTGRES,
	// IDK_TEST_S3_*): deploy/dev/services starts them.
	rep, err := harness.ChaosRegion(ctx, o, os.Stdout)
	if err != nil {
		return err
	}
	fmt.Println()
	fmt.Println(rep)
	switch {
	case !rep.Intact():
		return fmt.Errorf("chaos-region: something was lost, duplicated or corrupted")
	case !rep.EngineOnce():
		return fmt.Errorf("chaos-region: a planted breach was not recorded exactly once")
	case rep.MaxTakeover > *maxTakeover:
		return fmt.Errorf("chaos-region: a takeover took %v, over %v", rep.MaxTakeover, *maxTakeover)
	case rep.MaxBreachLate > *maxTakeover+time.Second:
		return fmt.Errorf("chaos-region: a due breach waited %v for the engine, over %v and a tick", rep.MaxBreachLate, *maxTakeover)
	}
	return nil
}

// hostileAgent forges the honest ИДК's scans with the second ИДК's
// certificate for as long as the chaos run lasts.
func hostileAgent(ctx context.Context, env *harness.Env) string {
	f := hostile.Forger{Addr: env.QUICAddr, CertDir: filepath.Join(env.Dir, "certs"),
		NumIDK: env.Agents[1].NumIDK, KodTO: env.Agents[1].KodTO, VictimDir: env.Agents[0].OutputDir}
	return f.Run(ctx).String()
}

func runBench(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("bench", flag.ExitOnError)
	var o harness.BenchOptions
	fs.StringVar(&o.Bin, "bin", "bin", "folder with the built programs")
	fs.StringVar(&o.Dir, "dir", ".bench", "working folder")
	fs.IntVar(&o.Files, "files", 8, "images for the throughput comparison")
	fs.Int64Var(&o.FileSize, "file-size", 128<<20, "size of each of those images, bytes")
	fs.Int64Var(&o.BigSize, "big", 2<<30, "size of the image shipped for the memory figure, bytes")
	fs.Parse(args)
	return harness.Bench(ctx, o, os.Stdout)
}

func runBackendsBench(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("backendsbench", flag.ExitOnError)
	var o harness.BackendsBenchOptions
	fs.StringVar(&o.Bin, "bin", "bin", "folder with the built programs")
	fs.StringVar(&o.Dir, "dir", ".backendsbench", "working folder")
	fs.IntVar(&o.Images, "images", 4, "large images per run")
	fs.Int64Var(&o.ImageSize, "image-size", 64<<20, "bytes per image")
	fs.IntVar(&o.Docs, "docs", 300, "small documents per run")
	fs.Int64Var(&o.DocSize, "doc-size", 100<<10, "bytes per document")
	fs.Parse(args)
	return harness.BackendsBench(ctx, o, os.Stdout)
}

func runLinkBench(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("linkbench", flag.ExitOnError)
	var o harness.LinkBenchOptions
	fs.StringVar(&o.Bin, "bin", "bin", "folder with the built programs")
	fs.StringVar(&o.Dir, "dir", ".linkbench", "working folder")
	fs.DurationVar(&o.RTT, "rtt", 100*time.Millisecond, "round trip of the emulated link")
	fs.Int64Var(&o.Rate, "rate", 20_000_000/8, "the link's cap, bytes per second each way")
	fs.IntVar(&o.Window, "window", 0, "the agent's window_files for the windowed runs; 0: the agent's default")
	fs.IntVar(&o.Lanes, "lanes", 0, "the agent's collector.lanes for the windowed runs; 0: the agent's default")
	fs.BoolVar(&o.NoPeer, "no-peer", false, "leave out the one-at-a-time runs of the image and form cases (quick trials)")
	fs.IntVar(&o.Images, "images", 4, "images per run")
	fs.Int64Var(&o.ImageSize, "image-size", 20<<20, "bytes per image")
	losses := fs.String("losses", "0,0.001,0.01", "loss probabilities (each way) of the image runs, comma-separated")
	fs.IntVar(&o.Docs, "docs", 2000, "small files of the windowed run")
	fs.IntVar(&o.PeerDocs, "peer-docs", 200, "small files of the one-at-a-time run")
	fs.Int64Var(&o.DocSize, "doc-size", 100<<10, "bytes per small file")
	fs.IntVar(&o.Forms, "forms", 20, "forms saved while the large image is in flight (P2)")
	fs.Int64Var(&o.BigSize, "big", 1<<30, "bytes of the large image of P2")
	fs.Int64Var(&o.MaxRate, "max-rate", 0, "the agent's max_rate, bytes per second; 0: none")
	cases := fs.String("cases", "images,docs,forms", "what to run, comma-separated")
	fs.DurationVar(&o.Timeout, "timeout", 15*time.Minute, "give up on a run after")
	fs.Parse(args)
	for _, v := range strings.Split(*losses, ",") {
		p, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil || p < 0 || p > 1 {
			return fmt.Errorf("linkbench: -losses: %q: want probabilities 0-1", v)
		}
		o.Losses = append(o.Losses, p)
	}
	o.Cases = strings.Split(*cases, ",")
	return harness.LinkBench(ctx, o, os.Stdout)
}

// runRelay puts an emulated bad link between agents and a collector: it
// prints the address the agents should dial and forwards until SIGTERM.
func runRelay(ctx context.Context, clk clock.Clock, args []string) error {
	fs := flag.NewFlagSet("relay", flag.ExitOnError)
	listen := fs.String("listen", "127.0.0.1:0", "UDP address the agents dial")
	upstream := fs.String("upstream", "", "the collector's QUIC address, host:port (required)")
	var cfg relay.Config
	fs.DurationVar(&cfg.Latency, "latency", 0, "one-way delay")
	fs.DurationVar(&cfg.Jitter, "jitter", 0, "uniform ± spread of each datagram's delay (reorders datagrams)")
	fs.Float64Var(&cfg.Loss, "loss", 0, "probability that a datagram is dropped, each direction")
	fs.Float64Var(&cfg.Reorder, "reorder", 0, "probability that a datagram is held back by -reorder-delay")
	fs.DurationVar(&cfg.ReorderDelay, "reorder-delay", 0, "extra delay of a held-back datagram (default: latency+jitter, at least 10ms)")
	fs.Int64Var(&cfg.Bandwidth, "bandwidth", 0, "bytes per second, each direction; 0: no cap")
	fs.IntVar(&cfg.MaxQueue, "queue", 0, "datagrams held per direction before tail drop (default 1024)")
	fs.DurationVar(&cfg.SessionIdle, "session-idle", 0, "forget a client idle this long, as a NAT does; 0: never")
	fs.Func("outage", "drop everything for FOR from AT after start, as AT+FOR, e.g. 30s+5s (repeatable)", func(v string) error {
		at, dur, ok := strings.Cut(v, "+")
		a, err1 := time.ParseDuration(at)
		d, err2 := time.ParseDuration(dur)
		if !ok || err1 != nil || err2 != nil {
			return fmt.Errorf("%q: want AT+FOR, e.g. 30s+5s", v)
		}
		cfg.Outages = append(cfg.Outages, relay.Outage{At: a, For: d})
		return nil
	})
	rebind := fs.Duration("rebind-every", 0, "give every client a new upstream port this often (NAT rebinding); 0: never")
	every := fs.Duration("stats", 10*time.Second, "print the counters to stderr this often; 0: only at the end")
	seed := fs.Uint64("seed", 1, "random seed: the same seed makes the same decisions")
	fs.Parse(args)
	if *upstream == "" {
		return fmt.Errorf("relay: -upstream is required")
	}
	r, err := relay.Listen(*listen, *upstream, cfg, rand.NewPCG(*seed, *seed))
	if err != nil {
		return err
	}
	defer r.Close()
	// The address alone on the first line, for scripts that let the
	// system pick the port.
	fmt.Println(r.Addr())
	var rebinds, stats <-chan time.Time
	if *rebind > 0 {
		t := clk.NewTicker(*rebind)
		defer t.Stop()
		rebinds = t.C()
	}
	if *every > 0 {
		t := clk.NewTicker(*every)
		defer t.Stop()
		stats = t.C()
	}
	for {
		select {
		case <-ctx.Done():
			fmt.Fprintf(os.Stderr, "relay: %+v\n", r.Stats())
			return nil
		case <-rebinds:
			if err := r.Rebind(); err != nil {
				fmt.Fprintln(os.Stderr, "relay: rebind:", err)
			}
		case <-stats:
			fmt.Fprintf(os.Stderr, "relay: %+v\n", r.Stats())
		}
	}
}
