package availability

import (
	"reflect"
	"testing"
	"time"

	"idk/protocol/idkpb"
)

// TestRelocationsMonth: from the real index, a mobile ИДК that moved
// twice in March (within its customs office, then into another РТУ's
// region), one relocation from February into March and one from March
// into April, each listed whole; a stationary ИДК has none.
func TestRelocationsMonth(t *testing.T) {
	loc := moscow(t)
	now := time.Date(2024, time.April, 5, 12, 0, 0, 0, loc)
	f := newJournalFixture(t, loc, now)
	mobile := &idkpb.Device{NumIdk: "850592", TypeIdk: 1, KodTo: "10216100", NaimTo: "Балтийская", NaimZtk: "МАПП А", DislIdk: 1}
	siteA := &idkpb.Site{NaimZtk: "мапп а", KodTo: "10216100", NaimTo: "балтийская", Disl: 1, Lat: 54.7, Lon: 20.5}
	siteB := &idkpb.Site{NaimZtk: "ЗТК Б", KodTo: "10216120", NaimTo: "Балтийская", Disl: 5}
	siteC := &idkpb.Site{NaimZtk: "Пост В", KodTo: "10012010", NaimTo: "Калининградская", Disl: 2}
	feb := time.Date(2024, time.February, 29, 20, 0, 0, 0, loc)
	f.send(mobile,
		Change{Time: feb.Add(-time.Hour), State: idle, Site: siteC},
		Change{Time: feb, State: relocation, Site: siteC}, // into March
		Change{Time: at(loc, 1, 3, 0), State: operations, Site: siteA},
		Change{Time: at(loc, 4, 8, 0), State: working, Site: siteA},
		// First move in March: A to B, one relocation though reported twice (a GPS update).
		Change{Time: at(loc, 5, 10, 0), State: relocation, Site: siteA},
		Change{Time: at(loc, 5, 11, 0), State: relocation, Source: "gps"},
		Change{Time: at(loc, 5, 12, 30), State: operations, Site: siteB},
		Change{Time: at(loc, 5, 13, 0), State: working, Site: siteB},
		// Second: B to C, over four calendar days.
		Change{Time: at(loc, 18, 22, 0), State: relocation, Site: siteB},
		Change{Time: at(loc, 21, 9, 15), State: idle, Site: siteC},
		// Third: from the month's last evening into April.
		Change{Time: at(loc, 31, 22, 0), State: relocation, Site: siteC},
		Change{Time: time.Date(2024, time.April, 1, 2, 0, 0, 0, loc), State: waiting, Site: siteA},
	)
	f.send(stationaryPB, ch(at(loc, 1, 8, 0), working), ch(at(loc, 1, 20, 0), idle))

	from, to := at(loc, 1, 0, 0), time.Date(2024, time.April, 1, 0, 0, 0, 0, loc)
	got, err := Relocations(f.log, from, to, loc)
	if err != nil {
		t.Fatal(err)
	}
	a := Place{KodTO: "10216100", NaimTO: "БАЛТИЙСКАЯ", NaimZTK: "МАПП А", Disl: 1, Lat: 54.7, Lon: 20.5}
	b := Place{KodTO: "10216120", NaimTO: "БАЛТИЙСКАЯ", NaimZTK: "ЗТК Б", Disl: 5}
	c := Place{KodTO: "10012010", NaimTO: "КАЛИНИНГРАДСКАЯ", NaimZTK: "ПОСТ В", Disl: 2}
	want := []Relocation{
		{NumIDK: "850592", TypeIDK: 1, From: c, To: a, Start: feb, End: at(loc, 1, 3, 0), Region: "10012000", Scope: 30},
		{NumIDK: "850592", TypeIDK: 1, From: c, To: a, Start: at(loc, 31, 22, 0), End: time.Date(2024, time.April, 1, 2, 0, 0, 0, loc), Region: "10012000", Scope: 30},
		{NumIDK: "850592", TypeIDK: 1, From: a, To: b, Start: at(loc, 5, 10, 0), End: at(loc, 5, 12, 30), Region: "10200000", Scope: 28},
		{NumIDK: "850592", TypeIDK: 1, From: b, To: c, Start: at(loc, 18, 22, 0), End: at(loc, 21, 9, 15), Region: "10200000", Scope: 30},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("relocations:\n got %+v\nwant %+v", got, want)
	}
	if d := got[2].Duration(); d != 150*time.Minute {
		t.Errorf("A to B took %v", d)
	}
	if n := got[3].CalendarDays(); n != 4 {
		t.Errorf("B to C: %d calendar days, want 4", n)
	}
	if n := got[2].CalendarDays(); n != 1 {
		t.Errorf("A to B: %d calendar days, want 1", n)
	}

	// A period in the middle of a relocation: it is listed, still
	// running if nothing ended it yet.
	if got, err := Relocations(f.log, at(loc, 19, 0, 0), at(loc, 20, 0, 0), loc); err != nil || len(got) != 1 || !got[0].End.Equal(at(loc, 21, 9, 15)) || got[0].From != b {
		t.Errorf("19th: %+v %v", got, err)
	}
	f.send(stationaryPB, Change{Time: time.Date(2024, time.April, 2, 8, 0, 0, 0, loc), State: relocation})
	got, err = Relocations(f.log, time.Date(2024, time.April, 1, 0, 0, 0, 0, loc), time.Date(2024, time.May, 1, 0, 0, 0, 0, loc), loc)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || !got[1].Ongoing || got[1].NumIDK != "850591" || got[1].From.NaimZTK != "ПКТ" || got[1].Duration() != 0 || got[1].Scope != 0 {
		t.Errorf("April: %+v", got)
	}
}

func TestRegionOf(t *testing.T) {
	for code, want := range map[string]string{"10216100": "10200000", "10012010": "10012000", "10209000": "10200000", "bad": "bad"} {
		if got := RegionOf(code); got != want {
			t.Errorf("RegionOf(%s) = %s, want %s", code, got, want)
		}
	}
}
