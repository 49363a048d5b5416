package pki

import (
	"crypto/tls"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"idk/simulator/simclock"
)

// Every way an agent can fail to prove who it is, through a real TLS 1.3
// handshake, is refused and reported with its reason.
func TestClientVerifierRefusesAndCounts(t *testing.T) {
	dir := newPKI(t)
	other := newPKI(t) // another CA altogether
	past := simclock.New(time.Now().Add(-5 * 365 * 24 * time.Hour))
	if _, err := IssueAgent(dir, "999001", Options{Clock: past, Validity: 24 * time.Hour}); err != nil {
		t.Fatal(err)
	}
	if _, err := IssueAgent(dir, "999002", Options{}); err != nil {
		t.Fatal(err)
	}
	if _, err := Revoke(dir, "999002", Options{}); err != nil {
		t.Fatal(err)
	}
	revs, err := NewRevocationChecker(filepath.Join(dir, CRLFile), filepath.Join(dir, CACertFile), nil)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	refused := map[string]int{}
	server := func() *tls.Config {
		cfg := serverConfig(t, dir)
		(&ClientVerifier{Revocations: revs, OnRefuse: func(reason string, err error) {
			mu.Lock()
			refused[reason]++
			mu.Unlock()
		}}).Apply(cfg)
		return cfg
	}
	noCert := agentConfig(t, dir, "850591", dir, "localhost")
	noCert.Certificates = nil
	collectorAsClient := agentConfig(t, dir, "850591", dir, "localhost")
	cc, err := tls.LoadX509KeyPair(filepath.Join(dir, CollectorCertFile), filepath.Join(dir, CollectorKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	collectorAsClient.Certificates = []tls.Certificate{cc}

	cases := []struct {
		name   string
		client *tls.Config
		reason string
	}{
		{"valid", agentConfig(t, dir, "850591", dir, "localhost"), ""},
		{"no certificate", noCert, "no_certificate"},
		{"another CA", agentConfig(t, other, "850591", dir, "localhost"), "unknown_ca"},
		{"expired", agentConfig(t, dir, "999001", dir, "localhost"), "expired"},
		{"revoked", agentConfig(t, dir, "999002", dir, "localhost"), "revoked"},
		{"collector certificate", collectorAsClient, "invalid"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			mu.Lock()
			before := refused[tc.reason]
			mu.Unlock()
			r := handshake(t, server(), tc.client)
			mu.Lock()
			after := refused[tc.reason]
			mu.Unlock()
			if tc.reason == "" {
				if r.serverErr != nil || r.clientErr != nil {
					t.Fatalf("valid agent refused: %v / %v", r.serverErr, r.clientErr)
				}
				return
			}
			if r.serverErr == nil || r.clientErr == nil {
				t.Fatalf("not refused: server %v, client %v", r.serverErr, r.clientErr)
			}
			if after != before+1 {
				t.Fatalf("refusal not counted as %q (counts %v)", tc.reason, refused)
			}
		})
	}
}
