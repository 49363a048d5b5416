package availability

import (
	"reflect"
	"sync/atomic"
	"testing"
	"time"

	"idk/collector/ingest"
	"idk/collector/store"
	"idk/protocol/idkpb"
	"idk/simulator/simclock"
)

// journalFixture is the collector's real path for state changes: the
// bbolt index, ingest and the journal, with a tracker following.
type journalFixture struct {
	t       *testing.T
	log     ingest.Log
	in      *ingest.Ingest
	tracker *Tracker
	seq     map[string]uint64
}

func newJournalFixture(t *testing.T, loc *time.Location, now time.Time) *journalFixture {
	t.Helper()
	clk := simclock.New(now)
	st, err := store.Open(t.TempDir(), store.Options{Location: loc, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	f := &journalFixture{t: t, log: ingest.FromStore(st), tracker: NewTracker(loc, clk), seq: map[string]uint64{}}
	j := NewJournal(f.tracker)
	f.in = ingest.New(ingest.Config{Log: f.log, Consumers: map[string]ingest.Consumer{"availability": j}, Followers: []ingest.Follower{j}})
	if err := f.in.Load(); err != nil {
		t.Fatal(err)
	}
	return f
}

// send ingests changes of dev as one batch, timed as given (the
// collector's correction is the identity).
func (f *journalFixture) send(dev *idkpb.Device, changes ...Change) {
	f.t.Helper()
	var evs []*idkpb.Event
	for _, c := range changes {
		f.seq[dev.NumIdk]++
		evs = append(evs, &idkpb.Event{Seq: f.seq[dev.NumIdk], TimeUnixNano: c.Time.UnixNano(), Body: &idkpb.Event_State{State: &idkpb.StateChange{
			State: c.State, Cause: c.Cause, Note: c.Note, Source: c.Source, Site: c.Site,
		}}})
	}
	if _, err := f.in.Ingest(dev, 1, evs, func(n int64) time.Time { return time.Unix(0, n) }); err != nil {
		f.t.Fatal(err)
	}
}

func (f *journalFixture) dayRows(v ingest.Viewer, day time.Time, loc *time.Location, now time.Time) []DayRow {
	f.t.Helper()
	rows, err := DayRows(v, day, loc, now)
	if err != nil {
		f.t.Fatal(err)
	}
	return rows
}

var stationaryPB = &idkpb.Device{NumIdk: "850591", TypeIdk: 2, KodTo: "10101010", NaimTo: "Балтийская", NaimZtk: "пкт", DislIdk: 2}

// TestDayRowsPastDay: a day weeks back, which the tracker no longer
// keeps, gives from the stored changes the rows Rows gives from the
// whole history, with the working spans, and so does every other day
// of the month.
func TestDayRowsPastDay(t *testing.T) {
	loc := moscow(t)
	now := at(loc, 28, 12, 0)
	f := newJournalFixture(t, loc, now)
	all := []Change{
		ch(at(loc, 1, 20, 0), idle),
		ch(at(loc, 5, 7, 30), operations),
		ch(at(loc, 5, 8, 0), working),
		ch(at(loc, 5, 10, 0), waiting),
		ch(at(loc, 5, 10, 45), working),
		ch(at(loc, 5, 13, 0), operations),
		{Time: at(loc, 5, 14, 0), State: inoperable, Cause: idkpb.InoperableCause_INOPERABLE_CAUSE_SOFTWARE, Source: "controller"},
		ch(at(loc, 5, 14, 20), maintenance),
		ch(at(loc, 5, 15, 0), waiting),
		ch(at(loc, 5, 19, 30), operations),
		ch(at(loc, 5, 20, 0), idle),
		ch(at(loc, 9, 22, 0), working), // over midnight
		ch(at(loc, 10, 2, 30), idle),
		ch(at(loc, 27, 8, 0), waiting),
	}
	f.send(stationaryPB, all...)

	if f.tracker.Rows("850591", at(loc, 5, 0, 0)) != nil {
		t.Fatal("the tracker still keeps the 5th: the test does not reach past its window")
	}
	got := f.dayRows(f.log, at(loc, 5, 0, 0), loc, now)
	want := []DayRow{{
		Row: Rows(stationary, all, at(loc, 5, 0, 0), loc, now)[0],
		Working: []Span{
			{at(loc, 5, 8, 0), at(loc, 5, 13, 0)}, // working, waiting, working: one span
			{at(loc, 5, 15, 0), at(loc, 5, 19, 30)},
		},
	}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("5th:\n got %+v\nwant %+v", got, want)
	}
	if got[0].Row.TIME_JOB != "9,30" || got[0].Row.NAIM_ZTK_M_D != "ПКТ" {
		t.Errorf("5th row: %+v", got[0].Row)
	}

	for d := 1; d <= 28; d++ {
		day := at(loc, d, 0, 0)
		got := f.dayRows(f.log, day, loc, now)
		if want := Rows(stationary, all, day, loc, now); len(got) != len(want) {
			t.Errorf("day %d: %d rows, want %d", d, len(got), len(want))
		} else {
			for i := range got {
				if !reflect.DeepEqual(got[i].Row, want[i]) {
					t.Errorf("day %d row %d:\n got %+v\nwant %+v", d, i, got[i].Row, want[i])
				}
			}
		}
	}
	// The day over midnight and today, still running.
	if got := f.dayRows(f.log, at(loc, 10, 0, 0), loc, now); len(got) != 1 || !reflect.DeepEqual(got[0].Working, []Span{{at(loc, 10, 0, 0), at(loc, 10, 2, 30)}}) {
		t.Errorf("10th: %+v", got)
	}
	if got := f.dayRows(f.log, at(loc, 28, 0, 0), loc, now); len(got) != 1 || !reflect.DeepEqual(got[0].Working, []Span{{at(loc, 28, 0, 0), now}}) ||
		got[0].Row.TIME_JOB != "12,00" {
		t.Errorf("today: %+v", got)
	}
}

// TestDayRowsRelocation: a mobile ИДК that moved during the day has a
// row per place, each with the spans it worked there.
func TestDayRowsRelocation(t *testing.T) {
	loc := moscow(t)
	now := at(loc, 20, 0, 0)
	f := newJournalFixture(t, loc, now)
	mobile := &idkpb.Device{NumIdk: "850592", TypeIdk: 1, KodTo: "10101010", NaimTo: "Балтийская", NaimZtk: "МАПП А", DislIdk: 1}
	siteA := &idkpb.Site{NaimZtk: "мапп а", KodTo: "10101010", NaimTo: "балтийская", Disl: 1, Lat: 54.7, Lon: 20.5}
	siteB := &idkpb.Site{NaimZtk: "ЗТК Б", KodTo: "10101020", NaimTo: "Калининградская", Disl: 5, Lat: 54.9, Lon: 21.1}
	f.send(mobile,
		Change{Time: at(loc, 4, 18, 0), State: idle, Site: siteA},
		Change{Time: at(loc, 5, 8, 0), State: working, Site: siteA},
		Change{Time: at(loc, 5, 9, 0), State: waiting, Site: siteA},
		Change{Time: at(loc, 5, 10, 0), State: relocation, Site: siteA},
		Change{Time: at(loc, 5, 12, 30), State: operations, Site: siteB},
		Change{Time: at(loc, 5, 13, 0), State: working, Site: siteB},
		Change{Time: at(loc, 5, 18, 0), State: idle, Site: siteB},
		Change{Time: at(loc, 6, 9, 0), State: waiting, Site: siteB},
	)
	got := f.dayRows(f.log, at(loc, 5, 0, 0), loc, now)
	if len(got) != 2 {
		t.Fatalf("got %d rows, want 2: %+v", len(got), got)
	}
	a, b := got[0], got[1]
	if a.Row.NAIM_ZTK_M_D != "МАПП А" || a.Row.KOD_M_D != "10101010" || a.Row.PRIZ_PEREDISL != 1 || a.Row.TIME_JOB != "2,00" || a.Row.TIME_PEREDISL != "2,30" || a.Zero {
		t.Errorf("site A: %+v", a)
	}
	if b.Row.NAIM_ZTK_M_D != "ЗТК Б" || b.Row.KOD_M_D != "10101020" || b.Row.PRIZ_PEREDISL != 1 || b.Row.TIME_JOB != "5,00" || b.Row.TIME_OPER != "0,30" || b.Zero {
		t.Errorf("site B: %+v", b)
	}
	if want := []Span{{at(loc, 5, 8, 0), at(loc, 5, 10, 0)}}; !reflect.DeepEqual(a.Working, want) {
		t.Errorf("site A working %v, want %v", a.Working, want)
	}
	if want := []Span{{at(loc, 5, 13, 0), at(loc, 5, 18, 0)}}; !reflect.DeepEqual(b.Working, want) {
		t.Errorf("site B working %v, want %v", b.Working, want)
	}
	// The next day begins where the ИДК stood: at B, from the last
	// change before the day alone.
	if got := f.dayRows(f.log, at(loc, 6, 0, 0), loc, now); len(got) != 1 || got[0].Row.NAIM_ZTK_M_D != "ЗТК Б" || got[0].Row.TIME_JOB != "15,00" {
		t.Errorf("6th: %+v", got)
	}
}

// countingViewer counts the range scans of the transactions it runs.
type countingViewer struct {
	ingest.Viewer
	scans atomic.Int64
}

type countingTx struct {
	ingest.Tx
	scans *atomic.Int64
}

func (v *countingViewer) View(fn func(ingest.Tx) error) error {
	return v.Viewer.View(func(tx ingest.Tx) error { return fn(countingTx{tx, &v.scans}) })
}

func (tx countingTx) Scan(bucket string, from, to []byte, reverse bool, fn func(k, v []byte) error) error {
	tx.scans.Add(1)
	return tx.Tx.Scan(bucket, from, to, reverse, fn)
}

// TestDayRowsRule18: an ИДК not operated that day gets the zero row
// (marked Zero, no working spans); one the collector did not know yet
// gets none; the reads are two scans per ИДК.
func TestDayRowsRule18(t *testing.T) {
	loc := moscow(t)
	now := at(loc, 20, 0, 0)
	f := newJournalFixture(t, loc, now)
	f.send(stationaryPB, ch(at(loc, 4, 8, 0), working), ch(at(loc, 4, 20, 0), idle), ch(at(loc, 6, 8, 0), working))
	late := &idkpb.Device{NumIdk: "850599", TypeIdk: 2, KodTo: "10101010", NaimZtk: "ПКТ"}
	f.send(late, ch(at(loc, 6, 0, 0), working)) // first known after the 5th
	v := &countingViewer{Viewer: f.log}
	got := f.dayRows(v, at(loc, 5, 0, 0), loc, now)
	want := []DayRow{{Row: Row{
		DATE: "05.03.2024", NUM_IDK: "850591", KOD_M_D: "10101010", NAIM_M_D: "0", NAIM_ZTK_M_D: "0",
		TIME_JOB: "0,00", TIME_WAIT: "0,00", TIME_OPER: "0,00", TIME_TEH: "0,00", TIME_NEPAB: "0,00", TIME_PEREDISL: "0,00",
		Seconds: map[string]int64{"WORKING": 0, "WAITING": 0, "OPERATIONS": 0, "MAINTENANCE": 0, "INOPERABLE": 0, "RELOCATION": 0, "IDLE": 86400, "UNKNOWN": 0},
	}, Zero: true}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("5th:\n got %+v\nwant %+v", got, want)
	}
	if n := v.scans.Load(); n != 1+2*2 {
		t.Errorf("%d scans, want the devices and two per ИДК (5)", n)
	}
	if got := f.dayRows(f.log, at(loc, 6, 0, 0), loc, now); len(got) != 2 || got[0].Row.NUM_IDK != "850591" || got[1].Row.NUM_IDK != "850599" {
		t.Errorf("6th: %+v", got)
	}
}

// TestDayRunsAndCurrentStates: a day's timeline starts in the state the
// day began in, joins changes that keep the state, cuts at midnight and
// at now, and names an inoperable run's cause; the tracker's state now is
// the last change's.
func TestDayRunsAndCurrentStates(t *testing.T) {
	loc := moscow(t)
	now := at(loc, 6, 12, 0)
	f := newJournalFixture(t, loc, now)
	broken := Change{Time: at(loc, 5, 9, 0), State: idkpb.DeviceState_DEVICE_STATE_INOPERABLE, Cause: idkpb.InoperableCause_INOPERABLE_CAUSE_GENERATOR, Note: "авария"}
	f.send(stationaryPB,
		ch(at(loc, 4, 20, 0), idle),
		ch(at(loc, 5, 8, 0), working),
		ch(at(loc, 5, 8, 30), working), // a refinement: the same run
		broken,
		ch(at(loc, 5, 11, 0), working),
		ch(at(loc, 6, 10, 0), idle),
	)
	runs, err := DayRuns(f.log, "850591", at(loc, 5, 15, 0), loc, now)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		from, to time.Time
		state    string
	}{
		{at(loc, 5, 0, 0), at(loc, 5, 8, 0), "IDLE"},
		{at(loc, 5, 8, 0), at(loc, 5, 9, 0), "WORKING"},
		{at(loc, 5, 9, 0), at(loc, 5, 11, 0), "INOPERABLE"},
		{at(loc, 5, 11, 0), at(loc, 6, 0, 0), "WORKING"},
	}
	if len(runs) != len(want) {
		t.Fatalf("runs %+v, want %d", runs, len(want))
	}
	for i, w := range want {
		if r := runs[i]; !r.Start.Equal(w.from) || !r.End.Equal(w.to) || r.State != w.state {
			t.Errorf("run %d: %s %s-%s, want %s %s-%s", i, r.State, r.Start, r.End, w.state, w.from, w.to)
		}
	}
	if note := runs[2].Note; note != CauseName(broken.Cause)+" авария" {
		t.Errorf("inoperable run's note %q, want the cause's name and the note", note)
	}
	// Today: cut at now.
	runs, err = DayRuns(f.log, "850591", now, loc, now)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(runs); n != 2 || !runs[1].End.Equal(now) || runs[1].State != "IDLE" {
		t.Errorf("today's runs %+v, want WORKING then IDLE up to now", runs)
	}
	if got := f.tracker.CurrentStates()["850591"]; got != "IDLE" {
		t.Errorf("state now %q, want IDLE", got)
	}
}
