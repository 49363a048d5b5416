package harness

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Prom is a real Prometheus (or another program of the Prometheus family,
// such as Alertmanager) run by the harness, on loopback, logging to
// Dir/<name>.log.
type Prom struct {
	Addr string // host:port of its HTTP side
	proc *Proc
}

// StartPromProgram runs the program at path (found by the caller, e.g.
// with exec.LookPath) with args, where every "{addr}" in args is replaced
// by a free loopback address, and waits up to 30 s until its /-/ready
// answers 200. The process is logged to e.Dir/<name>.log.
func (e *Env) StartPromProgram(name, path string, args ...string) (*Prom, error) {
	addr, err := freeAddr("tcp")
	if err != nil {
		return nil, err
	}
	for i, a := range args {
		args[i] = strings.ReplaceAll(a, "{addr}", addr)
	}
	logf, err := os.OpenFile(filepath.Join(e.Dir, name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(path, args...)
	cmd.Dir = e.Dir
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("harness: start %s: %w", path, err)
	}
	p := &Proc{Name: name, cmd: cmd, log: logf, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if r, err := http.Get("http://" + addr + "/-/ready"); err == nil {
			r.Body.Close()
			if r.StatusCode == http.StatusOK {
				return &Prom{Addr: addr, proc: p}, nil
			}
		}
		select {
		case <-p.done:
			return nil, fmt.Errorf("harness: %s exited: %v (see %s)", name, p.err, filepath.Join(e.Dir, name+".log"))
		case <-time.After(100 * time.Millisecond):
		}
	}
	p.Kill()
	return nil, fmt.Errorf("harness: %s not ready in 30 s (see %s)", name, filepath.Join(e.Dir, name+".log"))
}

// StartPrometheus writes config to e.Dir/prometheus.yml and runs the
// Prometheus at path on it, with its data in e.Dir/prometheus-data.
func (e *Env) StartPrometheus(path, config string) (*Prom, error) {
	conf := filepath.Join(e.Dir, "prometheus.yml")
	if err := os.WriteFile(conf, []byte(config), 0o644); err != nil {
		return nil, err
	}
	return e.StartPromProgram("prometheus", path, "--config.file="+conf,
		"--storage.tsdb.path="+filepath.Join(e.Dir, "prometheus-data"), "--web.listen-address={addr}")
}

// Stop ends the program (SIGTERM, then SIGKILL after 10 s).
func (p *Prom) Stop() error { return p.proc.Stop() }

// Series is one series of a query's answer: its labels and its values
// (one for an instant query).
type Series struct {
	Labels map[string]string
	Values []float64
}

// Query evaluates expr at the present moment through Prometheus' HTTP
// API.
func (p *Prom) Query(expr string) ([]Series, error) {
	return p.api("/api/v1/query", url.Values{"query": {expr}})
}

// QueryRange evaluates expr over the last d, a point every step.
func (p *Prom) QueryRange(expr string, d, step time.Duration) ([]Series, error) {
	now := time.Now()
	return p.api("/api/v1/query_range", url.Values{"query": {expr},
		"start": {strconv.FormatInt(now.Add(-d).Unix(), 10)}, "end": {strconv.FormatInt(now.Unix(), 10)},
		"step": {strconv.FormatFloat(step.Seconds(), 'f', -1, 64)}})
}

// LabelValues returns the values label takes on the series that match
// (a series selector), as Grafana's label_values(match, label) does.
func (p *Prom) LabelValues(label, match string) ([]string, error) {
	r, err := http.Get("http://" + p.Addr + "/api/v1/label/" + url.PathEscape(label) + "/values?" + url.Values{"match[]": {match}}.Encode())
	if err != nil {
		return nil, err
	}
	defer r.Body.Close()
	var ans struct {
		Status string   `json:"status"`
		Error  string   `json:"error"`
		Data   []string `json:"data"`
	}
	if err := json.NewDecoder(r.Body).Decode(&ans); err != nil {
		return nil, fmt.Errorf("harness: label values of %s: %w", label, err)
	}
	if ans.Status != "success" {
		return nil, fmt.Errorf("harness: label values of %s{%s}: %s", label, match, ans.Error)
	}
	return ans.Data, nil
}

func (p *Prom) api(path string, q url.Values) ([]Series, error) {
	r, err := http.PostForm("http://"+p.Addr+path, q)
	if err != nil {
		return nil, err
	}
	defer r.Body.Close()
	b, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, err
	}
	var ans struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			ResultType string          `json:"resultType"`
			Result     json.RawMessage `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal(b, &ans); err != nil {
		return nil, fmt.Errorf("harness: %s: %w: %s", path, err, b)
	}
	if ans.Status != "success" {
		return nil, fmt.Errorf("harness: %s %q: %s", path, q.Get("query"), ans.Error)
	}
	type sample [2]any // [time, "value"]
	var out []Series
	switch ans.Data.ResultType {
	case "vector":
		var res []struct {
			Metric map[string]string `json:"metric"`
			Value  sample            `json:"value"`
		}
		if err := json.Unmarshal(ans.Data.Result, &res); err != nil {
			return nil, err
		}
		for _, s := range res {
			out = append(out, Series{Labels: s.Metric, Values: []float64{sampleValue(s.Value)}})
		}
	case "matrix":
		var res []struct {
			Metric map[string]string `json:"metric"`
			Values []sample          `json:"values"`
		}
		if err := json.Unmarshal(ans.Data.Result, &res); err != nil {
			return nil, err
		}
		for _, s := range res {
			ser := Series{Labels: s.Metric}
			for _, v := range s.Values {
				ser.Values = append(ser.Values, sampleValue(v))
			}
			out = append(out, ser)
		}
	case "scalar":
		var s sample
		if err := json.Unmarshal(ans.Data.Result, &s); err != nil {
			return nil, err
		}
		out = append(out, Series{Values: []float64{sampleValue(s)}})
	default:
		return nil, errors.New("harness: unexpected result type " + ans.Data.ResultType)
	}
	return out, nil
}

func sampleValue(s [2]any) float64 {
	str, _ := s[1].(string)
	v, err := strconv.ParseFloat(str, 64)
	if err != nil {
		return 0
	}
	return v
}

// MetricTypes scrapes the /metrics of addr and returns the type of each
// metric family whose name starts with prefix, from its # TYPE line.
func MetricTypes(addr, prefix string) (map[string]string, error) {
	r, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return nil, err
	}
	defer r.Body.Close()
	b, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, err
	}
	types := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) == 4 && f[0] == "#" && f[1] == "TYPE" && strings.HasPrefix(f[2], prefix) {
			types[f[2]] = f[3]
		}
	}
	return types, nil
}
