package harness

import (
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// The collector's own outage, on real processes: after a SIGKILL the
// restarted collector records an НШС of its own (the ICT rules' incident)
// from its last heartbeat to the restart, for the customs body it serves;
// after a clean stop it records none.
func TestEndToEndCollectorOutageIsAnIncident(t *testing.T) {
	env, err := NewEnv(t.TempDir(), bin, Options{})
	if err != nil {
		t.Fatal(err)
	}
	DumpLogsOnFailure(t, env)
	a := env.Agents[0]
	coll, err := env.StartCollector()
	if err != nil {
		t.Fatal(err)
	}
	heartbeat := filepath.Join(env.CollectorRoot(), "nshs.heartbeat")
	waitFor(t, 30*time.Second, "the collector's heartbeat", func() bool {
		_, err := os.Stat(heartbeat)
		return err == nil
	})
	coll.Kill()
	coll, err = env.StartCollector()
	if err != nil {
		t.Fatal(err)
	}
	defer coll.Stop()

	type nshs struct {
		ID       string `json:"id"`
		Source   string `json:"source"`
		KodTO    string `json:"kod_to"`
		Category int    `json:"category"`
		Cause    string `json:"cause"`
		Start    time.Time
		End      time.Time
		Closed   bool `json:"closed"`
	}
	list := func() []nshs {
		t.Helper()
		resp, err := env.APIGet("/api/v1/nshs")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var out []nshs
		if err := json.Unmarshal(b, &out); err != nil {
			t.Fatalf("%s: %v: %s", resp.Status, err, b)
		}
		return out
	}
	got := list()
	if len(got) != 1 {
		t.Fatalf("НШС after a SIGKILL: %+v, want the collector's outage", got)
	}
	n := got[0]
	// Restored within 30 minutes: category IV (appendix 2), confirmed, as
	// the collector is up and serving.
	if n.Source != "collector" || n.KodTO != a.KodTO || n.Cause != "internal.ict" || n.Category != 4 || !n.Closed ||
		n.End.Before(n.Start) || n.End.Sub(n.Start) > time.Minute {
		t.Errorf("collector outage: %+v", n)
	}

	// A clean stop is not an outage.
	if err := coll.Stop(); err != nil {
		t.Fatal(err)
	}
	coll, err = env.StartCollector()
	if err != nil {
		t.Fatal(err)
	}
	defer coll.Stop()
	if got := list(); len(got) != 1 {
		t.Errorf("НШС after a clean restart: %+v, want still only the first", got)
	}
}
