package cases

import (
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"idk/simulator/simclock"
)

// moscow is the collectors' zone, or its fixed offset where the system has
// no zone database.
func moscow(t *testing.T) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation("Europe/Moscow")
	if err != nil {
		return time.FixedZone("MSK", 3*60*60)
	}
	return loc
}

// at is a wall-clock time in loc on day d of March 2024.
func at(loc *time.Location, d, h, m, s int) time.Time {
	return time.Date(2024, time.March, d, h, m, s, 0, loc)
}

const (
	idkX = "850591"
	idkY = "850592"
	dt1  = "10702070/170717/0012345"
	dt2  = "10702070/170717/0012346"
)

var stationary = Device{NumIDK: idkX, TypeIDK: 2, KodTO: "10101010", NaimTO: "Балтийская", NaimZTK: "пкт", DislIDK: 2}

// fixture is an engine on a file in a temporary folder, with its clock.
type fixture struct {
	t    *testing.T
	e    *Engine
	clk  *simclock.Clock
	loc  *time.Location
	path string
}

func newFixture(t *testing.T, start time.Time) *fixture {
	t.Helper()
	f := &fixture{t: t, clk: simclock.New(start), loc: start.Location(), path: filepath.Join(t.TempDir(), "cases.db")}
	f.open()
	t.Cleanup(func() {
		if f.e != nil {
			f.e.Close()
		}
	})
	return f
}

func (f *fixture) open() {
	f.t.Helper()
	e, err := Open(f.path, f.loc, f.clk)
	if err != nil {
		f.t.Fatal(err)
	}
	f.e = e
}

// set moves the clock forward to now. A virtual clock does not go back,
// and no test needs it to.
func (f *fixture) set(now time.Time) {
	f.t.Helper()
	if now.Before(f.clk.Now()) {
		f.t.Fatalf("clock moved back from %v to %v", f.clk.Now(), now)
	}
	f.clk.Advance(now.Sub(f.clk.Now()))
}

// restart closes the engine, moves the clock to now and opens it again.
func (f *fixture) restart(now time.Time) {
	f.t.Helper()
	if err := f.e.Close(); err != nil {
		f.t.Fatal(err)
	}
	f.e = nil
	f.set(now)
	f.open()
}

// add adds ev with the clock at ev.Time unless the clock is already later.
func (f *fixture) add(ev Event) string {
	f.t.Helper()
	if ev.By == "" {
		ev.By = "test"
	}
	if f.clk.Now().Before(ev.Time) {
		f.set(ev.Time)
	}
	id, err := f.e.Add(ev)
	if err != nil {
		f.t.Fatalf("add %+v: %v", ev, err)
	}
	return id
}

// tick moves the clock to now and ticks.
func (f *fixture) tick(now time.Time) {
	f.t.Helper()
	f.set(now)
	if err := f.e.Tick(); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) rows(day time.Time) []Row {
	f.t.Helper()
	rows, err := f.e.Breaches(day, day)
	if err != nil {
		f.t.Fatal(err)
	}
	return rows
}

func (f *fixture) caseOf(id string) Case {
	f.t.Helper()
	c, ok := f.e.Case(id)
	if !ok {
		f.t.Fatalf("case %s not found", id)
	}
	return c
}

func timer(c Case, r Rule) (Timer, bool) {
	for _, t := range c.Timers {
		if t.Rule == r {
			return t, true
		}
	}
	return Timer{}, false
}

