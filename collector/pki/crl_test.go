package pki

import (
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"idk/simulator/simclock"
)

func loadTestCRL(t *testing.T, dir string) []*big.Int {
	t.Helper()
	crl, err := LoadCRL(filepath.Join(dir, CRLFile), filepath.Join(dir, CACertFile))
	if err != nil {
		t.Fatal(err)
	}
	var serials []*big.Int
	for _, e := range crl.RevokedCertificateEntries {
		serials = append(serials, e.SerialNumber)
	}
	return serials
}

func TestRevoke(t *testing.T) {
	dir := newPKI(t)
	for _, n := range []string{"850592", "850593"} {
		if _, err := IssueAgent(dir, n, Options{}); err != nil {
			t.Fatal(err)
		}
	}
	agent := func(n string) *big.Int { return mustReadCert(t, filepath.Join(dir, AgentCertFile(n))).SerialNumber }
	crlPath, caPath := filepath.Join(dir, CRLFile), filepath.Join(dir, CACertFile)

	when := time.Date(2030, 5, 6, 7, 8, 9, 0, time.UTC)
	serial, err := Revoke(dir, "850591", Options{Clock: simclock.New(when)})
	if err != nil {
		t.Fatal(err)
	}
	if serial.Cmp(agent("850591")) != 0 {
		t.Errorf("Revoke returned serial %s, want agent-850591's %s", FormatSerial(serial), FormatSerial(agent("850591")))
	}
	crl, err := LoadCRL(crlPath, caPath)
	if err != nil {
		t.Fatal(err)
	}
	if !IsRevoked(crl, agent("850591")) || IsRevoked(crl, agent("850592")) {
		t.Errorf("after revoking 850591, list holds %v", loadTestCRL(t, dir))
	}
	if e := crl.RevokedCertificateEntries[0]; !e.RevocationTime.Equal(when) {
		t.Errorf("RevocationTime = %v, want %v", e.RevocationTime, when)
	}
	if crl.Number.Int64() != 2 {
		t.Errorf("CRL number %v after one revocation, want 2 (1 is the empty list from CreateCA)", crl.Number)
	}

	// Every spelling of a serial names the same certificate.
	s2, s3 := agent("850592"), agent("850593")
	if _, err := Revoke(dir, FormatSerial(s2), Options{}); err != nil {
		t.Fatal(err)
	}
	if _, err := Revoke(dir, "0x"+s3.Text(16), Options{}); err != nil {
		t.Fatal(err)
	}
	// Already listed: nothing changes.
	before, err := os.ReadFile(crlPath)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Revoke(dir, "850591", Options{}); err != nil {
		t.Fatal(err)
	}
	// Plain hex longer than any NUM_IDK, as openssl x509 -serial prints it.
	if _, err := Revoke(dir, fmt.Sprintf("%032X", s3), Options{}); err != nil {
		t.Fatal(err)
	}
	after, err := os.ReadFile(crlPath)
	if err != nil {
		t.Fatal(err)
	}
	if string(before) != string(after) {
		t.Error("revoking listed serials again rewrote ca.crl")
	}

	crl, err = LoadCRL(crlPath, caPath)
	if err != nil {
		t.Fatal(err)
	}
	if len(crl.RevokedCertificateEntries) != 3 {
		t.Errorf("list holds %v, want 3 serials", loadTestCRL(t, dir))
	}
	for _, s := range []*big.Int{agent("850591"), s2, s3} {
		if !IsRevoked(crl, s) {
			t.Errorf("serial %s not listed", FormatSerial(s))
		}
	}
	if crl.Number.Int64() != 4 {
		t.Errorf("CRL number %v, want 4", crl.Number)
	}
	if IsRevoked(nil, s2) {
		t.Error("IsRevoked(nil list) = true")
	}
}

func TestRevokeErrors(t *testing.T) {
	dir := newPKI(t)
	missing := filepath.Join(dir, AgentCertFile("999"))
	if _, err := Revoke(dir, "999", Options{}); !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), missing) {
		t.Errorf("Revoke of an unknown NUM_IDK: err = %v, want fs.ErrNotExist naming %s", err, missing)
	}
	if _, err := Revoke(dir, "85/0591", Options{}); err == nil || !strings.Contains(err.Error(), "NUM_IDK") {
		t.Errorf("Revoke of a bad NUM_IDK: err = %v, want one naming NUM_IDK", err)
	}
	if _, err := Revoke(dir, "0xzz", Options{}); err == nil || !strings.Contains(err.Error(), "serial") {
		t.Errorf("Revoke of a bad serial: err = %v, want one naming the serial", err)
	}

	// An agent certificate of another CA has a serial that means nothing here.
	foreign := newPKI(t)
	data, err := os.ReadFile(filepath.Join(foreign, AgentCertFile("850591")))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, AgentCertFile("777")), data, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Revoke(dir, "777", Options{}); err == nil {
		t.Error("Revoke of another CA's certificate succeeded")
	}

	// A list signed by another CA is neither trusted nor replaced.
	crlPath := filepath.Join(dir, CRLFile)
	foreignCRL, err := os.ReadFile(filepath.Join(foreign, CRLFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(crlPath, foreignCRL, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadCRL(crlPath, filepath.Join(dir, CACertFile)); err == nil || !strings.Contains(err.Error(), crlPath) {
		t.Errorf("LoadCRL of a foreign list: err = %v, want one naming %s", err, crlPath)
	}
	if _, err := Revoke(dir, "850591", Options{}); err == nil {
		t.Error("Revoke replaced a list it could not verify")
	}
	after, err := os.ReadFile(crlPath)
	if err != nil {
		t.Fatal(err)
	}
	if string(after) != string(foreignCRL) {
		t.Error("Revoke rewrote a list it could not verify")
	}

	// A missing list is started afresh.
	if err := os.Remove(crlPath); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadCRL(crlPath, filepath.Join(dir, CACertFile)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("LoadCRL of a missing file: err = %v, want fs.ErrNotExist", err)
	}
	if _, err := Revoke(dir, "850591", Options{}); err != nil {
		t.Fatal(err)
	}
	if got := loadTestCRL(t, dir); len(got) != 1 {
		t.Errorf("fresh list holds %v, want one serial", got)
	}
}

func TestLooksLikeSerial(t *testing.T) {
	for s, want := range map[string]bool{
		"850591":                     false,
		"ABCDEF":                     false, // could be a NUM_IDK
		strings.Repeat("9", 20):      false,
		strings.Repeat("9", 21):      true,
		strings.Repeat("z", 21):      false, // neither; ValidateNumIDK reports it
		"0x1f":                       true,
		"01:f4":                      true,
		"8a3f0c1d2e4b5a69788796a5b4": true,
	} {
		if got := looksLikeSerial(s); got != want {
			t.Errorf("looksLikeSerial(%q) = %v, want %v", s, got, want)
		}
	}
}
