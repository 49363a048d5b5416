package harness

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"idk/internal/testenv"
)

// A real Prometheus (the Debian package) scrapes a real collector with the
// alert rules of deploy/prometheus/rules, and fires IDKDeadlineBreached
// for a planted inspection that ran past its limit.
func TestEndToEndPrometheusFiresForPlantedBreach(t *testing.T) {
	promBin := testenv.RequireTool(t, "prometheus", "prometheus")
	env, _ := startEnv(t, Options{})

	// A risk was detected 16 minutes ago and the direction to the ИДК is
	// still not documented: TIME_1 is over its 15 minutes.
	body := plantRisk(t, env, "10702070/201126/0000777", time.Now().Add(-16*time.Minute))
	// Without the token the API refuses.
	if r, err := http.Post("http://"+env.HTTPAddr+"/api/v1/cases/events", "application/json", bytes.NewReader(body)); err != nil || r.StatusCode != http.StatusUnauthorized {
		t.Fatalf("API without token: %v %v", r.Status, err)
	}

	promAddr, err := freeAddr("tcp")
	if err != nil {
		t.Fatal(err)
	}
	rules, err := filepath.Abs("../../deploy/prometheus/rules")
	if err != nil {
		t.Fatal(err)
	}
	conf := fmt.Sprintf(`global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: idk-collector
    static_configs:
      - targets: [%q]
rule_files:
  - %s/*.yml
`, env.HTTPAddr, rules)
	confPath := filepath.Join(env.Dir, "prometheus.yml")
	os.WriteFile(confPath, []byte(conf), 0o644)
	logf, _ := os.Create(filepath.Join(env.Dir, "prometheus.log"))
	defer logf.Close()
	prom := exec.Command(promBin, "--config.file="+confPath, "--storage.tsdb.path="+filepath.Join(env.Dir, "tsdb"),
		"--web.listen-address="+promAddr)
	prom.Stdout, prom.Stderr = logf, logf
	if err := prom.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { prom.Process.Kill(); prom.Wait() }()

	deadline := time.Now().Add(60 * time.Second)
	for {
		var alerts struct {
			Data struct {
				Alerts []struct {
					Labels map[string]string `json:"labels"`
					State  string            `json:"state"`
				} `json:"alerts"`
			} `json:"data"`
		}
		if r, err := http.Get("http://" + promAddr + "/api/v1/alerts"); err == nil {
			json.NewDecoder(r.Body).Decode(&alerts)
			r.Body.Close()
		}
		for _, a := range alerts.Data.Alerts {
			if a.Labels["alertname"] == "IDKDeadlineBreached" && a.State == "firing" &&
				a.Labels["num_idk"] == "850591" && a.Labels["rule"] == "time_1" {
				t.Logf("Prometheus fired %v", a.Labels)
				return
			}
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(env.Dir, "prometheus.log"))
			t.Fatalf("IDKDeadlineBreached did not fire within 60 s; alerts %+v\nprometheus log tail: %s", alerts.Data.Alerts, tail(log, 3000))
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// A collector SIGKILLed in the middle of an open case comes back with the
// case and its deadline.
func TestEndToEndCollectorRestartKeepsOpenCase(t *testing.T) {
	env, coll := startEnv(t, Options{})
	risk := time.Now().Add(-5 * time.Minute).Truncate(time.Second)
	plantRisk(t, env, "10702070/201126/0000888", risk)
	var err error

	coll.Kill()
	if coll, err = env.StartCollector(); err != nil {
		t.Fatal(err)
	}
	defer coll.Stop()
	v, err := Metric(env.HTTPAddr, `idk_collector_deadline_seconds{num_idk="850591",rule="time_1"}`)
	want := time.Until(risk.Add(15 * time.Minute)).Seconds()
	if err != nil || v < want-5 || v > want+5 {
		t.Fatalf("deadline after restart: %v s (%v), want about %.0f s", v, err, want)
	}
	r, err := env.APIGet("/api/v1/cases?open=1")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(r.Body)
	r.Body.Close()
	if !strings.Contains(string(b), "10702070/201126/0000888") {
		t.Fatalf("open case lost across the restart: %s", b)
	}
}

// The officers' command line reports events and lists breaches through the
// running collector's API.
func TestEndToEndCaseCommandLine(t *testing.T) {
	env, _ := startEnv(t, Options{})
	cli := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(filepath.Join(bin, "idk-collector"), append(args, "-config", filepath.Join(env.Dir, "collector.toml"))...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("idk-collector %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	at := time.Now().Add(-40 * time.Minute).Format(time.RFC3339)
	cli("case", "risk_detected", "-num-idk", "850591", "-docs", "10702070/201126/0000999", "-at", at, "-by", "ИНСПЕКТОР")
	out := cli("breach", "list", "-without-reason")
	if !strings.Contains(out, `"TIME_1"`) || !strings.Contains(out, "850591") {
		t.Fatalf("breach list: %s", out)
	}
	var rows []struct {
		ID string `json:"id"`
	}
	json.Unmarshal([]byte(out), &rows)
	if len(rows) != 1 {
		t.Fatalf("breaches without reason: %s", out)
	}
	cli("breach", "reason", "-id", rows[0].ID, "-reason", "удаленность места применения ИДК от таможенного поста", "-by", "НАЧАЛЬНИК ПОСТА")
	if out := cli("breach", "list", "-without-reason"); strings.Contains(out, rows[0].ID) {
		t.Fatalf("still without reason after one was given: %s", out)
	}
	// A bad event is refused with a message that names the field.
	cmd := exec.Command(filepath.Join(bin, "idk-collector"), "case", "docs_returned", "-num-idk", "850591", "-by", "X", "-config", filepath.Join(env.Dir, "collector.toml"))
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "400") {
		t.Fatalf("an end event with no case was accepted: %v %s", err, out)
	}
}

// plantRisk reports through the authenticated API that a risk was detected
// at the given time for ИДК 850591, and returns the request body.
func plantRisk(t *testing.T, env *Env, doc string, at time.Time) []byte {
	t.Helper()
	tok, err := os.ReadFile(filepath.Join(env.Dir, "api.token"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(map[string]any{"kind": "risk_detected", "num_idk": "850591", "by": "ИНСПЕКТОР",
		"docs": []string{doc}, "time": at.Format(time.RFC3339)})
	req, _ := http.NewRequest(http.MethodPost, "http://"+env.HTTPAddr+"/api/v1/cases/events", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		msg, _ := io.ReadAll(resp.Body)
		t.Fatalf("planting a risk: %s: %s", resp.Status, msg)
	}
	return body
}
