package pki

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// runCLI runs the commands as Main does, with the clock now (nil for the
// real one), and returns the exit code and output.
func runCLI(t *testing.T, now func() time.Time, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	if now == nil {
		code = Main(args, &out, &errOut)
	} else {
		code = (&cli{stdout: &out, stderr: &errOut, now: now}).run(args)
	}
	t.Logf("%s: exit %d\nstdout:\n%sstderr:\n%s", strings.Join(args, " "), code, out.String(), errOut.String())
	return code, out.String(), errOut.String()
}

func TestMainUsageErrors(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		args       []string
		code       int
		wantStdout string
		wantStderr string
	}{
		{nil, exitUsage, "", "usage:"},
		{[]string{"help"}, exitOK, "demo", ""},
		{[]string{"frobnicate"}, exitUsage, "", `unknown command "frobnicate"`},
		{[]string{"init"}, exitUsage, "", "--dir is required"},
		{[]string{"init", "-h"}, exitOK, "", "--dir DIR"},
		{[]string{"init", "--dir", dir, "extra"}, exitUsage, "", `unexpected argument "extra"`},
		{[]string{"init", "--bogus"}, exitUsage, "", "bogus"},
		{[]string{"collector", "--dir", dir}, exitUsage, "", "--hosts is required"},
		{[]string{"agent", "--dir", dir}, exitUsage, "", "--num-idk is required"},
		{[]string{"agent", "--dir", dir, "--num-idk", "85/0591"}, exitUsage, "", "NUM_IDK"},
		{[]string{"revoke", "--dir", dir}, exitUsage, "", "--num-idk or --serial is required"},
		{[]string{"revoke", "--dir", dir, "--serial", "xyz"}, exitUsage, "", "serial"},
		{[]string{"demo", "--dir", dir}, exitUsage, "", "--num-idk is required"},
	}
	for _, tt := range tests {
		code, stdout, stderr := runCLI(t, nil, tt.args...)
		if code != tt.code || !strings.Contains(stdout, tt.wantStdout) || !strings.Contains(stderr, tt.wantStderr) {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want exit %d, stdout with %q, stderr with %q",
				tt.args, code, stdout, stderr, tt.code, tt.wantStdout, tt.wantStderr)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("usage errors left %d files in the directory", len(entries))
	}
}

