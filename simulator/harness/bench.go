package harness

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// BenchOptions shape a benchmark run.
type BenchOptions struct {
	Dir      string
	Bin      string
	Files    int   // images for the throughput comparison
	FileSize int64 // bytes each
	BigSize  int64 // the image shipped for the memory figure
}

// Bench prints, from one run on the same files: the agent→collector
// throughput over loopback, plain cp + sha256sum as the local limit, their
// ratio, and the agent's peak RSS while shipping one very large image.
func Bench(ctx context.Context, opt BenchOptions, out io.Writer) error {
	if err := os.MkdirAll(opt.Dir, 0o755); err != nil {
		return err
	}
	env, err := NewEnv(opt.Dir, opt.Bin, Options{Agents: 2})
	if err != nil {
		return err
	}
	a, big := env.Agents[0], env.Agents[1]

	// The files, written before anything is timed.
	manifest := filepath.Join(env.Dir, "bench-manifest.jsonl")
	if err := env.writeScans(a, opt.Files, opt.FileSize, manifest); err != nil {
		return err
	}
	exp, err := ReadManifest(manifest)
	if err != nil {
		return err
	}
	var total int64
	var raws []string
	for snim, files := range exp {
		for name := range files {
			if !strings.HasSuffix(name, ".raw") {
				continue // the forms: a few kB, shipped too but not counted
			}
			p := filepath.Join(a.OutputDir, snim, name)
			fi, err := os.Stat(p)
			if err != nil {
				return err
			}
			total += fi.Size()
			raws = append(raws, p)
		}
	}

	// Local limit: copy every file and hash the copy, as a person would
	// move scans by hand. Same files, same (warm) page cache as the agent.
	copyDir := filepath.Join(env.Dir, "cp-target")
	os.MkdirAll(copyDir, 0o755)
	began := time.Now()
	for i, p := range raws {
		dst := filepath.Join(copyDir, strconv.Itoa(i)+"-"+filepath.Base(p))
		if out, err := exec.CommandContext(ctx, "cp", p, dst).CombinedOutput(); err != nil {
			return fmt.Errorf("bench: cp: %v: %s", err, out)
		}
		if out, err := exec.CommandContext(ctx, "sha256sum", dst).CombinedOutput(); err != nil {
			return fmt.Errorf("bench: sha256sum: %v: %s", err, out)
		}
	}
	cpTime := time.Since(began)
	os.RemoveAll(copyDir)

	coll, err := env.StartCollector()
	if err != nil {
		return err
	}
	defer coll.Stop()
	began = time.Now()
	agent, err := env.StartAgent(0)
	if err != nil {
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, 15*time.Minute)
	defer cancel()
	rep, err := env.WaitStored(wctx, exp, agent, coll)
	shipTime := time.Since(began)
	agent.Stop()
	if err != nil {
		return err
	}
	if !rep.OK() {
		return fmt.Errorf("bench: %s", rep)
	}

	// Memory: one very large image through a fresh agent.
	bigManifest := filepath.Join(env.Dir, "bench-big.jsonl")
	if err := env.writeScans(big, 1, opt.BigSize, bigManifest); err != nil {
		return err
	}
	bigExp, err := ReadManifest(bigManifest)
	if err != nil {
		return err
	}
	bigAgent, err := env.StartAgent(1)
	if err != nil {
		return err
	}
	bigBegan := time.Now()
	if _, err := env.WaitStored(wctx, bigExp, bigAgent, coll); err != nil {
		bigAgent.Kill()
		return err
	}
	bigTime := time.Since(bigBegan)
	rss, rssErr := PeakRSS(bigAgent.Pid())
	bigAgent.Stop()

	mbps := func(n int64, d time.Duration) float64 { return float64(n) / 1e6 / d.Seconds() }
	fmt.Fprintf(out, "\nbench: %d images of %.0f MB (%.0f MB), loopback, this machine\n", len(raws), float64(opt.FileSize)/1e6, float64(total)/1e6)
	fmt.Fprintf(out, "%-44s %8.1f MB/s  (%.2f s)\n", "cp + sha256sum (local limit):", mbps(total, cpTime), cpTime.Seconds())
	fmt.Fprintf(out, "%-44s %8.1f MB/s  (%.2f s)\n", "agent -> collector, QUIC+mTLS, verified:", mbps(total, shipTime), shipTime.Seconds())
	fmt.Fprintf(out, "%-44s %8.2f\n", "ratio agent / local limit:", mbps(total, shipTime)/mbps(total, cpTime))
	fmt.Fprintf(out, "%-44s %8.1f MB/s  (%.2f s)\n", fmt.Sprintf("one %.1f GiB image shipped:", float64(opt.BigSize)/(1<<30)), mbps(opt.BigSize, bigTime), bigTime.Seconds())
	if rssErr != nil {
		fmt.Fprintf(out, "%-44s unavailable: %v\n", "agent peak RSS:", rssErr)
	} else {
		verdict := "OK, under the 60 MB target"
		if rss >= 60<<20 {
			verdict = "OVER the 60 MB target"
		}
		fmt.Fprintf(out, "%-44s %8.1f MB  (%s)\n", "agent peak RSS (VmHWM) shipping it:", float64(rss)/(1<<20), verdict)
	}
	return nil
}

// writeScans runs idk-sim scanner for agent a with fixed-size images and
// no documents, so the byte count is all image.
func (e *Env) writeScans(a Agent, n int, size int64, manifest string) error {
	p, err := e.Start("scanner-"+a.NumIDK, "idk-sim", "scanner", "-out", a.OutputDir, "-num-idk", a.NumIDK,
		"-scans", strconv.Itoa(n), "-raw-min", strconv.FormatInt(size, 10), "-raw-max", strconv.FormatInt(size, 10),
		"-docs", "0", "-manifest", manifest)
	if err != nil {
		return err
	}
	<-p.done
	if p.err != nil {
		return fmt.Errorf("bench: scanner: %v (see %s.log)", p.err, filepath.Join(e.Dir, p.Name))
	}
	return nil
}
