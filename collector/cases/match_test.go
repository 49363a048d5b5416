package cases

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"idk/protocol/idkpb"
)

func TestMatchByNumSnim(t *testing.T) {
	loc := moscow(t)
	f := newFixture(t, at(loc, 5, 10, 0, 0))
	id := f.add(Event{Kind: Scan, Time: at(loc, 5, 10, 0, 0), NumIDK: idkX, NumSnim: "70001DJ01201701020002"})
	if got := f.add(Event{Kind: Decision, Time: at(loc, 5, 10, 4, 0), NumIDK: idkX, NumSnim: "70001dj01201701020002"}); got != id {
		t.Errorf("decision went to %s, not %s", got, id)
	}
	if got := f.add(Event{Kind: DocsReturned, Time: at(loc, 5, 10, 6, 0), NumIDK: idkX, NumSnim: "70001DJ01201701020002"}); got != id {
		t.Errorf("docs_returned went to %s, not %s", got, id)
	}
	// The same image number at another ИДК is another image.
	if other := f.add(Event{Kind: Scan, Time: at(loc, 5, 10, 7, 0), NumIDK: idkY, NumSnim: "70001DJ01201701020002"}); other == id {
		t.Errorf("image of ИДК %s joined the case of ИДК %s", idkY, idkX)
	}
	c := f.caseOf(id)
	if len(c.Events) != 3 || c.Suspected || len(c.Timers) != 0 || c.Open {
		t.Errorf("case %+v", c)
	}
	// A case_id that contradicts the image is refused, naming num_snim.
	_, err := f.e.Add(Event{Kind: DocsReturned, Time: at(loc, 5, 10, 8, 0), NumIDK: idkX, NumSnim: "S2", CaseID: id, By: "a"})
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "num_snim") {
		t.Errorf("contradicting case_id: %v", err)
	}
}

// TestMatchByDT: a decision's «Доп Там Инфо1» ties the scan to the case of
// the risk, whose ДТ number holds slashes itself.
func TestMatchByDT(t *testing.T) {
	loc := moscow(t)
	f := newFixture(t, at(loc, 5, 9, 0, 0))
	// An older case whose number equals the ДТ's serial part: splitting
	// the ДТ on its slashes would wrongly match it.
	serial := f.add(Event{Kind: RiskDetected, Time: at(loc, 5, 9, 0, 0), NumIDK: idkX, Docs: []string{"0012345/CMR77"}})
	// Another ДТ of the same customs body and day.
	otherDT := f.add(Event{Kind: RiskDetected, Time: at(loc, 5, 9, 30, 0), NumIDK: idkX, Docs: []string{dt2}})
	risk := f.add(Event{Kind: RiskDetected, Time: at(loc, 5, 10, 0, 0), NumIDK: idkX, Docs: []string{dt1}})
	f.add(Event{Kind: DocsHanded, Time: at(loc, 5, 10, 5, 0), NumIDK: idkX, Docs: []string{dt1}})
	f.add(Event{Kind: CarrierInformed, Time: at(loc, 5, 10, 6, 0), NumIDK: idkX, Docs: []string{" 10702070 / 170717 / 0012345 "}})

	// No arrival is reported: the scan opens a case of its own.
	scan := f.add(Event{Kind: Scan, Time: at(loc, 5, 10, 20, 0), NumIDK: idkX, NumSnim: "S1"})
	if scan == risk {
		t.Fatalf("scan without arrival joined the risk case")
	}
	fr := &idkpb.FormRevision{NumSnim: "S1", Revision: 1, Form: &idkpb.Form{
		NumSnim: "S1", CustomsInfo1: "МДП 1234567/" + dt1, Decision: idkpb.Decision_DECISION_SUSPECTED, Operator: "Петров"}}
	ev, ok := DecisionEvent(idkX, at(loc, 5, 10, 25, 0), fr)
	if !ok {
		t.Fatal("no decision event")
	}
	if got := f.add(ev); got != risk {
		t.Fatalf("decision went to %s, not to the risk case %s", got, risk)
	}
	c := f.caseOf(risk)
	if c.NumSnim != "S1" || c.NumIDK != idkX || !c.Suspected || len(c.Events) != 5 ||
		!slices.Equal(c.Docs, []string{dt1, "МДП1234567"}) {
		t.Errorf("merged case %+v", c)
	}
	if tm, _ := timer(c, Time1); tm.Breached || tm.Running {
		t.Errorf("TIME_1 %+v", tm)
	}
	if tm, _ := timer(c, Time3); !tm.Running || !tm.Start.Equal(at(loc, 5, 10, 25, 0)) {
		t.Errorf("TIME_3 %+v", tm)
	}
	// The scan's case now leads to the risk's, and so does its image.
	if c := f.caseOf(scan); c.ID != risk {
		t.Errorf("merged case ID leads to %s", c.ID)
	}
	if got := f.add(Event{Kind: ActHanded, Time: at(loc, 5, 10, 40, 0), NumIDK: idkX, NumSnim: "S1"}); got != risk {
		t.Errorf("act_handed went to %s", got)
	}
	for _, id := range []string{serial, otherDT} {
		if c := f.caseOf(id); len(c.Events) != 1 || c.NumSnim != "" {
			t.Errorf("unrelated case %s was joined: %+v", id, c)
		}
	}
	// After the merge a restart finds everything where it was.
	f.restart(at(loc, 5, 10, 41, 0))
	if c := f.caseOf(scan); c.ID != risk || len(c.Events) != 6 {
		t.Errorf("after restart %+v", c)
	}
	if got := f.add(Event{Kind: DocsReturned, Time: at(loc, 5, 10, 41, 0), NumIDK: idkX, NumSnim: "S1"}); got != risk {
		t.Errorf("docs_returned after restart went to %s", got)
	}
}

