package cases

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"idk/collector/auth"
	"idk/internal/httpjson"
)

// maxBody bounds a request body: one event or one reason.
const maxBody = 64 << 10

// Handler serves the engine as JSON. The collector puts it behind its
// authentication. Who did something is the signed-in person (auth.By);
// the body's "by" counts only for the old shared token.
//
//	POST /api/v1/cases/events      an Event: {"kind", "time" (RFC 3339; now if
//	                               omitted), "num_idk", "num_snim", "docs",
//	                               "suspected", "ver_scan", "case_id", "by",
//	                               "source" ("api" if omitted), "reason",
//	                               "risk" (risk_detected: {"KOD_TEH", "VID_PR",
//	                               "KOD_TO_PR", "DATE_REG", "NUM_PR", "DOC_TYPE"})};
//	                               answers {"case_id": "..."}
//	GET  /api/v1/cases             the cases in memory; ?open=1: the open ones
//	GET  /api/v1/cases/unmatched   cases still without an image after an hour
//	GET  /api/v1/cases/{id}        one case
//	GET  /api/v1/cases/{id}/audit  every change of the case: [{"case_id",
//	                               "version", "at", "by", "what", "event",
//	                               "row_version"}], oldest first
//	GET  /api/v1/breaches?from=YYYY-MM-DD&to=YYYY-MM-DD
//	                               table 4 rows by DATE_NAR, each day today if
//	                               omitted
//	GET  /api/v1/breaches?from=...&to=...&history=1
//	                               every breached case whose first breach is
//	                               in those days, withdrawn ones too, with
//	                               every version of its row
//	GET  /api/v1/breaches?without_reason=1
//	                               rows of any date still lacking PRICH_NAR
//	POST /api/v1/breaches/reason   {"id", "reason", "by"}; answers the row
//
// Breaches are answered as {"id", "running", "row", "clock_suspect",
// "clock_offset_seconds"}, where row has exactly the table 4 fields, id
// is what /breaches/reason takes, and clock_suspect marks a row whose
// times came from an agent clock off by more than the limit.
//
// An event whose time is more than the backdating window ago is a
// correction: besides its reason, it needs the corrections role, which
// Corrections grants to a request carrying the corrections token.
// Without it the event is answered 403.
//
// A bad request is answered 400 with a message naming the field or
// parameter. So is an event whose case cannot be found, since the fault
// is in the body. An unknown case or breach asked for by ID is answered
// 404.
func (e *Engine) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/v1/cases/events", e.serveEvent)
	mux.HandleFunc("GET /api/v1/cases", e.serveCases)
	mux.HandleFunc("GET /api/v1/cases/unmatched", e.serveUnmatched)
	mux.HandleFunc("GET /api/v1/cases/{id}", e.serveCase)
	mux.HandleFunc("GET /api/v1/cases/{id}/audit", e.serveAudit)
	mux.HandleFunc("GET /api/v1/breaches", e.serveBreaches)
	mux.HandleFunc("POST /api/v1/breaches/reason", e.serveReason)
	return mux
}

// EventRequest is the body of POST /api/v1/cases/events, for the server
// and its clients alike. The time is a string (RFC 3339; empty: now) so
// that a bad one is reported by name.
type EventRequest struct {
	Kind      string   `json:"kind"`
	Time      string   `json:"time"`
	NumIDK    string   `json:"num_idk"`
	NumSnim   string   `json:"num_snim"`
	Docs      []string `json:"docs"`
	Suspected bool     `json:"suspected"`
	VerScan   int      `json:"ver_scan"`
	CaseID    string   `json:"case_id"`
	By        string   `json:"by"`
	Source    string   `json:"source"`
	Reason    string   `json:"reason"` // why an event older than the backdating window comes late
	// Risk is the risk profile a risk_detected reports: the risk section
	// of table 1 (KOD_TEH, VID_PR, KOD_TO_PR, DATE_REG, NUM_PR, DOC_TYPE).
	Risk RiskProfile `json:"risk"`
}

