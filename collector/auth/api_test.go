package auth

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestAPIToken(t *testing.T) {
	f := newFixture(t)
	tok := f.token("docs")
	if !strings.HasPrefix(tok, TokenPrefix) || len(tok) != len(TokenPrefix)+43 {
		t.Fatalf("token %q: want %s and 32 bytes of base64url", tok, TokenPrefix)
	}
	r := f.apiDo(nil, "POST", "/api/v1/cases/events", tok, `{"kind":"arrival","num_idk":"850592"}`)
	if r.code != 200 || r.body != `КПС «Документы» (docs)|false|{"kind":"arrival","num_idk":"850592"}` {
		t.Fatalf("system token: %d %q", r.code, r.body)
	}
	r = f.apiDo(nil, "GET", "/api/v1/files", "", "")
	if r.code != http.StatusUnauthorized || r.resp.Header.Get("WWW-Authenticate") == "" {
		t.Fatalf("no token: %d, WWW-Authenticate %q", r.code, r.resp.Header.Get("WWW-Authenticate"))
	}
	for _, bad := range []string{TokenPrefix + strings.Repeat("A", 43), "shared-secret-tokeN", tok + "x"} {
		if r := f.apiDo(nil, "GET", "/api/v1/files", bad, ""); r.code != http.StatusUnauthorized {
			t.Errorf("token %q: %d, want 401", bad, r.code)
		}
	}
	// Only the hash is kept.
	acc, _, _ := f.accounts.Get("docs")
	if len(acc.Tokens) != 1 || acc.Tokens[0].SHA256 != tokenHash(tok) || strings.Contains(readFile(t, f.accounts.Path()), tok) {
		t.Fatalf("stored token %+v: want its SHA-256 only", acc.Tokens)
	}
	if e := f.find(`^token_issued$`); len(e) != 1 || e[0].Target != "docs" {
		t.Fatalf("audit token_issued: %+v", e)
	}
}

func TestSharedToken(t *testing.T) {
	f := newFixture(t)
	for range 3 {
		// Even a route outside the table: the shared token does everything.
		if r := f.apiDo(nil, "POST", "/api/v1/something/new", "shared-secret-token", ""); r.code != 200 || r.body != "общий токен api.token (api.token)|true|" {
			t.Fatalf("shared token: %d %q", r.code, r.body)
		}
	}
	if n := testutil.ToFloat64(f.gate.Collector()); n != 3 {
		t.Fatalf("idk_collector_api_shared_token_requests_total = %v, want 3", n)
	}
	if n := strings.Count(f.log.String(), "deprecated"); n != 1 {
		t.Fatalf("%d warnings within a minute, want 1:\n%s", n, f.log.String())
	}
	f.clk.Advance(time.Minute)
	f.apiDo(nil, "GET", "/api/v1/files", "shared-secret-token", "")
	if n := strings.Count(f.log.String(), "deprecated"); n != 2 {
		t.Fatalf("%d warnings after a minute, want 2", n)
	}
	// Turned off: refused.
	f.gate.SharedToken = ""
	if r := f.apiDo(nil, "GET", "/api/v1/files", "shared-secret-token", ""); r.code != http.StatusUnauthorized {
		t.Fatalf("shared token turned off: %d, want 401", r.code)
	}
}

func TestUnknownRouteRefused(t *testing.T) {
	f := newFixture(t)
	tok := f.token("analyst")
	for _, tc := range []struct{ method, path string }{
		{"GET", "/api/v1/secret"},
		{"DELETE", "/api/v1/cases/1"}, // a route, but not this method
		{"POST", "/api/v1/files"},
	} {
		r := f.apiDo(nil, tc.method, tc.path, tok, "")
		if r.code != http.StatusForbidden || !strings.Contains(r.body, "not a route") {
			t.Errorf("%s %s: %d %q, want 403", tc.method, tc.path, r.code, r.body)
		}
	}
	if r := f.apiDo(nil, "GET", "/api/v1/nshs/mapping", tok, ""); r.code != 200 {
		t.Fatalf("a route in the table: %d %q", r.code, r.body)
	}
}

