// Command idk-sim plays scanners without hardware.
//
//	idk-sim scanner -out DIR -num-idk N -scans 20     write CargoRIW-style scans
//	idk-sim demo -bin bin -dir .demo -scans 20        collector + agent + scanner, verified
//	idk-sim bench -bin bin -dir .bench                throughput and memory figures
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"idk/simulator/harness"
	"idk/simulator/scanner"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch os.Args[1] {
	case "scanner":
		err = runScanner(ctx, os.Args[2:])
	case "demo":
		err = runDemo(ctx, os.Args[2:])
	case "bench":
		err = runBench(ctx, os.Args[2:])
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "idk-sim:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: idk-sim scanner|demo|bench [flags]   (idk-sim <command> -h for flags)")
	os.Exit(2)
}

func runScanner(ctx context.Context, args []string) error {
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
		RawPerScan: *raws, DocsPerScan: *docs, Seed: *seed, SuspectRatio: 0.2}, nil)
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
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(*interval):
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
