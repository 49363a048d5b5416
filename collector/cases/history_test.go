package cases

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// TestBackdating: an event more than the window before now needs a
// written reason, and the error names the field.
func TestBackdating(t *testing.T) {
	loc := moscow(t)
	f := newFixture(t, at(loc, 6, 12, 0, 0))
	old := Event{Kind: Arrival, Time: at(loc, 5, 11, 59, 0), NumIDK: idkX, By: "оператор"}
	if _, err := f.e.Add(old); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "reason") {
		t.Errorf("backdated event without a reason: %v", err)
	}
	old.Reason = "журнал смены"
	if _, err := f.e.Add(old); err != nil {
		t.Errorf("backdated event with a reason: %v", err)
	}
	if _, err := f.e.Add(Event{Kind: Arrival, Time: at(loc, 5, 12, 1, 0), NumIDK: idkY, By: "оператор"}); err != nil {
		t.Errorf("event within the window: %v", err)
	}
	if err := f.e.SetBackdateWindow(time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, err := f.e.Add(Event{Kind: Arrival, Time: at(loc, 6, 10, 0, 0), NumIDK: idkY, By: "оператор"}); !errors.Is(err, ErrInvalid) {
		t.Errorf("2 h old with a 1 h window: %v", err)
	}
	if err := f.e.SetBackdateWindow(0); !errors.Is(err, ErrInvalid) {
		t.Errorf("zero window: %v", err)
	}
}

// TestCorrectionKeepsVersions: a late end event that withdraws a breach
// adds a version; the recorded breach stays in the history with who
// caused each version, and the current table 4 no longer shows it.
func TestCorrectionKeepsVersions(t *testing.T) {
	loc := moscow(t)
	f := newFixture(t, at(loc, 5, 10, 0, 0))
	id := f.add(Event{Kind: Arrival, Time: at(loc, 5, 10, 0, 0), NumIDK: idkX})
	f.add(Event{Kind: Scan, Time: at(loc, 5, 10, 2, 0), NumIDK: idkX, NumSnim: "S1"})
	f.tick(at(loc, 5, 10, 16, 0))                                                                            // breached, running: version 1
	f.tick(at(loc, 5, 10, 17, 0))                                                                            // only grows: no version
	f.add(Event{Kind: DocsReturned, Time: at(loc, 5, 10, 18, 0), NumIDK: idkX, NumSnim: "S1", By: "Петров"}) // ended 0,18: version 2
	if err := f.e.SetReason(id, "очередь", "начальник смены"); err != nil {                                  // version 3
		t.Fatal(err)
	}
	// Another officer reports the documents returned at 10:10: the
	// breach is withdrawn, as version 4.
	f.set(at(loc, 5, 10, 30, 0))
	f.add(Event{Kind: DocsReturned, Time: at(loc, 5, 10, 10, 0), NumIDK: idkX, NumSnim: "S1", By: "Иванов", Reason: "запись из журнала"})

	if rows := f.rows(at(loc, 5, 0, 0, 0)); len(rows) != 0 {
		t.Errorf("withdrawn row still in table 4: %+v", rows)
	}
	h := history(t, f)
	if len(h) != 1 || h[0].Current != nil {
		t.Fatalf("history %+v", h)
	}
	type want struct {
		by, time2, prich string
		standing         bool
		running          int
	}
	wants := []want{
		{collectorBy, "0,16", "", true, 1}, // the time so far when the breach was seen
		{"Петров", "0,18", "", true, 0},
		{"начальник смены", "0,18", "ОЧЕРЕДЬ", true, 0},
		{"Иванов", "", "ОЧЕРЕДЬ", false, 0},
	}
	vs := h[0].Versions
	if len(vs) != len(wants) {
		t.Fatalf("%d versions, want %d: %+v", len(vs), len(wants), vs)
	}
	for i, w := range wants {
		v := vs[i]
		if v.N != i+1 || v.By != w.by || v.Row.TIME_2 != w.time2 || v.Row.PRICH_NAR != w.prich || v.Standing != w.standing ||
			len(v.Running) != w.running || v.Row.NUM_SNIM != "S1" || v.Row.DATE_NAR != "05.03.2024" {
			t.Errorf("version %d: %+v, want %+v", i+1, v, w)
		}
	}
	if !strings.Contains(vs[3].Why, "запись из журнала") {
		t.Errorf("why of the correction: %q", vs[3].Why)
	}

	// The history survives a restart.
	f.restart(at(loc, 5, 11, 0, 0))
	if h := history(t, f); len(h) != 1 || len(h[0].Versions) != 4 {
		t.Errorf("after restart: %+v", h)
	}
}

// TestHandlerHistory: the API takes reason and ver_scan, and answers
// ?history=1 with every version.
func TestHandlerHistory(t *testing.T) {
	loc := moscow(t)
	f := newFixture(t, at(loc, 6, 12, 0, 0))
	h := Corrections(f.e.Handler(), "s3cret")
	if w := postWith(h, "/api/v1/cases/events", `{"kind":"arrival","time":"2024-03-05T10:00:00+03:00","num_idk":"850591","by":"оператор"}`, "s3cret"); w.Code != 400 || !strings.Contains(w.Body.String(), "reason") {
		t.Errorf("backdated without reason: %d %s", w.Code, w.Body)
	}
	if w := postWith(h, "/api/v1/cases/events", `{"kind":"arrival","time":"2024-03-05T10:00:00+03:00","num_idk":"850591","by":"оператор","reason":"журнал"}`, "s3cret"); w.Code != 200 {
		t.Errorf("backdated with reason: %d %s", w.Code, w.Body)
	}
	if w := postWith(h, "/api/v1/cases/events", `{"kind":"scan","time":"2024-03-05T10:01:00+03:00","num_idk":"850591","num_snim":"S1","ver_scan":3,"by":"оператор","reason":"журнал"}`, "s3cret"); w.Code != 200 {
		t.Errorf("scan with ver_scan: %d %s", w.Code, w.Body)
	}
	var hist []History
	decodeBody(t, get(h, "/api/v1/breaches?from=2024-03-05&to=2024-03-06&history=1"), &hist)
	// The late arrival was a breach the moment it came; the repeat scan
	// withdrew it, and both versions stay.
	if len(hist) != 1 || hist[0].Current != nil || len(hist[0].Versions) != 2 || !hist[0].Versions[0].Standing || hist[0].Versions[1].Standing {
		t.Errorf("history %+v", hist)
	}
	if w := get(h, "/api/v1/breaches?history=2"); w.Code != 400 {
		t.Errorf("history=2: %d", w.Code)
	}
}
