// Package httpjson holds the few rules the collector's JSON APIs share:
// strict query parameters, strict request bodies, and how a reply is
// written. Each refusal is a 400 whose message names what is wrong.
package httpjson

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// Query returns the request's parameters after checking that each is one
// of allowed and given once: a misspelt parameter would otherwise
// silently answer for a default (today, every ИДК). On failure it has
// answered 400 and returns false.
func Query(w http.ResponseWriter, r *http.Request, allowed ...string) (url.Values, bool) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		http.Error(w, fmt.Sprintf("bad query: %v", err), http.StatusBadRequest)
		return nil, false
	}
	for name, vs := range q {
		if !slices.Contains(allowed, name) {
			http.Error(w, fmt.Sprintf("unknown parameter %q: want %s", name, strings.Join(allowed, ", ")), http.StatusBadRequest)
			return nil, false
		}
		if len(vs) > 1 {
			http.Error(w, fmt.Sprintf("parameter %s given %d times", name, len(vs)), http.StatusBadRequest)
			return nil, false
		}
	}
	return q, true
}

// Decode reads a JSON body of at most max bytes into v, refusing unknown
// fields so that a misspelt one is not silently dropped. want describes
// the body for the error message. On failure it has answered 400 and
// returns false.
func Decode(w http.ResponseWriter, r *http.Request, v any, max int64, want string) bool {
	dec := json.NewDecoder(io.LimitReader(r.Body, max))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		http.Error(w, fmt.Sprintf("bad body: want JSON %s: %v", want, err), http.StatusBadRequest)
		return false
	}
	// One value and nothing after it: a body with two objects, or with
	// garbage behind the first, is not what the client meant to send.
	if err := dec.Decode(&struct{}{}); err != io.EOF {
		http.Error(w, fmt.Sprintf("bad body: want JSON %s and nothing after it", want), http.StatusBadRequest)
		return false
	}
	return true
}

// Write sends v as JSON.
func Write(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	// The status is already sent; a failed write means the client left.
	_ = json.NewEncoder(w).Encode(v)
}
