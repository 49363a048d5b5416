package availability

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"idk/simulator/simclock"
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

func httpTracker(t *testing.T) (*Tracker, *time.Location) {
	t.Helper()
	loc := moscow(t)
	clk := simclock.New(at(loc, 5, 11, 12))
	tr := NewTracker(loc, clk)
	incidentDay(tr, loc)
	other := stationary
	other.NumIDK = "850592"
	tr.Apply(other, ch(at(loc, 4, 18, 0), idle))
	return tr, loc
}

func TestHandlerAvailability(t *testing.T) {
	tr, _ := httpTracker(t)
	h := tr.Handler()

	w := get(h, "/api/v1/availability?num_idk=850591&date=2024-03-05")
	if w.Code != http.StatusOK || !strings.HasPrefix(w.Header().Get("Content-Type"), "application/json") {
		t.Fatalf("status %d, type %q: %s", w.Code, w.Header().Get("Content-Type"), w.Body)
	}
	var rows []map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &rows); err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1 {
		t.Fatalf("got %d rows, want 1: %s", len(rows), w.Body)
	}
	var keys []string
	for k := range rows[0] {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	want := []string{"DATE", "DISL_P", "KOD_M_D", "NAIM_M_D", "NAIM_ZTK_M_D", "NUM_IDK", "PRIZ_PEREDISL",
		"TIME_JOB", "TIME_NEPAB", "TIME_OPER", "TIME_PEREDISL", "TIME_TEH", "TIME_WAIT", "TYPE_IDK", "seconds"}
	if !slices.Equal(keys, want) {
		t.Errorf("fields %v, want %v", keys, want)
	}
	r := rows[0]
	// 08:00-09:00 and 09:10-11:00 working; inoperable 09:00-09:10 and 11:00-11:12 (now).
	if r["DATE"] != "05.03.2024" || r["TIME_JOB"] != "2,50" || r["TIME_NEPAB"] != "0,22" || r["PRIZ_PEREDISL"] != 0.0 || r["NUM_IDK"] != "850591" {
		t.Errorf("row %v", r)
	}

	// No date: today in the tracker's zone. No num_idk: every ИДК, in order.
	w = get(h, "/api/v1/availability")
	if err := json.Unmarshal(w.Body.Bytes(), &rows); err != nil || w.Code != http.StatusOK {
		t.Fatalf("status %d: %v %s", w.Code, err, w.Body)
	}
	if len(rows) != 2 || rows[0]["NUM_IDK"] != "850591" || rows[1]["NUM_IDK"] != "850592" || rows[1]["TIME_JOB"] != "0,00" {
		t.Errorf("all devices today: %s", w.Body)
	}
}

func TestHandlerBadQuery(t *testing.T) {
	tr, _ := httpTracker(t)
	h := tr.Handler()
	for _, c := range []struct {
		target string
		status int
		names  string
	}{
		{"/api/v1/availability?date=05.03.2024", 400, "date"},
		{"/api/v1/availability?date=2024-02-30", 400, "date"},
		{"/api/v1/availability?date=2024-03-06", 400, "date"}, // tomorrow
		{"/api/v1/availability?date=2024-02-20", 400, "date"}, // older than kept
		{"/api/v1/availability?dat=2024-03-05", 400, "dat"},
		{"/api/v1/availability?date=2024-03-05&date=2024-03-04", 400, "date"},
		{"/api/v1/availability?num_idk=999999", 404, "num_idk"},
		{"/api/v1/incidents?num_idk=999999", 404, "num_idk"},
		{"/api/v1/incidents?numidk=850591", 400, "numidk"},
	} {
		w := get(h, c.target)
		if w.Code != c.status || !strings.Contains(w.Body.String(), c.names) {
			t.Errorf("GET %s: %d %q, want %d naming %s", c.target, w.Code, w.Body, c.status, c.names)
		}
	}
	// The oldest day kept is still answered.
	if w := get(h, "/api/v1/availability?date=2024-02-27"); w.Code != http.StatusOK {
		t.Errorf("oldest kept day: %d %s", w.Code, w.Body)
	}
	if w := post(h, "/api/v1/availability", ""); w.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST availability: %d", w.Code)
	}
}

func TestHandlerIncidentsAndAck(t *testing.T) {
	tr, _ := httpTracker(t)
	h := tr.Handler()

	w := get(h, "/api/v1/incidents?num_idk=850591")
	var incs []map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &incs); err != nil || w.Code != http.StatusOK {
		t.Fatalf("status %d: %v %s", w.Code, err, w.Body)
	}
	if len(incs) != 2 {
		t.Fatalf("got %d incidents: %s", len(incs), w.Body)
	}
	open := incs[1]
	if open["id"] != "850591-20240305T080000Z" || open["open"] != true || open["end"] != nil ||
		open["start"] != "2024-03-05T11:00:00+03:00" || open["duration"] != "0,12" || open["duration_seconds"] != 720.0 ||
		open["cause"] != 3.0 || open["cause_name"] != "поломка дизель-генератора" ||
		open["category"] != "неработоспособность ИДК" || open["acked"] != false || open["acked_at"] != nil {
		t.Errorf("open incident JSON: %v", open)
	}
	if incs[0]["end"] != "2024-03-05T09:10:00+03:00" || incs[0]["duration"] != "0,10" {
		t.Errorf("closed incident JSON: %v", incs[0])
	}

	w = post(h, "/api/v1/incidents/ack", `{"num_idk":"850591","id":"850591-20240305T080000Z","by":"Петров"}`)
	var acked map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &acked); err != nil || w.Code != http.StatusOK {
		t.Fatalf("ack: status %d: %v %s", w.Code, err, w.Body)
	}
	if acked["acked"] != true || acked["acked_by"] != "Петров" || acked["acked_at"] != "2024-03-05T11:12:00+03:00" {
		t.Errorf("ack answer: %v", acked)
	}

	for _, c := range []struct {
		body   string
		status int
		names  string
	}{
		{`{"num_idk":"850591","id":"850591-20240305T080000Z"}`, 400, "by"},
		{`{"num_idk":"850591","by":"Петров"}`, 400, "id"},
		{`{"id":"x","by":"Петров"}`, 400, "num_idk"},
		{`{"num_idk":"850591","id":"x","by":"Петров","when":"now"}`, 400, "when"},
		{`not json`, 400, "body"},
		{`{"num_idk":"850591","id":"850591-19700101T000000Z","by":"Петров"}`, 404, "850591-19700101T000000Z"},
		{`{"num_idk":"999999","id":"x","by":"Петров"}`, 404, "num_idk"},
	} {
		w := post(h, "/api/v1/incidents/ack", c.body)
		if w.Code != c.status || !strings.Contains(w.Body.String(), c.names) {
			t.Errorf("POST %s: %d %q, want %d naming %s", c.body, w.Code, w.Body, c.status, c.names)
		}
	}
}
