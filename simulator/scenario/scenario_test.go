package scenario

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"idk/agent/devstate"
	"idk/agent/spool"
	"idk/agent/telemetry"
	"idk/collector/availability"
	"idk/drivers/gps"
	"idk/drivers/modbus"
	"idk/protocol/idkpb"
	"idk/simulator/gpssim"
	"idk/simulator/plc"
	"idk/simulator/simclock"
)

// plcMap is the register map of the simulated controller.
func plcMap() modbus.Map {
	coil := func(a uint16) modbus.Point { return modbus.Point{Source: modbus.Coil, Address: a} }
	di := func(a uint16) modbus.Point { return modbus.Point{Source: modbus.DiscreteInput, Address: a} }
	bit := func(b uint8) modbus.Point {
		return modbus.Point{Source: modbus.HoldingRegister, Address: 100, Bit: &b}
	}
	return modbus.Map{
		Powered: coil(0), Ready: coil(1), Scanning: di(10), VehicleInZone: di(11),
		AcceleratorFault: bit(3), GeneratorFault: bit(4), BoomFault: bit(5), ChassisFault: bit(6), SoftwareFault: bit(7),
	}
}

type target struct {
	ctrl  *plc.Controller
	srv   *plc.TCPServer
	tel   *telemetry.Telemetry
	route *gpssim.Sim
}

func (t *target) SetSignal(n modbus.Signal, on bool) error { return t.ctrl.SetSignal(n, on) }
func (t *target) LinkDown() error                          { return t.srv.Down() }
func (t *target) LinkUp() error                            { return t.srv.Up() }
func (t *target) Decision(at time.Time)                    { t.tel.Decision(at) }
func (t *target) Declare(state, cause, note string) error {
	d, err := telemetry.ParseDeclaration(state, cause, note)
	if err != nil {
		return err
	}
	return t.tel.Declare(d)
}
func (t *target) GPS(st gpssim.State, at time.Time) {
	t.tel.GPS(gps.Fix{Time: at, Lat: st.Pos.Lat, Lon: st.Pos.Lon, SpeedKmh: st.SpeedKmh, Valid: st.Fix, Quality: 1})
}

func moscow(t *testing.T) *time.Location {
	loc, err := time.LoadLocation("Europe/Moscow")
	if err != nil {
		return time.FixedZone("MSK", 3*3600)
	}
	return loc
}

