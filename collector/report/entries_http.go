package report

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"idk/collector/auth"
	"idk/internal/httpjson"
	"idk/protocol"
)

// Request bodies are bounded: rows of a day or a month of one post, or
// one correction.
const (
	maxEntriesBody = 4 << 20
	maxEntryBody   = 64 << 10
)

// EntriesRequest is the body of POST /api/v1/reports/entries, for the
// server and its clients alike. Values are JSON strings ("REZ": "1"), as
// the report writes them: a number would lose an ЛНП's leading zero.
type EntriesRequest struct {
	Table int                 `json:"table"`
	By    string              `json:"by"`
	Rows  []map[string]string `json:"rows"`
}

// CorrectionRequest is the body of PUT /api/v1/reports/entries/{id}.
type CorrectionRequest struct {
	By     string            `json:"by"`
	Reason string            `json:"reason"`
	Fields map[string]string `json:"fields"`
}

// CountsRequest is the body of PUT /api/v1/reports/counts.
type CountsRequest struct {
	NumIDK string `json:"num_idk"`
	Date   string `json:"date"` // DD.MM.YYYY
	By     string `json:"by"`
	Counts Counts `json:"counts"`
}

// entriesReply is what the entry endpoints answer with a list.
type entriesReply struct {
	Entries []Entry `json:"entries"`
}

// Handler serves the officers' entries and the post's object counts as
// JSON. The caller mounts it behind the API token; who entered something
// is taken from the body's "by", because officers share the token.
//
//	POST /api/v1/reports/entries        {"table": 2, "by", "rows": [{"FIELD": "value", ...}, ...]}:
//	                                    stores all rows or none; 201 {"entries": [...]}
//	PUT  /api/v1/reports/entries/{id}   {"by", "reason", "fields": {...}}: a new version of
//	                                    the entry ("" clears a field, one not given is kept);
//	                                    200 the new version
//	GET  /api/v1/reports/entries?table=2&kod_to=10216100&from=01.11.2026&to=30.11.2026
//	                                    the latest version of each entry dated from..to,
//	                                    both days included: {"entries": [...]}
//	GET  /api/v1/reports/entries/{id}   every version of the entry, oldest first: {"entries": [...]}
//	PUT  /api/v1/reports/counts         {"num_idk", "date": "27.11.2026", "by", "counts":
//	                                    {"OKO_GRU_IM": 12, ...}}: 200 the stored version
//	GET  /api/v1/reports/counts?num_idk=850591&date=27.11.2026
//	                                    the latest counts: {"num_idk", "date", "version",
//	                                    "counts", "by", "at"}; 404 if none were entered
//
// An entry is {"id", "table", "version", "fields", "by", "at", "reason"}.
// Every refusal is {"error": "..."}; a refused entry or count is 400,
// and its "errors" list each problem as {"table", "row", "where",
// "field", "message"}, row being 1-based in the request's rows. An
// unknown entry is 404, a correction of a version that is no longer the
// latest 409.
func (e *Entries) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/v1/reports/entries", e.serveAddEntries)
	mux.HandleFunc("GET /api/v1/reports/entries", e.serveListEntries)
	mux.HandleFunc("GET /api/v1/reports/entries/{id}", e.serveEntryHistory)
	mux.HandleFunc("PUT /api/v1/reports/entries/{id}", e.serveCorrectEntry)
	mux.HandleFunc("PUT /api/v1/reports/counts", e.servePutCounts)
	mux.HandleFunc("GET /api/v1/reports/counts", e.serveGetCounts)
	return mux
}

func (e *Entries) serveAddEntries(w http.ResponseWriter, r *http.Request) {
	var req EntriesRequest
	if !decodeEntriesBody(w, r, &req, maxEntriesBody, `{"table", "by", "rows": [{"FIELD": "value"}]}`) {
		return
	}
	req.By = auth.By(r, req.By)
	if !requireBody(w, "by", req.By) {
		return
	}
	if req.Table == 0 {
		writeEntriesError(w, http.StatusBadRequest, errors.New(`missing "table" in body: 2, 5 or 6`))
		return
	}
	out, err := e.Add(req.Table, req.Rows, req.By)
	if err != nil {
		writeEntriesError(w, entriesStatus(err), err)
		return
	}
	writeEntriesJSON(w, http.StatusCreated, entriesReply{out})
}

