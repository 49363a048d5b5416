package certexpiry

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// certPEM is a self-signed certificate valid until notAfter, PEM-encoded.
func certPEM(t *testing.T, notAfter time.Time) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "x"},
		NotBefore: notAfter.Add(-48 * time.Hour), NotAfter: notAfter}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

const name = "test_certificate_expiry_timestamp_seconds"

func expect(ts time.Time) string {
	return fmt.Sprintf("# HELP %s help\n# TYPE %s gauge\n%s %d\n", name, name, name, ts.Unix())
}

func TestCollectorFollowsTheFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "agent.crt")
	first := time.Date(2027, 3, 1, 12, 0, 0, 0, time.UTC)
	if err := os.WriteFile(path, certPEM(t, first), 0o644); err != nil {
		t.Fatal(err)
	}
	c := New(name, "help", path)
	if err := testutil.CollectAndCompare(c, strings.NewReader(expect(first))); err != nil {
		t.Fatal(err)
	}

	// Renewed in place: the next scrape shows the new date.
	renewed := first.Add(730 * 24 * time.Hour)
	if err := os.WriteFile(path, certPEM(t, renewed), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := testutil.CollectAndCompare(c, strings.NewReader(expect(renewed))); err != nil {
		t.Fatal(err)
	}

	// A bundle reports its earliest certificate.
	early := first.Add(-24 * time.Hour)
	if err := os.WriteFile(path, append(certPEM(t, renewed), certPEM(t, early)...), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := testutil.CollectAndCompare(c, strings.NewReader(expect(early))); err != nil {
		t.Fatal(err)
	}

	// Unreadable: no sample, and no failed scrape.
	if err := os.WriteFile(path, []byte("not a certificate"), 0o644); err != nil {
		t.Fatal(err)
	}
	if n := testutil.CollectAndCount(c); n != 0 {
		t.Errorf("broken file gave %d samples, want 0", n)
	}
	if _, err := NotAfter(filepath.Join(t.TempDir(), "missing.crt")); err == nil {
		t.Error("NotAfter of a missing file: no error")
	}
}
