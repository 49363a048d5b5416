package cases

import (
	"fmt"
	"testing"
	"time"
)

// startRule opens a case whose timer of rule starts at t0 and returns the
// case and the event that ends the timer at a given time.
func startRule(f *fixture, rule Rule, t0 time.Time, n int) (id string, end func(time.Time) Event) {
	snim := fmt.Sprintf("S%d", n)
	doc := fmt.Sprintf("TIR%d", n)
	switch rule {
	case Time1:
		id = f.add(Event{Kind: RiskDetected, Time: t0, NumIDK: idkX, Docs: []string{doc}})
		// One of the two end events, early. The other decides.
		f.add(Event{Kind: DocsHanded, Time: t0.Add(time.Minute), NumIDK: idkX, Docs: []string{doc}})
		return id, func(t time.Time) Event {
			return Event{Kind: CarrierInformed, Time: t, NumIDK: idkX, Docs: []string{doc}}
		}
	case Time2:
		id = f.add(Event{Kind: Arrival, Time: t0, NumIDK: idkX})
		return id, func(t time.Time) Event { return Event{Kind: DocsReturned, Time: t, NumIDK: idkX, CaseID: id} }
	default:
		id = f.add(Event{Kind: Scan, Time: t0.Add(-time.Minute), NumIDK: idkX, NumSnim: snim})
		f.add(Event{Kind: Decision, Time: t0, NumIDK: idkX, NumSnim: snim, Suspected: true})
		return id, func(t time.Time) Event { return Event{Kind: ActHanded, Time: t, NumIDK: idkX, NumSnim: snim} }
	}
}

// TestBoundaries checks every rule at its limit less a second, at it, and
// a second over. It checks both with the end reported then and with the
// timer still running. Only the last is a breach.
func TestBoundaries(t *testing.T) {
	loc := moscow(t)
	n := 0
	for _, rule := range rules {
		limit := rule.Limit()
		for _, d := range []time.Duration{limit - time.Second, limit, limit + time.Second} {
			want := d > limit
			name := fmt.Sprintf("%s/%d:%02d", rule, int(d.Minutes()), int(d.Seconds())%60)
			t.Run(name+"/ended", func(t *testing.T) {
				f := newFixture(t, at(loc, 5, 10, 0, 0))
				n++
				t0 := at(loc, 5, 10, 0, 0)
				id, end := startRule(f, rule, t0, n)
				f.set(t0.Add(d))
				f.add(end(t0.Add(d)))
				// Much later, a timer that ended in time is still no breach.
				f.tick(t0.Add(2 * time.Hour))
				checkBreach(t, f, id, rule, want, d, false)
			})
			t.Run(name+"/running", func(t *testing.T) {
				f := newFixture(t, at(loc, 5, 10, 0, 0))
				n++
				t0 := at(loc, 5, 10, 0, 0)
				id, _ := startRule(f, rule, t0, n)
				f.tick(t0.Add(d))
				checkBreach(t, f, id, rule, want, d, true)
			})
		}
	}
}

func checkBreach(t *testing.T, f *fixture, id string, rule Rule, want bool, d time.Duration, running bool) {
	t.Helper()
	c := f.caseOf(id)
	tm, ok := timer(c, rule)
	if !ok {
		t.Fatalf("case %s has no %s timer: %+v", id, rule, c)
	}
	if tm.Breached != want || tm.Running != running {
		t.Errorf("timer %+v: breached %v running %v, want %v %v", tm, tm.Breached, tm.Running, want, running)
	}
	rows := f.rows(at(f.loc, 5, 0, 0, 0))
	if !want {
		if len(rows) != 0 {
			t.Errorf("false breach: %+v", rows)
		}
		return
	}
	if len(rows) != 1 {
		t.Fatalf("missed breach: rows %+v", rows)
	}
	r := rows[0]
	got := map[Rule]string{Time1: r.TIME_1, Time2: r.TIME_2, Time3: r.TIME_3}
	for _, other := range rules {
		w := ""
		if other == rule {
			w = FormatMinutes(d) // one second over: the next minute
		}
		if got[other] != w {
			t.Errorf("%s = %q, want %q (row %+v)", other, got[other], w, r)
		}
	}
	if r.ID != id || r.DATE_NAR != "05.03.2024" || r.Running != running {
		t.Errorf("row %+v", r)
	}
}

