package main

import (
	"bytes"
	"crypto/sha256"
	"hash/crc32"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"idk/collector/store"
	"idk/protocol/idkpb"
	"idk/simulator/simclock"
)

// archiveFixture writes a collector configuration whose store holds one
// file scanned on 15 October 2023 and one on 3 March 2025, and returns
// the configuration's path and the store's root.
func archiveFixture(t *testing.T) (cfgPath, root string) {
	t.Helper()
	dir := t.TempDir()
	root = filepath.Join(dir, "data")
	msk := time.FixedZone("MSK", 3*3600)
	st, err := store.Open(root, store.Options{Location: msk})
	if err != nil {
		t.Fatal(err)
	}
	dev := &idkpb.Device{NumIdk: "850591", KodTo: "10216100"}
	for _, f := range []struct {
		numSnim string
		at      time.Time
	}{{"202310150001", time.Date(2023, 10, 15, 12, 0, 0, 0, msk)}, {"202503030001", time.Date(2025, 3, 3, 12, 0, 0, 0, msk)}} {
		data := []byte("raw image of " + f.numSnim)
		sum := sha256.Sum256(data)
		o := &idkpb.FileOffer{NumSnim: f.numSnim, Name: f.numSnim + "_1.raw", Kind: idkpb.FileKind_FILE_KIND_RAW, Size: uint64(len(data)), Sha256: sum[:]}
		up, _, err := st.Offer(dev, o, f.at)
		if err != nil {
			t.Fatal(err)
		}
		if err := up.Write(&idkpb.Chunk{Data: data, Crc32C: crc32.Checksum(data, crc32.MakeTable(crc32.Castagnoli))}); err != nil {
			t.Fatal(err)
		}
		if _, err := up.Commit(sum[:]); err != nil {
			t.Fatal(err)
		}
		up.Close()
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	cfgPath = filepath.Join(dir, "collector.toml")
	cfg := `[listen]
quic = "127.0.0.1:0"
[api]
corrections_token_file = "corrections.token"
[report]
dir = "reports"
[store]
root = "data"
timezone = "Europe/Moscow"
`
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return cfgPath, root
}

func runArchive(clk *simclock.Clock, args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := archiveRun(args, &out, &errb, clk)
	return code, out.String(), errb.String()
}

func TestArchiveCommand(t *testing.T) {
	cfg, root := archiveFixture(t)
	msk := time.FixedZone("MSK", 3*3600)
	clk := simclock.New(time.Date(2026, 10, 31, 12, 0, 0, 0, msk))

	code, out, errs := runArchive(clk, "status", "-config", cfg)
	if code != 0 || !strings.Contains(out, "2023-10") || !strings.Contains(out, "kept until 31.10.2026") ||
		!strings.Contains(out, "2025-03") || !strings.Contains(out, "past 3 years: 0 files") {
		t.Fatalf("status: %d\n%s%s", code, out, errs)
	}
	// Younger than three years from its last day: refused.
	if code, out, errs := runArchive(clk, "remove", "-month", "2023-10", "-by", "Иванов", "-config", cfg); code != 1 || !strings.Contains(errs, "01.11.2026") {
		t.Fatalf("early remove: %d\n%s%s", code, out, errs)
	}
	if code, _, _ := runArchive(clk, "remove", "-month", "2023-10", "-config", cfg); code != 2 {
		t.Errorf("remove without -by: %d", code)
	}

	clk.Advance(24 * time.Hour) // 1 November 2026
	code, out, errs = runArchive(clk, "status", "-config", cfg)
	if code != 0 || !strings.Contains(out, "may be removed") || !strings.Contains(out, "past 3 years: 1 files") {
		t.Fatalf("status: %d\n%s%s", code, out, errs)
	}
	code, out, errs = runArchive(clk, "remove", "-month", "2023-10", "-by", "Иванов", "-config", cfg)
	if code != 0 || !strings.Contains(out, "1 scans, 1 files") || !strings.Contains(errs, "retention: month of scans removed") {
		t.Fatalf("remove: %d\n%s%s", code, out, errs)
	}
	records, _ := filepath.Glob(filepath.Join(root, store.RetentionDir, "removed-2023-10-*.json"))
	if len(records) != 1 {
		t.Errorf("records: %v", records)
	}
	if _, err := os.Stat(filepath.Join(root, "10216100", "20231015")); !os.IsNotExist(err) {
		t.Errorf("October's folder: %v", err)
	}
	if _, err := os.Stat(filepath.Join(root, "10216100", "20250303")); err != nil {
		t.Errorf("March 2025's folder: %v", err)
	}

	if code, _, _ := runArchive(clk, "bogus"); code != 2 {
		t.Errorf("unknown verb: %d", code)
	}
}