func TestParseDocs(t *testing.T) {
	for _, c := range []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"  /  ", nil},
		{dt1, []string{dt1}},
		{dt1 + "/TIR123", []string{dt1, "TIR123"}},
		{"TIR 123 / 10702070 / 170717 / 0012345 / cmr-7", []string{"TIR123", dt1, "CMR-7"}},
		{dt1 + "/" + dt2, []string{dt1, dt2}},
		{"мдп 12345/" + dt1, []string{"МДП12345", dt1}},
		// Not ДТ-shaped: a longer first part, a longer last part, too
		// few parts, the wrong lengths.
		{"110702070/170717/0012345", []string{"110702070", "170717", "0012345"}},
		{"10702070/170717/00123456", []string{"10702070", "170717", "00123456"}},
		{"10702070/170717", []string{"10702070", "170717"}},
		{"1070207/0170717/0012345", []string{"1070207", "0170717", "0012345"}},
		// A ДТ after a part that only looks like its start.
		{"12345678/10702070/170717/0012345", []string{"12345678", dt1}},
		{"a//b/", []string{"A", "B"}},
		{"X/x/" + dt1 + "/" + dt1, []string{"X", dt1}},
	} {
		if got := ParseDocs(c.in); !slices.Equal(got, c.want) {
			t.Errorf("ParseDocs(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestFormatMinutes(t *testing.T) {
	for _, c := range []struct {
		d    time.Duration
		want string
	}{
		{0, "0,00"},
		{-5 * time.Second, "0,00"},
		{time.Second, "0,01"},
		{15 * time.Minute, "0,15"},
		{15*time.Minute + time.Second, "0,16"},
		{15*time.Minute + time.Nanosecond, "0,16"},
		{17 * time.Minute, "0,17"},
		{59*time.Minute + 59*time.Second, "1,00"},
		{75 * time.Minute, "1,15"},
		{25 * time.Hour, "25,00"},
	} {
		if got := FormatMinutes(c.d); got != c.want {
			t.Errorf("FormatMinutes(%v) = %q, want %q", c.d, got, c.want)
		}
	}
}

func TestAddValidates(t *testing.T) {
	loc := moscow(t)
	f := newFixture(t, at(loc, 5, 10, 0, 0))
	now := at(loc, 5, 10, 0, 0)
	for _, c := range []struct {
		ev    Event
		names string
		is    error
	}{
		{Event{Kind: "landed", Time: now, NumIDK: idkX, By: "a"}, "kind", ErrInvalid},
		{Event{Time: now, NumIDK: idkX, By: "a"}, "kind", ErrInvalid},
		{Event{Kind: Arrival, NumIDK: idkX, By: "a"}, "time", ErrInvalid},
		{Event{Kind: Arrival, Time: now, NumIDK: " ", By: "a"}, "num_idk", ErrInvalid},
		{Event{Kind: Arrival, Time: now, NumIDK: idkX}, "by", ErrInvalid},
		{Event{Kind: Scan, Time: now, NumIDK: idkX, By: "a"}, "num_snim", ErrInvalid},
		{Event{Kind: Decision, Time: now, NumIDK: idkX, By: "a"}, "num_snim", ErrInvalid},
		{Event{Kind: Arrival, Time: now, NumIDK: idkX, Suspected: true, By: "a"}, "suspected", ErrInvalid},
		{Event{Kind: Arrival, Time: now.Add(2 * time.Minute), NumIDK: idkX, By: "a"}, "time", ErrInvalid},
		{Event{Kind: DocsReturned, Time: now, NumIDK: idkX, By: "a"}, "case_id, num_snim or docs", ErrInvalid},
		{Event{Kind: DocsReturned, Time: now, NumIDK: idkX, NumSnim: "S404", By: "a"}, `num_snim "S404"`, ErrNotFound},
		{Event{Kind: ActHanded, Time: now, NumIDK: idkX, Docs: []string{dt1}, By: "a"}, "docs", ErrNotFound},
		{Event{Kind: DocsHanded, Time: now, NumIDK: idkX, CaseID: "20240305-999999", By: "a"}, "case_id", ErrNotFound},
	} {
		_, err := f.e.Add(c.ev)
		if err == nil || !errors.Is(err, c.is) || !strings.Contains(err.Error(), c.names) {
			t.Errorf("Add(%+v) = %v, want %v naming %s", c.ev, err, c.is, c.names)
		}
	}
	if cs := f.e.Cases(); len(cs) != 0 {
		t.Errorf("refused events left cases: %+v", cs)
	}
	// A minute of clock drift is accepted.
	f.add(Event{Kind: Arrival, Time: now.Add(time.Minute), NumIDK: idkX})
}

func TestAddIsIdempotent(t *testing.T) {
	loc := moscow(t)
	f := newFixture(t, at(loc, 5, 10, 0, 0))
	ev := Event{Kind: Scan, Time: at(loc, 5, 10, 0, 0), NumIDK: idkX, NumSnim: "S1", By: "agent"}
	id := f.add(ev)
	if again := f.add(ev); again != id {
		t.Errorf("the same event again went to %s, not %s", again, id)
	}
	// Normalisation makes the same event identical.
	ev2 := ev
	ev2.NumSnim, ev2.Time = " s1", ev.Time.UTC()
	if again := f.add(ev2); again != id {
		t.Errorf("the same event, written differently, went to %s, not %s", again, id)
	}
	if n := len(f.caseOf(id).Events); n != 1 {
		t.Errorf("case has %d events, want 1", n)
	}
	// Still after a restart.
	f.restart(at(loc, 5, 10, 1, 0))
	if again := f.add(ev); again != id {
		t.Errorf("after restart the same event went to %s, not %s", again, id)
	}
	// A different report of the same scan joins it.
	ev.By = "operator"
	if other := f.add(ev); other != id || len(f.caseOf(id).Events) != 2 {
		t.Errorf("a second report went to %s with %d events", other, len(f.caseOf(id).Events))
	}
}