// TestMatchNeverCrossesIDK: documents never carry a case from one ИДК to
// another. ИДК Y's form naming the documents of ИДК X's open case (a
// typo, or a stolen certificate) stays with Y's scan; X's case is
// untouched.
func TestMatchNeverCrossesIDK(t *testing.T) {
	loc := moscow(t)
	f := newFixture(t, at(loc, 5, 9, 0, 0))
	risk := f.add(Event{Kind: RiskDetected, Time: at(loc, 5, 10, 0, 0), NumIDK: idkX, Docs: []string{dt1}})
	scan := f.add(Event{Kind: Scan, Time: at(loc, 5, 10, 20, 0), NumIDK: idkY, NumSnim: "S1"})
	fr := &idkpb.FormRevision{NumSnim: "S1", Revision: 1, Form: &idkpb.Form{
		NumSnim: "S1", CustomsInfo1: dt1, Decision: idkpb.Decision_DECISION_SUSPECTED, Operator: "Петров"}}
	ev, ok := DecisionEvent(idkY, at(loc, 5, 10, 25, 0), fr)
	if !ok {
		t.Fatal("no decision event")
	}
	if got := f.add(ev); got != scan {
		t.Fatalf("decision went to %s, want Y's own case %s", got, scan)
	}
	if c := f.caseOf(risk); c.NumIDK != idkX || c.NumSnim != "" || len(c.Events) != 1 {
		t.Errorf("X's case was moved: %+v", c)
	}
	// Nor does an end event of Y's shift reach X's case by its documents.
	if got := f.add(Event{Kind: DocsHanded, Time: at(loc, 5, 10, 26, 0), NumIDK: idkY, Docs: []string{dt1}}); got == risk {
		t.Errorf("Y's docs_handed joined X's case")
	}
}

// TestMatchDecisionBeforeScan: a decision whose scan has not arrived yet
// joins the case of its documents and brings its image.
func TestMatchDecisionBeforeScan(t *testing.T) {
	loc := moscow(t)
	f := newFixture(t, at(loc, 5, 10, 0, 0))
	risk := f.add(Event{Kind: RiskDetected, Time: at(loc, 5, 10, 0, 0), NumIDK: idkX, Docs: []string{dt1}})
	f.add(Event{Kind: Arrival, Time: at(loc, 5, 10, 5, 0), NumIDK: idkX})
	if got := f.add(Event{Kind: Decision, Time: at(loc, 5, 10, 9, 0), NumIDK: idkX, NumSnim: "S1", Docs: []string{dt1}}); got != risk {
		t.Errorf("decision went to %s", got)
	}
	if got := f.add(Event{Kind: Scan, Time: at(loc, 5, 10, 7, 0), NumIDK: idkX, NumSnim: "S1"}); got != risk {
		t.Errorf("late scan went to %s", got)
	}
	// End events by document find a case that has its image already.
	if got := f.add(Event{Kind: DocsReturned, Time: at(loc, 5, 10, 12, 0), NumIDK: idkX, Docs: []string{dt1}}); got != risk {
		t.Errorf("docs_returned by ДТ went to %s", got)
	}
	// A new risk for the same ДТ after its scan is a new inspection.
	if got := f.add(Event{Kind: RiskDetected, Time: at(loc, 5, 10, 30, 0), NumIDK: idkX, Docs: []string{dt1}}); got == risk {
		t.Errorf("new risk joined the scanned case")
	}
}

