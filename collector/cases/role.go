package cases

import (
	"context"
	"crypto/subtle"
	"net/http"

	"idk/collector/auth"
)

// CorrectionsHeader carries the corrections token. It is a header of its
// own, beside the API's bearer token, so that a correction needs both:
// whoever holds only the shared API token cannot backdate an event, and
// so cannot withdraw a published table 4 row.
const CorrectionsHeader = "X-Corrections-Token"

type correctorKey struct{}

// Corrections grants the corrections role to the requests to next that
// carry token in CorrectionsHeader: only they may post an event older
// than the backdating window. A request with a wrong token is refused
// with 403, so that a mistyped token is found at once and not taken for
// a request without one. An empty token turns the check off and grants
// the role to every request, for tests, like the API's token.
//
// A signed-in person whose role allows corrections (auth.Correction: a
// head of post) has the role without the token; the token stays for the
// old shared API token while systems move to their own.
func Corrections(next http.Handler, token string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p, ok := auth.FromContext(r.Context()); ok && !p.Shared {
			if p.May(auth.Correction) {
				r = r.WithContext(context.WithValue(r.Context(), correctorKey{}, true))
			}
			next.ServeHTTP(w, r)
			return
		}
		got := r.Header.Get(CorrectionsHeader)
		switch {
		case token == "":
		case got == "":
			next.ServeHTTP(w, r)
			return
		case subtle.ConstantTimeCompare([]byte(got), []byte(token)) != 1:
			http.Error(w, "wrong corrections token ("+CorrectionsHeader+": the token from api.corrections_token_file)", http.StatusForbidden)
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), correctorKey{}, true)))
	})
}

// corrector reports whether r has the corrections role.
func corrector(r *http.Request) bool {
	ok, _ := r.Context().Value(correctorKey{}).(bool)
	return ok
}
