package cases

import (
	"testing"
	"time"

	"idk/protocol/idkpb"
)

// siteEv is a state change that says where the ИДК stands.
func siteEv(kodTO, naimZTK string, disl uint32) *idkpb.Event {
	return &idkpb.Event{Body: &idkpb.Event_State{State: &idkpb.StateChange{
		State: idkpb.DeviceState_DEVICE_STATE_UNKNOWN, Source: "agent",
		Site: &idkpb.Site{KodTo: kodTO, NaimZtk: naimZTK, Disl: disl, Lat: 42.1, Lon: 48.2}}}}
}

// rowOf is the row of image snim among rows.
func rowOf(t *testing.T, rows []Row, snim string) Row {
	t.Helper()
	for _, r := range rows {
		if r.NUM_SNIM == snim {
			return r
		}
	}
	t.Fatalf("no row of %s in %+v", snim, rows)
	return Row{}
}

// TestIdentityFollowsTheDevice: a mobile ИДК's rows carry the site it
// stood at when the deadline passed, as table 3 has it: the state
// change's site over the hello's identity. A state change the spool
// delivers late moves a row as a new version; the stamps outlast a
// restart.
func TestIdentityFollowsTheDevice(t *testing.T) {
	loc := moscow(t)
	f := newFeedFixture(t, at(loc, 5, 8, 0, 0))
	mobile := Device{NumIDK: idkX, TypeIDK: 1, KodTO: "10101010", NaimTO: "Балтийская", NaimZTK: "пкт", DislIDK: 2}
	if err := f.e.SetDevice(mobile); err != nil {
		t.Fatal(err)
	}
	f.send(at(loc, 5, 9, 0, 0), siteEv("10202020", " мапп а ", 1))
	f.send(at(loc, 5, 10, 0, 0), scanEv("S1")) // no controller: the scan is the arrival
	f.tick(at(loc, 5, 10, 16, 0))
	f.send(at(loc, 5, 11, 0, 0), siteEv("10303030", "МАПП Б", 3))
	f.send(at(loc, 5, 12, 0, 0), scanEv("S2"))
	f.tick(at(loc, 5, 12, 16, 0))

	rows := f.rows(at(loc, 5, 0, 0, 0))
	s1, s2 := rowOf(t, rows, "S1"), rowOf(t, rows, "S2")
	// NAIM_TO is not in the site, so it is the hello's; TYPE_IDK and
	// NUM_IDK are the device's.
	if s1.KOD_TO != "10202020" || s1.NAIM_ZTK != "МАПП А" || s1.DISL_IDK != 1 || s1.NAIM_TO != "БАЛТИЙСКАЯ" || s1.TYPE_IDK != 1 || s1.NUM_IDK != idkX {
		t.Errorf("S1 row %+v", s1)
	}
	if s2.KOD_TO != "10303030" || s2.NAIM_ZTK != "МАПП Б" || s2.DISL_IDK != 3 {
		t.Errorf("S2 row %+v", s2)
	}

	// The ИДК had moved on at 11:50 already: the agent's record of it
	// comes late, and S2's row moves, keeping its old version.
	f.send(at(loc, 5, 11, 50, 0), siteEv("10404040", "МАПП В", 4))
	s2 = rowOf(t, f.rows(at(loc, 5, 0, 0, 0)), "S2")
	if s2.KOD_TO != "10404040" || s2.NAIM_ZTK != "МАПП В" {
		t.Errorf("S2 row after the late site %+v", s2)
	}
	if s1 = rowOf(t, f.rows(at(loc, 5, 0, 0, 0)), "S1"); s1.KOD_TO != "10202020" {
		t.Errorf("S1 row moved with a later site: %+v", s1)
	}
	hs, err := f.e.BreachHistory(at(loc, 5, 0, 0, 0), at(loc, 5, 0, 0, 0))
	if err != nil {
		t.Fatal(err)
	}
	var h History
	for _, x := range hs {
		if x.Current != nil && x.Current.NUM_SNIM == "S2" {
			h = x
		}
	}
	if n := len(h.Versions); n < 2 || h.Versions[n-2].Row.KOD_TO != "10303030" || h.Versions[n-1].Row.KOD_TO != "10404040" || h.Versions[n-1].Why != whySite {
		t.Errorf("S2 versions %+v", h.Versions)
	}

	// A restart, first without the feed and then with it: the rows stand.
	f.restart(at(loc, 5, 13, 0, 0))
	if s2 = rowOf(t, f.rows(at(loc, 5, 0, 0, 0)), "S2"); s2.KOD_TO != "10404040" {
		t.Errorf("S2 row after a restart %+v", s2)
	}
	f.feed = NewFeed(f.e, nil)
	if err := f.feed.Load(f.tx); err != nil {
		t.Fatal(err)
	}
	if s1 = rowOf(t, f.rows(at(loc, 5, 0, 0, 0)), "S1"); s1.KOD_TO != "10202020" {
		t.Errorf("S1 row after the feed's load %+v", s1)
	}
	if got := len(f.e.sites[idkX]); got != 3 {
		t.Errorf("site history after load: %d changes, want 3", got)
	}
}

// TestSiteHistoryBounded: the history skips a change to where the ИДК
// already stands (a GPS fix moves no row) and keeps the newest maxSites
// changes.
func TestSiteHistoryBounded(t *testing.T) {
	t0 := time.Date(2024, 3, 5, 0, 0, 0, 0, time.UTC)
	var h []siteChange
	a, b := Place{KodTO: "10202020"}, Place{KodTO: "10303030"}
	h, _ = insertSite(h, siteChange{At: t0, Place: a})
	if _, changed := insertSite(h, siteChange{At: t0.Add(time.Hour), Place: a}); changed {
		t.Error("the same site again changed the history")
	}
	for i := 1; i <= maxSites+10; i++ {
		p := a
		if i%2 == 1 {
			p = b
		}
		var changed bool
		if h, changed = insertSite(h, siteChange{At: t0.Add(time.Duration(i) * time.Hour), Place: p}); !changed {
			t.Fatalf("move %d not taken", i)
		}
	}
	if len(h) != maxSites || !h[0].At.Equal(t0.Add(11*time.Hour)) {
		t.Errorf("%d changes from %v, want %d from %v", len(h), h[0].At, maxSites, t0.Add(11*time.Hour))
	}
	if _, changed := insertSite(h, siteChange{At: t0, Place: b}); changed {
		t.Error("a change older than a full history was taken")
	}
	if _, known := siteAt(h, t0.Add(5*time.Hour)); known {
		t.Error("a time before the kept history has a site")
	}
	if p, known := siteAt(h, t0.Add(12*time.Hour+time.Minute)); !known || p != a {
		t.Errorf("site at 12:01: %v %v", p, known)
	}
}
