package cases

import (
	"errors"
	"testing"
)

// TestDecide: the first deputy's decisions on a breach are versioned
// (the latest in force, the earlier kept), survive a restart, and are
// refused for a case without a breach, an unknown case or no "by".
func TestDecide(t *testing.T) {
	loc := moscow(t)
	f := newFixture(t, at(loc, 5, 9, 0, 0))
	if err := f.e.SetDevice(stationary); err != nil {
		t.Fatal(err)
	}
	// S1 breaches TIME_2; S2 ends within the limit.
	late := f.add(Event{Kind: Scan, Time: at(loc, 5, 10, 0, 0), NumIDK: idkX, NumSnim: "S1"})
	f.add(Event{Kind: Arrival, Time: at(loc, 5, 10, 0, 0), NumIDK: idkX, NumSnim: "S1"})
	f.tick(at(loc, 5, 10, 16, 0))
	f.add(Event{Kind: DocsReturned, Time: at(loc, 5, 10, 17, 0), NumIDK: idkX, NumSnim: "S1"})
	onTime := f.add(Event{Kind: Scan, Time: at(loc, 5, 11, 0, 0), NumIDK: idkX, NumSnim: "S2"})
	f.add(Event{Kind: Arrival, Time: at(loc, 5, 11, 0, 0), NumIDK: idkX, NumSnim: "S2"})
	f.add(Event{Kind: DocsReturned, Time: at(loc, 5, 11, 5, 0), NumIDK: idkX, NumSnim: "S2"})

	if ds, err := f.e.Decisions(); err != nil || len(ds) != 0 {
		t.Fatalf("decisions before any: %v, %v", ds, err)
	}
	f.set(at(loc, 6, 9, 0, 0))
	if err := f.e.Decide(late, false, "Петров П.П.", "нет документов о поломке"); err != nil {
		t.Fatal(err)
	}
	f.set(at(loc, 6, 10, 0, 0))
	if err := f.e.Decide(late, true, "Петров П.П.", "представлен акт о поломке"); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		id, by string
		want   error
	}{
		{onTime, "Петров", ErrInvalid},
		{"NO-SUCH-CASE", "Петров", ErrNotFound},
		{late, " ", ErrInvalid},
		{"", "Петров", ErrInvalid},
	} {
		if err := f.e.Decide(tc.id, true, tc.by, ""); !errors.Is(err, tc.want) {
			t.Errorf("Decide(%q, by %q): %v, want %v", tc.id, tc.by, err, tc.want)
		}
	}

	check := func(when string) {
		t.Helper()
		ds, err := f.e.Decisions(late, onTime, late)
		if err != nil {
			t.Fatal(err)
		}
		if len(ds) != 1 || len(ds[late]) != 2 {
			t.Fatalf("%s: decisions %+v, want two of %s", when, ds, late)
		}
		first, second := ds[late][0], ds[late][1]
		if first.Version != 1 || first.Objective || first.By != "Петров П.П." || !first.At.Equal(at(loc, 6, 9, 0, 0)) || first.Note != "нет документов о поломке" {
			t.Errorf("%s: first decision %+v", when, first)
		}
		if second.Version != 2 || !second.Objective || !second.At.Equal(at(loc, 6, 10, 0, 0)) || second.At.Location() != loc {
			t.Errorf("%s: second decision %+v", when, second)
		}
		all, err := f.e.Decisions()
		if err != nil || len(all[late]) != 2 {
			t.Errorf("%s: every decision: %+v, %v", when, all, err)
		}
	}
	check("before restart")
	f.restart(at(loc, 6, 11, 0, 0))
	check("after restart")
	if err := f.e.Decide(late, false, "Сидоров", ""); err != nil {
		t.Fatal(err)
	}
	if ds, _ := f.e.Decisions(late); len(ds[late]) != 3 || ds[late][2].Version != 3 || ds[late][2].Objective {
		t.Errorf("third decision: %+v", ds[late])
	}
}
