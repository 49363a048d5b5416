// Package deploy_test checks the deployment files against the code they
// describe: the example configurations load with the real loaders and
// document every setting and its true default, the Prometheus rules and
// the Grafana dashboard name only metrics that exist, and the tools that
// can check these files (promtool, bash, shellcheck) accept them.
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
	sectionRE = regexp.MustCompile(`^\[\[?([a-z_.]+)\]\]?\s*$`)
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

// metricNames returns the names of the metrics the collector and the agent
// export, from their source.
func metricNames(t *testing.T) map[string]bool {
	t.Helper()
	re := regexp.MustCompile(`(?:Name:\s*|NewDesc\()"(idk_[a-z_]+)"`)
	names := map[string]bool{}
	for _, path := range []string{"../collector/server/metrics.go", "../agent/ship/metrics.go", "../collector/availability/metrics.go", "../collector/cases/metrics.go", "../collector/integrity/integrity.go", "../collector/report/monthly.go"} {
		src, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range re.FindAllStringSubmatch(string(src), -1) {
			names[m[1]] = true
		}
	}
	if len(names) < 10 {
		t.Fatalf("found only %d metric names in the metrics.go files: has the pattern changed?", len(names))
	}
	return names
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

func TestGrafanaDashboard(t *testing.T) {
	src, err := os.ReadFile("grafana/idk-transport.json")
	if err != nil {
		t.Fatal(err)
	}
	type input struct {
		Name     string `json:"name"`
		PluginID string `json:"pluginId"`
	}
	var dash struct {
		Inputs        []input `json:"__inputs"`
		SchemaVersion int     `json:"schemaVersion"`
		UID           string  `json:"uid"`
		Panels        []panel `json:"panels"`
		Templating    struct {
			List []struct {
				Name       string `json:"name"`
				Definition string `json:"definition"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(src, &dash); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(dash.Inputs, input{Name: "DS_PROMETHEUS", PluginID: "prometheus"}) {
		t.Error("no DS_PROMETHEUS input: the dashboard cannot be imported with a data source of choice")
	}
	if dash.SchemaVersion < 36 || dash.UID == "" {
		t.Errorf("schemaVersion %d, uid %q: want 36 or later and a fixed uid", dash.SchemaVersion, dash.UID)
	}

	names := metricNames(t)
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
		}
	}
	for _, v := range dash.Templating.List {
		if bad := unknownMetrics(v.Definition, names); len(bad) > 0 {
			t.Errorf("variable %q: no such metric: %s", v.Name, strings.Join(bad, ", "))
		}
	}
	if queries < 8 {
		t.Errorf("only %d queries: panels are missing", queries)
	}
}

// The install script is checked twice: bash -n catches syntax errors,
// shellcheck the mistakes bash accepts (unquoted variables, ignored cd
// failures).
func TestInstallScript(t *testing.T) {
	const script = "systemd/install-collector.sh"
	t.Run("bash", func(t *testing.T) {
		bash := testenv.RequireTool(t, "bash", "bash")
		if out, err := exec.Command(bash, "-n", script).CombinedOutput(); err != nil {
			t.Fatalf("bash -n %s: %v\n%s", script, err, out)
		}
	})
	t.Run("shellcheck", func(t *testing.T) {
		shellcheck := testenv.RequireTool(t, "shellcheck", "shellcheck")
		if out, err := exec.Command(shellcheck, script).CombinedOutput(); err != nil {
			t.Errorf("shellcheck %s: %v\n%s", script, err, out)
		}
	})
}
