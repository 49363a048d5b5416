package cases

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
)

func get(h http.Handler, target string) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, target, nil))
	return w
}

func post(h http.Handler, target, body string) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodPost, target, strings.NewReader(body)))
	return w
}

func decodeBody(t *testing.T, w *httptest.ResponseRecorder, v any) {
	t.Helper()
	if w.Code != http.StatusOK || !strings.HasPrefix(w.Header().Get("Content-Type"), "application/json") {
		t.Fatalf("status %d, type %q: %s", w.Code, w.Header().Get("Content-Type"), w.Body)
	}
	if err := json.Unmarshal(w.Body.Bytes(), v); err != nil {
		t.Fatalf("%v: %s", err, w.Body)
	}
}

func TestHandlerFlow(t *testing.T) {
	loc := moscow(t)
	f := newFixture(t, at(loc, 5, 10, 0, 0))
	if err := f.e.SetDevice(stationary); err != nil {
		t.Fatal(err)
	}
	h := f.e.Handler()

	// No time: now. The source defaults to api.
	var created map[string]string
	decodeBody(t, post(h, "/api/v1/cases/events", `{"kind":"risk_detected","num_idk":"850591","docs":["10702070/170717/0012345"],"by":"Сидоров"}`), &created)
	id := created["case_id"]
	if id != "20240305-000001" {
		t.Fatalf("case id %q", id)
	}
	f.set(at(loc, 5, 10, 3, 0))
	decodeBody(t, post(h, "/api/v1/cases/events", `{"kind":"arrival","time":"2024-03-05T10:02:00+03:00","num_idk":"850591","by":"оператор"}`), &created)
	if created["case_id"] != id {
		t.Errorf("arrival went to %s", created["case_id"])
	}

	var c map[string]any
	decodeBody(t, get(h, "/api/v1/cases/"+id), &c)
	evs := c["events"].([]any)
	first := evs[0].(map[string]any)
	if c["id"] != id || c["open"] != true || len(evs) != 2 || first["time"] != "2024-03-05T10:00:00+03:00" ||
		first["source"] != "api" || first["by"] != "Сидоров" {
		t.Errorf("case JSON %v", c)
	}
	timers := c["timers"].([]any)
	if tm := timers[1].(map[string]any); len(timers) != 2 || tm["rule"] != "time_2" || tm["running"] != true ||
		tm["deadline"] != "2024-03-05T10:17:00+03:00" || tm["end"] != nil {
		t.Errorf("timers %v", timers)
	}

	var list []map[string]any
	decodeBody(t, get(h, "/api/v1/cases?open=1"), &list)
	if len(list) != 1 || list[0]["id"] != id {
		t.Errorf("open cases %v", list)
	}

	// TIME_1 and TIME_2 both breached.
	f.tick(at(loc, 5, 10, 30, 0))
	var breaches []map[string]any
	decodeBody(t, get(h, "/api/v1/breaches?from=2024-03-05&to=2024-03-05"), &breaches)
	if len(breaches) != 1 || breaches[0]["id"] != id || breaches[0]["running"] != true {
		t.Fatalf("breaches %v", breaches)
	}
	row := breaches[0]["row"].(map[string]any)
	var keys []string
	for k := range row {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	want := []string{"DATE_NAR", "DISL_IDK", "KOD_TO", "NAIM_TO", "NAIM_ZTK", "NUM_IDK", "NUM_SNIM",
		"PRICH_NAR", "TIME_1", "TIME_2", "TIME_3", "TYPE_IDK"}
	if !slices.Equal(keys, want) {
		t.Errorf("row fields %v, want the table 4 fields %v", keys, want)
	}
	if row["DATE_NAR"] != "05.03.2024" || row["TIME_1"] != "0,30" || row["TIME_2"] != "0,28" || row["TIME_3"] != "" ||
		row["KOD_TO"] != "10101010" || row["TYPE_IDK"] != 2.0 || row["NUM_IDK"] != "850591" || row["PRICH_NAR"] != "" {
		t.Errorf("row %v", row)
	}
	decodeBody(t, get(h, "/api/v1/breaches"), &breaches) // today by default
	if len(breaches) != 1 {
		t.Errorf("today's breaches %v", breaches)
	}
	decodeBody(t, get(h, "/api/v1/breaches?from=2024-03-06&to=2024-03-07"), &breaches)
	if len(breaches) != 0 {
		t.Errorf("breaches of other days %v", breaches)
	}
	decodeBody(t, get(h, "/api/v1/breaches?without_reason=1"), &breaches)
	if len(breaches) != 1 {
		t.Errorf("without reason %v", breaches)
	}

	var answered map[string]any
	decodeBody(t, post(h, "/api/v1/breaches/reason", `{"id":"`+id+`","reason":"удаленность места применения ИДК от таможенного поста","by":"Петров"}`), &answered)
	if r := answered["row"].(map[string]any); answered["id"] != id || r["PRICH_NAR"] != "УДАЛЕННОСТЬ МЕСТА ПРИМЕНЕНИЯ ИДК ОТ ТАМОЖЕННОГО ПОСТА" {
		t.Errorf("reason answer %v", answered)
	}
	decodeBody(t, get(h, "/api/v1/breaches?without_reason=1"), &breaches)
	if len(breaches) != 0 {
		t.Errorf("without reason after the reason: %v", breaches)
	}

	f.set(at(loc, 5, 11, 0, 1))
	decodeBody(t, get(h, "/api/v1/cases/unmatched"), &list)
	if len(list) != 1 || list[0]["id"] != id {
		t.Errorf("unmatched %v", list)
	}
	decodeBody(t, get(h, "/api/v1/cases"), &list)
	if len(list) != 1 {
		t.Errorf("cases %v", list)
	}
}

func TestHandlerBadRequests(t *testing.T) {
	loc := moscow(t)
	f := newFixture(t, at(loc, 5, 10, 0, 0))
	h := f.e.Handler()
	f.add(Event{Kind: Scan, Time: at(loc, 5, 9, 0, 0), NumIDK: idkX, NumSnim: "S1"})

	for _, c := range []struct {
		body   string
		status int
		names  string
	}{
		{`{"num_idk":"850591","by":"a"}`, 400, "kind"},
		{`{"kind":"landed","num_idk":"850591","by":"a"}`, 400, "kind"},
		{`{"kind":"arrival","by":"a"}`, 400, "num_idk"},
		{`{"kind":"arrival","num_idk":"850591"}`, 400, "by"},
		{`{"kind":"arrival","num_idk":"850591","by":"a","time":"05.03.2024 10:00"}`, 400, "time"},
		{`{"kind":"arrival","num_idk":"850591","by":"a","time":"2024-03-05T12:00:00+03:00"}`, 400, "time"},
		{`{"kind":"arrival","num_idk":"850591","by":"a","when":"now"}`, 400, "when"},
		{`{"kind":"scan","num_idk":"850591","by":"a"}`, 400, "num_snim"},
		{`{"kind":"docs_returned","num_idk":"850591","num_snim":"S404","by":"a"}`, 400, "num_snim"},
		{`{"kind":"act_handed","num_idk":"850591","docs":["10702070/170717/0012345"],"by":"a"}`, 400, "docs"},
		{`{"kind":"docs_handed","num_idk":"850591","case_id":"x","by":"a"}`, 400, "case_id"},
		{`{"kind":"docs_returned","num_idk":"850591","by":"a"}`, 400, "case_id, num_snim or docs"},
		{`{"kind":"arrival","num_idk":"850591","suspected":true,"by":"a"}`, 400, "suspected"},
		{`not json`, 400, "body"},
	} {
		w := post(h, "/api/v1/cases/events", c.body)
		if w.Code != c.status || !strings.Contains(w.Body.String(), c.names) {
			t.Errorf("POST events %s: %d %q, want %d naming %s", c.body, w.Code, w.Body, c.status, c.names)
		}
	}
	for _, c := range []struct {
		target string
		status int
		names  string
	}{
		{"/api/v1/cases?open=yes", 400, "open"},
		{"/api/v1/cases?opened=1", 400, "opened"},
		{"/api/v1/cases/unmatched?all=1", 400, "all"},
		{"/api/v1/cases/20240305-999999", 404, "20240305-999999"},
		{"/api/v1/breaches?from=05.03.2024", 400, "from"},
		{"/api/v1/breaches?from=2024-03-05&to=2024-02-30", 400, "to"},
		{"/api/v1/breaches?from=2024-03-05&to=2024-03-04", 400, "to"},
		{"/api/v1/breaches?from=2024-03-05&from=2024-03-04", 400, "from"},
		{"/api/v1/breaches?without_reason=yes", 400, "without_reason"},
		{"/api/v1/breaches?without_reason=1&from=2024-03-05", 400, "without_reason"},
		{"/api/v1/breaches?date=2024-03-05", 400, "date"},
	} {
		w := get(h, c.target)
		if w.Code != c.status || !strings.Contains(w.Body.String(), c.names) {
			t.Errorf("GET %s: %d %q, want %d naming %s", c.target, w.Code, w.Body, c.status, c.names)
		}
	}
	scanCase := f.e.Cases()[0].ID
	for _, c := range []struct {
		body   string
		status int
		names  string
	}{
		{`{"reason":"X","by":"a"}`, 400, "id"},
		{`{"id":"x","by":"a"}`, 400, "reason"},
		{`{"id":"x","reason":"X"}`, 400, "by"},
		{`{"id":"x","reason":"X","by":"a","at":"now"}`, 400, "at"},
		{`{"id":"20240305-999999","reason":"X","by":"a"}`, 404, "20240305-999999"},
		{`{"id":"` + scanCase + `","reason":"X","by":"a"}`, 404, "no breach"},
	} {
		w := post(h, "/api/v1/breaches/reason", c.body)
		if w.Code != c.status || !strings.Contains(w.Body.String(), c.names) {
			t.Errorf("POST reason %s: %d %q, want %d naming %s", c.body, w.Code, w.Body, c.status, c.names)
		}
	}
	if w := get(h, "/api/v1/cases/events"); w.Code != http.StatusMethodNotAllowed && w.Code != http.StatusNotFound {
		t.Errorf("GET events: %d", w.Code)
	}
}

// A risk_detected through the API carries the risk profile of table 1;
// a badly formed field, or a profile on another kind, is refused by name.
func TestHandlerRiskProfile(t *testing.T) {
	loc := moscow(t)
	f := newFixture(t, at(loc, 5, 10, 0, 0))
	if err := f.e.SetDevice(stationary); err != nil {
		t.Fatal(err)
	}
	h := f.e.Handler()
	var created map[string]string
	decodeBody(t, post(h, "/api/v1/cases/events", `{"kind":"risk_detected","num_idk":"850591","docs":["10702070/170717/0012345"],"by":"Сидоров",
		"risk":{"KOD_TEH":"05","VID_PR":"55","KOD_TO_PR":"10216000","DATE_REG":"12.12.2012","NUM_PR":"12361","DOC_TYPE":4}}`), &created)
	f.set(at(loc, 5, 10, 5, 0))
	decodeBody(t, post(h, "/api/v1/cases/events", `{"kind":"arrival","num_idk":"850591","by":"оператор"}`), &created)
	decodeBody(t, post(h, "/api/v1/cases/events", `{"kind":"scan","num_idk":"850591","num_snim":"202403058505910001","by":"оператор"}`), &created)
	facts, ok, err := f.e.ScanFacts("850591", "202403058505910001")
	want := RiskProfile{KodTeh: "05", VidPr: "55", KodToPr: "10216000", DateReg: "12.12.2012", NumPr: "12361", DocType: 4}
	if err != nil || !ok || facts.Risk != want {
		t.Fatalf("scan facts: %+v %v %v, want risk %+v", facts, ok, err, want)
	}
	for body, field := range map[string]string{
		`{"kind":"risk_detected","num_idk":"850591","by":"С","risk":{"KOD_TEH":"5"}}`:                "KOD_TEH",
		`{"kind":"risk_detected","num_idk":"850591","by":"С","risk":{"DATE_REG":"2012-12-12"}}`:      "DATE_REG",
		`{"kind":"risk_detected","num_idk":"850591","by":"С","risk":{"DOC_TYPE":11}}`:                "DOC_TYPE",
		`{"kind":"arrival","num_idk":"850591","by":"С","risk":{"NUM_PR":"12361"}}`:                   "only risk_detected",
		`{"kind":"risk_detected","num_idk":"850591","by":"С","risk":{"NUM_PR":"1236"},"docs":["X"]}`: "NUM_PR",
	} {
		w := post(h, "/api/v1/cases/events", body)
		if w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), field) {
			t.Errorf("%s: %d %s, want 400 naming %s", body, w.Code, w.Body, field)
		}
	}
}