// TestArrivalThenScan: an arrival joins the ИДК's oldest case awaiting
// one, or waits for the next scan there. A second report of the same
// arrival joins the first.
func TestArrivalThenScan(t *testing.T) {
	loc := moscow(t)
	f := newFixture(t, at(loc, 5, 10, 0, 0))
	r1 := f.add(Event{Kind: RiskDetected, Time: at(loc, 5, 10, 0, 0), NumIDK: idkX})
	r2 := f.add(Event{Kind: RiskDetected, Time: at(loc, 5, 10, 1, 0), NumIDK: idkX})
	f.add(Event{Kind: RiskDetected, Time: at(loc, 5, 9, 0, 0), NumIDK: idkY}) // another ИДК's

	if got := f.add(Event{Kind: Arrival, Time: at(loc, 5, 10, 10, 0), NumIDK: idkX, Source: "agent"}); got != r1 {
		t.Errorf("first arrival went to %s, want the oldest risk %s", got, r1)
	}
	if got := f.add(Event{Kind: Arrival, Time: at(loc, 5, 10, 11, 0), NumIDK: idkX, Source: "api"}); got != r1 {
		t.Errorf("the same arrival from the operator went to %s, want %s", got, r1)
	}
	if got := f.add(Event{Kind: Scan, Time: at(loc, 5, 10, 12, 0), NumIDK: idkX, NumSnim: "S1"}); got != r1 {
		t.Errorf("scan went to %s, want %s", got, r1)
	}
	if tm, _ := timer(f.caseOf(r1), Time2); !tm.Start.Equal(at(loc, 5, 10, 10, 0)) {
		t.Errorf("TIME_2 %+v: the first arrival stands", tm)
	}
	if got := f.add(Event{Kind: Arrival, Time: at(loc, 5, 10, 14, 0), NumIDK: idkX}); got != r2 {
		t.Errorf("next arrival went to %s, want %s", got, r2)
	}
	if got := f.add(Event{Kind: Scan, Time: at(loc, 5, 10, 15, 0), NumIDK: idkX, NumSnim: "S2"}); got != r2 {
		t.Errorf("next scan went to %s, want %s", got, r2)
	}

	// No risk at X any more: a pending arrival, claimed by the next scan.
	pending := f.add(Event{Kind: Arrival, Time: at(loc, 5, 10, 20, 0), NumIDK: idkX})
	if pending == r1 || pending == r2 {
		t.Fatalf("arrival joined a scanned case")
	}
	if got := f.add(Event{Kind: Scan, Time: at(loc, 5, 10, 22, 0), NumIDK: idkX, NumSnim: "S3"}); got != pending {
		t.Errorf("scan went to %s, want the pending arrival %s", got, pending)
	}
	// A scan with nothing to claim opens its own case, TIME_1 unknown.
	lone := f.add(Event{Kind: Scan, Time: at(loc, 5, 10, 30, 0), NumIDK: idkX, NumSnim: "S4"})
	if lone == pending {
		t.Fatalf("scan joined a claimed arrival")
	}
	if c := f.caseOf(lone); len(c.Timers) != 0 || c.Open {
		t.Errorf("lone scan case %+v", c)
	}
	// An arrival more than 15 minutes after an unscanned one is another
	// object.
	a1 := f.add(Event{Kind: Arrival, Time: at(loc, 5, 11, 0, 0), NumIDK: idkY})
	a2 := f.add(Event{Kind: Arrival, Time: at(loc, 5, 11, 16, 0), NumIDK: idkY})
	if a1 == a2 {
		t.Errorf("arrivals 16 minutes apart were joined")
	}
}

