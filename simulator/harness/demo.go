package harness

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"idk/collector/report"
)

// DemoOptions shape a demo run.
type DemoOptions struct {
	Dir            string
	Bin            string
	Scans          int
	RawMin, RawMax int64
	Timeout        time.Duration
}

// Demo runs a collector, one simulated scanner and its agent as real
// processes, ships opt.Scans scans, verifies every file by SHA-256 at the
// collector and prints a summary. It fails unless everything arrived
// exactly once and intact.
func Demo(ctx context.Context, opt DemoOptions, out io.Writer) error {
	if opt.Timeout <= 0 {
		opt.Timeout = 10 * time.Minute
	}
	if err := os.MkdirAll(opt.Dir, 0o755); err != nil {
		return err
	}
	env, err := NewEnv(opt.Dir, opt.Bin, Options{Agents: 1})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "demo: certificates and configs in %s\n", env.Dir)
	coll, err := env.StartCollector()
	if err != nil {
		return err
	}
	defer coll.Stop()
	agent, err := env.StartAgent(0)
	if err != nil {
		return err
	}
	defer agent.Stop()
	a := env.Agents[0]
	fmt.Fprintf(out, "demo: collector on %s (QUIC, mutual TLS), agent for ИДК %s watching %s\n", env.QUICAddr, a.NumIDK, a.OutputDir)

	began := time.Now()
	manifest := filepath.Join(env.Dir, "scanner-manifest.jsonl")
	sim, err := env.Start("scanner", "idk-sim", "scanner", "-out", a.OutputDir, "-num-idk", a.NumIDK,
		"-scans", strconv.Itoa(opt.Scans), "-raw-min", strconv.FormatInt(opt.RawMin, 10),
		"-raw-max", strconv.FormatInt(opt.RawMax, 10), "-manifest", manifest)
	if err != nil {
		return err
	}
	<-sim.done
	if sim.err != nil {
		return fmt.Errorf("demo: scanner failed: %v (see %s)", sim.err, filepath.Join(env.Dir, "scanner.log"))
	}
	exp, err := ReadManifest(manifest)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "demo: scanner wrote %d scans in %.1f s; waiting for the collector\n", len(exp), time.Since(began).Seconds())
	wctx, cancel := context.WithTimeout(ctx, opt.Timeout)
	defer cancel()
	rep, err := env.WaitStored(wctx, exp, agent, coll)
	took := time.Since(began)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "\n%-30s %d\n", "scans shipped:", rep.Scans)
	fmt.Fprintf(out, "%-30s %d of %d (SHA-256 recomputed from the collector's disk)\n", "files verified:", rep.Stored, rep.Files)
	fmt.Fprintf(out, "%-30s %.1f MB\n", "bytes stored:", float64(rep.Bytes)/1e6)
	fmt.Fprintf(out, "%-30s %d / %d / %d\n", "missing / corrupted / dupes:", len(rep.Missing), len(rep.Corrupted), len(rep.Duplicated))
	fmt.Fprintf(out, "%-30s %.1f s (%.1f MB/s, from the first scan written to the last file verified)\n", "time taken:", took.Seconds(), float64(rep.Bytes)/1e6/took.Seconds())
	fmt.Fprintf(out, "%-30s %s\n", "collector data:", env.CollectorRoot())
	if !rep.OK() {
		return fmt.Errorf("demo: %s", rep)
	}
	if err := demoReport(env, out); err != nil {
		return err
	}
	return demoConsole(env, out)
}

// demoConsole makes an administrator's account with a random password
// (kept in the demo's folder, never in the repository), signs in to the
// web console as a browser would and prints what its fleet board shows.
func demoConsole(env *Env, out io.Writer) error {
	raw := make([]byte, 12)
	if _, err := rand.Read(raw); err != nil {
		return err
	}
	password := hex.EncodeToString(raw)
	pwFile := filepath.Join(env.Dir, "console-password")
	if err := os.WriteFile(pwFile, []byte(password+"\n"), 0o600); err != nil {
		return err
	}
	config := filepath.Join(env.Dir, "collector.toml")
	cmd := exec.Command(filepath.Join(env.Bin, "idk-collector"), "user", "add", "-config", config,
		"-login", "demo", "-name", "ДЕМОНСТРАЦИЯ", "-role", "admin")
	cmd.Stdin = strings.NewReader(password + "\n")
	if b, err := cmd.CombinedOutput(); err != nil && !strings.Contains(string(b), "exists") {
		return fmt.Errorf("demo: console account: %v: %s", err, b)
	}
	jar, err := cookiejar.New(nil)
	if err != nil {
		return err
	}
	c := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	base := "http://" + env.HTTPAddr
	// The accounts file is re-read within seconds of a change.
	var board string
	for deadline := time.Now().Add(10 * time.Second); ; {
		board, err = demoSignIn(c, base, "demo", password)
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	if err != nil {
		return fmt.Errorf("demo: console: %w", err)
	}
	fmt.Fprintf(out, "%-30s %s/ signed in as demo (administrator); the fleet board lists %d ИДК\n", "web console:", base, strings.Count(board, "data-num-idk="))
	fmt.Fprintf(out, "%-30s bin/idk-collector -config %s, then open %s/ (login demo, password in %s)\n", "to look yourself:", config, base, pwFile)
	return nil
}

// demoSignIn signs in through the console's form and returns the fleet
// board's HTML.
func demoSignIn(c *http.Client, base, login, password string) (string, error) {
	resp, err := c.Get(base + "/login")
	if err != nil {
		return "", err
	}
	page, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return "", err
	}
	m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindSubmatch(page)
	if m == nil {
		return "", fmt.Errorf("sign-in page without its CSRF token (%s)", resp.Status)
	}
	resp, err = c.PostForm(base+"/login", url.Values{"csrf": {string(m[1])}, "login": {login}, "password": {password}, "next": {"/"}})
	if err != nil {
		return "", err
	}
	board, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(board), `id="fleet"`) {
		return "", fmt.Errorf("sign-in answered %s, not the fleet board", resp.Status)
	}
	return string(board), nil
}

// demoReport fetches today's daily ИДК report so far from the collector's
// API, keeps it beside the demo's data and prints what its tables hold.
func demoReport(env *Env, out io.Writer) error {
	loc, err := time.LoadLocation("Europe/Moscow") // the demo collector's store.timezone
	if err != nil {
		return err
	}
	date := time.Now().In(loc).Format("2006-01-02")
	resp, err := env.APIGet("/api/v1/reports/daily?date=" + date)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("demo: daily report: %s: %s", resp.Status, data)
	}
	path := filepath.Join(env.Dir, "daily-report-"+date+".xlsx")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return err
	}
	wb, err := report.ReadWorkbook(bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("demo: daily report: %w", err)
	}
	var counts []string
	for _, t := range report.Tables {
		counts = append(counts, fmt.Sprintf("%d: %d", t.Number, max(len(wb[t.Sheet])-1, 0)))
	}
	fmt.Fprintf(out, "%-30s %s (%s; rows by table %s; %s table 1 rows lack a field: idk-collector report incomplete)\n",
		"daily report so far:", path, resp.Header.Get("X-Report-Version"), strings.Join(counts, ", "), resp.Header.Get("X-Report-Incomplete"))
	return nil
}
