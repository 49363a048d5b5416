package auth

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// session is one signed-in browser.
type session struct {
	id      string
	login   string
	csrf    string
	created time.Time
	seen    time.Time // last request
}

// maxSessionsPerLogin bounds the sessions one person keeps: signing in
// again and again without signing out drops the oldest.
const maxSessionsPerLogin = 16

func randomHex() string {
	b := make([]byte, 32)
	rand.Read(b) // never fails since Go 1.24
	return hex.EncodeToString(b)
}

// expired reports whether s has ended at now: idle too long, or too old.
func (g *Gate) expired(s *session, now time.Time) bool {
	return now.Sub(s.seen) >= g.idle() || now.Sub(s.created) >= g.maxAge()
}

// session returns the person and CSRF token of r's session cookie. The
// person is read from the account on every request, so a change of role
// or posts applies at once; an ended session, or one whose account is gone
// or disabled, is dropped.
func (g *Gate) session(r *http.Request) (Person, string, bool) {
	c, err := r.Cookie(SessionCookie)
	if err != nil || c.Value == "" {
		return Person{}, "", false
	}
	st := g.st()
	now := g.clock().Now()
	st.mu.Lock()
	s, ok := st.sessions[c.Value]
	if ok && g.expired(s, now) {
		delete(st.sessions, s.id)
		ok = false
	}
	var login, csrf string
	if ok {
		login, csrf = s.login, s.csrf
	}
	st.mu.Unlock()
	if !ok {
		return Person{}, "", false
	}
	acc, found := g.lookup(login)
	st.mu.Lock()
	defer st.mu.Unlock()
	if !found || acc.Disabled {
		delete(st.sessions, c.Value)
		return Person{}, "", false
	}
	if st.sessions[c.Value] != s {
		return Person{}, "", false // signed out meanwhile
	}
	s.seen = now
	return acc.Person(), csrf, true
}

// startSession makes a new session for login and returns it. Expired
// sessions are swept here, as sign-ins are rare enough to pay for it.
func (g *Gate) startSession(login string, now time.Time) *session {
	st := g.st()
	st.mu.Lock()
	defer st.mu.Unlock()
	var mine []*session
	for id, s := range st.sessions {
		switch {
		case g.expired(s, now):
			delete(st.sessions, id)
		case s.login == login:
			mine = append(mine, s)
		}
	}
	if len(mine) >= maxSessionsPerLogin {
		slices.SortFunc(mine, func(a, b *session) int { return a.created.Compare(b.created) })
		for _, s := range mine[:len(mine)-maxSessionsPerLogin+1] {
			delete(st.sessions, s.id)
		}
	}
	s := &session{id: randomHex(), login: login, csrf: randomHex(), created: now, seen: now}
	st.sessions[s.id] = s
	return s
}

func (g *Gate) endSession(id string) (login string) {
	st := g.st()
	st.mu.Lock()
	defer st.mu.Unlock()
	if s, ok := st.sessions[id]; ok {
		login = s.login
		delete(st.sessions, id)
	}
	return login
}

func (g *Gate) cookie(name, value string, maxAge int) *http.Cookie {
	return &http.Cookie{Name: name, Value: value, Path: "/", MaxAge: maxAge, HttpOnly: true, Secure: g.Secure, SameSite: http.SameSiteStrictMode}
}

// LoginCSRF returns the sign-in form's CSRF token, to put into its hidden
// field CSRFField, setting it as the cookie LoginCSRFCookie if r has none.
// The login page's handler calls it on GET. There is no session before
// sign-in, so the form is protected by a double submit: SignIn accepts
// only a form whose field matches the cookie, which another site can
// neither read nor set.
func (g *Gate) LoginCSRF(w http.ResponseWriter, r *http.Request) string {
	if c, err := r.Cookie(LoginCSRFCookie); err == nil && isToken(c.Value) {
		return c.Value
	}
	t := randomHex()
	http.SetCookie(w, g.cookie(LoginCSRFCookie, t, 0))
	return t
}

