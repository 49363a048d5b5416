package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"idk/collector/blob"
	"idk/collector/config"
	"idk/collector/kv/pgkv"
	"idk/collector/migrate"
	"idk/collector/region"
)

const migrateUsage = `usage: idk-collector migrate -config collector.toml [-to postgres] [-files s3|s3://BUCKET/PREFIX] [-force] [-workers N] [-batch N]

Moves the history of a collector that keeps everything to itself (index.db,
cases.db and the files under store.root) into the backends of [region]:
  -to postgres     the index and the deadline engine's cases into region.postgres
  -files s3        the files into the bucket of region.s3
  -files s3://BUCKET/PREFIX   the same, into another bucket or prefix
Either or both. The collector must be stopped. Nothing under store.root is
changed; a run stopped half-way continues where it stopped when run again.
Everything is verified at the end (every key, every file's SHA-256).
Exit status 0: all moved and verified; 1: something did not verify (listed);
2: it could not run.

`

// migrateCommand moves an embedded collector's history to the region's
// shared backends (package migrate does it):
//
//	idk-collector migrate -config collector.toml -to postgres -files s3
func migrateCommand(args []string, stdout, stderr io.Writer) int {
	set := flag.NewFlagSet("idk-collector migrate", flag.ContinueOnError)
	set.SetOutput(stderr)
	set.Usage = func() {
		fmt.Fprint(stderr, migrateUsage)
		set.PrintDefaults()
	}
	cfgPath := set.String("config", "collector.toml", "configuration file")
	to := set.String("to", "", `where the index goes: "postgres" (region.postgres)`)
	files := set.String("files", "", `where the files go: "s3" (region.s3), or s3://BUCKET/PREFIX`)
	force := set.Bool("force", false, "merge into a destination that holds another collector's index; accept an index.db not closed cleanly")
	workers := set.Int("workers", migrate.DefaultWorkers, "files hashed and sent at once")
	batch := set.Int("batch", migrate.DefaultBatchKeys, "index keys per destination transaction")
	if err := set.Parse(args); err != nil {
		return 2
	}
	fail := func(err error) int {
		fmt.Fprintln(stderr, "idk-collector migrate:", err)
		return 2
	}
	if set.NArg() > 0 {
		return fail(fmt.Errorf("unexpected arguments %q", set.Args()))
	}
	if *to == "" && *files == "" {
		set.Usage()
		return 2
	}
	if *to != "" && *to != "postgres" {
		return fail(fmt.Errorf("-to %q: want postgres", *to))
	}
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		return fail(err)
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	mc := migrate.Config{Root: cfg.Store.Root, Force: *force, Workers: *workers, BatchKeys: *batch, Log: log}
	if *to != "" {
		if cfg.Region.Postgres == "" {
			return fail(errors.New("-to postgres: region.postgres is not set in " + *cfgPath))
		}
		dsn, err := region.PostgresDSN(cfg.Region)
		if err != nil {
			return fail(err)
		}
		db, err := pgkv.Open(ctx, dsn)
		if err != nil {
			return fail(fmt.Errorf("region.postgres: %w", err))
		}
		defer db.Close()
		mc.Index = db
	}
	if *files != "" {
		s3, err := filesDestination(cfg.Region.S3, *files)
		if err != nil {
			return fail(err)
		}
		mc.Files = s3
	}

	sum, err := migrate.Run(ctx, mc)
	for _, p := range sum.Problems {
		fmt.Fprintln(stdout, "PROBLEM", p)
	}
	if err != nil {
		fmt.Fprintf(stderr, "idk-collector migrate: %v\n", err)
		if errors.Is(err, migrate.ErrRunning) || errors.Is(err, migrate.ErrForeign) || errors.Is(err, migrate.ErrUnclean) {
			return 2
		}
		fmt.Fprintln(stderr, "idk-collector migrate: stopped before the end; run it again to continue")
		return 2
	}
	fmt.Fprintf(stdout, "%d buckets, %d keys; %d files, %d bytes (%d files, %d bytes sent now); %d problems; took %v\n",
		sum.Buckets, sum.Keys, sum.Files, sum.Bytes, sum.Uploaded, sum.UploadedBytes, len(sum.Problems), sum.Took.Round(time.Millisecond))
	if !sum.OK() {
		return 1
	}
	return 0
}

// filesDestination is the bucket of region.s3, or of the s3://BUCKET/PREFIX
// given instead.
func filesDestination(s config.S3, where string) (*blob.S3, error) {
	if s.Endpoint == "" {
		return nil, errors.New("-files: region.s3.endpoint is not set")
	}
	switch {
	case where == "s3":
	case strings.HasPrefix(where, "s3://"):
		bucket, prefix, _ := strings.Cut(strings.TrimPrefix(where, "s3://"), "/")
		if bucket == "" {
			return nil, fmt.Errorf("-files %q: no bucket", where)
		}
		// The prefix is a folder above the tree's paths.
		if prefix != "" && !strings.HasSuffix(prefix, "/") {
			prefix += "/"
		}
		s.Bucket, s.Prefix = bucket, prefix
	default:
		return nil, fmt.Errorf("-files %q: want s3 or s3://BUCKET/PREFIX", where)
	}
	c, err := region.S3Config(s)
	if err != nil {
		return nil, err
	}
	st, err := blob.NewS3(c)
	if err != nil {
		return nil, fmt.Errorf("region.s3: %w", err)
	}
	return st, nil
}
