package pkicmd

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"idk/collector/pki"
	"idk/collector/registry"
	"idk/simulator/simclock"
)

func TestRenewAgent(t *testing.T) {
	dir := t.TempDir()
	// Enrolled twenty months ago, so that today is two months before the
	// certificate expires (and the handshake below, on the wall clock,
	// sees a current certificate).
	ago := 20 * 30 * 24 * time.Hour
	clk := simclock.New(time.Now().Add(-ago))
	if code, _, _ := runCLI(t, clk, "demo", "--dir", dir, "--num-idk", "850591,850592"); code != exitOK {
		t.Fatalf("demo: exit %d", code)
	}
	certPath := filepath.Join(dir, pki.AgentCertFile("850591"))
	keyPath := filepath.Join(dir, pki.AgentKeyFile("850591"))
	old := mustReadCert(t, certPath)
	oldKey, err := os.ReadFile(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	regBefore, err := os.ReadFile(filepath.Join(dir, registry.FileName))
	if err != nil {
		t.Fatal(err)
	}

	clk.Advance(ago)
	code, stdout, _ := runCLI(t, clk, "renew", "--dir", dir, "--num-idk", "850591", "--days", "400")
	if code != exitOK {
		t.Fatalf("renew: exit %d", code)
	}
	renewed := mustReadCert(t, certPath)
	newKey, err := os.ReadFile(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	switch {
	case renewed.SerialNumber.Cmp(old.SerialNumber) == 0:
		t.Error("renewed certificate has the old serial")
	case string(newKey) == string(oldKey):
		t.Error("renewed certificate kept the old key")
	case renewed.Subject.CommonName != "850591" || strings.Join(renewed.Subject.OrganizationalUnit, ",") != pki.AgentOU:
		t.Errorf("renewed subject %v, want CN 850591, OU %s", renewed.Subject, pki.AgentOU)
	}
	if want := clk.Now().Add(400 * 24 * time.Hour); renewed.NotAfter.Sub(want).Abs() > time.Minute {
		t.Errorf("renewed NotAfter %v, want %v (--days 400)", renewed.NotAfter, want)
	}
	for _, want := range []string{certPath, keyPath, pki.FormatSerial(old.SerialNumber), "without a restart", "revoke --dir"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("renew output lacks %q:\n%s", want, stdout)
		}
	}
	if regAfter, _ := os.ReadFile(filepath.Join(dir, registry.FileName)); string(regAfter) != string(regBefore) {
		t.Errorf("renew changed the registry:\n%s\nwas:\n%s", regAfter, regBefore)
	}
	// The new pair works, and the old certificate is not revoked.
	handshake(t, dir, "850591", "localhost")
	crl, err := pki.LoadCRL(filepath.Join(dir, pki.CRLFile), filepath.Join(dir, pki.CACertFile))
	if err != nil {
		t.Fatal(err)
	}
	if pki.IsRevoked(crl, old.SerialNumber) {
		t.Error("renew revoked the old certificate without --revoke-old")
	}

	// --revoke-old: the replaced one goes on the list, the new one not.
	code, stdout, _ = runCLI(t, clk, "renew", "--dir", dir, "--num-idk", "850591", "--revoke-old")
	if code != exitOK || !strings.Contains(stdout, "revoked the replaced certificate") {
		t.Fatalf("renew --revoke-old: exit %d", code)
	}
	third := mustReadCert(t, certPath)
	if crl, err = pki.LoadCRL(filepath.Join(dir, pki.CRLFile), filepath.Join(dir, pki.CACertFile)); err != nil {
		t.Fatal(err)
	}
	if !pki.IsRevoked(crl, renewed.SerialNumber) || pki.IsRevoked(crl, third.SerialNumber) || pki.IsRevoked(crl, old.SerialNumber) {
		t.Errorf("after --revoke-old: list %v; want only %v", crl.RevokedCertificateEntries, renewed.SerialNumber)
	}
}

func TestRenewRefusals(t *testing.T) {
	dir := t.TempDir()
	if code, _, _ := runCLI(t, nil, "demo", "--dir", dir, "--num-idk", "850591"); code != exitOK {
		t.Fatalf("demo: exit %d", code)
	}
	// A certificate issued but never enrolled: renewal is for enrolled ИДК.
	if _, err := pki.IssueAgent(dir, "850599", pki.Options{}); err != nil {
		t.Fatal(err)
	}
	before := mustReadCert(t, filepath.Join(dir, pki.AgentCertFile("850599")))
	for _, tt := range []struct {
		args   []string
		code   int
		stderr string
	}{
		{[]string{"renew", "--dir", dir}, exitUsage, "--num-idk or --collector"},
		{[]string{"renew", "--dir", dir, "--num-idk", "850591", "--collector"}, exitUsage, "--num-idk or --collector"},
		{[]string{"renew", "--dir", dir, "--num-idk", "850591", "--hosts", "x"}, exitUsage, "--hosts goes with --collector"},
		{[]string{"renew", "--dir", dir, "--collector", "--revoke-old"}, exitUsage, "--revoke-old"},
		{[]string{"renew", "--dir", dir, "--num-idk", "850591", "--days", "-1"}, exitUsage, "--days"},
		{[]string{"renew", "--dir", dir, "--num-idk", "850599"}, exitFail, "not enrolled"},
		{[]string{"renew", "--dir", dir, "--num-idk", "404"}, exitFail, "not enrolled"},
	} {
		code, _, stderr := runCLI(t, nil, tt.args...)
		if code != tt.code || !strings.Contains(stderr, tt.stderr) {
			t.Errorf("%q: exit %d, stderr %q; want exit %d, stderr with %q", tt.args, code, stderr, tt.code, tt.stderr)
		}
	}
	if after := mustReadCert(t, filepath.Join(dir, pki.AgentCertFile("850599"))); after.SerialNumber.Cmp(before.SerialNumber) != 0 {
		t.Error("refused renewal replaced the certificate")
	}

	// Enrolled, but the file was issued by another CA.
	other := t.TempDir()
	if code, _, _ := runCLI(t, nil, "demo", "--dir", other, "--num-idk", "850591"); code != exitOK {
		t.Fatalf("demo: exit %d", code)
	}
	foreign, err := os.ReadFile(filepath.Join(other, pki.AgentCertFile("850591")))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, pki.AgentCertFile("850591")), foreign, 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := runCLI(t, nil, "renew", "--dir", dir, "--num-idk", "850591"); code != exitFail || !strings.Contains(stderr, "not issued by the CA") {
		t.Errorf("renew of another CA's certificate: exit %d, stderr %q", code, stderr)
	}
}

