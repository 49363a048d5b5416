package report_test

import (
	"bytes"
	"fmt"
	"testing"

	"idk/collector/availability"
	"idk/collector/report"
)

// TestRelocationMonth plays the simulated month through the collector's
// real parts (as TestMonth does), lists the month's relocations from the
// index, and compares the relocation return, as rows and as a workbook
// written and read back, cell by cell with the truth the simulator
// computes from its plan. The month must have a mobile ИДК that
// relocated at least twice (issue 12).
func TestRelocationMonth(t *testing.T) {
	w := theMonth(t)
	m := w.m
	monthStart, monthEnd := m.Start, m.Start.AddDate(0, 0, m.Days)
	rels, err := availability.Relocations(w.index, monthStart, monthEnd, w.loc)
	if err != nil {
		t.Fatal(err)
	}
	want := m.ExpectedRelocations()
	per := map[string]int{}
	for _, r := range want {
		per[r[report.RelocationTable.Field("NUM_IDK")]]++
	}
	twice := false
	for _, d := range m.Devices {
		if n := per[d.NumIDK()]; n >= 2 {
			twice = true
			t.Logf("ИДК %s relocated %d times", d.NumIDK(), n)
		}
	}
	if !twice {
		t.Fatalf("the truth has no ИДК that relocated twice: %d rows", len(want))
	}

	rows := report.RelocationRows(rels, w.loc)
	got := make([][]string, len(rows))
	for i, r := range rows {
		got[i] = r
	}
	compareRelocations(t, "rows", got, want)

	var buf bytes.Buffer
	if err := report.WriteWorkbook(&buf, []report.Sheet{report.RelocationSheet(rels, w.loc)},
		report.WorkbookOptions{Title: "Передислокация ИДК " + monthStart.Format("01.2006"), Created: m.End}); err != nil {
		t.Fatal(err)
	}
	book, err := report.ReadWorkbook(&buf)
	if err != nil {
		t.Fatal(err)
	}
	sheet := book[report.RelocationTable.Sheet]
	var h []string
	for _, c := range report.RelocationTable.Columns {
		h = append(h, c.Name)
	}
	if len(sheet) == 0 || fmt.Sprint(sheet[0]) != fmt.Sprint(h) {
		t.Fatalf("workbook header %q, want %q", sheet, h)
	}
	compareRelocations(t, "workbook", sheet[1:], want)
	t.Logf("%d relocations compared", len(want))
}

func compareRelocations(t *testing.T, what string, got, want [][]string) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d rows, want %d", what, len(got), len(want))
	}
	bad := 0
	for i := range min(len(got), len(want)) {
		for c, col := range report.RelocationTable.Columns {
			g := ""
			if c < len(got[i]) {
				g = got[i][c]
			}
			if g != want[i][c] && bad < 20 {
				bad++
				t.Errorf("%s row %d (ИДК %s from %s): %s = %q, want %q", what, i+1, want[i][1], want[i][9], col.Name, g, want[i][c])
			}
		}
	}
}
