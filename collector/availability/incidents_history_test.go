package availability

import (
	"reflect"
	"testing"
	"time"

	"idk/collector/registry"
	"idk/protocol/idkpb"
)

// TestIncidentsBetween: any window gives, from the stored changes, the
// incidents the whole history gives that overlap it, with the start of
// a run begun before the window and the end and latest cause of one
// going on after it; an incident still open at now stays open.
func TestIncidentsBetween(t *testing.T) {
	loc := moscow(t)
	now := at(loc, 28, 12, 0)
	f := newJournalFixture(t, loc, now)
	all := []Change{
		ch(at(loc, 1, 8, 0), working),
		{Time: at(loc, 2, 23, 0), State: inoperable, Source: "controller"},
		// The cause given the next day: the same incident, over midnight.
		{Time: at(loc, 3, 1, 0), State: inoperable, Cause: idkpb.InoperableCause_INOPERABLE_CAUSE_GENERATOR, Note: "ДГУ", Source: "staff"},
		ch(at(loc, 3, 9, 0), working),
		{Time: at(loc, 5, 14, 0), State: inoperable, Cause: idkpb.InoperableCause_INOPERABLE_CAUSE_SOFTWARE},
		ch(at(loc, 5, 14, 20), maintenance),
		ch(at(loc, 5, 15, 0), working),
		{Time: at(loc, 27, 10, 0), State: inoperable, Cause: idkpb.InoperableCause_INOPERABLE_CAUSE_BOOM},
	}
	f.send(stationaryPB, all...)
	other := &idkpb.Device{NumIdk: "850700", TypeIdk: 2, KodTo: "10101020", NaimZtk: "МАПП"}
	otherAll := []Change{ch(at(loc, 1, 0, 0), idle), {Time: at(loc, 5, 14, 10), State: inoperable}, ch(at(loc, 5, 16, 0), idle)}
	f.send(other, otherAll...)

	whole := append(incidents("850591", timeline(stationary, all, now), loc, now),
		incidents("850700", timeline(registry.DeviceFromProto(other), otherAll, now), loc, now)...)
	if len(whole) != 4 {
		t.Fatalf("the history has %d incidents, want 4: %+v", len(whole), whole)
	}
	windows := []struct{ from, to time.Time }{
		{at(loc, 1, 0, 0), at(loc, 29, 0, 0)},
		{at(loc, 3, 0, 0), at(loc, 3, 0, 30)}, // within the run, before the cause was given
		{at(loc, 2, 0, 0), at(loc, 2, 23, 30)},
		{at(loc, 3, 9, 0), at(loc, 5, 14, 0)}, // touching both: overlaps neither
		{at(loc, 5, 14, 15), at(loc, 5, 14, 16)},
		{at(loc, 28, 11, 0), at(loc, 29, 0, 0)},
	}
	for d := 1; d <= 28; d++ {
		windows = append(windows, struct{ from, to time.Time }{at(loc, d, 0, 0), at(loc, d+1, 0, 0)})
	}
	for _, w := range windows {
		got, err := IncidentsBetween(f.log, w.from, w.to, loc, now)
		if err != nil {
			t.Fatal(err)
		}
		var want []Incident
		for _, inc := range whole {
			if inc.Start.Before(w.to) && (inc.Open() || inc.End.After(w.from)) {
				want = append(want, inc)
			}
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s to %s:\n got %+v\nwant %+v", w.from, w.to, got, want)
		}
	}

	got, err := IncidentsBetween(f.log, at(loc, 3, 0, 0), at(loc, 3, 0, 30), loc, now)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || !got[0].Start.Equal(at(loc, 2, 23, 0)) || !got[0].End.Equal(at(loc, 3, 9, 0)) ||
		got[0].Cause != idkpb.InoperableCause_INOPERABLE_CAUSE_GENERATOR || got[0].Note != "ДГУ" {
		t.Errorf("the incident over midnight: %+v", got)
	}
	got, err = IncidentsBetween(f.log, at(loc, 28, 0, 0), at(loc, 29, 0, 0), loc, now)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || !got[0].Open() || got[0].Duration != 26*time.Hour || got[0].ID != incidentID("850591", at(loc, 27, 10, 0)) {
		t.Errorf("the open incident: %+v", got)
	}
}

// TestAnnotate: incidents read from the index get the acks and steps
// the tracker holds, as its own incidents do.
func TestAnnotate(t *testing.T) {
	loc := moscow(t)
	now := at(loc, 5, 9, 30)
	f := newJournalFixture(t, loc, now)
	f.send(stationaryPB, ch(at(loc, 5, 8, 0), working), Change{Time: at(loc, 5, 9, 0), State: inoperable})
	incs, err := IncidentsBetween(f.log, at(loc, 5, 0, 0), at(loc, 6, 0, 0), loc, now)
	if err != nil || len(incs) != 1 {
		t.Fatalf("%v, %+v", err, incs)
	}
	if err := f.tracker.Ack("850591", incs[0].ID, "Иванов"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.tracker.Report("850591", incs[0].ID, StepHead, "Петров"); err != nil {
		t.Fatal(err)
	}
	f.tracker.Annotate(incs)
	if want := f.tracker.Incidents("850591"); !reflect.DeepEqual(incs, want) {
		t.Errorf("annotated:\n got %+v\nwant %+v", incs, want)
	}
	if incs[0].Reports[StepHead].By != "Петров" || !incs[0].Acked {
		t.Errorf("annotated: %+v", incs[0])
	}
}
