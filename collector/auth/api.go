package auth

import (
	"context"
	"crypto/subtle"
	"net/http"
	"strings"
	"time"
)

// SharedPerson is who the old shared API token signs in as.
var SharedPerson = Person{Login: "api.token", Name: "общий токен api.token", Role: System, Shared: true}

// sharedWarnEvery bounds the warnings that the shared token is in use.
const sharedWarnEvery = time.Minute

// API guards /api/: a person's API token (or the shared token), the
// action the route needs, and for shift leads and heads of post the ИДК
// or post the request names.
//
// Mount it over the /api/ subtree only: every path it is given must be a
// route of Routes, else it is refused (403) to all but the shared token.
//
// Who asks: "Authorization: Bearer <token>" with a person's token (from
// 'idk-collector user token') or the shared token; without that header,
// the console's session cookie, for the console's own scripts, which
// must send the session's CSRF token in CSRFHeader for anything but GET
// and HEAD. Missing or wrong credentials are answered 401, a disabled
// account 403. The person is put into the request's context. Every
// request other than GET and HEAD is written to the audit log.
func (g *Gate) API(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw, done := g.audited(w, r)
		var who *Person
		var target string
		defer func() { done(who, target) }()

		p, csrf, ok := g.apiPerson(sw, r)
		if !ok {
			return
		}
		who = &p
		action, known := ActionOf(r)
		switch {
		case !known && !p.Shared:
			http.Error(sw, "forbidden: "+r.Method+" "+r.URL.Path+" is not a route of the API, or has no permission defined", http.StatusForbidden)
			return
		case known && !p.May(action):
			http.Error(sw, refusal(p, action), http.StatusForbidden)
			return
		}
		if !p.Shared && !p.Role.Regional() {
			t, code, msg := g.checkScope(r, p)
			target = t
			if code != 0 {
				http.Error(sw, msg, code)
				return
			}
		}
		ctx := WithPerson(r.Context(), p)
		if csrf != "" {
			ctx = context.WithValue(ctx, csrfKey{}, csrf)
		}
		next.ServeHTTP(sw, r.WithContext(ctx))
	})
}

// apiPerson finds who r comes from, and the CSRF token when by session.
// On failure it has answered.
func (g *Gate) apiPerson(w http.ResponseWriter, r *http.Request) (p Person, csrf string, ok bool) {
	h := r.Header.Get("Authorization")
	if h == "" {
		p, csrf, ok = g.session(r)
		if !ok {
			refuse(w, http.StatusUnauthorized, "missing API token (Authorization: Bearer <token from 'idk-collector user token'>)")
			return Person{}, "", false
		}
		if !safe(r.Method) && !csrfOK(r.Header.Get(CSRFHeader), csrf) {
			http.Error(w, "CSRF token missing or wrong", http.StatusForbidden)
			return Person{}, "", false
		}
		return p, csrf, true
	}
	scheme, token, _ := strings.Cut(h, " ")
	token = strings.TrimSpace(token)
	if !strings.EqualFold(scheme, "Bearer") || token == "" {
		refuse(w, http.StatusUnauthorized, "wrong Authorization header: want Bearer <token>")
		return Person{}, "", false
	}
	if g.Accounts != nil {
		acc, ok, err := g.Accounts.ByToken(token)
		if err != nil {
			g.log().Error("accounts file unreadable; the last good one stays in force", "file", g.Accounts.Path(), "err", err)
		}
		if ok {
			if acc.Disabled {
				http.Error(w, "forbidden: "+ErrDisabled.Error(), http.StatusForbidden)
				return Person{}, "", false
			}
			return acc.Person(), "", true
		}
	}
	if g.SharedToken != "" && subtle.ConstantTimeCompare([]byte(token), []byte(g.SharedToken)) == 1 {
		g.sharedUsed(r)
		return SharedPerson, "", true
	}
	refuse(w, http.StatusUnauthorized, "wrong API token")
	return Person{}, "", false
}

// sharedUsed counts a request with the shared token and warns, at most
// once a minute, that it should go.
func (g *Gate) sharedUsed(r *http.Request) {
	st := g.st()
	st.sharedUses.Inc()
	now := g.clock().Now()
	st.mu.Lock()
	warn := st.lastSharedWarn.IsZero() || now.Sub(st.lastSharedWarn) >= sharedWarnEvery
	if warn {
		st.lastSharedWarn = now
	}
	st.mu.Unlock()
	if warn {
		g.log().Warn("the shared API token (api.token_file) is deprecated: give each system its own account and token ('idk-collector user add -role system', 'idk-collector user token')",
			"remote", r.RemoteAddr, "path", r.URL.Path)
	}
}
