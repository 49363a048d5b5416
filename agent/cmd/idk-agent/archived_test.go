package main

import (
	"bytes"
	"crypto/sha256"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"idk/agent/layout/cargoriw"
	"idk/agent/spool"
	"idk/protocol/idkpb"
)

// archivedFixture is a scanner output folder and a spool.
type archivedFixture struct {
	t   *testing.T
	out string
	sp  *spool.Spool
}

// scan writes the scan's files and records the scan as first seen at
// seen; each file in shipped is recorded as stored at the collector.
func (f *archivedFixture) scan(numSnim string, seen time.Time, files map[string]string, shipped ...string) {
	f.t.Helper()
	dir := filepath.Join(f.out, numSnim)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		f.t.Fatal(err)
	}
	err := f.sp.Update(func(tx *spool.Tx) error {
		sc := spool.Scan{NumSnim: numSnim, FirstSeen: seen}
		for name, content := range files {
			p := filepath.Join(dir, name)
			if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
				return err
			}
			sum := sha256.Sum256([]byte(content))
			if name == cargoriw.FormName {
				sc.Forms, sc.FormSHA256 = 1, sum[:]
				continue
			}
			fi, err := os.Stat(p)
			if err != nil {
				return err
			}
			rec := spool.File{NumSnim: numSnim, Name: name, Path: p, Size: fi.Size(), ModTime: fi.ModTime(), SHA256: sum[:], FirstSeen: seen}
			for _, s := range shipped {
				if s == name {
					rec.Done, rec.DoneAt, rec.StoredAs = true, seen.Add(time.Hour), "10216100/x/850591/"+numSnim+"/"+name
				}
			}
			if err := tx.PutFile(rec); err != nil {
				return err
			}
		}
		return tx.PutScan(sc)
	})
	if err != nil {
		f.t.Fatal(err)
	}
}

func TestArchivedListsOnlyScansWhollyAtTheCollector(t *testing.T) {
	dir := t.TempDir()
	sp, err := spool.Open(filepath.Join(dir, "spool.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	f := &archivedFixture{t: t, out: filepath.Join(dir, "out"), sp: sp}
	oct := func(d int) time.Time { return time.Date(2026, time.October, d, 10, 0, 0, 0, time.Local) }
	raw := func(n string) string { return cargoriw.RawName(n, 1) }

	f.scan("S1", oct(1), map[string]string{raw("S1"): "image", "doc_001.jpg": "doc", cargoriw.FormName: "<form/>", "notes.tmp": "stray"}, raw("S1"), "doc_001.jpg")
	f.scan("S2", oct(2), map[string]string{raw("S2"): "image", "doc_001.jpg": "doc"}, raw("S2")) // a document not yet shipped
	f.scan("S3", oct(3), map[string]string{raw("S3"): "image"}, raw("S3"))
	// S3's image changed after it was shipped: what is on disk is not at the collector.
	if err := os.Chtimes(filepath.Join(f.out, "S3", raw("S3")), oct(20), oct(20)); err != nil {
		t.Fatal(err)
	}
	f.scan("S4", time.Date(2026, time.November, 5, 10, 0, 0, 0, time.Local), map[string]string{raw("S4"): "image"}, raw("S4")) // too new
	f.scan("S5", oct(4), map[string]string{raw("S5"): "image", cargoriw.FormName: "<form/>"}, raw("S5"))
	// S5's form revision still waits in the spool.
	err = sp.Update(func(tx *spool.Tx) error {
		_, err := tx.AppendEvent(&idkpb.Event{Body: &idkpb.Event_Form{Form: &idkpb.FormRevision{NumSnim: "S5", Revision: 1}}})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	f.scan("S6", oct(5), map[string]string{raw("S6"): "image", cargoriw.FormName: "<form/>"}, raw("S6"))
	// S6's form was edited since its last revision was recorded.
	if err := os.WriteFile(filepath.Join(f.out, "S6", cargoriw.FormName), []byte("<form>edited</form>"), 0o644); err != nil {
		t.Fatal(err)
	}
	f.scan("S7", oct(6), map[string]string{raw("S7"): "image"}, raw("S7"))
	if err := os.Mkdir(filepath.Join(f.out, "S7", "extra"), 0o755); err != nil { // unknown content
		t.Fatal(err)
	}
	os.Mkdir(filepath.Join(f.out, "not a scan"), 0o755)

	srv := httptest.NewServer(archivedHandler(sp, f.out, cargoriw.Layout{}))
	defer srv.Close()
	var out, errb bytes.Buffer
	if code := getArchived(srv.URL+"/archived?before=2026-11-01", &out, &errb); code != 0 {
		t.Fatalf("code %d: %s", code, errb.String())
	}
	got := out.String()
	lines := strings.Split(strings.TrimSpace(got), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], filepath.Join(f.out, "S1")+"\t3 files\t15 bytes") {
		t.Fatalf("output:\n%s", got)
	}
	if !strings.Contains(lines[1], "1 scan folders seen before 01.11.2026") || !strings.Contains(lines[2], "5 more") {
		t.Errorf("summary:\n%s", got)
	}

	// Once S2's document is shipped, S2 may go too.
	err = sp.Update(func(tx *spool.Tx) error {
		rec, _, err := tx.File("S2/doc_001.jpg")
		rec.Done, rec.StoredAs = true, "10216100/x/850591/S2/doc_001.jpg"
		if err == nil {
			err = tx.PutFile(rec)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := archivedScans(sp, f.out, cargoriw.Layout{}, oct(31))
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Scans) != 2 || rep.Scans[0].NumSnim != "S1" || rep.Scans[1].NumSnim != "S2" || rep.Waiting != 4 {
		t.Errorf("after S2 shipped: %+v", rep)
	}

	// A bad date is refused by the agent as by the command.
	out.Reset()
	errb.Reset()
	if code := getArchived(srv.URL+"/archived?before=01.11.2026", &out, &errb); code != 1 || !strings.Contains(errb.String(), "YYYY-MM-DD") {
		t.Errorf("bad date: %d %q", code, errb.String())
	}
	if code := archivedCommand([]string{"-config", "x.toml"}, &out, &errb); code != 2 {
		t.Errorf("without -before: %d", code)
	}
}
