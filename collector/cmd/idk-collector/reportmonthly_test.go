package main

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReportMonthlyCommandSmoke(t *testing.T) {
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = append(got, r.Method+" "+r.URL.String())
		if r.URL.Path == "/api/v1/reports/monthly" {
			w.Header().Set("X-Report-Version", "2")
			w.Write([]byte("PK"))
			return
		}
		w.Write([]byte(`{"ok": true}`))
	}))
	defer srv.Close()
	dir := t.TempDir()
	tok := filepath.Join(dir, "token")
	os.WriteFile(tok, []byte("s\n"), 0o600)
	api := []string{"-api", srv.URL, "-token-file", tok}
	out := filepath.Join(dir, "m.xlsx")
	code, so, se := runReportCLI(reportMonthlyCommand, append(api, "-month", "2026-11", "-o", out)...)
	t.Log(code, so, se)
	code, so, se = runReportCLI(reportMonthlyCommand, append(api, "-month", "2026-11", "-publish", "-by", "ИВАНОВ")...)
	t.Log(code, so, se)
	code, so, se = runReportCLI(reportMonthlyCommand, append(api, "-month", "2026-11", "-summary", "-versions")...)
	t.Log(code, so, se)
	code, so, se = runReportCLI(reportMonthlyCommand, append(api, "-o", "x")...)
	t.Log(code, so, se)
	t.Log(strings.Join(got, "\n"))
}