func TestRoleLacksAction(t *testing.T) {
	f := newFixture(t)
	lead, analyst := f.token("lead.a"), f.token("analyst")
	for _, tc := range []struct {
		tok, method, path, body, want string
	}{
		{lead, "POST", "/api/v1/reports/daily/publish?kod_to=" + postA, "", "role shift_lead (Старший смены) may not publish"},
		{lead, "POST", "/api/v1/reports/item36/decision?kod_to=" + postA, `{"case_id":"1"}`, "may not decision"},
		{analyst, "POST", "/api/v1/cases/events", `{"num_idk":"850591"}`, "role analyst (Аналитик РТУ) may not inspection_event"},
		{analyst, "PUT", "/api/v1/nshs/mapping", `{}`, "may not nshs"},
	} {
		r := f.apiDo(nil, tc.method, tc.path, tc.tok, tc.body)
		if r.code != http.StatusForbidden || !strings.Contains(r.body, tc.want) {
			t.Errorf("%s %s: %d %q, want 403 %q", tc.method, tc.path, r.code, r.body, tc.want)
		}
	}
	if r := f.apiDo(nil, "POST", "/api/v1/reanalysis/sessions", analyst, `{"kod_to":"10216200"}`); r.code != 200 {
		t.Fatalf("analyst records a re-analysis anywhere: %d %q", r.code, r.body)
	}
}

func TestScopeOfPost(t *testing.T) {
	f := newFixture(t)
	lead, head := f.token("lead.a"), f.token("head.b")
	for _, tc := range []struct {
		name, tok, method, path, body string
		code                          int
	}{
		{"own ИДК in query", lead, "GET", "/api/v1/availability?num_idk=" + idkA, "", 200},
		{"other post's ИДК in query", lead, "GET", "/api/v1/availability?num_idk=" + idkB, "", 403},
		{"own and other ИДК in query", lead, "GET", "/api/v1/availability?num_idk=" + idkA + "&num_idk=" + idkB, "", 403},
		{"query key in other case", lead, "GET", "/api/v1/availability?num_idk=" + idkA + "&NUM_IDK=" + idkB, "", 403},
		{"own ИДК in body", lead, "POST", "/api/v1/cases/events", `{"kind":"arrival","num_idk":"850591"}`, 200},
		{"other post's ИДК in body", lead, "POST", "/api/v1/cases/events", `{"kind":"arrival","num_idk":"850592"}`, 403},
		{"body key in other case", lead, "POST", "/api/v1/cases/events", `{"num_idk":"850591","NUM_IDK":"850592"}`, 403},
		{"body key twice", lead, "POST", "/api/v1/cases/events", `{"num_idk":"850591","num_idk":"850592"}`, 403},
		{"number in body", lead, "POST", "/api/v1/cases/events", `{"num_idk":850591}`, 200},
		{"object as num_idk", lead, "POST", "/api/v1/cases/events", `{"num_idk":{"x":"850591"}}`, 400},
		{"not JSON", lead, "POST", "/api/v1/cases/events", `num_idk=850591`, 400},
		{"unknown ИДК", lead, "POST", "/api/v1/cases/events", `{"num_idk":"999999"}`, 403},
		{"empty ИДК", lead, "GET", "/api/v1/availability?num_idk=", "", 403},
		{"names nothing", lead, "GET", "/api/v1/cases", "", 403},
		{"own post", lead, "GET", "/api/v1/reports/daily?kod_to=" + postA, "", 200},
		{"other post", lead, "GET", "/api/v1/reports/daily?kod_to=" + postB, "", 403},
		{"rows of another post", head, "POST", "/api/v1/reports/entries?kod_to=" + postB, `{"table":2,"rows":[{"KOD_TO":"10216100"}]}`, 403},
		{"rows of own post", head, "POST", "/api/v1/reports/entries", `{"table":2,"rows":[{"KOD_TO":"10216200","NUM_IDK":"850592"}]}`, 200},
		// Objects named by ID: their post is not in the request.
		{"breach by ID", lead, "POST", "/api/v1/breaches/reason", `{"id":"c1","reason":"X","num_idk":"850591"}`, 403},
		{"case by ID", lead, "GET", "/api/v1/cases/c1?num_idk=" + idkA, "", 403},
		{"entry by ID", head, "PUT", "/api/v1/reports/entries/e1?kod_to=" + postB, `{"reason":"X"}`, 403},
		{"decision by case ID", head, "POST", "/api/v1/reports/item36/decision", `{"case_id":"c1","kod_to":"10216200"}`, 403},
	} {
		r := f.apiDo(nil, tc.method, tc.path, tc.tok, tc.body)
		if r.code != tc.code {
			t.Errorf("%s: %s %s %s: %d %q, want %d", tc.name, tc.method, tc.path, tc.body, r.code, r.body, tc.code)
		}
		if tc.code == 200 && !strings.HasSuffix(r.body, "|"+tc.body) {
			t.Errorf("%s: the handler got %q, want the body %q restored", tc.name, r.body, tc.body)
		}
	}
	if r := f.apiDo(nil, "GET", "/api/v1/cases", lead, ""); !strings.Contains(r.body, "must name num_idk or kod_to") {
		t.Fatalf("naming nothing: %q", r.body)
	}
	big := `{"num_idk":"850591","x":"` + strings.Repeat("a", maxScopeBody) + `"}`
	if r := f.apiDo(nil, "POST", "/api/v1/cases/events", lead, big); r.code != http.StatusRequestEntityTooLarge {
		t.Fatalf("body over 1 MiB: %d, want 413", r.code)
	}
	// Regional roles name nothing.
	if r := f.apiDo(nil, "GET", "/api/v1/cases", f.token("analyst"), ""); r.code != 200 {
		t.Fatalf("analyst: %d %q", r.code, r.body)
	}
}

