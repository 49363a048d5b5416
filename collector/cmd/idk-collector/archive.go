package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"idk/collector/config"
	"idk/collector/store"
	"idk/internal/clock"
)

const archiveUsage = `usage:
  idk-collector archive status -config collector.toml
  idk-collector archive remove -month YYYY-MM -by NAME -config collector.toml

Images are kept at least %d years from the date of scanning (item 38).
status lists, per month of scan dates, the files and bytes the store holds
and whether the month is past that period; it removes nothing, and the
collector never removes anything on its own.
remove deletes one month past that period (it refuses a younger one): it
first writes a record of every file with its SHA-256 under
<store root>/%s/, which is kept, then removes the files and their index
entries, and logs who did it.
Both open the store's index themselves, which allows one process at a
time: stop the collector first.
`

// archiveCommand is `idk-collector archive status|remove`: the retention
// of stored images.
func archiveCommand(args []string, stdout, stderr io.Writer) int {
	return archiveRun(args, stdout, stderr, clock.Real())
}

// archiveRun is archiveCommand on clock clk, which decides what is past
// its retention period: tests set "now" with it.
func archiveRun(args []string, stdout, stderr io.Writer, clk clock.Clock) int {
	usage := func() { fmt.Fprintf(stderr, archiveUsage, store.RetentionYears, store.RetentionDir) }
	if len(args) == 0 || (args[0] != "status" && args[0] != "remove") {
		usage()
		return 2
	}
	verb := args[0]
	set := flag.NewFlagSet("idk-collector archive "+verb, flag.ContinueOnError)
	set.SetOutput(stderr)
	set.Usage = func() { usage(); set.PrintDefaults() }
	cfgPath := set.String("config", "collector.toml", "configuration file")
	month := set.String("month", "", "remove: the month of scan dates, YYYY-MM")
	by := set.String("by", "", "remove: who removes it (required; recorded and logged)")
	if err := set.Parse(args[1:]); err != nil {
		return 2
	}
	if set.NArg() > 0 {
		fmt.Fprintf(stderr, "idk-collector archive: unexpected %q\n", set.Arg(0))
		return 2
	}
	if verb == "remove" && (*month == "" || strings.TrimSpace(*by) == "") {
		fmt.Fprintln(stderr, "idk-collector archive remove: -month and -by are required")
		return 2
	}
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		fmt.Fprintln(stderr, "idk-collector archive:", err)
		return 2
	}
	loc, err := cfg.Location()
	if err != nil {
		fmt.Fprintln(stderr, "idk-collector archive:", err)
		return 2
	}
	// The log goes to stderr: the removal's line is for the operator's
	// terminal and whatever keeps the service's output.
	log := slog.New(slog.NewTextHandler(stderr, nil))
	ix, err := openIndexes(context.Background(), cfg, nil)
	if err != nil {
		fmt.Fprintln(stderr, "idk-collector archive:", err)
		return 2
	}
	defer ix.Close()
	st, err := ix.openStore(cfg, store.Options{Location: loc, Clock: clk, Log: log})
	if err != nil {
		fmt.Fprintf(stderr, "idk-collector archive: %v (is the collector running? stop it first)\n", err)
		return 2
	}
	defer st.Close()

	if verb == "status" {
		return archiveStatus(st, stdout, stderr)
	}
	rm, err := st.RemoveMonth(*month, *by)
	if errors.Is(err, store.ErrTooYoung) {
		fmt.Fprintln(stderr, "idk-collector archive remove:", err)
		return 1
	}
	if err != nil {
		fmt.Fprintln(stderr, "idk-collector archive remove:", err)
		return 2
	}
	if rm.Record == "" {
		fmt.Fprintf(stdout, "%s: nothing stored, nothing removed\n", rm.Month)
		return 0
	}
	fmt.Fprintf(stdout, "%s removed by %s: %d scans, %d files, %s; record of every file kept in %s\n",
		rm.Month, rm.By, rm.Scans, rm.Files, humanBytes(rm.Bytes), rm.Record)
	return 0
}

func archiveStatus(st *store.Store, stdout, stderr io.Writer) int {
	months, err := st.Months()
	if err != nil {
		fmt.Fprintln(stderr, "idk-collector archive status:", err)
		return 2
	}
	fmt.Fprintf(stdout, "%-8s %8s %14s  %s\n", "MONTH", "FILES", "BYTES", "RETENTION")
	var files, expiredFiles int
	var bytes, expiredBytes int64
	for _, m := range months {
		state := "kept until " + m.Removable.AddDate(0, 0, -1).Format("02.01.2006")
		if m.Expired {
			state = fmt.Sprintf("past %d years since %s: may be removed", store.RetentionYears, m.Removable.Format("02.01.2006"))
			expiredFiles += m.Files
			expiredBytes += m.Bytes
		}
		files += m.Files
		bytes += m.Bytes
		fmt.Fprintf(stdout, "%-8s %8d %14d  %s\n", m.Month, m.Files, m.Bytes, state)
	}
	fmt.Fprintf(stdout, "held: %d files, %s; past %d years: %d files, %s (nothing is removed without `archive remove`)\n",
		files, humanBytes(bytes), store.RetentionYears, expiredFiles, humanBytes(expiredBytes))
	return 0
}

// humanBytes writes n in binary units for people; the exact figure is in
// the table and the record.
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