// TestTime1EndsAtLaterOfBoth: 20в and 20г are both needed, and the later
// one ends TIME_1, whichever order they come in.
func TestTime1EndsAtLaterOfBoth(t *testing.T) {
	loc := moscow(t)
	t0 := at(loc, 5, 10, 0, 0)

	// 20в early, 20г late: breached, measured to 20г.
	f := newFixture(t, t0)
	id := f.add(Event{Kind: RiskDetected, Time: t0, NumIDK: idkX, Docs: []string{dt1}})
	f.add(Event{Kind: DocsHanded, Time: at(loc, 5, 10, 5, 0), NumIDK: idkX, Docs: []string{dt1}})
	f.add(Event{Kind: CarrierInformed, Time: at(loc, 5, 10, 15, 30), NumIDK: idkX, Docs: []string{dt1}})
	tm, _ := timer(f.caseOf(id), Time1)
	if !tm.End.Equal(at(loc, 5, 10, 15, 30)) || !tm.Breached {
		t.Errorf("TIME_1 %+v, want ended 10:15:30 and breached", tm)
	}
	if rows := f.rows(t0); len(rows) != 1 || rows[0].TIME_1 != "0,16" {
		t.Errorf("rows %+v", rows)
	}

	// 20г early, 20в at the limit: no breach.
	f = newFixture(t, t0)
	id = f.add(Event{Kind: RiskDetected, Time: t0, NumIDK: idkX, Docs: []string{dt1}})
	f.add(Event{Kind: CarrierInformed, Time: at(loc, 5, 10, 2, 0), NumIDK: idkX, Docs: []string{dt1}})
	f.add(Event{Kind: DocsHanded, Time: at(loc, 5, 10, 15, 0), NumIDK: idkX, Docs: []string{dt1}})
	f.tick(at(loc, 5, 12, 0, 0))
	if tm, _ := timer(f.caseOf(id), Time1); tm.Breached || tm.Running || !tm.End.Equal(at(loc, 5, 10, 15, 0)) {
		t.Errorf("TIME_1 %+v, want ended 10:15 in time", tm)
	}
	if rows := f.rows(t0); len(rows) != 0 {
		t.Errorf("false breach %+v", rows)
	}

	// One of them alone does not end it.
	f = newFixture(t, t0)
	id = f.add(Event{Kind: RiskDetected, Time: t0, NumIDK: idkX, Docs: []string{dt1}})
	f.add(Event{Kind: DocsHanded, Time: at(loc, 5, 10, 5, 0), NumIDK: idkX, Docs: []string{dt1}})
	f.tick(at(loc, 5, 10, 15, 1))
	if tm, _ := timer(f.caseOf(id), Time1); !tm.Running || !tm.Breached {
		t.Errorf("TIME_1 %+v, want running and breached", tm)
	}

	// The later of two risk_detected (other grounds established later)
	// starts it.
	f = newFixture(t, t0)
	id = f.add(Event{Kind: RiskDetected, Time: t0, NumIDK: idkX, Docs: []string{dt1}})
	f.add(Event{Kind: RiskDetected, Time: at(loc, 5, 10, 4, 0), NumIDK: idkX, Docs: []string{dt1}, By: "other grounds"})
	f.tick(at(loc, 5, 10, 19, 0))
	if tm, _ := timer(f.caseOf(id), Time1); !tm.Start.Equal(at(loc, 5, 10, 4, 0)) || tm.Breached {
		t.Errorf("TIME_1 %+v, want started 10:04, not breached at 10:19", tm)
	}
}

