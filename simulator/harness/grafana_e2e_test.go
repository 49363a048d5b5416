package harness

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"idk/drivers/modbus"
	"idk/internal/testenv"
	"idk/simulator/plc"
	"idk/simulator/scanner"
)

// grafanaDashboard is what the test reads of a dashboard JSON.
type grafanaDashboard struct {
	Title      string         `json:"title"`
	Panels     []grafanaPanel `json:"panels"`
	Templating struct {
		List []struct {
			Name       string `json:"name"`
			Type       string `json:"type"`
			Definition string `json:"definition"`
		} `json:"list"`
	} `json:"templating"`
}

type grafanaPanel struct {
	Type    string `json:"type"`
	Title   string `json:"title"`
	Targets []struct {
		RefID   string `json:"refId"`
		Expr    string `json:"expr"`
		Instant bool   `json:"instant"`
	} `json:"targets"`
	Panels []grafanaPanel `json:"panels"` // of a collapsed row
}

var (
	labelValuesRE  = regexp.MustCompile(`^label_values\((.+),\s*([a-z_]+)\)$`)
	docsRowRE      = regexp.MustCompile("(?m)^\\| `(idk_[a-z0-9_]+)` \\| (counter|gauge|histogram|summary) \\|")
	grafanaGlobals = strings.NewReplacer(
		// Grafana's own variables, with values for a day's dashboard
		// scraped every second: the range of the dashboard, the step of a
		// graph, and the rate window (at least four scrapes).
		"$__rate_interval", "15s", "${__rate_interval}", "15s",
		"$__interval", "10s", "${__interval}", "10s",
		"$__range", "1h", "${__range}", "1h",
	)
)