func TestMainCommands(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pki")
	exists := func(names ...string) {
		t.Helper()
		for _, n := range names {
			if _, err := os.Stat(filepath.Join(dir, n)); err != nil {
				t.Error(err)
			}
		}
	}

	if code, _, _ := runCLI(t, nil, "init", "--dir", dir, "--org", "Test Customs"); code != exitOK {
		t.Fatalf("init: exit %d", code)
	}
	exists(CACertFile, CAKeyFile, CRLFile)
	caBefore, _ := os.ReadFile(filepath.Join(dir, CACertFile))

	code, _, stderr := runCLI(t, nil, "init", "--dir", dir)
	if code != exitFail || !strings.Contains(stderr, filepath.Join(dir, CACertFile)) || !strings.Contains(stderr, "--force") {
		t.Errorf("second init: exit %d, stderr %q; want exit 1 naming ca.crt and --force", code, stderr)
	}
	if caAfter, _ := os.ReadFile(filepath.Join(dir, CACertFile)); !bytes.Equal(caBefore, caAfter) {
		t.Error("refused init changed ca.crt")
	}
	if code, _, _ := runCLI(t, nil, "init", "--dir", dir, "--force"); code != exitOK {
		t.Errorf("init --force: exit %d", code)
	}

	if code, _, _ := runCLI(t, nil, "collector", "--dir", dir, "--hosts", "localhost,127.0.0.1,::1"); code != exitOK {
		t.Fatalf("collector: exit %d", code)
	}
	exists(CollectorCertFile, CollectorKeyFile)
	if code, _, _ := runCLI(t, nil, "collector", "--dir", dir, "--hosts", "localhost"); code != exitFail {
		t.Errorf("collector again: exit %d, want %d", code, exitFail)
	}
	if code, _, _ := runCLI(t, nil, "collector", "--dir", dir, "--hosts", "host:1"); code != exitFail {
		t.Errorf("collector with a bad host: exit %d, want %d", code, exitFail)
	}

	if code, _, _ := runCLI(t, nil, "agent", "--dir", dir, "--num-idk", "850591", "--num-idk", "850592,850593"); code != exitOK {
		t.Fatalf("agent: exit %d", code)
	}
	exists("agent-850591.crt", "agent-850591.key", "agent-850592.crt", "agent-850593.key")
	// One existing ИДК fails the command but not the others.
	code, _, stderr = runCLI(t, nil, "agent", "--dir", dir, "--num-idk", "850591,850594")
	if code != exitFail || !strings.Contains(stderr, "agent-850591.crt") {
		t.Errorf("agent over an existing one: exit %d, stderr %q; want exit 1 naming agent-850591.crt", code, stderr)
	}
	exists("agent-850594.crt")

	cfg, err := ServerTLSConfig(filepath.Join(dir, CollectorCertFile), filepath.Join(dir, CollectorKeyFile), filepath.Join(dir, CACertFile))
	if err != nil {
		t.Fatal(err)
	}
	r := handshake(t, cfg, agentConfig(t, dir, "850592", dir, "::1"))
	if r.serverErr != nil || r.clientErr != nil {
		t.Fatalf("handshake with the CLI's files: server: %v; client: %v", r.serverErr, r.clientErr)
	}

	serial2 := mustReadCert(t, filepath.Join(dir, "agent-850592.crt")).SerialNumber
	if code, _, _ := runCLI(t, nil, "revoke", "--dir", dir, "--num-idk", "850591", "--serial", FormatSerial(serial2)); code != exitOK {
		t.Fatalf("revoke: exit %d", code)
	}
	crl, err := LoadCRL(filepath.Join(dir, CRLFile), filepath.Join(dir, CACertFile))
	if err != nil {
		t.Fatal(err)
	}
	serial1 := mustReadCert(t, filepath.Join(dir, "agent-850591.crt")).SerialNumber
	if !IsRevoked(crl, serial1) || !IsRevoked(crl, serial2) || len(crl.RevokedCertificateEntries) != 2 {
		t.Errorf("after revoke, list holds %v; want %v and %v", loadTestCRL(t, dir), serial1, serial2)
	}
	code, _, stderr = runCLI(t, nil, "revoke", "--dir", dir, "--num-idk", "404")
	if code != exitFail || !strings.Contains(stderr, "agent-404.crt") {
		t.Errorf("revoke of an unknown ИДК: exit %d, stderr %q; want exit 1 naming agent-404.crt", code, stderr)
	}

	// The replacement procedure: revoke, then --force.
	if code, _, _ := runCLI(t, nil, "agent", "--dir", dir, "--num-idk", "850591", "--force"); code != exitOK {
		t.Errorf("agent --force: exit %d", code)
	}
	if mustReadCert(t, filepath.Join(dir, "agent-850591.crt")).SerialNumber.Cmp(serial1) == 0 {
		t.Error("agent --force kept the old certificate")
	}
}