// TestLiveBreachThenEnd: the breach is recorded when the deadline passes,
// before the end is reported, and the row gets the final duration when
// it is.
func TestLiveBreachThenEnd(t *testing.T) {
	loc := moscow(t)
	t0 := at(loc, 5, 10, 0, 0)
	f := newFixture(t, t0)
	if err := f.e.SetDevice(stationary); err != nil {
		t.Fatal(err)
	}
	id := f.add(Event{Kind: Arrival, Time: t0, NumIDK: idkX, Source: "agent"})
	f.add(Event{Kind: Scan, Time: at(loc, 5, 10, 3, 0), NumIDK: idkX, NumSnim: "201701040006080003"})

	f.tick(at(loc, 5, 10, 15, 0))
	if rows := f.rows(t0); len(rows) != 0 {
		t.Fatalf("breach at the limit: %+v", rows)
	}
	f.tick(at(loc, 5, 10, 15, 1))
	rows := f.rows(t0)
	want := Row{ID: id, Running: true, KOD_TO: "10101010", NAIM_TO: "БАЛТИЙСКАЯ", NAIM_ZTK: "ПКТ", TYPE_IDK: 2,
		NUM_IDK: idkX, DISL_IDK: 2, DATE_NAR: "05.03.2024", NUM_SNIM: "201701040006080003", TIME_2: "0,16"}
	if len(rows) != 1 || rows[0] != want {
		t.Fatalf("live breach rows %+v, want %+v", rows, want)
	}
	// The time so far grows while it runs.
	f.set(at(loc, 5, 10, 30, 0))
	if rows := f.rows(t0); rows[0].TIME_2 != "0,30" {
		t.Errorf("running TIME_2 %q, want 0,30", rows[0].TIME_2)
	}

	f.set(at(loc, 5, 10, 40, 0))
	f.add(Event{Kind: DocsReturned, Time: at(loc, 5, 10, 37, 0), NumIDK: idkX, NumSnim: "201701040006080003"})
	want.TIME_2, want.Running = "0,37", false
	if rows := f.rows(t0); len(rows) != 1 || rows[0] != want {
		t.Errorf("after the end: rows %+v, want %+v", rows, want)
	}
	if c := f.caseOf(id); c.Open {
		t.Errorf("case still open: %+v", c)
	}
}

// TestLateEndWithdrawsBreach: an end reported late, but timed within the
// limit, withdraws the breach recorded meanwhile.
func TestLateEndWithdrawsBreach(t *testing.T) {
	loc := moscow(t)
	t0 := at(loc, 5, 10, 0, 0)
	f := newFixture(t, t0)
	id := f.add(Event{Kind: Arrival, Time: t0, NumIDK: idkX})
	f.tick(at(loc, 5, 10, 20, 0))
	if rows := f.rows(t0); len(rows) != 1 {
		t.Fatalf("rows %+v", rows)
	}
	f.add(Event{Kind: DocsReturned, Time: at(loc, 5, 10, 14, 0), NumIDK: idkX, CaseID: id})
	if rows := f.rows(t0); len(rows) != 0 {
		t.Errorf("withdrawn breach still a row: %+v", rows)
	}
	if rows, _ := f.e.WithoutReason(); len(rows) != 0 {
		t.Errorf("withdrawn breach wants a reason: %+v", rows)
	}
	if n := f.e.counts[countKey{idkX, Time2}]; n != 1 {
		t.Errorf("counter %d, want 1: a counter never goes down", n)
	}
}

// TestAcrossMidnight: DATE_NAR is the date of the deadline, not of the
// start or of the end.
func TestAcrossMidnight(t *testing.T) {
	loc := moscow(t)
	f := newFixture(t, at(loc, 5, 23, 50, 0))
	late := f.add(Event{Kind: Arrival, Time: at(loc, 5, 23, 50, 0), NumIDK: idkX})
	early := f.add(Event{Kind: Arrival, Time: at(loc, 5, 23, 30, 0), NumIDK: idkY})
	f.tick(at(loc, 6, 0, 6, 0))
	f.add(Event{Kind: DocsReturned, Time: at(loc, 6, 0, 10, 0), NumIDK: idkX, CaseID: late})
	f.add(Event{Kind: DocsReturned, Time: at(loc, 6, 0, 10, 0), NumIDK: idkY, CaseID: early})

	day5, day6 := f.rows(at(loc, 5, 12, 0, 0)), f.rows(at(loc, 6, 12, 0, 0))
	if len(day5) != 1 || day5[0].ID != early || day5[0].DATE_NAR != "05.03.2024" || day5[0].TIME_2 != "0,40" {
		t.Errorf("5 March rows %+v", day5)
	}
	if len(day6) != 1 || day6[0].ID != late || day6[0].DATE_NAR != "06.03.2024" || day6[0].TIME_2 != "0,20" {
		t.Errorf("6 March rows %+v", day6)
	}
	both, err := f.e.Breaches(at(loc, 5, 0, 0, 0), at(loc, 6, 0, 0, 0))
	if err != nil || len(both) != 2 || both[0].ID != early || both[1].ID != late {
		t.Errorf("5-6 March rows %+v %v", both, err)
	}
}

