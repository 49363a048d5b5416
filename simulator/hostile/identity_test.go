package hostile

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"idk/protocol/idkpb"
	"idk/simulator/harness"
)

// Finding 1 (critical): ИДК A, with its own valid certificate, must not be
// able to touch ИДК B's evidence. A hello claiming another customs body
// than the registry binds A to is refused; A's files for B's scan number
// on the same day land in A's own folder; B's files and form revisions
// stay byte for byte; B is still told HAVE only for its own content; and an
// index rebuilt from the folders credits every file to the ИДК that sent
// it.
func TestForeignIdentityCannotTouchAnotherIDKsEvidence(t *testing.T) {
	env := newEnv(t, harness.Options{Agents: 3})
	// A third ИДК enrolled at another customs body, so that there is a
	// KOD_TO A could claim. A and B stay at one post: the sharpest case,
	// two honest ИДК whose scan numbers can collide.
	const otherKodTO = "10216200"
	enrol(t, env, idkC, otherKodTO)
	coll := startCollector(t, env)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// A says hello as itself but for another customs body.
	liar, err := dial(ctx, env, idkA, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := liar.hello(ctx, device(idkA, otherKodTO)); err == nil {
		t.Errorf("ИДК %s said hello with KOD_TO %s, which the registry does not bind it to, and was accepted", idkA, otherKodTO)
	}
	liar.close()
	if v, err := harness.Metric(env.HTTPAddr, `idk_collector_connections_refused_total{reason="kod_to"}`); err != nil || v < 1 {
		t.Errorf(`idk_collector_connections_refused_total{reason="kod_to"} = %v, %v; want at least 1`, v, err)
	}

	// B ships a scan: an image, a document and two form revisions.
	now := time.Now()
	snim := scanNumber(now, idkB, 1)
	raw := snim + "_1.raw"
	bRaw, bDoc := content("B raw", 3<<20+17), content("B doc", 40<<10)
	bForm1, bForm2 := []byte("<form>B revision 1</form>"), []byte("<form>B revision 2</form>")
	b := connect(t, env, idkB)
	bRawAt := b.mustUpload(t, snim, raw, bRaw, now)
	b.mustUpload(t, snim, "doc_001.jpg", bDoc, now)
	b.mustEvents(t, b.scanSeen(snim, now), b.formRevision(snim, 1, bForm1, nil, now), b.formRevision(snim, 2, bForm2, nil, now))
	bDir := kodTO + "/" + dateDir(now) + "/" + idkB + "/" + snim + "/"
	if !strings.HasPrefix(bRawAt, bDir) {
		t.Errorf("B's image stored as %s, want it under %s", bRawAt, bDir)
	}
	before, err := snapshot(env.CollectorRoot())
	if err != nil {
		t.Fatal(err)
	}

	// A, under its true identity, sends B's scan number on the same day:
	// other content under B's names, a planted file and its own forms.
	aRaw, aDoc, aPlant := content("A raw", 3<<20+17), content("A doc", 40<<10), content("A plant", 1000)
	aForm := []byte("<form>A forgery</form>")
	a := connect(t, env, idkA)
	aRawAt := a.mustUpload(t, snim, raw, aRaw, now)
	aDocAt := a.mustUpload(t, snim, "doc_001.jpg", aDoc, now)
	a.mustUpload(t, snim, "form-r001.xml", aPlant, now)
	a.mustEvents(t, a.scanSeen(snim, now), a.formRevision(snim, 1, aForm, nil, now))
	aDir := kodTO + "/" + dateDir(now) + "/" + idkA + "/" + snim + "/"
	for _, at := range []string{aRawAt, aDocAt} {
		if !strings.HasPrefix(at, aDir) {
			t.Errorf("A's file stored as %s, want it under %s, a folder of A's own", at, aDir)
		}
		if strings.HasPrefix(at, bDir) {
			t.Errorf("A's file stored in B's folder as %s", at)
		}
	}

	after, err := snapshot(env.CollectorRoot())
	if err != nil {
		t.Fatal(err)
	}
	for p, h := range before {
		if after[p] != h {
			t.Errorf("B's %s changed or vanished after A's uploads (sha256 %s, now %q)", p, h, after[p])
		}
	}
	for p := range after {
		if strings.HasPrefix(p, bDir) && before[p] == "" {
			t.Errorf("A planted %s in B's folder", p)
		}
	}

	// B is told HAVE for its own content, and not for A's.
	for _, c := range []struct {
		data []byte
		have bool
	}{{bRaw, true}, {aRaw, false}} {
		f, rep, err := b.offer(ctx, offerOf(snim, raw, c.data, now))
		if err != nil {
			t.Fatal(err)
		}
		f.end()
		if got := rep.Status == idkpb.FileOfferReply_STATUS_HAVE; got != c.have {
			t.Errorf("B offers %s with %s content: %v, want HAVE=%v", raw, map[bool]string{true: "its own", false: "A's"}[c.have], rep.Status, c.have)
		}
	}

	// Who sent what, by content.
	owner := map[string]string{
		hexSum(bRaw): idkB, hexSum(bDoc): idkB, hexSum(bForm1): idkB, hexSum(bForm2): idkB,
		hexSum(aRaw): idkA, hexSum(aDoc): idkA, hexSum(aPlant): idkA, hexSum(aForm): idkA,
	}
	checkCredit := func(when string) {
		t.Helper()
		seen := map[string]bool{}
		for _, f := range storedFiles(t, env) {
			want, ok := owner[f.SHA256]
			if !ok {
				continue
			}
			seen[f.SHA256] = true
			if f.NumIDK != want {
				t.Errorf("%s: %s (%s) credited to ИДК %s, sent by %s", when, f.StoredAs, f.Name, f.NumIDK, want)
			}
			if !strings.Contains(f.StoredAs, "/"+want+"/") {
				t.Errorf("%s: %s sent by ИДК %s is stored outside that ИДК's folders", when, f.StoredAs, want)
			}
		}
		for h, who := range owner {
			if !seen[h] {
				t.Errorf("%s: a file of ИДК %s (sha256 %s) is not listed", when, who, h[:12])
			}
		}
	}
	checkCredit("before the index rebuild")

	// Rebuild the index from the folders: stop, damage index.db, start.
	// The collector rebuilds a damaged index (docs/security.md); a missing
	// one it takes for a new, empty store.
	b.close()
	a.close()
	if err := coll.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(env.CollectorRoot(), "index.db"), content("damage", 64<<10), 0o600); err != nil {
		t.Fatal(err)
	}
	startCollector(t, env)
	// The rebuild may finish after the collector answers: give it time to
	// list everything before judging.
	waitFor(30*time.Second, func() bool {
		files, err := env.Stored()
		n := 0
		for _, f := range files {
			if _, ok := owner[f.SHA256]; ok {
				n++
			}
		}
		return err == nil && n >= len(owner)
	})
	checkCredit("after the index rebuild")
}
