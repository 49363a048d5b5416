package report_test

import (
	"bytes"
	"fmt"
	"testing"

	"idk/collector/report"
)

// TestItem36Month plays the simulated month through the collector's real
// parts (as TestMonth does), gives the breaches' reasons, records the
// first deputies' decisions the month plans (some twice: the second in
// force), then builds each office's item 36 report, writes it as a
// workbook, reads it back and compares it cell by cell with the truth
// the simulator computes from its plan; and compares every end-of-shift
// list of every ИДК item by item.
func TestItem36Month(t *testing.T) {
	w := theMonth(t)
	m := w.m

	// The first deputies decide on the breaches after the month.
	last := m.Start.AddDate(0, 0, m.Days-1)
	rows, err := w.engine.Breaches(m.Start, last)
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]string{}
	for _, r := range rows {
		ids[r.NUM_IDK+"/"+r.NUM_SNIM] = r.ID
	}
	decisions := m.DeputyDecisions()
	if len(decisions) == 0 {
		t.Fatal("the month plans no decision")
	}
	for _, d := range decisions {
		id, ok := ids[d.NumIDK+"/"+d.NumSnim]
		if !ok {
			t.Fatalf("no table 4 row for scan %s of ИДК %s, which the truth says breached", d.NumSnim, d.NumIDK)
		}
		if now := w.clk.Now(); d.At.After(now) {
			w.clk.Advance(d.At.Sub(now))
		}
		if err := w.engine.Decide(id, d.Objective, d.By, d.Note); err != nil {
			t.Fatal(err)
		}
	}

	var h []string
	for _, c := range report.Item36Table.Columns {
		h = append(h, c.Name)
	}
	total := 0
	for _, o := range m.Offices {
		rep, err := report.BuildItem36(w.engine, o.KodTO, m.Start, w.clk.Now())
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		if err := rep.WriteXLSX(&buf); err != nil {
			t.Fatal(err)
		}
		wb, err := report.ReadWorkbook(&buf)
		if err != nil {
			t.Fatal(err)
		}
		got := wb[report.Item36Table.Sheet]
		want := m.ExpectedItem36(o.KodTO, decisions)
		total += len(want)
		if len(got) == 0 || fmt.Sprint(got[0]) != fmt.Sprint(h) {
			t.Fatalf("office %s: header %q, want %q", o.KodTO, got, h)
		}
		got = got[1:]
		if len(got) != len(want) {
			t.Errorf("office %s: %d rows, want %d", o.KodTO, len(got), len(want))
		}
		bad := 0
		for i := range min(len(got), len(want)) {
			for c, col := range report.Item36Table.Columns {
				g := ""
				if c < len(got[i]) {
					g = got[i][c]
				}
				if g != want[i][c] && bad < 20 {
					bad++
					t.Errorf("office %s row %d (%s %s): %s = %q, want %q", o.KodTO, i+1, want[i][4], want[i][7], col.Name, g, want[i][c])
				}
			}
		}
		// The printed page is built from the same rows.
		buf.Reset()
		if err := rep.WriteHTML(&buf); err != nil {
			t.Fatal(err)
		}
	}

	shifts, items := 0, 0
	for _, sh := range m.Shifts() {
		got, err := w.scans.ShiftList(w.index, sh.NumIDK, sh.From, sh.To)
		if err != nil {
			t.Fatal(err)
		}
		shifts++
		items += len(sh.Items)
		where := fmt.Sprintf("ИДК %s shift %s-%s", sh.NumIDK, sh.From.Format("02.01 15:04"), sh.To.Format("02.01 15:04"))
		if len(got) != len(sh.Items) {
			t.Errorf("%s: %d items, want %d", where, len(got), len(sh.Items))
			continue
		}
		for i, g := range got {
			e := sh.Items[i]
			want := report.ShiftItem{KodTO: e.KodTO, NaimTO: e.NaimTO, NaimZTK: e.NaimZTK, NumIDK: e.NumIDK, NumSnim: e.NumSnim,
				At: g.At, NumTS: e.NumTS, NumPTS: e.NumPTS, NumCont: e.NumCont, NaimTov: e.NaimTov, Prim: e.Prim, Operator: e.Operator}
			if !g.At.Equal(e.At) || g != want {
				t.Errorf("%s item %d:\n got %+v\nwant %+v (at %v)", where, i+1, g, want, e.At)
			}
		}
	}
	if total == 0 || items == 0 {
		t.Errorf("nothing compared: %d item 36 rows, %d shift items", total, items)
	}
	t.Logf("%d decisions; %d item 36 rows, %d shifts with %d items compared", len(decisions), total, shifts, items)
}
