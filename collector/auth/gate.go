package auth

// CONTRACT STUB: the helper implementing package auth replaces the bodies.

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"idk/internal/clock"
)

// CSRFField is the name of the hidden form field, and CSRFHeader of the
// header (for fetch), that carry the session's CSRF token.
const (
	CSRFField  = "csrf"
	CSRFHeader = "X-CSRF-Token"
)

// Sign-in errors the console shows.
var (
	ErrBadCredentials = errors.New("неверный логин или пароль")
	ErrLocked         = errors.New("учётная запись временно заблокирована после неудачных попыток входа")
	ErrDisabled       = errors.New("учётная запись отключена")
)

// Gate lets people in: the console by session cookie, the API by bearer
// token, and checks what each may do.
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
	// Session lifetimes and lock-out (config [console]).
	SessionIdle, SessionMax time.Duration
	LockoutFailures         int
	LockoutFor              time.Duration
}

// API guards /api/: a person's API token (or the shared token), the
// action the route needs, and for shift leads and heads of post the ИДК
// or post the request names.
func (g *Gate) API(next http.Handler) http.Handler { panic("unimplemented") }

// Console guards the console's pages: a session cookie, else a redirect to
// /login; a CSRF token on every request that changes something. The
// person and the session's CSRF token are put into the request's context.
// Paths in open (the sign-in page, static files) pass without a session.
func (g *Gate) Console(next http.Handler, open ...string) http.Handler { panic("unimplemented") }

// SignIn checks login and password, and on success starts a session
// (sets its cookie on w) and returns the person.
func (g *Gate) SignIn(w http.ResponseWriter, r *http.Request, login, password string) (Person, error) {
	panic("unimplemented")
}

// SignOut ends r's session and clears its cookie.
func (g *Gate) SignOut(w http.ResponseWriter, r *http.Request) { panic("unimplemented") }

// CSRFToken is the CSRF token of the session in ctx, for the forms.
func CSRFToken(ctx context.Context) string { panic("unimplemented") }

// Record writes one entry to the audit log: who did what to which target.
func (g *Gate) Record(r *http.Request, action, target, detail string) { panic("unimplemented") }
