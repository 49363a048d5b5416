// Package deploy_test checks the deployment files against the code they
// describe: the example configurations load with the real loaders and
// document every setting and its true default, docs/metrics.md lists
// every metric the code registers, the Prometheus rules and the Grafana
// dashboards name only metrics that exist, every alert carries the
// severity and role Alertmanager routes by, and the tools that can check
// these files (promtool, amtool, bash, shellcheck) accept them.
package deploy_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"os/exec"
	pathpkg "path"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	agentconfig "idk/agent/config"
	collectorconfig "idk/collector/config"
	"idk/internal/testenv"
)

func TestAgentExampleLoads(t *testing.T) {
	cfg, err := agentconfig.Load("agent.toml")
	if err != nil {
		t.Fatal(err)
	}
	checkDocumented(t, "agent.toml", reflect.ValueOf(agentconfig.Default()))
	// The example is for a Windows PC; the path is relative here, so only
	// its end is stable on every system.
	if !strings.HasSuffix(cfg.Scanner.OutputDir, `D:\CargoRIW\Output`) {
		t.Errorf("scanner.output_dir = %q: the literal string lost its backslashes", cfg.Scanner.OutputDir)
	}
}

// The example's register map is checked only when a controller is
// configured, so switch one on in a copy.
func TestAgentExampleControllerMap(t *testing.T) {
	src, err := os.ReadFile("agent.toml")
	if err != nil {
		t.Fatal(err)
	}
	const off = "\ntransport = ''\n"
	if !strings.Contains(string(src), off) {
		t.Fatalf("agent.toml: no %q line to switch the controller on", strings.TrimSpace(off))
	}
	path := filepath.Join(t.TempDir(), "agent.toml")
	on := strings.Replace(string(src), off, "\ntransport = 'tcp'\n", 1)
	if err := os.WriteFile(path, []byte(on), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := agentconfig.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Controller.Transport != "tcp" {
		t.Fatalf("controller.transport = %q after switching it on", cfg.Controller.Transport)
	}
}

func TestCollectorExampleLoads(t *testing.T) {
	if _, err := collectorconfig.Load("collector.toml"); err != nil {
		t.Fatal(err)
	}
	checkDocumented(t, "collector.toml", reflect.ValueOf(collectorconfig.Default()))
}

// setting is one key = value line of an example file and the comment above
// it.
type setting struct {
	line    int
	comment string
}

var (
	// [section], [section.sub], [[array]].
	sectionRE = regexp.MustCompile(`^\[\[?([a-z0-9_.]+)\]\]?\s*$`)
	keyRE     = regexp.MustCompile(`^([a-z_]+)\s*=`)
	// Default: 'text', Default: 0, Default: 0.5, Default: false, Default: empty.
	defaultRE = regexp.MustCompile(`Default: ('([^']*)'|(-?[0-9]+(?:\.[0-9]+)?)|(true|false)|empty)`)
)

// readSettings returns the settings of a TOML example by dotted key. The
// settings of every [[array]] table land on the same keys; the first one
// is kept, which is where the comments are.
func readSettings(t *testing.T, path string) map[string]setting {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	settings := map[string]setting{}
	section := ""
	var comment []string
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case strings.HasPrefix(line, "#"):
			comment = append(comment, strings.TrimSpace(strings.TrimPrefix(line, "#")))
			continue
		case sectionRE.MatchString(line):
			section = sectionRE.FindStringSubmatch(line)[1]
		case keyRE.MatchString(line):
			key := section + "." + keyRE.FindStringSubmatch(line)[1]
			if _, dup := settings[key]; !dup {
				settings[key] = setting{line: n, comment: strings.Join(comment, " ")}
			}
		}
		comment = nil
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return settings
}