func (e *Entries) serveCorrectEntry(w http.ResponseWriter, r *http.Request) {
	var req CorrectionRequest
	if !decodeEntriesBody(w, r, &req, maxEntryBody, `{"by", "reason", "fields": {"FIELD": "value"}}`) {
		return
	}
	req.By = auth.By(r, req.By)
	if !requireBody(w, "by", req.By) || !requireBody(w, "reason", req.Reason) {
		return
	}
	en, err := e.Correct(r.PathValue("id"), req.Fields, req.By, req.Reason)
	if err != nil {
		writeEntriesError(w, entriesStatus(err), err)
		return
	}
	writeEntriesJSON(w, http.StatusOK, en)
}

func (e *Entries) serveListEntries(w http.ResponseWriter, r *http.Request) {
	q, ok := entriesQuery(w, r, "table", "kod_to", "from", "to")
	if !ok {
		return
	}
	for _, p := range []string{"table", "kod_to", "from", "to"} {
		if q.Get(p) == "" {
			writeEntriesError(w, http.StatusBadRequest, fmt.Errorf("missing parameter %s: want table=2&kod_to=10216100&from=01.11.2026&to=30.11.2026", p))
			return
		}
	}
	table, err := strconv.Atoi(q.Get("table"))
	if err != nil {
		writeEntriesError(w, http.StatusBadRequest, fmt.Errorf("bad table parameter %q: want 2, 5 or 6", q.Get("table")))
		return
	}
	from, err := ParseDate(q.Get("from"), e.loc)
	if err != nil {
		writeEntriesError(w, http.StatusBadRequest, fmt.Errorf("bad from parameter %q: want DD.MM.YYYY", q.Get("from")))
		return
	}
	to, err := ParseDate(q.Get("to"), e.loc)
	if err != nil {
		writeEntriesError(w, http.StatusBadRequest, fmt.Errorf("bad to parameter %q: want DD.MM.YYYY", q.Get("to")))
		return
	}
	if to.Before(from) {
		writeEntriesError(w, http.StatusBadRequest, fmt.Errorf("bad to parameter %s: it is before from %s", q.Get("to"), q.Get("from")))
		return
	}
	// to names the last day, as an officer says "1 to 30 November".
	out, err := e.Latest(table, q.Get("kod_to"), from, NextDay(to))
	if err != nil {
		writeEntriesError(w, entriesStatus(err), err)
		return
	}
	if out == nil {
		out = []Entry{}
	}
	writeEntriesJSON(w, http.StatusOK, entriesReply{out})
}

func (e *Entries) serveEntryHistory(w http.ResponseWriter, r *http.Request) {
	if _, ok := entriesQuery(w, r); !ok {
		return
	}
	out, err := e.History(r.PathValue("id"))
	if err != nil {
		writeEntriesError(w, entriesStatus(err), err)
		return
	}
	writeEntriesJSON(w, http.StatusOK, entriesReply{out})
}

func (e *Entries) servePutCounts(w http.ResponseWriter, r *http.Request) {
	var req CountsRequest
	if !decodeEntriesBody(w, r, &req, maxEntryBody, `{"num_idk", "date": "DD.MM.YYYY", "by", "counts": {"OKO_GRU_IM": 12, ...}}`) {
		return
	}
	req.By = auth.By(r, req.By)
	if !requireBody(w, "by", req.By) || !requireBody(w, "num_idk", req.NumIDK) || !requireBody(w, "date", req.Date) {
		return
	}
	day, err := ParseDate(req.Date, e.loc)
	if err != nil {
		writeEntriesError(w, http.StatusBadRequest, fmt.Errorf("bad date %q in body: want DD.MM.YYYY", req.Date))
		return
	}
	sc, err := e.setCounts(req.NumIDK, day, req.Counts, req.By)
	if err != nil {
		writeEntriesError(w, entriesStatus(err), err)
		return
	}
	writeEntriesJSON(w, http.StatusOK, sc)
}

