package availability

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"idk/simulator/simclock"
)

// unreported checks idk_collector_incident_unreported_seconds of ИДК
// 850591: want maps each step expected to the age in seconds; a step not
// in it must be absent.
func unreported(t *testing.T, tr *Tracker, want map[string]string) {
	t.Helper()
	exp := ""
	if len(want) > 0 {
		exp = `
# HELP idk_collector_incident_unreported_seconds Age of the oldest open incident lacking the reporting step (request, head, its_ods); absent if none.
# TYPE idk_collector_incident_unreported_seconds gauge
`
		for _, s := range ReportSteps {
			if v, ok := want[s.Name]; ok {
				exp += `idk_collector_incident_unreported_seconds{num_idk="850591",step="` + s.Name + `"} ` + v + "\n"
			}
		}
	}
	if err := testutil.CollectAndCompare(tr.Collector(), strings.NewReader(exp), "idk_collector_incident_unreported_seconds"); err != nil {
		t.Error(err)
	}
}

func TestReportStepsAndMetric(t *testing.T) {
	loc := moscow(t)
	// The open incident of incidentDay began at 11:00.
	clk := simclock.New(at(loc, 5, 11, 4))
	store := &memAcks{}
	tr := NewTracker(loc, clk)
	if err := tr.UseAckStore(store); err != nil {
		t.Fatal(err)
	}
	incidentDay(tr, loc)
	if problems, err := testutil.CollectAndLint(tr.Collector()); err != nil || len(problems) > 0 {
		t.Fatalf("lint: %v %v", err, problems)
	}
	// The closed incident (09:00-09:10) lacks every step but counts for
	// none: only open incidents are due.
	unreported(t, tr, map[string]string{"request": "240", "head": "240", "its_ods": "240"})

	closed, open := tr.Incidents("850591")[0], tr.Incidents("850591")[1]
	setClock(t, clk, at(loc, 5, 11, 5))
	r, recorded, err := tr.Report("850591", open.ID, StepRequest, " Петров ")
	if err != nil || !recorded || r.By != "Петров" || !r.At.Equal(at(loc, 5, 11, 5)) || r.Step != StepRequest {
		t.Fatalf("report request: %+v %v %v", r, recorded, err)
	}
	unreported(t, tr, map[string]string{"head": "300", "its_ods": "300"})

	// Reported twice: the first stands, and the caller is told.
	setClock(t, clk, at(loc, 5, 11, 6))
	r, recorded, err = tr.Report("850591", open.ID, StepRequest, "Сидоров")
	if err != nil || recorded || r.By != "Петров" || !r.At.Equal(at(loc, 5, 11, 5)) {
		t.Errorf("second report: %+v %v %v, want the first by Петров, not recorded", r, recorded, err)
	}
	if _, _, err := tr.Report("850591", closed.ID, StepHead, "Иванов"); err != nil {
		t.Fatal(err)
	}
	unreported(t, tr, map[string]string{"head": "360", "its_ods": "360"})

	setClock(t, clk, at(loc, 5, 11, 7))
	if _, _, err := tr.Report("850591", open.ID, StepHead, "Петров"); err != nil {
		t.Fatal(err)
	}
	unreported(t, tr, map[string]string{"its_ods": "420"})
	setClock(t, clk, at(loc, 5, 11, 9))
	if _, _, err := tr.Report("850591", open.ID, StepITSODS, "Кузнецов"); err != nil {
		t.Fatal(err)
	}
	unreported(t, tr, nil)

	got := tr.Incidents("850591")[1].Reports
	if len(got) != 3 || got[StepRequest].By != "Петров" || got[StepHead].By != "Петров" ||
		got[StepITSODS].By != "Кузнецов" || !got[StepITSODS].At.Equal(at(loc, 5, 11, 9)) {
		t.Errorf("reports: %+v", got)
	}
	if got[StepITSODS].At.Location() != loc {
		t.Errorf("report time in %v, want the tracker's location", got[StepITSODS].At.Location())
	}

	// Bad calls.
	_, _, err = tr.Report("850591", open.ID, "boss", "Петров")
	if !errors.Is(err, ErrUnknownStep) || !strings.Contains(err.Error(), `"boss"`) {
		t.Errorf("unknown step: %v, want ErrUnknownStep naming it", err)
	}
	_, _, err = tr.Report("850591", "850591-20240305T000000Z", StepHead, "Петров")
	if !errors.Is(err, ErrUnknownIncident) || !strings.Contains(err.Error(), "850591-20240305T000000Z") {
		t.Errorf("unknown incident: %v, want ErrUnknownIncident naming it", err)
	}
	if _, _, err := tr.Report("850591", open.ID, StepHead, " "); err == nil {
		t.Error("report without a name accepted")
	}

	// A restart: the events are replayed, the steps come from the store,
	// and the repeated report there loses to the first.
	store.steps = append(store.steps, StepReport{NumIDK: "850591", ID: open.ID, Step: StepRequest, By: "Позже", At: at(loc, 5, 11, 8)})
	tr2 := NewTracker(loc, clk)
	if err := tr2.UseAckStore(store); err != nil {
		t.Fatal(err)
	}
	incidentDay(tr2, loc)
	got = tr2.Incidents("850591")[1].Reports
	if len(got) != 3 || got[StepRequest].By != "Петров" || got[StepITSODS].By != "Кузнецов" {
		t.Errorf("after restart: %+v", got)
	}
	if c := tr2.Incidents("850591")[0].Reports; len(c) != 1 || c[StepHead].By != "Иванов" {
		t.Errorf("closed incident after restart: %+v", c)
	}
	unreported(t, tr2, nil)

	// A step that could not be saved is not shown.
	tr3 := NewTracker(loc, clk)
	if err := tr3.UseAckStore(&memAcks{fail: errors.New("disk full")}); err != nil {
		t.Fatal(err)
	}
	incidentDay(tr3, loc)
	if _, _, err := tr3.Report("850591", open.ID, StepRequest, "Петров"); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Errorf("failed save: %v", err)
	}
	if len(tr3.Incidents("850591")[1].Reports) != 0 {
		t.Error("unsaved step shown")
	}
	unreported(t, tr3, map[string]string{"request": "540", "head": "540", "its_ods": "540"})
}

