package report

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"idk/collector/cases"
	"idk/simulator/simclock"
)

// archiveFixture is a collector's report side on a virtual clock: the
// index with the scan journal, a case engine, the entries and the archive.
type archiveFixture struct {
	*scanFixture
	clk     *simclock.Clock
	entries *Entries
	builder *Builder
	archive *Archive
	dir     string
}

func newArchiveFixture(t *testing.T, now time.Time) *archiveFixture {
	t.Helper()
	f := &archiveFixture{scanFixture: newScanFixture(t), clk: simclock.New(now), dir: t.TempDir()}
	engine, err := cases.Open(filepath.Join(t.TempDir(), "cases.db"), scanMSK, f.clk)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { engine.Close() })
	f.entries = NewEntries(f.log, f.j, scanMSK, f.clk)
	f.builder = NewBuilder(Sources{Index: f.log, Scans: f.j, Entries: f.entries, Cases: engine, Roster: roster, Location: scanMSK, Clock: f.clk})
	if f.archive, err = OpenArchive(f.dir, f.builder, f.clk, nil); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *archiveFixture) publish(day time.Time, by string) (Version, bool) {
	f.t.Helper()
	v, created, err := f.archive.Publish("10216100", day, by, "")
	if err != nil {
		f.t.Fatal(err)
	}
	return v, created
}

func (f *archiveFixture) open(day time.Time, n int) ([]byte, Version) {
	f.t.Helper()
	file, v, err := f.archive.Open("10216100", day, n)
	if err != nil {
		f.t.Fatal(err)
	}
	defer file.Close()
	data, err := io.ReadAll(file)
	if err != nil {
		f.t.Fatal(err)
	}
	return data, v
}

