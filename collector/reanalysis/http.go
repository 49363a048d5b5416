package reanalysis

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"idk/collector/auth"
	"idk/collector/report"
	"idk/internal/httpjson"
)

// maxBody bounds a session's body: a day's scans of one analyst.
const maxBody = 4 << 20

// Handler serves the re-analysis API as JSON. The caller mounts it under
// /api/v1/reanalysis/ behind the API token; who recorded a session is
// the body's "by" (the FIO when empty), as officers share the token.
//
//	GET  /api/v1/reanalysis/scans?kod_to=10216100&from=01.11.2026&to=30.11.2026[&num_idk=&rez=&num_pr=&limit=]
//	     the scans made at kod_to on those days (both included), as table 1 has
//	     them: {"scans": [{"kod_to", "num_idk", "num_snim", "date_sys", "rez",
//	     "num_pr"}], "truncated"}
//	GET  /api/v1/reanalysis/leads?(the same parameters)
//	     the agents' integrity evidence about those scans: {"leads": [...],
//	     "note"}; leads are not results and are never counted
//	POST /api/v1/reanalysis/sessions   a Request: validates it, lays out the
//	     scans' RAW files, writes tables 5 and 6; 201 the Session
//	GET  /api/v1/reanalysis/sessions/{id}   the Session
//	GET  /api/v1/reanalysis/sessions?kod_to=&from=&to=   the sessions of those
//	     days (kod_to: the re-analysing body; optional): {"sessions": [...]}
//
// Every refusal is {"error": "..."} with 400; a refused value is also
// listed in "errors" as {"field", "message"}, field naming it as the body
// does ("scans[2].num_snim"), or, when the report's entries refused a row,
// as {"table", "row", "field", "message"}. An unknown session is 404.
func (r *Recorder) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/reanalysis/scans", r.serveScans)
	mux.HandleFunc("GET /api/v1/reanalysis/leads", r.serveLeads)
	mux.HandleFunc("POST /api/v1/reanalysis/sessions", r.serveRecord)
	mux.HandleFunc("GET /api/v1/reanalysis/sessions", r.serveSessions)
	mux.HandleFunc("GET /api/v1/reanalysis/sessions/{id}", r.serveSession)
	return mux
}

// selectParams are the parameters of a selection.
var selectParams = []string{"kod_to", "from", "to", "num_idk", "rez", "num_pr", "limit"}

// query reads a selection's parameters.
func (r *Recorder) query(v url.Values) (Query, error) {
	var errs FieldErrors
	q := Query{KodTO: v.Get("kod_to"), NumIDK: v.Get("num_idk"), Rez: v.Get("rez"), NumPR: v.Get("num_pr")}
	if q.KodTO == "" {
		errs.add("kod_to", "required: the customs body the scans were made at")
	}
	from, to, ferrs := r.days(v)
	errs = append(errs, ferrs...)
	q.From, q.To = from, to.AddDate(0, 0, 1)
	if q.Rez != "" && q.Rez != "1" && q.Rez != "2" {
		errs.add("rez", "%q: want 1 (без подозрений) or 2 (под подозрением)", q.Rez)
	}
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 {
			errs.add("limit", "%q: want a positive number", s)
		}
		q.Limit = n
	}
	if len(errs) > 0 {
		return Query{}, errs
	}
	return q, nil
}

// days reads from and to, DD.MM.YYYY, both required, from not after to.
func (r *Recorder) days(v url.Values) (from, to time.Time, errs FieldErrors) {
	for _, p := range []struct {
		name string
		t    *time.Time
	}{{"from", &from}, {"to", &to}} {
		s := v.Get(p.name)
		if s == "" {
			errs.add(p.name, "required: a day, DD.MM.YYYY")
			continue
		}
		t, err := parseDate(s, r.loc)
		if err != nil {
			errs.add(p.name, "%v", err)
			continue
		}
		*p.t = t
	}
	if len(errs) == 0 && to.Before(from) {
		errs.add("to", "%s is before from", v.Get("to"))
	}
	return from, to, errs
}

func (r *Recorder) serveScans(w http.ResponseWriter, req *http.Request) {
	v, ok := strictQuery(w, req, selectParams...)
	if !ok {
		return
	}
	q, err := r.query(v)
	if err != nil {
		writeError(w, err)
		return
	}
	scans, truncated, err := r.Select(q)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, struct {
		Scans     []Scan `json:"scans"`
		Truncated bool   `json:"truncated"`
	}{orEmpty(scans), truncated})
}

