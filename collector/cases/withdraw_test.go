package cases

import (
	"errors"
	"strings"
	"testing"
)

// TestRiskWithdrawnStopsRunningTime1: a withdrawal stops a running TIME_1
// at its time, without a breach, however long the case then waits.
func TestRiskWithdrawnStopsRunningTime1(t *testing.T) {
	loc := moscow(t)
	f := newFixture(t, at(loc, 5, 10, 0, 0))
	id := f.add(Event{Kind: RiskDetected, Time: at(loc, 5, 10, 0, 0), NumIDK: idkX, Docs: []string{"MDP1"}})
	got := f.add(Event{Kind: RiskWithdrawn, Time: at(loc, 5, 10, 5, 0), NumIDK: idkX, CaseID: id, By: "Сидоров", Reason: "неверный профиль"})
	if got != id {
		t.Fatalf("withdrawal joined %s, want %s", got, id)
	}
	f.tick(at(loc, 5, 10, 40, 0))
	tm, ok := timer(f.caseOf(id), Time1)
	if !ok || tm.Running || tm.Breached || !tm.Withdrawn || !tm.End.Equal(at(loc, 5, 10, 5, 0)) {
		t.Errorf("TIME_1 after the withdrawal: %+v %v", tm, ok)
	}
	if rows := f.rows(at(loc, 5, 0, 0, 0)); len(rows) != 0 {
		t.Errorf("rows: %+v", rows)
	}
	if h := history(t, f); len(h) != 0 {
		t.Errorf("history of a case never breached: %+v", h)
	}
	// A new risk after the withdrawal starts TIME_1 anew, and the end
	// events end that one.
	f.add(Event{Kind: RiskDetected, Time: at(loc, 5, 10, 41, 0), NumIDK: idkX, CaseID: id})
	if tm, _ := timer(f.caseOf(id), Time1); !tm.Running || tm.Withdrawn || !tm.Start.Equal(at(loc, 5, 10, 41, 0)) {
		t.Errorf("TIME_1 of the new risk: %+v", tm)
	}
	f.add(Event{Kind: DocsHanded, Time: at(loc, 5, 10, 42, 0), NumIDK: idkX, Docs: []string{"MDP1"}})
	f.add(Event{Kind: CarrierInformed, Time: at(loc, 5, 10, 43, 0), NumIDK: idkX, Docs: []string{"MDP1"}})
	if tm, _ := timer(f.caseOf(id), Time1); tm.Running || tm.Withdrawn || tm.Breached || !tm.End.Equal(at(loc, 5, 10, 43, 0)) {
		t.Errorf("TIME_1 of the new risk after its end events: %+v", tm)
	}
}

// TestRiskWithdrawnWithdrawsBreach: a recorded TIME_1 breach is withdrawn
// as a new version of the row, the old versions kept, with who, when and
// why, and the audit log records the withdrawal. A TIME_2 breach of the
// same case stands.
func TestRiskWithdrawnWithdrawsBreach(t *testing.T) {
	loc := moscow(t)
	f := newFixture(t, at(loc, 5, 10, 0, 0))
	id := f.add(Event{Kind: RiskDetected, Time: at(loc, 5, 10, 0, 0), NumIDK: idkX, Docs: []string{"10702070/170717/0012345"}})
	f.tick(at(loc, 5, 10, 16, 0)) // TIME_1 breached, running: version 1
	f.add(Event{Kind: DocsHanded, Time: at(loc, 5, 10, 18, 0), NumIDK: idkX, Docs: []string{"10702070/170717/0012345"}})
	f.add(Event{Kind: CarrierInformed, Time: at(loc, 5, 10, 20, 0), NumIDK: idkX, Docs: []string{"10702070/170717/0012345"}}) // 0,20: version 2
	if rows := f.rows(at(loc, 5, 0, 0, 0)); len(rows) != 1 || rows[0].TIME_1 != "0,20" {
		t.Fatalf("rows before the withdrawal: %+v", rows)
	}
	// The docs find the case; the reporter need not know its ID.
	f.set(at(loc, 5, 11, 0, 0))
	got := f.add(Event{Kind: RiskWithdrawn, Time: at(loc, 5, 11, 0, 0), NumIDK: idkX, Docs: []string{"10702070/170717/0012345"}, By: "Сидоров", Reason: "профиль введён ошибочно"})
	if got != id {
		t.Fatalf("withdrawal joined %s, want %s", got, id)
	}
	if rows := f.rows(at(loc, 5, 0, 0, 0)); len(rows) != 0 {
		t.Errorf("withdrawn row still in table 4: %+v", rows)
	}
	if tm, _ := timer(f.caseOf(id), Time1); tm.Breached || !tm.Withdrawn || !tm.End.Equal(at(loc, 5, 10, 20, 0)) {
		t.Errorf("TIME_1 ended before its withdrawal keeps its end: %+v", tm)
	}
	h := history(t, f)
	if len(h) != 1 || h[0].Current != nil || len(h[0].Versions) != 3 {
		t.Fatalf("history %+v", h)
	}
	vs := h[0].Versions
	if !vs[0].Standing || !vs[1].Standing || vs[1].Row.TIME_1 != "0,20" {
		t.Errorf("old versions: %+v", vs[:2])
	}
	v := vs[2]
	if v.Standing || v.By != "Сидоров" || !v.At.Equal(at(loc, 5, 11, 0, 0)) || v.Row.TIME_1 != "" || v.Row.DATE_NAR != "05.03.2024" ||
		!strings.Contains(v.Why, "risk_withdrawn") || !strings.Contains(v.Why, "профиль введён ошибочно") {
		t.Errorf("withdrawal version: %+v", v)
	}
	entries, ok, err := f.e.Audit(id)
	if err != nil || !ok || len(entries) == 0 {
		t.Fatalf("audit: %v %v %v", entries, ok, err)
	}
	a := entries[len(entries)-1]
	if a.By != "Сидоров" || a.Event == nil || a.Event.Kind != RiskWithdrawn || a.Event.Reason != "профиль введён ошибочно" || a.RowVersion != 3 ||
		!strings.Contains(a.What, "профиль введён ошибочно") {
		t.Errorf("audit entry of the withdrawal: %+v", a)
	}
	// It survives a restart.
	f.restart(at(loc, 5, 12, 0, 0))
	if rows := f.rows(at(loc, 5, 0, 0, 0)); len(rows) != 0 {
		t.Errorf("after restart: %+v", rows)
	}
	if h := history(t, f); len(h) != 1 || len(h[0].Versions) != 3 {
		t.Errorf("history after restart: %+v", h)
	}
}

