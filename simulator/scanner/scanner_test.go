package scanner

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"image/jpeg"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"idk/agent/layout"
	"idk/agent/layout/cargoriw"
	"idk/internal/clock"
	"idk/simulator/simclock"
)

var msk = time.FixedZone("MSK", 3*60*60)

// stepClock is the virtual clock moved on a minute at every reading, as a
// simulated day would.
type stepClock struct{ *simclock.Clock }

func newClock() stepClock {
	return stepClock{simclock.New(time.Date(2017, 1, 4, 10, 15, 0, 0, msk))}
}

// Now returns the time before the step, which Advance takes atomically: no
// two readers see the same minute.
func (c stepClock) Now() time.Time { return c.Advance(time.Minute).Add(-time.Minute) }

func smallConfig(out string) Config {
	return Config{
		Out:           out,
		NumIDK:        "850591",
		RawMin:        4 << 10,
		RawMax:        3<<20 + 12345, // more than one chunk
		RawPerScan:    2,
		DocsPerScan:   4,
		Seed:          42,
		FormRevisions: 3,
		SuspectRatio:  0.5,
	}
}

func mustNew(t *testing.T, cfg Config, clk clock.Clock) *Scanner {
	t.Helper()
	s, err := New(cfg, clk)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestWriteScan(t *testing.T) {
	out := t.TempDir()
	s := mustNew(t, smallConfig(out), newClock())
	var l cargoriw.Layout
	for n := 1; n <= 5; n++ {
		scan, err := s.WriteScan(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if want := "20170104850591000" + string(rune('0'+n)); scan.NumSnim != want {
			t.Errorf("NumSnim = %q, want %q", scan.NumSnim, want)
		}
		if scan.Dir != filepath.Join(out, scan.NumSnim) {
			t.Errorf("Dir = %q", scan.Dir)
		}
		entries, err := os.ReadDir(scan.Dir)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		kinds := map[layout.Kind]int{}
		for _, e := range entries {
			names = append(names, e.Name())
			f, ok := l.Classify(scan.NumSnim + "/" + e.Name())
			if !ok {
				t.Errorf("%s is not a scan file", e.Name())
			}
			kinds[f.Kind]++
			data, err := os.ReadFile(filepath.Join(scan.Dir, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			sum := sha256.Sum256(data)
			if got := hex.EncodeToString(sum[:]); got != scan.Files[e.Name()] {
				t.Errorf("%s: SHA-256 %s, reported %s", e.Name(), got, scan.Files[e.Name()])
			}
			checkContent(t, f.Kind, e.Name(), data)
		}
		if want := slices.Sorted(maps.Keys(scan.Files)); !slices.Equal(names, want) {
			t.Errorf("files on disk %v, reported %v", names, want)
		}
		if kinds[layout.KindRaw] != 2 || kinds[layout.KindDocument] != 4 || kinds[layout.KindForm] != 1 {
			t.Errorf("kinds = %v", kinds)
		}

		data, err := os.ReadFile(filepath.Join(scan.Dir, cargoriw.FormName))
		if err != nil {
			t.Fatal(err)
		}
		form, err := l.ParseForm(scan.NumSnim+"/"+cargoriw.FormName, data)
		if err != nil {
			t.Fatal(err)
		}
		if form.Decision == layout.DecisionNone || form.Decision != scan.Decision {
			t.Errorf("form decision %v, scan decision %v", form.Decision, scan.Decision)
		}
		if form.Saved.IsZero() || form.Saved.Before(form.Created) {
			t.Errorf("Saved = %v, Created = %v", form.Saved, form.Created)
		}
		if form.CommentUpper == "" || form.Containers[0].Empty() || form.Operator == "" {
			t.Errorf("final form not filled in: %+v", form)
		}
		// «Вид ТС»: Контейнерный when a container number was written,
		// else Грузовой (the goods ride in the vehicle's own body).
		wantVid := 1
		if n := form.Containers[0].Number; len(n) == 11 && n[0] >= 'A' && n[0] <= 'Z' {
			wantVid = 2
		}
		if form.VidTS != wantVid {
			t.Errorf("VidTS = %d for container %q, want %d", form.VidTS, form.Containers[0].Number, wantVid)
		}
	}
}

func checkContent(t *testing.T, k layout.Kind, name string, data []byte) {
	t.Helper()
	switch {
	case k == layout.KindRaw:
		if len(data) < rawHeaderSize || string(data[:8]) != rawMagic {
			t.Errorf("%s: no RAW header", name)
			return
		}
		w := binary.LittleEndian.Uint32(data[8:])
		h := binary.LittleEndian.Uint32(data[12:])
		n := binary.LittleEndian.Uint64(data[20:])
		if n != uint64(w)*uint64(h)*2 || int(n) != len(data)-rawHeaderSize {
			t.Errorf("%s: %dx%d, %d data bytes in header, file %d bytes", name, w, h, n, len(data))
		}
	case strings.HasSuffix(name, ".jpg"):
		if !bytes.HasPrefix(data, []byte{0xFF, 0xD8}) || !bytes.HasSuffix(data, []byte{0xFF, 0xD9}) {
			t.Errorf("%s: no JPEG SOI/EOI", name)
		}
		if _, err := jpeg.Decode(bytes.NewReader(data)); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	case strings.HasSuffix(name, ".pdf"):
		if !bytes.HasPrefix(data, []byte("%PDF-1.4\n")) || !bytes.HasSuffix(data, []byte("%%EOF\n")) {
			t.Errorf("%s: not a PDF", name)
		}
	}
}

func TestDeterministic(t *testing.T) {
	run := func(seed uint64) []Scan {
		cfg := smallConfig(t.TempDir())
		cfg.Seed = seed
		s := mustNew(t, cfg, newClock())
		var scans []Scan
		for range 3 {
			scan, err := s.WriteScan(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			scan.Dir = ""
			scans = append(scans, scan)
		}
		return scans
	}
	a, b := run(7), run(7)
	for i := range a {
		if a[i].NumSnim != b[i].NumSnim || a[i].Decision != b[i].Decision || !maps.Equal(a[i].Files, b[i].Files) {
			t.Errorf("scan %d differs for the same seed:\n%+v\n%+v", i, a[i], b[i])
		}
	}
	c := run(8)
	if maps.Equal(a[0].Files, c[0].Files) {
		t.Error("another seed gave the same files")
	}
}

func TestNextNumSnim(t *testing.T) {
	clk := newClock()
	cfg := smallConfig(t.TempDir())
	cfg.NumIDK = "12"
	s := mustNew(t, cfg, clk)
	want := []string{"201701040000120001", "201701040000120002"}
	for _, w := range want {
		if got := s.NextNumSnim(); got != w {
			t.Errorf("NextNumSnim = %q, want %q", got, w)
		}
	}
	clk.Advance(24 * time.Hour)
	if got := s.NextNumSnim(); got != "201701050000120001" {
		t.Errorf("next day NextNumSnim = %q, want counter reset", got)
	}
	cfg.NumIDK = "1234567890"
	s = mustNew(t, cfg, clk)
	if got := s.NextNumSnim(); got != "201701055678900001" || !cargoriw.ValidNumSnim(got) {
		t.Errorf("long NumIDK: NextNumSnim = %q", got)
	}
}

func TestFormRevisions(t *testing.T) {
	cfg := smallConfig(t.TempDir())
	cfg.SuspectRatio = 1
	cfg.FormRevisions = 4
	s := mustNew(t, cfg, newClock())
	w, err := s.BeginScan()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(w.Dir(), cargoriw.FormName)
	read := func() (*layout.Form, error) {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return cargoriw.ParseForm(w.NumSnim()+"/"+cargoriw.FormName, data)
	}

	if err := w.WriteForm(0); err != nil {
		t.Fatal(err)
	}
	before, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	f, err := read()
	if err != nil {
		t.Fatal(err)
	}
	created := layout.Form{NumSnim: f.NumSnim, Created: f.Created, TruckID: f.TruckID, InspectionDate: f.InspectionDate}
	if f.NumSnim != w.NumSnim() || f.Created.IsZero() || f.TruckID == "" || f.InspectionDate.IsZero() || *f != created {
		t.Errorf("revision 0 = %+v, want only the system's fields", f)
	}

	prev := f
	for rev := 1; rev < w.Revisions(); rev++ {
		if err := w.WriteForm(rev); err != nil {
			t.Fatal(err)
		}
		f, err := read()
		if err != nil {
			t.Fatal(err)
		}
		if f.Decision != layout.DecisionNone || !f.Saved.IsZero() {
			t.Errorf("revision %d decided before the last: %+v", rev, f)
		}
		if f.TrailerID == "" || (prev.CommentUpper != "" && f.CommentUpper == "") {
			t.Errorf("revision %d lost or lacks fields: %+v", rev, f)
		}
		prev = f
	}
	if _, err := w.Finish(); err == nil {
		t.Error("Finish before the decision: no error")
	}

	// Caught in the middle of the last write.
	if err := w.WriteFormPartial(w.Revisions(), 100); err != nil {
		t.Fatal(err)
	}
	if _, err := read(); !errors.Is(err, cargoriw.ErrIncomplete) {
		t.Errorf("half-written form: err = %v, want ErrIncomplete", err)
	}
	if _, err := w.Finish(); err == nil {
		t.Error("Finish after a partial write: no error")
	}

	if err := w.WriteForm(w.Revisions()); err != nil {
		t.Fatal(err)
	}
	f, err = read()
	if err != nil {
		t.Fatal(err)
	}
	if f.Decision != layout.DecisionSuspected || f.SuspicionReason == "" || f.Marks < 1 || f.Saved.IsZero() {
		t.Errorf("final revision = %+v", f)
	}
	after, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if !os.SameFile(before, after) {
		t.Error("form was replaced, not rewritten in place")
	}
	scan, err := w.Finish()
	if err != nil {
		t.Fatal(err)
	}
	if scan.Decision != layout.DecisionSuspected || len(scan.Files) != 1 {
		t.Errorf("Finish = %+v", scan)
	}
}

func TestNotSuspected(t *testing.T) {
	cfg := smallConfig(t.TempDir())
	cfg.SuspectRatio = 0
	cfg.RawPerScan, cfg.DocsPerScan, cfg.FormRevisions = 1, 0, 1
	s := mustNew(t, cfg, newClock())
	for range 5 {
		scan, err := s.WriteScan(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if scan.Decision != layout.DecisionNotSuspected || len(scan.Files) != 2 {
			t.Errorf("scan = %+v", scan)
		}
	}
}

// A second run into the same folder continues the numbering, as the real
// program does after a restart, and never touches an existing scan.
func TestFolderExistsTakesNextNumber(t *testing.T) {
	cfg := smallConfig(t.TempDir())
	first, err := mustNew(t, cfg, newClock()).BeginScan()
	if err != nil {
		t.Fatal(err)
	}
	second, err := mustNew(t, cfg, newClock()).BeginScan()
	if err != nil {
		t.Fatal(err)
	}
	if second.NumSnim() == first.NumSnim() || second.Dir() == first.Dir() {
		t.Errorf("second run reused %s", first.NumSnim())
	}
	if _, err := os.Stat(first.Dir()); err != nil {
		t.Errorf("first scan folder: %v", err)
	}
}

func TestCancel(t *testing.T) {
	s := mustNew(t, smallConfig(t.TempDir()), newClock())
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.WriteScan(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
}

func TestNewErrors(t *testing.T) {
	for name, edit := range map[string]func(*Config){
		"no out":        func(c *Config) { c.Out = "" },
		"no NumIDK":     func(c *Config) { c.NumIDK = "" },
		"NumIDK letter": func(c *Config) { c.NumIDK = "85O591" },
		"raw range":     func(c *Config) { c.RawMin, c.RawMax = 100, 50 },
		"raw tiny":      func(c *Config) { c.RawMin, c.RawMax = 1, 50 },
		"three raws":    func(c *Config) { c.RawPerScan = 3 },
		"docs":          func(c *Config) { c.DocsPerScan = 1000 },
		"revisions":     func(c *Config) { c.FormRevisions = -1 },
		"ratio":         func(c *Config) { c.SuspectRatio = 1.5 },
	} {
		cfg := smallConfig(t.TempDir())
		edit(&cfg)
		if _, err := New(cfg, nil); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	s, err := New(Config{Out: t.TempDir(), NumIDK: "850591"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if s.cfg.RawMin != DefaultRawMin || s.cfg.RawMax != DefaultRawMax || s.cfg.RawPerScan != 1 || s.cfg.FormRevisions != DefaultFormRevisions {
		t.Errorf("defaults not applied: %+v", s.cfg)
	}
}

// TestRawStreams writes a 64 MiB image and checks that the heap grew by
// little more than one chunk: the image is never held in memory.
func TestRawStreams(t *testing.T) {
	size := int64(64 << 20)
	if testing.Short() {
		size = 8 << 20
	}
	path := filepath.Join(t.TempDir(), "big.raw")
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	if _, err := writeRaw(context.Background(), path, rawPlan{size: size}); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 4*chunkSize {
		t.Errorf("writing a %d MiB RAW allocated %d bytes", size>>20, grew)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Size() > size || st.Size() < size-rawRows*2 {
		t.Errorf("RAW is %d bytes, asked for %d", st.Size(), size)
	}
}

func TestISO6346(t *testing.T) {
	// A published example: CSQU 305438 3.
	if got := iso6346Check("CSQU305438"); got != 3 {
		t.Errorf("check digit = %d, want 3", got)
	}
}
