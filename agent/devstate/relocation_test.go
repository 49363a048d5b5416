package devstate

import (
	"encoding/json"
	"testing"
	"time"

	"idk/drivers/gps"
)

const (
	atHome = " @МАПП ТЕСТОВЫЙ"
	atB    = " @ПКТ"
	atC    = " @ЖДПП ЮЖНЫЙ"
	atOut  = " @ВНЕ ПП"
)

func TestRelocationRoute(t *testing.T) {
	e := newEngine(t, mobile())
	run(t, e, []step{
		{ctl("09:00:00"), []string{"09:00:00 IDLE controller" + atHome}},
		{fix("09:00:00", home.Lat, home.Lon, 0), none},
		{fix("09:05:00", home.Lat+0.001, home.Lon, 3), none}, // 111 m, slow: still at the site
		{fix("09:10:00", home.Lat+0.002, home.Lon, 25), []string{"09:10:00 RELOCATION gps" + atHome}},
		{ctl("09:10:30"), none},
		{fix("09:20:00", home.Lat+0.05, home.Lon, 60), none},
		// A traffic light: a stop shorter than the dwell.
		{fix("09:25:00", home.Lat+0.07, home.Lon, 0), none},
		{fix("09:30:00", home.Lat+0.07, home.Lon, 0), none},
		{fix("09:31:00", home.Lat+0.08, home.Lon, 50), none},
		// The stop at ПКТ, 111 m from its centre, within its 300 m.
		{fix("09:40:00", siteB.Lat+0.001, siteB.Lon, 4), none},
		{noFix("09:42:00"), none},
		{ctl("09:45:00", pw), none}, // deployment starts during the dwell
		{fix("09:49:59", siteB.Lat+0.0012, siteB.Lon, 0), none},
		// Arrived: back-dated to the dwell's start, with what happened since.
		{fix("09:50:00", siteB.Lat+0.0012, siteB.Lon, 0), []string{
			"09:40:00 IDLE controller" + atB,
			"09:45:00 OPERATIONS controller" + atB,
		}},
		{ctl("10:00:00", pw, rd), []string{"10:00:00 WAITING controller" + atB}},
		{fix("10:00:00", siteB.Lat, siteB.Lon, 0), none},

		// On to a place that is no known site.
		{ctl("12:00:00"), []string{"12:00:00 IDLE controller" + atB}},
		{fix("12:05:00", siteB.Lat+0.003, siteB.Lon, 30), []string{"12:05:00 RELOCATION gps" + atB}},
		{fix("12:30:00", nowhere.Lat, nowhere.Lon, 2), none},
		{fix("12:35:00", nowhere.Lat+0.0005, nowhere.Lon, 0), none},
		{fix("12:40:00", nowhere.Lat+0.0005, nowhere.Lon, 0), []string{"12:30:00 IDLE controller" + atOut}},
	})
	want := Site{Name: "ВНЕ ПП", KodTO: siteB.KodTO, NaimTO: siteB.NaimTO, Disl: 5, Lat: nowhere.Lat + 0.0005, Lon: nowhere.Lon}
	if got := e.Current().Site; got != want {
		t.Errorf("site = %+v, want %+v", got, want)
	}
	// The unnamed site is a site like the others: leaving it is relocating.
	run(t, e, []step{
		{fix("13:00:00", nowhere.Lat+0.0008, nowhere.Lon, 0), none},
		{fix("13:05:00", nowhere.Lat+0.0008, nowhere.Lon, 70), []string{"13:05:00 RELOCATION gps" + atOut}},
		{fix("13:45:00", siteC.Lat, siteC.Lon, 0), none},
		{fix("13:55:00", siteC.Lat, siteC.Lon, 0), []string{"13:45:00 IDLE controller" + atC}},
	})
	if got := e.Current().Site; got != siteC {
		t.Errorf("site = %+v, want %+v", got, siteC)
	}
}

