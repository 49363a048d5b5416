//go:build !windows

package main

import "context"

// isWindowsService is false off Windows: systemd and the shell run the
// agent as a console program, which stops on SIGTERM or Ctrl-C.
func isWindowsService() bool { return false }

// runService is never called off Windows, where isWindowsService is
// false; it exists so that main builds on every system.
func runService(string, func(context.Context) error) int { return 1 }
