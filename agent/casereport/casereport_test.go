package casereport

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"idk/agent/spool"
	"idk/protocol/idkpb"
)

func TestNormalise(t *testing.T) {
	risk := RiskProfile{KodTeh: "01", VidPr: "55", KodToPr: "10000", DateReg: "12.12.2012", NumPr: "12361", DocType: 4}
	good := []Report{
		{Kind: "docs_returned", NumSnim: "201701040006080003", By: "ПЕТРОВ"},
		{Kind: " DOCS_HANDED ", Docs: []string{"10702070/170717/0012345"}, By: "ПЕТРОВ"},
		{Kind: "act_handed", CaseID: "20240305-000042", By: "ПЕТРОВ"},
		{Kind: "risk_detected", By: "ИВАНОВ", Risk: risk},
		{Kind: "risk_detected", By: "ИВАНОВ", Risk: RiskProfile{KodToPr: "10216100"}},
		{Kind: "arrival", By: "ПЕТРОВ"},
		{Kind: "decision", NumSnim: "70001DJ01201701020002", Suspected: true, By: "ПЕТРОВ"},
	}
	for _, r := range good {
		if _, err := r.Normalise(); err != nil {
			t.Errorf("%+v: %v", r, err)
		}
	}
	// Each bad report is refused with an error naming the field.
	bad := []struct {
		r     Report
		field string
	}{
		{Report{Kind: "docs_lost", NumSnim: "1", By: "X"}, "kind"},
		{Report{Kind: "", NumSnim: "1", By: "X"}, "kind"},
		{Report{Kind: "docs_returned", NumSnim: "1", By: "  "}, "by"},
		{Report{Kind: "docs_returned", NumSnim: "1", By: "X\nY"}, "by"},
		{Report{Kind: "docs_returned", NumSnim: "12/34", By: "X"}, "num_snim"},
		{Report{Kind: "docs_returned", NumSnim: strings.Repeat("1", 41), By: "X"}, "num_snim"},
		{Report{Kind: "docs_returned", By: "X"}, "num_snim"},
		{Report{Kind: "scan", By: "X"}, "num_snim"},
		{Report{Kind: "decision", By: "X"}, "num_snim"},
		{Report{Kind: "docs_returned", CaseID: "../etc", By: "X"}, "case_id"},
		{Report{Kind: "docs_returned", NumSnim: "1", Suspected: true, By: "X"}, "suspected"},
		{Report{Kind: "docs_returned", NumSnim: "1", Risk: risk, By: "X"}, "risk"},
		{Report{Kind: "docs_returned", NumSnim: "1", Docs: make([]string, maxDocs+1), By: "X"}, ""}, // empty numbers are dropped
		{Report{Kind: "docs_returned", NumSnim: "1", Docs: slices.Repeat([]string{"A1"}, maxDocs+1), By: "X"}, "docs"},
		{Report{Kind: "docs_returned", NumSnim: "1", Docs: []string{strings.Repeat("1", maxDoc+1)}, By: "X"}, "docs"},
		{Report{Kind: "docs_returned", NumSnim: "1", Note: strings.Repeat("я", maxNote+1), By: "X"}, "note"},
		{Report{Kind: "risk_detected", By: "X", Risk: RiskProfile{KodTeh: "06"}}, "KOD_TEH"},
		{Report{Kind: "risk_detected", By: "X", Risk: RiskProfile{KodTeh: "1"}}, "KOD_TEH"},
		{Report{Kind: "risk_detected", By: "X", Risk: RiskProfile{VidPr: "14"}}, "VID_PR"},
		{Report{Kind: "risk_detected", By: "X", Risk: RiskProfile{KodToPr: "1000"}}, "KOD_TO_PR"},
		{Report{Kind: "risk_detected", By: "X", Risk: RiskProfile{KodToPr: "102161001"}}, "KOD_TO_PR"},
		{Report{Kind: "risk_detected", By: "X", Risk: RiskProfile{DateReg: "2012-12-12"}}, "DATE_REG"},
		{Report{Kind: "risk_detected", By: "X", Risk: RiskProfile{DateReg: "31.02.2012"}}, "DATE_REG"},
		{Report{Kind: "risk_detected", By: "X", Risk: RiskProfile{NumPr: "1236"}}, "NUM_PR"},
		{Report{Kind: "risk_detected", By: "X", Risk: RiskProfile{NumPr: "1236A"}}, "NUM_PR"},
		{Report{Kind: "risk_detected", By: "X", Risk: RiskProfile{DocType: 11}}, "DOC_TYPE"},
		{Report{Kind: "risk_detected", By: "X", Risk: RiskProfile{DocType: -1}}, "DOC_TYPE"},
	}
	for _, c := range bad {
		_, err := c.r.Normalise()
		if c.field == "" {
			if err != nil {
				t.Errorf("%+v: %v", c.r, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), c.field+":") {
			t.Errorf("%+v: got %v, want an error naming %s", c.r, err, c.field)
		}
	}
	// Every bad field is named at once.
	_, err := Report{Kind: "risk_detected", Risk: RiskProfile{VidPr: "1", NumPr: "1"}}.Normalise()
	for _, f := range []string{"by:", "VID_PR:", "NUM_PR:"} {
		if err == nil || !strings.Contains(err.Error(), f) {
			t.Errorf("got %v, want it to name %s", err, f)
		}
	}
}

func TestNormaliseTrims(t *testing.T) {
	r, err := Report{Kind: " Docs_Returned", NumSnim: " 2017 0104 ", Docs: []string{" a ", "", " "}, By: " ПЕТРОВ "}.Normalise()
	if err != nil {
		t.Fatal(err)
	}
	if r.Kind != "docs_returned" || r.NumSnim != "20170104" || r.By != "ПЕТРОВ" || len(r.Docs) != 1 || r.Docs[0] != "a" {
		t.Fatalf("normalised: %+v", r)
	}
}

// A recorded report is in the spool, with the time it was reported, and
// stays there across a restart until the collector acknowledges it.
func TestRecordSurvivesRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "spool.db")
	sp, err := spool.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 22, 10, 15, 30, 123, time.UTC)
	risk := RiskProfile{KodTeh: "05", VidPr: "12", KodToPr: "10216000", DateReg: "01.02.2026", NumPr: "00042", DocType: 2}
	if _, _, err := Record(sp, at, Report{Kind: "risk_detected", Docs: []string{"10702070/170717/0012345"}, By: "ИВАНОВ", Risk: risk, Note: "по ПР"}); err != nil {
		t.Fatal(err)
	}
	_, seq, err := Record(sp, at.Add(time.Minute), Report{Kind: "docs_returned", NumSnim: "201701040006080003", By: "ПЕТРОВ"})
	if err != nil {
		t.Fatal(err)
	}
	if seq != 2 {
		t.Errorf("second report: seq %d, want 2", seq)
	}
	// A refused report leaves nothing in the spool.
	if _, _, err := Record(sp, at, Report{Kind: "docs_returned", By: "ПЕТРОВ"}); err == nil {
		t.Fatal("a report without NUM_SNIM, case or documents was recorded")
	}
	if err := sp.Close(); err != nil {
		t.Fatal(err)
	}

	if sp, err = spool.Open(path); err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	evs, err := sp.PendingEvents(10, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 2 {
		t.Fatalf("%d events pending after a restart, want 2", len(evs))
	}
	first, second := evs[0], evs[1]
	cr := first.GetCaseReport()
	if first.TimeUnixNano != at.UnixNano() || cr.GetKind() != "risk_detected" || cr.GetBy() != "ИВАНОВ" || cr.GetNote() != "по ПР" ||
		len(cr.GetDocs()) != 1 || cr.GetRisk().GetNumPr() != "00042" || cr.GetRisk().GetKodToPr() != "10216000" ||
		cr.GetRisk().GetDocType() != 2 {
		t.Errorf("first event: %v", first)
	}
	cr = second.GetCaseReport()
	want := &idkpb.CaseReport{Kind: "docs_returned", NumSnim: "201701040006080003", By: "ПЕТРОВ"}
	if second.TimeUnixNano != at.Add(time.Minute).UnixNano() || cr.String() != want.String() || cr.GetRisk() != nil {
		t.Errorf("second event: %v, want body %v", second, want)
	}
}