// TestRestart: cases and running timers survive a restart, and a deadline
// passed while the engine was closed is recorded at once, dated by the
// deadline.
func TestRestart(t *testing.T) {
	loc := moscow(t)
	f := newFixture(t, at(loc, 5, 23, 40, 0))
	if err := f.e.SetDevice(stationary); err != nil {
		t.Fatal(err)
	}
	arr := f.add(Event{Kind: Arrival, Time: at(loc, 5, 23, 40, 0), NumIDK: idkX})       // deadline 23:55 on the 5th
	risk := f.add(Event{Kind: RiskDetected, Time: at(loc, 5, 23, 50, 0), NumIDK: idkY}) // deadline 00:05 on the 6th
	susp := f.add(Event{Kind: Scan, Time: at(loc, 5, 23, 44, 0), NumIDK: idkY, NumSnim: "S7"})
	f.add(Event{Kind: Decision, Time: at(loc, 5, 23, 50, 0), NumIDK: idkY, NumSnim: "S7", Suspected: true}) // deadline 00:20 on the 6th

	// A restart before any deadline changes nothing.
	f.restart(at(loc, 5, 23, 52, 0))
	if open := f.e.OpenCases(); len(open) != 3 {
		t.Fatalf("open cases after restart: %+v", open)
	}
	if rows := f.rows(at(loc, 5, 0, 0, 0)); len(rows) != 0 {
		t.Fatalf("rows %+v", rows)
	}

	// Down past midnight: 00:10 on the 6th, past two deadlines, not the third.
	f.restart(at(loc, 6, 0, 10, 0))
	day5, day6 := f.rows(at(loc, 5, 0, 0, 0)), f.rows(at(loc, 6, 0, 0, 0))
	if len(day5) != 1 || day5[0].ID != arr || day5[0].DATE_NAR != "05.03.2024" || day5[0].TIME_2 != "0,30" || day5[0].NAIM_TO != "БАЛТИЙСКАЯ" {
		t.Errorf("5 March rows %+v", day5)
	}
	if len(day6) != 1 || day6[0].ID != risk || day6[0].DATE_NAR != "06.03.2024" || day6[0].TIME_1 != "0,20" {
		t.Errorf("6 March rows %+v", day6)
	}
	c := f.caseOf(susp)
	if tm, ok := timer(c, Time3); !ok || !tm.Running || tm.Breached || !c.Suspected {
		t.Errorf("TIME_3 after restart: %+v", c)
	}
	if open := f.e.OpenCases(); len(open) != 3 {
		t.Errorf("open cases after restart: %+v", open)
	}
	// The timer still running is enforced live after the restart.
	f.tick(at(loc, 6, 0, 20, 1))
	if rows := f.rows(at(loc, 6, 0, 0, 0)); len(rows) != 2 || rows[1].ID != susp || rows[1].TIME_3 != "0,31" {
		t.Errorf("6 March rows %+v", rows)
	}

	// Ends, a reason, and another restart: nothing is counted twice.
	f.add(Event{Kind: DocsReturned, Time: at(loc, 6, 0, 35, 0), NumIDK: idkX, CaseID: arr})
	if err := f.e.SetReason(arr, "поломка идк", "Иванов"); err != nil {
		t.Fatal(err)
	}
	f.restart(at(loc, 6, 1, 0, 0))
	if d := f.e.devices[idkX]; d != stationary {
		t.Errorf("device after restart %+v", d)
	}
	day5 = f.rows(at(loc, 5, 0, 0, 0))
	if len(day5) != 1 || day5[0].TIME_2 != "0,55" || day5[0].PRICH_NAR != "ПОЛОМКА ИДК" || day5[0].Running {
		t.Errorf("5 March rows after the end and a restart %+v", day5)
	}
	for k, want := range map[countKey]uint64{{idkX, Time2}: 1, {idkY, Time1}: 1, {idkY, Time3}: 1} {
		if got := f.e.counts[k]; got != want {
			t.Errorf("counter %v = %d, want %d", k, got, want)
		}
	}
	if len(f.e.counts) != 3 {
		t.Errorf("counters %v", f.e.counts)
	}
}

