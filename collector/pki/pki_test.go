package pki

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"errors"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"idk/simulator/simclock"
)

// newPKI makes a CA, a collector certificate for the loopback names and the
// agent certificate of ИДК 850591 in a fresh directory.
func newPKI(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if _, err := CreateCA(dir, Options{Organization: "Test Customs"}); err != nil {
		t.Fatal(err)
	}
	if _, err := IssueCollector(dir, []string{"localhost", "127.0.0.1", "::1"}, Options{}); err != nil {
		t.Fatal(err)
	}
	if _, err := IssueAgent(dir, "850591", Options{}); err != nil {
		t.Fatal(err)
	}
	return dir
}

func mustReadCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	cert, err := readCert(path)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

func TestCreateCA(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "new", "pki") // made by CreateCA
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	cert, err := CreateCA(dir, Options{Clock: simclock.New(now), Organization: "Test Customs"})
	if err != nil {
		t.Fatal(err)
	}
	onDisk := mustReadCert(t, filepath.Join(dir, CACertFile))
	if !onDisk.Equal(cert) {
		t.Error("returned certificate differs from ca.crt")
	}
	if got := cert.Subject.CommonName; got != CACommonName {
		t.Errorf("CN = %q, want %q", got, CACommonName)
	}
	if got := cert.Subject.Organization; !slices.Equal(got, []string{"Test Customs"}) {
		t.Errorf("O = %q, want [Test Customs]", got)
	}
	if !cert.IsCA || !cert.BasicConstraintsValid || cert.MaxPathLen != 0 || !cert.MaxPathLenZero {
		t.Errorf("IsCA=%v BasicConstraintsValid=%v MaxPathLen=%d MaxPathLenZero=%v, want a CA with path length 0",
			cert.IsCA, cert.BasicConstraintsValid, cert.MaxPathLen, cert.MaxPathLenZero)
	}
	if want := x509.KeyUsageCertSign | x509.KeyUsageCRLSign; cert.KeyUsage != want {
		t.Errorf("KeyUsage = %v, want %v", cert.KeyUsage, want)
	}
	pub, ok := cert.PublicKey.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		t.Errorf("public key %T, want ECDSA P-256", cert.PublicKey)
	}
	if err := cert.CheckSignatureFrom(cert); err != nil {
		t.Errorf("not self-signed: %v", err)
	}
	if want := now.Add(DefaultCAValidity); !cert.NotAfter.Equal(want) {
		t.Errorf("NotAfter = %v, want %v", cert.NotAfter, want)
	}
	if !cert.NotBefore.Before(now) {
		t.Errorf("NotBefore = %v, want before %v", cert.NotBefore, now)
	}
	if _, err := LoadCA(dir); err != nil {
		t.Errorf("LoadCA: %v", err)
	}
	crl, err := LoadCRL(filepath.Join(dir, CRLFile), filepath.Join(dir, CACertFile))
	if err != nil {
		t.Fatalf("CreateCA wrote no usable ca.crl: %v", err)
	}
	if len(crl.RevokedCertificateEntries) != 0 {
		t.Errorf("new ca.crl lists %d certificates, want none", len(crl.RevokedCertificateEntries))
	}
}

