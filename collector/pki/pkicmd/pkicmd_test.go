package pkicmd

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"idk/collector/pki"
	"idk/collector/registry"
	"idk/internal/clock"
	"idk/protocol/transport"
	"idk/simulator/simclock"
)

// runCLI runs the commands as Main does, on clk (nil for the real clock),
// and returns the exit code and output.
func runCLI(t *testing.T, clk clock.Clock, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	if clk == nil {
		code = Main(args, &out, &errOut)
	} else {
		code = (&cli{stdout: &out, stderr: &errOut, clock: clk}).run(args)
	}
	t.Logf("%s: exit %d\nstdout:\n%sstderr:\n%s", strings.Join(args, " "), code, out.String(), errOut.String())
	return code, out.String(), errOut.String()
}

// handshake checks that the collector and agent numIDK files in dir make a
// mutual-TLS handshake, the agent dialling serverName.
func handshake(t *testing.T, dir, numIDK, serverName string) {
	t.Helper()
	srv, err := transport.ServerTLS(filepath.Join(dir, pki.CollectorCertFile), filepath.Join(dir, pki.CollectorKeyFile), filepath.Join(dir, pki.CACertFile))
	if err != nil {
		t.Fatal(err)
	}
	cli, err := transport.ClientTLS(filepath.Join(dir, pki.AgentCertFile(numIDK)), filepath.Join(dir, pki.AgentKeyFile(numIDK)),
		filepath.Join(dir, pki.CACertFile), serverName)
	if err != nil {
		t.Fatal(err)
	}
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	serverErr := make(chan error, 1)
	sc := tls.Server(a, srv)
	go func() { serverErr <- sc.Handshake() }()
	clientErr := tls.Client(b, cli).Handshake()
	if err := <-serverErr; err != nil || clientErr != nil {
		t.Fatalf("handshake with the CLI's files: server: %v; client: %v", err, clientErr)
	}
	if peers := sc.ConnectionState().PeerCertificates; len(peers) == 0 || peers[0].Subject.CommonName != numIDK {
		t.Errorf("collector saw client certificates %v, want one for %s", peers, numIDK)
	}
}

func mustReadCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		t.Fatalf("%s: no PEM block", path)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return cert
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
		{[]string{"agent", "--dir", dir, "--num-idk", "850591"}, exitUsage, "", "--kod-to is required"},
		{[]string{"agent", "--dir", dir, "--num-idk", "850591", "--kod-to", "1021"}, exitUsage, "", "KOD_TO"},
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
	exists(pki.CACertFile, pki.CAKeyFile, pki.CRLFile)
	caBefore, _ := os.ReadFile(filepath.Join(dir, pki.CACertFile))

	code, _, stderr := runCLI(t, nil, "init", "--dir", dir)
	if code != exitFail || !strings.Contains(stderr, filepath.Join(dir, pki.CACertFile)) || !strings.Contains(stderr, "--force") {
		t.Errorf("second init: exit %d, stderr %q; want exit 1 naming ca.crt and --force", code, stderr)
	}
	if caAfter, _ := os.ReadFile(filepath.Join(dir, pki.CACertFile)); !bytes.Equal(caBefore, caAfter) {
		t.Error("refused init changed ca.crt")
	}
	if code, _, _ := runCLI(t, nil, "init", "--dir", dir, "--force"); code != exitOK {
		t.Errorf("init --force: exit %d", code)
	}

	if code, _, _ := runCLI(t, nil, "collector", "--dir", dir, "--hosts", "localhost,127.0.0.1,::1"); code != exitOK {
		t.Fatalf("collector: exit %d", code)
	}
	exists(pki.CollectorCertFile, pki.CollectorKeyFile)
	if code, _, _ := runCLI(t, nil, "collector", "--dir", dir, "--hosts", "localhost"); code != exitFail {
		t.Errorf("collector again: exit %d, want %d", code, exitFail)
	}
	if code, _, _ := runCLI(t, nil, "collector", "--dir", dir, "--hosts", "host:1"); code != exitFail {
		t.Errorf("collector with a bad host: exit %d, want %d", code, exitFail)
	}

	if code, _, _ := runCLI(t, nil, "agent", "--dir", dir, "--num-idk", "850591", "--num-idk", "850592,850593", "--kod-to", "10216100"); code != exitOK {
		t.Fatalf("agent: exit %d", code)
	}
	exists("agent-850591.crt", "agent-850591.key", "agent-850592.crt", "agent-850593.key")
	// Enrolment binds each ИДК to its customs body in the registry; a move
	// to another post changes the registry and nothing else.
	if code, _, _ := runCLI(t, nil, "agent", "--dir", dir, "--num-idk", "850593", "--kod-to", "10216200", "--registry-only"); code != exitOK {
		t.Fatalf("agent --registry-only: exit %d", code)
	}
	enrolled, err := registry.Read(filepath.Join(dir, registry.FileName))
	if err != nil || fmt.Sprint(enrolled) != "[{850591 10216100} {850592 10216100} {850593 10216200}]" {
		t.Fatalf("registry: %v, %v", enrolled, err)
	}
	// One existing ИДК fails the command but not the others.
	code, _, stderr = runCLI(t, nil, "agent", "--dir", dir, "--num-idk", "850591,850594", "--kod-to", "10216100")
	if code != exitFail || !strings.Contains(stderr, "agent-850591.crt") {
		t.Errorf("agent over an existing one: exit %d, stderr %q; want exit 1 naming agent-850591.crt", code, stderr)
	}
	exists("agent-850594.crt")

	handshake(t, dir, "850592", "::1")

	serial2 := mustReadCert(t, filepath.Join(dir, "agent-850592.crt")).SerialNumber
	if code, _, _ := runCLI(t, nil, "revoke", "--dir", dir, "--num-idk", "850591", "--serial", pki.FormatSerial(serial2)); code != exitOK {
		t.Fatalf("revoke: exit %d", code)
	}
	crl, err := pki.LoadCRL(filepath.Join(dir, pki.CRLFile), filepath.Join(dir, pki.CACertFile))
	if err != nil {
		t.Fatal(err)
	}
	serial1 := mustReadCert(t, filepath.Join(dir, "agent-850591.crt")).SerialNumber
	if !pki.IsRevoked(crl, serial1) || !pki.IsRevoked(crl, serial2) || len(crl.RevokedCertificateEntries) != 2 {
		t.Errorf("after revoke, list holds %d entries; want %v and %v", len(crl.RevokedCertificateEntries), serial1, serial2)
	}
	code, _, stderr = runCLI(t, nil, "revoke", "--dir", dir, "--num-idk", "404")
	if code != exitFail || !strings.Contains(stderr, "agent-404.crt") {
		t.Errorf("revoke of an unknown ИДК: exit %d, stderr %q; want exit 1 naming agent-404.crt", code, stderr)
	}

	// The replacement procedure: revoke, then --force.
	if code, _, _ := runCLI(t, nil, "agent", "--dir", dir, "--num-idk", "850591", "--force", "--kod-to", "10216100"); code != exitOK {
		t.Errorf("agent --force: exit %d", code)
	}
	if mustReadCert(t, filepath.Join(dir, "agent-850591.crt")).SerialNumber.Cmp(serial1) == 0 {
		t.Error("agent --force kept the old certificate")
	}
}