func TestRelocationScenarios(t *testing.T) {
	tests := []struct {
		name  string
		steps []step
	}{
		{"declarations during the drive", []step{
			{declare("09:00:00", operations, 0, "СВЁРТЫВАНИЕ"), []string{"09:00:00 OPERATIONS staff «СВЁРТЫВАНИЕ»" + atHome}},
			{fix("09:10:00", home.Lat+0.002, home.Lon, 25), []string{"09:10:00 RELOCATION gps" + atHome}},
			{declare("09:20:00", clear, 0, ""), none},
			{fix("09:40:00", siteB.Lat, siteB.Lon, 0), none},
			{declare("09:42:00", operations, 0, "РАЗВЁРТЫВАНИЕ"), none},
			{fix("09:50:00", siteB.Lat, siteB.Lon, 0), []string{
				"09:40:00 IDLE controller" + atB,
				"09:42:00 OPERATIONS staff «РАЗВЁРТЫВАНИЕ»" + atB,
			}},
		}},
		{"declared relocation", []step{
			{declare("09:00:00", relocation, 0, "НА ТРАЛЕ"), []string{"09:00:00 RELOCATION staff «НА ТРАЛЕ»" + atHome}},
			{declare("11:00:00", clear, 0, ""), []string{"11:00:00 IDLE controller" + atHome}},
		}},
		{"a receiver without speed", []step{
			// Fixes from GGA alone carry no speed: moving is seen from the
			// distance covered.
			{fix("09:10:00", home.Lat+0.0135, home.Lon, 0), none},
			{fix("09:12:00", home.Lat+0.03, home.Lon, 0), []string{"09:10:00 RELOCATION gps" + atHome}},
			{fix("09:16:00", home.Lat+0.06, home.Lon, 0), none},
			{fix("09:20:00", home.Lat+0.09, home.Lon, 0), none},
			{fix("09:22:00", siteB.Lat, siteB.Lon, 0), none},
			{fix("09:25:00", siteB.Lat+0.0005, siteB.Lon, 0), none},
			{fix("09:31:59", siteB.Lat, siteB.Lon, 0), none},
			{fix("09:32:00", siteB.Lat, siteB.Lon, 0), []string{"09:22:00 IDLE controller" + atB}},
		}},
		{"a jump of the receiver", []step{
			{ctl("09:30:00", pw, rd), []string{"09:30:00 WAITING controller" + atHome}},
			{fix("10:00:00", home.Lat+0.05, home.Lon, 0), none},
			{arrival("10:00:30"), none}, // held until the position is settled
			{noFix("10:00:40"), none},
			{fix("10:01:00", home.Lat, home.Lon, 0), []string{"10:00:30 WORKING controller" + atHome}},
			{decision("10:05:00"), []string{"10:05:00 WAITING controller" + atHome}},
		}},
		{"away, then moving on", []step{
			{fix("10:00:00", home.Lat+0.01, home.Lon, 8), none},
			{ctl("10:01:00", pw), none},
			{fix("10:02:00", home.Lat+0.02, home.Lon, 40), []string{"10:00:00 RELOCATION gps" + atHome}},
			{fix("10:20:00", siteB.Lat, siteB.Lon, 0), none},
			{fix("10:30:00", siteB.Lat, siteB.Lon, 0), []string{"10:20:00 OPERATIONS controller" + atB}},
		}},
		{"found elsewhere, never seen moving", []step{
			{fix("10:00:00", siteC.Lat, siteC.Lon, 0), none},
			{ctl("10:01:00", pw), none},
			{ctl("10:05:00", pw, rd), none},
			{fix("10:09:59", siteC.Lat, siteC.Lon, 0), none},
			{fix("10:10:00", siteC.Lat, siteC.Lon, 0), []string{
				"10:00:00 IDLE controller" + atC,
				"10:01:00 OPERATIONS controller" + atC,
				"10:05:00 WAITING controller" + atC,
			}},
		}},
		{"a move within the site", []step{
			{fix("10:00:00", home.Lat+0.001, home.Lon, 15), []string{"10:00:00 RELOCATION gps" + atHome}},
			{fix("10:01:00", home.Lat+0.002, home.Lon, 0), none},
			{fix("10:11:00", home.Lat+0.002, home.Lon, 0), []string{"10:01:00 IDLE controller" + atHome}},
		}},
		{"the receiver falls silent during the dwell", []step{
			{fix("10:00:00", home.Lat+0.01, home.Lon, 50), []string{"10:00:00 RELOCATION gps" + atHome}},
			{fix("10:10:00", siteB.Lat, siteB.Lon, 0), none},
			{noFix("10:11:00"), none},
			{ctl("10:19:59"), none},
			{ctl("10:20:00", pw), []string{"10:10:00 IDLE controller" + atB, "10:20:00 OPERATIONS controller" + atB}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEngine(t, mobile())
			runAll(e, ctl("09:00:00"), fix("09:00:00", home.Lat, home.Lon, 0))
			run(t, e, tt.steps)
		})
	}
}

// The agent's PC is off during the drive and boots at the new site.
func TestRelocatedWhileOff(t *testing.T) {
	e := newEngine(t, mobile())
	runAll(e, ctl("09:00:00", pw, rd), fix("09:00:00", home.Lat, home.Lon, 0), ctl("12:00:00", pw, rd))
	e = reopen(t, e)
	run(t, e, []step{
		{input{"resume", func(e *Engine) []Change { return e.Resume(tm("14:00:00"), time.Time{}) }},
			[]string{"12:00:00 UNKNOWN agent" + atHome}},
		{ctl("14:00:05", pw), []string{"14:00:05 OPERATIONS controller" + atHome}},
		{fix("14:00:10", siteC.Lat, siteC.Lon, 0), none},
		{ctl("14:05:00", pw, rd), none},
		{fix("14:10:10", siteC.Lat+0.0001, siteC.Lon, 0), []string{
			"14:00:10 OPERATIONS controller" + atC,
			"14:05:00 WAITING controller" + atC,
		}},
	})
}

func TestGPSWithoutFix(t *testing.T) {
	e := newEngine(t, mobile())
	runAll(e, ctl("09:00:00", pw, rd), fix("09:00:00", home.Lat, home.Lon, 0))
	before, err := json.Marshal(e.Snapshot())
	if err != nil {
		t.Fatal(err)
	}
	bad := []gps.Fix{
		{Time: tm("09:01:00")}, // no fix: zeros, a position in the Gulf of Guinea
		{Time: tm("09:02:00"), Lat: 59.9, Lon: 30.3, SpeedKmh: 120, Quality: gps.QualityInvalid}, // a void fix repeating an old position
		{Lat: 59.9, Lon: 30.3, SpeedKmh: 120, Valid: true},                                       // no time yet
	}
	for _, f := range bad {
		if out := e.GPS(f); len(out) != 0 {
			t.Errorf("GPS(%+v) = %q", f, show(out))
		}
	}
	after, err := json.Marshal(e.Snapshot())
	if err != nil {
		t.Fatal(err)
	}
	if string(before) != string(after) {
		t.Errorf("bad fixes changed the engine:\n%s\n%s", before, after)
	}

	// A stationary ИДК ignores even good fixes.
	e = newEngine(t, stationary())
	runAll(e, ctl("09:00:00", pw, rd))
	if got := runAll(e, fix("09:10:00", 59.9, 30.3, 90), fix("09:30:00", 59.9, 30.3, 0), fix("09:50:00", 59.9, 30.3, 0)); len(got) != 0 {
		t.Errorf("a stationary ИДК relocated: %q", got)
	}
}

// Relocation times are exact: the RELOCATION interval is the drive.
func TestRelocationInterval(t *testing.T) {
	e := newEngine(t, mobile())
	var all []Change
	for _, in := range []input{
		ctl("08:00:00"), fix("08:00:00", home.Lat, home.Lon, 0),
		fix("08:17:23", home.Lat+0.003, home.Lon, 31),
		fix("08:30:00", home.Lat+0.05, home.Lon+0.02, 72),
		fix("08:51:07", siteB.Lat, siteB.Lon, 6),
		fix("08:55:00", siteB.Lat, siteB.Lon, 0),
		fix("09:01:07", siteB.Lat, siteB.Lon, 0),
	} {
		all = append(all, in.apply(e)...)
	}
	var drive time.Duration
	for i, c := range all[:len(all)-1] {
		if c.State == relocation {
			drive += all[i+1].Time.Sub(c.Time)
		}
	}
	if want := 33*time.Minute + 44*time.Second; drive != want {
		t.Errorf("relocation lasted %v, want %v; changes %q", drive, want, show(all))
	}
}