func TestMainDemo(t *testing.T) {
	dir := t.TempDir()
	files := []string{CACertFile, CAKeyFile, CRLFile, CollectorCertFile, CollectorKeyFile, "agent-850591.crt", "agent-850591.key"}
	snapshot := func() map[string]string {
		m := make(map[string]string)
		for _, f := range files {
			data, err := os.ReadFile(filepath.Join(dir, f))
			if err != nil {
				t.Fatal(err)
			}
			m[f] = string(data)
		}
		return m
	}
	now := time.Now()
	clock := func() time.Time { return now }

	code, stdout, _ := runCLI(t, clock, "demo", "--dir", dir, "--num-idk", "850591")
	if code != exitOK {
		t.Fatalf("demo: exit %d", code)
	}
	if !strings.Contains(stdout, "agent 850591 needs:") {
		t.Errorf("demo output does not say which files the agent needs:\n%s", stdout)
	}
	first := snapshot()

	// Idempotent: a second run changes nothing.
	code, stdout, _ = runCLI(t, clock, "demo", "--dir", dir, "--num-idk", "850591")
	if code != exitOK {
		t.Fatalf("second demo: exit %d", code)
	}
	if strings.Contains(stdout, "issued") || strings.Contains(stdout, "created") {
		t.Errorf("second demo made something new:\n%s", stdout)
	}
	for f, data := range snapshot() {
		if data != first[f] {
			t.Errorf("second demo changed %s", f)
		}
	}

	// A host the collector certificate lacks gets a new one; nothing else
	// changes.
	if code, _, _ := runCLI(t, clock, "demo", "--dir", dir, "--num-idk", "850591", "--hosts", "localhost,collector.test"); code != exitOK {
		t.Fatalf("demo with a new host: exit %d", code)
	}
	second := snapshot()
	for f := range second {
		if changed := second[f] != first[f]; changed != strings.HasPrefix(f, "collector.") {
			t.Errorf("demo with a new host: %s changed = %v", f, changed)
		}
	}
	if err := mustReadCert(t, filepath.Join(dir, CollectorCertFile)).VerifyHostname("collector.test"); err != nil {
		t.Error(err)
	}

	// A revoked agent certificate is replaced.
	if _, err := Revoke(dir, "850591", Options{Now: clock}); err != nil {
		t.Fatal(err)
	}
	if code, _, _ := runCLI(t, clock, "demo", "--dir", dir, "--num-idk", "850591", "--hosts", "localhost,collector.test"); code != exitOK {
		t.Fatalf("demo after revoke: exit %d", code)
	}
	third := snapshot()
	if third["agent-850591.crt"] == second["agent-850591.crt"] || third[CACertFile] != second[CACertFile] {
		t.Error("demo after revoke did not replace just the agent certificate")
	}

	// Three years on, the CA is still valid but the leaves have expired.
	later := func() time.Time { return now.Add(3 * 365 * 24 * time.Hour) }
	if code, _, _ := runCLI(t, later, "demo", "--dir", dir, "--num-idk", "850591"); code != exitOK {
		t.Fatalf("demo three years later: exit %d", code)
	}
	fourth := snapshot()
	for _, f := range []string{CollectorCertFile, "agent-850591.crt"} {
		if fourth[f] == third[f] {
			t.Errorf("demo kept expired %s", f)
		}
	}
	if fourth[CACertFile] != third[CACertFile] {
		t.Error("demo replaced a valid CA")
	}

	// A missing list is started afresh.
	if err := os.Remove(filepath.Join(dir, CRLFile)); err != nil {
		t.Fatal(err)
	}
	if code, _, _ := runCLI(t, later, "demo", "--dir", dir, "--num-idk", "850591"); code != exitOK {
		t.Fatalf("demo without ca.crl: exit %d", code)
	}
	if got := loadTestCRL(t, dir); len(got) != 0 {
		t.Errorf("new list holds %v, want none", got)
	}
}

func TestMainDemoRefusesHalfCA(t *testing.T) {
	dir := t.TempDir()
	if _, err := CreateCA(dir, Options{}); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, CAKeyFile)); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := runCLI(t, nil, "demo", "--dir", dir, "--num-idk", "850591")
	if code != exitFail || !strings.Contains(stderr, CACertFile) || !strings.Contains(stderr, "init --force") {
		t.Errorf("demo over half a CA: exit %d, stderr %q; want exit 1 naming ca.crt and init --force", code, stderr)
	}
}
