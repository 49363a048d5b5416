package pki

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"idk/protocol/transport"
	"idk/simulator/simclock"
)

type handshakeResult struct {
	peer      *x509.Certificate // the client certificate the server saw
	version   uint16
	serverErr error
	clientErr error
}

// handshake runs a real TLS handshake over loopback TCP. In TLS 1.3 the
// client finishes its side before the server has judged the client
// certificate, so the server writes one byte once it accepts the client and
// the client reads it: a refused client sees the server's alert there.
func handshake(t *testing.T, serverCfg, clientCfg *tls.Config) handshakeResult {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	deadline := time.Now().Add(10 * time.Second)

	done := make(chan handshakeResult, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			done <- handshakeResult{serverErr: err}
			return
		}
		defer conn.Close()
		conn.SetDeadline(deadline)
		sc := tls.Server(conn, serverCfg)
		if err := sc.Handshake(); err != nil {
			done <- handshakeResult{serverErr: err}
			return
		}
		st := sc.ConnectionState()
		r := handshakeResult{version: st.Version}
		if len(st.PeerCertificates) > 0 {
			r.peer = st.PeerCertificates[0]
		}
		_, r.serverErr = sc.Write([]byte{1})
		done <- r
	}()

	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	conn.SetDeadline(deadline)
	cc := tls.Client(conn, clientCfg)
	clientErr := cc.Handshake()
	if clientErr == nil {
		var b [1]byte
		_, clientErr = io.ReadFull(cc, b[:])
	}
	cc.Close()
	r := <-done
	r.clientErr = clientErr
	return r
}

