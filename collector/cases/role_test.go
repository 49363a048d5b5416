package cases

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func postWith(h http.Handler, target, body, token string) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	r := httptest.NewRequest(http.MethodPost, target, strings.NewReader(body))
	if token != "" {
		r.Header.Set(CorrectionsHeader, token)
	}
	h.ServeHTTP(w, r)
	return w
}

// TestCorrectionsRole: an event older than the backdating window needs
// the corrections token as well as a reason; a recent one needs neither,
// and a wrong token is refused whatever the event.
func TestCorrectionsRole(t *testing.T) {
	loc := moscow(t)
	f := newFixture(t, at(loc, 6, 12, 0, 0))
	h := Corrections(f.e.Handler(), "s3cret")
	old := `{"kind":"arrival","time":"2024-03-05T10:00:00+03:00","num_idk":"850591","by":"оператор","reason":"журнал смены"}`
	recent := `{"kind":"arrival","time":"2024-03-06T11:50:00+03:00","num_idk":"850592","by":"оператор"}`
	for _, c := range []struct {
		name, body, token string
		code              int
		want              string
	}{
		{"backdated without the token", old, "", 403, CorrectionsHeader},
		{"backdated with a wrong token", old, "guess", 403, "wrong corrections token"},
		{"backdated without the token or a reason", strings.Replace(old, `"reason":"журнал смены"`, `"source":"api"`, 1), "", 403, "reason"},
		{"recent with a wrong token", recent, "guess", 403, "wrong corrections token"},
		{"recent without the token", recent, "", 200, "case_id"},
		{"backdated with the token and a reason", old, "s3cret", 200, "case_id"},
	} {
		w := postWith(h, "/api/v1/cases/events", c.body, c.token)
		if w.Code != c.code || !strings.Contains(w.Body.String(), c.want) {
			t.Errorf("%s: %d %s, want %d naming %q", c.name, w.Code, w.Body, c.code, c.want)
		}
	}
	// Without the middleware nobody has the role.
	if w := post(f.e.Handler(), "/api/v1/cases/events", strings.Replace(old, "10:00", "10:05", 1)); w.Code != 403 {
		t.Errorf("backdated through the bare handler: %d %s", w.Code, w.Body)
	}
	// An empty token turns the check off, as for the API token.
	if w := post(Corrections(f.e.Handler(), ""), "/api/v1/cases/events", strings.Replace(old, "10:00", "10:10", 1)); w.Code != 200 {
		t.Errorf("backdated with the check off: %d %s", w.Code, w.Body)
	}
}
