package nshs

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"idk/protocol/idkpb"
)

func bookDo(t *testing.T, h http.Handler, method, target, body string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(method, target, strings.NewReader(body))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func TestHandler(t *testing.T) {
	f := newBookFixture(t)
	f.send(pkt, change{at: bookAt(27, 8, 0), state: working}, change{at: bookAt(27, 9, 0), state: inoperable, cause: idkpb.InoperableCause_INOPERABLE_CAUSE_SOFTWARE}, change{at: bookAt(27, 10, 0), state: working})
	f.put(NSHS{ID: "link-1", Source: SourceLink, KodTO: "10101010", Start: bookAt(26, 23, 0)})
	h := f.book.Handler()
	id := incID(pkt, bookAt(27, 9, 0))

	w := bookDo(t, h, "GET", "/api/v1/nshs?from=2026-11-27&to=2026-11-27", "")
	var list []map[string]any
	if w.Code != 200 || json.Unmarshal(w.Body.Bytes(), &list) != nil || len(list) != 2 {
		t.Fatalf("list: %d %s", w.Code, w.Body)
	}
	if list[1]["id"] != id || list[1]["category_numeral"] != "I" || list[1]["duration"] != "1,00" || list[1]["closed"] != true ||
		list[1]["cause_name"] != CauseInternalICT.Name() || list[0]["id"] != "link-1" || list[0]["closed"] != false || list[0]["end"] != nil {
		t.Errorf("list: %s", w.Body)
	}
	if w := bookDo(t, h, "GET", "/api/v1/nshs?from=2026-11-25&to=2026-11-25", ""); w.Code != 200 || strings.TrimSpace(w.Body.String()) != "[]" {
		t.Errorf("an empty day: %d %s", w.Code, w.Body)
	}

	// The mapping: software to III, as a name and a numeral string.
	w = bookDo(t, h, "PUT", "/api/v1/nshs/mapping", `{"cause": "software", "category": "iii", "by": "Сидоров"}`)
	if w.Code != 200 || !strings.Contains(w.Body.String(), `"changed":true`) {
		t.Fatalf("put mapping: %d %s", w.Code, w.Body)
	}
	w = bookDo(t, h, "PUT", "/api/v1/nshs/mapping", `{"cause": 7, "nshs_cause": "internal.user", "by": "Петров"}`)
	if w.Code != 200 {
		t.Fatalf("put mapping: %d %s", w.Code, w.Body)
	}
	w = bookDo(t, h, "GET", "/api/v1/nshs/mapping", "")
	var m struct {
		Rules   []ruleView
		Link    ruleView
		History []MappingChange
	}
	if w.Code != 200 || json.Unmarshal(w.Body.Bytes(), &m) != nil {
		t.Fatalf("mapping: %d %s", w.Code, w.Body)
	}
	if len(m.Rules) != 9 || m.Rules[7].CauseKey != "SOFTWARE" || m.Rules[7].CategoryNumeral != "III" || m.Rules[7].NSHSCause != CauseInternalUser ||
		m.Rules[7].Default || !m.Rules[2].Default || m.Link.NSHSCause != CauseExternalChannel || len(m.History) != 2 ||
		m.History[1].Old != (Rule{CategoryIII, CauseInternalICT}) || m.History[1].By != "Петров" {
		t.Errorf("mapping: %s", w.Body)
	}
	// An hour is within the 60 minutes of category III: local.
	if n, err := f.book.Find(id); err != nil || n.Category != CategoryIV || n.Cause != CauseInternalUser {
		t.Errorf("after the mapping: %+v %v", n, err)
	}

	// A correction, then the НШС with its history.
	w = bookDo(t, h, "POST", "/api/v1/nshs/"+id+"/correct", `{"category": 1, "works": "ПО переустановлено", "informed": "ОДС: Кузнецов\nИТС: Орлов", "by": "Сидоров", "reason": "регламентированная процедура"}`)
	if w.Code != 200 || !strings.Contains(w.Body.String(), `"category":1`) || !strings.Contains(w.Body.String(), `"informed":["ОДС: Кузнецов","ИТС: Орлов"]`) {
		t.Fatalf("correct: %d %s", w.Code, w.Body)
	}
	w = bookDo(t, h, "GET", "/api/v1/nshs/"+id, "")
	if w.Code != 200 || !strings.Contains(w.Body.String(), `"reason":"регламентированная процедура"`) || !strings.Contains(w.Body.String(), `"works":"ПО переустановлено"`) {
		t.Errorf("one: %d %s", w.Code, w.Body)
	}

	for _, c := range []struct {
		method, target, body string
		code                 int
		field                string
	}{
		{"GET", "/api/v1/nshs?from=27.11.2026", "", 400, "from:"},
		{"GET", "/api/v1/nshs?from=2026-11-27&to=2026-11-26", "", 400, "to:"},
		{"GET", "/api/v1/nshs?from=2020-01-01&to=2026-11-26", "", 400, "to:"},
		{"GET", "/api/v1/nshs?day=2026-11-27", "", 400, `unknown parameter "day"`},
		{"PUT", "/api/v1/nshs/mapping", `{"cause": "storm", "category": "I", "by": "x"}`, 400, "cause:"},
		{"PUT", "/api/v1/nshs/mapping", `{"category": "I", "by": "x"}`, 400, "cause:"},
		{"PUT", "/api/v1/nshs/mapping", `{"cause": 1, "category": "VI", "by": "x"}`, 400, "category:"},
		{"PUT", "/api/v1/nshs/mapping", `{"cause": 1, "by": "x"}`, 400, "category:"},
		{"PUT", "/api/v1/nshs/mapping", `{"cause": 1, "nshs_cause": "external.moon", "by": "x"}`, 400, "nshs_cause:"},
		{"PUT", "/api/v1/nshs/mapping", `{"cause": 1, "category": 2}`, 400, "by:"},
		{"POST", "/api/v1/nshs/" + id + "/correct", `{"category": "I", "by": "x"}`, 400, "reason:"},
		{"POST", "/api/v1/nshs/" + id + "/correct", `{"cause": "x", "by": "x", "reason": "y"}`, 400, "cause:"},
		{"POST", "/api/v1/nshs/" + id + "/correct", `{"informed": 5, "by": "x", "reason": "y"}`, 400, "informed:"},
		{"POST", "/api/v1/nshs/" + id + "/correct", `{"category": "I", "by": "x", "reason": "y", "extra": 1}`, 400, "bad body"},
		{"POST", "/api/v1/nshs/link-9/correct", `{"category": "I", "by": "x", "reason": "y"}`, 404, "no such НШС"},
		{"GET", "/api/v1/nshs/idk-850591-garbage", "", 404, "no such НШС"},
	} {
		w := bookDo(t, h, c.method, c.target, c.body)
		if w.Code != c.code || !strings.HasPrefix(w.Body.String(), c.field) && !strings.Contains(w.Body.String(), c.field) {
			t.Errorf("%s %s %s: %d %s, want %d naming %s", c.method, c.target, c.body, w.Code, w.Body, c.code, c.field)
		}
	}
}
