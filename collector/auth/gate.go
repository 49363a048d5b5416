package auth

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"idk/internal/clock"
)

// CSRFField is the name of the hidden form field, and CSRFHeader of the
// header (for fetch), that carry the session's CSRF token.
const (
	CSRFField  = "csrf"
	CSRFHeader = "X-CSRF-Token"
)

// Cookie names: the session, and the sign-in form's own CSRF token (there
// is no session yet to hold one).
const (
	SessionCookie   = "idk_session"
	LoginCSRFCookie = "idk_login_csrf"
)

// Sign-in errors the console shows.
var (
	ErrBadCredentials = errors.New("неверный логин или пароль")
	ErrLocked         = errors.New("учётная запись временно заблокирована после неудачных попыток входа")
	ErrDisabled       = errors.New("учётная запись отключена")
	// ErrLoginCSRF is a sign-in whose form did not carry the token of
	// LoginCSRF: a stale page, or a form posted from another site.
	ErrLoginCSRF = errors.New("форма входа устарела: обновите страницу и войдите снова")
)

// Defaults for the Gate's zero durations and counts: config's defaults.
const (
	DefaultSessionIdle     = time.Hour
	DefaultSessionMax      = 13 * time.Hour
	DefaultLockoutFailures = 5
	DefaultLockoutFor      = 15 * time.Minute
)

// Gate lets people in: the console by session cookie, the API by bearer
// token, and checks what each may do.
//
// Build it as a struct literal and use it by pointer; its sessions and
// sign-in failures live in memory, so a restart signs everyone out.
type Gate struct {
	Accounts *Accounts
	Audit    *Audit
	Clock    clock.Clock
	Log      *slog.Logger
	// Secure marks cookies Secure: set when the console is served over HTTPS.
	Secure bool
	// SharedToken is the old shared API token (api.token_file), empty when
	// turned off; requests with it get a Person with Shared set.
	SharedToken string
	// Post names the customs body an ИДК is enrolled at, from the registry.
	Post func(numIDK string) (kodTO string, ok bool)
	// Session lifetimes and lock-out (config [console]); zero takes the
	// Default values above.
	SessionIdle, SessionMax time.Duration
	LockoutFailures         int
	LockoutFor              time.Duration

	once  sync.Once
	state *state
}

// state is what the gate keeps in memory.
type state struct {
	mu             sync.Mutex
	sessions       map[string]*session // by ID
	failures       map[string]*failures
	lastSharedWarn time.Time
	sharedUses     prometheus.Counter
}

func (g *Gate) st() *state {
	g.once.Do(func() {
		g.state = &state{
			sessions: map[string]*session{},
			failures: map[string]*failures{},
			sharedUses: prometheus.NewCounter(prometheus.CounterOpts{
				Name: "idk_collector_api_shared_token_requests_total",
				Help: "Requests to the API with the old shared token (api.token_file); it is deprecated: give each system its own token.",
			}),
		}
	})
	return g.state
}

// Collector exports the gate's metric, the count of requests with the
// shared token (idk_collector_api_shared_token_requests_total), for the
// collector's Prometheus registry.
func (g *Gate) Collector() prometheus.Collector { return g.st().sharedUses }

func (g *Gate) clock() clock.Clock { return clock.Or(g.Clock) }

func (g *Gate) log() *slog.Logger {
	if g.Log == nil {
		return slog.Default()
	}
	return g.Log
}

func (g *Gate) idle() time.Duration   { return cmpOr(g.SessionIdle, DefaultSessionIdle) }
func (g *Gate) maxAge() time.Duration { return cmpOr(g.SessionMax, DefaultSessionMax) }
func (g *Gate) lockFor() time.Duration {
	return cmpOr(g.LockoutFor, DefaultLockoutFor)
}
func (g *Gate) lockAfter() int {
	if g.LockoutFailures <= 0 {
		return DefaultLockoutFailures
	}
	return g.LockoutFailures
}

func cmpOr(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// Person returns the person the gate put into r's context.
func (g *Gate) Person(r *http.Request) (Person, bool) { return FromContext(r.Context()) }

type csrfKey struct{}

// CSRFToken is the CSRF token of the session in ctx, for the forms.
func CSRFToken(ctx context.Context) string {
	s, _ := ctx.Value(csrfKey{}).(string)
	return s
}

// safe reports whether a method only reads: everything else needs a CSRF
// token from the console and is written to the audit log.
func safe(method string) bool { return method == http.MethodGet || method == http.MethodHead }

// Record writes one entry to the audit log: who did what to which target.
// Who is the person in r's context, or "anonymous".
func (g *Gate) Record(r *http.Request, action, target, detail string) {
	g.write(Entry{By: byOf(r.Context()), Action: action, Target: target, Detail: detail, Remote: r.RemoteAddr})
}

func byOf(ctx context.Context) string {
	if p, ok := FromContext(ctx); ok {
		return p.By()
	}
	return "anonymous"
}

// write appends e to the audit log, if there is one. A failure is logged:
// the request it records has already been answered.
func (g *Gate) write(e Entry) {
	if g.Audit == nil {
		return
	}
	if err := g.Audit.Write(e); err != nil {
		g.log().Error("audit log not written", "action", e.Action, "by", e.By, "err", err)
	}
}

// statusWriter remembers the status of a response, for the audit log.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 && code >= 200 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *statusWriter) status() int {
	if w.code == 0 {
		return http.StatusOK // what net/http sends for a handler that wrote nothing
	}
	return w.code
}

// audited wraps w for a request that changes something, and returns the
// function that writes its audit line once it is answered: the method and
// path, the person (or "anonymous") and the status. For a safe request
// both are no-ops.
func (g *Gate) audited(w http.ResponseWriter, r *http.Request) (*statusWriter, func(who *Person, target string)) {
	sw := &statusWriter{ResponseWriter: w}
	if safe(r.Method) {
		return sw, func(*Person, string) {}
	}
	return sw, func(who *Person, target string) {
		by := "anonymous"
		if who != nil {
			by = who.By()
		}
		g.write(Entry{By: by, Action: r.Method + " " + r.URL.Path, Target: target, Remote: r.RemoteAddr, Status: sw.status()})
	}
}

// lookup returns the account of login as it is now, logging an accounts
// file that could not be re-read (the last good one answers).
func (g *Gate) lookup(login string) (Account, bool) {
	if g.Accounts == nil {
		return Account{}, false
	}
	acc, ok, err := g.Accounts.Get(login)
	if err != nil {
		g.log().Error("accounts file unreadable; the last good one stays in force", "file", g.Accounts.Path(), "err", err)
	}
	return acc, ok
}

// refuse answers code with msg, and for 401 says how to authenticate.
func refuse(w http.ResponseWriter, code int, msg string) {
	if code == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="idk-collector"`)
	}
	http.Error(w, msg, code)
}

// csrfOK compares a CSRF token in constant time; an empty one never passes.
func csrfOK(got, want string) bool {
	return got != "" && want != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

// refusal explains why a person may not do an action.
func refusal(p Person, a Action) string {
	return fmt.Sprintf("forbidden: role %s (%s) may not %s", p.Role, p.Role.Title(), a)
}

// trimLogin is a login as typed: spaces around it and capitals do not
// matter, as logins are lower case.
func trimLogin(s string) string { return strings.ToLower(strings.TrimSpace(s)) }
