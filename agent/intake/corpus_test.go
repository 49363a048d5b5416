package intake

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"idk/protocol/idkpb"
)

// The bad-input corpus: every form in testdata/forms, as the operator's
// program might leave it, goes through intake. Each ends in a documented
// outcome (docs/cargoriw-layout.md, "Bad input"): parsed, or shipped byte
// for byte with an error that names the file and the field. None is lost,
// none crashes the agent.
func TestCorpusForms(t *testing.T) {
	cases := map[string]struct {
		incomplete bool   // retried quietly until the grace period ends
		wantErr    string // "" = parses
	}{
		"good.xml":             {},
		"external-entity.xml":  {}, // the DOCTYPE is ignored: no entity is ever resolved, no file read
		"mixed-encoding.xml":   {}, // undetectable: the field reads garbled, the bytes arrive intact
		"truncated.xml":        {incomplete: true, wantErr: "incomplete"},
		"empty.xml":            {incomplete: true, wantErr: "incomplete"},
		"malformed.xml":        {wantErr: "element <Vehicle> closed by </Vehcle>"},
		"trailing-garbage.xml": {wantErr: "after </CargoRIWForm>"},
		"cp866.xml":            {wantErr: "field Container[1]/Direction"},
		"utf16.xml":            {wantErr: "invalid UTF-8"},
		"huge-field.xml":       {wantErr: "field Comments/Upper: too long"},
		"wrong-numsnim.xml":    {wantErr: "field NumSnim"},
		"no-reason.xml":        {wantErr: "field SuspicionReason"},
		"bad-date.xml":         {wantErr: "field Created"},
		"unknown-decision.xml": {wantErr: "field Decision"},
		"binary.xml":           {wantErr: "malformed form"},
		"entity-in-field.xml":  {wantErr: "invalid character entity"},
	}
	files, _ := filepath.Glob("testdata/forms/*.xml")
	if len(files) != len(cases) {
		t.Fatalf("corpus has %d files, the table %d: keep them in step", len(files), len(cases))
	}
	for _, path := range files {
		name := filepath.Base(path)
		tc, ok := cases[name]
		if !ok {
			t.Errorf("%s: no expectation", name)
			continue
		}
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			f := newFixture(t)
			dir := filepath.Join(f.out, "202611208505910001")
			os.MkdirAll(dir, 0o755)
			form := filepath.Join(dir, "form.xml")
			os.WriteFile(form, data, 0o644)
			ctx := context.Background()
			if err := f.in.handle(ctx, f.ready(t, form)); err != nil {
				t.Fatal(err)
			}
			if tc.incomplete {
				if len(f.forms(t)) != 0 || len(f.retried) != 1 {
					t.Fatalf("an incomplete form was not retried quietly")
				}
				f.clk.Advance(2 * time.Minute)
				f.in.handle(ctx, f.ready(t, form))
			}
			revs := f.forms(t)
			if len(revs) != 1 {
				t.Fatalf("%d revisions recorded, want 1", len(revs))
			}
			rev := revs[0]
			if !bytes.Equal(rev.Content, data) {
				t.Error("the form's bytes were not kept as written")
			}
			if tc.wantErr == "" {
				if rev.ParseError != "" || rev.Form == nil {
					t.Fatalf("want parsed, got error %q", rev.ParseError)
				}
				return
			}
			if !strings.Contains(rev.ParseError, tc.wantErr) || !strings.Contains(rev.ParseError, "form.xml") {
				t.Fatalf("parse error %q: want it to name form.xml and contain %q", rev.ParseError, tc.wantErr)
			}
		})
	}
}

// A "form" over the size limit is not a form, but it is the scanner's
// file: it is queued for shipping as a file.
func TestOversizedFormIsShippedAsAFile(t *testing.T) {
	f := newFixture(t)
	dir := filepath.Join(f.out, "202611208505910001")
	os.MkdirAll(dir, 0o755)
	form := filepath.Join(dir, "form.xml")
	os.WriteFile(form, bytes.Repeat([]byte("<x/>"), 300000), 0o644)
	if err := f.in.handle(context.Background(), f.ready(t, form)); err != nil {
		t.Fatal(err)
	}
	queued, err := f.sp.NextFile(nil)
	if err != nil || queued.Name != "form.xml" || queued.Size != 1200000 || queued.Kind != idkpb.FileKind_FILE_KIND_UNSPECIFIED {
		t.Fatalf("queued: %+v %v", queued, err)
	}
}

// Scan folders the agent must not take: a folder that is no scan number,
// a symlink out of the output folder, files that are not scan files. A
// zero-byte image and a scan without a form are taken as they are.
func TestCorpusFolders(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	mk := func(rel string, data []byte) string {
		p := filepath.Join(f.out, filepath.FromSlash(rel))
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, data, 0o644)
		return p
	}
	for _, rel := range []string{"СКАН 1/a.raw", "notes.txt", "202611208505910002/.~lock.form.xml#", "202611208505910002/x.tmp"} {
		if err := f.in.handle(ctx, f.ready(t, mk(rel, []byte("x")))); err != nil {
			t.Fatal(err)
		}
	}
	if evs, _ := f.sp.PendingEvents(10, 1<<20); len(evs) != 0 {
		t.Fatalf("files that are not scan files produced %d events", len(evs))
	}
	// A zero-byte image is evidence too: queued, with the empty SHA-256.
	zero := mk("202611208505910003/202611208505910003_1.raw", nil)
	r := f.ready(t, zero)
	f.in.handle(ctx, r)
	if err := f.in.blob(r); err != nil {
		t.Fatal(err)
	}
	q, err := f.sp.NextFile(nil)
	if err != nil || q.Size != 0 || len(q.SHA256) != 32 {
		t.Fatalf("zero-byte image: %+v %v", q, err)
	}
}