func TestCreateCARefusesToOverwrite(t *testing.T) {
	dir := t.TempDir()
	first, err := CreateCA(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	before, err := os.ReadFile(filepath.Join(dir, CAKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	_, err = CreateCA(dir, Options{})
	if !errors.Is(err, fs.ErrExist) {
		t.Fatalf("second CreateCA: err = %v, want fs.ErrExist", err)
	}
	if !strings.Contains(err.Error(), CACertFile) {
		t.Errorf("error %q does not name %s", err, CACertFile)
	}
	after, err := os.ReadFile(filepath.Join(dir, CAKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Error("refused CreateCA changed ca.key")
	}

	// Half a CA is still a CA not to be overwritten.
	if err := os.Remove(filepath.Join(dir, CACertFile)); err != nil {
		t.Fatal(err)
	}
	if _, err := CreateCA(dir, Options{}); !errors.Is(err, fs.ErrExist) {
		t.Errorf("CreateCA over a lone ca.key: err = %v, want fs.ErrExist", err)
	}

	second, err := CreateCA(dir, Options{Force: true})
	if err != nil {
		t.Fatalf("CreateCA with Force: %v", err)
	}
	if second.SerialNumber.Cmp(first.SerialNumber) == 0 {
		t.Error("forced CreateCA kept the old CA")
	}
}

func TestIssueCollector(t *testing.T) {
	dir := newPKI(t)
	ca := mustReadCert(t, filepath.Join(dir, CACertFile))
	cert := mustReadCert(t, filepath.Join(dir, CollectorCertFile))
	if err := cert.CheckSignatureFrom(ca); err != nil {
		t.Fatalf("collector.crt not signed by the CA: %v", err)
	}
	if !slices.Equal(cert.DNSNames, []string{"localhost"}) {
		t.Errorf("DNSNames = %q, want [localhost]", cert.DNSNames)
	}
	wantIPs := []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1")}
	if !slices.EqualFunc(cert.IPAddresses, wantIPs, net.IP.Equal) {
		t.Errorf("IPAddresses = %v, want %v", cert.IPAddresses, wantIPs)
	}
	if !slices.Equal(cert.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}) {
		t.Errorf("ExtKeyUsage = %v, want [ServerAuth]", cert.ExtKeyUsage)
	}
	if cert.IsCA {
		t.Error("collector certificate is a CA")
	}
	if !slices.Equal(cert.Subject.Organization, ca.Subject.Organization) {
		t.Errorf("O = %q, want the CA's %q", cert.Subject.Organization, ca.Subject.Organization)
	}

	for _, hosts := range [][]string{nil, {" ", ""}, {"host:8443"}, {"fe80::1%eth0"}, {"https://collector"}} {
		if _, err := IssueCollector(dir, hosts, Options{Force: true}); err == nil {
			t.Errorf("IssueCollector(%q) succeeded, want an error", hosts)
		}
	}
	if _, err := IssueCollector(dir, []string{"localhost"}, Options{}); !errors.Is(err, fs.ErrExist) {
		t.Errorf("IssueCollector over an existing one: err = %v, want fs.ErrExist", err)
	}
}

func TestIssueAgent(t *testing.T) {
	dir := t.TempDir()
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	opts := Options{Clock: simclock.New(now)}
	if _, err := CreateCA(dir, opts); err != nil {
		t.Fatal(err)
	}
	cert, err := IssueAgent(dir, "850591", opts)
	if err != nil {
		t.Fatal(err)
	}
	ca := mustReadCert(t, filepath.Join(dir, CACertFile))
	if err := cert.CheckSignatureFrom(ca); err != nil {
		t.Fatalf("agent certificate not signed by the CA: %v", err)
	}
	if !mustReadCert(t, filepath.Join(dir, "agent-850591.crt")).Equal(cert) {
		t.Error("returned certificate differs from agent-850591.crt")
	}
	if cert.Subject.CommonName != "850591" || !slices.Equal(cert.Subject.OrganizationalUnit, []string{AgentOU}) {
		t.Errorf("subject CN=%q OU=%q, want 850591, [%s]", cert.Subject.CommonName, cert.Subject.OrganizationalUnit, AgentOU)
	}
	if !slices.Equal(cert.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}) {
		t.Errorf("ExtKeyUsage = %v, want [ClientAuth]", cert.ExtKeyUsage)
	}
	if cert.SerialNumber.Sign() <= 0 || cert.SerialNumber.BitLen() > 128 {
		t.Errorf("serial %s: want positive, at most 128 bits", FormatSerial(cert.SerialNumber))
	}
	if want := now.Add(DefaultLeafValidity); !cert.NotAfter.Equal(want) {
		t.Errorf("NotAfter = %v, want %v", cert.NotAfter, want)
	}
	other, err := IssueAgent(dir, "850592", opts)
	if err != nil {
		t.Fatal(err)
	}
	if other.SerialNumber.Cmp(cert.SerialNumber) == 0 {
		t.Error("two agents got the same serial")
	}

	_, err = IssueAgent(dir, "850591", opts)
	if !errors.Is(err, fs.ErrExist) || !strings.Contains(err.Error(), "agent-850591") {
		t.Errorf("IssueAgent over an existing one: err = %v, want fs.ErrExist naming the file", err)
	}

	// A leaf never outlives its CA.
	long, err := IssueAgent(dir, "850593", Options{Clock: opts.Clock, Validity: 20 * DefaultCAValidity})
	if err != nil {
		t.Fatal(err)
	}
	if !long.NotAfter.Equal(ca.NotAfter) {
		t.Errorf("NotAfter = %v, want the CA's %v", long.NotAfter, ca.NotAfter)
	}

	for _, bad := range []string{"", "85/0591", "../850591", "850 591", "८५०", strings.Repeat("9", 21)} {
		_, err := IssueAgent(dir, bad, opts)
		if err == nil || !strings.Contains(err.Error(), "NUM_IDK") {
			t.Errorf("IssueAgent(%q): err = %v, want one naming NUM_IDK", bad, err)
		}
	}
}

func TestIssueWithExpiredCA(t *testing.T) {
	dir := t.TempDir()
	past := time.Now().Add(-48 * time.Hour)
	if _, err := CreateCA(dir, Options{Clock: simclock.New(past), Validity: time.Hour}); err != nil {
		t.Fatal(err)
	}
	if _, err := IssueAgent(dir, "850591", Options{}); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Errorf("IssueAgent with an expired CA: err = %v, want one saying it expired", err)
	}
}

func TestValidateNumIDK(t *testing.T) {
	for _, s := range []string{"850591", "0", "A1b2", strings.Repeat("7", 20)} {
		if err := ValidateNumIDK(s); err != nil {
			t.Errorf("ValidateNumIDK(%q) = %v, want nil", s, err)
		}
	}
	for _, s := range []string{"", " 850591", "850-591", "850591.", "№850591", strings.Repeat("7", 21)} {
		if err := ValidateNumIDK(s); err == nil {
			t.Errorf("ValidateNumIDK(%q) = nil, want an error", s)
		}
	}
}

func TestFileModes(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("Windows has no Unix permission bits")
	}
	dir := newPKI(t)
	want := map[string]fs.FileMode{
		CACertFile: 0o644, CAKeyFile: 0o600,
		CollectorCertFile: 0o644, CollectorKeyFile: 0o600,
		"agent-850591.crt": 0o644, "agent-850591.key": 0o600,
		CRLFile: 0o644,
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if _, ok := want[e.Name()]; !ok {
			t.Errorf("unexpected file %s (a temporary file left behind?)", e.Name())
		}
	}
	for name, mode := range want {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Error(err)
			continue
		}
		if got := fi.Mode().Perm(); got != mode {
			t.Errorf("%s: mode %v, want %v", name, got, mode)
		}
	}
}

