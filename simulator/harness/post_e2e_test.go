package harness

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"idk/collector/cases"
	"idk/internal/clock"
	"idk/protocol/idkpb"
	"idk/simulator/relay"
)

// postCase is the JSON of a case as GET /api/v1/cases answers it, with the
// fields this test reads.
type postCase struct {
	ID      string   `json:"id"`
	NumSnim string   `json:"num_snim"`
	Docs    []string `json:"docs"`
	Timers  []struct {
		Rule     string `json:"rule"`
		Running  bool   `json:"running"`
		Breached bool   `json:"breached"`
	} `json:"timers"`
	Events []postEvent `json:"events"`
}

// postEvent is one event of a postCase.
type postEvent struct {
	Kind   string            `json:"kind"`
	Time   time.Time         `json:"time"`
	By     string            `json:"by"`
	Source string            `json:"source"`
	Risk   map[string]string `json:"risk"`
}

// timer returns the case's timer of rule, and whether it has one.
func (c postCase) timer(rule string) (running, breached, ok bool) {
	for _, tm := range c.Timers {
		if tm.Rule == rule {
			return tm.Running, tm.Breached, true
		}
	}
	return false, false, false
}

// casesWith returns the collector's cases that hold doc.
func casesWith(t *testing.T, env *Env, doc string) []postCase {
	t.Helper()
	r, err := env.APIGet("/api/v1/cases")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	var all []postCase
	if err := json.NewDecoder(r.Body).Decode(&all); err != nil {
		t.Fatalf("cases: %v", err)
	}
	var out []postCase
	for _, c := range all {
		if slices.Contains(c.Docs, doc) {
			out = append(out, c)
		}
	}
	return out
}

