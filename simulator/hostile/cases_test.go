package hostile

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"idk/protocol/idkpb"
	"idk/simulator/harness"
)

// caseView is what GET /api/v1/cases/{id} answers, in the part this test
// needs.
type caseView struct {
	ID      string `json:"id"`
	NumIDK  string `json:"num_idk"`
	NumSnim string `json:"num_snim"`
	Events  []struct {
		Kind    string `json:"kind"`
		NumIDK  string `json:"num_idk"`
		NumSnim string `json:"num_snim"`
	} `json:"events"`
}

func getCase(t *testing.T, env *harness.Env, id string) caseView {
	t.Helper()
	resp, err := env.APIGet("/api/v1/cases/" + id)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("case %s: %s: %s", id, resp.Status, b)
	}
	var c caseView
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatalf("case %s: %v", id, err)
	}
	return c
}

// Finding 8: an open case directed to ИДК B (a risk found by documentary
// control) cannot be taken over by ИДК A: A's form carrying the same
// document number leaves B's case at B, without A's image; whether A's
// scan was seen before the form or not.
func TestFormDocumentNumberDoesNotMoveAnotherIDKsCase(t *testing.T) {
	env, _ := startEnv(t, harness.Options{Agents: 2})
	a := connect(t, env, idkA)
	for i, withScan := range []bool{true, false} {
		doc := fmt.Sprintf("10702070/170717/001234%d", i)
		status, body, err := apiPost(env, "/api/v1/cases/events",
			fmt.Sprintf(`{"kind": "risk_detected", "num_idk": %q, "docs": [%q], "by": "ИВАНОВ"}`, idkB, doc))
		if err != nil || status != http.StatusOK {
			t.Fatalf("risk_detected for ИДК %s: %d %s %v", idkB, status, body, err)
		}
		var opened struct {
			CaseID string `json:"case_id"`
		}
		if err := json.Unmarshal([]byte(body), &opened); err != nil || opened.CaseID == "" {
			t.Fatalf("risk_detected answered %s", body)
		}

		// A decides on an image of its own, its form naming B's document.
		now := time.Now()
		snim := scanNumber(now, idkA, i+1)
		form := &idkpb.Form{NumSnim: snim, CustomsInfo1: doc, Decision: idkpb.Decision_DECISION_SUSPECTED,
			SuspicionReason: "ПЛОТНОСТЬ", Operator: "ПЕТРОВ", SavedUnixNano: now.UnixNano()}
		evs := []*idkpb.Event{a.formRevision(snim, 1, []byte("<form>A "+snim+"</form>"), form, now)}
		if withScan {
			evs = append([]*idkpb.Event{a.scanSeen(snim, now)}, evs...)
		}
		a.mustEvents(t, evs...)

		// The case engine takes the events after they are stored: wait
		// until A's decision is in some case, or the test proves nothing.
		if !waitFor(10*time.Second, func() bool { return decisionTaken(env, snim) }) {
			t.Fatalf("scan seen first %v: A's decision reached no case in 10 s", withScan)
		}
		c := getCase(t, env, opened.CaseID)
		if c.NumIDK != idkB {
			t.Errorf("scan seen first %v: case %s moved from ИДК %s to %s by A's form", withScan, c.ID, idkB, c.NumIDK)
		}
		if c.NumSnim == snim {
			t.Errorf("scan seen first %v: case %s of ИДК %s took A's image %s", withScan, c.ID, idkB, snim)
		}
		for _, e := range c.Events {
			if e.NumIDK == idkA {
				t.Errorf("scan seen first %v: case %s of ИДК %s holds A's %s event", withScan, c.ID, idkB, e.Kind)
			}
		}
	}
}

// decisionTaken reports whether some case holds a decision on image snim.
func decisionTaken(env *harness.Env, snim string) bool {
	resp, err := env.APIGet("/api/v1/cases")
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	var all []caseView
	if json.NewDecoder(resp.Body).Decode(&all) != nil {
		return false
	}
	for _, c := range all {
		for _, e := range c.Events {
			if e.Kind == "decision" && e.NumSnim == snim {
				return true
			}
		}
	}
	return false
}