func TestRenewCollector(t *testing.T) {
	dir := t.TempDir()
	if code, _, _ := runCLI(t, nil, "demo", "--dir", dir, "--num-idk", "850591", "--hosts", "localhost,collector.test,10.0.0.5"); code != exitOK {
		t.Fatalf("demo: exit %d", code)
	}
	path := filepath.Join(dir, pki.CollectorCertFile)
	old := mustReadCert(t, path)
	code, stdout, _ := runCLI(t, nil, "renew", "--dir", dir, "--collector")
	if code != exitOK || !strings.Contains(stdout, "without a restart") {
		t.Fatalf("renew --collector: exit %d", code)
	}
	renewed := mustReadCert(t, path)
	if renewed.SerialNumber.Cmp(old.SerialNumber) == 0 {
		t.Error("renewed collector certificate has the old serial")
	}
	// The hosts carry over.
	for _, h := range []string{"localhost", "collector.test", "10.0.0.5"} {
		if err := renewed.VerifyHostname(h); err != nil {
			t.Errorf("renewed collector certificate: %v", err)
		}
	}
	handshake(t, dir, "850591", "collector.test")

	// New hosts replace them.
	if code, _, _ := runCLI(t, nil, "renew", "--dir", dir, "--collector", "--hosts", "collector.example"); code != exitOK {
		t.Fatalf("renew --collector --hosts: exit %d", code)
	}
	if c := mustReadCert(t, path); c.VerifyHostname("collector.example") != nil || c.VerifyHostname("localhost") == nil {
		t.Errorf("renew --hosts: names %v %v, want collector.example only", c.DNSNames, c.IPAddresses)
	}
}