func (r *Recorder) serveLeads(w http.ResponseWriter, req *http.Request) {
	v, ok := strictQuery(w, req, selectParams...)
	if !ok {
		return
	}
	q, err := r.query(v)
	if err != nil {
		writeError(w, err)
		return
	}
	leads, err := r.Leads(q)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, struct {
		Leads []Lead `json:"leads"`
		Note  string `json:"note"`
	}{orEmpty(leads), "leads are what the agents noticed, for the analyst to check; they are not counted in tables 5 and 6: record what the re-analysis found as missing, substituted or violations"})
}

func (r *Recorder) serveRecord(w http.ResponseWriter, req *http.Request) {
	var body Request
	dec := json.NewDecoder(http.MaxBytesReader(w, req.Body, maxBody))
	dec.DisallowUnknownFields()
	err := dec.Decode(&body)
	if err == nil && dec.Decode(&struct{}{}) != io.EOF {
		err = errors.New("more after the JSON value")
	}
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeJSON(w, http.StatusRequestEntityTooLarge, errorBody{Error: fmt.Sprintf("body larger than %d bytes", maxBody)})
			return
		}
		writeJSON(w, http.StatusBadRequest, errorBody{Error: fmt.Sprintf("bad body: want a JSON re-analysis session: %v", err)})
		return
	}
	// Who records is the signed-in person; without one, the body's "by"
	// or, as before accounts, the analyst's FIO.
	body.By = auth.By(req, body.By)
	s, err := r.Record(body)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, s)
}

func (r *Recorder) serveSession(w http.ResponseWriter, req *http.Request) {
	s, err := r.Session(req.PathValue("id"))
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, s)
}

func (r *Recorder) serveSessions(w http.ResponseWriter, req *http.Request) {
	v, ok := strictQuery(w, req, "kod_to", "from", "to")
	if !ok {
		return
	}
	from, to, errs := r.days(v)
	if len(errs) > 0 {
		writeError(w, errs)
		return
	}
	ss, err := r.Sessions(v.Get("kod_to"), from, to)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, struct {
		Sessions []Session `json:"sessions"`
	}{orEmpty(ss)})
}

func orEmpty[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// errorBody is a refusal or failure.
type errorBody struct {
	Error  string `json:"error"`
	Errors []any  `json:"errors,omitempty"`
}

// entryErrorJSON is one value the report's entries refused.
type entryErrorJSON struct {
	Table   int    `json:"table"`
	Row     int    `json:"row,omitempty"`
	Where   string `json:"where,omitempty"`
	Field   string `json:"field"`
	Message string `json:"message"`
}

// writeError answers err: 400 for a refusal, 404 for an unknown session,
// 500 for the rest.
func writeError(w http.ResponseWriter, err error) {
	status := http.StatusInternalServerError
	switch {
	case errors.Is(err, ErrNoSession):
		status = http.StatusNotFound
	case IsRefused(err):
		status = http.StatusBadRequest
	}
	body := errorBody{Error: err.Error()}
	var fes FieldErrors
	var ees report.EntryErrors
	var ee *report.EntryError
	switch {
	case errors.As(err, &fes):
		for _, e := range fes {
			body.Errors = append(body.Errors, e)
		}
	case errors.As(err, &ees):
		for _, e := range ees {
			body.Errors = append(body.Errors, entryErrorJSON{e.Table, e.Row, e.Where, e.Field, e.Msg})
		}
	case errors.As(err, &ee):
		body.Errors = append(body.Errors, entryErrorJSON{ee.Table, ee.Row, ee.Where, ee.Field, ee.Msg})
	}
	writeJSON(w, status, body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	// The status is sent; a failed write means the client left.
	_ = json.NewEncoder(w).Encode(v)
}

// strictQuery returns the request's parameters after checking them
// (httpjson.CheckQuery): a misspelt one would otherwise be taken as absent
// and widen the selection. On failure it has answered.
func strictQuery(w http.ResponseWriter, req *http.Request, allowed ...string) (url.Values, bool) {
	q, err := httpjson.CheckQuery(req, allowed...)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, errorBody{Error: err.Error()})
		return nil, false
	}
	return q, true
}
