package report

import (
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"idk/collector/auth"
	"idk/internal/httpjson"
)

// MonthlyHandler serves the monthly report of the region (item 37). The
// collector puts it behind its API token.
//
//	GET  /api/v1/reports/monthly?month=2026-11[&version=N][&fresh=1]
//	     the month's report as .xlsx: the latest published version (or
//	     version N) byte for byte; a month not published yet, or
//	     fresh=1, is built now and marked X-Report-Version: draft. month
//	     may also be written 11.2026.
//	GET  /api/v1/reports/monthly/versions?month=...
//	     the month's published versions (JSON)
//	GET  /api/v1/reports/monthly/summary?month=...
//	     the two summary sheets built now, as JSON: {"offices": [...],
//	     "idk": [...]}, each row an object keyed by column name
//	POST /api/v1/reports/monthly/publish?month=...&by=NAME[&reason=TEXT]
//	     publish now: a new version if the content changed since the last
//
// The workbook carries the X-Report-Version, X-Report-SHA256 and
// X-Report-Incomplete headers of the daily report.
type MonthlyHandler struct {
	Archive *Archive
	Builder *Builder
	Offices func() []string // the region's customs bodies, in the report's order
	TempDir string          // where a draft is built before it is sent; "" is os.TempDir
	routes  routes
}

func (h *MonthlyHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.routes.serve(w, r, func(mux *http.ServeMux) {
		mux.HandleFunc("GET /api/v1/reports/monthly", h.serveMonthly)
		mux.HandleFunc("GET /api/v1/reports/monthly/versions", h.serveVersions)
		mux.HandleFunc("GET /api/v1/reports/monthly/summary", h.serveSummary)
		mux.HandleFunc("POST /api/v1/reports/monthly/publish", h.servePublish)
	})
}

// ParseMonth (item36_http.go) reads the month parameter: 2026-11 or
// 11.2026.

// month reads the query, which may have month and the parameters in
// more; on failure it has answered 400.
func (h *MonthlyHandler) month(w http.ResponseWriter, r *http.Request, more ...string) (time.Time, map[string]string, bool) {
	q, ok := httpjson.Query(w, r, append([]string{"month"}, more...)...)
	if !ok {
		return time.Time{}, nil, false
	}
	m, err := ParseMonth(q.Get("month"), h.Builder.Location())
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return time.Time{}, nil, false
	}
	vals := map[string]string{}
	for _, k := range more {
		vals[k] = q.Get(k)
	}
	return m, vals, true
}

func (h *MonthlyHandler) serveMonthly(w http.ResponseWriter, r *http.Request) {
	month, q, ok := h.month(w, r, "version", "fresh")
	if !ok {
		return
	}
	version, ok := versionParam(w, q["version"])
	if !ok {
		return
	}
	name := "idk-monthly-" + month.Format("2006-01")
	if q["fresh"] != "1" && servePublished(w, r, name, version, func() (*os.File, Version, error) { return h.Archive.OpenMonthly(month, version) }) {
		return
	}
	m, err := h.Builder.Monthly(month, h.Offices())
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	serveDraft(w, r, h.TempDir, name, m.Built, func(w io.Writer) (int, error) {
		err := m.WriteXLSX(w)
		return m.Incomplete, err
	})
}

func (h *MonthlyHandler) serveVersions(w http.ResponseWriter, r *http.Request) {
	month, _, ok := h.month(w, r)
	if !ok {
		return
	}
	writeVersions(w)(h.Archive.MonthlyVersions(month))
}

// MonthlySummary is the answer of /api/v1/reports/monthly/summary: the
// rows of SummaryOffices and SummaryIDK, keyed by column name.
type MonthlySummary struct {
	Month   string              `json:"month"` // 2026-11
	Offices []map[string]string `json:"offices"`
	IDK     []map[string]string `json:"idk"`
}

func (h *MonthlyHandler) serveSummary(w http.ResponseWriter, r *http.Request) {
	month, _, ok := h.month(w, r)
	if !ok {
		return
	}
	m, err := h.Builder.Monthly(month, h.Offices())
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	res := MonthlySummary{Month: month.Format("2006-01"), Offices: []map[string]string{}, IDK: []map[string]string{}}
	for i := range m.Summary {
		res.Offices = append(res.Offices, byColumn(&SummaryOffices, m.Summary[i].OfficeRow()))
	}
	for i := range m.IDK {
		res.IDK = append(res.IDK, byColumn(&SummaryIDK, m.IDK[i].IDKRow()))
	}
	httpjson.Write(w, res)
}

func byColumn(t *Table, r Row) map[string]string {
	out := make(map[string]string, len(r))
	for i, c := range t.Columns {
		out[c.Name] = r[i]
	}
	return out
}

func (h *MonthlyHandler) servePublish(w http.ResponseWriter, r *http.Request) {
	month, q, ok := h.month(w, r, "by", "reason")
	if !ok {
		return
	}
	by := auth.By(r, strings.TrimSpace(q["by"]))
	if by == "" {
		http.Error(w, "by is required: who publishes", http.StatusBadRequest)
		return
	}
	v, created, err := h.Archive.PublishMonthly(month, h.Offices(), by, q["reason"])
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	httpjson.Write(w, struct {
		Created bool `json:"created"`
		Version
	}{created, v})
}