func (e *Entries) serveGetCounts(w http.ResponseWriter, r *http.Request) {
	q, ok := entriesQuery(w, r, "num_idk", "date")
	if !ok {
		return
	}
	if q.Get("num_idk") == "" || q.Get("date") == "" {
		writeEntriesError(w, http.StatusBadRequest, errors.New("missing parameter: want num_idk=850591&date=27.11.2026"))
		return
	}
	day, err := ParseDate(q.Get("date"), e.loc)
	if err != nil {
		writeEntriesError(w, http.StatusBadRequest, fmt.Errorf("bad date parameter %q: want DD.MM.YYYY", q.Get("date")))
		return
	}
	if err := protocol.CheckNumIDK(q.Get("num_idk")); err != nil {
		writeEntriesError(w, http.StatusBadRequest, fmt.Errorf("bad num_idk parameter: %w", err))
		return
	}
	sc, ok, err := e.storedCounts(q.Get("num_idk"), day)
	switch {
	case err != nil:
		writeEntriesError(w, http.StatusInternalServerError, err)
	case !ok:
		writeEntriesError(w, http.StatusNotFound, fmt.Errorf("no counts entered for ИДК %s on %s", q.Get("num_idk"), q.Get("date")))
	default:
		writeEntriesJSON(w, http.StatusOK, sc)
	}
}

// entriesStatus is the status of an error of Entries: what the client
// must fix is 4xx, the rest is the server's.
func entriesStatus(err error) int {
	switch {
	case errors.Is(err, ErrNoEntry):
		return http.StatusNotFound
	case errors.Is(err, ErrEntryChanged):
		return http.StatusConflict
	case errors.Is(err, ErrEntryRefused):
		return http.StatusBadRequest
	}
	return http.StatusInternalServerError
}

// entryErrorJSON is one refused value in a 400's "errors".
type entryErrorJSON struct {
	Table   int    `json:"table"`
	Row     int    `json:"row,omitempty"`
	Where   string `json:"where,omitempty"`
	Field   string `json:"field"`
	Message string `json:"message"`
}

func writeEntriesError(w http.ResponseWriter, status int, err error) {
	body := struct {
		Error  string           `json:"error"`
		Errors []entryErrorJSON `json:"errors,omitempty"`
	}{Error: err.Error()}
	var es EntryErrors
	var ee *EntryError
	if errors.As(err, &es) {
		for _, e := range es {
			body.Errors = append(body.Errors, entryErrorJSON{e.Table, e.Row, e.Where, e.Field, e.Msg})
		}
	} else if errors.As(err, &ee) {
		body.Errors = []entryErrorJSON{{ee.Table, ee.Row, ee.Where, ee.Field, ee.Msg}}
	}
	writeEntriesJSON(w, status, body)
}

func writeEntriesJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	// The status is sent; a failed write means the client left.
	_ = json.NewEncoder(w).Encode(v)
}

func requireBody(w http.ResponseWriter, name, v string) bool {
	if strings.TrimSpace(v) == "" {
		writeEntriesError(w, http.StatusBadRequest, fmt.Errorf("missing %q in body", name))
		return false
	}
	return true
}

// decodeEntriesBody reads a JSON body of at most max bytes into v,
// refusing unknown fields so that a misspelt one ("reasn") is not
// silently dropped. On failure it has answered and returns false.
func decodeEntriesBody(w http.ResponseWriter, r *http.Request, v any, max int64, want string) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, max))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil {
		// One value and nothing after it.
		if dec.Decode(&struct{}{}) != io.EOF {
			err = errors.New("more after the JSON value")
		}
	}
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeEntriesError(w, http.StatusRequestEntityTooLarge, fmt.Errorf("body larger than %d bytes: send fewer rows at a time", max))
			return false
		}
		writeEntriesError(w, http.StatusBadRequest, fmt.Errorf("bad body: want JSON %s, values as strings: %w", want, err))
		return false
	}
	return true
}

// entriesQuery returns the request's parameters after checking them
// (httpjson.CheckQuery). On failure it has answered 400 and returns false.
func entriesQuery(w http.ResponseWriter, r *http.Request, allowed ...string) (url.Values, bool) {
	q, err := httpjson.CheckQuery(r, allowed...)
	if err != nil {
		writeEntriesError(w, http.StatusBadRequest, err)
		return nil, false
	}
	return q, true
}
