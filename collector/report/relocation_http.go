package report

import (
	"fmt"
	"net/http"
	"os"
	"time"

	"idk/collector/availability"
	"idk/collector/ingest"
	"idk/internal/httpjson"
)

// RelocationHandler serves the month's relocations of the mobile ИДК
// (items 28-29, due by the 10th), behind the API token:
//
//	GET /api/v1/reports/relocations?month=2026-11[&format=json]
//	    every relocation of the month: the place left and the place
//	    reached, start, end, duration, calendar days and the item that
//	    says who decides; a workbook, or JSON with format=json
type RelocationHandler struct {
	Index    ingest.Viewer
	Location *time.Location
	TempDir  string // where the workbook is built before it is sent; "" is os.TempDir
}

func (h *RelocationHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		http.Error(w, "GET only", http.StatusMethodNotAllowed)
		return
	}
	q, ok := httpjson.Query(w, r, "month", "format")
	if !ok {
		return
	}
	month, err := ParseMonth(q.Get("month"), h.Location)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	y, m, _ := month.Date()
	from, to := time.Date(y, m, 1, 0, 0, 0, 0, h.Location), time.Date(y, m+1, 1, 0, 0, 0, 0, h.Location)
	rels, err := availability.Relocations(h.Index, from, to, h.Location)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	switch q.Get("format") {
	case "json":
		if rels == nil {
			rels = []availability.Relocation{}
		}
		httpjson.Write(w, rels)
		return
	case "", "xlsx":
	default:
		http.Error(w, fmt.Sprintf("format %q: want xlsx or json", q.Get("format")), http.StatusBadRequest)
		return
	}
	// Written to a file first, so that a failure is an error answer, not
	// a truncated workbook.
	tmp, err := os.CreateTemp(h.TempDir, "idk-relocations-*.xlsx")
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	title := "Передислокация мобильных ИДК за " + from.Format("01.2006")
	if err := WriteWorkbook(tmp, []Sheet{RelocationSheet(rels, h.Location)}, WorkbookOptions{Title: title, Created: to}); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", XLSXType)
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="idk-relocations-%s.xlsx"`, from.Format("2006-01")))
	http.ServeContent(w, r, "", to, tmp)
}
