package main

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"idk/agent/spool"
	"idk/internal/clock"
)

// fixedClock is a clock stopped at one moment; only Now is used here.
type fixedClock struct {
	clock.Clock
	at time.Time
}

func (c fixedClock) Now() time.Time { return c.at }

func TestParseCase(t *testing.T) {
	var stderr bytes.Buffer
	rep, cfg, code := parseCase([]string{"risk_detected", "-by", "ИВАНОВ", "-docs", "10702070/170717/0012345, AB123",
		"-kod-teh", "05", "-vid-pr", "12", "-kod-to-pr", "10000", "-date-reg", "12.12.2012", "-num-pr", "12361",
		"-doc-type", "4", "-note", "по ПР", "-config", "x.toml"}, &stderr)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, &stderr)
	}
	if cfg != "x.toml" || rep.Kind != "risk_detected" || len(rep.Docs) != 2 || rep.Docs[1] != "AB123" ||
		rep.Risk.KodTeh != "05" || rep.Risk.NumPr != "12361" || rep.Risk.DocType != 4 || rep.Note != "по ПР" {
		t.Fatalf("parsed %+v", rep)
	}
	// Refused before the agent is asked, with the field named.
	for _, c := range []struct {
		args []string
		want string
	}{
		{nil, "usage:"},
		{[]string{"-by", "X"}, "usage:"},
		{[]string{"docs_returned", "-num-snim", "1"}, "by:"},
		{[]string{"docs_returned", "-num-snim", "1/2", "-by", "X"}, "num_snim:"},
		{[]string{"handed", "-num-snim", "1", "-by", "X"}, "kind:"},
		{[]string{"risk_detected", "-by", "X", "-num-pr", "123"}, "NUM_PR:"},
		{[]string{"risk_detected", "-by", "X", "-doc-type", "11"}, "DOC_TYPE:"},
		{[]string{"docs_returned", "-num-snim", "1", "-by", "X", "extra"}, "unexpected"},
	} {
		stderr.Reset()
		if _, _, code := parseCase(c.args, &stderr); code != 2 || !strings.Contains(stderr.String(), c.want) {
			t.Errorf("%q: exit %d, %q; want 2 and %q", c.args, code, stderr.String(), c.want)
		}
	}
}

// The command's report goes to the agent's listener, which records it in
// the spool with the agent's time; a bad one is answered with the reason
// and leaves the spool alone.
func TestCaseHandlerRecords(t *testing.T) {
	sp, err := spool.Open(filepath.Join(t.TempDir(), "spool.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	at := time.Date(2026, 11, 22, 10, 15, 30, 0, time.UTC)
	srv := httptest.NewServer(caseHandler(sp, fixedClock{at: at}, slog.New(slog.NewTextHandler(io.Discard, nil))))
	defer srv.Close()

	rep, _, code := parseCase([]string{"docs_returned", "-num-snim", "201701040006080003", "-by", "ПЕТРОВ"}, io.Discard)
	if code != 0 {
		t.Fatal("parse failed")
	}
	var stdout, stderr bytes.Buffer
	if code := postCase(srv.URL, rep, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, &stderr)
	}
	if !strings.Contains(stdout.String(), "docs_returned recorded") || !strings.Contains(stdout.String(), "(event 1)") {
		t.Errorf("output: %s", &stdout)
	}
	// The agent checks again: a client other than the command is held to
	// the same rules.
	rep.By = ""
	stdout.Reset()
	if code := postCase(srv.URL, rep, &stdout, &stderr); code != 1 || !strings.Contains(stderr.String(), "by:") {
		t.Errorf("report without by: exit %d, %s", code, &stderr)
	}
	evs, err := sp.PendingEvents(10, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 1 {
		t.Fatalf("%d events in the spool, want 1", len(evs))
	}
	ev := evs[0]
	if ev.TimeUnixNano != at.UnixNano() || ev.GetCaseReport().GetKind() != "docs_returned" ||
		ev.GetCaseReport().GetNumSnim() != "201701040006080003" || ev.GetCaseReport().GetBy() != "ПЕТРОВ" {
		t.Errorf("spooled %v", ev)
	}
}

// askAgent, which `idk-agent state` and `idk-agent case` share, GETs
// without a body, POSTs one as JSON, and says when no agent answers.
func TestAskAgent(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req stateRequest
		if r.Method == http.MethodPost {
			json.NewDecoder(r.Body).Decode(&req)
		}
		json.NewEncoder(w).Encode(stateReply{State: r.Method + " " + req.State})
	}))
	var rep stateReply
	if err := askAgent(srv.URL, nil, &rep); err != nil || rep.State != "GET " {
		t.Errorf("GET: %+v, %v", rep, err)
	}
	if err := askAgent(srv.URL, stateRequest{State: "maintenance"}, &rep); err != nil || rep.State != "POST maintenance" {
		t.Errorf("POST: %+v, %v", rep, err)
	}
	srv.Close()
	if err := askAgent(srv.URL, nil, &rep); err == nil || !strings.Contains(err.Error(), "is the agent running?") {
		t.Errorf("no agent: %v", err)
	}
}
