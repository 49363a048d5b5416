package report

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func entHTTP(t *testing.T) (*entFixture, *httptest.Server) {
	t.Helper()
	f := newEntFixture(t)
	srv := httptest.NewServer(f.e.Handler())
	t.Cleanup(srv.Close)
	return f, srv
}

// entCall sends body (a string, or a value to encode) and decodes the
// answer into out, returning the status.
func entCall(t *testing.T, srv *httptest.Server, method, path string, body any, out any) int {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd = strings.NewReader(string(raw))
	}
	req, err := http.NewRequest(method, srv.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("%s %s: Content-Type %q", method, path, ct)
	}
	raw, _ := io.ReadAll(resp.Body)
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("%s %s: %v: %s", method, path, err, raw)
		}
	}
	return resp.StatusCode
}

type entErrReply struct {
	Error  string `json:"error"`
	Errors []struct {
		Table   int    `json:"table"`
		Row     int    `json:"row"`
		Where   string `json:"where"`
		Field   string `json:"field"`
		Message string `json:"message"`
	} `json:"errors"`
}

func TestEntriesHTTPAddListCorrectHistory(t *testing.T) {
	_, srv := entHTTP(t)
	var added entriesReply
	st := entCall(t, srv, "POST", "/api/v1/reports/entries", EntriesRequest{Table: 6, By: "ИВАНОВ", Rows: []map[string]string{entRow6("20.11.2026"), entRow6("30.11.2026")}}, &added)
	if st != http.StatusCreated || len(added.Entries) != 2 || added.Entries[0].ID != "T6-000001" {
		t.Fatalf("POST: %d %+v", st, added)
	}
	var list entriesReply
	st = entCall(t, srv, "GET", "/api/v1/reports/entries?table=6&kod_to=10216100&from=01.11.2026&to=30.11.2026", nil, &list)
	if st != http.StatusOK || len(list.Entries) != 2 || list.Entries[1].Fields["DATE_SYS_V"] != "30.11.2026" {
		t.Fatalf("GET list (to is included): %d %+v", st, list)
	}
	var v2 Entry
	st = entCall(t, srv, "PUT", "/api/v1/reports/entries/T6-000001", CorrectionRequest{By: "СИДОРОВ", Reason: "РЕЗУЛЬТАТ", Fields: map[string]string{"REZ": "8", "DATE_SYS_R": "25.11.2026"}}, &v2)
	if st != http.StatusOK || v2.Version != 2 || v2.Fields["REZ"] != "8" || v2.Reason != "РЕЗУЛЬТАТ" {
		t.Fatalf("PUT: %d %+v", st, v2)
	}
	var h entriesReply
	st = entCall(t, srv, "GET", "/api/v1/reports/entries/T6-000001", nil, &h)
	if st != http.StatusOK || len(h.Entries) != 2 || h.Entries[0].Version != 1 || h.Entries[1].Version != 2 {
		t.Fatalf("GET history: %d %+v", st, h)
	}
	st = entCall(t, srv, "GET", "/api/v1/reports/entries?table=6&kod_to=10216100&from=01.12.2026&to=31.12.2026", nil, &list)
	if st != http.StatusOK || list.Entries == nil || len(list.Entries) != 0 {
		t.Fatalf("empty list: %d %+v", st, list)
	}
}