// isToken reports whether s looks like randomHex's output.
func isToken(s string) bool {
	if len(s) != 64 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

// dummyHash is compared with the password of a login that has no password
// (unknown, or a system account), so that the answer takes as long as for
// a real one and does not tell which logins exist.
var dummyHash = sync.OnceValue(func() []byte {
	h, err := bcrypt.GenerateFromPassword([]byte(randomHex()), bcryptCost)
	if err != nil {
		panic(err) // only a bad cost, which is a constant
	}
	return h
})

// SignIn checks login and password, and on success starts a session
// (sets its cookie on w) and returns the person.
//
// r must be the sign-in form's POST: its field CSRFField must match the
// cookie LoginCSRF set (else ErrLoginCSRF). A login is locked for
// LockoutFor after LockoutFailures wrong passwords in a row (ErrLocked,
// even for the right password); unknown logins are counted and locked
// alike, so the answers do not tell which logins exist. Every attempt is
// written to the audit log: sign_in, sign_in_failed, sign_in_locked.
func (g *Gate) SignIn(w http.ResponseWriter, r *http.Request, login, password string) (Person, error) {
	c, err := r.Cookie(LoginCSRFCookie)
	if err != nil || !isToken(c.Value) || !csrfOK(r.PostFormValue(CSRFField), c.Value) {
		g.write(Entry{By: "anonymous", Action: "sign_in_failed", Detail: clip(login) + ": form without its CSRF token", Remote: r.RemoteAddr})
		return Person{}, ErrLoginCSRF
	}
	login = trimLogin(login)
	now := g.clock().Now()
	fail := func(action, detail string, err error) (Person, error) {
		g.write(Entry{By: "anonymous", Action: action, Detail: detail, Remote: r.RemoteAddr})
		return Person{}, err
	}
	if g.locked(login, now) {
		return fail("sign_in_locked", login, ErrLocked)
	}
	acc, ok := g.lookup(login)
	hash := []byte(acc.PasswordHash)
	if !ok || len(hash) == 0 {
		hash = dummyHash()
	}
	if bcrypt.CompareHashAndPassword(hash, []byte(password)) != nil || !ok || acc.PasswordHash == "" {
		if g.failed(login, now) {
			g.log().Warn("sign-in locked after wrong passwords", "login", clip(login), "for", g.lockFor(), "remote", r.RemoteAddr)
			g.write(Entry{By: "anonymous", Action: "sign_in_locked", Detail: login, Remote: r.RemoteAddr})
		}
		return fail("sign_in_failed", login, ErrBadCredentials)
	}
	if acc.Disabled {
		return fail("sign_in_failed", login+": account disabled", ErrDisabled)
	}
	g.succeeded(login)
	// A new ID at every sign-in: a session ID planted before it (session
	// fixation) never becomes a signed-in one.
	if old, err := r.Cookie(SessionCookie); err == nil {
		g.endSession(old.Value)
	}
	s := g.startSession(login, now)
	http.SetCookie(w, g.cookie(SessionCookie, s.id, 0))
	http.SetCookie(w, g.cookie(LoginCSRFCookie, "", -1))
	p := acc.Person()
	g.write(Entry{By: p.By(), Action: "sign_in", Remote: r.RemoteAddr})
	return p, nil
}

// SignOut ends r's session and clears its cookie. The console calls it
// from a POST (through Console, so with the CSRF token).
func (g *Gate) SignOut(w http.ResponseWriter, r *http.Request) {
	c, err := r.Cookie(SessionCookie)
	http.SetCookie(w, g.cookie(SessionCookie, "", -1))
	if err != nil {
		return
	}
	login := g.endSession(c.Value)
	if login == "" {
		return
	}
	by := login
	if p, ok := FromContext(r.Context()); ok {
		by = p.By()
	} else if acc, ok := g.lookup(login); ok {
		by = acc.Person().By()
	}
	g.write(Entry{By: by, Action: "sign_out", Remote: r.RemoteAddr})
}

// Console guards the console's pages: a session cookie, else a redirect to
// /login; a CSRF token on every request that changes something. The
// person and the session's CSRF token are put into the request's context.
// Paths in open (the sign-in page, static files) pass without a session.
//
// An entry of open is an exact path ("/login") or, ending in "/", every
// path under it ("/static/"). On an open path a valid session still puts
// its person into the context, but no CSRF token is checked: the sign-in
// form has its own (LoginCSRF). Without a session a GET or HEAD is
// redirected (303) to /login?next=<the path asked for>, anything else is
// answered 401. Every response carries headers that keep the console out
// of frames and caches and limit what its pages may load; every request
// other than GET and HEAD is written to the audit log with its status.
func (g *Gate) Console(next http.Handler, open ...string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Frame-Options", "DENY")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'")
		h.Set("Referrer-Policy", "same-origin")
		h.Set("Cache-Control", "no-store")
		sw, done := g.audited(w, r)
		p, csrf, ok := g.session(r)
		var who *Person
		if ok {
			who = &p
		}
		defer func() { done(who, "") }()
		if isOpen(r.URL.Path, open) {
			if ok {
				r = r.WithContext(context.WithValue(WithPerson(r.Context(), p), csrfKey{}, csrf))
			}
			next.ServeHTTP(sw, r)
			return
		}
		if !ok {
			if safe(r.Method) {
				http.Redirect(sw, r, "/login?next="+url.QueryEscape(SafeNext(r.URL.RequestURI())), http.StatusSeeOther)
				return
			}
			http.Error(sw, "not signed in, or the session has ended: sign in again", http.StatusUnauthorized)
			return
		}
		if !safe(r.Method) {
			got := r.Header.Get(CSRFHeader)
			if got == "" {
				got = r.PostFormValue(CSRFField)
			}
			if !csrfOK(got, csrf) {
				http.Error(sw, "CSRF token missing or wrong", http.StatusForbidden)
				return
			}
		}
		next.ServeHTTP(sw, r.WithContext(context.WithValue(WithPerson(r.Context(), p), csrfKey{}, csrf)))
	})
}

// isOpen reports whether path is one of open: equal to an entry, or under
// one that ends in "/".
func isOpen(path string, open []string) bool {
	for _, o := range open {
		if path == o || strings.HasSuffix(o, "/") && strings.HasPrefix(path, o) {
			return true
		}
	}
	return false
}

// SafeNext returns next if it is a path of this site ("/cases?open=1"),
// else "/": where to go after sign-in must never be another site
// ("//evil.example", "https://...", "/\\evil.example").
func SafeNext(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") ||
		strings.ContainsFunc(next, func(r rune) bool { return r < 0x20 || r == 0x7f || r == '\\' }) {
		return "/"
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil {
		return "/"
	}
	return next
}