func (e *Engine) serveEvent(w http.ResponseWriter, r *http.Request) {
	var req EventRequest
	if !httpjson.Decode(w, r, &req, maxBody, `{"kind", "time", "num_idk", "num_snim", "docs", "suspected", "ver_scan", "case_id", "by", "source", "reason", "risk"}`) {
		return
	}
	req.By = auth.By(r, req.By)
	at := e.clock.Now()
	if s := strings.TrimSpace(req.Time); s != "" {
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			http.Error(w, fmt.Sprintf("bad time %q: want RFC 3339, e.g. 2024-03-05T10:00:00+03:00", req.Time), http.StatusBadRequest)
			return
		}
		at = t
	}
	if now := e.clock.Now(); e.late(at, now) && !corrector(r) {
		http.Error(w, fmt.Sprintf("time %s is more than %v before now (%s): a backdated event is a correction, which needs a head of post's account (or, with the old shared token, the corrections token in the %s header) as well as a reason",
			at.Format(time.RFC3339), time.Duration(e.backdate.Load()), now.In(e.loc).Format(time.RFC3339), CorrectionsHeader), http.StatusForbidden)
		return
	}
	src := req.Source
	if strings.TrimSpace(src) == "" {
		src = "api"
	}
	id, err := e.Add(Event{
		Kind:      Kind(strings.TrimSpace(req.Kind)),
		Time:      at,
		NumIDK:    req.NumIDK,
		NumSnim:   req.NumSnim,
		Docs:      req.Docs,
		Suspected: req.Suspected,
		VerScan:   ScanKind(req.VerScan),
		CaseID:    req.CaseID,
		By:        req.By,
		Source:    src,
		Reason:    req.Reason,
		Risk:      req.Risk,
	})
	if err != nil {
		status := http.StatusInternalServerError
		if errors.Is(err, ErrInvalid) || errors.Is(err, ErrNotFound) {
			status = http.StatusBadRequest
		}
		http.Error(w, err.Error(), status)
		return
	}
	httpjson.Write(w, map[string]string{"case_id": id})
}

func (e *Engine) serveCases(w http.ResponseWriter, r *http.Request) {
	q, ok := httpjson.Query(w, r, "open")
	if !ok {
		return
	}
	switch q.Get("open") {
	case "":
		httpjson.Write(w, e.Cases())
	case "1":
		httpjson.Write(w, e.OpenCases())
	default:
		http.Error(w, fmt.Sprintf("bad open parameter %q: want 1", q.Get("open")), http.StatusBadRequest)
	}
}

func (e *Engine) serveUnmatched(w http.ResponseWriter, r *http.Request) {
	if _, ok := httpjson.Query(w, r); !ok {
		return
	}
	httpjson.Write(w, e.Unmatched())
}

func (e *Engine) serveCase(w http.ResponseWriter, r *http.Request) {
	if _, ok := httpjson.Query(w, r); !ok {
		return
	}
	c, ok := e.Case(r.PathValue("id"))
	if !ok {
		http.Error(w, fmt.Sprintf("case id %q: no such case", r.PathValue("id")), http.StatusNotFound)
		return
	}
	httpjson.Write(w, c)
}

func (e *Engine) serveAudit(w http.ResponseWriter, r *http.Request) {
	if _, ok := httpjson.Query(w, r); !ok {
		return
	}
	id := strings.TrimSpace(r.PathValue("id"))
	entries, ok, err := e.Audit(id)
	switch {
	case err != nil:
		http.Error(w, err.Error(), http.StatusInternalServerError)
	case !ok:
		http.Error(w, fmt.Sprintf("case id %q: no such case", id), http.StatusNotFound)
	default:
		httpjson.Write(w, entries)
	}
}

// breachJSON is how the API answers a table 4 row: the row as the table
// has it, plus what names it, whether its time still grows and whether
// its times came from a wrong agent clock.
type breachJSON struct {
	ID           string  `json:"id"`
	Running      bool    `json:"running"`
	ClockSuspect bool    `json:"clock_suspect,omitempty"`
	ClockOffset  float64 `json:"clock_offset_seconds,omitempty"` // collector clock minus agent clock
	Row          Row     `json:"row"`
}

