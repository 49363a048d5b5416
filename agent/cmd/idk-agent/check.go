package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"

	"idk/agent/check"
)

const checkUsage = `usage: idk-agent check [-config agent.toml]

Diagnoses this installation, one line per check, in Russian and English:
the configuration, the scanner's output folder, the spool, the controller
and GPS receiver if configured, the certificates, the collector (a real
connection and hello) and the clock. Exit code 0 if nothing failed
(warnings pass), 1 otherwise. Safe while the agent runs: its spool is only
looked at, and the agent reconnects at once after the check's hello.`

// checkCommand runs idk-agent check.
func checkCommand(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "agent.toml", "the agent's configuration file")
	fs.Usage = func() { fmt.Fprintln(stderr, checkUsage); fs.PrintDefaults() }
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "idk-agent: check: unexpected %q\n", fs.Arg(0))
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	report := check.Run(ctx, *cfgPath, check.Options{Version: version})
	report.Print(stdout)
	if !report.Passed() {
		return 1
	}
	return 0
}