// fleetScan writes one whole scan (images, form with its decision) into
// agent i's output folder and returns its number.
func fleetScan(t *testing.T, env *Env, i int, seed uint64, suspect float64) string {
	t.Helper()
	s, err := scanner.New(scanner.Config{Out: env.Agents[i].OutputDir, NumIDK: env.Agents[i].NumIDK,
		RawMin: 50_000, RawMax: 80_000, DocsPerScan: 1, Seed: seed, SuspectRatio: suspect}, nil)
	if err != nil {
		t.Fatal(err)
	}
	sc, err := s.WriteScan(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return sc.NumSnim
}

// A simulated fleet — the real collector, three real agents, two of them
// on the simulator's Modbus PLC (one working, one with a generator fault),
// scans, an inspection past its limit and one under suspicion — is scraped
// by the real Prometheus, and every query of every panel of every
// dashboard in deploy/grafana, with its template variables resolved as
// Grafana would, returns data. The programs' metrics are also checked
// against docs/metrics.md.
func TestEndToEndGrafanaDashboardsHaveData(t *testing.T) {
	promBin := testenv.RequireTool(t, "prometheus", "prometheus")
	env, err := NewEnv(t.TempDir(), bin, Options{Agents: 3, Settle: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	DumpLogsOnFailure(t, env)

	// Agent 0: a PLC that goes from waiting to working. Agent 1: a PLC
	// with a generator fault (INOPERABLE: an open incident). Agent 2: no
	// controller.
	plcs := make([]*plc.Controller, 2)
	for i := range plcs {
		m := harnessPLCMap()
		m.GeneratorFault = modbus.Point{Source: modbus.Coil, Address: 2}
		plcs[i] = servePLC(t, env, i, m)
	}
	if err := plcs[1].SetSignal(modbus.GeneratorFault, true); err != nil {
		t.Fatal(err)
	}

	coll, err := env.StartCollector()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { coll.Stop() })
	for i := range env.Agents {
		a, err := env.StartAgent(i)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { a.Stop() })
	}

	// Prometheus first, so that counters are seen from their start.
	rules, err := filepath.Abs("../../deploy/prometheus/rules")
	if err != nil {
		t.Fatal(err)
	}
	var conf strings.Builder
	fmt.Fprintf(&conf, `global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
  - %s/*.yml
scrape_configs:
  - job_name: idk-collector
    static_configs:
      - targets: [%q]
  - job_name: idk-agent
    static_configs:
`, rules, env.HTTPAddr)
	for _, a := range env.Agents {
		fmt.Fprintf(&conf, "      - targets: [%q]\n        labels: {num_idk: %q, kod_to: %q}\n", a.MetricsAddr, a.NumIDK, a.KodTO)
	}
	prom, err := env.StartPrometheus(promBin, conf.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { prom.Stop() })

	// The devices' states.
	waitDeviceState(t, env, "waiting")
	if err := plcs[0].SetSignal(modbus.VehicleInZone, true); err != nil {
		t.Fatal(err)
	}
	waitDeviceState(t, env, "working")
	waitFor(t, 20*time.Second, "ИДК 850592 inoperable", func() bool {
		v, err := Metric(env.HTTPAddr, `idk_collector_device_state{num_idk="850592",state="inoperable"}`)
		if err != nil || v != 1 {
			time.Sleep(50 * time.Millisecond)
			return false
		}
		return true
	})

	// Scans at every ИДК; the one at 850593 is decided «Объект под
	// подозрением», which starts its TIME_3.
	fleetScan(t, env, 0, 101, 0)
	fleetScan(t, env, 1, 102, 0)
	suspect := fleetScan(t, env, 2, 103, 1)
	// An inspection whose risk was detected 16 minutes ago and is not yet
	// documented: TIME_1 of 850591 is breached and still running.
	postT4Event(t, env, map[string]any{"kind": "risk_detected", "num_idk": "850591", "by": "ИНСПЕКТОР",
		"docs": []string{"10216100/281126/0000501"}, "time": time.Now().Add(-16 * time.Minute).Format(time.RFC3339)})
	waitFor(t, 30*time.Second, "TIME_3 of the suspected scan "+suspect, func() bool {
		if _, err := Metric(env.HTTPAddr, `idk_collector_deadline_seconds{num_idk="850593",rule="time_3"}`); err != nil {
			time.Sleep(100 * time.Millisecond)
			return false
		}
		return true
	})

	// Prometheus has scraped it all: the states of the two ИДК with a
	// controller (the third, with none, has no state to report) and the
	// open clocks.
	var seen string
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("Prometheus held: %s", seen)
		}
	})
	waitFor(t, 30*time.Second, "Prometheus to hold the fleet's series", func() bool {
		st, err1 := prom.Query(`idk_collector_device_state == 1`)
		dl, err2 := prom.Query(`idk_collector_deadline_seconds{rule="time_3"} or idk_collector_deadline_seconds{rule="time_1"} < 0`)
		seen = fmt.Sprintf("states %v (%v), clocks %v (%v)", st, err1, dl, err2)
		if err1 != nil || err2 != nil || len(st) < 2 || len(dl) < 2 {
			time.Sleep(200 * time.Millisecond)
			return false
		}
		return true
	})

	// What the programs export, and docs/metrics.md agrees with it.
	exported := map[string]string{}
	for _, addr := range append([]string{env.HTTPAddr}, agentAddrs(env)...) {
		types, err := MetricTypes(addr, "idk_")
		if err != nil {
			t.Fatal(err)
		}
		maps.Copy(exported, types)
	}
	checkMetricsDocumented(t, exported)

	// Every dashboard's queries, until each has data or a minute passes.
	paths, _ := filepath.Glob("../../deploy/grafana/*.json")
	if len(paths) < 4 {
		t.Fatalf("dashboards %v: want at least 4", paths)
	}
	type query struct {
		where, expr string
		instant     bool
	}
	var queries []query
	for _, path := range paths {
		src, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var dash grafanaDashboard
		if err := json.Unmarshal(src, &dash); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		vars := resolveVariables(t, prom, env, filepath.Base(path), dash)
		var panels []grafanaPanel
		for _, p := range dash.Panels {
			panels = append(panels, p)
			panels = append(panels, p.Panels...)
		}
		for _, p := range panels {
			for _, q := range p.Targets {
				where := fmt.Sprintf("%s: %q %s", filepath.Base(path), p.Title, q.RefID)
				queries = append(queries, query{where: where, expr: vars.Replace(grafanaGlobals.Replace(q.Expr)), instant: q.Instant})
			}
		}
	}
	if len(queries) < 50 {
		t.Fatalf("only %d queries to check: the dashboards lost panels", len(queries))
	}
	failing := map[string]string{}
	deadline := time.Now().Add(60 * time.Second)
	for {
		clear(failing)
		for _, q := range queries {
			var res []Series
			var err error
			if q.instant {
				res, err = prom.Query(q.expr)
			} else {
				res, err = prom.QueryRange(q.expr, time.Minute, 2*time.Second)
			}
			switch {
			case err != nil:
				failing[q.where] = err.Error()
			case len(res) == 0:
				failing[q.where] = "no data: " + q.expr
			}
		}
		if len(failing) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Second)
	}
	for _, where := range slices.Sorted(maps.Keys(failing)) {
		t.Errorf("%s: %s", where, failing[where])
	}
	t.Logf("%d queries of %d dashboards returned data", len(queries), len(paths))

	// The fleet board's state panel names each ИДК's state right.
	all := "850591|850592|850593"
	res, err := prom.Query(strings.ReplaceAll(fleetStateExpr(t), "$num_idk", all))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, s := range res {
		got[s.Labels["num_idk"]] = s.Values[0]
	}
	// The state codes of the dashboards' value mappings: 850591 works (1)
	// or, its object decided, waits for the next (2); 850592 is
	// inoperable (5); 850593 has no controller and so no state.
	if v := got["850591"]; (v != 1 && v != 2) || got["850592"] != 5 || len(got) != 2 {
		t.Errorf("fleet state codes %v: want 850591 working (1) or waiting (2), 850592 inoperable (5), no other", got)
	}
	// The deadline board sees the breach.
	res, err = prom.Query(`count(idk_collector_deadline_seconds{num_idk=~"` + all + `"} < 0) or vector(0)`)
	if err != nil || len(res) != 1 || res[0].Values[0] < 1 {
		t.Errorf("breached deadlines on the board: %v (%v), want at least 1", res, err)
	}
}