func breachOf(r Row) breachJSON {
	return breachJSON{ID: r.ID, Running: r.Running, ClockSuspect: r.ClockSuspect, ClockOffset: r.ClockOffset.Seconds(), Row: r}
}

func breachesJSON(rows []Row) []breachJSON {
	out := make([]breachJSON, len(rows))
	for i, r := range rows {
		out[i] = breachOf(r)
	}
	return out
}

func (e *Engine) serveBreaches(w http.ResponseWriter, r *http.Request) {
	q, ok := httpjson.Query(w, r, "from", "to", "without_reason", "history")
	if !ok {
		return
	}
	history := false
	switch v := q.Get("history"); v {
	case "":
	case "1":
		history = true
	default:
		http.Error(w, fmt.Sprintf("bad history parameter %q: want 1", v), http.StatusBadRequest)
		return
	}
	var rows []Row
	var err error
	if v := q.Get("without_reason"); v != "" {
		if history {
			http.Error(w, "history and without_reason cannot be combined: give history with from and to", http.StatusBadRequest)
			return
		}
		if v != "1" {
			http.Error(w, fmt.Sprintf("bad without_reason parameter %q: want 1", v), http.StatusBadRequest)
			return
		}
		if q.Has("from") || q.Has("to") {
			http.Error(w, "without_reason lists every date: give it without from and to", http.StatusBadRequest)
			return
		}
		rows, err = e.WithoutReason()
	} else {
		today := e.clock.Now()
		from, ok := e.dateParam(w, q, "from", today)
		if !ok {
			return
		}
		to, ok := e.dateParam(w, q, "to", today)
		if !ok {
			return
		}
		if to.Before(from) {
			http.Error(w, fmt.Sprintf("bad to parameter %s: it is before from %s", to.Format("2006-01-02"), from.Format("2006-01-02")), http.StatusBadRequest)
			return
		}
		if history {
			h, err := e.BreachHistory(from, to)
			if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			httpjson.Write(w, h)
			return
		}
		rows, err = e.Breaches(from, to)
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	httpjson.Write(w, breachesJSON(rows))
}

// dateParam parses a YYYY-MM-DD parameter as a day in the engine's zone,
// or returns def if it is absent.
func (e *Engine) dateParam(w http.ResponseWriter, q url.Values, name string, def time.Time) (time.Time, bool) {
	s := q.Get(name)
	if s == "" {
		start, _ := e.dayBounds(def)
		return start, true
	}
	t, err := time.ParseInLocation("2006-01-02", s, e.loc)
	if err != nil {
		http.Error(w, fmt.Sprintf("bad %s parameter %q: want YYYY-MM-DD", name, s), http.StatusBadRequest)
		return time.Time{}, false
	}
	return t, true
}

// ReasonRequest is the body of POST /api/v1/breaches/reason.
type ReasonRequest struct {
	ID     string `json:"id"`
	Reason string `json:"reason"`
	By     string `json:"by"`
}

func (e *Engine) serveReason(w http.ResponseWriter, r *http.Request) {
	var req ReasonRequest
	if !httpjson.Decode(w, r, &req, maxBody, `{"id", "reason", "by"}`) {
		return
	}
	req.By = auth.By(r, req.By)
	for _, f := range []struct{ name, value string }{{"id", req.ID}, {"reason", req.Reason}, {"by", req.By}} {
		if strings.TrimSpace(f.value) == "" {
			http.Error(w, fmt.Sprintf("missing %s in body", f.name), http.StatusBadRequest)
			return
		}
	}
	if err := e.SetReason(req.ID, req.Reason, req.By); err != nil {
		status := http.StatusInternalServerError
		switch {
		case errors.Is(err, ErrInvalid):
			status = http.StatusBadRequest
		case errors.Is(err, ErrNotFound):
			status = http.StatusNotFound
		}
		http.Error(w, err.Error(), status)
		return
	}
	row, ok, err := e.breachRow(req.ID)
	if err != nil || !ok {
		http.Error(w, fmt.Sprintf("id %q: the reason is stored but the row cannot be shown: %v", req.ID, err), http.StatusInternalServerError)
		return
	}
	httpjson.Write(w, breachOf(row))
}
