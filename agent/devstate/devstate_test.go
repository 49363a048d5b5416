package devstate

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"idk/drivers/modbus"
	"idk/protocol/idkpb"
)

const (
	pw    = modbus.Powered
	rd    = modbus.Ready
	scan  = modbus.Scanning
	zone  = modbus.VehicleInZone
	accel = modbus.AcceleratorFault
	gen   = modbus.GeneratorFault
	boom  = modbus.BoomFault
)

func TestStationaryShiftDay(t *testing.T) {
	e := newEngine(t, stationary())
	const at = " @МАПП ТЕСТОВЫЙ"
	run(t, e, []step{
		{ctl("07:55:00"), []string{"07:55:00 IDLE controller" + at}},
		{ctl("07:55:01"), none},
		{ctl("08:00:00", pw), []string{"08:00:00 OPERATIONS controller" + at}},
		{ctl("08:00:01", pw), none},
		{ctl("08:20:00", pw, rd), []string{"08:20:00 WAITING controller" + at}},
		// An object registered by the agent, then seen by the controller:
		// one arrival, not two.
		{arrival("08:31:00"), []string{"08:31:00 WORKING controller" + at}},
		{ctl("08:33:00", pw, rd, zone), none},
		{ctl("08:34:00", pw, rd, zone, scan), none},
		{ctl("08:35:00", pw, rd), none}, // scanned and gone: still working until the decision
		{decision("08:40:00"), []string{"08:40:00 WAITING controller" + at}},
		// The controller alone: the vehicle sensor's rising edge.
		{ctl("09:00:00", pw, rd, zone), []string{"09:00:00 WORKING controller" + at}},
		{ctl("09:02:00", pw, rd), none},
		{decision("09:05:00"), []string{"09:05:00 WAITING controller" + at}},
		{decision("09:06:00"), none}, // a second revision of the same form
		// Scanning without a vehicle sensor is an arrival too; the work
		// lasts while the beam is on even after an early decision.
		{ctl("09:30:00", pw, rd, scan), []string{"09:30:00 WORKING controller" + at}},
		{decision("09:30:30"), none},
		{ctl("09:31:00", pw, rd), []string{"09:31:00 WAITING controller" + at}},
		// Faults, with the cause of the first in the fixed order.
		{ctl("10:00:00", pw, rd, accel), []string{"10:00:00 INOPERABLE/ACCELERATOR controller" + at}},
		{ctl("10:00:30", pw, rd, accel, gen), none},
		{ctl("10:20:00", pw, rd, gen), []string{"10:20:00 INOPERABLE/GENERATOR controller" + at}},
		{ctl("10:45:00", pw, rd), []string{"10:45:00 WAITING controller" + at}},
		// Staff declarations.
		{declare("11:00:00", maintenance, 0, "ЕЖЕДНЕВНОЕ ТО"), []string{"11:00:00 MAINTENANCE staff «ЕЖЕДНЕВНОЕ ТО»" + at}},
		{ctl("11:30:00", pw), none},
		{declare("11:40:00", maintenance, 0, "ДРУГАЯ ЗАМЕТКА"), none},
		{declare("12:00:00", clear, 0, ""), []string{"12:00:00 OPERATIONS controller" + at}},
		{ctl("12:10:00", pw, rd), []string{"12:10:00 WAITING controller" + at}},
		{declare("13:00:00", operations, 0, "ОБЕД"), []string{"13:00:00 OPERATIONS staff «ОБЕД»" + at}},
		{declare("13:45:00", clear, 0, ""), []string{"13:45:00 WAITING controller" + at}},
		{declare("14:00:00", inoperable, weather, "ГРОЗА"), []string{"14:00:00 INOPERABLE/WEATHER staff «ГРОЗА»" + at}},
		{declare("14:20:00", inoperable, reboot, ""), []string{"14:20:00 INOPERABLE/REBOOT staff" + at}},
		{declare("14:30:00", clear, 0, ""), []string{"14:30:00 WAITING controller" + at}},
		{declare("14:31:00", clear, 0, ""), none},
		// An object arrives, then the scanner is switched off without a
		// decision: the object does not survive the night.
		{arrival("19:50:00"), []string{"19:50:00 WORKING controller" + at}},
		{ctl("20:00:00"), []string{"20:00:00 IDLE controller" + at}},
		{arrival("20:00:05"), none}, // ignored: nothing can be inspected
		{ctl("21:00:00", pw, rd), []string{"21:00:00 WAITING controller" + at}},
		{ctl("21:10:00"), []string{"21:10:00 IDLE controller" + at}},
	})
	if got := e.Current(); got.State != idle || !got.Time.Equal(tm("21:10:00")) || got.Site != home {
		t.Errorf("Current() = %+v", got)
	}
}