// agentAddrs are the agents' metrics addresses.
func agentAddrs(env *Env) []string {
	var out []string
	for _, a := range env.Agents {
		out = append(out, a.MetricsAddr)
	}
	return out
}

// resolveVariables returns the dashboard's template variables with their
// values as Grafana would resolve them, "All" selected: each query
// variable's label_values is asked of Prometheus, after the variables
// before it are substituted, and a multi-value is the regex (a|b|c).
func resolveVariables(t *testing.T, prom *Prom, env *Env, name string, dash grafanaDashboard) *strings.Replacer {
	t.Helper()
	var pairs []string
	for _, v := range dash.Templating.List {
		if v.Type != "query" {
			continue
		}
		m := labelValuesRE.FindStringSubmatch(strings.TrimSpace(v.Definition))
		if m == nil {
			t.Errorf("%s: variable %s: %q is not label_values(selector, label)", name, v.Name, v.Definition)
			continue
		}
		selector := strings.NewReplacer(pairs...).Replace(m[1])
		values, err := prom.LabelValues(m[2], selector)
		if err != nil {
			t.Fatalf("%s: variable %s: %v", name, v.Name, err)
		}
		if m[2] == "num_idk" {
			// The ИДК with a controller are offered, and only ИДК of
			// the fleet.
			for _, want := range []string{"850591", "850592"} {
				if !slices.Contains(values, want) {
					t.Errorf("%s: variable %s offers %v, not ИДК %s", name, v.Name, values, want)
				}
			}
			for _, got := range values {
				if !slices.ContainsFunc(env.Agents, func(a Agent) bool { return a.NumIDK == got }) {
					t.Errorf("%s: variable %s offers %s, no ИДК of the fleet", name, v.Name, got)
				}
			}
		}
		slices.Sort(values)
		values = slices.Compact(values)
		if len(values) == 0 {
			t.Errorf("%s: variable %s (%s) has no values", name, v.Name, v.Definition)
			continue
		}
		val := "(" + strings.Join(values, "|") + ")"
		pairs = append(pairs, "${"+v.Name+"}", val, "$"+v.Name, val)
	}
	return strings.NewReplacer(pairs...)
}

// fleetStateExpr is the query of the fleet board's state panel.
func fleetStateExpr(t *testing.T) string {
	t.Helper()
	src, err := os.ReadFile("../../deploy/grafana/idk-fleet.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash grafanaDashboard
	if err := json.Unmarshal(src, &dash); err != nil {
		t.Fatal(err)
	}
	for _, p := range dash.Panels {
		if strings.HasPrefix(p.Title, "Состояние ИДК сейчас") && len(p.Targets) == 1 {
			return p.Targets[0].Expr
		}
	}
	t.Fatal("idk-fleet.json: no panel «Состояние ИДК сейчас»")
	return ""
}

// checkMetricsDocumented fails the test for each exported metric that
// docs/metrics.md lacks or gives another type.
func checkMetricsDocumented(t *testing.T, exported map[string]string) {
	t.Helper()
	src, err := os.ReadFile("../../docs/metrics.md")
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string]string{}
	for _, m := range docsRowRE.FindAllStringSubmatch(string(src), -1) {
		documented[m[1]] = m[2]
	}
	if len(exported) < 30 {
		t.Errorf("the programs export only %d idk_ metrics: %v", len(exported), slices.Sorted(maps.Keys(exported)))
	}
	for _, name := range slices.Sorted(maps.Keys(exported)) {
		switch doc := documented[name]; {
		case doc == "":
			t.Errorf("%s (a %s the programs export) is missing from docs/metrics.md", name, exported[name])
		case doc != exported[name]:
			t.Errorf("%s: docs/metrics.md says %s, the program exports a %s", name, doc, exported[name])
		}
	}
}
