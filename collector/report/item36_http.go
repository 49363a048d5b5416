package report

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"idk/collector/auth"
	"idk/collector/cases"
	"idk/internal/clock"
	"idk/internal/httpjson"
	"idk/protocol"
)

// Item36Store is what the item 36 API needs of the case engine
// (*cases.Engine implements it).
type Item36Store interface {
	DecisionSource
	Decide(caseID string, objective bool, by, note string) error
}

// Item36Handler serves the item 36 report and records the first deputy's
// decisions. The collector puts it behind its API token.
//
//	GET  /api/v1/reports/item36?month=2026-11&kod_to=K[&format=xlsx|html|json]
//	     the month's report of customs body K: .xlsx (the default), the
//	     printable page, or JSON (the rows with their case IDs and
//	     decisions). month may also be written 11.2026; kod_to may be left
//	     out when the collector serves one customs body.
//	POST /api/v1/reports/item36/decision {"case_id", "objective", "by", "note"}
//	     records a decision (a new version when the case has one) and
//	     answers every version of the case's decisions, oldest first.
type Item36Handler struct {
	Cases    Item36Store
	Location *time.Location  // the calendar of the month; UTC if nil
	Offices  func() []string // the customs bodies the collector serves
	Clock    clock.Clock     // the build time; clock.Real if nil
	routes   routes
}

// DecisionRequest is the body of POST /api/v1/reports/item36/decision.
// Objective is a pointer so that a body that leaves it out is refused
// rather than read as "not objective".
type DecisionRequest struct {
	CaseID    string `json:"case_id"`
	Objective *bool  `json:"objective"`
	By        string `json:"by"`
	Note      string `json:"note,omitempty"`
}

// Item36Reply is the JSON form of the report.
type Item36Reply struct {
	KodTO  string      `json:"kod_to"`
	NaimTO string      `json:"naim_to"`
	Month  string      `json:"month"` // YYYY-MM
	Header []string    `json:"header"`
	Rows   []Item36Row `json:"rows"`
}

func (h *Item36Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.routes.serve(w, r, func(mux *http.ServeMux) {
		mux.HandleFunc("GET /api/v1/reports/item36", h.serveReport)
		mux.HandleFunc("POST /api/v1/reports/item36/decision", h.serveDecision)
	})
}

func (h *Item36Handler) loc() *time.Location {
	if h.Location == nil {
		return time.UTC
	}
	return h.Location
}

func (h *Item36Handler) serveReport(w http.ResponseWriter, r *http.Request) {
	q, ok := httpjson.Query(w, r, "month", "kod_to", "format")
	if !ok {
		return
	}
	month, err := ParseMonth(q.Get("month"), h.loc())
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	format := q.Get("format")
	if format == "" {
		format = "xlsx"
	}
	if !slices.Contains([]string{"xlsx", "html", "json"}, format) {
		http.Error(w, fmt.Sprintf("format %q: want xlsx, html or json", format), http.StatusBadRequest)
		return
	}
	var offices []string
	if h.Offices != nil {
		offices = h.Offices()
	}
	kod := q.Get("kod_to")
	if kod == "" {
		if len(offices) != 1 {
			http.Error(w, fmt.Sprintf("kod_to is required: this collector serves %s", strings.Join(offices, ", ")), http.StatusBadRequest)
			return
		}
		kod = offices[0]
	}
	if err := protocol.CheckKodTO(kod); err != nil {
		http.Error(w, fmt.Sprintf("kod_to: %v", err), http.StatusBadRequest)
		return
	}
	if !slices.Contains(offices, kod) {
		http.Error(w, fmt.Sprintf("kod_to %s: no ИДК of this collector belongs to it", kod), http.StatusNotFound)
		return
	}
	rep, err := BuildItem36(h.Cases, kod, month, clock.Or(h.Clock).Now())
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	if format == "json" {
		reply := Item36Reply{KodTO: rep.KodTO, NaimTO: rep.NaimTO, Month: rep.Month.Format("2006-01"), Rows: rep.Rows}
		for _, c := range Item36Table.Columns {
			reply.Header = append(reply.Header, c.Name)
		}
		if reply.Rows == nil {
			reply.Rows = []Item36Row{}
		}
		httpjson.Write(w, reply)
		return
	}
	// Built whole before the first byte is sent, so that a failure is a
	// 500 and not a truncated file; a month of one office is small.
	var buf bytes.Buffer
	name := fmt.Sprintf("item36-%s-%s", rep.KodTO, rep.Month.Format("2006-01"))
	switch format {
	case "xlsx":
		err = rep.WriteXLSX(&buf)
		w.Header().Set("Content-Type", XLSXType)
		name += ".xlsx"
	case "html":
		err = rep.WriteHTML(&buf)
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		name += ".html"
	}
	if err != nil {
		w.Header().Del("Content-Type")
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", name))
	w.Write(buf.Bytes())
}

func (h *Item36Handler) serveDecision(w http.ResponseWriter, r *http.Request) {
	var req DecisionRequest
	if !httpjson.Decode(w, r, &req, 64<<10, `{"case_id", "objective", "by", "note"}`) {
		return
	}
	req.By = auth.By(r, req.By)
	switch {
	case strings.TrimSpace(req.CaseID) == "":
		http.Error(w, "case_id is required", http.StatusBadRequest)
		return
	case req.Objective == nil:
		http.Error(w, "objective is required: true (the causes were objective) or false", http.StatusBadRequest)
		return
	case strings.TrimSpace(req.By) == "":
		http.Error(w, "by is required: who decided", http.StatusBadRequest)
		return
	}
	if err := h.Cases.Decide(req.CaseID, *req.Objective, req.By, req.Note); err != nil {
		switch {
		case errors.Is(err, cases.ErrNotFound):
			http.Error(w, err.Error(), http.StatusNotFound)
		case errors.Is(err, cases.ErrInvalid):
			http.Error(w, err.Error(), http.StatusBadRequest)
		default:
			http.Error(w, err.Error(), http.StatusInternalServerError)
		}
		return
	}
	// Decide stores a decision under the case holding the breach; for
	// the ID of a case merged into it the answer is empty, and the
	// report shows the decision on the case it went into.
	ds, err := h.Cases.Decisions(strings.TrimSpace(req.CaseID))
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	out := ds[strings.TrimSpace(req.CaseID)]
	if out == nil {
		out = []cases.BreachDecision{}
	}
	httpjson.Write(w, out)
}
