package auth

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// maxScopeBody bounds the body the gate reads to find what a request
// names; every handler's own limit is lower.
const maxScopeBody = 1 << 20

// maxJSONDepth bounds the nesting of a body the gate walks.
const maxJSONDepth = 64

// errNamesNothing refuses a request of a post's person that names no ИДК
// and no post: the gate could not tell whether it reaches another post.
const errNamesNothing = "forbidden: a shift lead's or head of post's token must name num_idk or kod_to of their post; use the console for the rest"

// checkScope checks that r names only ИДК and posts p may see: every
// num_idk and kod_to of the query, and every field of a JSON body named
// so (in any letter case, at any depth: the officers' rows carry KOD_TO
// and NUM_IDK), must be p's. It returns what r names, for the audit log,
// and on refusal a status and message. r.Body is read and put back.
//
// A route that takes an object by its ID (a case, an entry, an НШС) is
// checked only by what the request names besides: the handler knows the
// object's post and should check Person.Sees itself.
func (g *Gate) checkScope(r *http.Request, p Person) (target string, code int, msg string) {
	if _, pattern := routeTable().Handler(r); addressedByID(pattern) {
		return "", http.StatusForbidden, fmt.Sprintf("forbidden: %s addresses a case, entry or incident by its ID, whose post the API does not check for a %s: use the console, which does", pattern, p.Role.Title())
	}
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return "", http.StatusBadRequest, fmt.Sprintf("bad query: %v", err)
	}
	var numIDK, kodTO []string
	for k, vs := range q {
		switch {
		case strings.EqualFold(k, "num_idk"):
			numIDK = append(numIDK, vs...)
		case strings.EqualFold(k, "kod_to"):
			kodTO = append(kodTO, vs...)
		}
	}
	if r.Body != nil && r.Body != http.NoBody {
		data, err := io.ReadAll(io.LimitReader(r.Body, maxScopeBody+1))
		if err != nil {
			return "", http.StatusBadRequest, fmt.Sprintf("bad body: %v", err)
		}
		if len(data) > maxScopeBody {
			return "", http.StatusRequestEntityTooLarge, fmt.Sprintf("body larger than %d bytes", maxScopeBody)
		}
		r.Body = io.NopCloser(bytes.NewReader(data))
		if len(bytes.TrimSpace(data)) > 0 {
			n, k, err := jsonNames(data)
			if err != nil {
				return "", http.StatusBadRequest, fmt.Sprintf("bad body: want JSON: %v", err)
			}
			numIDK, kodTO = append(numIDK, n...), append(kodTO, k...)
		}
	}
	if len(numIDK) == 0 && len(kodTO) == 0 {
		return "", http.StatusForbidden, errNamesNothing
	}
	var names []string
	for _, n := range numIDK {
		names = append(names, "num_idk="+n)
		kod, ok := "", false
		if g.Post != nil && n != "" {
			kod, ok = g.Post(n)
		}
		if !ok {
			return strings.Join(names, " "), http.StatusForbidden, fmt.Sprintf("forbidden: num_idk %q is not an enrolled ИДК", n)
		}
		if !p.Sees(kod, n) {
			return strings.Join(names, " "), http.StatusForbidden, fmt.Sprintf("forbidden: ИДК %s (post %s) is not one %s may see", n, kod, p.By())
		}
	}
	for _, k := range kodTO {
		names = append(names, "kod_to="+k)
		if !p.SeesPost(k) {
			return strings.Join(names, " "), http.StatusForbidden, fmt.Sprintf("forbidden: post %q is not one %s may see", k, p.By())
		}
	}
	return strings.Join(names, " "), 0, ""
}

// jsonNames returns the values of every field num_idk and kod_to (in any
// letter case: encoding/json matches a struct's fields so) in a JSON
// body, at any depth, duplicates included. A value that is not a string
// or a number is an error: the gate could not check it.
func jsonNames(data []byte) (numIDK, kodTO []string, err error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	scalar := func(key string) (string, error) {
		tok, err := dec.Token()
		if err != nil {
			return "", err
		}
		switch v := tok.(type) {
		case string:
			return v, nil
		case json.Number:
			return v.String(), nil
		case nil:
			return "", nil // checked as empty, and so refused
		}
		return "", fmt.Errorf("%s: want a string", key)
	}
	var walk func(depth int) error
	walk = func(depth int) error {
		if depth > maxJSONDepth {
			return errors.New("nested too deep")
		}
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		d, ok := tok.(json.Delim)
		if !ok {
			return nil // a scalar
		}
		for dec.More() {
			if d == '{' {
				kt, err := dec.Token()
				if err != nil {
					return err
				}
				key, _ := kt.(string)
				switch {
				case strings.EqualFold(key, "num_idk"):
					v, err := scalar(key)
					if err != nil {
						return err
					}
					numIDK = append(numIDK, v)
					continue
				case strings.EqualFold(key, "kod_to"):
					v, err := scalar(key)
					if err != nil {
						return err
					}
					kodTO = append(kodTO, v)
					continue
				}
			}
			if err := walk(depth + 1); err != nil {
				return err
			}
		}
		_, err = dec.Token() // the closing delimiter
		return err
	}
	if err := walk(0); err != nil {
		return nil, nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, nil, errors.New("more after the JSON value")
	}
	return numIDK, kodTO, nil
}

// addressedByID reports whether a route names its object by an ID, not by
// the ИДК or post it belongs to: the gate cannot tell from the request
// whether a post's account may touch it, so such routes are for regional
// accounts; a post's people use the console, which looks the object up.
func addressedByID(pattern string) bool {
	return strings.Contains(pattern, "{id}") ||
		pattern == "POST /api/v1/breaches/reason" || pattern == "POST /api/v1/reports/item36/decision"
}
