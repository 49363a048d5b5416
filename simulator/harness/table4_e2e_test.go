package harness

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"idk/drivers/modbus"
	"idk/simulator/plc"
	"idk/simulator/scanner"
)

// The end-to-end tests of issue 10's table 4 points, on real processes.
// Nothing waits 15 real minutes: a clock that is due later is checked by
// its start and deadline, and a breach is planted with event times in the
// past, inside the backdating window.

// t4IDK is the harness's first ИДК, which every test here reports for.
const t4IDK = "850591"

// t4Case is a case as GET /api/v1/cases and /api/v1/cases/{id} answer it.
type t4Case struct {
	ID      string    `json:"id"`
	NumIDK  string    `json:"num_idk"`
	NumSnim string    `json:"num_snim"`
	VerScan int       `json:"ver_scan"`
	Timers  []t4Timer `json:"timers"`
	Events  []t4Event `json:"events"`
}

type t4Timer struct {
	Rule     string    `json:"rule"`
	Start    time.Time `json:"start"`
	End      time.Time `json:"end"`
	Deadline time.Time `json:"deadline"`
	Running  bool      `json:"running"`
	Breached bool      `json:"breached"`
}

type t4Event struct {
	Kind    string    `json:"kind"`
	Time    time.Time `json:"time"`
	NumSnim string    `json:"num_snim"`
	By      string    `json:"by"`
	Source  string    `json:"source"`
	Reason  string    `json:"reason"`
	VerScan int       `json:"ver_scan"`
}

// timer returns the case's timer of rule, and whether it has one.
func (c t4Case) timer(rule string) (t4Timer, bool) {
	for _, tm := range c.Timers {
		if tm.Rule == rule {
			return tm, true
		}
	}
	return t4Timer{}, false
}

// events returns the case's events of kind.
func (c t4Case) events(kind string) []t4Event {
	var out []t4Event
	for _, e := range c.Events {
		if e.Kind == kind {
			out = append(out, e)
		}
	}
	return out
}

// t4Breach is a current table 4 row as GET /api/v1/breaches answers it.
type t4Breach struct {
	ID      string         `json:"id"`
	Running bool           `json:"running"`
	Row     map[string]any `json:"row"`
}

// t4History is one case of GET /api/v1/breaches?history=1.
type t4History struct {
	ID       string         `json:"id"`
	Current  map[string]any `json:"current"`
	Running  bool           `json:"running"`
	Versions []struct {
		N        int            `json:"version"`
		At       time.Time      `json:"at"`
		By       string         `json:"by"`
		Why      string         `json:"why"`
		Standing bool           `json:"standing"`
		Row      map[string]any `json:"row"`
	} `json:"versions"`
}

