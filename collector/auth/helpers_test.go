package auth

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"idk/internal/testenv"
	"idk/simulator/simclock"
)

func TestMain(m *testing.M) {
	// Real bcrypt, at its lowest cost, so the tests run in seconds.
	bcryptCost = bcrypt.MinCost
	os.Exit(m.Run())
}

var start = time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC)

const (
	postA = "10216100"
	postB = "10216200"
	idkA  = "850591" // enrolled at post A
	idkA2 = "850593" // enrolled at post A
	idkB  = "850592" // enrolled at post B

	leadPassword = "смена-пароль-1"
	headPassword = "начальник-пароль-2"
)

type fixture struct {
	t        *testing.T
	dir      string
	clk      *simclock.Clock
	accounts *Accounts
	audit    *Audit
	gate     *Gate
	console  *httptest.Server
	api      *httptest.Server
	log      *testenv.LogBuffer
}

// newFixture makes an accounts file with a shift lead of post A
// ("lead.a"), a head of post B ("head.b"), an analyst and a system, and
// serves the real Gate: the console (a sign-in page and two pages) and
// the API (a handler echoing who asked and the body it got).
func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{t: t, dir: t.TempDir(), clk: simclock.New(start), log: &testenv.LogBuffer{}}
	var err error
	f.accounts, err = OpenAccounts(filepath.Join(f.dir, "accounts.json"), f.clk)
	if err != nil {
		t.Fatal(err)
	}
	f.audit, err = OpenAudit(filepath.Join(f.dir, "audit.jsonl"), f.clk)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.audit.Close() })
	f.accounts.UseAudit(f.audit)
	for _, a := range []struct {
		acc Account
		pw  string
	}{
		{Account{Login: "lead.a", Name: "ПЕТРОВ П.П.", Role: ShiftLead, Posts: []string{postA}}, leadPassword},
		{Account{Login: "head.b", Name: "СИДОРОВ С.С.", Role: HeadOfPost, Posts: []string{postB}}, headPassword},
		{Account{Login: "analyst", Name: "ИВАНОВА И.И.", Role: Analyst}, "аналитик-пароль-3"},
		{Account{Login: "docs", Name: "КПС «Документы»", Role: System}, ""},
	} {
		if err := f.accounts.Add(a.acc, a.pw, "test"); err != nil {
			t.Fatalf("add %s: %v", a.acc.Login, err)
		}
	}
	posts := map[string]string{idkA: postA, idkA2: postA, idkB: postB}
	f.gate = &Gate{
		Accounts: f.accounts, Audit: f.audit, Clock: f.clk,
		Log:         slog.New(slog.NewTextHandler(f.log, nil)),
		SharedToken: "shared-secret-token",
		Post: func(n string) (string, bool) {
			k, ok := posts[n]
			return k, ok
		},
		SessionIdle: time.Hour, SessionMax: 13 * time.Hour,
		LockoutFailures: 3, LockoutFor: 15 * time.Minute,
	}

	mux := http.NewServeMux()
	mux.HandleFunc("GET /login", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, f.gate.LoginCSRF(w, r))
	})
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		if _, err := f.gate.SignIn(w, r, r.PostFormValue("login"), r.PostFormValue("password")); err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		http.Redirect(w, r, SafeNext(r.PostFormValue("next")), http.StatusSeeOther)
	})
	mux.HandleFunc("POST /logout", func(w http.ResponseWriter, r *http.Request) {
		f.gate.SignOut(w, r)
		io.WriteString(w, "bye")
	})
	mux.HandleFunc("GET /whoami", func(w http.ResponseWriter, r *http.Request) {
		p, _ := f.gate.Person(r)
		fmt.Fprintf(w, "%s|%s|%s", p.By(), p.Role, CSRFToken(r.Context()))
	})
	mux.HandleFunc("POST /change", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "changed by "+By(r, ""))
	})
	f.console = httptest.NewServer(f.gate.Console(mux, "/login", "/static/"))
	t.Cleanup(f.console.Close)

	f.api = httptest.NewServer(f.gate.API(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, ok := FromContext(r.Context())
		body, _ := io.ReadAll(r.Body)
		if !ok {
			http.Error(w, "no person in context", http.StatusInternalServerError)
			return
		}
		fmt.Fprintf(w, "%s|%t|%s", p.By(), p.Shared, body)
	})))
	t.Cleanup(f.api.Close)
	return f
}

// client is a browser: it keeps cookies and does not follow redirects.
func (f *fixture) client() *http.Client {
	jar, err := cookiejar.New(nil)
	if err != nil {
		f.t.Fatal(err)
	}
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

type reply struct {
	code int
	body string
	resp *http.Response
}

func do(t *testing.T, c *http.Client, req *http.Request) reply {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return reply{resp.StatusCode, string(b), resp}
}

func (f *fixture) get(c *http.Client, path string) reply {
	f.t.Helper()
	req, _ := http.NewRequest("GET", f.console.URL+path, nil)
	return do(f.t, c, req)
}

// post sends a form to the console; csrf, if not empty, goes in the form.
func (f *fixture) post(c *http.Client, path string, form url.Values) reply {
	f.t.Helper()
	req, _ := http.NewRequest("POST", f.console.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return do(f.t, c, req)
}

// signIn signs c in through the login form.
func (f *fixture) signIn(c *http.Client, login, password string) reply {
	f.t.Helper()
	token := f.get(c, "/login").body
	return f.post(c, "/login", url.Values{"login": {login}, "password": {password}, CSRFField: {token}, "next": {"/whoami"}})
}

// csrf returns the session's CSRF token, as a page would show it.
func (f *fixture) csrf(c *http.Client) string {
	f.t.Helper()
	r := f.get(c, "/whoami")
	if r.code != 200 {
		f.t.Fatalf("whoami: %d %s", r.code, r.body)
	}
	return strings.Split(r.body, "|")[2]
}

// apiDo calls the API with a bearer token (none if empty).
func (f *fixture) apiDo(c *http.Client, method, path, token, body string) reply {
	f.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, f.api.URL+path, rd)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if c == nil {
		c = http.DefaultClient
	}
	return do(f.t, c, req)
}

// entries returns every line of the audit log.
func (f *fixture) entries() []Entry {
	f.t.Helper()
	data, err := os.ReadFile(f.audit.Path())
	if err != nil {
		f.t.Fatal(err)
	}
	var out []Entry
	for line := range strings.Lines(string(data)) {
		var e Entry
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			f.t.Fatalf("audit line %q: %v", line, err)
		}
		out = append(out, e)
	}
	return out
}

// find returns the audit entries whose action matches re.
func (f *fixture) find(re string) []Entry {
	var out []Entry
	for _, e := range f.entries() {
		if regexp.MustCompile(re).MatchString(e.Action) {
			out = append(out, e)
		}
	}
	return out
}

func (f *fixture) token(login string) string {
	f.t.Helper()
	tok, err := f.accounts.NewToken(login, "test", "test")
	if err != nil {
		f.t.Fatal(err)
	}
	return tok
}