// TestRiskWithdrawnKeepsTime2: withdrawing the risk touches TIME_1 only.
func TestRiskWithdrawnKeepsTime2(t *testing.T) {
	loc := moscow(t)
	f := newFixture(t, at(loc, 5, 10, 0, 0))
	id := f.add(Event{Kind: RiskDetected, Time: at(loc, 5, 10, 0, 0), NumIDK: idkX})
	f.add(Event{Kind: Arrival, Time: at(loc, 5, 10, 1, 0), NumIDK: idkX})
	f.add(Event{Kind: Scan, Time: at(loc, 5, 10, 2, 0), NumIDK: idkX, NumSnim: "S1"})
	f.tick(at(loc, 5, 10, 20, 0)) // TIME_1 and TIME_2 breached
	f.add(Event{Kind: RiskWithdrawn, Time: at(loc, 5, 10, 21, 0), NumIDK: idkX, NumSnim: "S1", By: "Сидоров", Reason: "ошибка ввода"})
	rows := f.rows(at(loc, 5, 0, 0, 0))
	if len(rows) != 1 || rows[0].ID != id || rows[0].TIME_1 != "" || rows[0].TIME_2 != "0,20" {
		t.Errorf("rows: %+v", rows)
	}
}

// TestRiskWithdrawnRefused: by and reason are needed, and a withdrawal of
// a case with no risk (or none left) is refused naming the case.
func TestRiskWithdrawnRefused(t *testing.T) {
	loc := moscow(t)
	f := newFixture(t, at(loc, 5, 10, 0, 0))
	risk := f.add(Event{Kind: RiskDetected, Time: at(loc, 5, 10, 0, 0), NumIDK: idkX, Docs: []string{"MDP1"}})
	scanOnly := f.add(Event{Kind: Scan, Time: at(loc, 5, 10, 1, 0), NumIDK: idkY, NumSnim: "S9"})
	f.set(at(loc, 5, 10, 10, 0))
	ok := Event{Kind: RiskWithdrawn, Time: at(loc, 5, 10, 10, 0), NumIDK: idkX, CaseID: risk, By: "Сидоров", Reason: "ошибка"}
	for _, c := range []struct {
		name  string
		edit  func(*Event)
		is    error
		names string
	}{
		{"no by", func(ev *Event) { ev.By = " " }, ErrInvalid, "by"},
		{"no reason", func(ev *Event) { ev.Reason = "" }, ErrInvalid, "reason"},
		{"no case", func(ev *Event) { ev.CaseID = "" }, ErrInvalid, "case_id"},
		{"unknown docs", func(ev *Event) { ev.CaseID, ev.Docs = "", []string{"NOPE"} }, ErrNotFound, "NOPE"},
		{"case without a risk", func(ev *Event) { ev.CaseID, ev.NumIDK = scanOnly, idkY }, ErrInvalid, scanOnly},
		{"before the risk", func(ev *Event) { ev.Time = at(loc, 5, 9, 59, 0) }, ErrInvalid, risk},
	} {
		ev := ok
		c.edit(&ev)
		if _, err := f.e.Add(ev); !errors.Is(err, c.is) || !strings.Contains(err.Error(), c.names) {
			t.Errorf("%s: %v", c.name, err)
		}
	}
	f.add(ok)
	again := ok
	again.By, again.Time = "Петров", at(loc, 5, 10, 11, 0)
	if _, err := f.e.Add(again); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), risk) {
		t.Errorf("a second withdrawal: %v", err)
	}
	// The same withdrawal reported twice is the same event.
	if id, err := f.e.Add(ok); err != nil || id != risk {
		t.Errorf("identical withdrawal: %s %v", id, err)
	}
}
