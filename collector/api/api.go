// Package api serves the collector's HTTP side: Prometheus metrics, a
// health check, and read-only JSON listings of what is stored, for the
// people and tools at the regional office.
package api

import (
	"encoding/json"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"idk/collector/store"
)

// Handler returns the HTTP handler. availability serves the device time
// accounting (table 3) and incidents under /api/v1/availability and
// /api/v1/incidents.
func Handler(st *store.Store, gatherer prometheus.Gatherer, availability http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/api/v1/availability", availability)
	mux.Handle("/api/v1/incidents", availability)
	mux.Handle("/api/v1/incidents/", availability)
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
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(files)
	})
	return mux
}
