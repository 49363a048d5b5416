package harness

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"idk/internal/testenv"
)

// amNotification is what Alertmanager's webhook receiver posts.
type amNotification struct {
	Receiver string `json:"receiver"`
	Status   string `json:"status"`
	Alerts   []struct {
		Status string            `json:"status"`
		Labels map[string]string `json:"labels"`
	} `json:"alerts"`
}

// testAlertmanagerConfig derives the test's Alertmanager configuration
// from deploy/prometheus/alertmanager.yml: its routes and inhibit rules
// as they are, group_wait and group_interval cut to 1 s so that the test
// does not wait half a minute per group, and each receiver replaced by a
// webhook to url/<receiver name>, so that the test sees who was notified.
// It returns the configuration and the names of the receivers.
func testAlertmanagerConfig(t *testing.T, url string) (string, []string) {
	t.Helper()
	src, err := os.ReadFile("../../deploy/prometheus/alertmanager.yml")
	if err != nil {
		t.Fatal(err)
	}
	head, receivers, ok := strings.Cut(string(src), "\nreceivers:\n")
	if !ok {
		t.Fatal("alertmanager.yml: no receivers: section")
	}
	head = regexp.MustCompile(`(group_wait|group_interval): \S+`).ReplaceAllString(head, "$1: 1s")
	var names []string
	var conf strings.Builder
	conf.WriteString(head + "\nreceivers:\n")
	for _, m := range regexp.MustCompile(`(?m)^  - name: '?([A-Za-z0-9_-]+)'?\s*$`).FindAllStringSubmatch(receivers, -1) {
		names = append(names, m[1])
		fmt.Fprintf(&conf, "  - name: %s\n    webhook_configs:\n      - url: '%s/%s'\n        send_resolved: false\n", m[1], url, m[1])
	}
	if len(names) < 3 {
		t.Fatalf("alertmanager.yml: receivers %v: want the unrouted one, the duty and the roles'", names)
	}
	return conf.String(), names
}

// regionLabel is the region external label of deploy/prometheus/prometheus.yml.
func regionLabel(t *testing.T) string {
	t.Helper()
	src, err := os.ReadFile("../../deploy/prometheus/prometheus.yml")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^\s+region: '([^']+)'`).FindStringSubmatch(string(src))
	if m == nil {
		t.Fatal("prometheus.yml: no region external label")
	}
	return m[1]
}

// Alerts reach people: a real Prometheus evaluates the repository's rules
// against a real collector and sends to a real Alertmanager configured
// with the routes of deploy/prometheus/alertmanager.yml (receivers
// replaced by the test's webhook). A planted breach of TIME_1
// (IDKDeadlineBreached, critical, no `for`, so no waiting and no rule
// needs shortening) reaches the region's duty and the shift leads, with
// its alertname, region, severity and role; a deadline near
// (IDKDeadlineNear, warning) reaches the shift leads and not the duty.
func TestEndToEndAlertmanagerRoutesPlantedBreach(t *testing.T) {
	promBin := testenv.RequireTool(t, "prometheus", "prometheus")
	amBin := testenv.RequireTool(t, "prometheus-alertmanager", "prometheus-alertmanager")
	env, _ := startEnv(t, Options{Agents: 2})
	region := regionLabel(t)

	var mu sync.Mutex
	var got []amNotification
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var n amNotification
		if err := json.NewDecoder(r.Body).Decode(&n); err != nil {
			t.Errorf("webhook: %v", err)
		}
		if "/"+n.Receiver != r.URL.Path {
			t.Errorf("webhook: receiver %q posted to %s", n.Receiver, r.URL.Path)
		}
		mu.Lock()
		got = append(got, n)
		mu.Unlock()
	}))
	defer hook.Close()

	amConf, receivers := testAlertmanagerConfig(t, hook.URL)
	duty, shiftLeads := region+"-duty", region+"-shift-lead"
	for _, r := range []string{duty, shiftLeads} {
		if !strings.Contains(strings.Join(receivers, " "), r) {
			t.Fatalf("alertmanager.yml has no receiver %s (receivers %v)", r, receivers)
		}
	}
	amPath := filepath.Join(env.Dir, "alertmanager.yml")
	if err := os.WriteFile(amPath, []byte(amConf), 0o644); err != nil {
		t.Fatal(err)
	}
	am, err := env.StartPromProgram("alertmanager", amBin, "--config.file="+amPath,
		"--storage.path="+filepath.Join(env.Dir, "alertmanager-data"), "--web.listen-address={addr}",
		"--cluster.listen-address=")
	if err != nil {
		t.Fatal(err)
	}
	defer am.Stop()

	// TIME_1 of 850591 breached a minute ago; TIME_1 of 850592 with two
	// and a half minutes left (near: under 3).
	postT4Event(t, env, map[string]any{"kind": "risk_detected", "num_idk": "850591", "by": "ИНСПЕКТОР",
		"docs": []string{"10216100/281126/0000601"}, "time": time.Now().Add(-16 * time.Minute).Format(time.RFC3339)})
	postT4Event(t, env, map[string]any{"kind": "risk_detected", "num_idk": "850592", "by": "ИНСПЕКТОР",
		"docs": []string{"10216100/281126/0000602"}, "time": time.Now().Add(-(12*time.Minute + 30*time.Second)).Format(time.RFC3339)})

	rules, err := filepath.Abs("../../deploy/prometheus/rules")
	if err != nil {
		t.Fatal(err)
	}
	prom, err := env.StartPrometheus(promBin, fmt.Sprintf(`global:
  scrape_interval: 1s
  evaluation_interval: 1s
  external_labels:
    region: %q
alerting:
  alertmanagers:
    - static_configs:
        - targets: [%q]
rule_files:
  - %s/*.yml
scrape_configs:
  - job_name: idk-collector
    static_configs:
      - targets: [%q]
`, region, am.Addr, rules, env.HTTPAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer prom.Stop()

	// received reports whether receiver was sent a firing alert with
	// these labels (and any others).
	received := func(receiver string, labels map[string]string) bool {
		mu.Lock()
		defer mu.Unlock()
		for _, n := range got {
			if n.Receiver != receiver {
				continue
			}
		alerts:
			for _, a := range n.Alerts {
				if a.Status != "firing" {
					continue
				}
				for k, v := range labels {
					if a.Labels[k] != v {
						continue alerts
					}
				}
				return true
			}
		}
		return false
	}
	breach := map[string]string{"alertname": "IDKDeadlineBreached", "region": region, "severity": "critical",
		"role": "shift_lead", "num_idk": "850591", "rule": "time_1"}
	near := map[string]string{"alertname": "IDKDeadlineNear", "region": region, "severity": "warning",
		"role": "shift_lead", "num_idk": "850592", "rule": "time_1"}
	deadline := time.Now().Add(60 * time.Second)
	for !(received(duty, breach) && received(shiftLeads, breach) && received(shiftLeads, near)) {
		if time.Now().After(deadline) {
			mu.Lock()
			t.Fatalf("within 60 s: breach at the duty %v, at the shift leads %v; near at the shift leads %v; notifications: %+v",
				received(duty, breach), received(shiftLeads, breach), received(shiftLeads, near), got)
			mu.Unlock()
		}
		time.Sleep(200 * time.Millisecond)
	}
	// A warning is not the duty's.
	warning := map[string]string{"severity": "warning"}
	if received(duty, warning) {
		mu.Lock()
		t.Errorf("the duty was sent a warning: %+v", got)
		mu.Unlock()
	}
	t.Logf("the breach reached %s and %s, the near deadline %s only", duty, shiftLeads, shiftLeads)
}
