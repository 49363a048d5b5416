// Package logging builds the daemons' loggers from the [log] settings that
// the agent's and the collector's configurations share.
package logging

import (
	"io"
	"log/slog"
)

// Config is the [log] section of a daemon's configuration.
type Config struct {
	Level  string `toml:"level"`  // debug, info, warn or error
	Format string `toml:"format"` // text or json
}

// New returns a logger that writes to w at c's level, as JSON if c.Format
// is "json" and as text otherwise. The configuration packages reject other
// values when they load a file, so an unknown level here falls back to
// info rather than failing a daemon that is already starting.
func New(w io.Writer, c Config) *slog.Logger {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.Level)); err != nil {
		level = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
