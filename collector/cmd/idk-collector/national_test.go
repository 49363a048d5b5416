package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"idk/collector/national"
	"idk/collector/report"
)

// The exit statuses: 2 when it cannot run, 1 when a region is missing
// from the summary (which is written all the same), 0 when all are in.
func TestNationalCommandExitStatus(t *testing.T) {
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "national.toml")
	conf := "dir = 'reports'\n[[region]]\nname = 'СЗТУ'\nurl = 'https://a.example:9466'\ntoken_file = 'a.token'\n" +
		"[[region]]\nname = 'ЦТУ'\nurl = 'https://b.example:9466'\ntoken_file = 'b.token'\n"
	if err := os.WriteFile(cfgPath, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) (int, string) {
		var out bytes.Buffer
		code := nationalCommand(args, &out, &out)
		return code, out.String()
	}
	for _, args := range [][]string{
		{},
		{"push"},
		{"pull", "-config", cfgPath},
		{"pull", "-config", cfgPath, "-month", "2026-11", "-date", "2026-11-27"},
		{"pull", "-config", cfgPath, "-month", "2026-13"},
		{"summary", "-config", cfgPath},
		{"summary", "-config", filepath.Join(dir, "none.toml"), "-month", "2026-11"},
	} {
		if code, out := run(args...); code != 2 {
			t.Errorf("%q: exit %d, want 2\n%s", args, code, out)
		}
	}

	row := map[string]string{"KOD_TO": "10216100", "NAIM_TO": "ТАМОЖНЯ"}
	for _, c := range report.SummaryOffices.Columns[2:] {
		row[c.Name] = "0"
		if c.Kind == report.Duration {
			row[c.Name] = "0,00"
		}
	}
	row["KOL_VO_SNIM"] = "7"
	folder := filepath.Join(dir, "reports", "СЗТУ", "2026-11")
	os.MkdirAll(folder, 0o755)
	data, _ := json.Marshal(report.MonthlySummary{Month: "2026-11", Offices: []map[string]string{row}})
	os.WriteFile(filepath.Join(folder, national.SummaryFile), data, 0o644)
	out := filepath.Join(dir, "summary.json")
	code, msg := run("summary", "-config", cfgPath, "-month", "2026-11", "-o", out)
	if code != 1 || !strings.Contains(msg, "ЦТУ") {
		t.Fatalf("summary with ЦТУ not pulled: exit %d\n%s", code, msg)
	}
	var s national.Summary
	b, _ := os.ReadFile(out)
	if err := json.Unmarshal(b, &s); err != nil || s.Total["KOL_VO_SNIM"] != "7" || len(s.Missing) != 1 {
		t.Fatalf("summary %+v %v", s, err)
	}
	if code, msg := run("summary", "-config", cfgPath, "-month", "2026-11", "-o", filepath.Join(dir, "s.xlsx")); code != 1 {
		t.Fatalf("xlsx: exit %d\n%s", code, msg)
	}
}
