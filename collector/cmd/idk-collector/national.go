package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"idk/collector/national"
	"idk/internal/atomicfile"
)

// nationalCommand is the FTS level: it pulls the regions' reports from
// their collectors and adds their monthly summaries up (package national):
//
//	idk-collector national pull -config national.toml -month 2026-11
//	idk-collector national pull -config national.toml -date 2026-11-27
//	idk-collector national summary -config national.toml -month 2026-11 [-o FILE.xlsx|FILE.json]
//
// Exit status 0: every region done; 1: a region failed (pull) or has no
// pulled summary (summary), named on the standard error, the others done;
// 2: it could not run.
func nationalCommand(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || (args[0] != "pull" && args[0] != "summary") {
		fmt.Fprintln(stderr, "usage: idk-collector national <pull|summary> -config national.toml [-month 2026-11] [-date 2026-11-27] [-o FILE]")
		return 2
	}
	verb := args[0]
	fs := flag.NewFlagSet("idk-collector national "+verb, flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "national.toml", "configuration file")
	month := fs.String("month", "", "the month: 2026-11 or 11.2026")
	date := fs.String("date", "", "with pull: the day whose daily reports to pull: 2026-11-27 or 27.11.2026")
	out := fs.String("o", "", "with summary: the file to write, .xlsx or .json (default: JSON on the standard output)")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "idk-collector national %s: unexpected %q\n", verb, fs.Args())
		return 2
	}
	fail := func(err error) int {
		fmt.Fprintf(stderr, "idk-collector national %s: %v\n", verb, err)
		return 2
	}
	cfg, err := national.Load(*cfgPath)
	if err != nil {
		return fail(err)
	}
	if verb == "pull" {
		if (*month == "") == (*date == "") || *out != "" {
			return fail(fmt.Errorf("give one of -month 2026-11 or -date 2026-11-27, and no -o"))
		}
		var target national.Target
		if *month != "" {
			target, err = national.MonthTarget(*month)
		} else {
			target, err = national.DayTarget(*date)
		}
		if err != nil {
			return fail(err)
		}
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		log := slog.New(slog.NewTextHandler(stderr, nil))
		res := national.Pull(ctx, cfg, target, log)
		for _, r := range res {
			for _, f := range r.Files {
				state := "unchanged"
				if f.Changed {
					state = "new"
				}
				if f.Kept != "" {
					state += ", the one before kept as " + f.Kept
				}
				version := ""
				if f.RegionVersion != "" {
					version = " version " + f.RegionVersion
				}
				fmt.Fprintf(stdout, "%s: %s%s, %d bytes, sha256 %s (%s)\n", r.Region, filepath.Join(cfg.Dir, r.Region, target.Month, f.Name), version, f.Size, f.SHA256, state)
			}
			if r.Err != nil {
				fmt.Fprintf(stdout, "%s: FAILED: %v\n", r.Region, r.Err)
			}
		}
		if failed := res.Failed(); len(failed) > 0 {
			fmt.Fprintf(stderr, "idk-collector national pull: %d of %d regions failed: %s\n", len(failed), len(res), strings.Join(failed, ", "))
			return 1
		}
		return 0
	}
	if *month == "" || *date != "" {
		return fail(fmt.Errorf("give -month 2026-11 (and no -date)"))
	}
	s, err := national.BuildSummary(cfg.Dir, *month, cfg.RegionNames())
	if err != nil {
		return fail(err)
	}
	var buf bytes.Buffer
	if strings.EqualFold(filepath.Ext(*out), ".xlsx") {
		err = s.WriteXLSX(&buf)
	} else {
		err = s.WriteJSON(&buf)
	}
	if err != nil {
		return fail(err)
	}
	if *out == "" {
		stdout.Write(buf.Bytes())
	} else if err := atomicfile.WriteFile(*out, buf.Bytes(), 0o644); err != nil {
		return fail(err)
	} else {
		fmt.Fprintf(stdout, "%s: %d regions, KOL_VO_SNIM %s\n", *out, len(s.Regions), s.Total["KOL_VO_SNIM"])
	}
	if len(s.Missing) > 0 {
		fmt.Fprintf(stderr, "idk-collector national summary: no summary of %s pulled from %s: the total lacks them\n", s.Month, strings.Join(s.Missing, ", "))
		return 1
	}
	return 0
}