// checkDocumented fails unless every setting of the configuration struct
// (walked through its toml tags) appears in the example with a comment
// that says either Required or its default, and that default is the one
// the loader applies (def is the loader's Default()).
//
// Where a struct has several fields of one struct type (the signals of the
// controller's register map), each of them must have its table, but each
// setting of the type need only be shown and explained once among them:
// the same comment eleven times would bury the example.
func checkDocumented(t *testing.T, path string, def reflect.Value) {
	t.Helper()
	settings := readSettings(t, path)
	fields, tables := tomlFields(def, "")
	for _, table := range tables {
		if !slices.ContainsFunc(slices.Collect(maps.Keys(settings)), func(k string) bool {
			return strings.HasPrefix(k, table+".")
		}) {
			t.Errorf("%s: table [%s] is missing", path, table)
		}
	}
	for key, v := range fields {
		var found []setting
		for k, s := range settings {
			if ok, _ := pathpkg.Match(key, k); ok {
				found = append(found, s)
			}
		}
		if len(found) == 0 {
			t.Errorf("%s: setting %s is missing", path, key)
			continue
		}
		// The first explained occurrence is the one checked.
		slices.SortFunc(found, func(a, b setting) int { return a.line - b.line })
		i := slices.IndexFunc(found, func(s setting) bool { return s.comment != "" })
		if i < 0 {
			t.Errorf("%s:%d: %s has no comment", path, found[0].line, key)
			continue
		}
		s := found[i]
		m := defaultRE.FindStringSubmatch(s.comment)
		if m == nil {
			if !strings.Contains(s.comment, "Required") {
				t.Errorf("%s:%d: %s: the comment gives neither the default nor Required", path, s.line, key)
			}
			continue
		}
		if err := sameDefault(v, m); err != nil {
			t.Errorf("%s:%d: %s: documented %s, but %v", path, s.line, key, m[0], err)
		}
	}
}

// tomlFields returns the leaf fields of the struct v by their dotted toml
// keys, with the values of v, and the tables that must exist. A slice of
// structs (an [[array]] of tables) is walked through its element type, with
// zero values. Fields of a struct type that occurs more than once in one
// parent get the key segment "*" and are listed as tables.
func tomlFields(v reflect.Value, prefix string) (fields map[string]reflect.Value, tables []string) {
	fields = map[string]reflect.Value{}
	typeCount := map[reflect.Type]int{}
	for i := range v.NumField() {
		typeCount[v.Type().Field(i).Type]++
	}
	for i := range v.NumField() {
		f := v.Type().Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
		if name == "" || name == "-" || !f.IsExported() {
			continue
		}
		fv := v.Field(i)
		if fv.Kind() == reflect.Slice && fv.Type().Elem().Kind() == reflect.Struct {
			fv = reflect.New(fv.Type().Elem()).Elem()
		}
		if fv.Kind() != reflect.Struct || fv.Type() == reflect.TypeFor[time.Time]() {
			fields[prefix+name] = fv
			continue
		}
		seg := name
		if typeCount[f.Type] > 1 {
			seg = "*"
			tables = append(tables, prefix+name)
		}
		sub, subTables := tomlFields(fv, prefix+seg+".")
		maps.Copy(fields, sub)
		tables = append(tables, subTables...)
	}
	return fields, tables
}

