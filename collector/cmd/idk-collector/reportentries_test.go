package main

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"idk/collector/ingest"
	"idk/collector/report"
	"idk/collector/store"
)

type noScans struct{}

func (noScans) LookupScan(string, string) (report.ScanIdentity, bool, error) {
	return report.ScanIdentity{}, false, nil
}

// reportEntriesAPI serves the entries API behind a token check, as the
// collector mounts it, and returns the flags that reach it.
func reportEntriesAPI(t *testing.T) []string {
	t.Helper()
	dir := t.TempDir()
	st, err := store.Open(filepath.Join(dir, "data"), store.Options{Location: time.UTC})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	h := report.NewEntries(ingest.FromStore(st), noScans{}, time.UTC, nil).Handler()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer secret" {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	tok := filepath.Join(dir, "token")
	os.WriteFile(tok, []byte("secret\n"), 0o600)
	return []string{"-api", srv.URL + "/", "-token-file", tok}
}

func runReportCLI(f func([]string, io.Writer, io.Writer) int, args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := f(args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestReportEntryCommand(t *testing.T) {
	api := reportEntriesAPI(t)
	dir := t.TempDir()
	rows := filepath.Join(dir, "rows.json")
	os.WriteFile(rows, []byte(`[{"KOD_TO": "10216100", "DATE_SYS": "27.11.2026", "KOL_VO_NAR": "5", "FIO": "ИВАНОВ И И", "LNP": "056"}]`), 0o644)
	code, out, errs := runReportCLI(reportEntryCommand, append(api, "-table", "5", "-f", rows, "-by", "ИВАНОВ")...)
	if code != 0 || !strings.Contains(out, `"id": "T5-000001"`) || !strings.Contains(out, `"LNP": "056"`) {
		t.Fatalf("add: %d %s %s", code, out, errs)
	}
	code, out, errs = runReportCLI(reportEntryCommand, append(api, "-correct", "T5-000001", "-reason", "ОПЕЧАТКА", "-by", "ИВАНОВ", "KOL_VO_NAR=6")...)
	if code != 0 || !strings.Contains(out, `"version": 2`) || !strings.Contains(out, `"KOL_VO_NAR": "6"`) {
		t.Fatalf("correct: %d %s %s", code, out, errs)
	}
	code, out, errs = runReportCLI(reportEntryCommand, append(api, "-history", "T5-000001")...)
	if code != 0 || strings.Count(out, `"version"`) != 2 {
		t.Fatalf("history: %d %s %s", code, out, errs)
	}
	// The API's refusal reaches the officer whole.
	os.WriteFile(rows, []byte(`[{"KOD_TO": "10216100", "DATE_SYS": "31.11.2026", "FIO": "ИВАНОВ И И", "LNP": "056"}]`), 0o644)
	code, _, errs = runReportCLI(reportEntryCommand, append(api, "-table", "5", "-f", rows, "-by", "ИВАНОВ")...)
	if code != 1 || !strings.Contains(errs, "table 5, row 1, field DATE_SYS") {
		t.Fatalf("refused: %d %s", code, errs)
	}
	// Numbers are refused before sending, with the reason.
	os.WriteFile(rows, []byte(`[{"LNP": 56}]`), 0o644)
	code, _, errs = runReportCLI(reportEntryCommand, append(api, "-table", "5", "-f", rows, "-by", "ИВАНОВ")...)
	if code != 2 || !strings.Contains(errs, "every value as a string") {
		t.Fatalf("number: %d %s", code, errs)
	}
	for _, args := range [][]string{
		{"-table", "5", "-by", "И"},
		{"-correct", "T5-000001", "-by", "И", "KOL_VO_NAR=6"},
		{"-correct", "T5-000001", "-by", "И", "-reason", "Р"},
		{"-correct", "T5-000001", "-by", "И", "-reason", "Р", "KOL_VO_NAR"},
	} {
		if code, _, _ := runReportCLI(reportEntryCommand, append(api, args...)...); code != 2 {
			t.Errorf("%q: exit %d, want 2", args, code)
		}
	}
	// A wrong token is the API's refusal.
	api[3] = rows
	if code, _, errs := runReportCLI(reportEntryCommand, append(api, "-history", "T5-000001")...); code != 1 || !strings.Contains(errs, "401") {
		t.Fatalf("bad token: %d %s", code, errs)
	}
}

func TestReportCountsCommand(t *testing.T) {
	api := reportEntriesAPI(t)
	code, out, errs := runReportCLI(reportCountsCommand, append(api, "-num-idk", "850591", "-date", "2026-11-27", "-by", "ПЕТРОВ", "OKO_GRU_IM=12", "KOVR_GRU_IM=10")...)
	if code != 0 || !strings.Contains(out, `"date": "27.11.2026"`) || !strings.Contains(out, `"KOVR_GRU_IM": 10`) {
		t.Fatalf("set: %d %s %s", code, out, errs)
	}
	code, out, errs = runReportCLI(reportCountsCommand, append(api, "-num-idk", "850591", "-date", "27.11.2026")...)
	if code != 0 || !strings.Contains(out, `"OKO_GRU_IM": 12`) || !strings.Contains(out, `"by": "ПЕТРОВ"`) {
		t.Fatalf("show: %d %s %s", code, out, errs)
	}
	code, _, errs = runReportCLI(reportCountsCommand, append(api, "-num-idk", "850591", "-date", "27.11.2026", "-by", "П", "OKO_GRU_IM=1", "KOVR_GRU_IM=2")...)
	if code != 1 || !strings.Contains(errs, "field KOVR_GRU_IM: 2 is more than OKO_GRU_IM 1") {
		t.Fatalf("refused: %d %s", code, errs)
	}
	for _, args := range [][]string{
		{"-num-idk", "850591", "-date", "27.11.2026", "OKO_GRU_IM=1"},
		{"-num-idk", "850591", "-date", "27.11.2026", "-by", "П", "OKO_GRU_IM=много"},
		{"-num-idk", "850591", "-date", "27.11.2026", "-by", "П", "OKO_GRU_IM"},
		{"-num-idk", "850591", "-date", "27.11.2026", "-by", "П", "OKO_GRU_IM=1", "OKO_GRU_IM=2"},
		{"-date", "27.11.2026"},
	} {
		if code, _, _ := runReportCLI(reportCountsCommand, append(api, args...)...); code != 2 {
			t.Errorf("%q: exit %d, want 2", args, code)
		}
	}
}
