package cases

import (
	"testing"

	"idk/protocol/idkpb"
)

func enteredEv() *idkpb.Event {
	return &idkpb.Event{Body: &idkpb.Event_VehicleEntered{VehicleEntered: &idkpb.VehicleEntered{}}}
}

// caseWith returns the case of the scan numSnim.
func caseWith(t *testing.T, cs []Case, numSnim string) Case {
	t.Helper()
	for _, c := range cs {
		if c.NumSnim == numSnim {
			return c
		}
	}
	t.Fatalf("no case of %s in %+v", numSnim, cs)
	return Case{}
}

// TestFeedSecondVehicleEntered: a second vehicle entering while the first
// is analysed (the ИДК stays WORKING) gets its own arrival at the edge,
// and TIME_2 of its case starts there; its scan joins it, and its change
// into WORKING after the first decision is no further arrival.
func TestFeedSecondVehicleEntered(t *testing.T) {
	loc := moscow(t)
	f := newFeedFixture(t, at(loc, 5, 9, 0, 0))
	f.play(loc, []step{
		{9, 0, ctl(waiting)},
		{10, 0, ctl(working)}, // the first vehicle arrives
		{10, 2, scanEv("S1")},
		{10, 10, enteredEv()}, // the second enters while the first is analysed
	})
	f.add(Event{Kind: Decision, Time: at(loc, 5, 10, 20, 0), NumIDK: idkX, NumSnim: "S1", By: "оператор"})
	f.play(loc, []step{
		{10, 20, ctl(waiting)}, // devstate: the first object's decision
		{10, 25, ctl(working)}, // the second vehicle's scan begins
		{10, 26, scanEv("S2")},
	})
	f.tick(at(loc, 5, 10, 30, 0))
	cs := f.e.Cases()
	if len(cs) != 2 {
		t.Fatalf("%d cases, want 2: %+v", len(cs), cs)
	}
	first, _ := timer(caseWith(t, cs, "S1"), Time2)
	second, ok := timer(caseWith(t, cs, "S2"), Time2)
	if !first.Start.Equal(at(loc, 5, 10, 0, 0)) {
		t.Errorf("first vehicle's TIME_2 from %v", first.Start)
	}
	if !ok || !second.Start.Equal(at(loc, 5, 10, 10, 0)) {
		t.Errorf("second vehicle's TIME_2 %+v, want from 10:10", second)
	}

	// The next vehicle after that comes into an idle zone: an arrival.
	f.play(loc, []step{
		{10, 40, ctl(waiting)},
		{10, 50, ctl(working)},
	})
	if n := len(f.e.Cases()); n != 3 {
		t.Errorf("%d cases after a third vehicle, want 3: %+v", n, f.e.Cases())
	}
	if z := f.feed.zones[idkX]; z.ahead {
		t.Errorf("zone %+v still ahead", z)
	}
}

// TestFeedEnteredScannedBeforeDecision: the second vehicle is scanned
// before the first decision, so it never comes into WORKING from an idle
// zone: the next vehicle after both is an arrival again.
func TestFeedEnteredScannedBeforeDecision(t *testing.T) {
	loc := moscow(t)
	f := newFeedFixture(t, at(loc, 5, 9, 0, 0))
	f.play(loc, []step{
		{9, 0, ctl(waiting)},
		{10, 0, ctl(working)},
		{10, 2, scanEv("S1")},
		{10, 10, enteredEv()},
		{10, 12, scanEv("S2")},
		{10, 20, ctl(waiting)},
		{11, 0, ctl(working)}, // a third vehicle
	})
	f.tick(at(loc, 5, 11, 1, 0))
	cs := f.e.Cases()
	if len(cs) != 3 {
		t.Fatalf("%d cases, want 3: %+v", len(cs), cs)
	}
	if s2, _ := timer(caseWith(t, cs, "S2"), Time2); !s2.Start.Equal(at(loc, 5, 10, 10, 0)) {
		t.Errorf("S2's TIME_2 from %v", s2.Start)
	}
	third, _ := timer(cs[2], Time2)
	if cs[2].NumSnim != "" || !third.Start.Equal(at(loc, 5, 11, 0, 0)) {
		t.Errorf("third case %+v", cs[2])
	}
}

// TestFeedEnteredNotAnArrival: an entry into a zone not occupied (no
// arrival seen yet, or at an ИДК that never reported a controller) is
// none: the change into WORKING or the scan marks it. The flags survive a
// restart of the collector.
func TestFeedEnteredNotAnArrival(t *testing.T) {
	loc := moscow(t)
	f := newFeedFixture(t, at(loc, 5, 9, 0, 0))
	f.send(at(loc, 5, 9, 0, 0), enteredEv())
	f.send(at(loc, 5, 9, 1, 0), stateEv(waiting, "controller"))
	f.send(at(loc, 5, 9, 2, 0), enteredEv())
	if n := len(f.e.Cases()); n != 0 {
		t.Fatalf("%d cases from entries into an idle zone: %+v", n, f.e.Cases())
	}
	f.send(at(loc, 5, 9, 5, 0), stateEv(working, "controller"))
	f.send(at(loc, 5, 9, 5, 30), scanEv("S1"))
	f.send(at(loc, 5, 9, 6, 0), enteredEv())
	g := NewFeed(f.e, nil)
	if err := g.Load(f.tx); err != nil {
		t.Fatal(err)
	}
	if z := g.zones[idkX]; z != (zone{state: working, controller: true, visible: true, occupied: true, ahead: true}) {
		t.Errorf("loaded zone %+v", z)
	}
	// Switched off: the vehicle that entered is gone, the next WORKING
	// is an arrival (more than 15 minutes after the entry, so that the
	// engine does not take it for the same object).
	f.send(at(loc, 5, 9, 10, 0), stateEv(idkpb.DeviceState_DEVICE_STATE_IDLE, "controller"))
	f.send(at(loc, 5, 9, 30, 0), stateEv(working, "controller"))
	cs := f.e.Cases()
	if len(cs) != 3 {
		t.Fatalf("%d cases, want 3: %+v", len(cs), cs)
	}
	if c, _ := timer(cs[1], Time2); !c.Start.Equal(at(loc, 5, 9, 6, 0)) {
		t.Errorf("entry's case %+v", cs[1])
	}
	if last, _ := timer(cs[2], Time2); !last.Start.Equal(at(loc, 5, 9, 30, 0)) {
		t.Errorf("arrival after the switch-off %+v", cs[2])
	}
}
