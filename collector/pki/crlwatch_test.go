package pki

import (
	"path/filepath"
	"testing"
	"time"

	"idk/simulator/simclock"
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
	clk := simclock.New(time.Now())
	c, err := NewRevocationChecker(filepath.Join(dir, CRLFile), filepath.Join(dir, CACertFile), clk)
	if err != nil {
		t.Fatal(err)
	}
	if revoked, err := c.Revoked(cert.SerialNumber); revoked || err != nil {
		t.Fatalf("fresh certificate revoked=%v err=%v", revoked, err)
	}
	if _, err := Revoke(dir, "850591", Options{}); err != nil {
		t.Fatal(err)
	}
	clk.Advance(reloadEvery)
	if revoked, err := c.Revoked(cert.SerialNumber); !revoked || err != nil {
		t.Fatalf("after revoke: revoked=%v err=%v", revoked, err)
	}
}
