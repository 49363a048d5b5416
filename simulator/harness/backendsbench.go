package harness

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"time"
)

// BackendsBenchOptions shape a BackendsBench run.
type BackendsBenchOptions struct {
	Dir, Bin  string
	Images    int   // default 4
	ImageSize int64 // bytes each; default 64 MiB
	Docs      int   // small files; default 300
	DocSize   int64 // bytes each; default 100 KiB
	Timeout   time.Duration
}

func (o *BackendsBenchOptions) defaults() {
	if o.Images <= 0 {
		o.Images = 4
	}
	if o.ImageSize <= 0 {
		o.ImageSize = 64 << 20
	}
	if o.Docs <= 0 {
		o.Docs = 300
	}
	if o.DocSize <= 0 {
		o.DocSize = 100 << 10
	}
	if o.Timeout <= 0 {
		o.Timeout = 15 * time.Minute
	}
}

// backendsCase is one line of BackendsBench.
type backendsCase struct {
	files    int
	bytes    int64
	took     time.Duration
	collCPU  time.Duration
	notRun   string // why the case was not measured
	backends string
}

// BackendsBench is issue 15's figure: the same kind of files shipped by
// one agent to a collector on each backend, embedded (bbolt and local
// files) and the region's (PostgreSQL and S3, on versitygw here), in one
// run, with throughput and the collector's CPU per GB side by side and
// the region's as a ratio to the embedded. Large images show the data
// path (S3 multipart with SHA-256 checked by the server); many small
// documents show the per-file work (index transactions in PostgreSQL).
// Without the region's servers (make services) its lines say so.
func BackendsBench(ctx context.Context, opt BackendsBenchOptions, out io.Writer) error {
	opt.defaults()
	if err := os.MkdirAll(opt.Dir, 0o755); err != nil {
		return err
	}
	type kind struct {
		name  string
		n     int
		size  int64
		label string
	}
	kinds := []kind{
		{"images", opt.Images, opt.ImageSize, fmt.Sprintf("%d images of %.0f MiB", opt.Images, float64(opt.ImageSize)/(1<<20))},
		{"docs", opt.Docs, opt.DocSize, fmt.Sprintf("%d documents of %.0f KiB", opt.Docs, float64(opt.DocSize)/(1<<10))},
	}
	fmt.Fprintf(out, "\nbackendsbench: one agent -> one collector over loopback QUIC, %d CPUs; region = PostgreSQL + S3 (versitygw) on this machine\n\n", runtime.NumCPU())
	fmt.Fprintf(out, "%-26s %-9s %9s %9s %14s %16s\n", "case", "backends", "MB/s", "files/s", "region/embedded", "collector CPU s/GB")
	for _, k := range kinds {
		var emb backendsCase
		for _, b := range []string{Embedded, Region} {
			c := backendsCase{backends: b}
			if b == Region && !RegionReady() {
				c.notRun = "not measured: no PostgreSQL and S3 (make services; . .services/env)"
			} else {
				var err error
				if c, err = runBackendsCase(ctx, filepath.Join(opt.Dir, k.name+"-"+b), opt, b, k.n, k.size); err != nil {
					return fmt.Errorf("backendsbench: %s on %s: %w", k.name, b, err)
				}
			}
			if b == Embedded {
				emb = c
			}
			if c.notRun != "" {
				fmt.Fprintf(out, "%-26s %-9s %s\n", k.label, b, c.notRun)
				continue
			}
			mbps := float64(c.bytes) / 1e6 / c.took.Seconds()
			ratio := mbps / (float64(emb.bytes) / 1e6 / emb.took.Seconds())
			fmt.Fprintf(out, "%-26s %-9s %9.1f %9.1f %14.2f %16.2f\n", k.label, b, mbps,
				float64(c.files)/c.took.Seconds(), ratio, c.collCPU.Seconds()/(float64(c.bytes)/1e9))
		}
	}
	fmt.Fprint(out, `
timed from the agent's start to the last file in the collector's index; collector CPU: user + system seconds of the
collector process over that time (PostgreSQL's and versitygw's own CPU not counted: they are the region's servers).
`)
	return nil
}

func runBackendsCase(ctx context.Context, dir string, opt BackendsBenchOptions, backends string, n int, size int64) (backendsCase, error) {
	c := backendsCase{backends: backends}
	env, err := NewEnv(dir, opt.Bin, Options{Agents: 1, Backends: backends})
	if err != nil {
		return c, err
	}
	a := env.Agents[0]
	manifest := filepath.Join(env.Dir, "manifest.jsonl")
	if err := env.writeScans(a, n, size, manifest); err != nil {
		return c, err
	}
	exp, err := ReadManifest(manifest)
	if err != nil {
		return c, err
	}
	coll, err := env.StartCollector()
	if err != nil {
		return c, err
	}
	defer coll.Stop()
	before, _, err := treeCPU(coll.Pid())
	if err != nil {
		return c, err
	}
	wctx, cancel := context.WithTimeout(ctx, opt.Timeout)
	defer cancel()
	began := time.Now()
	agent, err := env.StartAgent(0)
	if err != nil {
		return c, err
	}
	defer agent.Stop()
	// The listing only while timing: hashing what is stored meanwhile
	// would take CPU from the programs measured.
	if err := waitImagesListed(wctx, env, exp, agent, coll); err != nil {
		return c, err
	}
	c.took = time.Since(began)
	after, _, err := treeCPU(coll.Pid())
	if err != nil {
		return c, err
	}
	rep, err := env.WaitStored(wctx, exp, agent, coll)
	if err != nil {
		return c, err
	}
	if !rep.OK() {
		return c, fmt.Errorf("%s", rep)
	}
	c.files, c.bytes, c.collCPU = rep.Files, rep.Bytes, after-before
	os.RemoveAll(dir)
	return c, nil
}
