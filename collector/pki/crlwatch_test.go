package pki

import (
	"path/filepath"
	"sync"
	"testing"
	"time"
)

func TestRevocationCheckerPicksUpNewRevocations(t *testing.T) {
	dir := t.TempDir()
	if _, err := CreateCA(dir, Options{}); err != nil {
		t.Fatal(err)
	}
	cert, err := IssueAgent(dir, "850591", Options{})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	c, err := NewRevocationChecker(filepath.Join(dir, CRLFile), filepath.Join(dir, CACertFile), clock)
	if err != nil {
		t.Fatal(err)
	}
	if revoked, err := c.Revoked(cert.SerialNumber); revoked || err != nil {
		t.Fatalf("fresh certificate revoked=%v err=%v", revoked, err)
	}
	if _, err := Revoke(dir, "850591", Options{}); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	now = now.Add(reloadEvery)
	mu.Unlock()
	if revoked, err := c.Revoked(cert.SerialNumber); !revoked || err != nil {
		t.Fatalf("after revoke: revoked=%v err=%v", revoked, err)
	}
}
