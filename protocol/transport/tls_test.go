package transport

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// writePair writes a certificate for cn, signed by parent (self-signed if
// nil), and its key to dir as cn.crt and cn.key. It is the least a TLS
// configuration needs; collector/pki's tests cover real certificates.
func writePair(t *testing.T, dir, cn string, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		DNSNames:     []string{"localhost"},
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	if parent == nil {
		tmpl.IsCA, tmpl.BasicConstraintsValid, tmpl.KeyUsage = true, true, x509.KeyUsageCertSign
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name, typ string, b []byte) {
		if err := os.WriteFile(filepath.Join(dir, name), pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b}), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(cn+".crt", pemCertificate, der)
	write(cn+".key", "PRIVATE KEY", keyDER)
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert, key
}

func TestHandshakeTLS13(t *testing.T) {
	dir := t.TempDir()
	ca, caKey := writePair(t, dir, "ca", nil, nil)
	writePair(t, dir, "server", ca, caKey)
	writePair(t, dir, "client", ca, caKey)
	path := func(name string) string { return filepath.Join(dir, name) }
	srv, err := ServerTLS(path("server.crt"), path("server.key"), path("ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	cli, err := ClientTLS(path("client.crt"), path("client.key"), path("ca.crt"), "localhost")
	if err != nil {
		t.Fatal(err)
	}

	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	done := make(chan error, 1)
	sc := tls.Server(a, srv)
	go func() { done <- sc.Handshake() }()
	cc := tls.Client(b, cli)
	if err := cc.Handshake(); err != nil {
		t.Fatalf("client: %v", err)
	}
	if err := <-done; err != nil {
		t.Fatalf("server: %v", err)
	}
	if v := cc.ConnectionState().Version; v != tls.VersionTLS13 {
		t.Errorf("version %x, want TLS 1.3", v)
	}
	if peers := sc.ConnectionState().PeerCertificates; len(peers) == 0 || peers[0].Subject.CommonName != "client" {
		t.Errorf("server saw client certificates %v, want the one for \"client\"", peers)
	}
}

func TestTLSErrorsNameTheFile(t *testing.T) {
	dir := t.TempDir()
	ca, caKey := writePair(t, dir, "ca", nil, nil)
	writePair(t, dir, "leaf", ca, caKey)
	writePair(t, dir, "other", ca, caKey)
	path := func(name string) string { return filepath.Join(dir, name) }
	missing := path("missing.crt")
	cert, key, caFile := path("leaf.crt"), path("leaf.key"), path("ca.crt")
	for _, tt := range []struct {
		name          string
		cert, key, ca string
		want          string
	}{
		{"missing CA", cert, key, missing, missing},
		{"CA file is a key", cert, key, key, key},
		{"missing cert", missing, key, caFile, missing},
		{"key of another cert", cert, path("other.key"), caFile, cert},
	} {
		if _, err := ServerTLS(tt.cert, tt.key, tt.ca); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: ServerTLS err = %v, want one naming %s", tt.name, err, tt.want)
		}
		if _, err := ClientTLS(tt.cert, tt.key, tt.ca, "localhost"); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: ClientTLS err = %v, want one naming %s", tt.name, err, tt.want)
		}
	}
}
