package report

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"idk/protocol/idkpb"
)

// shiftForm is a final form of snim with decision d and marks marks.
func shiftForm(snim string, at time.Time, d idkpb.Decision, marks uint32) *idkpb.Form {
	f := fullForm(snim, at)
	f.Decision, f.Marks = d, marks
	return f
}

// TestShiftList: the end-of-shift list holds the shift's «без подозрения»
// scans with marks of that ИДК only, as their latest form has them, in
// scan order, whatever customs body's keys lie before or after.
func TestShiftList(t *testing.T) {
	f := newScanFixture(t)
	clean, suspected := idkpb.Decision_DECISION_NOT_SUSPECTED, idkpb.Decision_DECISION_SUSPECTED
	type sc struct {
		dev   *idkpb.Device
		at    time.Time
		snim  string
		d     idkpb.Decision
		marks uint32
	}
	for _, s := range []sc{
		{devA, nov(5, 7, 59), "A0", clean, 1},     // the shift before
		{devA, nov(5, 9, 0), "A1", clean, 2},      // listed
		{devA, nov(5, 10, 0), "A2", clean, 0},     // no marks
		{devA, nov(5, 11, 0), "A3", suspected, 2}, // under suspicion: reported by the act
		{devA, nov(5, 8, 30), "A4", clean, 1},     // listed, before A1
		{devA, nov(5, 20, 0), "A5", clean, 1},     // the next shift
		{devB, nov(5, 9, 30), "B1", clean, 1},     // another ИДК of the office
		{devC, nov(5, 9, 30), "C1", clean, 1},     // another office's ИДК
	} {
		f.scan(s.dev, s.at, s.snim)
		f.form(s.dev, s.at.Add(5*time.Minute), 1, shiftForm(s.snim, s.at, s.d, s.marks))
	}
	// A6 was listed by its first form; the correction puts it under
	// suspicion, and the list reads the form as it is now.
	f.scan(devA, nov(5, 12, 0), "A6")
	f.form(devA, nov(5, 12, 5), 1, shiftForm("A6", nov(5, 12, 0), clean, 1))
	f.form(devA, nov(5, 12, 9), 2, shiftForm("A6", nov(5, 12, 0), suspected, 1))
	// A7's correction adds the marks.
	f.scan(devA, nov(5, 13, 0), "A7")
	f.form(devA, nov(5, 13, 5), 1, shiftForm("A7", nov(5, 13, 0), clean, 0))
	f.form(devA, nov(5, 13, 9), 2, shiftForm("A7", nov(5, 13, 0), clean, 3))

	list := func(dev *idkpb.Device, from, to time.Time) []string {
		t.Helper()
		items, err := f.j.ShiftList(f.log, dev.NumIdk, from, to)
		if err != nil {
			t.Fatal(err)
		}
		var snims []string
		for _, it := range items {
			snims = append(snims, it.NumSnim)
		}
		return snims
	}
	eq := func(what string, got []string, want ...string) {
		t.Helper()
		if len(got) != len(want) {
			t.Errorf("%s: %q, want %q", what, got, want)
			return
		}
		for i := range got {
			if got[i] != want[i] {
				t.Errorf("%s: %q, want %q", what, got, want)
				return
			}
		}
	}
	eq("devA day shift", list(devA, nov(5, 8, 0), nov(5, 20, 0)), "A4", "A1", "A7")
	eq("devA night shift", list(devA, nov(5, 20, 0), nov(6, 8, 0)), "A5")
	eq("devA night before", list(devA, nov(4, 20, 0), nov(5, 8, 0)), "A0")
	eq("devB", list(devB, nov(5, 8, 0), nov(5, 20, 0)), "B1")
	eq("devC", list(devC, nov(5, 8, 0), nov(5, 20, 0)), "C1")
	eq("unknown ИДК", list(&idkpb.Device{NumIdk: "999"}, nov(5, 8, 0), nov(5, 20, 0)))

	items, err := f.j.ShiftList(f.log, devA.NumIdk, nov(5, 8, 0), nov(5, 9, 0))
	if err != nil || len(items) != 1 {
		t.Fatalf("A4 alone: %+v, %v", items, err)
	}
	want := ShiftItem{KodTO: "10216100", NaimTO: "БАЛТИЙСКАЯ", NaimZTK: "ПКТ", NumIDK: "850591", NumSnim: "A4", At: nov(5, 8, 30),
		NumTS: "А654АА777", NumPTS: "АВ123477", NumCont: "MSCU1234567", NaimTov: "ЗАПАСНЫЕ ЧАСТИ ДЛЯ АВТОМОБИЛЕЙ",
		Prim: "ПЛОТНЫЕ ВЛОЖЕНИЯ; ПРОВЕДЁН ОСМОТР", Operator: "IDK_oper02"}
	if got := items[0]; !got.At.Equal(want.At) || got.At.Location() != scanMSK {
		t.Errorf("A4 time %v, want %v", got.At, want.At)
	} else if got.At = want.At; got != want {
		t.Errorf("A4:\n got %+v\nwant %+v", got, want)
	}

	h := &ShiftHandler{Index: f.log, Scans: f.j}
	get := func(q url.Values) *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/api/v1/reports/shift?"+q.Encode(), nil))
		return w
	}
	w := get(url.Values{"num_idk": {"850591"}, "from": {"2026-11-05T08:00:00+03:00"}, "to": {"2026-11-05T20:00:00+03:00"}})
	var reply ShiftReply
	if w.Code != http.StatusOK {
		t.Fatalf("GET: %d %s", w.Code, w.Body)
	}
	if err := json.Unmarshal(w.Body.Bytes(), &reply); err != nil {
		t.Fatal(err)
	}
	if len(reply.Items) != 3 || reply.Items[0].NumSnim != "A4" || reply.NumIDK != "850591" {
		t.Errorf("GET: %s", w.Body)
	}
	for _, q := range []url.Values{
		{"from": {"2026-11-05T08:00:00+03:00"}, "to": {"2026-11-05T20:00:00+03:00"}},
		{"num_idk": {"850591"}, "from": {"05.11.2026"}, "to": {"2026-11-05T20:00:00+03:00"}},
		{"num_idk": {"850591"}, "from": {"2026-11-05T20:00:00+03:00"}, "to": {"2026-11-05T08:00:00+03:00"}},
		{"num_idk": {"850591"}, "from": {"2026-11-05T08:00:00+03:00"}, "to": {"2026-11-05T20:00:00+03:00"}, "shift": {"1"}},
	} {
		if w := get(q); w.Code != http.StatusBadRequest {
			t.Errorf("GET %v: %d, want 400", q, w.Code)
		}
	}
	// An empty shift is an empty list, not null.
	w = get(url.Values{"num_idk": {"850591"}, "from": {"2026-11-06T08:00:00+03:00"}, "to": {"2026-11-06T20:00:00+03:00"}})
	if w.Code != http.StatusOK || !json.Valid(w.Body.Bytes()) || !strings.Contains(w.Body.String(), `"items":[]`) {
		t.Errorf("empty shift: %d %s", w.Code, w.Body)
	}
}
