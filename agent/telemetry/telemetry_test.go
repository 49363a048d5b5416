package telemetry

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"idk/agent/devstate"
	"idk/agent/spool"
	"idk/drivers/gps"
	"idk/protocol/idkpb"
	"idk/simulator/simclock"
)

// set moves c on to t.
func set(c *simclock.Clock, t time.Time) { c.Advance(t.Sub(c.Now())) }

func at(hh, mm int) time.Time { return time.Date(2026, 11, 20, hh, mm, 0, 0, time.UTC) }
func engine() devstate.Config {
	return devstate.Config{Home: devstate.Site{Name: "ПКТ", KodTO: "10216100", Disl: 2}}
}
func newTel(t *testing.T, sp *spool.Spool, c *simclock.Clock) *Telemetry {
	t.Helper()
	tel, err := New(Config{Engine: engine(), Spool: sp, Clock: c})
	if err != nil {
		t.Fatal(err)
	}
	return tel
}

// runFor starts Run and returns a stop function that ends it cleanly.
func runFor(t *testing.T, tel *Telemetry) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { tel.Run(ctx); close(done) }()
	time.Sleep(50 * time.Millisecond) // Run has resumed and written its first heartbeat
	return func() { cancel(); <-done }
}

func states(t *testing.T, sp *spool.Spool) []string {
	t.Helper()
	evs, err := sp.PendingEvents(1000, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, ev := range evs {
		if s := ev.GetState(); s != nil {
			out = append(out, time.Unix(0, ev.TimeUnixNano).UTC().Format("15:04")+" "+StateName(s.State))
		}
	}
	return out
}

// The agent stops in the middle of a declared maintenance and comes back
// half an hour later: the half hour is a gap, and the maintenance, which
// staff have not cleared, shows again from the restart.
func TestRestartMidIntervalShowsGapThenResumes(t *testing.T) {
	sp, err := spool.Open(filepath.Join(t.TempDir(), "spool.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	c := simclock.New(at(10, 0))
	tel := newTel(t, sp, c)
	stop := runFor(t, tel)
	d, _ := ParseDeclaration("maintenance", "", "плановое ТО")
	if err := tel.Declare(d); err != nil {
		t.Fatal(err)
	}
	set(c, at(10, 30))
	stop() // the last heartbeat is 10:30

	set(c, at(11, 0))
	tel = newTel(t, sp, c)
	stop = runFor(t, tel)
	defer stop()
	got := strings.Join(states(t, sp), ", ")
	want := "10:00 maintenance, 10:30 unknown, 11:00 maintenance"
	if got != want {
		t.Fatalf("state changes:\n got %s\nwant %s", got, want)
	}
	if cur := tel.Current(); cur.State != idkpb.DeviceState_DEVICE_STATE_MAINTENANCE || cur.Note != "плановое ТО" {
		t.Fatalf("current after restart: %+v", cur)
	}
}

func TestParseDeclarationNamesTheBadWord(t *testing.T) {
	if _, err := ParseDeclaration("lunch", "", ""); err == nil || !strings.Contains(err.Error(), `"lunch"`) {
		t.Errorf("bad state: %v", err)
	}
	if _, err := ParseDeclaration("inoperable", "rain", ""); err == nil || !strings.Contains(err.Error(), `"rain"`) {
		t.Errorf("bad cause: %v", err)
	}
	d, err := ParseDeclaration("Inoperable", "WEATHER", "метель")
	if err != nil || d.State != idkpb.DeviceState_DEVICE_STATE_INOPERABLE || d.Cause != idkpb.InoperableCause_INOPERABLE_CAUSE_WEATHER {
		t.Errorf("good declaration: %+v %v", d, err)
	}
}

// On a nearly full spool disk, positions are shed; state changes are not.
func TestLowDiskShedsPositionsFirst(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		minFree   uint64
		positions int
	}{{0, 3}, {1 << 62, 0}} {
		sp, err := spool.Open(filepath.Join(t.TempDir(), "spool.db"))
		if err != nil {
			t.Fatal(err)
		}
		c := simclock.New(at(9, 0))
		tel, err := New(Config{Engine: devstate.Config{Mobile: true, Home: devstate.Site{Name: "ПКТ", KodTO: "10216100", Disl: 2, Lat: 55, Lon: 37}},
			Spool: sp, Clock: c, SpoolDir: dir, MinFree: tc.minFree, PositionEvery: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		for i := range 3 {
			tel.GPS(gps.Fix{Time: at(9, i*2), Lat: 55, Lon: 37, Valid: true})
		}
		d, _ := ParseDeclaration("maintenance", "", "")
		if err := tel.Declare(d); err != nil {
			t.Fatal(err)
		}
		evs, _ := sp.PendingEvents(100, 1<<20)
		var pos, states int
		for _, ev := range evs {
			if ev.GetPosition() != nil {
				pos++
			}
			if ev.GetState() != nil {
				states++
			}
		}
		if pos != tc.positions || states == 0 || (tc.positions == 0 && tel.Shed() != 3) {
			t.Errorf("min free %d: %d positions (want %d), %d state changes, %d shed", tc.minFree, pos, tc.positions, states, tel.Shed())
		}
		sp.Close()
	}
}
