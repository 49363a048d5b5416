package availability

import (
	"reflect"
	"testing"
	"time"

	"idk/protocol/idkpb"
)

const (
	working     = idkpb.DeviceState_DEVICE_STATE_WORKING
	waiting     = idkpb.DeviceState_DEVICE_STATE_WAITING
	operations  = idkpb.DeviceState_DEVICE_STATE_OPERATIONS
	maintenance = idkpb.DeviceState_DEVICE_STATE_MAINTENANCE
	inoperable  = idkpb.DeviceState_DEVICE_STATE_INOPERABLE
	relocation  = idkpb.DeviceState_DEVICE_STATE_RELOCATION
	idle        = idkpb.DeviceState_DEVICE_STATE_IDLE
	unknown     = idkpb.DeviceState_DEVICE_STATE_UNKNOWN
)

// moscow is the zone the reports are kept in. Without tzdata on the test
// machine, MSK's fixed offset gives the same answers (no DST since 2014).
func moscow(t *testing.T) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation("Europe/Moscow")
	if err != nil {
		return time.FixedZone("MSK", 3*60*60)
	}
	return loc
}

// at is a wall-clock time in loc on day d of March 2024.
func at(loc *time.Location, d, h, m int) time.Time {
	return time.Date(2024, time.March, d, h, m, 0, 0, loc)
}

var stationary = Device{NumIDK: "850591", TypeIDK: 2, KodTO: "10101010", NaimTO: "Балтийская", NaimZTK: "пкт", DislIDK: 2}

func ch(t time.Time, s idkpb.DeviceState) Change {
	return Change{Time: t, State: s, Source: "controller"}
}

func TestFormatHM(t *testing.T) {
	for _, c := range []struct {
		d    time.Duration
		want string
	}{
		{0, "0,00"},
		{29 * time.Second, "0,00"},
		{30 * time.Second, "0,01"}, // half a minute rounds up
		{59 * time.Second, "0,01"},
		{59*time.Minute + 30*time.Second, "1,00"},
		{13*time.Hour + 50*time.Minute, "13,50"},
		{13*time.Hour + 50*time.Minute + 29*time.Second, "13,50"},
		{13*time.Hour + 50*time.Minute + 30*time.Second, "13,51"},
		{30*time.Hour + 15*time.Minute, "30,15"}, // the source's own example exceeds a day
		{-10 * time.Second, "0,00"},
	} {
		if got := FormatHM(c.d); got != c.want {
			t.Errorf("FormatHM(%v) = %q, want %q", c.d, got, c.want)
		}
	}
}

func TestStationaryDay(t *testing.T) {
	loc := moscow(t)
	changes := []Change{
		ch(at(loc, 4, 20, 0), idle),
		ch(at(loc, 5, 7, 30), operations), // shift change-over, 0:30
		ch(at(loc, 5, 8, 0), working),     // 2:00
		ch(at(loc, 5, 10, 0), waiting),    // 0:45
		ch(at(loc, 5, 10, 45), working),   // 2:15
		ch(at(loc, 5, 13, 0), operations), // meal break, 1:00
		{Time: at(loc, 5, 14, 0), State: inoperable, Cause: idkpb.InoperableCause_INOPERABLE_CAUSE_SOFTWARE}, // 0:20
		ch(at(loc, 5, 14, 20), maintenance), // 0:40
		ch(at(loc, 5, 15, 0), waiting),      // 4:30
		ch(at(loc, 5, 19, 30), operations),  // 0:30
		ch(at(loc, 5, 20, 0), idle),
	}
	// Delivered out of order: Rows sorts them.
	changes[3], changes[8] = changes[8], changes[3]
	changes[0], changes[10] = changes[10], changes[0]

	got := Rows(stationary, changes, at(loc, 5, 12, 0), loc, at(loc, 6, 9, 0))
	want := []Row{{
		DATE: "05.03.2024", PRIZ_PEREDISL: 0, TYPE_IDK: 2, NUM_IDK: "850591",
		KOD_M_D: "10101010", NAIM_M_D: "БАЛТИЙСКАЯ", NAIM_ZTK_M_D: "ПКТ", DISL_P: 2,
		TIME_JOB:      "9,30", // working 4:15 + waiting 5:15
		TIME_WAIT:     "5,15",
		TIME_OPER:     "2,00",
		TIME_TEH:      "0,40",
		TIME_NEPAB:    "0,20",
		TIME_PEREDISL: "0,00",
		Seconds: map[string]int64{
			"WORKING": 4*3600 + 15*60, "WAITING": 5*3600 + 15*60, "OPERATIONS": 2 * 3600,
			"MAINTENANCE": 40 * 60, "INOPERABLE": 20 * 60, "RELOCATION": 0,
			"IDLE": 7*3600 + 30*60 + 4*3600, "UNKNOWN": 0,
		},
	}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Rows:\n got %+v\nwant %+v", got, want)
	}
	var sum int64
	for _, v := range got[0].Seconds {
		sum += v
	}
	if sum != 24*3600 {
		t.Errorf("seconds add up to %d, want a whole day", sum)
	}
}

