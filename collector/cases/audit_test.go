package cases

import (
	"strings"
	"testing"
)

// TestAuditLog: every change of a case is an entry, in the transaction
// of the change: who, when, what event, the case's version, and the
// table 4 row version it added. The log outlasts a restart, is served by
// the API, and an entry is never overwritten.
func TestAuditLog(t *testing.T) {
	loc := moscow(t)
	f := newFixture(t, at(loc, 5, 9, 0, 0))
	id := f.add(Event{Kind: Arrival, Time: at(loc, 5, 10, 0, 0), NumIDK: idkX, By: "Иванов"})
	f.add(Event{Kind: Scan, Time: at(loc, 5, 10, 2, 0), NumIDK: idkX, NumSnim: "S1", By: "agent"})
	f.tick(at(loc, 5, 10, 16, 0)) // TIME_2 breached: the collector's change
	f.add(Event{Kind: DocsReturned, Time: at(loc, 5, 10, 20, 0), NumIDK: idkX, NumSnim: "S1", By: "Петров"})
	if err := f.e.SetReason(id, "очередь", "начальник поста"); err != nil {
		t.Fatal(err)
	}
	f.restart(at(loc, 5, 11, 0, 0))

	entries, ok, err := f.e.Audit(id)
	if err != nil || !ok {
		t.Fatalf("audit: %v %v", ok, err)
	}
	want := []struct {
		by, what   string
		rowVersion int
	}{
		{"Иванов", "arrival event", 0},
		{"agent", "scan event", 0},
		{collectorBy, whyDeadline, 1},
		{"Петров", "docs_returned event", 2},
		{"начальник поста", "PRICH_NAR given: ОЧЕРЕДЬ", 3},
	}
	if len(entries) != len(want) {
		t.Fatalf("%d entries, want %d: %+v", len(entries), len(want), entries)
	}
	for i, w := range want {
		a := entries[i]
		if a.Case != id || a.Rev != uint64(i+1) || a.By != w.by || !strings.HasPrefix(a.What, w.what) || a.RowVersion != w.rowVersion || a.At.IsZero() {
			t.Errorf("entry %d: %+v, want %+v", i, a, w)
		}
		if (a.Event != nil) != (w.by != collectorBy && i < 4) {
			t.Errorf("entry %d event: %+v", i, a.Event)
		}
	}
	if entries[3].Event.Kind != DocsReturned || !entries[3].Event.Time.Equal(at(loc, 5, 10, 20, 0)) {
		t.Errorf("docs_returned entry's event: %+v", entries[3].Event)
	}

	// The API serves it; an unknown case is 404.
	var got []AuditEntry
	decodeBody(t, get(f.e.Handler(), "/api/v1/cases/"+id+"/audit"), &got)
	if len(got) != len(want) || got[4].Rev != 5 {
		t.Errorf("audit answer: %+v", got)
	}
	if w := get(f.e.Handler(), "/api/v1/cases/20240305-999999/audit"); w.Code != 404 {
		t.Errorf("unknown case: %d %s", w.Code, w.Body)
	}

	// Append-only: a change whose entry exists is refused whole.
	ch := f.e.newChange(f.clk.Now())
	ch.audit = []AuditEntry{{Case: id, Rev: 1, By: "злоумышленник"}}
	if err := f.e.db.Update(ch.write); err == nil || !strings.Contains(err.Error(), "already written") {
		t.Errorf("overwriting entry 1: %v", err)
	}
	if n := f.keys(bucketAudit); n != len(want) {
		t.Errorf("%d entries in the bucket, want %d", n, len(want))
	}
}

// TestAuditMerge: a merge is logged for both cases, the merged one
// naming where it went, by whoever reported the event.
func TestAuditMerge(t *testing.T) {
	loc := moscow(t)
	f := newFixture(t, at(loc, 5, 9, 0, 0))
	risk := f.add(Event{Kind: RiskDetected, Time: at(loc, 5, 10, 0, 0), NumIDK: idkX, Docs: []string{dt1}, By: "Сидоров"})
	scan := f.add(Event{Kind: Scan, Time: at(loc, 5, 10, 5, 0), NumIDK: idkX, NumSnim: "S9", By: "agent"})
	got := f.add(Event{Kind: Decision, Time: at(loc, 5, 10, 9, 0), NumIDK: idkX, NumSnim: "S9", Docs: []string{dt1}, By: "Петров"})
	if got != risk {
		t.Fatalf("decision joined %s, want the risk's case %s (scan's %s)", got, risk, scan)
	}
	es, _, err := f.e.Audit(scan)
	if err != nil || len(es) != 2 || es[1].By != "Петров" || !strings.Contains(es[1].What, "merged into "+risk) {
		t.Errorf("scan case's audit: %+v %v", es, err)
	}
	es, _, err = f.e.Audit(risk)
	if err != nil || len(es) != 2 || es[1].By != "Петров" || es[1].Event == nil || es[1].Event.Kind != Decision {
		t.Errorf("risk case's audit: %+v %v", es, err)
	}
}
