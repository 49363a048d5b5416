package hostile

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"idk/protocol"
	"idk/protocol/idkpb"
	"idk/simulator/harness"
	"idk/simulator/scanner"
)

// badNames are offers no collector may store as they are (docs/security.md,
// "File names"), each for the reason given.
var badNames = []struct{ why, name string }{
	{"Windows stream separator", "a:b.raw"},
	{"Windows device name", "CON.txt"},
	{"300 bytes, over any file system's limit with a revision suffix", strings.Repeat("n", 296) + ".jpg"},
	{"right-to-left override: reads as x…exe.jpg", "x\u202egpj.exe"},
	{"NFD: a twin of the NFC spelling", "cafe\u0301.jpg"},
	{"DEL", "a\x7fb.jpg"},
	{"C1 control (NEL)", "a\u0085b.jpg"},
}

// Finding 3: a name the collector can never store is answered
// STATUS_REJECTED ("never", so the agent sets the file aside instead of
// retrying it at the head of its queue), and nothing of it is stored.
func TestBadNamesAreRejectedForGood(t *testing.T) {
	env, _ := startEnv(t, harness.Options{})
	c := connect(t, env, idkA)
	now := time.Now()
	snim := scanNumber(now, idkA, 1)
	for _, n := range badNames {
		data := content(n.name, 2000)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		rep, res, err := c.upload(ctx, offerOf(snim, n.name, data, now), data)
		cancel()
		switch {
		case err != nil:
			t.Errorf("%s (%q): %v", n.why, n.name, err)
		case rep.Status != idkpb.FileOfferReply_STATUS_REJECTED:
			t.Errorf("%s (%q): offer answered %v %q (stored: %v), want STATUS_REJECTED", n.why, n.name, rep.Status, rep.Error, res != nil && res.Error == "")
		}
	}
	// Nothing of them is in the index or anywhere on disk.
	bad := map[string]string{}
	for _, n := range badNames {
		bad[hexSum(content(n.name, 2000))] = n.name
	}
	for _, f := range storedFiles(t, env) {
		if name, ok := bad[f.SHA256]; ok {
			t.Errorf("offer %q indexed as %s", name, f.StoredAs)
		}
	}
	disk, err := snapshot(env.CollectorRoot())
	if err != nil {
		t.Fatal(err)
	}
	for p, h := range disk {
		if name, ok := bad[h]; ok {
			t.Errorf("offer %q stored on disk as %s", name, p)
		}
	}
}

// Finding 3, through a real agent: a scanner folder holding a document
// whose name the collector cannot store is shipped in full, the odd file
// under its percent-encoded name (protocol.SafeName), and nothing behind
// it in the queue waits for it.
//
// CargoRIW names images <NUM_SNIM>_N.raw and the agent ignores any other
// .raw, so the odd name is given to a document (a:b.jpg), which the agent
// does ship.
func TestAgentShipsScanFolderWithUnstorableName(t *testing.T) {
	// The second scan is written while the agent watches. Under CI's load a
	// pause between two 1 MiB writes of its image once outlasted the default
	// 300 ms settle: the agent shipped the half-written image, then the whole
	// one (as it should: "content changed after it was first seen"), and the
	// check counted a corrupted and a duplicated copy. This test is about
	// names, not settling, so it gives the writer a second.
	env, _ := startEnv(t, harness.Options{Settle: time.Second})
	a := env.Agents[0]
	sc, err := scanner.New(scanner.Config{Out: a.OutputDir, NumIDK: a.NumIDK, RawMin: 1 << 20, RawMax: 2 << 20, DocsPerScan: 2, FormRevisions: 1, Seed: 11}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	first, err := sc.WriteScan(ctx)
	if err != nil {
		t.Fatal(err)
	}
	const odd = "a:b.jpg"
	oddData := content("odd", 5000)
	if err := os.WriteFile(filepath.Join(first.Dir, odd), oddData, 0o644); err != nil {
		t.Fatal(err)
	}
	exp := harness.Expected{first.NumSnim: first.Files}
	exp[first.NumSnim][protocol.SafeName(odd)] = hexSum(oddData)

	agent, err := env.StartAgent(0)
	if err != nil {
		t.Fatal(err)
	}
	defer agent.Stop()
	// A scan written after the odd file must not wait behind it.
	second, err := sc.WriteScan(ctx)
	if err != nil {
		t.Fatal(err)
	}
	exp[second.NumSnim] = second.Files

	wctx, wcancel := context.WithTimeout(ctx, 90*time.Second)
	defer wcancel()
	rep, err := env.WaitStored(wctx, exp, agent)
	if err != nil {
		t.Fatalf("%v (missing %v)", err, rep.Missing)
	}
	if !rep.OK() {
		t.Fatalf("verification: %s (missing %v, corrupted %v, duplicated %v)", rep, rep.Missing, rep.Corrupted, rep.Duplicated)
	}
	t.Logf("%s; %q stored as %q", rep, odd, protocol.SafeName(odd))
}
