package availability

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"idk/protocol/codes"
	"idk/protocol/idkpb"
	"idk/simulator/simclock"
)

// setClock moves clk forward to now. A virtual clock does not go back,
// and no test needs it to.
func setClock(t *testing.T, clk *simclock.Clock, now time.Time) {
	t.Helper()
	if now.Before(clk.Now()) {
		t.Fatalf("clock moved back from %v to %v", clk.Now(), now)
	}
	clk.Advance(now.Sub(clk.Now()))
}

// memAcks is an in-memory AckStore.
type memAcks struct {
	mu    sync.Mutex
	acks  []Ack
	steps []StepReport
	fail  error
}

func (m *memAcks) SaveStep(numIDK, id, step, by string, at time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return m.fail
	}
	m.steps = append(m.steps, StepReport{NumIDK: numIDK, ID: id, Step: step, By: by, At: at})
	return nil
}

func (m *memAcks) LoadSteps() ([]StepReport, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]StepReport(nil), m.steps...), nil
}

func (m *memAcks) SaveAck(numIDK, id, by string, at time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return m.fail
	}
	m.acks = append(m.acks, Ack{NumIDK: numIDK, ID: id, By: by, At: at})
	return nil
}

func (m *memAcks) LoadAcks() ([]Ack, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]Ack(nil), m.acks...), nil
}

// incidentDay applies a day with one closed and one open incident.
func incidentDay(tr *Tracker, loc *time.Location) {
	site := &idkpb.Site{NaimZtk: "ПКТ", KodTo: "10101010", NaimTo: "БАЛТИЙСКАЯ", Disl: 2, Lat: 59.88, Lon: 30.21}
	for _, c := range []Change{
		{Time: at(loc, 5, 8, 0), State: working, Site: site},
		{Time: at(loc, 5, 9, 0), State: inoperable, Cause: idkpb.InoperableCause_INOPERABLE_CAUSE_REBOOT},
		{Time: at(loc, 5, 9, 10), State: working},
		{Time: at(loc, 5, 11, 0), State: inoperable},
		// The cause found while fixing it: same incident, refined.
		{Time: at(loc, 5, 11, 5), State: inoperable, Cause: idkpb.InoperableCause_INOPERABLE_CAUSE_GENERATOR, Note: "ДГУ не запускается", Source: "staff"},
	} {
		tr.Apply(stationary, c)
	}
}

func TestIncidents(t *testing.T) {
	loc := moscow(t)
	clk := simclock.New(at(loc, 5, 11, 12))
	tr := NewTracker(loc, clk)
	incidentDay(tr, loc)

	incs := tr.Incidents("850591")
	if len(incs) != 2 {
		t.Fatalf("got %d incidents, want 2: %+v", len(incs), incs)
	}
	closed, open := incs[0], incs[1]
	if closed.Open() || !closed.Start.Equal(at(loc, 5, 9, 0)) || !closed.End.Equal(at(loc, 5, 9, 10)) ||
		closed.Duration != 10*time.Minute || closed.Cause != idkpb.InoperableCause_INOPERABLE_CAUSE_REBOOT ||
		closed.CauseName != "перезагрузка системы" || closed.Category != "неработоспособность ИДК" {
		t.Errorf("closed incident: %+v", closed)
	}
	if !open.Open() || !open.Start.Equal(at(loc, 5, 11, 0)) || open.Duration != 12*time.Minute ||
		open.Cause != idkpb.InoperableCause_INOPERABLE_CAUSE_GENERATOR || open.CauseName != "поломка дизель-генератора" ||
		open.Note != "ДГУ не запускается" || open.NaimZTK != "ПКТ" {
		t.Errorf("open incident: %+v", open)
	}
	if open.ID != "850591-20240305T080000Z" {
		t.Errorf("ID = %q, want NUM_IDK and UTC start", open.ID)
	}
	if tr.Incidents("000000") != nil {
		t.Error("incidents for an unknown ИДК")
	}
}

