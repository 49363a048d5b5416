package harness

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"idk/collector/report"
)

// The daily report on real processes: scans shipped by a real agent land
// in table 1 of the workbook the CLI fetches from the running collector;
// an officer's entry made with the CLI appears in a fresh build; a
// published version is fetched again byte for byte, and publishing
// unchanged content makes no new version.
func TestEndToEndDailyReport(t *testing.T) {
	env, err := NewEnv(t.TempDir(), bin, Options{Settle: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	DumpLogsOnFailure(t, env)
	a := env.Agents[0]
	coll, err := env.StartCollector()
	if err != nil {
		t.Fatal(err)
	}
	defer coll.Stop()
	agent, err := env.StartAgent(0)
	if err != nil {
		t.Fatal(err)
	}
	defer agent.Stop()
	manifest := filepath.Join(env.Dir, "manifest.jsonl")
	sim, err := env.Start("scanner", "idk-sim", "scanner", "-out", a.OutputDir, "-num-idk", a.NumIDK,
		"-scans", "3", "-raw-min", "1000", "-raw-max", "1000", "-docs", "0", "-manifest", manifest)
	if err != nil {
		t.Fatal(err)
	}
	<-sim.done
	exp, err := ReadManifest(manifest)
	if err != nil || len(exp) != 3 {
		t.Fatalf("manifest: %v %v", exp, err)
	}
	loc, err := time.LoadLocation("Europe/Moscow") // the harness collector's store.timezone
	if err != nil {
		t.Fatal(err)
	}
	date := time.Now().In(loc).Format("2006-01-02")

	cli := func(args ...string) []byte {
		t.Helper()
		cmd := exec.Command(filepath.Join(bin, "idk-collector"), append([]string{"report"}, args...)...)
		cmd.Dir = env.Dir
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("idk-collector report %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}
	sheets := func(path string) map[string][][]string {
		t.Helper()
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		wb, err := report.ReadWorkbook(bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		return wb
	}

	// Table 1 fills as the forms arrive: one row per scan, named by its
	// NUM_SNIM, with the operator's decision.
	draft := filepath.Join(env.Dir, "draft.xlsx")
	waitFor(t, 60*time.Second, "three scans in table 1", func() bool {
		cmd := exec.Command(filepath.Join(bin, "idk-collector"), "report", "daily", "-date", date, "-fresh", "-o", draft)
		cmd.Dir = env.Dir
		if cmd.Run() != nil {
			return false
		}
		rows := sheets(draft)[report.Table1.Sheet]
		if len(rows) != 4 {
			return false
		}
		for _, r := range rows[1:] {
			if r[report.Table1.Field("REZ")] == "" {
				return false // the final form is not in yet
			}
		}
		return true
	})
	rows := sheets(draft)[report.Table1.Sheet]
	if !slices.Equal(rows[0], columnNames(&report.Table1)) {
		t.Fatalf("table 1 header: %v", rows[0])
	}
	var snims []string
	for _, r := range rows[1:] {
		snims = append(snims, r[report.Table1.Field("NUM_SNIM")])
		if r[report.Table1.Field("KOD_TO")] != a.KodTO || r[report.Table1.Field("NUM_IDK")] != a.NumIDK {
			t.Errorf("row %v: identity not the ИДК's", r)
		}
	}
	for s := range exp {
		if !slices.Contains(snims, s) {
			t.Errorf("scan %s not in table 1 %v", s, snims)
		}
	}

	// An officer's table 5 row, entered with the CLI.
	rowsFile := filepath.Join(env.Dir, "table5.json")
	today := time.Now().In(loc).Format("02.01.2006")
	entry := []map[string]string{{"KOD_TO": a.KodTO, "DATE_SYS": today, "KOL_VO_PR_SNIM": "3", "KOL_VO_NAR": "0",
		"FIO": "ИВАНОВ ИВАН ИВАНОВИЧ", "LNP": "283"}}
	data, _ := json.Marshal(entry)
	if err := os.WriteFile(rowsFile, data, 0o644); err != nil {
		t.Fatal(err)
	}
	cli("entry", "-table", "5", "-f", rowsFile, "-by", "ИВАНОВ")
	// A bad one is refused, naming the table, the row and the field.
	bad := filepath.Join(env.Dir, "bad.json")
	os.WriteFile(bad, []byte(`[{"KOD_TO":"1021610","DATE_SYS":"`+today+`","FIO":"И","LNP":"1"}]`), 0o644)
	cmd := exec.Command(filepath.Join(bin, "idk-collector"), "report", "entry", "-table", "5", "-f", bad, "-by", "ИВАНОВ")
	cmd.Dir = env.Dir
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "table 5, row 1, field KOD_TO") {
		t.Errorf("a 7-digit KOD_TO: %v %s", err, out)
	}

	// Publish: version 1 holds both; publishing again makes no version 2;
	// the published file comes back byte for byte.
	var v struct {
		Created bool   `json:"created"`
		Version int    `json:"version"`
		SHA256  string `json:"sha256"`
	}
	if err := json.Unmarshal(cli("publish", "-date", date, "-by", "ПЕТРОВ"), &v); err != nil || !v.Created || v.Version != 1 {
		t.Fatalf("publish: %+v %v", v, err)
	}
	if err := json.Unmarshal(cli("publish", "-date", date, "-by", "ПЕТРОВ"), &v); err != nil || v.Created || v.Version != 1 {
		t.Fatalf("publish unchanged: %+v %v", v, err)
	}
	published := filepath.Join(env.Dir, "published.xlsx")
	cli("daily", "-date", date, "-o", published)
	got, err := os.ReadFile(published)
	if err != nil {
		t.Fatal(err)
	}
	if sum := sha256.Sum256(got); hex.EncodeToString(sum[:]) != v.SHA256 {
		t.Fatalf("published file fetched with another SHA-256 than published")
	}
	if wb := sheets(published); len(wb[report.Table5.Sheet]) != 2 || len(wb[report.Table1.Sheet]) != 4 {
		t.Fatalf("published: table 1 %d rows, table 5 %d rows (with headers)", len(wb[report.Table1.Sheet]), len(wb[report.Table5.Sheet]))
	}

	// The month so far: the monthly report built now holds the scans; the
	// item 36 page renders; the re-analysis unit finds the scans.
	monthArg := time.Now().In(loc).Format("2006-01")
	monthly := filepath.Join(env.Dir, "monthly.xlsx")
	cli("monthly", "-month", monthArg, "-fresh", "-o", monthly)
	if wb := sheets(monthly); len(wb[report.Table1.Sheet]) != 4 {
		t.Fatalf("monthly: table 1 %d rows with the header, want 4 (sheets %d)", len(wb[report.Table1.Sheet]), len(wb))
	}
	page := filepath.Join(env.Dir, "item36.html")
	cli("item36", "-month", monthArg, "-o", page)
	if html, err := os.ReadFile(page); err != nil || !strings.Contains(string(html), "<html") {
		t.Fatalf("item 36 page: %v %.200s", err, html)
	}
	cmd = exec.Command(filepath.Join(bin, "idk-collector"), "reanalysis", "scans", "-kod-to", a.KodTO, "-from", date, "-to", date)
	cmd.Dir = env.Dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("reanalysis scans: %v\n%s", err, out)
	}
	for s := range exp {
		if !strings.Contains(string(out), s) {
			t.Errorf("reanalysis scans: %s not listed", s)
		}
	}

	// The archive, with the collector stopped: this month is held and
	// is not removable.
	coll.Stop()
	status := exec.Command(filepath.Join(bin, "idk-collector"), "archive", "status", "-config", "collector.toml")
	status.Dir = env.Dir
	if out, err := status.CombinedOutput(); err != nil || !strings.Contains(string(out), monthArg) {
		t.Fatalf("archive status: %v\n%s", err, out)
	}
	remove := exec.Command(filepath.Join(bin, "idk-collector"), "archive", "remove", "-month", monthArg, "-by", "ИВАНОВ", "-config", "collector.toml")
	remove.Dir = env.Dir
	if out, err := remove.CombinedOutput(); err == nil {
		t.Fatalf("this month removed: %s", out)
	}
}

func columnNames(t *report.Table) []string {
	var names []string
	for _, c := range t.Columns {
		names = append(names, c.Name)
	}
	return names
}