// TestRetention: an ended case leaves memory after Retention but is still
// found, by ID and by its image, and its row stays.
func TestRetention(t *testing.T) {
	loc := moscow(t)
	t0 := at(loc, 5, 10, 0, 0)
	f := newFixture(t, t0)
	id := f.add(Event{Kind: Arrival, Time: t0, NumIDK: idkX})
	f.add(Event{Kind: Scan, Time: at(loc, 5, 10, 1, 0), NumIDK: idkX, NumSnim: "S1"})
	f.add(Event{Kind: DocsReturned, Time: at(loc, 5, 10, 20, 0), NumIDK: idkX, NumSnim: "S1"})
	running := f.add(Event{Kind: Arrival, Time: at(loc, 5, 11, 0, 0), NumIDK: idkY})

	f.tick(t0.Add(Retention + time.Hour))
	if _, live := f.e.cases[id]; live {
		t.Errorf("ended case still in memory")
	}
	if _, live := f.e.cases[running]; !live {
		t.Errorf("case with a running timer left memory")
	}
	if c := f.caseOf(id); c.NumSnim != "S1" {
		t.Errorf("case from disk: %+v", c)
	}
	if rows := f.rows(t0); len(rows) != 2 || rows[0].ID != id || rows[0].TIME_2 != "0,20" {
		t.Errorf("rows %+v", rows)
	}
	// A late report for its image still finds it. It is 8 days old, past
	// the backdating window, so it says why.
	if got := f.add(Event{Kind: Decision, Time: at(loc, 5, 10, 5, 0), NumIDK: idkX, NumSnim: "S1", Reason: "form found on the scanner PC"}); got != id {
		t.Errorf("late decision went to %s, not %s", got, id)
	}
}

// TestLiveCasesCapped: one ИДК reporting scan after scan (a stolen
// certificate flooding the collector) keeps at most MaxLivePerIDK cases in
// memory; another ИДК's cases stay, and every case stays on disk.
func TestLiveCasesCapped(t *testing.T) {
	loc := moscow(t)
	start := at(loc, 5, 9, 0, 0)
	f := newFixture(t, start)
	other := f.add(Event{Kind: RiskDetected, Time: start, NumIDK: idkY, Docs: []string{dt1}})
	n := MaxLivePerIDK + 20
	for i := range n {
		f.add(Event{Kind: Scan, Time: start.Add(time.Duration(i) * time.Millisecond), NumIDK: idkX, NumSnim: fmt.Sprintf("F%d", i)})
	}
	f.tick(start.Add(time.Duration(n)*time.Millisecond + time.Second)) // after the last scan
	live := map[string]int{}
	f.e.mu.RLock()
	for _, r := range f.e.cases {
		live[r.NumIDK]++
	}
	f.e.mu.RUnlock()
	if live[idkX] > MaxLivePerIDK || live[idkY] != 1 {
		t.Fatalf("live cases: %v, want at most %d of %s and Y's one", live, MaxLivePerIDK, idkX)
	}
	if c := f.caseOf(other); c.NumIDK != idkY {
		t.Fatalf("Y's case: %+v", c)
	}
	// The oldest scan's case left memory, not the disk.
	if id, err := f.e.diskSnim(idkX, "F0"); err != nil || id == "" {
		t.Fatalf("F0's case on disk: %q %v", id, err)
	}
}
