package national

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"idk/collector/report"
)

// fakeRegion serves what a region's collector serves the FTS.
type fakeRegion struct {
	mu      sync.Mutex
	token   string
	offices []map[string]string
	monthly []byte
	version string // X-Report-Version of monthly
	daily   map[string][]byte
}

func (f *fakeRegion) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if r.Header.Get("Authorization") != "Bearer "+f.token {
		http.Error(w, "bad token", http.StatusUnauthorized)
		return
	}
	q := r.URL.Query()
	switch r.URL.Path {
	case "/api/v1/reports/monthly/summary":
		json.NewEncoder(w).Encode(report.MonthlySummary{Month: q.Get("month"), Offices: f.offices, IDK: []map[string]string{}})
	case "/api/v1/reports/monthly":
		w.Header().Set("X-Report-Version", f.version)
		if f.version != "draft" {
			sum := sha256.Sum256(f.monthly)
			w.Header().Set("X-Report-SHA256", hex.EncodeToString(sum[:]))
		}
		w.Write(f.monthly)
	case "/api/v1/reports/daily":
		b, ok := f.daily[q.Get("kod_to")+" "+q.Get("date")]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("X-Report-Version", "1")
		w.Write(b)
	case "/api/v1/availability":
		fmt.Fprintf(w, `[{"DATE":%q,"NUM_IDK":"850591"}]`, q.Get("date"))
	default:
		http.NotFound(w, r)
	}
}

func office(kod string, idk, snim int, job string) map[string]string {
	row := map[string]string{"KOD_TO": kod, "NAIM_TO": "ТАМОЖНЯ " + kod}
	for _, c := range counted {
		if c.Kind == report.Duration {
			row[c.Name] = "0,00"
		} else {
			row[c.Name] = "0"
		}
	}
	row["KOL_VO_IDK"] = fmt.Sprint(idk)
	row["KOL_VO_SNIM"] = fmt.Sprint(snim)
	row["TIME_JOB"] = job
	return row
}

