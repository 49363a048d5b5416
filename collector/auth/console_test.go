package auth

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestSignInAndOut(t *testing.T) {
	f := newFixture(t)
	c := f.client()

	r := f.get(c, "/whoami")
	if r.code != http.StatusSeeOther || r.resp.Header.Get("Location") != "/login?next=%2Fwhoami" {
		t.Fatalf("without a session: %d Location %q, want 303 to /login?next=%%2Fwhoami", r.code, r.resp.Header.Get("Location"))
	}
	if r := f.post(c, "/change", nil); r.code != http.StatusUnauthorized {
		t.Fatalf("POST without a session: %d, want 401", r.code)
	}

	r = f.signIn(c, " Lead.A ", leadPassword)
	if r.code != http.StatusSeeOther || r.resp.Header.Get("Location") != "/whoami" {
		t.Fatalf("sign-in: %d %q Location %q", r.code, r.body, r.resp.Header.Get("Location"))
	}
	var sc *http.Cookie
	for _, ck := range r.resp.Cookies() {
		if ck.Name == SessionCookie {
			sc = ck
		}
	}
	if sc == nil || !sc.HttpOnly || sc.SameSite != http.SameSiteStrictMode || sc.Path != "/" || len(sc.Value) != 64 {
		t.Fatalf("session cookie %+v: want HttpOnly, SameSite=Strict, Path=/, a 32-byte hex ID", sc)
	}
	r = f.get(c, "/whoami")
	if r.code != 200 || !strings.HasPrefix(r.body, "ПЕТРОВ П.П. (lead.a)|shift_lead|") || len(strings.Split(r.body, "|")[2]) != 64 {
		t.Fatalf("whoami: %d %q", r.code, r.body)
	}
	for h, want := range map[string]string{
		"X-Frame-Options":         "DENY",
		"X-Content-Type-Options":  "nosniff",
		"Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'",
		"Referrer-Policy":         "same-origin",
		"Cache-Control":           "no-store",
	} {
		if got := r.resp.Header.Get(h); got != want {
			t.Errorf("%s: %q, want %q", h, got, want)
		}
	}

	csrf := f.csrf(c)
	if r := f.post(c, "/logout", url.Values{CSRFField: {csrf}}); r.code != 200 {
		t.Fatalf("sign-out: %d %q", r.code, r.body)
	}
	if r := f.get(c, "/whoami"); r.code != http.StatusSeeOther {
		t.Fatalf("after sign-out: %d, want 303", r.code)
	}
	in, out := f.find(`^sign_in$`), f.find(`^sign_out$`)
	if len(in) != 1 || in[0].By != "ПЕТРОВ П.П. (lead.a)" || len(out) != 1 || out[0].By != "ПЕТРОВ П.П. (lead.a)" {
		t.Fatalf("audit: sign_in %+v, sign_out %+v", in, out)
	}
	if e := f.find(`^POST /logout$`); len(e) != 1 || e[0].Status != 200 || e[0].Remote == "" {
		t.Fatalf("audit of POST /logout: %+v", e)
	}
	if e := f.find(`^POST /change$`); len(e) != 1 || e[0].Status != 401 || e[0].By != "anonymous" {
		t.Fatalf("audit of the refused POST /change: %+v", e)
	}
}

func TestWrongPasswordAndUnknownLogin(t *testing.T) {
	f := newFixture(t)
	c := f.client()
	for _, tc := range []struct{ login, pw string }{{"lead.a", "не-тот-пароль"}, {"nobody", leadPassword}, {"docs", ""}} {
		r := f.signIn(c, tc.login, tc.pw)
		if r.code != http.StatusUnauthorized || !strings.Contains(r.body, ErrBadCredentials.Error()) {
			t.Errorf("%s: %d %q, want 401 %q", tc.login, r.code, r.body, ErrBadCredentials)
		}
	}
	e := f.find(`^sign_in_failed$`)
	if len(e) != 3 || e[0].By != "anonymous" || e[0].Detail != "lead.a" || e[1].Detail != "nobody" {
		t.Fatalf("audit: %+v", e)
	}
}

func TestLoginCSRF(t *testing.T) {
	f := newFixture(t)
	c := f.client()
	form := url.Values{"login": {"lead.a"}, "password": {leadPassword}}
	// No cookie, no field.
	if r := f.post(c, "/login", form); r.code != http.StatusUnauthorized || !strings.Contains(r.body, ErrLoginCSRF.Error()) {
		t.Fatalf("without the login token: %d %q", r.code, r.body)
	}
	token := f.get(c, "/login").body
	if again := f.get(c, "/login").body; again != token {
		t.Fatalf("login token changed while its cookie is there: %q, %q", token, again)
	}
	// The cookie, but a field another site would have to guess.
	form.Set(CSRFField, strings.Repeat("0", 64))
	if r := f.post(c, "/login", form); r.code != http.StatusUnauthorized || !strings.Contains(r.body, ErrLoginCSRF.Error()) {
		t.Fatalf("wrong login token: %d %q", r.code, r.body)
	}
	form.Set(CSRFField, token)
	if r := f.post(c, "/login", form); r.code != http.StatusSeeOther {
		t.Fatalf("right login token: %d %q", r.code, r.body)
	}
}