func TestMainDemo(t *testing.T) {
	dir := t.TempDir()
	files := []string{pki.CACertFile, pki.CAKeyFile, pki.CRLFile, pki.CollectorCertFile, pki.CollectorKeyFile, "agent-850591.crt", "agent-850591.key"}
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
	clk := simclock.New(now)

	code, stdout, _ := runCLI(t, clk, "demo", "--dir", dir, "--num-idk", "850591")
	if code != exitOK {
		t.Fatalf("demo: exit %d", code)
	}
	if !strings.Contains(stdout, "agent 850591 needs:") {
		t.Errorf("demo output does not say which files the agent needs:\n%s", stdout)
	}
	first := snapshot()

	// Idempotent: a second run changes nothing.
	code, stdout, _ = runCLI(t, clk, "demo", "--dir", dir, "--num-idk", "850591")
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
	if code, _, _ := runCLI(t, clk, "demo", "--dir", dir, "--num-idk", "850591", "--hosts", "localhost,collector.test"); code != exitOK {
		t.Fatalf("demo with a new host: exit %d", code)
	}
	second := snapshot()
	for f := range second {
		if changed := second[f] != first[f]; changed != strings.HasPrefix(f, "collector.") {
			t.Errorf("demo with a new host: %s changed = %v", f, changed)
		}
	}
	if err := mustReadCert(t, filepath.Join(dir, pki.CollectorCertFile)).VerifyHostname("collector.test"); err != nil {
		t.Error(err)
	}

	// A revoked agent certificate is replaced.
	if _, err := pki.Revoke(dir, "850591", pki.Options{Clock: clk}); err != nil {
		t.Fatal(err)
	}
	if code, _, _ := runCLI(t, clk, "demo", "--dir", dir, "--num-idk", "850591", "--hosts", "localhost,collector.test"); code != exitOK {
		t.Fatalf("demo after revoke: exit %d", code)
	}
	third := snapshot()
	if third["agent-850591.crt"] == second["agent-850591.crt"] || third[pki.CACertFile] != second[pki.CACertFile] {
		t.Error("demo after revoke did not replace just the agent certificate")
	}

	// Three years on, the CA is still valid but the leaves have expired.
	later := simclock.New(now.Add(3 * 365 * 24 * time.Hour))
	if code, _, _ := runCLI(t, later, "demo", "--dir", dir, "--num-idk", "850591"); code != exitOK {
		t.Fatalf("demo three years later: exit %d", code)
	}
	fourth := snapshot()
	for _, f := range []string{pki.CollectorCertFile, "agent-850591.crt"} {
		if fourth[f] == third[f] {
			t.Errorf("demo kept expired %s", f)
		}
	}
	if fourth[pki.CACertFile] != third[pki.CACertFile] {
		t.Error("demo replaced a valid CA")
	}

	// A missing list is started afresh.
	if err := os.Remove(filepath.Join(dir, pki.CRLFile)); err != nil {
		t.Fatal(err)
	}
	if code, _, _ := runCLI(t, later, "demo", "--dir", dir, "--num-idk", "850591"); code != exitOK {
		t.Fatalf("demo without ca.crl: exit %d", code)
	}
	crl, err := pki.LoadCRL(filepath.Join(dir, pki.CRLFile), filepath.Join(dir, pki.CACertFile))
	if err != nil {
		t.Fatal(err)
	}
	if n := len(crl.RevokedCertificateEntries); n != 0 {
		t.Errorf("new list holds %d entries, want none", n)
	}
}

func TestMainDemoRefusesHalfCA(t *testing.T) {
	dir := t.TempDir()
	if _, err := pki.CreateCA(dir, pki.Options{}); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, pki.CAKeyFile)); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := runCLI(t, nil, "demo", "--dir", dir, "--num-idk", "850591")
	if code != exitFail || !strings.Contains(stderr, pki.CACertFile) || !strings.Contains(stderr, "init --force") {
		t.Errorf("demo over half a CA: exit %d, stderr %q; want exit 1 naming ca.crt and init --force", code, stderr)
	}
}
