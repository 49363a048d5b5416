//go:build windows

package main

import (
	"context"
	"flag"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"time"

	"golang.org/x/sys/windows/svc"

	"idk/internal/clock"
)

// serviceName is the name deploy/windows/install-agent.ps1 registers.
// Windows ignores the name a service with a process of its own passes to
// the dispatcher, so a mismatch would not break anything; it is kept equal
// for the reader.
const serviceName = "idk-agent"

const (
	// logMaxSize caps the log file. An agent whose collector is away
	// logs a retry every half minute or so, which adds up over the months
	// a scanner PC runs unattended.
	logMaxSize = 10 << 20
	// logCheckEvery is how often the size is checked.
	logCheckEvery = time.Minute
	// stopWaitHint tells the service manager how long a stop may take
	// before it should consider the service hung: closing the connection
	// and the spool takes far less.
	stopWaitHint = 30 * time.Second
)

var logFile = flag.String("log-file", "",
	"log `file` when run as a Windows service (default: idk-agent.log next to the configuration file)")

// isWindowsService reports whether the Service Control Manager started this
// process. An error means it cannot tell, and then the agent runs as a
// console program, which at worst logs to a console no one sees.
func isWindowsService() bool {
	ok, err := svc.IsWindowsService()
	return err == nil && ok
}

// runService runs agent under the Service Control Manager until it asks
// the service to stop or the agent fails, and returns the process exit
// code. A service has no console and receives no signals: logs go to a
// file, and a Stop or Shutdown request cancels agent's context.
func runService(cfgPath string, agent func(context.Context) error) int {
	path := *logFile
	if path == "" {
		path = filepath.Join(filepath.Dir(cfgPath), "idk-agent.log")
	}
	// Shipping scans matters more than logging: if the log cannot be
	// opened, the agent still runs, with its log lost.
	if f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644); err == nil {
		defer f.Close()
		// The agent's logger takes os.Stderr when it is made, so
		// everything the agent logs lands here; crash reports too.
		os.Stderr = f
		debug.SetCrashOutput(f, debug.CrashOptions{})
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go capLog(ctx, path)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil)).With("part", "service")
	h := &handler{agent: agent, log: log}
	if err := svc.Run(serviceName, h); err != nil {
		log.Error("service manager refused the service", "err", err)
		return 1
	}
	return h.code
}

// capLog keeps the log file near logMaxSize, setting the full one aside
// as path.1 (replacing the previous one), until ctx is done.
func capLog(ctx context.Context, path string) {
	clock.Every(ctx, clock.Real(), logCheckEvery, func() {
		if fi, err := os.Stat(path); err == nil && fi.Size() > logMaxSize {
			// Errors are dropped: the log is where they would go.
			_ = rotateLog(path)
		}
	})
}

// rotateLog copies the log to path.1 and empties it. Renaming would lose
// no lines, but Windows refuses to rename a file that is open, and this
// process keeps it open as stderr and crash output; writes are appends, so
// they continue at the start of the emptied file. A line written between
// the copy and the truncation is lost, which at one check a minute is rare.
func rotateLog(path string) error {
	src, err := os.Open(path)
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := os.Create(path + ".1")
	if err != nil {
		return err
	}
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		return err
	}
	if err := dst.Close(); err != nil {
		return err
	}
	return os.Truncate(path, 0)
}

// handler is the agent as a svc.Handler.
type handler struct {
	agent func(context.Context) error
	log   *slog.Logger
	code  int // process exit code, set by Execute
}

// Execute runs the agent and answers the service manager's requests.
func (h *handler) Execute(_ []string, req <-chan svc.ChangeRequest, status chan<- svc.Status) (svcSpecific bool, exitCode uint32) {
	status <- svc.Status{State: svc.StartPending}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- h.agent(ctx) }()
	status <- svc.Status{State: svc.Running, Accepts: svc.AcceptStop | svc.AcceptShutdown}
	h.log.Info("service running")

	stopping := false
	for {
		select {
		case err := <-done:
			if stopping {
				if err != nil {
					h.log.Error("agent stopped with an error", "err", err)
				}
				h.log.Info("service stopped")
				return false, 0
			}
			// The agent stops only when asked to, so this is a failure.
			// A service-specific exit code makes the service manager
			// count it as one (with 'sc.exe failureflag idk-agent 1', as
			// install-agent.ps1 sets) and apply the recovery actions.
			h.log.Error("agent stopped unexpectedly", "err", err)
			h.code = 1
			return true, 1
		case c := <-req:
			switch c.Cmd {
			case svc.Interrogate:
				status <- c.CurrentStatus
			case svc.Stop, svc.Shutdown:
				if !stopping {
					// Keep answering requests while the agent winds
					// down, instead of blocking the service manager.
					stopping = true
					h.log.Info("stop requested by the service manager")
					status <- svc.Status{State: svc.StopPending, WaitHint: uint32(stopWaitHint / time.Millisecond)}
					cancel()
				}
			}
		}
	}
}