// run plays sc through the real agent telemetry (goburrow polling the
// simulated PLC over Modbus TCP on loopback, a real spool) on a virtual
// clock, and returns the table 3 rows the collector computes from the
// recorded state changes.
func run(t *testing.T, sc Scenario) []availability.Row {
	t.Helper()
	if err := sc.Check(); err != nil {
		t.Fatal(err)
	}
	loc := moscow(t)
	start := time.Date(2026, 11, 20, 0, 0, 0, 0, loc)
	clk := simclock.New(start)

	m := plcMap()
	ctrl, err := plc.New(m)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := ctrl.ServeTCP("127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	sp, err := spool.Open(filepath.Join(t.TempDir(), "spool.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()

	eng := devstate.Config{Mobile: sc.Mobile, LinkGrace: 30 * time.Second,
		Home: devstate.Site{Name: StationarySite, KodTO: "10802000", NaimTO: "ДАГЕСТАНСКАЯ", Disl: 1}}
	if sc.Mobile {
		eng.Home = devstate.Site{Name: MobileSiteA, KodTO: "10802000", NaimTO: "ДАГЕСТАНСКАЯ", Disl: 1, Lat: SiteA.Lat, Lon: SiteA.Lon}
		eng.Sites = []devstate.Site{eng.Home, {Name: MobileSiteB, KodTO: "10802000", NaimTO: "ДАГЕСТАНСКАЯ", Disl: 5, Lat: SiteB.Lat, Lon: SiteB.Lon}}
	}
	tel, err := telemetry.New(telemetry.Config{
		Engine: eng,
		Controller: &modbus.Config{Transport: modbus.TCP, Address: srv.Addr(), SlaveID: 1,
			Interval: 10 * time.Second, Timeout: time.Second, MaxBackoff: 30 * time.Second, Map: m,
			Clock: clk.Pacer()}, // the poller's waits move the day on
		Spool:         sp,
		Clock:         clk,
		PositionEvery: 10 * time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	tg := &target{ctrl: ctrl, srv: srv, tel: tel}
	if sc.Mobile {
		if tg.route, err = gpssim.New(nil, gpssim.Config{Start: sc.Home, Route: sc.Route}); err != nil {
			t.Fatal(err)
		}
	}
	next := 0
	clk.OnAdvance(func(from, to time.Time) {
		for next < len(sc.Steps) && !start.Add(sc.Steps[next].At).After(to) {
			st := sc.Steps[next]
			if err := st.Do(tg, start.Add(st.At)); err != nil {
				t.Errorf("step %s at %v: %v", st.Name, st.At, err)
			}
			next++
		}
		if tg.route != nil {
			tg.GPS(tg.route.At(to.Sub(start)), to)
		}
	})

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- tel.Run(ctx) }()
	end := start.Add(sc.Length)
	deadline := time.Now().Add(2 * time.Minute)
	for clk.Now().Before(end) {
		if time.Now().After(deadline) {
			t.Fatalf("virtual clock stuck at %v", clk.Now())
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	evs, err := sp.PendingEvents(1<<20, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	var changes []availability.Change
	for _, ev := range evs {
		if s := ev.GetState(); s != nil {
			changes = append(changes, availability.ChangeFromProto(time.Unix(0, ev.TimeUnixNano), s))
			t.Logf("%s %-11v %v %s", time.Unix(0, ev.TimeUnixNano).In(loc).Format("15:04:05"), s.State, s.Cause, s.Site.GetNaimZtk())
		}
	}
	dev := availability.Device{NumIDK: "850591", TypeIDK: 2, KodTO: "10802000", NaimTO: "ДАГЕСТАНСКАЯ", NaimZTK: StationarySite, DislIDK: 1}
	if sc.Mobile {
		dev.TypeIDK, dev.NaimZTK = 1, MobileSiteA
	}
	return availability.Rows(dev, changes, start, loc, end)
}

var category = map[string][]idkpb.DeviceState{
	"TIME_JOB":      {working, waiting},
	"TIME_WAIT":     {waiting},
	"TIME_OPER":     {operations},
	"TIME_TEH":      {maintenance},
	"TIME_NEPAB":    {inoperable},
	"TIME_PEREDISL": {relocation},
}

// compare checks each row's categories against the truth to the second,
// as the README claims. Every step of the scenarios falls on a whole minute
// of the virtual clock, where the agent's controller polls (every 10 s, and
// its reconnection backoff of 10, 20, 30 s) fall too, so the agent sees
// each change when it happens and nothing excuses a second's difference.
// The H,MM figures of the report must then be the truth's, as FormatHM
// rounds it.
func compare(t *testing.T, sc Scenario, rows []availability.Row) {
	t.Helper()
	exp := sc.Expected()
	bySite := map[string]availability.Row{}
	for _, r := range rows {
		bySite[r.NAIM_ZTK_M_D] = r
		t.Logf("row %s %s: JOB %s WAIT %s OPER %s TEH %s NEPAB %s PEREDISL %s PRIZ %d",
			r.DATE, r.NAIM_ZTK_M_D, r.TIME_JOB, r.TIME_WAIT, r.TIME_OPER, r.TIME_TEH, r.TIME_NEPAB, r.TIME_PEREDISL, r.PRIZ_PEREDISL)
	}
	for site, states := range exp {
		var worked time.Duration
		for st, d := range states {
			if st != idle && st != unknown {
				worked += d
			}
		}
		if worked == 0 {
			continue
		}
		r, ok := bySite[site]
		if !ok {
			t.Errorf("no table 3 row for site %s", site)
			continue
		}
		for field, sts := range category {
			var want time.Duration
			for _, st := range sts {
				want += states[st]
			}
			got := time.Duration(r.Seconds[stateKey(sts[0])]) * time.Second
			if len(sts) > 1 {
				got = 0
				for _, st := range sts {
					got += time.Duration(r.Seconds[stateKey(st)]) * time.Second
				}
			}
			if got != want {
				t.Errorf("site %s %s: got %v, ground truth %v (off by %v)", site, field, got, want, got-want)
			}
			if hm := availability.FormatHM(want); hm != fieldValue(r, field) {
				t.Errorf("site %s %s: report says %s, ground truth %s", site, field, fieldValue(r, field), hm)
			}
		}
	}
	wantPriz := 0
	for _, states := range exp {
		if states[relocation] > 0 {
			wantPriz = 1
		}
	}
	for _, r := range rows {
		if r.PRIZ_PEREDISL != wantPriz {
			t.Errorf("row %s: PRIZ_PEREDISL %d, want %d", r.NAIM_ZTK_M_D, r.PRIZ_PEREDISL, wantPriz)
		}
	}
}

// stateKey is how Row.Seconds names a state: WORKING, WAITING, ...
func stateKey(s idkpb.DeviceState) string { return strings.ToUpper(telemetry.StateName(s)) }

func fieldValue(r availability.Row, field string) string {
	return map[string]string{"TIME_JOB": r.TIME_JOB, "TIME_WAIT": r.TIME_WAIT, "TIME_OPER": r.TIME_OPER,
		"TIME_TEH": r.TIME_TEH, "TIME_NEPAB": r.TIME_NEPAB, "TIME_PEREDISL": r.TIME_PEREDISL}[field]
}

func TestStationaryDayMatchesGroundTruth(t *testing.T) {
	compare(t, Stationary(), run(t, Stationary()))
}

func TestMobileDayWithRelocationMatchesGroundTruth(t *testing.T) {
	rows := run(t, Mobile())
	if len(rows) != 2 {
		t.Errorf("got %d rows, want one per site (2)", len(rows))
	}
	compare(t, Mobile(), rows)
}