func writeToken(t *testing.T, dir, name, tok string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(tok+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func read(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Two regions, one over HTTPS with its own CA and one over HTTP, and a
// third that is down: the two are pulled and kept with their SHA-256, the
// third is reported by name; a re-pull keeps what it replaces, a draft
// excepted; the national summary adds the two up.
func TestPullKeepsVersionsAndSummaryAddsUp(t *testing.T) {
	dir := t.TempDir()
	a := &fakeRegion{token: "ta", version: "1", monthly: []byte("monthly A v1"),
		offices: []map[string]string{office("10216100", 2, 5, "1,30"), office("10216020", 1, 3, "0,45")},
		daily:   map[string][]byte{"10216100 2026-11-27": []byte("daily A 100"), "10216020 2026-11-27": []byte("daily A 020")}}
	b := &fakeRegion{token: "tb", version: "draft", monthly: []byte("monthly B draft 1"),
		offices: []map[string]string{office("10702000", 1, 4, "10,50")}}
	sa := httptest.NewTLSServer(a)
	defer sa.Close()
	sb := httptest.NewServer(b)
	defer sb.Close()
	down := httptest.NewServer(http.NotFoundHandler())
	downURL := down.URL
	down.Close()
	ca := filepath.Join(dir, "a-ca.crt")
	os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: sa.Certificate().Raw}), 0o644)
	cfg := Default()
	cfg.Dir = filepath.Join(dir, "national")
	cfg.Regions = []Region{
		{Name: "СЗТУ", URL: sa.URL, TokenFile: writeToken(t, dir, "a.token", "ta"), CA: ca},
		{Name: "ЦТУ", URL: sb.URL, TokenFile: writeToken(t, dir, "b.token", "tb")},
		{Name: "ДВТУ", URL: downURL, TokenFile: writeToken(t, dir, "c.token", "tc")},
	}
	if err := cfg.Check(); err != nil {
		t.Fatal(err)
	}
	month, _ := MonthTarget("2026-11")
	res := Pull(context.Background(), cfg, month, nil)
	if got := res.Failed(); !slices.Equal(got, []string{"ДВТУ"}) {
		t.Fatalf("failed %v, want ДВТУ only: %+v", got, res)
	}
	if !strings.Contains(res[2].Err.Error(), "ДВТУ") {
		t.Errorf("the error does not name the region: %v", res[2].Err)
	}
	ma := filepath.Join(cfg.Dir, "СЗТУ", "2026-11")
	if !bytes.Equal(read(t, filepath.Join(ma, MonthlyFile)), a.monthly) {
		t.Fatal("СЗТУ's monthly report not kept byte for byte")
	}
	m, err := ReadManifest(cfg.Dir, "СЗТУ", "2026-11")
	if err != nil {
		t.Fatal(err)
	}
	e, ok := m.file(MonthlyFile)
	sum := sha256.Sum256(a.monthly)
	if !ok || e.SHA256 != hex.EncodeToString(sum[:]) || e.RegionVersion != "1" {
		t.Fatalf("manifest entry %+v", e)
	}

	// The regions correct their reports: A publishes version 2, B builds
	// another draft, and one of A's summary values changes.
	a.mu.Lock()
	a.version, a.monthly = "2", []byte("monthly A v2")
	a.offices[0]["KOL_VO_SNIM"] = "6"
	a.mu.Unlock()
	b.mu.Lock()
	b.monthly = []byte("monthly B draft 2")
	b.mu.Unlock()
	res = Pull(context.Background(), cfg, month, nil)
	if len(res.Failed()) != 1 {
		t.Fatalf("second pull: %+v", res)
	}
	if got := read(t, filepath.Join(ma, VersionsDir, "monthly.v1.xlsx")); string(got) != "monthly A v1" {
		t.Fatalf("version 1 kept as %q", got)
	}
	if _, err := os.Stat(filepath.Join(ma, VersionsDir, "summary.v1.json")); err != nil {
		t.Fatalf("the replaced summary not kept: %v", err)
	}
	mb := filepath.Join(cfg.Dir, "ЦТУ", "2026-11")
	if kept, _ := filepath.Glob(filepath.Join(mb, VersionsDir, "monthly*")); len(kept) != 0 {
		t.Fatalf("a draft kept: %v", kept)
	}
	if string(read(t, filepath.Join(mb, MonthlyFile))) != "monthly B draft 2" {
		t.Fatal("the new draft not in place")
	}
	// Unchanged: nothing moves.
	res = Pull(context.Background(), cfg, month, nil)
	for _, p := range res[0].Files {
		if p.Changed || p.Kept != "" {
			t.Errorf("unchanged re-pull: %+v", p)
		}
	}
	if m, _ := ReadManifest(cfg.Dir, "СЗТУ", "2026-11"); len(m.Versions) != 2 {
		t.Errorf("versions %+v, want the monthly v1 and the summary", m.Versions)
	}

	// A day: one workbook per office of the region's summary, and the
	// fleet's table 3.
	day, _ := DayTarget("2026-11-27")
	res = Pull(context.Background(), cfg, day, nil)
	if res[0].Err != nil || len(res[0].Files) != 3 {
		t.Fatalf("day pull of СЗТУ: %+v", res[0])
	}
	if string(read(t, filepath.Join(ma, DailyFile("2026-11-27", "10216020")))) != "daily A 020" {
		t.Fatal("daily of 10216020")
	}
	if got := string(read(t, filepath.Join(ma, FleetFile("2026-11-27")))); got != `[{"DATE":"2026-11-27","NUM_IDK":"850591"}]` {
		t.Fatalf("fleet: %s", got)
	}
	if res[1].Err == nil || !strings.Contains(res[1].Err.Error(), "ЦТУ") {
		t.Fatalf("ЦТУ has no daily report: %v", res[1].Err)
	}

	// The national summary: a row per region, the total.
	s, err := BuildSummary(cfg.Dir, "2026-11", cfg.RegionNames())
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(s.Missing, []string{"ДВТУ"}) || len(s.Regions) != 2 {
		t.Fatalf("regions %d, missing %v", len(s.Regions), s.Missing)
	}
	if s.Regions[0].Total["KOL_VO_SNIM"] != "9" || s.Regions[0].Total["KOL_VO_IDK"] != "3" || s.Regions[0].Total["TIME_JOB"] != "2,15" {
		t.Errorf("СЗТУ row %v", s.Regions[0].Total)
	}
	if s.Total["KOL_VO_SNIM"] != "13" || s.Total["TIME_JOB"] != "13,05" || s.Total["KOL_VO_DN_NEPAB"] != "0" {
		t.Errorf("total %v", s.Total)
	}
	var xb bytes.Buffer
	if err := s.WriteXLSX(&xb); err != nil {
		t.Fatal(err)
	}
	wb, err := report.ReadWorkbook(&xb)
	if err != nil {
		t.Fatal(err)
	}
	rows := wb[RegionsTable.Sheet]
	if len(rows) != 4 || rows[3][0] != TotalName || rows[3][RegionsTable.Index("KOL_VO_SNIM")] != "13" {
		t.Fatalf("regions sheet %v", rows)
	}
	if len(wb[OfficesTable.Sheet]) != 4 {
		t.Fatalf("offices sheet %v", wb[OfficesTable.Sheet])
	}
	var again bytes.Buffer
	s.WriteXLSX(&again)
	var first bytes.Buffer
	s.WriteXLSX(&first)
	if !bytes.Equal(first.Bytes(), again.Bytes()) {
		t.Error("the same summary gave two workbooks")
	}
}