// sameDefault compares the loader's default v with the documented one, m
// being a match of defaultRE. Where the loader leaves a setting zero and
// the package that uses it fills in the default (the Modbus poller's
// interval, say), a documented non-zero default cannot be checked here.
func sameDefault(v reflect.Value, m []string) error {
	quoted, number, boolean := m[2], m[3], m[4]
	if m[1] == "empty" {
		if !v.IsZero() {
			return fmt.Errorf("the default is %v", v.Interface())
		}
		return nil
	}
	if v.IsZero() && quoted != "" {
		return nil
	}
	switch {
	case v.Type() == reflect.TypeFor[time.Duration]():
		d, err := time.ParseDuration(quoted)
		if err != nil {
			return err
		}
		if d != time.Duration(v.Int()) {
			return fmt.Errorf("the default is %v", time.Duration(v.Int()))
		}
	case v.Kind() == reflect.String:
		// Paths are documented Windows-style in agent.toml.
		if strings.ReplaceAll(quoted, `\`, "/") != filepath.ToSlash(v.String()) {
			return fmt.Errorf("the default is %q", v.String())
		}
	case v.Kind() == reflect.Bool:
		if boolean == "" || (boolean == "true") != v.Bool() {
			return fmt.Errorf("the default is %v", v.Bool())
		}
	case v.CanInt(), v.CanUint(), v.CanFloat():
		n, err := strconv.ParseFloat(number, 64)
		if err != nil {
			return fmt.Errorf("%q is not a number", m[1])
		}
		var got float64
		switch {
		case v.CanInt():
			got = float64(v.Int())
		case v.CanUint():
			got = float64(v.Uint())
		default:
			got = v.Float()
		}
		if n != got {
			return fmt.Errorf("the default is %v", got)
		}
	default:
		return fmt.Errorf("cannot compare a %s", v.Type())
	}
	return nil
}

// registeredRE finds a metric's name where the code registers it: the
// Name of a prometheus.*Opts, or the first argument of NewDesc or of
// certexpiry.New (a certificate's expiry gauge).
var registeredRE = regexp.MustCompile(`(?:Name:\s*|NewDesc\(\s*|certexpiry\.New\(\s*)"(idk_(?:collector|agent)_[a-z0-9_]+)"`)

// codeMetrics returns the names of the metrics the collector and the agent
// register, from every non-test Go file under collector/ and agent/, with
// the file each is registered in.
func codeMetrics(t *testing.T) map[string]string {
	t.Helper()
	names := map[string]string{}
	for _, root := range []string{"../collector", "../agent"} {
		err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return err
			}
			src, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			for _, m := range registeredRE.FindAllStringSubmatch(string(src), -1) {
				names[m[1]] = path
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if len(names) < 40 {
		t.Fatalf("found only %d metric names in collector/ and agent/: has the way metrics are registered changed?", len(names))
	}
	return names
}

// metricNames returns the names of the metrics the collector and the agent
// export, from their source.
func metricNames(t *testing.T) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	for n := range codeMetrics(t) {
		names[n] = true
	}
	return names
}

// docRowRE is a metric's row in docs/metrics.md: | `name` | type | ...
var docRowRE = regexp.MustCompile("(?m)^\\| `(idk_[a-z0-9_]+)` \\| (counter|gauge|histogram|summary) \\|")

// Every metric registered in the code is documented in docs/metrics.md,
// once, and every metric documented there is registered.
func TestMetricsDocumented(t *testing.T) {
	src, err := os.ReadFile("../docs/metrics.md")
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string]int{}
	for _, m := range docRowRE.FindAllStringSubmatch(string(src), -1) {
		documented[m[1]]++
	}
	code := codeMetrics(t)
	for _, name := range slices.Sorted(maps.Keys(code)) {
		if documented[name] == 0 {
			t.Errorf("%s (registered in %s) is missing from docs/metrics.md", name, code[name])
		}
	}
	for _, name := range slices.Sorted(maps.Keys(documented)) {
		if documented[name] > 1 {
			t.Errorf("docs/metrics.md lists %s %d times", name, documented[name])
		}
		if code[name] == "" {
			t.Errorf("docs/metrics.md lists %s, which no code under collector/ or agent/ registers", name)
		}
	}
}

// metricRE finds metric names in PromQL; \b keeps label names such as
// num_idk out.
var metricRE = regexp.MustCompile(`\bidk_[a-z_]+\b`)

// unknownMetrics returns the idk_ names in expr that no metrics.go exports.
func unknownMetrics(expr string, names map[string]bool) []string {
	var bad []string
	for _, m := range metricRE.FindAllString(expr, -1) {
		if !names[m] {
			bad = append(bad, m)
		}
	}
	return bad
}

func TestPrometheusFilesUseRealMetrics(t *testing.T) {
	names := metricNames(t)
	rules, _ := filepath.Glob("prometheus/rules/*.yml")
	tests, _ := filepath.Glob("prometheus/tests/*_test.yml")
	if len(rules) < 2 || len(tests) != len(rules) {
		t.Fatalf("rule files %v and their tests %v: every rule file needs a test file", rules, tests)
	}
	for _, path := range append(rules, tests...) {
		src, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		found := 0
		for n, line := range strings.Split(string(src), "\n") {
			if strings.HasPrefix(strings.TrimSpace(line), "#") {
				continue // comments may speak of idk_collector_* and the like
			}
			found += len(metricRE.FindAllString(line, -1))
			if bad := unknownMetrics(line, names); len(bad) > 0 {
				t.Errorf("%s:%d: no such metric: %s", path, n+1, strings.Join(bad, ", "))
			}
		}
		if found == 0 {
			t.Errorf("%s names no idk_ metric", path)
		}
	}
}

func TestPromtool(t *testing.T) {
	promtool := testenv.RequireTool(t, "promtool", "prometheus")
	rules, _ := filepath.Glob("prometheus/rules/*.yml")
	tests, _ := filepath.Glob("prometheus/tests/*_test.yml")
	calls := [][]string{{"check", "config", "prometheus/prometheus.yml"}, append([]string{"check", "rules"}, rules...)}
	for _, tf := range tests {
		calls = append(calls, []string{"test", "rules", tf})
	}
	for _, args := range calls {
		out, err := exec.Command(promtool, args...).CombinedOutput()
		if err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// panel is what the test reads of a Grafana panel.
type panel struct {
	ID         int    `json:"id"`
	Type       string `json:"type"`
	Title      string `json:"title"`
	Datasource *struct {
		UID string `json:"uid"`
	} `json:"datasource"`
	Targets []struct {
		Expr string `json:"expr"`
	} `json:"targets"`
	Panels []panel `json:"panels"` // of a collapsed row
}

// dashboard is what the tests read of a Grafana dashboard.
type dashboard struct {
	Inputs []struct {
		Name     string `json:"name"`
		PluginID string `json:"pluginId"`
	} `json:"__inputs"`
	SchemaVersion int     `json:"schemaVersion"`
	UID           string  `json:"uid"`
	Title         string  `json:"title"`
	Panels        []panel `json:"panels"`
	Templating    struct {
		List []struct {
			Name       string `json:"name"`
			Type       string `json:"type"`
			Query      any    `json:"query"`
			Definition string `json:"definition"`
		} `json:"list"`
	} `json:"templating"`
}

// cyrillicRE: a title in Russian has Cyrillic letters.
var cyrillicRE = regexp.MustCompile(`\p{Cyrillic}`)

// varRE finds the template variables a query uses: $name or ${name}.
var varRE = regexp.MustCompile(`\$\{?([A-Za-z_][A-Za-z0-9_]*)`)

// Every dashboard in grafana/ can be imported with a data source of
// choice and provisioned from a file (its DS_PROMETHEUS variable), has a
// fixed uid of its own, Russian titles, and queries that name only
// metrics that exist and variables that it defines.
func TestGrafanaDashboards(t *testing.T) {
	paths, _ := filepath.Glob("grafana/*.json")
	for _, want := range []string{"idk-fleet.json", "idk-timeline.json", "idk-deadlines.json", "idk-transport.json"} {
		if !slices.Contains(paths, filepath.Join("grafana", want)) {
			t.Errorf("grafana/%s is missing", want)
		}
	}
	names := metricNames(t)
	uids := map[string]string{}
	for _, path := range paths {
		t.Run(filepath.Base(path), func(t *testing.T) {
			src, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			var dash dashboard
			if err := json.Unmarshal(src, &dash); err != nil {
				t.Fatal(err)
			}
			if !slices.ContainsFunc(dash.Inputs, func(in struct {
				Name     string `json:"name"`
				PluginID string `json:"pluginId"`
			}) bool {
				return in.Name == "DS_PROMETHEUS" && in.PluginID == "prometheus"
			}) {
				t.Error("no DS_PROMETHEUS input: the dashboard cannot be imported with a data source of choice")
			}
			if dash.SchemaVersion < 36 || dash.UID == "" {
				t.Errorf("schemaVersion %d, uid %q: want 36 or later and a fixed uid", dash.SchemaVersion, dash.UID)
			}
			if other, dup := uids[dash.UID]; dup {
				t.Errorf("uid %q is also %s's", dash.UID, other)
			}
			uids[dash.UID] = path
			if !cyrillicRE.MatchString(dash.Title) {
				t.Errorf("title %q is not in Russian", dash.Title)
			}
			defined := map[string]bool{}
			for _, v := range dash.Templating.List {
				defined[v.Name] = true
				if v.Type == "datasource" {
					if v.Name != "DS_PROMETHEUS" || v.Query != "prometheus" {
						t.Errorf("data source variable %q of %v: want DS_PROMETHEUS of prometheus", v.Name, v.Query)
					}
					continue
				}
				if bad := unknownMetrics(v.Definition, names); len(bad) > 0 {
					t.Errorf("variable %q: no such metric: %s", v.Name, strings.Join(bad, ", "))
				}
			}
			// Provisioned from a file, a dashboard is not imported, so
			// ${DS_PROMETHEUS} must name a variable of its own.
			if !defined["DS_PROMETHEUS"] {
				t.Error("no DS_PROMETHEUS data source variable: the provisioned dashboard would find no data source")
			}

			var all []panel
			for _, p := range dash.Panels {
				all = append(all, p)
				all = append(all, p.Panels...)
			}
			ids := map[int]bool{}
			queries := 0
			for _, p := range all {
				if ids[p.ID] {
					t.Errorf("panel %q: id %d used twice", p.Title, p.ID)
				}
				ids[p.ID] = true
				if !cyrillicRE.MatchString(p.Title) {
					t.Errorf("panel %d: title %q is not in Russian", p.ID, p.Title)
				}
				if p.Type == "row" {
					continue
				}
				if p.Datasource == nil || p.Datasource.UID != "${DS_PROMETHEUS}" {
					t.Errorf("panel %q: data source is not ${DS_PROMETHEUS}", p.Title)
				}
				if len(p.Targets) == 0 {
					t.Errorf("panel %q has no query", p.Title)
				}
				for _, q := range p.Targets {
					queries++
					if len(metricRE.FindAllString(q.Expr, -1)) == 0 {
						t.Errorf("panel %q: query %q names no idk_ metric", p.Title, q.Expr)
					}
					if bad := unknownMetrics(q.Expr, names); len(bad) > 0 {
						t.Errorf("panel %q: no such metric: %s", p.Title, strings.Join(bad, ", "))
					}
					for _, m := range varRE.FindAllStringSubmatch(q.Expr, -1) {
						if !defined[m[1]] && !strings.HasPrefix(m[1], "__") {
							t.Errorf("panel %q: query uses $%s, which the dashboard does not define", p.Title, m[1])
						}
					}
				}
			}
			if queries < 6 {
				t.Errorf("only %d queries: panels are missing", queries)
			}
		})
	}
}

// The provisioning files name the folder the dashboards are copied to and
// make the Prometheus data source the default, which the dashboards'
// DS_PROMETHEUS variable falls back to.
func TestGrafanaProvisioning(t *testing.T) {
	ds, err := os.ReadFile("grafana/provisioning/datasources/idk-prometheus.yml")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"apiVersion: 1", "type: prometheus", "isDefault: true", "url: "} {
		if !strings.Contains(string(ds), want) {
			t.Errorf("datasources/idk-prometheus.yml: no %q", want)
		}
	}
	dash, err := os.ReadFile("grafana/provisioning/dashboards/idk.yml")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^\s+path: (\S+)$`).FindStringSubmatch(string(dash))
	if !strings.Contains(string(dash), "apiVersion: 1") || m == nil {
		t.Fatalf("dashboards/idk.yml: no apiVersion 1 or no options.path")
	}
	// The install lines copy the dashboards to that path.
	if !strings.Contains(string(dash), "deploy/grafana/*.json "+m[1]) {
		t.Errorf("dashboards/idk.yml: its install lines do not copy deploy/grafana/*.json to %s", m[1])
	}
	paths, _ := filepath.Glob("grafana/*.json")
	for _, p := range paths {
		if !strings.Contains(string(dash), filepath.Base(p)) {
			t.Errorf("dashboards/idk.yml does not list %s", filepath.Base(p))
		}
	}
}

// alertRule is one alert of a rule file, as alertRules reads it.
type alertRule struct {
	file, name     string
	severity, role string
}

// alertRules reads the alerts of rules/*.yml with their severity and role
// labels (a line "severity: ..." or "role: ..." inside the alert).
func alertRules(t *testing.T) []alertRule {
	t.Helper()
	paths, _ := filepath.Glob("prometheus/rules/*.yml")
	alertLine := regexp.MustCompile(`^\s*- alert: (\S+)`)
	labelLine := regexp.MustCompile(`^\s+(severity|role): (\S+)\s*$`)
	var rules []alertRule
	for _, path := range paths {
		src, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(src), "\n") {
			if m := alertLine.FindStringSubmatch(line); m != nil {
				rules = append(rules, alertRule{file: path, name: m[1]})
				continue
			}
			if m := labelLine.FindStringSubmatch(line); m != nil && len(rules) > 0 {
				r := &rules[len(rules)-1]
				if m[1] == "severity" {
					r.severity = m[2]
				} else {
					r.role = m[2]
				}
			}
		}
	}
	if len(rules) < 10 {
		t.Fatalf("found only %d alerts in prometheus/rules", len(rules))
	}
	return rules
}

// Alertmanager routes by severity and role, so every alert must carry
// both, with values alertmanager.yml has a route for.
func TestAlertRulesRouted(t *testing.T) {
	am, err := os.ReadFile("prometheus/alertmanager.yml")
	if err != nil {
		t.Fatal(err)
	}
	rules := alertRules(t)
	// Every alert the inhibit rules name exists.
	for _, m := range regexp.MustCompile(`alertname=~?"([^"]+)"`).FindAllStringSubmatch(string(am), -1) {
		for _, name := range strings.Split(m[1], "|") {
			if !slices.ContainsFunc(rules, func(r alertRule) bool { return r.name == name }) {
				t.Errorf("alertmanager.yml names alert %s, which no rule defines", name)
			}
		}
	}
	for _, r := range rules {
		if r.severity != "critical" && r.severity != "warning" {
			t.Errorf("%s: %s has severity %q, want critical or warning", r.file, r.name, r.severity)
		}
		if r.role == "" || !strings.Contains(string(am), `role="`+r.role+`"`) {
			t.Errorf("%s: %s has role %q, which no route of alertmanager.yml matches", r.file, r.name, r.role)
		}
	}
}

// regionOf returns the region external label of prometheus.yml.
func regionOf(t *testing.T) string {
	t.Helper()
	src, err := os.ReadFile("prometheus/prometheus.yml")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^\s+region: '([^']+)'`).FindStringSubmatch(string(src))
	if m == nil {
		t.Fatal("prometheus.yml: no region external label")
	}
	return m[1]
}

// amtool accepts alertmanager.yml, and its routes send each kind of alert
// of the region prometheus.yml names where the file's comments say:
// critical to the duty and the role, warnings to the role alone, other
// regions to idk-unrouted.
func TestAmtool(t *testing.T) {
	amtool := testenv.RequireTool(t, "amtool", "prometheus-alertmanager")
	const cfg = "prometheus/alertmanager.yml"
	if out, err := exec.Command(amtool, "check-config", cfg).CombinedOutput(); err != nil {
		t.Fatalf("amtool check-config %s: %v\n%s", cfg, err, out)
	}
	region := regionOf(t)
	for _, r := range alertRules(t) {
		want := region + "-" + strings.ReplaceAll(r.role, "_", "-")
		if r.severity == "critical" {
			want = region + "-duty," + want
		}
		args := []string{"config", "routes", "test", "--config.file=" + cfg, "--verify.receivers=" + want,
			"region=" + region, "alertname=" + r.name, "severity=" + r.severity, "role=" + r.role, "num_idk=850591"}
		if out, err := exec.Command(amtool, args...).CombinedOutput(); err != nil {
			t.Errorf("%s (%s, %s) is not routed to %s: %v\n%s", r.name, r.severity, r.role, want, err, out)
		}
	}
	args := []string{"config", "routes", "test", "--config.file=" + cfg, "--verify.receivers=idk-unrouted",
		"region=" + region + "-not-configured", "severity=critical", "role=shift_lead"}
	if out, err := exec.Command(amtool, args...).CombinedOutput(); err != nil {
		t.Errorf("an alert of an unknown region is not routed to idk-unrouted: %v\n%s", err, out)
	}
}

// The scripts are checked twice: bash -n catches syntax errors,
// shellcheck the mistakes bash accepts (unquoted variables, ignored cd
// failures). dev/services starts the shared backends for CI.
func TestInstallScript(t *testing.T) {
	for _, script := range []string{"systemd/install-collector.sh", "dev/services"} {
		t.Run("bash "+script, func(t *testing.T) {
			bash := testenv.RequireTool(t, "bash", "bash")
			if out, err := exec.Command(bash, "-n", script).CombinedOutput(); err != nil {
				t.Fatalf("bash -n %s: %v\n%s", script, err, out)
			}
		})
		t.Run("shellcheck "+script, func(t *testing.T) {
			shellcheck := testenv.RequireTool(t, "shellcheck", "shellcheck")
			if out, err := exec.Command(shellcheck, script).CombinedOutput(); err != nil {
				t.Errorf("shellcheck %s: %v\n%s", script, err, out)
			}
		})
	}
}