func TestAckAndAlertMetric(t *testing.T) {
	loc := moscow(t)
	clk := simclock.New(at(loc, 5, 11, 12))
	store := &memAcks{}
	tr := NewTracker(loc, clk)
	if err := tr.UseAckStore(store); err != nil {
		t.Fatal(err)
	}
	incidentDay(tr, loc)
	if problems, err := testutil.CollectAndLint(tr.Collector()); err != nil || len(problems) > 0 {
		t.Fatalf("lint: %v %v", err, problems)
	}

	alert := func(want string) {
		t.Helper()
		exp := `
# HELP idk_collector_incident_unacknowledged_seconds Age of the oldest open incident nobody has acknowledged, 0 if none.
# TYPE idk_collector_incident_unacknowledged_seconds gauge
idk_collector_incident_unacknowledged_seconds{num_idk="850591"} ` + want + `
# HELP idk_collector_incidents_open Inoperability incidents of each ИДК that are still open.
# TYPE idk_collector_incidents_open gauge
idk_collector_incidents_open{num_idk="850591"} 1
`
		if err := testutil.CollectAndCompare(tr.Collector(), strings.NewReader(exp),
			"idk_collector_incident_unacknowledged_seconds", "idk_collector_incidents_open"); err != nil {
			t.Error(err)
		}
	}
	alert("720") // open since 11:00, now 11:12: past the 600 s alert threshold

	// The closed incident acked changes nothing for the alert.
	first := tr.Incidents("850591")[0]
	if err := tr.Ack("850591", first.ID, "Иванов"); err != nil {
		t.Fatal(err)
	}
	alert("720")

	open := tr.Incidents("850591")[1]
	setClock(t, clk, at(loc, 5, 11, 15))
	if err := tr.Ack("850591", open.ID, "Петров"); err != nil {
		t.Fatal(err)
	}
	alert("0")
	if err := tr.Ack("850591", open.ID, "Сидоров"); err != nil {
		t.Errorf("second ack: %v", err)
	}
	got := tr.Incidents("850591")[1]
	if !got.Acked || got.AckedBy != "Петров" || !got.AckedAt.Equal(at(loc, 5, 11, 15)) {
		t.Errorf("ack: %+v, want the first ack by Петров at 11:15", got)
	}

	err := tr.Ack("850591", "850591-20240305T000000Z", "Петров")
	if !errors.Is(err, ErrUnknownIncident) || !strings.Contains(err.Error(), "850591-20240305T000000Z") {
		t.Errorf("unknown incident: %v, want ErrUnknownIncident naming it", err)
	}
	if err := tr.Ack("850591", open.ID, " "); err == nil {
		t.Error("ack without a name accepted")
	}

	// A restart: the events are replayed, the acks come from the store.
	tr2 := NewTracker(loc, clk)
	if err := tr2.UseAckStore(store); err != nil {
		t.Fatal(err)
	}
	incidentDay(tr2, loc)
	for i, inc := range tr2.Incidents("850591") {
		if !inc.Acked || inc.AckedBy != []string{"Иванов", "Петров"}[i] {
			t.Errorf("after restart, incident %s: %+v", inc.ID, inc)
		}
	}

	// An ack that could not be saved is not shown.
	tr3 := NewTracker(loc, clk)
	if err := tr3.UseAckStore(&memAcks{fail: errors.New("disk full")}); err != nil {
		t.Fatal(err)
	}
	incidentDay(tr3, loc)
	if err := tr3.Ack("850591", open.ID, "Петров"); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Errorf("failed save: %v", err)
	}
	if tr3.Incidents("850591")[1].Acked {
		t.Error("unsaved ack shown")
	}
}

func TestStateMetrics(t *testing.T) {
	loc := moscow(t)
	clk := simclock.New(at(loc, 5, 11, 12))
	tr := NewTracker(loc, clk)
	incidentDay(tr, loc)
	reg := prometheus.NewRegistry()
	reg.MustRegister(tr.Collector())
	if _, ok := gather(t, reg)[`idk_collector_device_position_latitude_degrees{}`]; ok {
		t.Error("coordinates exposed without ExposePosition")
	}
	tr.ExposePosition()

	want := map[string]float64{
		`idk_collector_device_state{state="inoperable"}`:               1,
		`idk_collector_device_state{state="working"}`:                  0,
		`idk_collector_device_state{state="unknown"}`:                  0,
		`idk_collector_device_state_today_seconds{state="working"}`:    (60 + 110) * 60,
		`idk_collector_device_state_today_seconds{state="inoperable"}`: (10 + 12) * 60,
		`idk_collector_device_state_today_seconds{state="idle"}`:       0,
		`idk_collector_device_position_latitude_degrees{}`:             59.88,
		`idk_collector_device_position_longitude_degrees{}`:            30.21,
	}
	got := gather(t, reg)
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("%s = %v (present %v), want %v", k, g, ok, v)
		}
	}
}