// The oldest open incident lacking a step sets its age; a closed one or
// one that has the step does not.
func TestOldestUnreported(t *testing.T) {
	now := time.Date(2024, 3, 5, 12, 0, 0, 0, time.UTC)
	done := map[string]StepReport{StepRequest: {}}
	got := oldestUnreported([]Incident{
		{Start: now.Add(-time.Hour), End: now.Add(-30 * time.Minute)}, // closed
		{Start: now.Add(-20 * time.Minute), Reports: done},
		{Start: now.Add(-8 * time.Minute)},
	}, now)
	want := map[string]time.Duration{StepRequest: 8 * time.Minute, StepHead: 20 * time.Minute, StepITSODS: 20 * time.Minute}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %v, want %v", k, got[k], v)
		}
	}
}

func TestHandlerReport(t *testing.T) {
	tr, _ := httpTracker(t) // now 11:12, the open incident began at 11:00
	h := tr.Handler()
	const id = "850591-20240305T080000Z"
	target := "/api/v1/incidents/" + id + "/report"

	w := get(h, "/api/v1/incidents?num_idk=850591")
	var incs []map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &incs); err != nil || len(incs) != 2 {
		t.Fatalf("status %d: %v %s", w.Code, err, w.Body)
	}
	steps, _ := incs[1]["steps"].(map[string]any)
	if len(steps) != 3 {
		t.Fatalf("steps JSON: %v", incs[1]["steps"])
	}
	for name, due := range map[string]string{"request": "2024-03-05T11:05:00+03:00", "head": "2024-03-05T11:07:00+03:00", "its_ods": "2024-03-05T11:10:00+03:00"} {
		s, _ := steps[name].(map[string]any)
		if s["due"] != due || s["reported"] != false || s["at"] != nil {
			t.Errorf("step %s: %v, want due %s, not reported", name, s, due)
		}
	}

	type answer struct {
		Recorded bool           `json:"recorded"`
		Message  string         `json:"message"`
		Incident map[string]any `json:"incident"`
	}
	report := func(body string) answer {
		t.Helper()
		w := post(h, target, body)
		var a answer
		if err := json.Unmarshal(w.Body.Bytes(), &a); err != nil || w.Code != http.StatusOK {
			t.Fatalf("POST %s: status %d: %v %s", body, w.Code, err, w.Body)
		}
		return a
	}
	a := report(`{"num_idk":"850591","step":"its_ods","by":"Кузнецов"}`)
	s, _ := a.Incident["steps"].(map[string]any)["its_ods"].(map[string]any)
	if !a.Recorded || a.Incident["id"] != id || s["reported"] != true || s["by"] != "Кузнецов" || s["at"] != "2024-03-05T11:12:00+03:00" {
		t.Errorf("report answer: %+v", a)
	}
	a = report(`{"num_idk":"850591","step":"its_ods","by":"Сидоров"}`)
	s, _ = a.Incident["steps"].(map[string]any)["its_ods"].(map[string]any)
	if a.Recorded || !strings.Contains(a.Message, "already reported by Кузнецов at 2024-03-05T11:12:00+03:00") || s["by"] != "Кузнецов" {
		t.Errorf("repeated report answer: %+v, want not recorded, the first standing", a)
	}

	for _, c := range []struct {
		target, body string
		status       int
		names        string
	}{
		{target, `{"num_idk":"850591","step":"boss","by":"Петров"}`, 400, `"boss"`},
		{target, `{"num_idk":"850591","step":"head"}`, 400, "by"},
		{target, `{"num_idk":"850591","by":"Петров"}`, 400, "step"},
		{target, `{"step":"head","by":"Петров"}`, 400, "num_idk"},
		{target, `{"num_idk":"850591","step":"head","by":"Петров","id":"x"}`, 400, "id"},
		{target, `not json`, 400, "body"},
		{"/api/v1/incidents/850591-19700101T000000Z/report", `{"num_idk":"850591","step":"head","by":"Петров"}`, 404, "850591-19700101T000000Z"},
		{target, `{"num_idk":"999999","step":"head","by":"Петров"}`, 404, "num_idk"},
	} {
		w := post(h, c.target, c.body)
		if w.Code != c.status || !strings.Contains(w.Body.String(), c.names) {
			t.Errorf("POST %s %s: %d %q, want %d naming %s", c.target, c.body, w.Code, w.Body, c.status, c.names)
		}
	}
}
