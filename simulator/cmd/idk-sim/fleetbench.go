package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"idk/simulator/harness"
)

// runFleetBench is P5 of issue 14: a fleet of virtual ИДК in this process
// against one real collector, with the collector's CPU and memory and
// the goal line "lost 0".
func runFleetBench(ctx context.Context, args []string) error {
	flags := flag.NewFlagSet("fleetbench", flag.ExitOnError)
	var o harness.FleetBenchOptions
	flags.StringVar(&o.Bin, "bin", "bin", "folder with the built programs (idk-collector is run from it)")
	flags.StringVar(&o.Dir, "dir", ".fleetbench", "working folder (certificates, spools, scans, the collector's data, logs)")
	flags.IntVar(&o.IDK, "idk", 300, "virtual ИДК")
	flags.DurationVar(&o.Duration, "duration", 10*time.Minute, "how long the ИДК produce scans, forms and telemetry")
	flags.IntVar(&o.BusyDayScans, "busy-day", 300, "scans of one ИДК on a busy day (an assumption: the reference gives no figure)")
	flags.Float64Var(&o.Speedup, "speedup", 10, "busy days played per day")
	flags.Int64Var(&o.RawSize, "raw-size", 64<<10, "bytes of each scan's RAW image (small: the work measured is per file and per event)")
	flags.DurationVar(&o.Drain, "drain", 5*time.Minute, "time allowed after production for every spool to empty")
	flags.Parse(args)
	if err := freshDir(o.Dir); err != nil {
		return err
	}
	res, err := harness.FleetBench(ctx, o, os.Stdout)
	if err != nil {
		return err
	}
	if n := res.LostCount(); n > 0 {
		return fmt.Errorf("fleetbench: lost %d", n)
	}
	return nil
}

// freshDir makes sure dir holds nothing of another run, whose spools and
// collector data would count twice: a previous fleet bench's folder (it
// has fleet.log) is removed, any other folder with something in it is
// refused rather than emptied.
func freshDir(dir string) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) || (err == nil && len(entries) == 0) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("fleetbench: %w", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "fleet.log")); err != nil {
		return fmt.Errorf("fleetbench: %s is not empty and not a previous fleet bench's folder; give an empty or new -dir", dir)
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("fleetbench: removing the previous run: %w", err)
	}
	return nil
}
