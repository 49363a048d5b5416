package main

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"idk/collector/config"
	"idk/collector/pki"
)

// listen.https serves the same handler over TLS with the collector's own
// certificate, which a client trusting the ИДК CA accepts; listen.http
// keeps serving plain HTTP beside it.
func TestServeHTTPS(t *testing.T) {
	dir := t.TempDir()
	if _, err := pki.CreateCA(dir, pki.Options{}); err != nil {
		t.Fatal(err)
	}
	if _, err := pki.IssueCollector(dir, []string{"localhost", "127.0.0.1"}, pki.Options{}); err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.TLS.Cert, cfg.TLS.Key = filepath.Join(dir, pki.CollectorCertFile), filepath.Join(dir, pki.CollectorKeyFile)
	cfg.Listen.HTTP, cfg.Listen.HTTPS = freeTCP(t), freeTCP(t)
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS != nil {
			io.WriteString(w, "tls")
			return
		}
		io.WriteString(w, "plain")
	})
	stop, err := serveHTTP(cfg, handler, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer stop()

	caPEM, err := os.ReadFile(filepath.Join(dir, pki.CACertFile))
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(caPEM)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}, ForceAttemptHTTP2: true}}
	for _, c := range []struct{ url, want string }{
		{"https://" + cfg.Listen.HTTPS + "/", "tls"},
		{"http://" + cfg.Listen.HTTP + "/", "plain"},
	} {
		resp, err := client.Get(c.url)
		if err != nil {
			t.Fatalf("GET %s: %v", c.url, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != c.want {
			t.Errorf("GET %s: %q, want %q", c.url, b, c.want)
		}
		if c.want == "tls" && resp.ProtoMajor != 2 {
			t.Errorf("HTTPS spoke %s, want HTTP/2 (the connection limit must keep *tls.Conn)", resp.Proto)
		}
	}
	// A client that does not trust the CA is refused.
	if _, err := http.Get("https://" + cfg.Listen.HTTPS + "/"); err == nil {
		t.Error("a client without the ИДК CA accepted the collector's certificate")
	}
}

func freeTCP(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