func TestCSRF(t *testing.T) {
	f := newFixture(t)
	c := f.client()
	f.signIn(c, "lead.a", leadPassword)
	csrf := f.csrf(c)

	if r := f.post(c, "/change", nil); r.code != http.StatusForbidden || !strings.Contains(r.body, "CSRF token missing or wrong") {
		t.Fatalf("no token: %d %q", r.code, r.body)
	}
	if r := f.post(c, "/change", url.Values{CSRFField: {strings.Repeat("a", 64)}}); r.code != http.StatusForbidden {
		t.Fatalf("wrong token: %d %q", r.code, r.body)
	}
	if r := f.post(c, "/change", url.Values{CSRFField: {csrf}}); r.code != 200 || r.body != "changed by ПЕТРОВ П.П. (lead.a)" {
		t.Fatalf("right token in the form: %d %q", r.code, r.body)
	}
	req, _ := http.NewRequest("POST", f.console.URL+"/change", nil)
	req.Header.Set(CSRFHeader, csrf)
	if r := do(t, c, req); r.code != 200 {
		t.Fatalf("right token in the header: %d %q", r.code, r.body)
	}
	// Another browser's session has another token.
	c2 := f.client()
	f.signIn(c2, "lead.a", leadPassword)
	if r := f.post(c2, "/change", url.Values{CSRFField: {csrf}}); r.code != http.StatusForbidden {
		t.Fatalf("another session's token: %d, want 403", r.code)
	}
	e := f.find(`^POST /change$`)
	if len(e) != 5 || e[0].Status != 403 || e[2].Status != 200 || e[0].By != "ПЕТРОВ П.П. (lead.a)" {
		t.Fatalf("audit: %+v", e)
	}
}

func TestSessionIdleTimeout(t *testing.T) {
	f := newFixture(t)
	c := f.client()
	f.signIn(c, "lead.a", leadPassword)
	for range 3 {
		f.clk.Advance(59 * time.Minute) // each request keeps the session alive
		if r := f.get(c, "/whoami"); r.code != 200 {
			t.Fatalf("after 59 idle minutes: %d, want 200", r.code)
		}
	}
	f.clk.Advance(time.Hour)
	if r := f.get(c, "/whoami"); r.code != http.StatusSeeOther {
		t.Fatalf("after an idle hour: %d, want 303 to sign in", r.code)
	}
}

func TestSessionMaxAge(t *testing.T) {
	f := newFixture(t)
	c := f.client()
	f.signIn(c, "lead.a", leadPassword)
	elapsed := time.Duration(0)
	for elapsed+50*time.Minute < 13*time.Hour {
		f.clk.Advance(50 * time.Minute)
		elapsed += 50 * time.Minute
		if r := f.get(c, "/whoami"); r.code != 200 {
			t.Fatalf("after %v of use: %d, want 200", elapsed, r.code)
		}
	}
	f.clk.Advance(13*time.Hour - elapsed)
	if r := f.get(c, "/whoami"); r.code != http.StatusSeeOther {
		t.Fatalf("after 13 h of use: %d, want 303 to sign in", r.code)
	}
}

func TestLockout(t *testing.T) {
	f := newFixture(t)
	c := f.client()
	// Two failures, then success: the count starts again.
	f.signIn(c, "lead.a", "не-тот-пароль")
	f.signIn(c, "lead.a", "не-тот-пароль")
	if r := f.signIn(c, "lead.a", leadPassword); r.code != http.StatusSeeOther {
		t.Fatalf("after 2 failures: %d %q, want signed in", r.code, r.body)
	}
	for range 3 {
		f.signIn(c, "lead.a", "не-тот-пароль")
	}
	r := f.signIn(c, "lead.a", leadPassword)
	if r.code != http.StatusUnauthorized || !strings.Contains(r.body, ErrLocked.Error()) {
		t.Fatalf("right password while locked: %d %q, want %q", r.code, r.body, ErrLocked)
	}
	f.clk.Advance(14 * time.Minute)
	if r := f.signIn(c, "lead.a", leadPassword); !strings.Contains(r.body, ErrLocked.Error()) {
		t.Fatalf("14 minutes later: %d %q, want still locked", r.code, r.body)
	}
	f.clk.Advance(time.Minute)
	if r := f.signIn(c, "lead.a", leadPassword); r.code != http.StatusSeeOther {
		t.Fatalf("after lockout_for: %d %q, want signed in", r.code, r.body)
	}
	// Unknown logins lock alike, so the answers tell nothing.
	for range 3 {
		f.signIn(c, "nobody", "что-угодно-123")
	}
	if r := f.signIn(c, "nobody", "что-угодно-123"); !strings.Contains(r.body, ErrLocked.Error()) {
		t.Fatalf("unknown login after 3 failures: %q, want %q", r.body, ErrLocked)
	}
	if e := f.find(`^sign_in_locked$`); len(e) < 4 || e[0].By != "anonymous" || e[0].Detail != "lead.a" {
		t.Fatalf("audit sign_in_locked: %+v", e)
	}
}