// apiDo sends an authenticated request with a JSON body (nil for none) and
// returns the status and the answer's body.
func apiDo(t *testing.T, env *Env, method, path string, body any) (int, []byte) {
	t.Helper()
	tok, err := os.ReadFile(filepath.Join(env.Dir, "api.token"))
	if err != nil {
		t.Fatal(err)
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, "http://"+env.HTTPAddr+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

// apiGetJSON decodes the answer of an authenticated GET into out.
func apiGetJSON(t *testing.T, env *Env, path string, out any) {
	t.Helper()
	status, b := apiDo(t, env, http.MethodGet, path, nil)
	if status != http.StatusOK {
		t.Fatalf("GET %s: %d: %s", path, status, b)
	}
	if err := json.Unmarshal(b, out); err != nil {
		t.Fatalf("GET %s: %v: %s", path, err, b)
	}
}

// postT4Event posts an inspection event that must be taken, and returns
// its case ID.
func postT4Event(t *testing.T, env *Env, ev map[string]any) string {
	t.Helper()
	status, b := apiDo(t, env, http.MethodPost, "/api/v1/cases/events", ev)
	if status != http.StatusOK {
		t.Fatalf("posting %v: %d: %s", ev, status, b)
	}
	var ans struct {
		CaseID string `json:"case_id"`
	}
	if err := json.Unmarshal(b, &ans); err != nil || ans.CaseID == "" {
		t.Fatalf("posting %v: answer %s (%v)", ev, b, err)
	}
	return ans.CaseID
}

func t4Cases(t *testing.T, env *Env) []t4Case {
	t.Helper()
	var cs []t4Case
	apiGetJSON(t, env, "/api/v1/cases", &cs)
	return cs
}

func t4CaseOf(t *testing.T, env *Env, id string) t4Case {
	t.Helper()
	var c t4Case
	apiGetJSON(t, env, "/api/v1/cases/"+id, &c)
	return c
}

// t4CaseWithSnim waits for the case that holds scan numSnim.
func t4CaseWithSnim(t *testing.T, env *Env, numSnim string) t4Case {
	t.Helper()
	var found t4Case
	waitFor(t, 30*time.Second, "the case of scan "+numSnim, func() bool {
		for _, c := range t4Cases(t, env) {
			// The arrival a scan marks is added just before the scan
			// itself: a case read between the two has no scan yet.
			if c.NumSnim == numSnim && len(c.events("scan")) > 0 {
				found = c
				return true
			}
		}
		time.Sleep(100 * time.Millisecond)
		return false
	})
	return found
}

// t4Days is the from/to query covering yesterday and today in the
// collector's zone: a row is dated by its deadline, which may fall on
// either side of midnight when the test runs near it.
func t4Days() string {
	loc, err := time.LoadLocation("Europe/Moscow")
	if err != nil {
		loc = time.FixedZone("MSK", 3*3600)
	}
	now := time.Now().In(loc)
	return "from=" + now.AddDate(0, 0, -2).Format("2006-01-02") + "&to=" + now.Format("2006-01-02")
}

// t4Rows is the current table 4 of the last days.
func t4Rows(t *testing.T, env *Env) []t4Breach {
	t.Helper()
	var rows []t4Breach
	apiGetJSON(t, env, "/api/v1/breaches?"+t4Days(), &rows)
	return rows
}

func t4RowOf(rows []t4Breach, id string) (t4Breach, bool) {
	for _, r := range rows {
		if r.ID == id {
			return r, true
		}
	}
	return t4Breach{}, false
}

// t4Scan writes a scan into agent 0's output folder as CargoRIW does
// while the operator still looks at it: the folder, one RAW image and the
// form as created, with no decision. It returns the scan number and the
// time just before the folder was made.
func t4Scan(t *testing.T, env *Env, seed uint64) (string, time.Time) {
	t.Helper()
	s, err := scanner.New(scanner.Config{Out: env.Agents[0].OutputDir, NumIDK: env.Agents[0].NumIDK,
		RawMin: 100_000, RawMax: 100_000, Seed: seed}, nil)
	if err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	w, err := s.BeginScan()
	if err != nil {
		t.Fatal(err)
	}
	if err := w.WriteRaw(context.Background(), 1); err != nil {
		t.Fatal(err)
	}
	if err := w.WriteForm(0); err != nil {
		t.Fatal(err)
	}
	return w.NumSnim(), began
}

// startT4Agent starts agent 0 and stops it when the test ends.
func startT4Agent(t *testing.T, env *Env) *Proc {
	t.Helper()
	agent, err := env.StartAgent(0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { agent.Stop() })
	return agent
}

// collectorCLI runs `idk-collector` against the running collector, as an
// officer at the collector host would, and returns its output and error.
func collectorCLI(env *Env, args ...string) (string, error) {
	cmd := exec.Command(filepath.Join(bin, "idk-collector"), append(args, "-config", filepath.Join(env.Dir, "collector.toml"))...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func absDur(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}

// At an ИДК with no controller (the agent's default config) the scan
// marks the arrival: TIME_2 starts at the ScanSeen time, the latest
// moment the object can have arrived, and with no 22д reported its breach
// is due 15 minutes later.
func TestEndToEndTable4ScanWithoutControllerStartsTime2(t *testing.T) {
	env, _ := startEnv(t, Options{Settle: 200 * time.Millisecond})
	startT4Agent(t, env)
	snim, began := t4Scan(t, env, 41)
	c := t4CaseWithSnim(t, env, snim)
	seen := time.Now()

	arrivals, scans := c.events("arrival"), c.events("scan")
	if len(arrivals) != 1 || len(scans) != 1 {
		t.Fatalf("case %s: %d arrivals and %d scans, want 1 each: %+v", c.ID, len(arrivals), len(scans), c.Events)
	}
	arr, sc := arrivals[0], scans[0]
	if arr.Source != "scan" {
		t.Errorf("arrival from %q, want scan", arr.Source)
	}
	if d := absDur(arr.Time.Sub(sc.Time)); d > 2*time.Second {
		t.Errorf("arrival at %s, ScanSeen at %s: %v apart", arr.Time, sc.Time, d)
	}
	// Loopback clocks agree: the scan folder was made after began and seen
	// before the case showed up.
	if arr.Time.Before(began.Add(-time.Second)) || arr.Time.After(seen.Add(time.Second)) {
		t.Errorf("arrival at %s, the folder was made at %s and the case seen at %s", arr.Time, began, seen)
	}
	tm, ok := c.timer("time_2")
	if !ok {
		t.Fatalf("case %s has no TIME_2: %+v", c.ID, c.Timers)
	}
	if !tm.Start.Equal(arr.Time) || !tm.Deadline.Equal(tm.Start.Add(15*time.Minute)) || !tm.Running || tm.Breached {
		t.Errorf("TIME_2 %+v, want running from the arrival %s to a deadline 15 minutes later", tm, arr.Time)
	}
	if _, ok := t4RowOf(t4Rows(t, env), c.ID); ok {
		t.Errorf("case %s is already a table 4 row", c.ID)
	}
	// The live view agrees: the breach is due in 15 minutes from the scan.
	v, err := Metric(env.HTTPAddr, `idk_collector_deadline_seconds{num_idk="850591",rule="time_2"}`)
	want := time.Until(tm.Deadline).Seconds()
	if err != nil || math.Abs(v-want) > 5 || v > 900 {
		t.Errorf("TIME_2 deadline in %v s (%v), want about %.0f s", v, err, want)
	}
	t.Logf("case %s: arrival %s (source %s), ScanSeen %s, TIME_2 deadline %s",
		c.ID, arr.Time.Format(time.RFC3339Nano), arr.Source, sc.Time.Format(time.RFC3339Nano), tm.Deadline.Format(time.RFC3339))
}

// harnessPLCMap is the register map of the simulated controller and of
// the agent's config (see wireController).
func harnessPLCMap() modbus.Map {
	coil := func(a uint16) modbus.Point { return modbus.Point{Source: modbus.Coil, Address: a} }
	di := func(a uint16) modbus.Point { return modbus.Point{Source: modbus.DiscreteInput, Address: a} }
	return modbus.Map{Powered: coil(0), Ready: coil(1), Scanning: di(10), VehicleInZone: di(11)}
}

// wireController appends to agent i's config a Modbus TCP controller at
// addr with map m, polled every 100 ms, and a 1 s link grace, so that a
// link drop shows as UNKNOWN within the test's seconds. The map is written
// from m, so that the agent reads the registers the simulator serves.
func wireController(env *Env, i int, addr string, m modbus.Map) error {
	var conf strings.Builder
	fmt.Fprintf(&conf, `
[telemetry]
link_grace = '1s'
[controller]
transport = 'tcp'
address = %q
slave_id = 1
interval = '100ms'
timeout = '300ms'
max_backoff = '200ms'
`, addr)
	for sig, p := range m.All() {
		fmt.Fprintf(&conf, "[controller.map.%s]\nsource = %q\naddress = %d\n", sig, p.Source, p.Address)
	}
	f, err := os.OpenFile(env.Agents[i].ConfigPath, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(conf.String()); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// servePLC serves the simulator's PLC with map m on loopback, powered and
// ready (the ИДК waits for a vehicle), and wires it into agent i's
// configuration.
func servePLC(t *testing.T, env *Env, i int, m modbus.Map) *plc.Controller {
	t.Helper()
	ctrl, err := plc.New(m)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := ctrl.ServeTCP("127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	for _, s := range []modbus.Signal{modbus.Powered, modbus.Ready} {
		if err := ctrl.SetSignal(s, true); err != nil {
			t.Fatal(err)
		}
	}
	if err := wireController(env, i, srv.Addr(), m); err != nil {
		t.Fatal(err)
	}
	return ctrl
}

// waitDeviceState waits until the collector shows ИДК 850591 in state.
func waitDeviceState(t *testing.T, env *Env, state string) {
	t.Helper()
	waitFor(t, 20*time.Second, "the collector to show "+state, func() bool {
		v, err := Metric(env.HTTPAddr, `idk_collector_device_state{num_idk="850591",state="`+state+`"}`)
		if err != nil || v != 1 {
			time.Sleep(50 * time.Millisecond)
			return false
		}
		return true
	})
}

// With the simulator's PLC wired in, a vehicle enters (the arrival), is
// scanned, and while the operator analyses it the controller link drops
// past the grace (UNKNOWN) and comes back (WORKING again). The return is
// the same object, not an arrival: the ИДК still has exactly one case.
func TestEndToEndTable4ControllerFlapCreatesNoCase(t *testing.T) {
	env, err := NewEnv(t.TempDir(), bin, Options{Settle: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	DumpLogsOnFailure(t, env)
	m := harnessPLCMap()
	ctrl, err := plc.New(m)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := ctrl.ServeTCP("127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	set := func(s modbus.Signal, on bool) {
		t.Helper()
		if err := ctrl.SetSignal(s, on); err != nil {
			t.Fatal(err)
		}
	}
	set(modbus.Powered, true)
	set(modbus.Ready, true)
	if err := wireController(env, 0, srv.Addr(), m); err != nil {
		t.Fatal(err)
	}
	coll, err := env.StartCollector()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { coll.Stop() })
	startT4Agent(t, env)
	waitDeviceState(t, env, "waiting")

	set(modbus.VehicleInZone, true)
	waitDeviceState(t, env, "working")
	set(modbus.Scanning, true)
	snim, _ := t4Scan(t, env, 42)
	c := t4CaseWithSnim(t, env, snim)
	set(modbus.Scanning, false)
	if arr := c.events("arrival"); len(arr) != 1 || arr[0].Source != "controller" {
		t.Fatalf("case %s before the flap: arrivals %+v, want one from the controller", c.ID, arr)
	}

	// The operator analyses the image; the vehicle is still in the zone.
	if err := srv.Down(); err != nil {
		t.Fatal(err)
	}
	waitDeviceState(t, env, "unknown")
	time.Sleep(time.Second)
	if err := srv.Up(); err != nil {
		t.Fatal(err)
	}
	waitDeviceState(t, env, "working")
	// The cases engine follows the same commit as the device state; give
	// it a moment beyond the metric before concluding nothing came.
	time.Sleep(2 * time.Second)

	var at []t4Case
	for _, x := range t4Cases(t, env) {
		if x.NumIDK == t4IDK {
			at = append(at, x)
		}
	}
	if len(at) != 1 || at[0].ID != c.ID {
		t.Fatalf("after the link flap ИДК %s has %d cases, want only %s: %+v", t4IDK, len(at), c.ID, at)
	}
	after := at[0]
	if arr := after.events("arrival"); len(arr) != 1 {
		t.Errorf("case %s after the flap has %d arrivals: %+v", c.ID, len(arr), arr)
	}
	tm, ok := after.timer("time_2")
	if !ok || !tm.Running || tm.Breached || !tm.Start.Equal(c.events("arrival")[0].Time) {
		t.Errorf("TIME_2 after the flap %+v (found %v), want running from the controller's arrival", tm, ok)
	}
	if rows := t4Rows(t, env); len(rows) != 0 {
		t.Errorf("table 4 rows after the flap: %+v", rows)
	}
}

// A scan declared a test scan (VER_SCAN 5, ТЕСТ) has no TIME_2 clock:
// neither a scan the agent saw nor one whose arrival was reported twenty
// minutes ago, which as an ordinary scan (the control) is a breach.
func TestEndToEndTable4TestScanHasNoClock(t *testing.T) {
	env, _ := startEnv(t, Options{Settle: 200 * time.Millisecond})
	startT4Agent(t, env)

	// The agent's scan: its arrival starts TIME_2 until the service
	// engineer declares it a test.
	snim, _ := t4Scan(t, env, 43)
	c := t4CaseWithSnim(t, env, snim)
	if tm, ok := c.timer("time_2"); !ok || !tm.Running {
		t.Fatalf("case %s before the declaration: TIME_2 %+v (%v), want running", c.ID, tm, ok)
	}
	postT4Event(t, env, map[string]any{"kind": "scan", "num_idk": t4IDK, "num_snim": snim, "ver_scan": 5, "by": "ИНЖЕНЕР СЕРВИСА"})
	c = t4CaseOf(t, env, c.ID)
	if c.VerScan != 5 {
		t.Errorf("case %s: ver_scan %d, want 5", c.ID, c.VerScan)
	}
	for _, tm := range c.Timers {
		if tm.Running || tm.Breached {
			t.Errorf("test scan %s: timer %+v", c.ID, tm)
		}
	}
	if _, err := Metric(env.HTTPAddr, `idk_collector_deadline_seconds{num_idk="850591",rule="time_2"}`); err == nil {
		t.Error("a TIME_2 deadline is still counted down for the test scan")
	}

	// Planted in the past: the object arrived 20 minutes ago and was
	// scanned 18 minutes ago; no 22д. Only the ordinary scan breaches.
	now := time.Now()
	day := now.Format("20060102")
	plant := func(numSnim string, verScan int) string {
		postT4Event(t, env, map[string]any{"kind": "scan", "num_idk": t4IDK, "num_snim": numSnim, "ver_scan": verScan,
			"by": "ОПЕРАТОР", "time": now.Add(-18 * time.Minute).Format(time.RFC3339)})
		return postT4Event(t, env, map[string]any{"kind": "arrival", "num_idk": t4IDK, "num_snim": numSnim,
			"by": "ОПЕРАТОР", "time": now.Add(-20 * time.Minute).Format(time.RFC3339)})
	}
	testID := plant(day+t4IDK+"9005", 5)
	controlID := plant(day+t4IDK+"9001", 1)
	tc := t4CaseOf(t, env, testID)
	if tc.VerScan != 5 || len(tc.events("arrival")) != 1 {
		t.Fatalf("planted test scan %s: ver_scan %d, events %+v", testID, tc.VerScan, tc.Events)
	}
	for _, tm := range tc.Timers {
		if tm.Running || tm.Breached {
			t.Errorf("planted test scan %s: timer %+v", testID, tm)
		}
	}
	rows := t4Rows(t, env)
	if _, ok := t4RowOf(rows, testID); ok {
		t.Errorf("the test scan %s is a table 4 row", testID)
	}
	if r, ok := t4RowOf(rows, controlID); !ok || r.Row["TIME_2"] == "" {
		t.Errorf("the ordinary scan %s (the control) has no TIME_2 row: %+v", controlID, rows)
	}
	if _, ok := t4RowOf(rows, c.ID); ok {
		t.Errorf("the agent's test scan %s is a table 4 row", c.ID)
	}
}

// An event dated further back than the backdating window (24 h by
// default) is refused naming reason, from the officers' command line as
// from the API, and taken when it carries a reason from the corrections
// role (the X-Corrections-Token header beside the API token), which the
// case keeps. One just inside the window needs neither.
func TestEndToEndTable4BackdatedEventNeedsReason(t *testing.T) {
	env, _ := startEnv(t, Options{})
	old := time.Now().Add(-25 * time.Hour).Format(time.RFC3339)
	const doc = "10702070/201126/0004242"

	// Without the role the answer is 403, with it and no reason 400; both
	// say a reason is needed.
	refused := func(status int) bool { return status == http.StatusBadRequest || status == http.StatusForbidden }
	out, err := collectorCLI(env, "case", "risk_detected", "-num-idk", t4IDK, "-docs", doc, "-at", old, "-by", "ИНСПЕКТОР")
	if err == nil || !(strings.Contains(out, "400") || strings.Contains(out, "403")) || !strings.Contains(out, "reason") {
		t.Fatalf("idk-collector case 25 h back without a reason: %v\n%s", err, out)
	}
	ev := map[string]any{"kind": "risk_detected", "num_idk": t4IDK, "docs": []string{doc}, "by": "ИНСПЕКТОР", "time": old}
	status, b := apiDo(t, env, http.MethodPost, "/api/v1/cases/events", ev)
	if !refused(status) || !strings.Contains(string(b), "reason") {
		t.Fatalf("API, 25 h back without a reason: %d %s", status, b)
	}
	if cs := t4Cases(t, env); len(cs) != 0 {
		t.Fatalf("a refused event left cases: %+v", cs)
	}

	recent := map[string]any{"kind": "risk_detected", "num_idk": t4IDK, "docs": []string{"10702070/201126/0004243"},
		"by": "ИНСПЕКТОР", "time": time.Now().Add(-23 * time.Hour).Format(time.RFC3339)}
	postT4Event(t, env, recent)

	const why = "журнал поста восстановлен после отказа ПК"
	ev["reason"] = why
	status, b = apiDoCorrection(t, env, ev)
	if status != http.StatusOK {
		t.Fatalf("API, 25 h back with a reason as a corrector: %d %s", status, b)
	}
	var ans struct {
		CaseID string `json:"case_id"`
	}
	if err := json.Unmarshal(b, &ans); err != nil {
		t.Fatalf("answer %s: %v", b, err)
	}
	c := t4CaseOf(t, env, ans.CaseID)
	if r := c.events("risk_detected"); len(r) != 1 || r[0].Reason != why {
		t.Errorf("case %s: risk events %+v, want the reason %q kept", ans.CaseID, r, why)
	}

	// The officer's command line does the same: a reason alone is not
	// enough, the corrections role is.
	other := []string{"case", "risk_detected", "-num-idk", t4IDK, "-docs", "10702070/201126/0004244", "-at", old, "-by", "ИНСПЕКТОР", "-reason", why}
	if out, err := collectorCLI(env, other...); err == nil || !strings.Contains(out, "403") {
		t.Fatalf("idk-collector case 25 h back with a reason, without -correct: %v\n%s", err, out)
	}
	if out, err := collectorCLI(env, append(other, "-correct")...); err != nil || !strings.Contains(out, "case_id") {
		t.Fatalf("idk-collector case 25 h back with a reason and -correct: %v\n%s", err, out)
	}
}

// apiDoCorrection posts an event as the corrections role: with the API
// token and, in the corrections header, the collector's corrections token
// (corrections.token in the working folder) when it has one.
func apiDoCorrection(t *testing.T, env *Env, ev map[string]any) (int, []byte) {
	t.Helper()
	tok, err := os.ReadFile(filepath.Join(env.Dir, "api.token"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(ev)
	req, err := http.NewRequest(http.MethodPost, "http://"+env.HTTPAddr+"/api/v1/cases/events", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
	if ct, err := os.ReadFile(filepath.Join(env.Dir, "corrections.token")); err == nil {
		req.Header.Set("X-Corrections-Token", strings.TrimSpace(string(ct)))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// A late end event that shows the timer ended within its limit withdraws
// a published breach, and the history keeps the breach as it was: version
// 1 standing, and the correction not standing, by the officer who
// reported it.
func TestEndToEndTable4CorrectionKeepsVersion(t *testing.T) {
	env, _ := startEnv(t, Options{})
	now := time.Now().Truncate(time.Second)
	// The object arrived 20 minutes ago and nobody has reported 22д: the
	// TIME_2 deadline passed 5 minutes ago, so the row is published at once.
	id := postT4Event(t, env, map[string]any{"kind": "arrival", "num_idk": t4IDK, "by": "ОПЕРАТОР",
		"time": now.Add(-20 * time.Minute).Format(time.RFC3339)})
	before, ok := t4RowOf(t4Rows(t, env), id)
	if !ok || before.Row["TIME_2"] == "" {
		t.Fatalf("planted breach %s not in table 4: %+v", id, t4Rows(t, env))
	}

	// The shift lead enters the documents' return with its real time,
	// 10 minutes after the arrival, from the officers' command line.
	out, err := collectorCLI(env, "case", "docs_returned", "-num-idk", t4IDK, "-case", id,
		"-at", now.Add(-10*time.Minute).Format(time.RFC3339), "-by", "СТАРШИЙ СМЕНЫ")
	if err != nil {
		t.Fatalf("idk-collector case docs_returned: %v\n%s", err, out)
	}
	if r, ok := t4RowOf(t4Rows(t, env), id); ok {
		t.Errorf("withdrawn breach %s still in the current table 4: %+v", id, r)
	}
	c := t4CaseOf(t, env, id)
	if tm, ok := c.timer("time_2"); !ok || tm.Running || tm.Breached {
		t.Errorf("TIME_2 after the correction: %+v (%v), want ended without a breach", tm, ok)
	}

	var hist []t4History
	apiGetJSON(t, env, "/api/v1/breaches?history=1&"+t4Days(), &hist)
	var h *t4History
	for i := range hist {
		if hist[i].ID == id {
			h = &hist[i]
		}
	}
	if h == nil {
		t.Fatalf("case %s missing from the history: %+v", id, hist)
	}
	if h.Current != nil {
		t.Errorf("history of %s: current %+v, want null once withdrawn", id, h.Current)
	}
	if len(h.Versions) < 2 {
		t.Fatalf("history of %s: %d versions, want the breach and its correction: %+v", id, len(h.Versions), h.Versions)
	}
	first, last := h.Versions[0], h.Versions[len(h.Versions)-1]
	// The arrival came after its deadline, so the event that published
	// the breach is the arrival itself, and the version is its reporter's.
	if first.N != 1 || !first.Standing || first.By != "ОПЕРАТОР" || first.Row["TIME_2"] == "" || !strings.Contains(first.Why, "arrival") {
		t.Errorf("version 1 %+v, want the published breach %+v standing, by ОПЕРАТОР", first, before.Row)
	}
	if last.Standing || last.By != "СТАРШИЙ СМЕНЫ" || last.Row["TIME_2"] != "" ||
		last.Row["DATE_NAR"] != first.Row["DATE_NAR"] || !strings.Contains(last.Why, "docs_returned") {
		t.Errorf("last version %+v, want the withdrawal by СТАРШИЙ СМЕНЫ keeping DATE_NAR %v", last, first.Row["DATE_NAR"])
	}
	for i, v := range h.Versions {
		if v.N != i+1 {
			t.Errorf("version %d numbered %d", i+1, v.N)
		}
	}
}
