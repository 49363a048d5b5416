package main

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/jackc/pgx/v5"

	"idk/collector/cases"
	"idk/collector/config"
	"idk/collector/kv"
	"idk/collector/leader"
	"idk/collector/region"
	"idk/collector/store"
	"idk/internal/clock"
)

// leaderJob is the name a region's collectors campaign under: the one
// elected serves the region (docs/scale-out.md).
const leaderJob = "collector"

// term is the election of a collector serving a region: its writes to
// the shared index are fenced by it.
type term struct{ n int64 }

// indexes are the index and the deadline engine's state, opened as the
// configuration says: a bbolt file each under store.root, or one
// PostgreSQL database for the region (region.postgres).
type indexes struct {
	back *region.Backends
	// shared is the region's index, nil on one machine: fenced by the
	// term when serving.
	shared kv.DB
}

// openIndexes connects to the region's backends, if any. t, if set,
// fences every write.
func openIndexes(ctx context.Context, cfg config.Config, t *term) (*indexes, error) {
	back, err := region.Open(ctx, cfg.Region)
	if err != nil {
		return nil, err
	}
	ix := &indexes{back: back}
	if back.Index != nil {
		db := back.Index
		if t != nil {
			db = db.Fenced(func(ctx context.Context, tx pgx.Tx) error { return leader.Fence(ctx, tx, leaderJob, t.n) })
		}
		ix.shared = db
	}
	return ix, nil
}

// Close closes the connections to the region's backends, after the store
// and the engine.
func (ix *indexes) Close() error { return ix.back.Close() }

// openStore opens the store over the configured index and files: its
// own under store.root, or the region's (region.postgres, region.s3).
func (ix *indexes) openStore(cfg config.Config, opt store.Options) (*store.Store, error) {
	if ix.shared != nil {
		opt.Index = kv.NoClose(ix.shared)
	}
	if ix.back.Files != nil {
		opt.Files = ix.back.Files
	}
	st, err := store.Open(cfg.Store.Root, opt)
	if err != nil {
		return nil, err
	}
	return st, nil
}

// openEngine opens the deadline engine: its own bbolt file beside the
// store's index, or its buckets (under "cases/") in the region's.
func (ix *indexes) openEngine(cfg config.Config, loc *time.Location, clk clock.Clock) (*cases.Engine, error) {
	if ix.shared != nil {
		e, err := cases.OpenDB(kv.Prefix(kv.NoClose(ix.shared), "cases/"), loc, clk)
		if err != nil {
			return nil, fmt.Errorf("cases: region.postgres: %w", err)
		}
		return e, nil
	}
	return cases.Open(filepath.Join(cfg.Store.Root, "cases.db"), loc, clk)
}