func TestMidnightSplitsInterval(t *testing.T) {
	loc := moscow(t)
	changes := []Change{
		ch(at(loc, 5, 22, 0), working),
		ch(at(loc, 6, 2, 30), idle),
	}
	now := at(loc, 7, 12, 0)
	for _, c := range []struct {
		day      int
		job      string
		idleSecs int64
	}{
		{5, "2,00", 0},               // 22:00-24:00; nothing known before 22:00
		{6, "2,30", 21*3600 + 30*60}, // 00:00-02:30, then idle
	} {
		rows := Rows(stationary, changes, at(loc, c.day, 0, 0), loc, now)
		if len(rows) != 1 || rows[0].TIME_JOB != c.job || rows[0].Seconds["IDLE"] != c.idleSecs {
			t.Errorf("day %d: got %+v, want one row with TIME_JOB %s and %d s idle", c.day, rows, c.job, c.idleSecs)
		}
	}
}

func TestOpenIntervalRunsUntilNow(t *testing.T) {
	loc := moscow(t)
	changes := []Change{ch(at(loc, 5, 8, 0), working)}
	now := at(loc, 5, 11, 15).Add(20 * time.Second)
	rows := Rows(stationary, changes, now, loc, now)
	if len(rows) != 1 || rows[0].TIME_JOB != "3,15" || rows[0].Seconds["WORKING"] != 3*3600+15*60+20 {
		t.Fatalf("got %+v, want TIME_JOB 3,15 (11735 s)", rows)
	}
	// A change timed after now has not happened yet.
	changes = append(changes, ch(now.Add(time.Hour), idle))
	if rows2 := Rows(stationary, changes, now, loc, now); !reflect.DeepEqual(rows, rows2) {
		t.Errorf("a future change altered the rows: %+v", rows2)
	}
}

func TestTwoSitesOneDay(t *testing.T) {
	loc := moscow(t)
	mobile := Device{NumIDK: "850592", TypeIDK: 1, KodTO: "10101010", NaimTO: "Балтийская", NaimZTK: "МАПП А", DislIDK: 1}
	siteA := &idkpb.Site{NaimZtk: "мапп а", KodTo: "10101010", NaimTo: "балтийская", Disl: 1, Lat: 54.7, Lon: 20.5}
	siteB := &idkpb.Site{NaimZtk: "ЗТК Б", KodTo: "10101020", NaimTo: "Калининградская", Disl: 5, Lat: 54.9, Lon: 21.1}
	changes := []Change{
		{Time: at(loc, 5, 8, 0), State: working, Site: siteA},
		{Time: at(loc, 5, 10, 0), State: relocation, Source: "gps"}, // no Site: leaves from A
		{Time: at(loc, 5, 12, 30), State: operations, Site: siteB},  // deploying at B
		{Time: at(loc, 5, 13, 0), State: working},
		{Time: at(loc, 5, 18, 0), State: idle},
	}
	rows := Rows(mobile, changes, at(loc, 5, 0, 0), loc, at(loc, 6, 0, 0))
	if len(rows) != 2 {
		t.Fatalf("got %d rows, want 2: %+v", len(rows), rows)
	}
	a, b := rows[0], rows[1]
	if a.NAIM_ZTK_M_D != "МАПП А" || a.KOD_M_D != "10101010" || a.NAIM_M_D != "БАЛТИЙСКАЯ" || a.DISL_P != 1 {
		t.Errorf("first row is not site A: %+v", a)
	}
	if b.NAIM_ZTK_M_D != "ЗТК Б" || b.KOD_M_D != "10101020" || b.NAIM_M_D != "КАЛИНИНГРАДСКАЯ" || b.DISL_P != 5 {
		t.Errorf("second row is not site B: %+v", b)
	}
	for _, r := range rows {
		if r.PRIZ_PEREDISL != 1 || r.TYPE_IDK != 1 || r.NUM_IDK != "850592" || r.DATE != "05.03.2024" {
			t.Errorf("row %s: %+v, want PRIZ_PEREDISL 1 on every row", r.NAIM_ZTK_M_D, r)
		}
	}
	if a.TIME_PEREDISL != "2,30" || a.TIME_JOB != "2,00" || a.TIME_OPER != "0,00" {
		t.Errorf("site A: PEREDISL %s JOB %s OPER %s, want 2,30 2,00 0,00", a.TIME_PEREDISL, a.TIME_JOB, a.TIME_OPER)
	}
	if b.TIME_PEREDISL != "0,00" || b.TIME_JOB != "5,00" || b.TIME_OPER != "0,30" {
		t.Errorf("site B: PEREDISL %s JOB %s OPER %s, want 0,00 5,00 0,30", b.TIME_PEREDISL, b.TIME_JOB, b.TIME_OPER)
	}
}

