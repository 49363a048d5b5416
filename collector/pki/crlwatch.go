package pki

import (
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"os"
	"sync"
	"time"

	"idk/internal/clock"
)

// RevocationChecker answers whether a certificate is revoked, reloading
// the CA's revocation list when the file changes, so `pki revoke` takes
// effect on a running collector within seconds and without a restart.
type RevocationChecker struct {
	crlFile, caFile string
	clock           clock.Clock

	mu        sync.Mutex
	crl       *x509.RevocationList
	mod       time.Time
	size      int64
	checkedAt time.Time
}

// NewRevocationChecker loads crlFile (signed by the CA in caFile). A
// missing file means nothing is revoked yet. clk, clock.Real if nil,
// paces the checks for a changed file.
func NewRevocationChecker(crlFile, caFile string, clk clock.Clock) (*RevocationChecker, error) {
	c := &RevocationChecker{crlFile: crlFile, caFile: caFile, clock: clock.Or(clk)}
	if err := c.reload(); err != nil {
		return nil, err
	}
	return c, nil
}

// reloadEvery bounds how often the file is looked at.
const reloadEvery = 2 * time.Second

func (c *RevocationChecker) reload() error {
	fi, err := os.Stat(c.crlFile)
	if errors.Is(err, fs.ErrNotExist) {
		c.crl, c.mod, c.size = nil, time.Time{}, 0
		return nil
	}
	if err != nil {
		return fmt.Errorf("pki: revocation list %s: %w", c.crlFile, err)
	}
	if fi.ModTime().Equal(c.mod) && fi.Size() == c.size && c.crl != nil {
		return nil
	}
	crl, err := LoadCRL(c.crlFile, c.caFile)
	if err != nil {
		return err
	}
	c.crl, c.mod, c.size = crl, fi.ModTime(), fi.Size()
	return nil
}

// Revoked reports whether serial is on the current list. If a changed list
// cannot be read, the last good one stays in force and the error is
// returned alongside, for the caller to log.
func (c *RevocationChecker) Revoked(serial *big.Int) (bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var err error
	if now := c.clock.Now(); now.Sub(c.checkedAt) >= reloadEvery {
		c.checkedAt = now
		err = c.reload()
	}
	return IsRevoked(c.crl, serial), err
}