func serverConfig(t *testing.T, dir string) *tls.Config {
	t.Helper()
	cfg, err := transport.ServerTLS(filepath.Join(dir, CollectorCertFile), filepath.Join(dir, CollectorKeyFile), filepath.Join(dir, CACertFile))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func agentConfig(t *testing.T, dir, numIDK, caDir, serverName string) *tls.Config {
	t.Helper()
	cfg, err := transport.ClientTLS(filepath.Join(dir, AgentCertFile(numIDK)), filepath.Join(dir, AgentKeyFile(numIDK)),
		filepath.Join(caDir, CACertFile), serverName)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestHandshake(t *testing.T) {
	dir := newPKI(t)
	for _, serverName := range []string{"localhost", "127.0.0.1", "::1"} {
		t.Run(serverName, func(t *testing.T) {
			srv := serverConfig(t, dir)
			cli := agentConfig(t, dir, "850591", dir, serverName)
			// The callers set ALPN; a configuration that carried its own
			// would fight with theirs.
			if srv.NextProtos != nil || cli.NextProtos != nil {
				t.Errorf("NextProtos set: server %q, client %q", srv.NextProtos, cli.NextProtos)
			}
			r := handshake(t, srv, cli)
			if r.serverErr != nil || r.clientErr != nil {
				t.Fatalf("handshake failed: server: %v; client: %v", r.serverErr, r.clientErr)
			}
			if r.version != tls.VersionTLS13 {
				t.Errorf("version %x, want TLS 1.3", r.version)
			}
			id, err := IdentityFromCert(r.peer)
			if err != nil || id != "850591" {
				t.Errorf("IdentityFromCert = %q, %v, want 850591", id, err)
			}
		})
	}
}

func TestHandshakeRefused(t *testing.T) {
	dir := newPKI(t)

	foreign := newPKI(t) // another collector's CA, with its own ИДК 850591

	expired := t.TempDir()
	if _, err := CreateCA(expired, Options{}); err != nil {
		t.Fatal(err)
	}
	past := simclock.New(time.Now().Add(-72 * time.Hour))
	if _, err := IssueAgent(expired, "850591", Options{Clock: past, Validity: 24 * time.Hour}); err != nil {
		t.Fatal(err)
	}
	if _, err := IssueCollector(expired, []string{"localhost"}, Options{}); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name   string
		server func(t *testing.T) *tls.Config
		client func(t *testing.T) *tls.Config
		// refused says whether the side that must refuse did so for the
		// right reason; the server refuses unless serverOK.
		refused  func(serverErr, clientErr error) bool
		serverOK bool
	}{
		{
			name:   "no client certificate",
			server: func(t *testing.T) *tls.Config { return serverConfig(t, dir) },
			client: func(t *testing.T) *tls.Config {
				cfg := agentConfig(t, dir, "850591", dir, "localhost")
				cfg.Certificates = nil
				return cfg
			},
			refused: func(s, _ error) bool { return s != nil && strings.Contains(s.Error(), "certificate") },
		},
		{
			name:    "client certificate from another CA",
			server:  func(t *testing.T) *tls.Config { return serverConfig(t, dir) },
			client:  func(t *testing.T) *tls.Config { return agentConfig(t, foreign, "850591", dir, "localhost") },
			refused: func(s, _ error) bool { return errors.As(s, new(x509.UnknownAuthorityError)) },
		},
		{
			name:    "expired client certificate",
			server:  func(t *testing.T) *tls.Config { return serverConfig(t, expired) },
			client:  func(t *testing.T) *tls.Config { return agentConfig(t, expired, "850591", expired, "localhost") },
			refused: func(s, _ error) bool { return invalidBecause(s, x509.Expired) },
		},
		{
			name:   "collector certificate as client certificate",
			server: func(t *testing.T) *tls.Config { return serverConfig(t, dir) },
			client: func(t *testing.T) *tls.Config {
				cfg, err := transport.ClientTLS(filepath.Join(dir, CollectorCertFile), filepath.Join(dir, CollectorKeyFile),
					filepath.Join(dir, CACertFile), "localhost")
				if err != nil {
					t.Fatal(err)
				}
				return cfg
			},
			refused: func(s, _ error) bool { return invalidBecause(s, x509.IncompatibleUsage) },
		},
		{
			name:     "server from another CA",
			server:   func(t *testing.T) *tls.Config { return serverConfig(t, foreign) },
			client:   func(t *testing.T) *tls.Config { return agentConfig(t, dir, "850591", dir, "localhost") },
			refused:  func(_, c error) bool { return errors.As(c, new(x509.UnknownAuthorityError)) },
			serverOK: true,
		},
		{
			name:     "server name not in the collector certificate",
			server:   func(t *testing.T) *tls.Config { return serverConfig(t, dir) },
			client:   func(t *testing.T) *tls.Config { return agentConfig(t, dir, "850591", dir, "collector.example") },
			refused:  func(_, c error) bool { return errors.As(c, new(x509.HostnameError)) },
			serverOK: true,
		},
		{
			name:   "TLS 1.2 client",
			server: func(t *testing.T) *tls.Config { return serverConfig(t, dir) },
			client: func(t *testing.T) *tls.Config {
				cfg := agentConfig(t, dir, "850591", dir, "localhost")
				cfg.MinVersion, cfg.MaxVersion = tls.VersionTLS12, tls.VersionTLS12
				return cfg
			},
			refused: func(s, _ error) bool { return s != nil && strings.Contains(s.Error(), "version") },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := handshake(t, tt.server(t), tt.client(t))
			if r.clientErr == nil {
				t.Errorf("client: handshake succeeded, want it refused")
			}
			if !tt.serverOK && r.serverErr == nil {
				t.Errorf("server accepted the client")
			}
			if !tt.refused(r.serverErr, r.clientErr) {
				t.Errorf("refused for the wrong reason: server: %v; client: %v", r.serverErr, r.clientErr)
			}
		})
	}
}

func TestIdentityFromCert(t *testing.T) {
	dir := newPKI(t)
	agent := mustReadCert(t, filepath.Join(dir, "agent-850591.crt"))
	if id, err := IdentityFromCert(agent); err != nil || id != "850591" {
		t.Errorf("IdentityFromCert(agent) = %q, %v, want 850591", id, err)
	}
	collector := mustReadCert(t, filepath.Join(dir, CollectorCertFile))
	if _, err := IdentityFromCert(collector); err == nil || !strings.Contains(err.Error(), AgentOU) {
		t.Errorf("IdentityFromCert(collector) err = %v, want one naming %s", err, AgentOU)
	}
	if _, err := IdentityFromCert(nil); err == nil {
		t.Error("IdentityFromCert(nil) succeeded")
	}
	bad := *agent
	bad.Subject.CommonName = "../etc"
	if _, err := IdentityFromCert(&bad); err == nil || !strings.Contains(err.Error(), "NUM_IDK") {
		t.Errorf("IdentityFromCert with CN %q: err = %v, want one naming NUM_IDK", bad.Subject.CommonName, err)
	}
}

// invalidBecause reports whether err is a certificate verification failure
// for reason.
func invalidBecause(err error, reason x509.InvalidReason) bool {
	var inv x509.CertificateInvalidError
	return errors.As(err, &inv) && inv.Reason == reason
}