func TestRule18ZeroRow(t *testing.T) {
	loc := moscow(t)
	want := func(idle int64) []Row {
		return []Row{{
			DATE: "05.03.2024", NUM_IDK: "850591", KOD_M_D: "10101010",
			NAIM_M_D: "0", NAIM_ZTK_M_D: "0",
			TIME_JOB: "0,00", TIME_WAIT: "0,00", TIME_OPER: "0,00", TIME_TEH: "0,00", TIME_NEPAB: "0,00", TIME_PEREDISL: "0,00",
			Seconds: map[string]int64{"WORKING": 0, "WAITING": 0, "OPERATIONS": 0, "MAINTENANCE": 0,
				"INOPERABLE": 0, "RELOCATION": 0, "IDLE": idle, "UNKNOWN": 0},
		}}
	}
	// Switched off all day: the idle time shows only in Seconds.
	changes := []Change{ch(at(loc, 4, 20, 0), idle), ch(at(loc, 6, 8, 0), working)}
	if got := Rows(stationary, changes, at(loc, 5, 0, 0), loc, at(loc, 7, 0, 0)); !reflect.DeepEqual(got, want(86400)) {
		t.Errorf("idle day:\n got %+v\nwant %+v", got, want(86400))
	}
	// Nothing known at all.
	if got := Rows(stationary, nil, at(loc, 5, 0, 0), loc, at(loc, 7, 0, 0)); !reflect.DeepEqual(got, want(0)) {
		t.Errorf("no changes:\n got %+v\nwant %+v", got, want(0))
	}
}

func TestUnknownGapCountsNowhere(t *testing.T) {
	loc := moscow(t)
	changes := []Change{
		ch(at(loc, 5, 8, 0), working),
		ch(at(loc, 5, 10, 0), unknown), // controller link lost
		ch(at(loc, 5, 11, 0), working),
		ch(at(loc, 5, 12, 0), idkpb.DeviceState_DEVICE_STATE_UNSPECIFIED), // no state given: unknown too
		ch(at(loc, 5, 12, 30), idle),
	}
	rows := Rows(stationary, changes, at(loc, 5, 0, 0), loc, at(loc, 6, 0, 0))
	if len(rows) != 1 {
		t.Fatalf("got %d rows, want 1", len(rows))
	}
	r := rows[0]
	if r.TIME_JOB != "3,00" || r.TIME_WAIT != "0,00" || r.TIME_OPER != "0,00" || r.TIME_TEH != "0,00" || r.TIME_NEPAB != "0,00" {
		t.Errorf("unknown time leaked into a field: %+v", r)
	}
	if r.Seconds["UNKNOWN"] != 90*60 || r.Seconds["WORKING"] != 3*3600 {
		t.Errorf("Seconds = %v, want 5400 UNKNOWN and 10800 WORKING", r.Seconds)
	}
}

func TestSameTimeLaterChangeWins(t *testing.T) {
	loc := moscow(t)
	changes := []Change{
		ch(at(loc, 5, 8, 0), working),
		ch(at(loc, 5, 8, 0), waiting),
		ch(at(loc, 5, 9, 0), idle),
	}
	r := Rows(stationary, changes, at(loc, 5, 0, 0), loc, at(loc, 6, 0, 0))[0]
	if r.TIME_WAIT != "1,00" || r.TIME_JOB != "1,00" || r.Seconds["WORKING"] != 0 {
		t.Errorf("got %+v, want the hour counted as waiting", r)
	}
}