// agentCase runs `idk-agent case` against agent 0, as the shift lead at
// the scanner PC would.
func agentCase(t *testing.T, env *Env, args ...string) string {
	t.Helper()
	cmd := exec.Command(filepath.Join(bin, "idk-agent"), append(append([]string{"case"}, args...), "-config", env.Agents[0].ConfigPath)...)
	cmd.Dir = env.Dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("idk-agent case %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// The shift lead reports the end of TIME_2 (22д) with `idk-agent case
// docs_returned` while the link to the collector is down for 30 s. The
// agent keeps the report in its spool; once the link is back it reaches
// the collector with the time it was made, and the case's TIME_2 ends
// without a breach.
func TestEndToEndPostReportAcrossOutage(t *testing.T) {
	env, rl, _ := linkedEnv(t, relay.Config{Latency: 5 * time.Millisecond})
	const doc = "10702070/221126/0000321"
	waitFor(t, 20*time.Second, "the agent's local listener", func() bool {
		r, err := http.Get("http://" + env.Agents[0].MetricsAddr + "/metrics")
		if err == nil {
			r.Body.Close()
		}
		return err == nil
	})

	// Risk (with its profile) and arrival come from the post too: with no
	// controller configured nothing else marks the arrival.
	agentCase(t, env, "risk_detected", "-docs", doc, "-by", "ИВАНОВ",
		"-kod-teh", "05", "-vid-pr", "12", "-kod-to-pr", "10216000", "-date-reg", "12.12.2012", "-num-pr", "12361")
	agentCase(t, env, "arrival", "-by", "ПЕТРОВ")
	waitFor(t, 30*time.Second, "the case with TIME_1 and TIME_2 running", func() bool {
		cs := casesWith(t, env, doc)
		if len(cs) != 1 {
			return false
		}
		r1, _, ok1 := cs[0].timer("time_1")
		r2, _, ok2 := cs[0].timer("time_2")
		return ok1 && ok2 && r1 && r2
	})
	wait := scan(t, env, 1, 100_000, 200_000)
	var numSnim string
	for n := range wait() {
		numSnim = n
	}
	waitFor(t, 30*time.Second, "the scan to join the case", func() bool {
		cs := casesWith(t, env, doc)
		return len(cs) == 1 && cs[0].NumSnim == numSnim
	})

	rl.SetOutage(true)
	const outage = 30 * time.Second
	down := time.Now()
	time.Sleep(5 * time.Second)
	before := time.Now()
	out := agentCase(t, env, "docs_returned", "-num-snim", numSnim, "-by", "ПЕТРОВ", "-note", "документы возвращены")
	after := time.Now()
	t.Logf("idk-agent case: %s", strings.TrimSpace(out))
	time.Sleep(outage - time.Since(down))
	// Proof that the link was really down: the report has not arrived.
	if c := casesWith(t, env, doc)[0]; slices.ContainsFunc(c.Events, func(e postEvent) bool { return e.Kind == "docs_returned" }) {
		t.Fatal("docs_returned reached the collector during the outage")
	}
	rl.SetOutage(false)
	back := time.Now()

	var c postCase
	waitFor(t, 60*time.Second, "docs_returned at the collector", func() bool {
		cs := casesWith(t, env, doc)
		if len(cs) != 1 {
			return false
		}
		c = cs[0]
		r2, _, _ := c.timer("time_2")
		return !r2
	})
	t.Logf("delivered %v after the link came back", time.Since(back).Round(time.Millisecond))
	found := false
	for _, e := range c.Events {
		switch e.Kind {
		case "docs_returned":
			found = true
			// Loopback clocks agree, so the offset is about 0: the time
			// is the report's, not the delivery's 25 s later.
			if e.Time.Before(before.Add(-2*time.Second)) || e.Time.After(after.Add(2*time.Second)) {
				t.Errorf("docs_returned at %s, reported between %s and %s", e.Time, before, after)
			}
			t.Logf("docs_returned at %s: %v after the command began, %v before the link came back",
				e.Time.Format(time.RFC3339Nano), e.Time.Sub(before).Round(time.Millisecond), back.Sub(e.Time).Round(time.Millisecond))
			if e.By != "ПЕТРОВ" || e.Source != "post" {
				t.Errorf("docs_returned by %q from %q, want ПЕТРОВ from post", e.By, e.Source)
			}
		case "risk_detected":
			want := map[string]string{"KOD_TEH": "05", "VID_PR": "12", "KOD_TO_PR": "10216000", "DATE_REG": "12.12.2012", "NUM_PR": "12361"}
			if fmt.Sprint(e.Risk) != fmt.Sprint(want) || e.By != "ИВАНОВ" || e.Source != "post" {
				t.Errorf("risk_detected: risk %v by %q from %q, want %v by ИВАНОВ from post", e.Risk, e.By, e.Source, want)
			}
		}
	}
	if !found {
		t.Fatalf("case %s has no docs_returned: %+v", c.ID, c.Events)
	}
	if _, breached, _ := c.timer("time_2"); breached {
		t.Errorf("case %s: TIME_2 breached", c.ID)
	}
	r, err := env.APIGet("/api/v1/breaches")
	if err != nil {
		t.Fatal(err)
	}
	var rows []struct {
		ID string `json:"id"`
	}
	json.NewDecoder(r.Body).Decode(&rows)
	r.Body.Close()
	for _, row := range rows {
		if row.ID == c.ID {
			t.Errorf("case %s has a table 4 row", c.ID)
		}
	}
}

// The collector's feed takes a post's report for the ИДК of the
// connection, with the report's by, source "post" and the risk profile;
// one the engine refuses is logged with the reason, and the events after
// it in the batch are still taken.
func TestPostReportFeed(t *testing.T) {
	e, err := cases.Open(filepath.Join(t.TempDir(), "cases.db"), time.UTC, clock.Real())
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	var log bytes.Buffer
	feed := cases.NewFeed(e, slog.New(slog.NewTextHandler(&log, nil)))
	at := time.Now().Add(-time.Minute)
	report := func(seq uint64, r *idkpb.CaseReport) *idkpb.Event {
		return &idkpb.Event{Seq: seq, TimeUnixNano: at.UnixNano(), CollectorTimeUnixNano: at.UnixNano(),
			Body: &idkpb.Event_CaseReport{CaseReport: r}}
	}
	feed.Follow(&idkpb.Device{NumIdk: "850591"}, 1, []*idkpb.Event{
		report(1, &idkpb.CaseReport{Kind: "docs_returned", NumSnim: "NOSUCHSCAN", By: "ПЕТРОВ"}),
		report(2, &idkpb.CaseReport{Kind: "risk_detected", Docs: []string{"10702070/221126/0000654"}, By: "ИВАНОВ",
			Risk: &idkpb.RiskProfile{KodTeh: "05", VidPr: "12", KodToPr: "10216000", DateReg: "12.12.2012", NumPr: "12361"}}),
	})
	if !strings.Contains(log.String(), "inspection event not taken") || !strings.Contains(log.String(), "kind=docs_returned") ||
		!strings.Contains(log.String(), "NOSUCHSCAN") {
		t.Errorf("the refused report was not logged with its reason: %s", &log)
	}
	cs := e.Cases()
	if len(cs) != 1 {
		t.Fatalf("%d cases, want 1: %+v", len(cs), cs)
	}
	c := cs[0]
	if len(c.Events) != 1 {
		t.Fatalf("case %s: %+v", c.ID, c.Events)
	}
	ev := c.Events[0]
	want := cases.RiskProfile{KodTeh: "05", VidPr: "12", KodToPr: "10216000", DateReg: "12.12.2012", NumPr: "12361"}
	if c.NumIDK != "850591" || ev.Kind != cases.RiskDetected || ev.By != "ИВАНОВ" || ev.Source != "post" ||
		ev.Risk != want || !ev.Time.Equal(at) {
		t.Errorf("case %s at %s: event %+v", c.ID, c.NumIDK, ev)
	}
}