func TestScopeOfDevices(t *testing.T) {
	f := newFixture(t)
	if err := f.accounts.Add(Account{Login: "lead.a1", Name: "КУЗНЕЦОВ К.К.", Role: ShiftLead, Posts: []string{postA}, Devices: []string{idkA}}, "пароль-смены-5", "test"); err != nil {
		t.Fatal(err)
	}
	tok := f.token("lead.a1")
	if r := f.apiDo(nil, "GET", "/api/v1/incidents?num_idk="+idkA, tok, ""); r.code != 200 {
		t.Fatalf("own ИДК: %d %q", r.code, r.body)
	}
	if r := f.apiDo(nil, "GET", "/api/v1/incidents?num_idk="+idkA2, tok, ""); r.code != http.StatusForbidden {
		t.Fatalf("another ИДК of the same post: %d %q, want 403", r.code, r.body)
	}
}

func TestAPIBySession(t *testing.T) {
	f := newFixture(t)
	c := f.client()
	f.signIn(c, "lead.a", leadPassword)
	csrf := f.csrf(c)
	// The jar holds the console's cookie; the API is another test server
	// on the same host, and cookies do not care about the port.
	if r := f.apiDo(c, "GET", "/api/v1/availability?num_idk="+idkA, "", ""); r.code != 200 || !strings.HasPrefix(r.body, "ПЕТРОВ П.П. (lead.a)|") {
		t.Fatalf("GET by session: %d %q", r.code, r.body)
	}
	if r := f.apiDo(c, "POST", "/api/v1/incidents/ack", "", `{"num_idk":"850591"}`); r.code != http.StatusForbidden || !strings.Contains(r.body, "CSRF") {
		t.Fatalf("POST by session without CSRF: %d %q, want 403", r.code, r.body)
	}
	req, _ := http.NewRequest("POST", f.api.URL+"/api/v1/incidents/ack", strings.NewReader(`{"num_idk":"850591"}`))
	req.Header.Set(CSRFHeader, csrf)
	if r := do(t, c, req); r.code != 200 {
		t.Fatalf("POST by session with CSRF: %d %q", r.code, r.body)
	}
}

func TestAPIAudit(t *testing.T) {
	f := newFixture(t)
	lead := f.token("lead.a")
	f.apiDo(nil, "GET", "/api/v1/availability?num_idk="+idkA, lead, "")
	f.apiDo(nil, "POST", "/api/v1/cases/events?num_idk="+idkA, lead, `{"kind":"arrival"}`)
	f.apiDo(nil, "POST", "/api/v1/incidents/ack", lead, `{"num_idk":"850592"}`)
	f.apiDo(nil, "POST", "/api/v1/incidents/ack", "nonsense", `{}`)
	if e := f.find(`^GET `); len(e) != 0 {
		t.Fatalf("GET audited: %+v", e)
	}
	e := f.find(`^POST /api/`)
	if len(e) != 3 {
		t.Fatalf("audit: %+v, want 3 POSTs", e)
	}
	want := []Entry{
		{By: "ПЕТРОВ П.П. (lead.a)", Action: "POST /api/v1/cases/events", Target: "num_idk=850591", Status: 200},
		{By: "ПЕТРОВ П.П. (lead.a)", Action: "POST /api/v1/incidents/ack", Target: "num_idk=850592", Status: 403},
		{By: "anonymous", Action: "POST /api/v1/incidents/ack", Status: 401},
	}
	for i, w := range want {
		g := e[i]
		if g.By != w.By || g.Action != w.Action || g.Target != w.Target || g.Status != w.Status || g.Remote == "" || !g.Time.Equal(start) {
			t.Errorf("entry %d: %+v, want %+v", i, g, w)
		}
	}
}