// gather flattens a registry into "name{state="..."}" -> value for the
// ИДК 850591.
func gather(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			key, num := mf.GetName()+"{", ""
			for _, lp := range m.GetLabel() {
				switch lp.GetName() {
				case "num_idk":
					num = lp.GetValue()
				case "state":
					key += `state="` + lp.GetValue() + `"`
				}
			}
			if num == "850591" {
				out[key+"}"] = m.GetGauge().GetValue()
			}
		}
	}
	return out
}

func TestTrackerRowsAndRetention(t *testing.T) {
	loc := moscow(t)
	clk := simclock.New(at(loc, 1, 20, 0))
	tr := NewTracker(loc, clk)
	// Eight working days, then an incident from day 9 20:00 whose cause
	// is found on day 10 at 09:00; it is still open on day 18.
	for d := 1; d <= 9; d++ {
		setClock(t, clk, at(loc, d, 20, 0))
		tr.Apply(stationary, ch(at(loc, d, 8, 0), working))
		if d < 9 {
			tr.Apply(stationary, ch(at(loc, d, 20, 0), idle))
		}
	}
	tr.Apply(stationary, ch(at(loc, 9, 20, 0), inoperable))
	setClock(t, clk, at(loc, 10, 9, 0))
	tr.Apply(stationary, Change{Time: at(loc, 10, 9, 0), State: inoperable, Cause: idkpb.InoperableCause_INOPERABLE_CAUSE_BOOM})
	// Day 18: everything before day 10 12:00 may go, but the incident's
	// first change must stay, or its start and ID would move.
	setClock(t, clk, at(loc, 18, 12, 0))
	tr.Apply(stationary, ch(at(loc, 18, 11, 0), unknown))

	if rows := tr.Rows("850591", at(loc, 9, 0, 0)); rows != nil {
		t.Errorf("day 9 is no longer kept whole, but got rows %+v", rows)
	}
	for _, d := range []int{10, 11} {
		rows := tr.Rows("850591", at(loc, d, 0, 0))
		if len(rows) != 1 || rows[0].TIME_NEPAB != "24,00" || rows[0].TIME_JOB != "0,00" {
			t.Errorf("day %d: %+v, want a whole inoperable day", d, rows)
		}
	}
	incs := tr.Incidents("850591")
	if len(incs) != 1 || incs[0].ID != "850591-20240309T170000Z" || incs[0].Open() ||
		incs[0].Cause != idkpb.InoperableCause_INOPERABLE_CAUSE_BOOM || !incs[0].End.Equal(at(loc, 18, 11, 0)) {
		t.Errorf("incident after pruning: %+v, want the one from day 9 20:00 MSK to day 18 11:00", incs)
	}
	if tr.Rows("000000", at(loc, 11, 0, 0)) != nil {
		t.Error("rows for an unknown ИДК")
	}
}

func TestTrackerConcurrent(t *testing.T) {
	loc := moscow(t)
	clk := simclock.New(at(loc, 5, 23, 0))
	tr := NewTracker(loc, clk)
	reg := prometheus.NewRegistry()
	reg.MustRegister(tr.Collector())
	h := tr.Handler()
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			dev := stationary
			dev.NumIDK = []string{"850591", "850592", "850593", "850594"}[g]
			for i := range 100 {
				tr.Apply(dev, ch(at(loc, 5, 0, i), []idkpb.DeviceState{working, waiting, inoperable}[i%3]))
				tr.Rows(dev.NumIDK, at(loc, 5, 0, 0))
				for _, inc := range tr.Incidents(dev.NumIDK) {
					tr.Ack(dev.NumIDK, inc.ID, "Петров")
				}
			}
		})
	}
	wg.Go(func() {
		for range 50 {
			if _, err := reg.Gather(); err != nil {
				t.Error(err)
			}
			get(h, "/api/v1/availability")
		}
	})
	wg.Wait()
}

// The cause names are the regulation's, from the one code table: the
// catch-all with its full wording, and an unknown code falls to it.
func TestCauseNames(t *testing.T) {
	for c := idkpb.InoperableCause_INOPERABLE_CAUSE_REBOOT; c <= idkpb.InoperableCause_INOPERABLE_CAUSE_OTHER; c++ {
		if got, want := CauseName(c), codes.TimeNepab.Name(int(c)); got != want || got == "" {
			t.Errorf("%v: %q, want %q", c, got, want)
		}
	}
	other := "иная неисправность, причину которой на момент составления отчета невозможно однозначно определить"
	if got := CauseName(99); got != other {
		t.Errorf("unknown cause: %q", got)
	}
	if got := CauseName(idkpb.InoperableCause_INOPERABLE_CAUSE_UNSPECIFIED); got != "причина не указана" {
		t.Errorf("no cause: %q", got)
	}
}
