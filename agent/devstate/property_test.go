package devstate

import (
	"encoding/json"
	"math/rand/v2"
	"testing"
	"time"

	"idk/drivers/gps"
	"idk/drivers/modbus"
	"idk/protocol/idkpb"
)

// Random inputs, from several clocks that disagree by a few seconds, with
// restarts and crashes, never make two consecutive changes describe the same
// state, nor make time go backwards, nor break what a Change promises.
func TestRandomInputs(t *testing.T) {
	places := []struct{ lat, lon float64 }{
		{home.Lat, home.Lon}, {home.Lat + 0.002, home.Lon}, {siteB.Lat, siteB.Lon},
		{siteC.Lat, siteC.Lon}, {nowhere.Lat, nowhere.Lon}, {54.6, 20.3},
	}
	signals := []modbus.Signal{
		modbus.Powered, modbus.Ready, modbus.Scanning, modbus.VehicleInZone,
		modbus.AcceleratorFault, modbus.GeneratorFault, modbus.BoomFault, modbus.ChassisFault, modbus.SoftwareFault,
	}
	seeds := 150
	if testing.Short() {
		seeds = 30
	}
	for seed := range seeds {
		r := rand.New(rand.NewPCG(uint64(seed), 7))
		cfg := mobile()
		if seed%4 == 0 {
			cfg = stationary()
		}
		cfg.ArrivalDwell = time.Duration(1+r.IntN(10)) * time.Minute
		e, err := New(cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		now := day
		place := places[0]
		var all []Change
		for range 1500 {
			now = now.Add(time.Duration(r.IntN(120)) * time.Second)
			// Each source's clock is a little off.
			at := now.Add(time.Duration(r.IntN(5)-2) * time.Second)
			var out []Change
			switch k := r.IntN(100); {
			case k < 45:
				smp := modbus.Sample{Time: at, Link: modbus.LinkUp, Flags: map[modbus.Signal]bool{}}
				for _, s := range signals {
					// Faults are rare, power and readiness common.
					p := 0.8
					if s != modbus.Powered && s != modbus.Ready {
						p = 0.08
					}
					smp.Flags[s] = r.Float64() < p
				}
				if r.IntN(10) == 0 {
					smp = modbus.Sample{Time: at, Link: modbus.LinkDown}
				}
				out = e.Controller(smp)
			case k < 75:
				if r.IntN(8) == 0 {
					place = places[r.IntN(len(places))]
				}
				f := gps.Fix{Time: at, Lat: place.lat + r.NormFloat64()*0.0001, Lon: place.lon, SpeedKmh: r.Float64() * 15, Valid: r.IntN(10) > 0}
				if r.IntN(6) == 0 {
					f.SpeedKmh = 30 + r.Float64()*60
				}
				out = e.GPS(f)
			case k < 83:
				d := Declaration{
					State: idkpb.DeviceState(r.IntN(10)),
					Cause: idkpb.InoperableCause(r.IntN(10)),
				}
				if r.IntN(2) == 0 {
					d.Cause = 0
				}
				if d.State == inoperable && d.Cause == 0 {
					d.Cause = weather
				}
				out, _ = e.Declare(at, d) // invalid ones are rejected and change nothing
			case k < 90:
				out = e.Arrival(at)
			case k < 96:
				out = e.Decision(at)
			default:
				b, err := json.Marshal(e.Snapshot())
				if err != nil {
					t.Fatal(err)
				}
				var snap Snapshot
				if err := json.Unmarshal(b, &snap); err != nil {
					t.Fatal(err)
				}
				if e, err = New(cfg, &snap); err != nil {
					t.Fatal(err)
				}
				// Half of the restarts follow a crash.
				down := time.Duration(r.IntN(2)) * time.Duration(r.IntN(3600)) * time.Second
				now = now.Add(down)
				out = e.Resume(now, time.Time{})
			}
			all = append(all, out...)
			if len(all) > 0 && e.Current() != all[len(all)-1] {
				t.Fatalf("seed %d: Current() = %+v, last change %+v", seed, e.Current(), all[len(all)-1])
			}
		}
		check(t, seed, cfg, all)
	}
}

func check(t *testing.T, seed int, cfg Config, all []Change) {
	t.Helper()
	if len(all) < 50 {
		t.Fatalf("seed %d: only %d changes", seed, len(all))
	}
	for i, c := range all {
		fail := func(msg string) {
			t.Helper()
			lo := max(i-3, 0)
			t.Fatalf("seed %d, change %d: %s\n%q", seed, i, msg, show(all[lo:i+1]))
		}
		if i > 0 {
			p := all[i-1]
			if c.sameAs(p) {
				fail("the same state twice")
			}
			if c.Time.Before(p.Time) {
				fail("time went backwards")
			}
		}
		if _, ok := idkpb.DeviceState_name[int32(c.State)]; !ok || c.State == clear {
			fail("no state")
		}
		if (c.State == inoperable) != (c.Cause != 0) {
			fail("a cause without INOPERABLE, or INOPERABLE without one")
		}
		switch c.Source {
		case SourceController, SourceStaff, SourceAgent:
		case SourceGPS:
			if !cfg.Mobile || c.State != relocation {
				fail("a GPS change that is not a mobile ИДК's relocation")
			}
		default:
			fail("unknown source")
		}
		if c.State == relocation && !cfg.Mobile {
			fail("a stationary ИДК relocated")
		}
		known := c.Site == home || c.Site == siteB || c.Site == siteC
		if !known && (c.Site.Disl != OutsideDisl || c.Site.Name != OutsideName || !cfg.Mobile) {
			fail("an unknown site")
		}
	}
}
