package hostile

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"idk/collector/registry"
	"idk/simulator/harness"
)

// bin holds the programs, built once for the whole suite.
var bin string

func TestMain(m *testing.M) {
	// Never -race: the memory tests compare the collector's RSS with a
	// limit that holds for the program as shipped.
	dir, err := harness.BuildPrograms(false)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bin = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// newEnv makes an Env in a temporary folder and prints the programs' logs
// if the test fails. The collector is not started.
func newEnv(t *testing.T, opt harness.Options) *harness.Env {
	t.Helper()
	env, err := harness.NewEnv(t.TempDir(), bin, opt)
	if err != nil {
		t.Fatal(err)
	}
	// Every ИДК of the Env is enrolled at kodTO, as an administrator's
	// "pki agent --kod-to" would. Put keeps an entry pki demo already
	// wrote.
	for _, a := range env.Agents {
		enrol(t, env, a.NumIDK, kodTO)
	}
	harness.DumpLogsOnFailure(t, env)
	return env
}

// enrol binds ИДК num to the customs body kod in the collector's agent
// registry (agents.toml beside the CA), adding or changing its line as an
// administrator may; a running collector re-reads it within seconds.
func enrol(t *testing.T, env *harness.Env, num, kod string) {
	t.Helper()
	if err := registry.Put(filepath.Join(certs(env), registry.FileName), registry.Agent{NumIDK: num, KodTO: kod}); err != nil {
		t.Fatalf("enrolling ИДК %s at %s: %v", num, kod, err)
	}
}

// startCollector starts env's collector and stops it when the test ends.
func startCollector(t *testing.T, env *harness.Env) *harness.Proc {
	t.Helper()
	coll, err := env.StartCollector()
	if err != nil {
		t.Fatal(err)
	}
	// Every ИДК of the Env is enrolled at kodTO, as an administrator's
	// "pki agent --kod-to" would. Put keeps an entry pki demo already
	// wrote.
	for _, a := range env.Agents {
		enrol(t, env, a.NumIDK, kodTO)
	}
	t.Cleanup(func() { coll.Stop() })
	return coll
}

// startEnv is newEnv and startCollector.
func startEnv(t *testing.T, opt harness.Options) (*harness.Env, *harness.Proc) {
	t.Helper()
	env := newEnv(t, opt)
	return env, startCollector(t, env)
}

// certs is the folder the harness keeps the CA and every certificate in.
func certs(env *harness.Env) string { return filepath.Join(env.Dir, "certs") }

// pkiCmd runs "idk-collector pki args...".
func pkiCmd(args ...string) error {
	out, err := exec.Command(filepath.Join(bin, "idk-collector"), append([]string{"pki"}, args...)...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("idk-collector pki %v: %v: %s", args, err, out)
	}
	return nil
}

// waitFor polls cond every 100 ms for up to d.
func waitFor(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(100 * time.Millisecond)
	}
}