func sheetsOf(t *testing.T, data []byte) map[string][][]string {
	t.Helper()
	wb, err := ReadWorkbook(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	return wb
}

func hexSum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// A published day is kept byte for byte; publishing unchanged content
// makes no new version; a correction makes a new one and leaves the old
// file as it was; each day is cumulative from the first of the month.
func TestArchiveVersions(t *testing.T) {
	f := newArchiveFixture(t, nov(28, 1, 0))
	f.scan(devA, nov(27, 10, 0), "202611278505910001")
	f.form(devA, nov(27, 10, 14), 1, fullForm("202611278505910001", nov(27, 10, 1)))

	v1, created := f.publish(nov(27, 0, 0), "schedule")
	if !created || v1.Version != 1 || v1.By != "schedule" || v1.File != "2026-11-27.v1.xlsx" {
		t.Fatalf("first publication: %+v created=%v", v1, created)
	}
	first, _ := f.open(nov(27, 0, 0), 0)
	if hexSum(first) != v1.SHA256 || int64(len(first)) != v1.Size {
		t.Fatalf("stored file does not match its manifest: %d bytes, sha %s; manifest %+v", len(first), hexSum(first), v1)
	}
	wb := sheetsOf(t, first)
	if got := len(wb[Table1.Sheet]); got != 2 {
		t.Fatalf("table 1 of 27.11: %d rows with the header, want 2", got)
	}
	if got := wb[Table1.Sheet][1][Table1.Field("NUM_SNIM")]; got != "202611278505910001" {
		t.Fatalf("table 1 NUM_SNIM = %q", got)
	}

	// Nothing changed: no new version, even an hour later.
	f.clk.Advance(time.Hour)
	if v, created := f.publish(nov(27, 12, 0), "schedule"); created || v.Version != 1 {
		t.Fatalf("unchanged content republished: %+v created=%v", v, created)
	}

	// An officer's row for the 27th: a new version, the old file intact.
	if _, err := f.entries.Add(5, []map[string]string{entRow5Archive("27.11.2026")}, "ИВАНОВ"); err != nil {
		t.Fatal(err)
	}
	v2, created := f.publish(nov(27, 0, 0), "ПЕТРОВ")
	if !created || v2.Version != 2 || v2.By != "ПЕТРОВ" {
		t.Fatalf("after a correction: %+v created=%v", v2, created)
	}
	again, _ := f.open(nov(27, 0, 0), 1)
	if !bytes.Equal(again, first) {
		t.Fatal("version 1 changed after version 2 was published")
	}
	latest, lv := f.open(nov(27, 0, 0), 0)
	if lv.Version != 2 || len(sheetsOf(t, latest)[Table5.Sheet]) != 2 {
		t.Fatalf("latest is version %d with table 5 %v", lv.Version, sheetsOf(t, latest)[Table5.Sheet])
	}
	if len(sheetsOf(t, first)[Table5.Sheet]) != 1 {
		t.Fatal("version 1 shows the later entry")
	}

	// The 28th holds the 27th's scan too (running month), the 1st of
	// December does not.
	f.scan(devA, nov(28, 9, 0), "202611288505910002")
	v28, _ := f.publish(nov(28, 0, 0), "schedule")
	data28, _ := f.open(nov(28, 0, 0), v28.Version)
	if got := len(sheetsOf(t, data28)[Table1.Sheet]); got != 3 {
		t.Fatalf("table 1 of 28.11: %d rows with the header, want 3", got)
	}
	dec1 := time.Date(2026, 12, 1, 0, 0, 0, 0, scanMSK)
	vDec, _ := f.publish(dec1, "schedule")
	dataDec, _ := f.open(dec1, vDec.Version)
	if got := len(sheetsOf(t, dataDec)[Table1.Sheet]); got != 1 {
		t.Fatalf("table 1 of 01.12: %d rows with the header, want only the header", got)
	}

	vs, err := f.archive.Versions("10216100", nov(27, 0, 0))
	if err != nil || len(vs) != 2 || vs[0].SHA256 != v1.SHA256 {
		t.Fatalf("versions: %+v %v", vs, err)
	}
	if _, _, err := f.archive.Open("10216100", nov(26, 0, 0), 0); err == nil {
		t.Fatal("an unpublished day opened")
	}
	if _, _, err := f.archive.Publish("1021610", nov(27, 0, 0), "x", ""); err == nil {
		t.Fatal("a 7-digit KOD_TO was published")
	}
}

func entRow5Archive(date string) map[string]string {
	return map[string]string{"KOD_TO": "10216100", "DATE_SYS": date, "KOL_VO_PR_SNIM": "20", "KOL_VO_NAR": "5",
		"FIO": "ИВАНОВ ИВАН ИВАНОВИЧ", "LNP": "283"}
}

// The schedule publishes the day before once the hour has passed, with
// every earlier day of the month, and only once a day.
func TestSchedulePublishesAfterMidnight(t *testing.T) {
	f := newArchiveFixture(t, nov(4, 0, 10))
	f.scan(devA, nov(3, 10, 0), "202611038505910001")
	s := &Schedule{Archive: f.archive, At: 30 * time.Minute, Offices: func() []string { return []string{"10216100"} }}
	s.done = map[string]struct{}{}
	s.tick()
	if vs, _ := f.archive.Versions("10216100", nov(3, 0, 0)); len(vs) != 0 {
		t.Fatalf("published before the hour: %+v", vs)
	}
	f.clk.Advance(25 * time.Minute)
	s.tick()
	for d := 1; d <= 3; d++ {
		if vs, _ := f.archive.Versions("10216100", nov(d, 0, 0)); len(vs) != 1 {
			t.Fatalf("%02d.11: %d versions after the hour, want 1", d, len(vs))
		}
	}
	// Until the 5th the month before is published again too (the
	// monthly report is due on the 5th).
	if vs, _ := f.archive.Versions("10216100", time.Date(2026, 10, 31, 0, 0, 0, 0, scanMSK)); len(vs) != 1 {
		t.Fatalf("31.10: %d versions, want 1", len(vs))
	}
	// A late scan of the 2nd, then the next night: a new version of the
	// 2nd and the 3rd (cumulative), none of the 1st.
	f.scan(devA, nov(2, 15, 0), "202611028505910009")
	f.clk.Advance(24 * time.Hour)
	s.tick()
	want := map[int]int{1: 1, 2: 2, 3: 2, 4: 1}
	for d, n := range want {
		if vs, _ := f.archive.Versions("10216100", nov(d, 0, 0)); len(vs) != n {
			t.Errorf("%02d.11: %d versions, want %d", d, len(vs), n)
		}
	}
}

func TestDailyHTTP(t *testing.T) {
	f := newArchiveFixture(t, nov(28, 1, 0))
	f.scan(devA, nov(27, 10, 0), "202611278505910001")
	v1, _ := f.publish(nov(27, 0, 0), "schedule")
	h := &DailyHandler{Archive: f.archive, Builder: f.builder, Offices: func() []string { return []string{"10216100"} }, TempDir: t.TempDir()}
	srv := httptest.NewServer(h)
	defer srv.Close()
	get := func(path string) (*http.Response, []byte) {
		t.Helper()
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, b
	}

	resp, body := get("/api/v1/reports/daily?date=2026-11-27")
	if resp.StatusCode != 200 || resp.Header.Get("X-Report-Version") != "1" || hexSum(body) != v1.SHA256 ||
		resp.Header.Get("Content-Type") != XLSXType {
		t.Fatalf("published day: %s version %q, sha %s want %s", resp.Status, resp.Header.Get("X-Report-Version"), hexSum(body), v1.SHA256)
	}
	// The same date written as the regulation writes it.
	if resp, body := get("/api/v1/reports/daily?date=27.11.2026&kod_to=10216100&version=1"); resp.StatusCode != 200 || hexSum(body) != v1.SHA256 {
		t.Fatalf("version 1 by DD.MM.YYYY: %s", resp.Status)
	}
	// A day not published yet is built as a draft.
	f.scan(devA, nov(28, 0, 30), "202611288505910002")
	resp, body = get("/api/v1/reports/daily?date=2026-11-28")
	if resp.StatusCode != 200 || resp.Header.Get("X-Report-Version") != "draft" {
		t.Fatalf("draft: %s %q", resp.Status, resp.Header.Get("X-Report-Version"))
	}
	if rows := sheetsOf(t, body)[Table1.Sheet]; len(rows) != 3 {
		t.Fatalf("draft of 28.11: table 1 has %d rows with the header, want 3", len(rows))
	}
	for path, want := range map[string]string{
		"/api/v1/reports/daily":                                 "date is required",
		"/api/v1/reports/daily?date=2026-13-01":                 "date",
		"/api/v1/reports/daily?date=2026-11-27&version=0":       "version",
		"/api/v1/reports/daily?date=2026-11-27&kod_to=1021":     "kod_to",
		"/api/v1/reports/daily?date=2026-11-27&dat=2026-11-27":  "unknown parameter",
		"/api/v1/reports/daily?date=2026-11-27&kod_to=10005000": "no ИДК",
		"/api/v1/reports/daily?date=2026-11-27&version=3":       "not published",
	} {
		resp, body := get(path)
		if resp.StatusCode < 400 || !strings.Contains(string(body), want) {
			t.Errorf("%s: %s %q, want an error naming %q", path, resp.Status, body, want)
		}
	}

	resp, body = get("/api/v1/reports/daily/versions?date=2026-11-27")
	var vs []Version
	if err := json.Unmarshal(body, &vs); err != nil || len(vs) != 1 || vs[0].SHA256 != v1.SHA256 {
		t.Fatalf("versions: %s %s", resp.Status, body)
	}
	resp, body = get("/api/v1/reports/daily/incomplete?date=2026-11-28")
	var inc Incomplete
	if err := json.Unmarshal(body, &inc); err != nil || inc.Rows != 2 || inc.Count != 2 || len(inc.List) != 2 ||
		inc.ByDay["27.11.2026"] != 1 || inc.ByDay["28.11.2026"] != 1 {
		t.Fatalf("incomplete: %s %s", resp.Status, body)
	}

	post := func(path string) (*http.Response, []byte) {
		resp, err := http.Post(srv.URL+path, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, b
	}
	if resp, body := post("/api/v1/reports/daily/publish?date=2026-11-28"); resp.StatusCode != 400 || !strings.Contains(string(body), "by") {
		t.Fatalf("publish without by: %s %s", resp.Status, body)
	}
	resp, body = post("/api/v1/reports/daily/publish?date=2026-11-28&by=ПЕТРОВ&reason=ПОЗДНИЙ+СНИМОК")
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"created":true`) || !strings.Contains(string(body), "ПОЗДНИЙ СНИМОК") {
		t.Fatalf("publish: %s %s", resp.Status, body)
	}
	if _, err := os.Stat(filepath.Join(f.dir, "daily", "10216100", "2026-11", "2026-11-28.v1.xlsx")); err != nil {
		t.Fatal(err)
	}
}
