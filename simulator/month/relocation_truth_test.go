package month

import (
	"testing"
	"time"

	"idk/collector/report"
)

// The relocation truth's own consistency: only mobile ИДК relocate, each
// between two different sites of its own, the next relocation leaving
// from where the last one arrived; some mobile ИДК relocates at least
// twice (issue 12); and the rows are as many as the relocations.
func TestExpectedRelocations(t *testing.T) {
	loc := time.FixedZone("MSK", 3*3600)
	m := Generate(20261101, time.Date(2026, time.November, 1, 0, 0, 0, 0, loc), loc)
	mobile := map[string]*Device{}
	for _, d := range m.Devices {
		if d.Mobile {
			mobile[d.NumIDK()] = d
		}
	}
	rels := m.Relocations()
	per := map[string]int{}
	last := map[string]Site{}
	for _, r := range rels {
		d, ok := mobile[r.NumIDK]
		if !ok {
			t.Errorf("ИДК %s relocates, but is not mobile", r.NumIDK)
			continue
		}
		if r.From == r.To || !r.End.After(r.Start) {
			t.Errorf("ИДК %s relocation %v-%v from %v to %v", r.NumIDK, r.Start, r.End, r.From, r.To)
		}
		prev, seen := last[r.NumIDK]
		if !seen {
			prev = d.Sites[0]
		}
		if r.From != prev {
			t.Errorf("ИДК %s leaves %v at %v, but stood at %v", r.NumIDK, r.From, r.Start, prev)
		}
		last[r.NumIDK] = r.To
		per[r.NumIDK]++
	}
	twice := 0
	for _, d := range m.Devices {
		n := per[d.NumIDK()]
		t.Logf("ИДК %s (mobile %v) relocates %d times", d.NumIDK(), d.Mobile, n)
		if n >= 2 {
			twice++
		}
	}
	if twice == 0 {
		t.Error("no mobile ИДК relocates twice in the month")
	}
	rows := m.ExpectedRelocations()
	if len(rows) != len(rels) {
		t.Errorf("%d rows for %d relocations", len(rows), len(rels))
	}
	for _, r := range rows {
		if len(r) != len(report.RelocationTable.Columns) {
			t.Fatalf("row %q has %d cells", r, len(r))
		}
	}
}

func TestCalendarDays(t *testing.T) {
	loc := time.FixedZone("MSK", 3*3600)
	at := func(d, h, mi int) time.Time { return time.Date(2026, time.November, d, h, mi, 0, 0, loc) }
	for _, c := range []struct {
		start, end time.Time
		want       int
	}{
		{at(2, 11, 0), at(2, 12, 10), 1},
		{at(2, 23, 30), at(3, 0, 0), 1}, // arriving at midnight touches no new day
		{at(2, 23, 30), at(3, 0, 1), 2},
		{at(6, 9, 0), at(10, 17, 45), 5},
		{at(30, 22, 0), at(30, 22, 0).AddDate(0, 0, 1), 2}, // into the next month
	} {
		if got := calendarDays(c.start, c.end, loc); got != c.want {
			t.Errorf("%v - %v: %d days, want %d", c.start, c.end, got, c.want)
		}
	}
	for _, c := range []struct {
		from, to string
		want     int
	}{
		{"10216100", "10216100", 28},
		{"10216100", "10216200", 28},
		{"10216100", "10209010", 29},
		{"10216100", "10012000", 30},
		{"10012000", "10012010", 28},
	} {
		if got := relocPunkt(c.from, c.to); got != c.want {
			t.Errorf("%s -> %s: item %d, want %d", c.from, c.to, got, c.want)
		}
	}
}
