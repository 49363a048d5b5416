package report_test

import (
	"bytes"
	"slices"
	"strings"
	"testing"

	"idk/collector/report"
	"idk/simulator/month"
)

// TestMonthlyMonth builds the monthly report (item 37) of the simulated
// month of TestMonth, played through the same real parts, writes it,
// reads it back, and compares every cell of the two summary sheets with
// the month's ground truth (month.ExpectedMonthly) and the row count of
// each of the six tables with the sum of the offices' expected tables.
func TestMonthlyMonth(t *testing.T) {
	w := theMonth(t)
	m, b := w.m, w.builder
	var offices []string
	for _, o := range m.Offices {
		offices = append(offices, o.KodTO)
	}
	mo, err := b.Monthly(m.Start.AddDate(0, 0, 12), offices)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := mo.WriteXLSX(&buf); err != nil {
		t.Fatal(err)
	}
	wb, err := report.ReadWorkbook(&buf)
	if err != nil {
		t.Fatal(err)
	}

	wantOffices, wantIDK := m.ExpectedMonthly()
	compareSummary(t, &report.SummaryOffices, wb[report.SummaryOffices.Sheet], wantOffices)
	compareSummary(t, &report.SummaryIDK, wb[report.SummaryIDK.Sheet], wantIDK)

	last := m.Start.AddDate(0, 0, m.Days-1)
	for n, tbl := range report.Tables {
		want := 0
		for _, o := range m.Offices {
			want += len(m.Expected(o.KodTO, last)[n+1])
		}
		got := len(wb[tbl.Sheet]) - 1
		if got != want {
			t.Errorf("%s: %d rows, want %d", tbl.Sheet, got, want)
		}
	}
	var names []string
	for _, s := range mo.Sheets {
		names = append(names, s.Table.Sheet)
	}
	if want := []string{report.SummaryOffices.Sheet, report.SummaryIDK.Sheet, "Таблица 1", "Таблица 2", "Таблица 3", "Таблица 4", "Таблица 5", "Таблица 6"}; !slices.Equal(names, want) {
		t.Errorf("sheets %q, want %q", names, want)
	}
	// The truth must be worth comparing with: a month with scans,
	// suspicions, breaches and inoperable time.
	for _, f := range []string{"KOL_VO_SNIM", "KOL_VO_PODOZR", "KOL_VO_NAR", "KOL_VO_DN_NEPAB"} {
		if wantOffices[0][report.SummaryOffices.Field(f)] == "0" {
			t.Errorf("the truth's first office has %s 0: the comparison proves little", f)
		}
	}
	t.Logf("%d offices, %d ИДК; first office: %q", len(wantOffices), len(wantIDK), wantOffices[0])
}

// compareSummary compares a summary sheet read back with the truth, cell
// by cell.
func compareSummary(t *testing.T, tbl *report.Table, got, want [][]string) {
	t.Helper()
	if len(got) == 0 {
		t.Errorf("sheet %q missing", tbl.Sheet)
		return
	}
	if h := month.SummaryHeader(tbl); !slices.Equal(got[0], h) {
		t.Errorf("%s: header %q, want %q", tbl.Sheet, got[0], h)
	}
	got = got[1:]
	if len(got) != len(want) {
		t.Errorf("%s: %d rows, want %d:\n got %q\nwant %q", tbl.Sheet, len(got), len(want), got, want)
	}
	for i := range min(len(got), len(want)) {
		for c, col := range tbl.Columns {
			g := ""
			if c < len(got[i]) {
				g = got[i][c]
			}
			if g != want[i][c] {
				t.Errorf("%s row %d (%s): %s = %q, want %q", tbl.Sheet, i+1, strings.Join(want[i][:2], " "), col.Name, g, want[i][c])
			}
		}
	}
}
