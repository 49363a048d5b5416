package month

import (
	"strconv"
	"testing"
	"time"

	"idk/collector/report"
)

// The monthly truth's own consistency: a row per office and per ИДК of
// the plan, each office's counts the sum of its ИДК's, and a month that
// has something in every count the comparison relies on.
func TestExpectedMonthly(t *testing.T) {
	loc := time.FixedZone("MSK", 3*3600)
	m := Generate(20261101, time.Date(2026, time.November, 1, 0, 0, 0, 0, loc), loc)
	offices, idk := m.ExpectedMonthly()
	if len(offices) != len(m.Offices) || len(idk) != len(m.Devices) {
		t.Fatalf("%d office rows, %d ИДК rows; want %d, %d", len(offices), len(idk), len(m.Offices), len(m.Devices))
	}
	for i, o := range offices {
		kod := o[report.SummaryOffices.Field("KOD_TO")]
		for _, c := range report.SummaryOffices.Columns[3:] {
			sum := 0
			for _, r := range idk {
				if r[report.SummaryIDK.Field("KOD_TO")] != kod {
					continue
				}
				v := r[report.SummaryIDK.Field(c.Name)]
				if c.Kind == report.Duration {
					sum += minutesOf(v)
				} else {
					n, _ := strconv.Atoi(v)
					sum += n
				}
			}
			got := o[report.SummaryOffices.Field(c.Name)]
			want := strconv.Itoa(sum)
			if c.Kind == report.Duration {
				want = report.FormatHM(sum)
			}
			if got != want {
				t.Errorf("office %d %s %s = %s, the sum of its ИДК's is %s", i, kod, c.Name, got, want)
			}
			if i == 0 && got == "0" && c.Name != "KOL_VO_IDK" {
				t.Logf("office %s has %s 0", kod, c.Name)
			}
		}
	}
}
