// Package api lays out the collector's HTTP side: the JSON API of every
// part behind the gate, the web console, Prometheus metrics and a health
// check, for the people and tools at the regional office.
package api

import (
	"crypto/subtle"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"idk/collector/auth"
	"idk/collector/store"
	"idk/internal/httpjson"
)

// Handler returns the HTTP handler. availability serves the device time
// accounting (table 3) and incidents under /api/v1/availability and
// /api/v1/incidents; cases serves inspection cases and breaches (table 4)
// under /api/v1/cases and /api/v1/breaches; reports serves the reports
// and the officers' entries under /api/v1/reports, the re-analysis of
// images under /api/v1/reanalysis and the ICT incidents (НШС) under
// /api/v1/nshs; console serves the web console at every other path.
// Everything under /api/ passes gate.API (a person's token, their role
// and posts), the console gate.Console (a session, CSRF on every change);
// /metrics needs metricsToken when one is set (Prometheus sends it with
// authorization.credentials_file); /healthz stays open for load balancers.
func Handler(st *store.Store, gatherer prometheus.Gatherer, availability, cases, reports, console http.Handler, gate *auth.Gate, metricsToken string) http.Handler {
	api := http.NewServeMux()
	api.Handle("/api/v1/reports/", reports)
	api.Handle("/api/v1/reanalysis/", reports)
	api.Handle("/api/v1/nshs", reports)
	api.Handle("/api/v1/nshs/", reports)
	api.Handle("/api/v1/availability", availability)
	api.Handle("/api/v1/incidents", availability)
	api.Handle("/api/v1/incidents/", availability)
	api.Handle("/api/v1/cases", cases)
	api.Handle("/api/v1/cases/", cases)
	api.Handle("/api/v1/breaches", cases)
	api.Handle("/api/v1/breaches/", cases)
	// GET /api/v1/files[?num_idk=N]: stored files with their SHA-256.
	api.HandleFunc("GET /api/v1/files", func(w http.ResponseWriter, r *http.Request) {
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
	mux := http.NewServeMux()
	mux.Handle("/api/", gate.API(api))
	mux.Handle("GET /metrics", requireToken(promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{}), metricsToken))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("ok\n"))
	})
	mux.Handle("/", gate.Console(console, "/login", "/static/"))
	return mux
}

// requireToken guards /metrics with its own bearer token when it has one,
// compared in constant time.
func requireToken(next http.Handler, metricsToken string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !bearer(r, metricsToken) {
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