func TestFailuresSpreadOutDoNotLock(t *testing.T) {
	f := newFixture(t)
	c := f.client()
	for range 5 {
		f.signIn(c, "lead.a", "не-тот-пароль")
		f.clk.Advance(8 * time.Minute) // two fit in 15 minutes, never three
	}
	if r := f.signIn(c, "lead.a", leadPassword); r.code != http.StatusSeeOther {
		t.Fatalf("%d %q: failures further apart than lockout_for must not lock", r.code, r.body)
	}
}

func TestDisabledAtNextRequest(t *testing.T) {
	f := newFixture(t)
	c := f.client()
	f.signIn(c, "lead.a", leadPassword)
	tok := f.token("lead.a")
	if r := f.apiDo(nil, "GET", "/api/v1/files?num_idk="+idkA, tok, ""); r.code != 200 {
		t.Fatalf("token before: %d %q", r.code, r.body)
	}
	// The command line, another process, disables the account.
	other, err := OpenAccounts(f.accounts.Path(), f.clk)
	if err != nil {
		t.Fatal(err)
	}
	if err := other.SetDisabled("lead.a", true, "cli:admin"); err != nil {
		t.Fatal(err)
	}
	f.clk.Advance(2 * time.Second) // the file is looked at every 2 s
	if r := f.get(c, "/whoami"); r.code != http.StatusSeeOther {
		t.Fatalf("session of a disabled account: %d %q, want 303 to sign in", r.code, r.body)
	}
	if r := f.apiDo(nil, "GET", "/api/v1/files?num_idk="+idkA, tok, ""); r.code != http.StatusForbidden {
		t.Fatalf("token of a disabled account: %d %q, want 403", r.code, r.body)
	}
	if r := f.signIn(c, "lead.a", leadPassword); !strings.Contains(r.body, ErrDisabled.Error()) {
		t.Fatalf("sign-in of a disabled account: %d %q, want %q", r.code, r.body, ErrDisabled)
	}
	// Enabled again: a new sign-in works, the old session stays ended.
	if err := other.SetDisabled("lead.a", false, "cli:admin"); err != nil {
		t.Fatal(err)
	}
	f.clk.Advance(2 * time.Second)
	if r := f.apiDo(nil, "GET", "/api/v1/files?num_idk="+idkA, tok, ""); r.code != 200 {
		t.Fatalf("token after enabling: %d %q", r.code, r.body)
	}
}

func TestRoleChangeAppliesToSession(t *testing.T) {
	f := newFixture(t)
	c := f.client()
	f.signIn(c, "lead.a", leadPassword)
	// The account changes (as an admin would change it): lead.a becomes
	// a head of post, and the session sees it at its next request.
	err := f.accounts.change(func(l []Account, now time.Time) ([]Account, Entry, error) {
		l[find(l, "lead.a")].Role = HeadOfPost
		return l, Entry{By: "test", Action: "user_change", Target: "lead.a"}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if r := f.get(c, "/whoami"); !strings.Contains(r.body, "|head_of_post|") {
		t.Fatalf("whoami after the change: %q, want head_of_post", r.body)
	}
}

func TestSecureCookies(t *testing.T) {
	g := &Gate{Secure: true}
	w := httptest.NewRecorder()
	g.LoginCSRF(w, httptest.NewRequest("GET", "/login", nil))
	cs := w.Result().Cookies()
	if len(cs) != 1 || cs[0].Name != LoginCSRFCookie || !cs[0].Secure || !cs[0].HttpOnly || cs[0].SameSite != http.SameSiteStrictMode {
		t.Fatalf("login CSRF cookie over HTTPS: %+v", cs)
	}
}

func TestSafeNext(t *testing.T) {
	for in, want := range map[string]string{
		"/cases?open=1":          "/cases?open=1",
		"":                       "/",
		"//evil.example/":        "/",
		"/\\evil.example":        "/",
		"https://evil.example/":  "/",
		"/ok/../x":               "/ok/../x",
		"/a\r\nLocation: //evil": "/",
	} {
		if got := SafeNext(in); got != want {
			t.Errorf("SafeNext(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestOpenPaths(t *testing.T) {
	for _, tc := range []struct {
		path string
		want bool
	}{{"/login", true}, {"/login/x", false}, {"/loginx", false}, {"/static/app.css", true}, {"/static", false}, {"/", false}} {
		if got := isOpen(tc.path, []string{"/login", "/static/"}); got != tc.want {
			t.Errorf("isOpen(%q) = %t, want %t", tc.path, got, tc.want)
		}
	}
}
