package api

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// /api/ always needs its token; /metrics needs its own once one is set;
// /healthz never does.
func TestTokens(t *testing.T) {
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
		{"m", "/api/v1/cases", "Bearer a", http.StatusOK},
		{"m", "/healthz", "", http.StatusOK},
	} {
		h := Handler(nil, prometheus.NewRegistry(), ok, ok, ok, "a", c.metricsToken)
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
