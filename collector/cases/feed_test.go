package cases

import (
	"testing"
	"time"

	"idk/collector/ingest"
	"idk/protocol/idkpb"
)

// memTx is an ingest.Tx in memory, one bucket level deep.
type memTx map[string]map[string][]byte

func (m memTx) Get(b string, k []byte) ([]byte, error) { return m[b][string(k)], nil }
func (m memTx) Put(b string, k, v []byte) error {
	if m[b] == nil {
		m[b] = map[string][]byte{}
	}
	m[b][string(k)] = append([]byte(nil), v...)
	return nil
}
func (m memTx) Delete(b string, k []byte) error { delete(m[b], string(k)); return nil }
func (m memTx) Scan(b string, _, _ []byte, _ bool, fn func(k, v []byte) error) error {
	for k, v := range m[b] {
		if err := fn([]byte(k), v); err != nil {
			return err
		}
	}
	return nil
}

var _ ingest.Tx = memTx{}

// feedFixture feeds one ИДК's events through Apply and Follow, as the
// ingest path does.
type feedFixture struct {
	*fixture
	feed *Feed
	tx   memTx
	dev  *idkpb.Device
}

func newFeedFixture(t *testing.T, start time.Time) *feedFixture {
	f := &feedFixture{fixture: newFixture(t, start), tx: memTx{}, dev: &idkpb.Device{NumIdk: idkX}}
	f.feed = NewFeed(f.e, nil)
	return f
}

func (f *feedFixture) send(at time.Time, ev *idkpb.Event) {
	f.t.Helper()
	if f.clk.Now().Before(at) {
		f.set(at)
	}
	ev.CollectorTimeUnixNano = at.UnixNano()
	if err := f.feed.Apply(f.tx, f.dev, 1, ev); err != nil {
		f.t.Fatal(err)
	}
	f.feed.Follow(f.dev, 1, []*idkpb.Event{ev})
}

// step is an event at h:m on 5 March.
type step struct {
	h, m int
	ev   *idkpb.Event
}

func (f *feedFixture) play(loc *time.Location, steps []step) {
	f.t.Helper()
	for _, s := range steps {
		f.send(at(loc, 5, s.h, s.m, 0), s.ev)
	}
}

func stateEv(s idkpb.DeviceState, source string) *idkpb.Event {
	return &idkpb.Event{Body: &idkpb.Event_State{State: &idkpb.StateChange{State: s, Source: source}}}
}

// ctl is a state change the controller reported.
func ctl(s idkpb.DeviceState) *idkpb.Event { return stateEv(s, "controller") }

func scanEv(snim string) *idkpb.Event {
	return &idkpb.Event{Body: &idkpb.Event_ScanSeen{ScanSeen: &idkpb.ScanSeen{NumSnim: snim}}}
}

const (
	working    = idkpb.DeviceState_DEVICE_STATE_WORKING
	waiting    = idkpb.DeviceState_DEVICE_STATE_WAITING
	unknown    = idkpb.DeviceState_DEVICE_STATE_UNKNOWN
	inoperable = idkpb.DeviceState_DEVICE_STATE_INOPERABLE
)

// TestFeedScanMarksArrivalWithoutController: an ИДК that never reported
// a controller state gets each arrival from its scan, at the ScanSeen
// time, even with an older arrival no scan claimed at the same ИДК.
func TestFeedScanMarksArrivalWithoutController(t *testing.T) {
	loc := moscow(t)
	f := newFeedFixture(t, at(loc, 5, 9, 0, 0))
	f.send(at(loc, 5, 9, 0, 0), stateEv(unknown, "agent"))
	stale := f.add(Event{Kind: Arrival, Time: at(loc, 5, 9, 10, 0), NumIDK: idkX, By: "оператор"})
	f.send(at(loc, 5, 10, 0, 0), scanEv("S1"))
	f.tick(at(loc, 5, 10, 16, 0))
	cs := f.e.Cases()
	var c Case
	for _, x := range cs {
		if x.NumSnim == "S1" {
			c = x
		}
	}
	tm, ok := timer(c, Time2)
	if c.ID == stale || !ok || !tm.Start.Equal(at(loc, 5, 10, 0, 0)) || !tm.Breached {
		t.Errorf("scan's case %+v", c)
	}
	// The operator's own arrival within 15 minutes before the scan is
	// the same object: TIME_2 starts there.
	arr := f.add(Event{Kind: Arrival, Time: at(loc, 5, 10, 20, 0), NumIDK: idkX, By: "оператор"})
	f.send(at(loc, 5, 10, 25, 0), scanEv("S2"))
	c = f.caseOf(arr)
	if tm, ok := timer(c, Time2); c.NumSnim != "S2" || !ok || !tm.Start.Equal(at(loc, 5, 10, 20, 0)) {
		t.Errorf("operator's arrival %+v", c)
	}
}

