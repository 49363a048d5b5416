package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"

	"idk/collector/config"
	"idk/collector/store"
)

// checkCommand re-hashes every stored file and reports each disagreement
// between the index and the disk:
//
//	idk-collector check -config collector.toml
//
// It opens the index itself, so the collector must be stopped (the index
// has one writer). Exit status 0: all agree; 1: disagreements listed; 2: it
// could not run.
func checkCommand(args []string, stdout, stderr io.Writer) int {
	set := flag.NewFlagSet("idk-collector check", flag.ContinueOnError)
	set.SetOutput(stderr)
	cfgPath := set.String("config", "collector.toml", "configuration file")
	if err := set.Parse(args); err != nil {
		return 2
	}
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		fmt.Fprintln(stderr, "idk-collector check:", err)
		return 2
	}
	loc, err := cfg.Location()
	if err != nil {
		fmt.Fprintln(stderr, "idk-collector check:", err)
		return 2
	}
	// The region's backends, if the configuration names them: a region's
	// index and bucket may be checked while its collectors run.
	ix, err := openIndexes(context.Background(), cfg, nil)
	if err != nil {
		fmt.Fprintln(stderr, "idk-collector check:", err)
		return 2
	}
	defer ix.Close()
	st, err := ix.openStore(cfg, store.Options{Location: loc, Log: slog.New(slog.NewTextHandler(stderr, nil))})
	if err != nil {
		fmt.Fprintf(stderr, "idk-collector check: %v (is the collector running? stop it first)\n", err)
		return 2
	}
	defer st.Close()
	bad := 0
	n, err := st.Check(func(p store.Problem) {
		bad++
		switch p.What {
		case "missing":
			fmt.Fprintf(stdout, "MISSING    %s (index: sha256 %s)\n", p.Path, p.Want)
		case "unindexed":
			fmt.Fprintf(stdout, "UNINDEXED  %s (on disk, not in the index)\n", p.Path)
		default:
			fmt.Fprintf(stdout, "CHANGED    %s (%s: index %s, disk %s)\n", p.Path, p.What, p.Want, p.Got)
		}
	})
	if err != nil {
		fmt.Fprintln(stderr, "idk-collector check:", err)
		return 2
	}
	fmt.Fprintf(stdout, "%d files checked, %d disagreements\n", n, bad)
	if bad > 0 {
		return 1
	}
	return 0
}
