package auth

import (
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// handlerRoutes reads every API route the collector's handlers register
// or document: "METHOD /api/..." in a HandleFunc or Handle call, and in
// the doc comments' route lists ("//	GET  /api/v1/...?query"). A route
// added to a handler without a line in Routes fails TestRoutesCoverHandlers.
func handlerRoutes(t *testing.T) map[string]string {
	t.Helper()
	registered := regexp.MustCompile(`Handle(?:Func)?\("((?:GET|POST|PUT|PATCH|DELETE) /api/[^"]*)"`)
	documented := regexp.MustCompile(`(?m)^//\s+(GET|POST|PUT|PATCH|DELETE)\s+(/api/[^\s?\[]*)`)
	files, err := filepath.Glob("../*/*.go")
	if err != nil {
		t.Fatal(err)
	}
	more, _ := filepath.Glob("../*/*/*.go")
	files = append(files, more...)
	routes := map[string]string{} // pattern → file
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") || strings.HasPrefix(name, "../auth/") {
			continue
		}
		src, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range registered.FindAllStringSubmatch(string(src), -1) {
			routes[strings.Join(strings.Fields(m[1]), " ")] = name
		}
		for _, m := range documented.FindAllStringSubmatch(string(src), -1) {
			routes[m[1]+" "+m[2]] = name
		}
	}
	return routes
}

func TestRoutesCoverHandlers(t *testing.T) {
	routes := handlerRoutes(t)
	// The handlers this table was written from: if the reading finds
	// nothing, the test would pass for nothing.
	for _, must := range []string{"POST /api/v1/cases/events", "GET /api/v1/files", "PUT /api/v1/nshs/mapping", "GET /api/v1/reports/shift", "POST /api/v1/reanalysis/sessions"} {
		if _, ok := routes[must]; !ok {
			t.Fatalf("route %s not found in the handlers' sources: the reading is broken", must)
		}
	}
	var table []string
	for _, rt := range Routes {
		table = append(table, rt.Pattern)
	}
	for pattern, file := range routes {
		if !slices.Contains(table, pattern) {
			t.Errorf("%s (%s) is not in auth.Routes: give it an action", pattern, file)
			continue
		}
		method, path, _ := strings.Cut(pattern, " ")
		req := httptest.NewRequest(method, strings.ReplaceAll(strings.ReplaceAll(path, "{id}", "x1"), "{", "x"), nil)
		if _, ok := ActionOf(req); !ok {
			t.Errorf("%s: ActionOf finds no route", pattern)
		}
	}
}

func TestRouteActions(t *testing.T) {
	for _, tc := range []struct {
		method, path string
		want         Action
	}{
		{"GET", "/api/v1/files", View},
		{"HEAD", "/api/v1/files", View},
		{"POST", "/api/v1/cases/events", InspectionEvent},
		{"POST", "/api/v1/breaches/reason", BreachCause},
		{"POST", "/api/v1/reports/item36/decision", Decision},
		{"POST", "/api/v1/incidents/ack", AckIncident},
		{"POST", "/api/v1/incidents/7/report", AckIncident},
		{"PUT", "/api/v1/reports/counts", Entries},
		{"PUT", "/api/v1/reports/entries/12", Entries},
		{"POST", "/api/v1/reports/monthly/publish", Publish},
		{"POST", "/api/v1/reanalysis/sessions", Reanalysis},
		{"GET", "/api/v1/nshs/mapping", View},
		{"PUT", "/api/v1/nshs/mapping", NSHS},
		{"POST", "/api/v1/nshs/3/correct", NSHS},
	} {
		got, ok := ActionOf(httptest.NewRequest(tc.method, tc.path, nil))
		if !ok || got != tc.want {
			t.Errorf("%s %s: %q %t, want %q", tc.method, tc.path, got, ok, tc.want)
		}
	}
	for _, tc := range []struct{ method, path string }{
		{"GET", "/api/v1/secret"}, {"DELETE", "/api/v1/nshs/3"}, {"GET", "/api/v1/cases/1/audit/x"}, {"GET", "/api/v1/x/../files"},
	} {
		if a, ok := ActionOf(httptest.NewRequest(tc.method, tc.path, nil)); ok {
			t.Errorf("%s %s: %q, want no route", tc.method, tc.path, a)
		}
	}
}

func TestJSONNames(t *testing.T) {
	n, k, err := jsonNames([]byte(`{"a":[{"Num_Idk":"1"},{"b":{"KOD_TO":"2"}}],"kod_to":"3","num_idk":null}`))
	if err != nil || !slices.Equal(n, []string{"1", ""}) || !slices.Equal(k, []string{"2", "3"}) {
		t.Fatalf("got %q %q %v", n, k, err)
	}
	for _, bad := range []string{`{"num_idk":"1"} {}`, `{"num_idk":true}`, `{"num_idk":["1"]}`, `{"a":`, strings.Repeat("[", 100) + strings.Repeat("]", 100)} {
		if _, _, err := jsonNames([]byte(bad)); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
}
