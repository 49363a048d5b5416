package report_test

import (
	"fmt"
	"testing"
	"time"

	"idk/collector/availability"
	"idk/collector/cases"
	"idk/collector/ingest"
	"idk/collector/report"
	"idk/collector/store"
	"idk/protocol/idkpb"
	"idk/simulator/simclock"
)

// journal is the collector's real availability path: the bbolt index,
// ingest and the availability journal.
type journal struct {
	t   *testing.T
	log ingest.Log
	in  *ingest.Ingest
	seq map[string]uint64
}

func newJournal(t *testing.T, now time.Time) *journal {
	t.Helper()
	clk := simclock.New(now)
	st, err := store.Open(t.TempDir(), store.Options{Location: msk, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	j := availability.NewJournal(availability.NewTracker(msk, clk))
	in := ingest.New(ingest.Config{Log: ingest.FromStore(st), Consumers: map[string]ingest.Consumer{"availability": j}, Followers: []ingest.Follower{j}})
	if err := in.Load(); err != nil {
		t.Fatal(err)
	}
	return &journal{t: t, log: ingest.FromStore(st), in: in, seq: map[string]uint64{}}
}

type state struct {
	at   time.Time
	s    idkpb.DeviceState
	site *idkpb.Site
}

func (j *journal) send(dev *idkpb.Device, states ...state) {
	j.t.Helper()
	var evs []*idkpb.Event
	for _, s := range states {
		j.seq[dev.NumIdk]++
		evs = append(evs, &idkpb.Event{Seq: j.seq[dev.NumIdk], TimeUnixNano: s.at.UnixNano(),
			Body: &idkpb.Event_State{State: &idkpb.StateChange{State: s.s, Source: "controller", Site: s.site}}})
	}
	if _, err := j.in.Ingest(dev, 1, evs, func(n int64) time.Time { return time.Unix(0, n) }); err != nil {
		j.t.Fatal(err)
	}
}

// fakeZones answers Zones from a fixed list per ИДК, as the engine does.
type fakeZones map[string][]cases.Zone

func (f fakeZones) Zones(numIDK string, from, to time.Time) ([]cases.Zone, error) {
	var out []cases.Zone
	for _, z := range f[numIDK] {
		if !z.Arrival.Before(from) && z.Arrival.Before(to) {
			out = append(out, z)
		}
	}
	return out, nil
}

// fakeCounts answers Counts from a fixed map keyed by NUM_IDK and date.
type fakeCounts map[string]report.Counts

func (f fakeCounts) Counts(numIDK string, day time.Time) (report.Counts, bool, error) {
	c, ok := f[numIDK+" "+report.FormatDate(day)]
	return c, ok, nil
}

const (
	working    = idkpb.DeviceState_DEVICE_STATE_WORKING
	waiting    = idkpb.DeviceState_DEVICE_STATE_WAITING
	operations = idkpb.DeviceState_DEVICE_STATE_OPERATIONS
	relocation = idkpb.DeviceState_DEVICE_STATE_RELOCATION
	idle       = idkpb.DeviceState_DEVICE_STATE_IDLE
)

// t3row is a table 3 row: the 14 fields of the location and time
// sections, then the counts, 0 where c has none.
func t3row(fields []string, c report.Counts) []string {
	r := append([]string(nil), fields...)
	for _, col := range report.Table3.Columns[len(fields):] {
		r = append(r, fmt.Sprint(c[col.Name]))
	}
	return r
}

func TestTable3(t *testing.T) {
	now := on(6, 23, 0)
	j := newJournal(t, now)
	x := &idkpb.Device{NumIdk: "850591", TypeIdk: 2, KodTo: "10101010", NaimTo: "Балтийская", NaimZtk: "пкт", DislIdk: 2}
	m := &idkpb.Device{NumIdk: "850592", TypeIdk: 1, KodTo: "10101010", NaimTo: "Балтийская", NaimZtk: "МАПП А", DislIdk: 1}
	z := &idkpb.Device{NumIdk: "850593", TypeIdk: 2, KodTo: "10101010", NaimTo: "Балтийская", NaimZtk: "ПКТ", DislIdk: 2}
	w := &idkpb.Device{NumIdk: "850594", TypeIdk: 2, KodTo: "10109999", NaimTo: "Иная", NaimZtk: "ПКТ", DislIdk: 2}
	siteA := &idkpb.Site{NaimZtk: "мапп а", KodTo: "10101010", NaimTo: "балтийская", Disl: 1}
	siteB := &idkpb.Site{NaimZtk: "ЗТК Б", KodTo: "10101020", NaimTo: "Калининградская", Disl: 5}
	// Sent out of NUM_IDK order: the rows come in it anyway.
	j.send(z, state{on(3, 8, 0), working, nil}, state{on(3, 20, 0), idle, nil}) // not operated on the 5th and 6th
	j.send(w, state{on(5, 8, 0), working, nil})                                 // another customs body
	j.send(m,
		state{on(4, 18, 0), idle, siteA},
		state{on(5, 8, 0), working, siteA},
		state{on(5, 10, 0), relocation, siteA},
		state{on(5, 12, 30), operations, siteB},
		state{on(5, 13, 0), waiting, siteB},
		state{on(5, 18, 0), idle, siteB},
		state{on(6, 9, 0), working, siteB},
		state{on(6, 11, 0), idle, siteB},
	)
	j.send(x,
		state{on(4, 20, 0), idle, nil},
		state{on(5, 8, 0), waiting, nil},
		state{on(5, 9, 0), working, nil},
		state{on(5, 12, 0), operations, nil},
		state{on(5, 13, 0), waiting, nil},
		state{on(5, 20, 0), idle, nil},
		state{on(6, 8, 0), working, nil},
		state{on(6, 10, 0), idle, nil},
	)
	zone := func(a, d time.Time) cases.Zone { return cases.Zone{Arrival: a, Decision: d} }
	zones := fakeZones{
		"850591": {
			zone(on(5, 9, 0), on(5, 9, 10)), zone(on(5, 9, 5), on(5, 9, 30)), // overlapping: busy 9:00-9:30
			zone(on(5, 10, 0), on(5, 10, 20)),                                                          // waited 9:30-10:00
			zone(on(5, 12, 10), on(5, 12, 20)),                                                         // waited 10:20-12:00; 12:00-12:10 was a break
			zone(on(5, 14, 0), on(5, 14, 15)),                                                          // waited 13:00-14:00; after the last, until 20:00
			zone(on(6, 8, 30), on(6, 8, 40)), {Arrival: on(6, 9, 0)}, zone(on(6, 9, 30), on(6, 9, 35)), // 0,20, then one still in the zone
		},
		"850592": {
			zone(on(5, 8, 10), on(5, 8, 20)), zone(on(5, 8, 50), on(5, 9, 0)), // at A
			zone(on(5, 13, 30), on(5, 13, 40)), zone(on(5, 15, 0), on(5, 15, 10)), // at B
		},
	}
	x5 := report.Counts{"OKO_GRU_IM": 12, "KOVR_GRU_IM": 10, "OKO_LEG_EX": 3}
	m5 := report.Counts{"OKO_KON_IM": 7, "KOVR_KON_IM": 7}
	m6 := report.Counts{"OKO_POR_EX": 2}
	counts := fakeCounts{
		"850591 05.03.2024": x5,
		"850592 05.03.2024": m5,
		"850592 06.03.2024": m6,
		"850593 05.03.2024": {"OKO_GRU_IM": 99}, // a day it was not operated: rule 18 keeps 0
	}
	zero := func(date, num string) []string {
		return t3row([]string{date, "0", "0", num, "10101010", "0", "0", "0", "0,00", "0,00", "0,00", "0,00", "0,00", "0,00"}, nil)
	}

	rows, err := report.Table3Rows(j.log, zones, counts, "10101010", on(5, 0, 0), on(9, 0, 0), msk, now)
	if err != nil {
		t.Fatal(err)
	}
	checkRows(t, &report.Table3, rows, [][]string{
		// JOB 8-12 and 13-20; WAIT 0:30 + 1:40 + 1:00, then 14:15-20:00
		// after the day's last decision, waiting for the next object.
		t3row([]string{"05.03.2024", "0", "2", "850591", "10101010", "БАЛТИЙСКАЯ", "ПКТ", "2", "11,00", "8,55", "1,00", "0,00", "0,00", "0,00"}, x5),
		// Relocated: the counts on its first row, here; WAIT 8:20-8:50 and
		// 9:00-10:00, waiting for the next object, which came at B.
		t3row([]string{"05.03.2024", "1", "1", "850592", "10101010", "БАЛТИЙСКАЯ", "МАПП А", "1", "2,00", "1,30", "0,00", "0,00", "0,00", "2,30"}, m5),
		zero("05.03.2024", "850593"),
		t3row([]string{"06.03.2024", "0", "2", "850591", "10101010", "БАЛТИЙСКАЯ", "ПКТ", "2", "2,00", "0,20", "0,00", "0,00", "0,00", "0,00"}, nil),
		zero("06.03.2024", "850593"),
	})

	rows, err = report.Table3Rows(j.log, zones, counts, "10101020", on(5, 0, 0), on(7, 0, 0), msk, now)
	if err != nil {
		t.Fatal(err)
	}
	checkRows(t, &report.Table3, rows, [][]string{
		// Its second place that day: no counts. WAIT 13:00-13:30 and
		// 13:40-15:00, then 15:10-18:00, when it stopped working.
		t3row([]string{"05.03.2024", "1", "1", "850592", "10101020", "КАЛИНИНГРАДСКАЯ", "ЗТК Б", "5", "5,00", "4,40", "0,30", "0,00", "0,00", "0,00"}, nil),
		t3row([]string{"06.03.2024", "0", "1", "850592", "10101020", "КАЛИНИНГРАДСКАЯ", "ЗТК Б", "5", "2,00", "0,00", "0,00", "0,00", "0,00", "0,00"}, m6),
	})

	// One day, and a range from the middle of a day.
	rows, err = report.Table3Rows(j.log, zones, counts, "10101010", on(6, 12, 0), on(7, 0, 0), msk, now)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 || rows[0][0] != "06.03.2024" || rows[1][3] != "850593" {
		t.Errorf("the 6th alone:\n%s", dump(rows))
	}
}