func TestEntriesHTTPRefusals(t *testing.T) {
	_, srv := entHTTP(t)
	bad := entRow2()
	bad["REZ"] = "9"
	for _, c := range []struct {
		method, path string
		body         any
		status       int
		want         string
	}{
		{"POST", "/api/v1/reports/entries", EntriesRequest{Table: 2, By: "П", Rows: []map[string]string{entRow2(), bad}}, 400,
			`table 2, row 2, field REZ: "9" is not a code of REZ (table 2): want 1-8`},
		{"POST", "/api/v1/reports/entries", EntriesRequest{Table: 2, Rows: []map[string]string{entRow2()}}, 400, `missing "by" in body`},
		{"POST", "/api/v1/reports/entries", EntriesRequest{By: "П", Rows: []map[string]string{entRow2()}}, 400, `missing "table"`},
		{"POST", "/api/v1/reports/entries", EntriesRequest{Table: 4, By: "П", Rows: []map[string]string{entRow2()}}, 400, "tables 2, 5 and 6 only"},
		{"POST", "/api/v1/reports/entries", `{"table": 5, "by": "П", "rows": [{"KOL_VO_NAR": 5}]}`, 400, "values as strings"},
		{"POST", "/api/v1/reports/entries", `{"table": 5, "by": "П", "row": []}`, 400, `unknown field "row"`},
		{"POST", "/api/v1/reports/entries", `{"table": 5, "by": "П", "rows": []} {}`, 400, "more after the JSON value"},
		{"POST", "/api/v1/reports/entries", `{"table": 5, "by": "П", "rows": [{"OPISANIE": "` + strings.Repeat("А", maxEntriesBody) + `"}]}`, 413, "body larger than"},
		{"PUT", "/api/v1/reports/entries/T2-000001", CorrectionRequest{By: "П", Fields: map[string]string{"REZ": "2"}}, 400, `missing "reason" in body`},
		{"PUT", "/api/v1/reports/entries/T2-000099", CorrectionRequest{By: "П", Reason: "Р", Fields: map[string]string{"REZ": "2"}}, 404, "no such entry"},
		{"PUT", "/api/v1/reports/entries/T2-1", CorrectionRequest{By: "П", Reason: "Р", Fields: map[string]string{"REZ": "2"}}, 400, "not an entry ID"},
		{"PUT", "/api/v1/reports/entries/T2-000001", `{"by": "П", "reason": "Р", "fields": {"REZ": "2"}, "extra": 1}`, 400, `unknown field "extra"`},
		{"GET", "/api/v1/reports/entries/T5-000001", nil, 404, "no such entry"},
		{"GET", "/api/v1/reports/entries?table=2&kod_to=10216100&from=01.11.2026", nil, 400, "missing parameter to"},
		{"GET", "/api/v1/reports/entries?table=2&kod_to=10216100&from=2026-11-01&to=30.11.2026", nil, 400, `bad from parameter "2026-11-01"`},
		{"GET", "/api/v1/reports/entries?table=2&kod_to=1021&from=01.11.2026&to=30.11.2026", nil, 400, "KOD_TO"},
		{"GET", "/api/v1/reports/entries?table=2&kod_to=10216100&from=01.11.2026&to=30.10.2026", nil, 400, "before from"},
		{"GET", "/api/v1/reports/entries?table=2&kodto=10216100", nil, 400, `unknown parameter "kodto"`},
		{"PUT", "/api/v1/reports/counts", CountsRequest{NumIDK: "850591", Date: "27.11.2026", By: "П", Counts: Counts{"OKO_GRU_IM": 1, "KOVR_GRU_IM": 2}}, 400,
			"table 3, NUM_IDK 850591, 27.11.2026, field KOVR_GRU_IM: 2 is more than OKO_GRU_IM 1"},
		{"PUT", "/api/v1/reports/counts", CountsRequest{NumIDK: "850591", Date: "27.11.2026", Counts: Counts{"OKO_GRU_IM": 1}}, 400, `missing "by"`},
		{"PUT", "/api/v1/reports/counts", CountsRequest{NumIDK: "850591", Date: "2026-11-27", By: "П", Counts: Counts{"OKO_GRU_IM": 1}}, 400, "bad date"},
		{"PUT", "/api/v1/reports/counts", `{"num_idk": "850591", "date": "27.11.2026", "by": "П", "counts": {"OKO_GRU_IM": 1.5}}`, 400, "bad body"},
		{"GET", "/api/v1/reports/counts?num_idk=850591&date=27.11.2026", nil, 404, "no counts entered"},
		{"GET", "/api/v1/reports/counts?num_idk=850591", nil, 400, "missing parameter"},
		{"GET", "/api/v1/reports/counts?num_idk=85%200591&date=27.11.2026", nil, 400, "bad num_idk"},
	} {
		var reply entErrReply
		st := entCall(t, srv, c.method, c.path, c.body, &reply)
		if st != c.status || !strings.Contains(reply.Error, c.want) {
			t.Errorf("%s %s: %d %q, want %d %q", c.method, c.path, st, reply.Error, c.status, c.want)
		}
	}
	// A refused row is listed field by field.
	var reply entErrReply
	entCall(t, srv, "POST", "/api/v1/reports/entries", EntriesRequest{Table: 2, By: "П", Rows: []map[string]string{entRow2(), bad}}, &reply)
	if len(reply.Errors) != 1 || reply.Errors[0].Table != 2 || reply.Errors[0].Row != 2 || reply.Errors[0].Field != "REZ" {
		t.Fatalf("errors: %+v", reply.Errors)
	}
}

func TestEntriesHTTPConflict(t *testing.T) {
	f, srv := entHTTP(t)
	out, err := f.e.Add(5, []map[string]string{entRow5("27.11.2026")}, "П")
	if err != nil {
		t.Fatal(err)
	}
	f.e.db = &conflictingEntries{db: f.db, id: out[0].ID}
	var reply entErrReply
	st := entCall(t, srv, "PUT", "/api/v1/reports/entries/"+out[0].ID, CorrectionRequest{By: "П", Reason: "Р", Fields: map[string]string{"KOL_VO_NAR": "7"}}, &reply)
	if st != http.StatusConflict || !strings.Contains(reply.Error, "corrected meanwhile") {
		t.Fatalf("%d %q", st, reply.Error)
	}
}

func TestCountsHTTP(t *testing.T) {
	f, srv := entHTTP(t)
	var sc StoredCounts
	st := entCall(t, srv, "PUT", "/api/v1/reports/counts", CountsRequest{NumIDK: "850591", Date: "27.11.2026", By: "ПЕТРОВ", Counts: Counts{"OKO_GRU_IM": 12, "KOVR_GRU_IM": 10}}, &sc)
	if st != http.StatusOK || sc.Version != 1 || sc.Date != "27.11.2026" || sc.Counts["KOVR_GRU_IM"] != 10 {
		t.Fatalf("PUT: %d %+v", st, sc)
	}
	entCall(t, srv, "PUT", "/api/v1/reports/counts", CountsRequest{NumIDK: "850591", Date: "27.11.2026", By: "ИВАНОВ", Counts: Counts{"OKO_GRU_IM": 13, "KOVR_GRU_IM": 10}}, &sc)
	st = entCall(t, srv, "GET", "/api/v1/reports/counts?num_idk=850591&date=27.11.2026", nil, &sc)
	if st != http.StatusOK || sc.Version != 2 || sc.By != "ИВАНОВ" || sc.Counts["OKO_GRU_IM"] != 13 {
		t.Fatalf("GET: %d %+v", st, sc)
	}
	if c, ok, err := f.e.Counts("850591", entDay(27)); err != nil || !ok || c["OKO_GRU_IM"] != 13 {
		t.Fatalf("Counts: %v %v %v", c, ok, err)
	}
}