func TestChangeProto(t *testing.T) {
	c := Change{Time: tm("10:00:00"), State: inoperable, Cause: weather, Note: "ТУМАН", Source: SourceStaff, Site: siteB}
	want := &idkpb.StateChange{
		State: inoperable, Cause: weather, Note: "ТУМАН", Source: "staff",
		Site: &idkpb.Site{NaimZtk: "ПКТ", KodTo: "10012020", NaimTo: "БАЛТИЙСКАЯ", Disl: 2, Lat: 54.80, Lon: 20.50},
	}
	if got := c.Proto(); !proto.Equal(got, want) {
		t.Errorf("Proto() = %v, want %v", got, want)
	}
}

func TestControllerLink(t *testing.T) {
	const at = " @МАПП ТЕСТОВЫЙ"
	refused := input{"modbus exception 10:00:00", func(e *Engine) []Change {
		return e.Controller(modbus.Sample{Time: tm("10:00:00"), Link: modbus.LinkUp, Err: errors.New("exception 2: illegal data address")})
	}}
	tests := []struct {
		name string
		ins  []input
		want []string // after the WAITING at 09:00
	}{
		{"lost briefly", []input{lost("10:00:00"), lost("10:00:01"), lost("10:00:17"), ctl("10:00:20", pw, rd)}, nil},
		{"lost exactly the grace", []input{lost("10:00:00"), lost("10:00:30"), ctl("10:00:31", pw, rd)}, nil},
		{"lost long", []input{lost("10:00:00"), lost("10:00:01"), lost("10:00:31"), lost("10:01:01"), ctl("10:05:00", pw, rd)},
			[]string{"10:00:00 UNKNOWN controller" + at, "10:05:00 WAITING controller" + at}},
		{"comes back in another state", []input{lost("10:00:00"), lost("10:00:31"), ctl("10:05:00")},
			[]string{"10:00:00 UNKNOWN controller" + at, "10:05:00 IDLE controller" + at}},
		{"noticed by another input", []input{lost("10:00:00"), decision("10:02:00")},
			[]string{"10:00:00 UNKNOWN controller" + at}},
		{"refused reads count as lost", []input{refused, lost("10:00:40")},
			[]string{"10:00:00 UNKNOWN controller" + at}},
		{"not back-dated over a declaration", []input{
			declare("09:59:00", maintenance, 0, ""), lost("10:00:00"), lost("10:01:00"), declare("10:10:00", clear, 0, ""), ctl("10:20:00", pw, rd)},
			[]string{"09:59:00 MAINTENANCE staff" + at, "10:10:00 UNKNOWN controller" + at, "10:20:00 WAITING controller" + at}},
		{"a fault outlives the link", []input{ctl("10:00:00", pw, rd, gen), lost("10:00:01"), lost("10:30:00"), ctl("10:40:00", pw, rd)},
			[]string{"10:00:00 INOPERABLE/GENERATOR controller" + at, "10:40:00 WAITING controller" + at}},
		{"work during the grace", []input{lost("10:00:00"), arrival("10:00:10"), lost("10:00:40")},
			[]string{"10:00:10 WORKING controller" + at, "10:00:10 UNKNOWN controller" + at}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEngine(t, stationary())
			runAll(e, ctl("09:00:00", pw, rd))
			if got := runAll(e, tt.ins...); !slices.Equal(got, append([]string{}, tt.want...)) {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestLinkDownFromStart(t *testing.T) {
	e := newEngine(t, stationary())
	run(t, e, []step{
		{lost("08:00:00"), none},
		{declare("08:00:10", maintenance, 0, ""), []string{"08:00:10 MAINTENANCE staff @МАПП ТЕСТОВЫЙ"}},
		{declare("08:00:20", clear, 0, ""), []string{"08:00:20 UNKNOWN agent @МАПП ТЕСТОВЫЙ"}},
		{lost("08:00:31"), none},
		{ctl("08:10:00", pw), []string{"08:10:00 OPERATIONS controller @МАПП ТЕСТОВЫЙ"}},
	})

	// Nothing else happened: the first change is the lost link, back-dated.
	e = newEngine(t, stationary())
	if got, want := runAll(e, lost("08:00:00"), lost("08:00:31")), []string{"08:00:00 UNKNOWN controller @МАПП ТЕСТОВЫЙ"}; !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestPriority(t *testing.T) {
	e := newEngine(t, stationary())
	const at = " @МАПП ТЕСТОВЫЙ"
	run(t, e, []step{
		{ctl("09:00:00", pw, rd, boom), []string{"09:00:00 INOPERABLE/BOOM controller" + at}},
		{declare("09:10:00", maintenance, 0, "РЕМОНТ СТРЕЛЫ"), []string{"09:10:00 MAINTENANCE staff «РЕМОНТ СТРЕЛЫ»" + at}},
		{ctl("09:20:00", pw, rd, boom, accel), none},
		{arrival("09:25:00"), none},
		{declare("09:30:00", clear, 0, ""), []string{"09:30:00 INOPERABLE/ACCELERATOR controller" + at}},
		{ctl("09:40:00", pw, rd), []string{"09:40:00 WORKING controller" + at}}, // the object that arrived at 09:25
		// Staff confirm what the controller shows: same state, no change.
		{declare("09:50:00", clear, 0, ""), none},
		{ctl("10:00:00", pw), []string{"10:00:00 OPERATIONS controller" + at}},
		{declare("10:05:00", operations, 0, "КОНТРОЛЬНЫЙ ОСМОТР"), none},
		{lost("10:06:00"), none},
		{lost("10:07:00"), none},
		// The link was lost behind the declaration: UNKNOWN from its end.
		{declare("10:20:00", clear, 0, ""), []string{"10:20:00 UNKNOWN controller" + at}},
	})
}

func TestDeclareValidation(t *testing.T) {
	tests := []struct {
		name  string
		cfg   Config
		d     Declaration
		field string
	}{
		{"inoperable without cause", stationary(), Declaration{State: inoperable}, "cause"},
		{"cause without inoperable", stationary(), Declaration{State: maintenance, Cause: weather}, "cause"},
		{"cause on clear", stationary(), Declaration{State: clear, Cause: reboot}, "cause"},
		{"unknown cause", stationary(), Declaration{State: inoperable, Cause: 99}, "cause"},
		{"working", stationary(), Declaration{State: working}, "state"},
		{"waiting", stationary(), Declaration{State: waiting}, "state"},
		{"idle", stationary(), Declaration{State: idle}, "state"},
		{"unknown", stationary(), Declaration{State: unknown}, "state"},
		{"unknown state", stationary(), Declaration{State: 42}, "state"},
		{"relocating a stationary ИДК", stationary(), Declaration{State: relocation}, "state"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEngine(t, tt.cfg)
			runAll(e, ctl("09:00:00", pw, rd))
			before := e.Snapshot()
			out, err := e.Declare(tm("09:10:00"), tt.d)
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field != tt.field {
				t.Fatalf("Declare(%+v) = %v, want a FieldError on %q", tt.d, err, tt.field)
			}
			if !strings.Contains(err.Error(), tt.field+":") {
				t.Errorf("error %q does not name %s", err, tt.field)
			}
			if out != nil || e.Snapshot().Declared != nil || !e.Snapshot().Last.Equal(before.Last) {
				t.Errorf("an invalid declaration changed the engine: %v", out)
			}
		})
	}

	e := newEngine(t, stationary())
	var fe *FieldError
	if _, err := e.Declare(time.Time{}, Declaration{State: maintenance}); !errors.As(err, &fe) || fe.Field != "time" {
		t.Errorf("Declare(zero time) = %v, want a FieldError on time", err)
	}
	e = newEngine(t, mobile())
	if _, err := e.Declare(tm("09:00:00"), Declaration{State: relocation, Note: "НА БУКСИРЕ"}); err != nil {
		t.Errorf("a mobile ИДК cannot declare RELOCATION: %v", err)
	}
}

func TestConfigErrors(t *testing.T) {
	tests := []struct {
		name  string
		cfg   Config
		field string
	}{
		{"negative radius", Config{Home: home, RelocationRadius: -1}, "config.RelocationRadius"},
		{"negative speed", Config{Home: home, RelocationSpeed: -5}, "config.RelocationSpeed"},
		{"negative dwell", Config{Home: home, ArrivalDwell: -time.Second}, "config.ArrivalDwell"},
		{"negative grace", Config{Home: home, LinkGrace: -time.Second}, "config.LinkGrace"},
		{"bad disl", Config{Home: Site{Name: "X", Disl: 7}}, "config.Home.Disl"},
		{"mobile home without position", Config{Mobile: true, Home: Site{Name: "X", Disl: 5}}, "config.Home.Lat"},
		{"site without position", Config{Mobile: true, Home: home, Sites: []Site{siteB, {Name: "Y", Disl: 1}}}, "config.Sites[1].Lat"},
		{"negative site radius", Config{Mobile: true, Home: home, Sites: []Site{{Name: "Y", Disl: 1, Lat: 1, Lon: 1, Radius: -3}}}, "config.Sites[0].Radius"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.cfg, nil)
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field != tt.field {
				t.Errorf("New() = %v, want a FieldError on %s", err, tt.field)
			}
		})
	}
	if _, err := New(Config{Home: Site{Name: "X", Disl: 2}}, nil); err != nil {
		t.Errorf("a stationary ИДК needs no position: %v", err)
	}
	if _, err := New(stationary(), &Snapshot{Version: 99}); err == nil || !strings.Contains(err.Error(), "version 99") {
		t.Errorf("New(snapshot version 99) = %v", err)
	}
}

// reopen is an agent restart: the snapshot goes through JSON into a new
// Engine.
func reopen(t *testing.T, e *Engine) *Engine {
	t.Helper()
	b, err := json.Marshal(e.Snapshot())
	if err != nil {
		t.Fatal(err)
	}
	var snap Snapshot
	if err := json.Unmarshal(b, &snap); err != nil {
		t.Fatal(err)
	}
	e2, err := New(e.cfg, &snap)
	if err != nil {
		t.Fatal(err)
	}
	return e2
}

// A day's inputs give the same changes whether or not the agent restarts
// (cleanly, from its snapshot) after every input.
func TestRestartFromSnapshot(t *testing.T) {
	const gone = 55.0 // a latitude well north of every site
	day := []input{
		ctl("07:00:00"),
		fix("07:00:00", home.Lat, home.Lon, 0),
		ctl("08:00:00", pw), ctl("08:20:00", pw, rd),
		arrival("08:30:00"), ctl("08:31:00", pw, rd, zone),
		decision("08:40:00"),
		declare("09:00:00", operations, 0, "ОБЕД"),
		lost("09:10:00"), lost("09:10:20"),
		declare("09:30:00", clear, 0, ""),
		lost("09:30:10"), ctl("09:30:15", pw, rd),
		ctl("10:00:00"),
		fix("10:10:00", home.Lat+0.01, home.Lon, 40),
		fix("10:20:00", siteB.Lat, siteB.Lon, 3),
		ctl("10:25:00", pw),
		fix("10:30:00", siteB.Lat, siteB.Lon, 0),
		fix("11:00:00", gone, home.Lon, 0),
		ctl("11:02:00", pw, rd),
		fix("11:05:00", gone, home.Lon, 0),
		fix("11:11:00", gone, home.Lon, 0),
		ctl("12:00:00", pw, rd, accel),
	}
	straight := newEngine(t, mobile())
	want := runAll(straight, day...)

	e := newEngine(t, mobile())
	var got []string
	for _, in := range day {
		got = append(got, runAll(e, in)...)
		e = reopen(t, e)
	}
	if !slices.Equal(got, want) {
		t.Errorf("with restarts:\n%q\nstraight:\n%q", got, want)
	}
	if len(want) < 12 {
		t.Errorf("the day is too quiet to test anything: %q", want)
	}
	if s, w := e.Snapshot(), straight.Snapshot(); !s.Current.Time.Equal(w.Current.Time) || s.Site != w.Site {
		t.Errorf("snapshots differ:\n%+v\n%+v", s, w)
	}
}

func TestResume(t *testing.T) {
	const at = " @МАПП ТЕСТОВЫЙ"
	start := func(t *testing.T) *Engine {
		e := newEngine(t, stationary())
		runAll(e, ctl("09:00:00", pw, rd), arrival("09:50:00"), ctl("10:00:00", pw, rd))
		return reopen(t, e)
	}

	t.Run("quick restart", func(t *testing.T) {
		e := start(t)
		run(t, e, []step{
			{input{"resume", func(e *Engine) []Change { return e.Resume(tm("10:00:20"), tm("10:00:05")) }}, none},
			{ctl("10:00:21", pw, rd), none}, // still working on the object
			{decision("10:05:00"), []string{"10:05:00 WAITING controller" + at}},
		})
	})
	t.Run("crash", func(t *testing.T) {
		e := start(t)
		run(t, e, []step{
			{input{"resume", func(e *Engine) []Change { return e.Resume(tm("10:30:00"), tm("10:02:00")) }},
				[]string{"10:02:00 UNKNOWN agent" + at}},
			{lost("10:30:01"), none},
			{ctl("10:30:02", pw, rd), []string{"10:30:02 WAITING controller" + at}}, // the object is forgotten
		})
	})
	t.Run("crash, last alive from the snapshot", func(t *testing.T) {
		e := start(t)
		run(t, e, []step{
			{input{"resume", func(e *Engine) []Change { return e.Resume(tm("10:30:00"), time.Time{}) }},
				[]string{"10:00:00 UNKNOWN agent" + at}},
		})
	})
	t.Run("declaration survives", func(t *testing.T) {
		e := newEngine(t, stationary())
		runAll(e, ctl("09:00:00", pw, rd), declare("09:10:00", maintenance, 0, "ТО"))
		e = reopen(t, e)
		run(t, e, []step{
			{input{"resume", func(e *Engine) []Change { return e.Resume(tm("11:00:00"), tm("10:00:00")) }},
				[]string{"10:00:00 UNKNOWN agent" + at, "11:00:00 MAINTENANCE staff «ТО»" + at}},
			{ctl("11:00:01", pw), none},
			{declare("11:30:00", clear, 0, ""), []string{"11:30:00 OPERATIONS controller" + at}},
		})
	})
	t.Run("fresh", func(t *testing.T) {
		e := newEngine(t, stationary())
		if out := e.Resume(tm("08:00:00"), time.Time{}); out != nil {
			t.Errorf("a fresh engine resumed with %v", show(out))
		}
		e = newEngine(t, stationary())
		if got, want := show(e.Resume(tm("08:00:00"), tm("07:00:00"))), []string{"07:00:00 UNKNOWN agent" + at}; !slices.Equal(got, want) {
			t.Errorf("got %q, want %q", got, want)
		}
	})
}

func TestSnapshotJSON(t *testing.T) {
	e := newEngine(t, mobile())
	runAll(e, ctl("09:00:00", pw, rd), declare("09:01:00", inoperable, weather, "ВЕТЕР"),
		fix("09:05:00", home.Lat+0.01, home.Lon, 30), ctl("09:06:00", pw), declare("09:06:30", clear, 0, ""),
		lost("09:07:00"), lost("09:07:40"), declare("09:08:00", maintenance, 0, "ТО"))
	b, err := json.Marshal(e.Snapshot())
	if err != nil {
		t.Fatal(err)
	}
	var snap Snapshot
	if err := json.Unmarshal(b, &snap); err != nil {
		t.Fatal(err)
	}
	b2, err := json.Marshal(snap)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != string(b2) {
		t.Errorf("JSON round trip differs:\n%s\n%s", b, b2)
	}
	if !snap.Relocating || snap.Declared == nil || snap.Declared.Note != "ТО" || len(snap.Pending) != 4 {
		t.Errorf("snapshot lost state: %s", b)
	}
	// The snapshot is a copy.
	s := e.Snapshot()
	s.Pending[0].State = working
	s.Declared.Note = "X"
	if e.Snapshot().Pending[0].State == working || e.Snapshot().Declared.Note == "X" {
		t.Error("Snapshot shares memory with the engine")
	}
}
