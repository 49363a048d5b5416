package devstate

import (
	"slices"
	"testing"
	"time"
)

// TestEntered: a further vehicle entering the zone while an object is
// pending is told by Entered at its edge, since no Change tells it.
func TestEntered(t *testing.T) {
	const at = " @МАПП ТЕСТОВЫЙ"
	tests := []struct {
		name string
		ins  []input // after the first vehicle's arrival at 10:00:00
		want []time.Time
	}{
		{"second vehicle while the first is analysed",
			[]input{ctl("10:01:00", pw, rd), ctl("10:01:30", pw, rd), ctl("10:03:00", pw, rd, zone), ctl("10:03:01", pw, rd, zone)},
			[]time.Time{tm("10:03:00")}},
		{"a link flap is not an arrival",
			[]input{lost("10:01:00"), lost("10:01:40"), ctl("10:03:00", pw, rd, zone)}, nil},
		{"a link flap after the zone cleared is not one either",
			// The zone cleared, the link fell, and the first vehicle is
			// still seen gone: nothing entered.
			[]input{ctl("10:01:00", pw, rd), lost("10:01:10"), lost("10:02:00"), ctl("10:03:00", pw, rd)}, nil},
		{"a sensor drop-out is not a vehicle",
			[]input{ctl("10:01:00", pw, rd), ctl("10:01:02", pw, rd, zone)}, nil},
		{"after the decision the edge is the next arrival, not an entry",
			[]input{ctl("10:01:00", pw, rd), decision("10:02:00"), ctl("10:03:00", pw, rd, zone)}, nil},
		{"switched off ends the object",
			[]input{ctl("10:01:00"), ctl("10:02:00", pw, rd), ctl("10:03:00", pw, rd, zone)}, nil},
		{"two further vehicles",
			[]input{ctl("10:01:00", pw, rd), ctl("10:03:00", pw, rd, zone), ctl("10:04:00", pw, rd), ctl("10:06:00", pw, rd, zone)},
			[]time.Time{tm("10:03:00"), tm("10:06:00")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEngine(t, stationary())
			run(t, e, []step{
				{ctl("09:00:00", pw, rd), []string{"09:00:00 WAITING controller" + at}},
				{ctl("10:00:00", pw, rd, zone), []string{"10:00:00 WORKING controller" + at}},
			})
			if got := e.Entered(); got != nil {
				t.Fatalf("the first vehicle's edge is an entry: %v", got)
			}
			var got []time.Time
			for _, in := range tt.ins {
				in.apply(e)
				got = append(got, e.Entered()...)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("entered %v, want %v", got, tt.want)
			}
			if e.Entered() != nil {
				t.Error("Entered does not forget")
			}
		})
	}
}

// TestEnteredKeepsState: an entry changes no state, and the state still
// ends at the first object's decision.
func TestEnteredKeepsState(t *testing.T) {
	const at = " @МАПП ТЕСТОВЫЙ"
	e := newEngine(t, stationary())
	run(t, e, []step{
		{ctl("09:00:00", pw, rd), []string{"09:00:00 WAITING controller" + at}},
		{ctl("10:00:00", pw, rd, zone), []string{"10:00:00 WORKING controller" + at}},
		{ctl("10:01:00", pw, rd), none},
		{ctl("10:03:00", pw, rd, zone), none},
		{decision("10:05:00"), []string{"10:05:00 WAITING controller" + at}},
	})
	if got := e.Entered(); !slices.Equal(got, []time.Time{tm("10:03:00")}) {
		t.Errorf("entered %v", got)
	}
}

// TestEnteredResume: a gap forgets that the zone was clear.
func TestEnteredResume(t *testing.T) {
	e := newEngine(t, stationary())
	runAll(e, ctl("09:00:00", pw, rd), ctl("10:00:00", pw, rd, zone), ctl("10:01:00", pw, rd))
	snap := e.Snapshot()
	if !snap.ZoneClearSince.Equal(tm("10:01:00")) {
		t.Fatalf("zone clear since %v", snap.ZoneClearSince)
	}
	e, err := New(stationary(), &snap)
	if err != nil {
		t.Fatal(err)
	}
	e.Resume(tm("10:30:00"), tm("10:01:00"))
	runAll(e, arrival("10:30:01"), ctl("10:30:02", pw, rd, zone))
	if got := e.Entered(); got != nil {
		t.Errorf("entered %v after a gap", got)
	}
}
