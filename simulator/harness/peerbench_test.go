package harness

import (
	"bytes"
	"context"
	"encoding/hex"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"idk/internal/filehash"
)

// The bare quic-go peer of peerbench moves three small images whole, and
// the run prints its line and the goal line it feeds. Only the quic peer
// runs, so neither ssh nor nginx is needed. The project runs twice, over
// QUIC and over its TLS/TCP fallback.
func TestPeerBenchQUIC(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var out bytes.Buffer
	err := PeerBench(ctx, PeerBenchOptions{Dir: dir, Bin: bin, Files: 3, FileSize: 3 << 20,
		Peers: []string{"quic"}, Timeout: 2 * time.Minute, Keep: true}, &out)
	t.Log(out.String())
	if err != nil {
		logs, _ := filepath.Glob(filepath.Join(dir, "*.log"))
		for _, l := range logs {
			b, _ := os.ReadFile(l)
			t.Logf("==== %s\n%s", filepath.Base(l), b)
		}
		t.Fatal(err)
	}

	// Every image the scanner wrote is in the receiver's folder, byte for
	// byte: checked here again, apart from PeerBench's own check.
	exp, err := ReadManifest(filepath.Join(dir, "peerbench-manifest.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	images := 0
	for _, names := range exp {
		for name, sum := range names {
			if !strings.HasSuffix(name, ".raw") {
				continue
			}
			images++
			got, _, err := filehash.File(filepath.Join(dir, "peer-quic", name))
			if err != nil {
				t.Fatalf("%s did not arrive: %v", name, err)
			}
			if hex.EncodeToString(got) != sum {
				t.Errorf("%s arrived altered: sha256 %x, want %s", name, got, sum)
			}
		}
	}
	if images != 3 {
		t.Fatalf("%d images in the manifest, want 3", images)
	}

	report := out.String()
	for _, re := range []string{
		`(?m)^goal: project >= 0\.8 x bare quic-go\s+project/peer = \d+\.\d\d  (met|NOT met)$`,
		`(?m)^goal: project >= 1\.0 x scp\s+not measured`,
		`(?m)^project: idk-agent -> idk-collector\s+\d+\.\d\s+1\.00\s+\d+\.\d\d\s+\d+\.\d\d$`,
		`(?m)^project over TLS/TCP \(fallback\)\s+\d+\.\d\s+\d+\.\d\d\s+\d+\.\d\d\s+\d+\.\d\d$`,
		`(?m)^bare quic-go, mTLS, hash \+ fsync\s+\d+\.\d\s+\d+\.\d\d\s+\d+\.\d\d\s+\d+\.\d\d$`,
	} {
		if !regexp.MustCompile(re).MatchString(report) {
			t.Errorf("report lacks a line matching %s", re)
		}
	}
	if regexp.MustCompile(`(?m)^(scp|rsync|HTTPS PUT) `).MatchString(report) {
		t.Error("report has a line of a peer left out by -peers")
	}
}