func TestUnmatched(t *testing.T) {
	loc := moscow(t)
	f := newFixture(t, at(loc, 5, 10, 0, 0))
	risk := f.add(Event{Kind: RiskDetected, Time: at(loc, 5, 10, 0, 0), NumIDK: idkX, Docs: []string{dt1}})
	f.add(Event{Kind: DocsHanded, Time: at(loc, 5, 10, 3, 0), NumIDK: idkX, Docs: []string{dt1}})
	f.add(Event{Kind: CarrierInformed, Time: at(loc, 5, 10, 4, 0), NumIDK: idkX, Docs: []string{dt1}})
	pending := f.add(Event{Kind: Arrival, Time: at(loc, 5, 10, 10, 0), NumIDK: idkY})
	f.add(Event{Kind: Scan, Time: at(loc, 5, 10, 20, 0), NumIDK: idkX, NumSnim: "S1"}) // nothing to claim at X: its own case

	f.tick(at(loc, 5, 11, 0, 0))
	if u := f.e.Unmatched(); len(u) != 0 {
		t.Errorf("unmatched after exactly an hour: %+v", u)
	}
	f.tick(at(loc, 5, 11, 0, 1))
	u := f.e.Unmatched()
	if len(u) != 1 || u[0].ID != risk {
		t.Errorf("unmatched %+v, want the risk", u)
	}
	f.tick(at(loc, 5, 11, 10, 1))
	u = f.e.Unmatched()
	if len(u) != 2 || u[0].ID != risk || u[1].ID != pending || len(u[1].Events) != 1 {
		t.Errorf("unmatched %+v, want the risk and the lone arrival", u)
	}
	// The pending arrival is breached meanwhile: its TIME_2 runs.
	if rows := f.rows(at(loc, 5, 0, 0, 0)); len(rows) != 1 || rows[0].ID != pending || rows[0].NUM_SNIM != "" {
		t.Errorf("rows %+v", rows)
	}
	open := f.e.OpenCases()
	if len(open) != 2 {
		t.Errorf("open cases %+v", open)
	}
}

func TestReasons(t *testing.T) {
	loc := moscow(t)
	t0 := at(loc, 5, 10, 0, 0)
	f := newFixture(t, t0)
	a := f.add(Event{Kind: Arrival, Time: t0, NumIDK: idkX})
	b := f.add(Event{Kind: Arrival, Time: t0, NumIDK: idkY})
	fine := f.add(Event{Kind: Scan, Time: t0, NumIDK: "850593", NumSnim: "S9"})
	f.tick(at(loc, 5, 10, 20, 0))

	without := func() []string {
		rows, err := f.e.WithoutReason()
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, r := range rows {
			ids = append(ids, r.ID)
		}
		slices.Sort(ids)
		return ids
	}
	want := []string{a, b}
	slices.Sort(want)
	if got := without(); !slices.Equal(got, want) {
		t.Fatalf("without reason %v, want %v", got, want)
	}
	if err := f.e.SetReason(a, "  детальный анализ снимка ", "Иванов"); err != nil {
		t.Fatal(err)
	}
	if got := without(); !slices.Equal(got, []string{b}) {
		t.Errorf("without reason %v, want [%s]", got, b)
	}
	c := f.caseOf(a)
	if c.Reason != "ДЕТАЛЬНЫЙ АНАЛИЗ СНИМКА" || c.ReasonBy != "Иванов" || !c.ReasonAt.Equal(at(loc, 5, 10, 20, 0)) {
		t.Errorf("reason %q by %q at %v", c.Reason, c.ReasonBy, c.ReasonAt)
	}
	if rows := f.rows(t0); rows[0].PRICH_NAR != "ДЕТАЛЬНЫЙ АНАЛИЗ СНИМКА" && rows[1].PRICH_NAR != "ДЕТАЛЬНЫЙ АНАЛИЗ СНИМКА" {
		t.Errorf("rows %+v", rows)
	}
	for _, c := range []struct {
		id, reason, by, names string
		is                    error
	}{
		{b, " ", "Иванов", "reason", ErrInvalid},
		{b, "СБОРНЫЙ ГРУЗ", "", "by", ErrInvalid},
		{"", "СБОРНЫЙ ГРУЗ", "Иванов", "id", ErrInvalid},
		{"20240305-999999", "СБОРНЫЙ ГРУЗ", "Иванов", "id", ErrNotFound},
		{fine, "СБОРНЫЙ ГРУЗ", "Иванов", "no breach", ErrNotFound},
	} {
		err := f.e.SetReason(c.id, c.reason, c.by)
		if !errors.Is(err, c.is) || !strings.Contains(err.Error(), c.names) {
			t.Errorf("SetReason(%q, %q, %q) = %v, want %v naming %s", c.id, c.reason, c.by, err, c.is, c.names)
		}
	}
	if err := f.e.SetReason(b, "удаленность места применения ИДК от таможенного поста", "Петров"); err != nil {
		t.Fatal(err)
	}
	if got := without(); len(got) != 0 {
		t.Errorf("without reason %v, want none", got)
	}
}
