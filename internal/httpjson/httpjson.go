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

// Query returns the request's parameters after checking them with
// CheckQuery. On failure it has answered 400 and returns false.
func Query(w http.ResponseWriter, r *http.Request, allowed ...string) (url.Values, bool) {
	q, err := CheckQuery(r, allowed...)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return nil, false
	}
	return q, true
}

// CheckQuery returns the request's parameters after checking that each
// is one of allowed and given once: a misspelt parameter would otherwise
// silently answer for a default (today, every ИДК). The error names the
// parameter; an API that answers errors as JSON writes it its own way.
func CheckQuery(r *http.Request, allowed ...string) (url.Values, error) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, fmt.Errorf("bad query: %w", err)
	}
	for name, vs := range q {
		if !slices.Contains(allowed, name) {
			want := "no parameters"
			if len(allowed) > 0 {
				want = strings.Join(allowed, ", ")
			}
			return nil, fmt.Errorf("unknown parameter %q: want %s", name, want)
		}
		if len(vs) > 1 {
			return nil, fmt.Errorf("parameter %s given %d times", name, len(vs))
		}
	}
	return q, nil
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
