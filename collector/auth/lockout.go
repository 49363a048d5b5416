package auth

import "time"

// failures counts one login's wrong passwords in a row.
type failures struct {
	count int
	first time.Time // of this run of failures
	until time.Time // locked until then, when not zero
}

// maxFailureKeys bounds the logins counted at once: unknown logins are
// counted too, and whoever sends them must not fill the memory. Past it,
// the runs that can no longer lock anything are forgotten.
const maxFailureKeys = 10000

// failureKey is the login failures are counted under; a login longer
// than any valid one is cut, so a flood of long names costs little.
func failureKey(login string) string {
	if len(login) > 64 {
		return login[:64]
	}
	return login
}

// locked reports whether login is locked at now.
func (g *Gate) locked(login string, now time.Time) bool {
	st := g.st()
	st.mu.Lock()
	defer st.mu.Unlock()
	f, ok := st.failures[failureKey(login)]
	return ok && now.Before(f.until)
}

// failed counts a wrong password for login and reports whether it locked
// the login. A run older than LockoutFor starts again: failures are
// counted "in a row within LockoutFor".
func (g *Gate) failed(login string, now time.Time) bool {
	st := g.st()
	st.mu.Lock()
	defer st.mu.Unlock()
	key := failureKey(login)
	f, ok := st.failures[key]
	if !ok || !f.until.IsZero() && !now.Before(f.until) || now.Sub(f.first) >= g.lockFor() {
		if !ok && len(st.failures) >= maxFailureKeys {
			g.forgetLocked(now)
		}
		f = &failures{first: now}
		st.failures[key] = f
	}
	f.count++
	if f.count >= g.lockAfter() {
		f.until = now.Add(g.lockFor())
		return true
	}
	return false
}

// succeeded clears login's failures.
func (g *Gate) succeeded(login string) {
	st := g.st()
	st.mu.Lock()
	delete(st.failures, failureKey(login))
	st.mu.Unlock()
}

// forgetLocked drops the runs that neither lock now nor can lead to a
// lock any more. st.mu is held.
func (g *Gate) forgetLocked(now time.Time) {
	st := g.st()
	for k, f := range st.failures {
		if !now.Before(f.until) && now.Sub(f.first) >= g.lockFor() {
			delete(st.failures, k)
		}
	}
}
