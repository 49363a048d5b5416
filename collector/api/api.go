// Package api serves the collector's HTTP side: Prometheus metrics, a
// health check, and read-only JSON listings of what is stored, for the
// people and tools at the regional office.
package api

import (
	"crypto/subtle"
	"net/http"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"idk/collector/store"
	"idk/internal/httpjson"
)

// Handler returns the HTTP handler. availability serves the device time
// accounting (table 3) and incidents under /api/v1/availability and
// /api/v1/incidents; cases serves inspection cases and breaches (table 4)
// under /api/v1/cases and /api/v1/breaches; reports serves the reports
// and the officers' entries under /api/v1/reports, the re-analysis of
// images under /api/v1/reanalysis and the ICT incidents (НШС) under
// /api/v1/nshs. Everything under /api/ needs
// the bearer token (an empty token turns the check off, for tests);
// /metrics needs metricsToken when one is set (Prometheus sends it with
// authorization.credentials_file); /healthz stays open for load balancers.
func Handler(st *store.Store, gatherer prometheus.Gatherer, availability, cases, reports http.Handler, token, metricsToken string) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/api/v1/reports/", reports)
	mux.Handle("/api/v1/reanalysis/", reports)
	mux.Handle("/api/v1/nshs", reports)
	mux.Handle("/api/v1/nshs/", reports)
	mux.Handle("/api/v1/availability", availability)
	mux.Handle("/api/v1/incidents", availability)
	mux.Handle("/api/v1/incidents/", availability)
	mux.Handle("/api/v1/cases", cases)
	mux.Handle("/api/v1/cases/", cases)
	mux.Handle("/api/v1/breaches", cases)
	mux.Handle("/api/v1/breaches/", cases)
	mux.Handle("GET /metrics", promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("ok\n"))
	})
	// GET /api/v1/files[?num_idk=N]: stored files with their SHA-256.
	mux.HandleFunc("GET /api/v1/files", func(w http.ResponseWriter, r *http.Request) {
		files, err := st.Files(r.URL.Query().Get("num_idk"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		if files == nil {
			files = []store.FileEntry{}
		}
		httpjson.Write(w, files)
	})
	return requireToken(mux, token, metricsToken)
}

// requireToken guards /api/ with a bearer token, and /metrics with its own
// when it has one, compared in constant time.
func requireToken(next http.Handler, token, metricsToken string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasPrefix(r.URL.Path, "/api/") && !bearer(r, token):
			w.Header().Set("WWW-Authenticate", `Bearer realm="idk-collector"`)
			http.Error(w, "missing or wrong API token (Authorization: Bearer <token from api.token_file>)", http.StatusUnauthorized)
			return
		case r.URL.Path == "/metrics" && !bearer(r, metricsToken):
			w.Header().Set("WWW-Authenticate", `Bearer realm="idk-collector metrics"`)
			http.Error(w, "missing or wrong metrics token (Authorization: Bearer <token from api.metrics_token_file>)", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// bearer reports whether r carries token; an empty token asks for nothing.
func bearer(r *http.Request, token string) bool {
	return token == "" || subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), []byte("Bearer "+token)) == 1
}