// A value not written as a region writes it is refused, naming the
// region, the row and the column.
func TestSummaryRefusesBadValues(t *testing.T) {
	for _, bad := range []struct{ col, val string }{
		{"KOL_VO_SNIM", "1.5"}, {"KOL_VO_SNIM", ""}, {"KOL_VO_NAR", "-1"}, {"TIME_OPER", "1:30"}, {"TIME_OPER", "1,5"}, {"KOL_VO_PODOZR", "007"},
	} {
		dir := t.TempDir()
		row := office("10216100", 1, 1, "0,30")
		row[bad.col] = bad.val
		folder := filepath.Join(dir, "СКТУ", "2026-11")
		os.MkdirAll(folder, 0o755)
		data, _ := json.Marshal(report.MonthlySummary{Month: "2026-11", Offices: []map[string]string{office("10216020", 0, 0, "0,00"), row}})
		os.WriteFile(filepath.Join(folder, SummaryFile), data, 0o644)
		_, err := BuildSummary(dir, "2026-11", nil)
		if err == nil || !strings.Contains(err.Error(), "region СКТУ") || !strings.Contains(err.Error(), "office row 2") || !strings.Contains(err.Error(), "column "+bad.col) {
			t.Errorf("%s=%q: %v", bad.col, bad.val, err)
		}
	}
}

// The example configuration loads, and every setting in it says its
// default or that it is required.
func TestExampleConfig(t *testing.T) {
	const path = "../../deploy/national.toml"
	cfg, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Regions) != 2 || cfg.Regions[0].Name != "СЗТУ" || cfg.Regions[0].TokenFile != filepath.Join("..", "..", "deploy", "tokens", "sztu.token") {
		t.Fatalf("%+v", cfg)
	}
	key := regexp.MustCompile(`^([a-z_]+)\s*=`)
	var comment []string
	for i, line := range strings.Split(string(read(t, path)), "\n") {
		switch {
		case strings.HasPrefix(line, "#"):
			comment = append(comment, line)
		case key.MatchString(line):
			c := strings.Join(comment, " ")
			if !strings.Contains(c, "Default:") && !strings.Contains(c, "Required.") {
				t.Errorf("line %d %q: the comment above gives no Default: or Required.", i+1, line)
			}
			comment = nil
		default:
			comment = nil
		}
	}
}

func TestCheckRefusesBadRegions(t *testing.T) {
	cfg := Default()
	cfg.Regions = []Region{{Name: "../x", URL: "ftp://h", TokenFile: ""}, {Name: "A", URL: "https://h:1", TokenFile: "t"}, {Name: "A", URL: "https://h:1", TokenFile: "t"}}
	err := cfg.Check()
	for _, want := range []string{"region 1 (../x): name", "url \"ftp://h\"", "token_file is required", "region 3 (A): name given twice"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("want %q in %v", want, err)
		}
	}
}

func TestTargetsTakeBothForms(t *testing.T) {
	for in, want := range map[string]Target{"2026-11": {Month: "2026-11"}, "11.2026": {Month: "2026-11"}} {
		if got, err := MonthTarget(in); err != nil || got != want {
			t.Errorf("month %q: %+v %v", in, got, err)
		}
	}
	for in, want := range map[string]Target{"2026-11-27": {Month: "2026-11", Day: "2026-11-27"}, "27.11.2026": {Month: "2026-11", Day: "2026-11-27"}} {
		if got, err := DayTarget(in); err != nil || got != want {
			t.Errorf("day %q: %+v %v", in, got, err)
		}
	}
	for _, bad := range []string{"", "2026-13", "2026/11", "2026-11-31x"} {
		if _, err := MonthTarget(bad); err == nil {
			t.Errorf("month %q accepted", bad)
		}
		if _, err := DayTarget(bad); err == nil {
			t.Errorf("day %q accepted", bad)
		}
	}
}
