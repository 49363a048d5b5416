//go:build unix

package report

import (
	"bytes"
	"context"
	"encoding/csv"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"syscall"
	"testing"
	"time"

	"idk/internal/testenv"
)

// csvFilter is LibreOffice's CSV export: comma, double quote, UTF-8 (76),
// from line 1, cells as shown off (raw values), and token 12 = -1, which
// (LibreOffice 7.2 on) writes every sheet, sheet S of FILE.xlsx to
// FILE-S.csv.
const csvFilter = "csv:Text - txt - csv (StarCalc):44,34,76,1,,0,false,true,false,false,false,-1"

// TestWorkbookInLibreOffice opens a workbook of all six tables in
// LibreOffice Calc, as the people receiving the report may, and checks
// every cell of every sheet as Calc reads it: dates, durations and
// decimal commas stay text, codes stay numbers, leading zeros stay.
func TestWorkbookInLibreOffice(t *testing.T) {
	soffice := testenv.RequireTool(t, "soffice", "libreoffice-calc-nogui")
	dir := t.TempDir()
	requireLibreOffice72(t, soffice, dir)

	sheets, want := sampleSheets(5)
	var buf bytes.Buffer
	if err := WriteWorkbook(&buf, sheets, testOptions); err != nil {
		t.Fatal(err)
	}
	xlsx := filepath.Join(dir, "report.xlsx")
	if err := os.WriteFile(xlsx, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "csv")
	runSoffice(t, soffice, dir, "--convert-to", csvFilter, "--outdir", out, xlsx)

	for _, tb := range Tables {
		name := filepath.Join(out, "report-"+tb.Sheet+".csv")
		b, err := os.ReadFile(name)
		if err != nil {
			entries, _ := os.ReadDir(out)
			var got []string
			for _, e := range entries {
				got = append(got, e.Name())
			}
			t.Errorf("sheet %q: %v (LibreOffice wrote %q)", tb.Sheet, err, got)
			continue
		}
		r := csv.NewReader(bytes.NewReader(b))
		r.FieldsPerRecord = -1
		rows, err := r.ReadAll()
		if err != nil {
			t.Errorf("sheet %q: %v", tb.Sheet, err)
			continue
		}
		wrows := want[tb.Sheet]
		if len(rows) != len(wrows) {
			t.Errorf("sheet %q: %d rows, want %d", tb.Sheet, len(rows), len(wrows))
			continue
		}
		for i := range wrows {
			// Calc writes every row to the width of the sheet's used area.
			if len(rows[i]) != len(wrows[i]) {
				t.Errorf("sheet %q row %d: %d fields, want %d: %q", tb.Sheet, i+1, len(rows[i]), len(wrows[i]), rows[i])
				continue
			}
			for j := range wrows[i] {
				if rows[i][j] != wrows[i][j] {
					t.Errorf("sheet %q row %d column %s: Calc has %q, want %q", tb.Sheet, i+1, tb.Columns[j].Name, rows[i][j], wrows[i][j])
				}
			}
		}
	}
}

// requireLibreOffice72 fails the test (or skips it, outside CI) for a
// LibreOffice older than 7.2, whose CSV export writes the first sheet only.
func requireLibreOffice72(t *testing.T, soffice, dir string) {
	t.Helper()
	v := runSoffice(t, soffice, dir, "--version")
	m := regexp.MustCompile(`LibreOffice (\d+)\.(\d+)`).FindSubmatch(v)
	if m == nil {
		t.Fatalf("soffice --version: no version in %q", v)
	}
	major, _ := strconv.Atoi(string(m[1]))
	minor, _ := strconv.Atoi(string(m[2]))
	t.Logf("%s", bytes.TrimSpace(v))
	testenv.Require(t, major > 7 || major == 7 && minor >= 2, "LibreOffice "+string(m[1])+"."+string(m[2])+" exports one sheet to CSV: 7.2 or later needed")
}

// runSoffice runs soffice headless with a profile of its own in dir, so
// that tests running at once do not share one, and gives it two minutes:
// soffice can hang, and then it and everything it started are killed.
func runSoffice(t *testing.T, soffice, dir string, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	profile := url.URL{Scheme: "file", Path: filepath.Join(dir, "profile")}
	args = append([]string{"-env:UserInstallation=" + profile.String(), "--headless", "--norestore"}, args...)
	cmd := exec.CommandContext(ctx, soffice, args...)
	// soffice is a script that starts soffice.bin: killing the process
	// group kills both.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	cmd.Env = append(os.Environ(), "HOME="+dir)
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("soffice %q: killed after %v: %s", args, 2*time.Minute, out)
	}
	if err != nil {
		t.Fatalf("soffice %q: %v: %s", args, err, out)
	}
	return out
}
