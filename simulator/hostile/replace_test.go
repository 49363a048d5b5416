package hostile

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"idk/protocol/idkpb"
	"idk/simulator/harness"
)

// diskSum hashes a stored file by its stored_as path.
func diskSum(t *testing.T, env *harness.Env, storedAs string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(env.CollectorRoot(), filepath.FromSlash(storedAs)))
	if err != nil {
		t.Errorf("stored file %s: %v", storedAs, err)
		return ""
	}
	return hexSum(b)
}

// Finding 6: two streams offering one name with different content at the
// same time both get stored, under different names; each content is then
// known (HAVE); nothing replaced the other.
func TestSameNameRaceKeepsBothRevisions(t *testing.T) {
	env, _ := startEnv(t, harness.Options{})
	c := connect(t, env, idkA)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	now := time.Now()
	snim := scanNumber(now, idkA, 1)
	name := snim + "_1.raw"
	one, two := content("one", 2<<20+5), content("two", 2<<20+5)

	// Both offers are answered before either sends a byte.
	f1, rep1, err := c.offer(ctx, offerOf(snim, name, one, now))
	if err != nil {
		t.Fatal(err)
	}
	defer f1.end()
	f2, rep2, err := c.offer(ctx, offerOf(snim, name, two, now))
	if err != nil {
		t.Fatal(err)
	}
	defer f2.end()
	if rep1.Status != idkpb.FileOfferReply_STATUS_SEND || rep2.Status != idkpb.FileOfferReply_STATUS_SEND {
		// REFUSED ("not now") for the second is safe too; the agent would
		// offer it again after the first is stored.
		t.Logf("offers answered %v %q and %v %q", rep1.Status, rep1.Error, rep2.Status, rep2.Error)
	}
	results := map[string]string{} // content sum -> stored_as
	for _, up := range []struct {
		f    *fileStream
		rep  *idkpb.FileOfferReply
		data []byte
	}{{f2, rep2, two}, {f1, rep1, one}} { // the later offer commits first
		if up.rep.Status != idkpb.FileOfferReply_STATUS_SEND {
			continue
		}
		if err := up.f.send(up.data, up.rep.Offset); err != nil {
			t.Fatal(err)
		}
		res, err := up.f.commit(sum(up.data))
		if err != nil {
			t.Fatal(err)
		}
		if res.Error != "" {
			t.Errorf("commit: %s", res.Error)
			continue
		}
		results[hexSum(up.data)] = res.StoredAs
	}
	// Whatever was refused for now is offered again, as an agent would.
	for _, data := range [][]byte{one, two} {
		if _, ok := results[hexSum(data)]; !ok {
			results[hexSum(data)] = c.mustUpload(t, snim, name, data, now)
		}
	}
	if results[hexSum(one)] == results[hexSum(two)] {
		t.Errorf("both contents stored as %s: one replaced the other", results[hexSum(one)])
	}
	for h, at := range results {
		if got := diskSum(t, env, at); got != h {
			t.Errorf("%s holds sha256 %.12s, want %.12s", at, got, h)
		}
	}
	for _, data := range [][]byte{one, two} {
		f, rep, err := c.offer(ctx, offerOf(snim, name, data, now))
		if err != nil {
			t.Fatal(err)
		}
		f.end()
		if rep.Status != idkpb.FileOfferReply_STATUS_HAVE {
			t.Errorf("later offer of content %.12s: %v, want HAVE", hexSum(data), rep.Status)
		}
	}
	checkIndexAgreesWithDisk(t, env)
}

// checkIndexAgreesWithDisk fails for every listed file whose bytes on
// disk are not the listed SHA-256.
func checkIndexAgreesWithDisk(t *testing.T, env *harness.Env) {
	t.Helper()
	for _, f := range storedFiles(t, env) {
		if got := diskSum(t, env, f.StoredAs); got != f.SHA256 {
			t.Errorf("index lists %s with sha256 %.12s, disk holds %.12s", f.StoredAs, f.SHA256, got)
		}
	}
}

// Finding 6: uploaded files named like the collector's own (a form
// revision, a temporary file) are not overwritten when the collector
// later writes form revisions of the same scan, and the forms are not lost
// either.
func TestUploadsNamedLikeCollectorFilesSurviveFormRevisions(t *testing.T) {
	env, _ := startEnv(t, harness.Options{})
	c := connect(t, env, idkA)
	now := time.Now()
	snim := scanNumber(now, idkA, 1)
	uploads := map[string][]byte{
		"form-r001.xml":     content("upload r001", 3000),
		"form-r002.xml":     content("upload r002", 3000),
		"form-r002.xml.tmp": content("upload r002 tmp", 3000),
		"x.tmp":             content("upload x.tmp", 3000),
	}
	stored := map[string]string{} // stored_as -> sha256
	for name, data := range uploads {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		rep, res, err := c.upload(ctx, offerOf(snim, name, data, now), data)
		cancel()
		switch {
		case err != nil:
			t.Fatalf("upload %s: %v", name, err)
		case rep.Status == idkpb.FileOfferReply_STATUS_REJECTED:
			// Refusing such a name for good is safe too: nothing of it is
			// there to overwrite.
			t.Logf("upload %s rejected: %s", name, rep.Error)
		case rep.Status != idkpb.FileOfferReply_STATUS_SEND || res.Error != "":
			t.Fatalf("upload %s: %v %q %v", name, rep.Status, rep.Error, res)
		default:
			stored[res.StoredAs] = hexSum(data)
		}
	}
	forms := [][]byte{[]byte("<form>revision 1</form>"), []byte("<form>revision 2</form>"), []byte("<form>revision 3</form>")}
	c.mustEvents(t, c.scanSeen(snim, now), c.formRevision(snim, 1, forms[0], nil, now),
		c.formRevision(snim, 2, forms[1], nil, now), c.formRevision(snim, 3, forms[2], nil, now))

	for at, h := range stored {
		if got := diskSum(t, env, at); got != h {
			t.Errorf("uploaded %s was overwritten (sha256 %.12s, now %.12s)", at, h, got)
		}
	}
	listed := map[string]bool{}
	for _, f := range storedFiles(t, env) {
		listed[f.SHA256] = true
		if h, ok := stored[f.StoredAs]; ok && f.SHA256 != h {
			t.Errorf("index lists %s with sha256 %.12s, uploaded %.12s", f.StoredAs, f.SHA256, h)
		}
	}
	for i, fm := range forms {
		if !listed[hexSum(fm)] {
			t.Errorf("form revision %d is not listed", i+1)
		}
	}
	checkIndexAgreesWithDisk(t, env)
}
