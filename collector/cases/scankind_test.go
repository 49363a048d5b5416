package cases

import (
	"errors"
	"testing"
)

// TestScanKinds: a test, radiation-control or repeat scan carries no
// TIME_2 (nor TIME_3) clock and makes no breach, whether its kind comes
// with the scan or is declared after a breach was recorded. An object
// scan and a failed scan keep theirs.
func TestScanKinds(t *testing.T) {
	loc := moscow(t)
	for _, tc := range []struct {
		kind  ScanKind
		timed bool
	}{{0, true}, {ScanObject, true}, {ScanFailure, true}, {ScanRadiation, false}, {ScanRepeat, false}, {ScanTest, false}} {
		t.Run(tc.kind.String(), func(t *testing.T) {
			f := newFixture(t, at(loc, 5, 10, 0, 0))
			id := f.add(Event{Kind: Arrival, Time: at(loc, 5, 10, 0, 0), NumIDK: idkX})
			f.add(Event{Kind: Scan, Time: at(loc, 5, 10, 1, 0), NumIDK: idkX, NumSnim: "S1", VerScan: tc.kind})
			f.add(Event{Kind: Decision, Time: at(loc, 5, 10, 3, 0), NumIDK: idkX, NumSnim: "S1", Suspected: true})
			f.tick(at(loc, 5, 11, 0, 0))
			c := f.caseOf(id)
			_, has2 := timer(c, Time2)
			_, has3 := timer(c, Time3)
			rows := f.rows(at(loc, 5, 0, 0, 0))
			if has2 != tc.timed || has3 != tc.timed || (len(rows) == 1) != tc.timed || c.VerScan != tc.kind || !c.Suspected {
				t.Errorf("TIME_2 %v, TIME_3 %v, rows %+v, case %+v", has2, has3, rows, c)
			}
		})
	}

	// Declared after the breach: the row is withdrawn as a new version,
	// and the breach stays in the history.
	f := newFixture(t, at(loc, 5, 10, 0, 0))
	id := f.add(Event{Kind: Arrival, Time: at(loc, 5, 10, 0, 0), NumIDK: idkX})
	f.add(Event{Kind: Scan, Time: at(loc, 5, 10, 1, 0), NumIDK: idkX, NumSnim: "S1"})
	f.tick(at(loc, 5, 10, 20, 0))
	if rows := f.rows(at(loc, 5, 0, 0, 0)); len(rows) != 1 || rows[0].TIME_2 != "0,20" {
		t.Fatalf("rows before the declaration %+v", rows)
	}
	f.add(Event{Kind: Scan, Time: at(loc, 5, 10, 21, 0), NumIDK: idkX, NumSnim: "S1", VerScan: ScanTest, By: "инженер сервиса", Reason: "калибровка"})
	if rows := f.rows(at(loc, 5, 0, 0, 0)); len(rows) != 0 {
		t.Errorf("test scan still in table 4: %+v", rows)
	}
	h := history(t, f)
	if len(h) != 1 || h[0].ID != id || h[0].Current != nil || len(h[0].Versions) != 2 ||
		!h[0].Versions[0].Standing || h[0].Versions[1].Standing || h[0].Versions[1].By != "инженер сервиса" {
		t.Errorf("history %+v", h)
	}

	// Only a scan or a decision carries a kind, and only a table 1 code.
	for _, ev := range []Event{
		{Kind: Scan, Time: at(loc, 5, 10, 30, 0), NumIDK: idkX, NumSnim: "S2", VerScan: 6, By: "x"},
		{Kind: Arrival, Time: at(loc, 5, 10, 30, 0), NumIDK: idkX, VerScan: ScanTest, By: "x"},
	} {
		if _, err := f.e.Add(ev); !errors.Is(err, ErrInvalid) {
			t.Errorf("%+v: %v, want ErrInvalid", ev, err)
		}
	}
}

func history(t *testing.T, f *fixture) []History {
	t.Helper()
	h, err := f.e.BreachHistory(at(f.loc, 1, 0, 0, 0), at(f.loc, 31, 0, 0, 0))
	if err != nil {
		t.Fatal(err)
	}
	return h
}
