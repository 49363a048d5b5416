package cases

import (
	"context"
	"crypto/subtle"
	"net/http"
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
// The role stands in for the accounts of the console, which will give it
// to the people allowed to correct.
func Corrections(next http.Handler, token string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
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
