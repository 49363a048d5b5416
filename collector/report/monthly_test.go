package report

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

func TestHM(t *testing.T) {
	for _, c := range []struct {
		s string
		m int
	}{{"", 0}, {"0,00", 0}, {"0,59", 59}, {"13,50", 830}, {"24,00", 1440}, {"745,05", 44705}} {
		got, err := ParseHM(c.s)
		if err != nil || got != c.m {
			t.Errorf("ParseHM(%q) = %d, %v; want %d", c.s, got, err, c.m)
		}
		if c.s != "" && FormatHM(c.m) != c.s {
			t.Errorf("FormatHM(%d) = %q, want %q", c.m, FormatHM(c.m), c.s)
		}
	}
	for _, bad := range []string{"1", "1,5", "1,60", "-1,00", "a,00", "1,000", "1.30"} {
		if _, err := ParseHM(bad); err == nil {
			t.Errorf("ParseHM(%q): no error", bad)
		}
	}
}

// rowOf makes a row of t from field values; the rest are empty.
func rowOf(t *Table, f map[string]string) Row {
	r := make(Row, len(t.Columns))
	for k, v := range f {
		r[t.Field(k)] = v
	}
	return r
}

// The summaries' arithmetic on rows made by hand: counts per ИДК, the
// durations summed across the hour, days inoperable, breaches by rule,
// and the office's row the sum of its ИДК's.
func TestSummarizer(t *testing.T) {
	z := newSummarizer("10216100")
	add := func(tbl *Table, f map[string]string) {
		t.Helper()
		if err := z.add(tbl, rowOf(tbl, f)); err != nil {
			t.Fatal(err)
		}
	}
	t1 := func(idk, rez string) {
		add(&Table1, map[string]string{"KOD_TO": "10216100", "NAIM_TO": "ПСКОВСКАЯ", "TYPE_IDK": "2", "NUM_IDK": idk, "REZ": rez})
	}
	t1("850592", "1")
	t1("850592", "2")
	t1("850592", "")
	t1("850591", "2")
	// Table 3: a rule 18 zero row (TYPE_IDK 0) must not set TYPE_IDK.
	add(&Table3, map[string]string{"NUM_IDK": "850593", "TYPE_IDK": "0", "TIME_JOB": "0,00", "TIME_WAIT": "0,00",
		"TIME_OPER": "0,00", "TIME_TEH": "0,00", "TIME_NEPAB": "0,00", "TIME_PEREDISL": "0,00"})
	add(&Table3, map[string]string{"NUM_IDK": "850593", "TYPE_IDK": "1", "TIME_JOB": "10,45", "TIME_WAIT": "2,30",
		"TIME_OPER": "0,20", "TIME_TEH": "1,00", "TIME_NEPAB": "0,50", "TIME_PEREDISL": "0,05"})
	add(&Table3, map[string]string{"NUM_IDK": "850593", "TYPE_IDK": "1", "TIME_JOB": "13,30", "TIME_WAIT": "1,45",
		"TIME_OPER": "0,45", "TIME_TEH": "0,00", "TIME_NEPAB": "0,15", "TIME_PEREDISL": "0,00"})
	add(&Table3, map[string]string{"NUM_IDK": "850591", "TYPE_IDK": "2", "TIME_JOB": "1,00", "TIME_WAIT": "0,00",
		"TIME_OPER": "0,00", "TIME_TEH": "0,00", "TIME_NEPAB": "0,00", "TIME_PEREDISL": "0,00"})
	add(&Table4, map[string]string{"NUM_IDK": "850591", "TYPE_IDK": "2", "TIME_1": "0,16", "TIME_2": "0,20", "PRICH_NAR": "ОЧЕРЕДЬ"})
	add(&Table4, map[string]string{"NUM_IDK": "850591", "TYPE_IDK": "2", "TIME_3": "0,31"})
	add(&Table4, map[string]string{"NUM_IDK": "850592", "TYPE_IDK": "2", "TIME_2": "1,02", "PRICH_NAR": "  "})

	office, idk := z.finish()
	var got []string
	for i := range idk {
		got = append(got, strings.Join(idk[i].IDKRow(), "|"))
	}
	want := []string{
		"10216100|850591|2|1|1|2|1|1|1|1|1,00|0,00|0,00|0,00|0,00|0,00|0",
		"10216100|850592|2|3|1|1|0|1|0|1|0,00|0,00|0,00|0,00|0,00|0,00|0",
		"10216100|850593|1|0|0|0|0|0|0|0|24,15|4,15|1,05|1,00|1,05|0,05|2",
	}
	if !slices.Equal(got, want) {
		t.Errorf("ИДК rows:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if g, w := strings.Join(office.OfficeRow(), "|"), "10216100|ПСКОВСКАЯ|3|4|2|3|1|2|1|2|25,15|4,15|1,05|1,00|1,05|0,05|2"; g != w {
		t.Errorf("office row %s, want %s", g, w)
	}
	if len(SummaryOffices.Columns) != len(office.OfficeRow()) || len(SummaryIDK.Columns) != len(idk[0].IDKRow()) {
		t.Error("a summary row's length is not its table's")
	}

	if err := z.add(&Table3, rowOf(&Table3, map[string]string{"NUM_IDK": "1", "TIME_JOB": "1:30"})); err == nil {
		t.Error("a malformed duration was summed")
	}
}

func TestSummaryColumns(t *testing.T) {
	for _, tbl := range []*Table{&SummaryOffices, &SummaryIDK} {
		seen := map[string]bool{}
		for _, c := range tbl.Columns {
			if seen[c.Name] || strings.ToUpper(c.Name) != c.Name || strings.ContainsFunc(c.Name, func(r rune) bool { return r > 127 }) {
				t.Errorf("%s: column %q repeated or not upper-case ASCII", tbl.Sheet, c.Name)
			}
			seen[c.Name] = true
		}
		if len([]rune(tbl.Sheet)) > 31 {
			t.Errorf("sheet name %q is longer than a spreadsheet allows", tbl.Sheet)
		}
	}
}

// A month built from the archive fixture's collector: both offices'
// tables, the summaries, publication and its versions, the schedule, the
// metrics and the HTTP API.
func TestMonthlyPublish(t *testing.T) {
	f := newArchiveFixture(t, nov(28, 1, 0))
	f.scan(devA, nov(2, 10, 0), "202611028505910001")
	f.form(devA, nov(2, 10, 14), 1, fullForm("202611028505910001", nov(2, 10, 1)))
	f.scan(devB, nov(27, 10, 0), "202611278505920001")
	f.scan(devC, nov(27, 11, 0), "202611278505930001")
	offices := []string{"10216100", "10005000"}

	m, err := f.builder.Monthly(nov(15, 0, 0), offices)
	if err != nil {
		t.Fatal(err)
	}
	if !m.Month.Equal(nov(1, 0, 0)) {
		t.Fatalf("month %v", m.Month)
	}
	var buf bytes.Buffer
	if err := m.WriteXLSX(&buf); err != nil {
		t.Fatal(err)
	}
	wb := sheetsOf(t, buf.Bytes())
	if got := len(wb[Table1.Sheet]); got != 4 {
		t.Fatalf("table 1: %d rows with the header, want 4", got)
	}
	// Office by office: 10216100's two scans, then 10005000's.
	if got := wb[Table1.Sheet][3][Table1.Field("KOD_TO")]; got != "10005000" {
		t.Errorf("table 1's last row is of %s, want 10005000", got)
	}
	off := wb[SummaryOffices.Sheet]
	if len(off) != 3 || off[1][0] != "10216100" || off[1][SummaryOffices.Field("KOL_VO_SNIM")] != "2" ||
		off[2][SummaryOffices.Field("KOL_VO_SNIM")] != "1" || off[1][SummaryOffices.Field("NAIM_TO")] != "БАЛТИЙСКАЯ" {
		t.Errorf("«Сводка по таможням»: %q", off)
	}
	if got := len(wb[SummaryIDK.Sheet]); got != 4 {
		t.Errorf("«Сводка по ИДК»: %d rows with the header, want 4 (%q)", got, wb[SummaryIDK.Sheet])
	}
	if _, err := f.builder.Monthly(nov(1, 0, 0), []string{"10216100", "10216100"}); err == nil {
		t.Error("an office given twice was accepted")
	}
	if _, err := f.builder.Monthly(nov(1, 0, 0), nil); err == nil {
		t.Error("no office accepted")
	}

	// Publication: the schedule does nothing in November, publishes
	// October on the 1st of December, again each day to the 5th only if
	// something changed, and not after.
	s := &MonthlySchedule{Archive: f.archive, Offices: func() []string { return offices }}
	s.Tick()
	if vs, _ := f.archive.MonthlyVersions(nov(1, 0, 0)); len(vs) != 0 {
		t.Fatalf("published in the month itself: %+v", vs)
	}
	f.clk.Advance(time.Date(2026, time.December, 1, 0, 50, 0, 0, scanMSK).Sub(f.clk.Now()))
	s.Tick()
	vs, err := f.archive.MonthlyVersions(nov(30, 0, 0))
	if err != nil || len(vs) != 1 || vs[0].File != "2026-11.v1.xlsx" || vs[0].By != "schedule" {
		t.Fatalf("after the 1st: %+v, %v", vs, err)
	}
	file, v, err := f.archive.OpenMonthly(nov(1, 0, 0), 0)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := io.ReadAll(file)
	file.Close()
	if hexSum(data) != v.SHA256 {
		t.Fatal("the stored file is not the one its manifest names")
	}
	f.clk.Advance(24 * time.Hour)
	s.Tick()
	if vs, _ := f.archive.MonthlyVersions(nov(1, 0, 0)); len(vs) != 1 {
		t.Fatalf("unchanged content republished: %+v", vs)
	}
	// A late scan of the 30th: a new version on the 3rd.
	f.scan(devA, nov(30, 23, 0), "202611308505910002")
	f.clk.Advance(24 * time.Hour)
	s.Tick()
	if vs, _ := f.archive.MonthlyVersions(nov(1, 0, 0)); len(vs) != 2 {
		t.Fatalf("correction not republished: %+v", vs)
	}
	last, ok, err := f.archive.LastMonthlyPublished()
	if err != nil || !ok || !last.Equal(nov(1, 0, 0)) {
		t.Fatalf("LastMonthlyPublished = %v %v %v", last, ok, err)
	}

	// Metrics, on the 3rd of December: November published, December's
	// report due at the end of 5 January.
	got := gatherGauges(t, f.archive.MonthlyCollector(func() []string { return offices }, time.Time{}))
	wantG := map[string]float64{
		"idk_collector_report_monthly_published_timestamp_seconds":    float64(nov(1, 0, 0).Unix()),
		"idk_collector_report_monthly_due_timestamp_seconds":          float64(time.Date(2027, time.January, 6, 0, 0, 0, 0, scanMSK).Unix()),
		"idk_collector_report_breaches_without_reason_previous_month": 0,
		"idk_collector_report_month_start_timestamp_seconds":          float64(time.Date(2026, time.December, 1, 0, 0, 0, 0, scanMSK).Unix()),
	}
	for k, w := range wantG {
		if got[k] != w {
			t.Errorf("%s = %v, want %v", k, got[k], w)
		}
	}

	// HTTP.
	h := &MonthlyHandler{Archive: f.archive, Builder: f.builder, Offices: func() []string { return offices }}
	srv := httptest.NewServer(h)
	defer srv.Close()
	get := func(path string) (*http.Response, []byte) {
		t.Helper()
		res, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res, b
	}
	res, body := get("/api/v1/reports/monthly?month=2026-11")
	if res.StatusCode != 200 || res.Header.Get("X-Report-Version") != "2" {
		t.Fatalf("published month: %d %v", res.StatusCode, res.Header)
	}
	if n := len(sheetsOf(t, body)[Table1.Sheet]); n != 5 {
		t.Errorf("published version 2 has %d table 1 rows with the header, want 5", n)
	}
	if res, _ = get("/api/v1/reports/monthly?month=11.2026&version=1"); res.Header.Get("X-Report-Version") != "1" {
		t.Errorf("version 1: %v", res.Header)
	}
	if res, _ = get("/api/v1/reports/monthly?month=2026-11&fresh=1"); res.Header.Get("X-Report-Version") != "draft" {
		t.Errorf("fresh: %v", res.Header)
	}
	if res, _ = get("/api/v1/reports/monthly?month=2026-10&version=1"); res.StatusCode != http.StatusNotFound {
		t.Errorf("unpublished version: %d", res.StatusCode)
	}
	for _, bad := range []string{"?month=2026-13", "?month=", "?month=2026-11&x=1", "?month=2026-11&version=0"} {
		if res, _ = get("/api/v1/reports/monthly" + bad); res.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: %d, want 400", bad, res.StatusCode)
		}
	}
	_, body = get("/api/v1/reports/monthly/versions?month=2026-11")
	var list []Version
	if err := json.Unmarshal(body, &list); err != nil || len(list) != 2 {
		t.Errorf("versions: %s", body)
	}
	_, body = get("/api/v1/reports/monthly/summary?month=2026-11")
	var sum MonthlySummary
	if err := json.Unmarshal(body, &sum); err != nil || len(sum.Offices) != 2 || sum.Offices[0]["KOL_VO_SNIM"] != "3" {
		t.Errorf("summary: %s", body)
	}
	pub, err := http.Post(srv.URL+"/api/v1/reports/monthly/publish?month=2026-11&by=ИВАНОВ", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(pub.Body)
	pub.Body.Close()
	if pub.StatusCode != 200 || !strings.Contains(string(body), `"created": false`) && !strings.Contains(string(body), `"created":false`) {
		t.Errorf("publish of unchanged content: %d %s", pub.StatusCode, body)
	}
}

// gatherGauges collects c and returns each gauge's value by name.
func gatherGauges(t *testing.T, c prometheus.Collector) map[string]float64 {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(c); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			out[mf.GetName()] = m.GetGauge().GetValue()
		}
	}
	return out
}

// With nothing published, the report owed is the previous month's, but
// not one before the collector's first month.
func TestMonthlyDue(t *testing.T) {
	f := newArchiveFixture(t, nov(20, 12, 0))
	none := func() []string { return nil }
	due := "idk_collector_report_monthly_due_timestamp_seconds"
	if got, want := gatherGauges(t, f.archive.MonthlyCollector(none, time.Time{}))[due], float64(nov(6, 0, 0).Unix()); got != want {
		t.Errorf("nothing published, no first month: due %v, want 6 November %v", got, want)
	}
	if got, want := gatherGauges(t, f.archive.MonthlyCollector(none, nov(10, 0, 0)))[due], float64(time.Date(2026, time.December, 6, 0, 0, 0, 0, scanMSK).Unix()); got != want {
		t.Errorf("first month November: due %v, want 6 December %v", got, want)
	}
	if _, ok := gatherGauges(t, f.archive.MonthlyCollector(none, time.Time{}))["idk_collector_report_monthly_published_timestamp_seconds"]; ok {
		t.Error("a published month with none published")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	(&MonthlySchedule{Archive: f.archive, Offices: none}).Run(ctx) // returns at once
}
