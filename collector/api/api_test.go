package api

import (
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"idk/collector/auth"
	"idk/simulator/simclock"
)

// /api/ always passes the gate; /metrics needs its own token once one is
// set; /healthz never needs one; every other path is the console, which
// sends a stranger to the sign-in page.
func TestLayout(t *testing.T) {
	clk := simclock.New(time.Date(2026, 11, 28, 9, 0, 0, 0, time.UTC))
	dir := t.TempDir()
	accounts, err := auth.OpenAccounts(filepath.Join(dir, "accounts.json"), clk)
	if err != nil {
		t.Fatal(err)
	}
	audit, err := auth.OpenAudit(filepath.Join(dir, "audit.jsonl"), clk)
	if err != nil {
		t.Fatal(err)
	}
	defer audit.Close()
	gate := &auth.Gate{Accounts: accounts, Audit: audit, Clock: clk, SharedToken: "a",
		Post: func(string) (string, bool) { return "", false }}
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})
	for _, c := range []struct {
		metricsToken, path, auth string
		want                     int
	}{
		{"", "/metrics", "", http.StatusOK},
		{"m", "/metrics", "", http.StatusUnauthorized},
		{"m", "/metrics", "Bearer a", http.StatusUnauthorized},
		{"m", "/metrics", "Bearer m", http.StatusOK},
		{"m", "/api/v1/cases", "Bearer m", http.StatusUnauthorized},
		{"m", "/api/v1/cases", "", http.StatusUnauthorized},
		{"m", "/api/v1/cases", "Bearer a", http.StatusOK},
		{"m", "/healthz", "", http.StatusOK},
		{"m", "/inspections", "", http.StatusSeeOther},
	} {
		h := Handler(nil, prometheus.NewRegistry(), ok, ok, ok, ok, gate, c.metricsToken)
		req := httptest.NewRequest(http.MethodGet, c.path, nil)
		if c.auth != "" {
			req.Header.Set("Authorization", c.auth)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != c.want {
			t.Errorf("metrics token %q, GET %s with %q: %d, want %d", c.metricsToken, c.path, c.auth, rec.Code, c.want)
		}
	}
}