// TestFeedLinkFlap: with a controller, a link lost and back to WORKING
// after the scan, or a fault, is no arrival; a zone that was WAITING
// before gets one; a scan while the link is down marks the arrival, and
// the link's return to WORKING after it is none.
func TestFeedLinkFlap(t *testing.T) {
	loc := moscow(t)
	f := newFeedFixture(t, at(loc, 5, 9, 0, 0))
	f.play(loc, []step{
		{9, 0, ctl(waiting)},
		{10, 0, ctl(working)},
		{10, 2, scanEv("S1")},
		{10, 4, ctl(unknown)},
		{10, 6, ctl(working)},
		{10, 7, ctl(inoperable)},
		{10, 8, ctl(working)},
	})
	f.add(Event{Kind: DocsReturned, Time: at(loc, 5, 10, 10, 0), NumIDK: idkX, NumSnim: "S1", By: "оператор"})
	f.send(at(loc, 5, 10, 11, 0), ctl(waiting))
	if n := len(f.e.Cases()); n != 1 {
		t.Fatalf("%d cases after the flaps, want 1: %+v", n, f.e.Cases())
	}

	f.play(loc, []step{
		// The link lost, a scan while it is down, then back: one case,
		// its arrival at the scan.
		{11, 0, ctl(unknown)},
		{11, 5, scanEv("S2")},
		{11, 6, ctl(working)},
		// WAITING, then a vehicle entering during an outage: an arrival.
		{11, 30, ctl(waiting)},
		{11, 40, ctl(unknown)},
		{11, 45, ctl(working)},
	})
	f.tick(at(loc, 5, 12, 30, 0))
	cs := f.e.Cases()
	if len(cs) != 3 {
		t.Fatalf("%d cases, want 3: %+v", len(cs), cs)
	}
	s2, _ := timer(cs[1], Time2)
	third, _ := timer(cs[2], Time2)
	if cs[1].NumSnim != "S2" || !s2.Start.Equal(at(loc, 5, 11, 5, 0)) || cs[2].NumSnim != "" || !third.Start.Equal(at(loc, 5, 11, 45, 0)) {
		t.Errorf("cases %+v", cs)
	}

	// The zone survives a restart of the collector: the stored state.
	g := NewFeed(f.e, nil)
	if err := g.Load(f.tx); err != nil {
		t.Fatal(err)
	}
	if z := g.zones[idkX]; z != (zone{state: working, controller: true, visible: true, occupied: true}) {
		t.Errorf("loaded zone %+v", z)
	}
	// A value of the old 1-byte format still loads.
	if z, err := decodeZone([]byte(idkX), []byte{byte(working)}); err != nil || !z.occupied || !z.controller {
		t.Errorf("old format: %+v %v", z, err)
	}
}

// TestFeedLateSpool: the device's own records held in the spool past the
// backdating window are taken; they say why they are late.
func TestFeedLateSpool(t *testing.T) {
	loc := moscow(t)
	f := newFeedFixture(t, at(loc, 5, 10, 0, 0))
	f.set(at(loc, 8, 10, 0, 0))
	f.send(at(loc, 5, 10, 0, 0), scanEv("S1"))
	cs := f.e.Cases()
	if len(cs) != 1 || len(cs[0].Events) != 2 || cs[0].Events[1].Reason != lateReason {
		t.Errorf("cases %+v", cs)
	}
	// A shift lead's report relayed late through the spool is taken too:
	// its time is the agent's clock when it was made.
	f.send(at(loc, 5, 10, 5, 0), &idkpb.Event{Body: &idkpb.Event_CaseReport{CaseReport: &idkpb.CaseReport{
		Kind: "docs_returned", NumSnim: "S1", By: "ПЕТРОВ"}}})
	cs = f.e.Cases()
	if len(cs) != 1 || len(cs[0].Events) != 3 || cs[0].Events[2].Reason != lateReason || cs[0].Events[2].Source != "post" {
		t.Errorf("late post report: cases %+v", cs)
	}
}