func TestLoadCAErrorsNameTheFile(t *testing.T) {
	dir := newPKI(t)
	keyPath := filepath.Join(dir, CAKeyFile)
	// The collector's key is a valid key, but not the CA's.
	other, err := os.ReadFile(filepath.Join(dir, CollectorKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyPath, other, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadCA(dir); err == nil || !strings.Contains(err.Error(), keyPath) {
		t.Errorf("LoadCA with a foreign key: err = %v, want one naming %s", err, keyPath)
	}
	if err := os.WriteFile(keyPath, []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadCA(dir); err == nil || !strings.Contains(err.Error(), keyPath) {
		t.Errorf("LoadCA with garbage: err = %v, want one naming %s", err, keyPath)
	}
	if _, err := LoadCA(t.TempDir()); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("LoadCA of an empty directory: err = %v, want fs.ErrNotExist", err)
	}
}

func TestFormatParseSerial(t *testing.T) {
	for _, n := range []*big.Int{big.NewInt(1), big.NewInt(0x1ff), new(big.Int).Sub(serialLimit, big.NewInt(1))} {
		s := FormatSerial(n)
		got, err := ParseSerial(s)
		if err != nil || got.Cmp(n) != 0 {
			t.Errorf("ParseSerial(FormatSerial(%v) = %q) = %v, %v", n, s, got, err)
		}
	}
	if got := FormatSerial(big.NewInt(0x1ff)); got != "01:ff" {
		t.Errorf("FormatSerial(0x1ff) = %q, want 01:ff", got)
	}
	for _, s := range []string{"0x1FF", "1ff", "01:FF"} {
		if got, err := ParseSerial(s); err != nil || got.Int64() != 0x1ff {
			t.Errorf("ParseSerial(%q) = %v, %v, want 0x1ff", s, got, err)
		}
	}
	for _, s := range []string{"", "0x", "0", "-1", "+1", "xyz", "0x0x1"} {
		if _, err := ParseSerial(s); err == nil {
			t.Errorf("ParseSerial(%q) succeeded, want an error", s)
		}
	}
}
