package pki

import (
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"time"

	"idk/internal/atomicfile"
)

// Revoke adds a certificate to the revocation list of the CA in dir and
// rewrites ca.crl, creating it if missing. serialOrNumIDK is either
//
//   - a serial number in hex: with a "0x" prefix, as colon-separated octets
//     (FormatSerial), or as more than 20 hex digits (longer than any
//     NUM_IDK); or
//   - a NUM_IDK, which revokes the certificate now in agent-<NUM_IDK>.crt.
//
// Revoking a serial that is already listed changes nothing. Revoke returns
// the serial number it revoked. opts.Clock dates the revocation; the other
// options are ignored.
//
// The collector reads ca.crl (LoadCRL) and must check each agent's serial
// against it (IsRevoked); the TLS configurations here do not.
func Revoke(dir, serialOrNumIDK string, opts Options) (*big.Int, error) {
	ca, err := LoadCA(dir)
	if err != nil {
		return nil, err
	}
	var serial *big.Int
	if looksLikeSerial(serialOrNumIDK) {
		serial, err = ParseSerial(serialOrNumIDK)
	} else {
		serial, err = agentSerial(dir, ca, serialOrNumIDK)
	}
	if err != nil {
		return nil, err
	}
	return serial, revokeSerial(dir, ca, serial, opts.now())
}

// looksLikeSerial tells a serial number from a NUM_IDK; see Revoke.
func looksLikeSerial(s string) bool {
	if strings.HasPrefix(s, "0x") || strings.HasPrefix(s, "0X") || strings.Contains(s, ":") {
		return true
	}
	if len(s) <= maxNumIDKLen {
		return false
	}
	_, err := hex.DecodeString(strings.Repeat("0", len(s)%2) + s)
	return err == nil
}

// ParseSerial reads a certificate serial number written in hex, with or
// without a "0x" prefix or colons between octets.
func ParseSerial(s string) (*big.Int, error) {
	h := strings.ReplaceAll(strings.TrimPrefix(strings.TrimPrefix(s, "0x"), "0X"), ":", "")
	n, ok := new(big.Int).SetString(h, 16)
	if !ok || h == "" || strings.HasPrefix(h, "-") || strings.HasPrefix(h, "+") || n.Sign() <= 0 {
		return nil, fmt.Errorf("pki: serial number %q: want positive hex, e.g. 0x1f or 01:f4", s)
	}
	return n, nil
}

// agentSerial is the serial of the certificate in agent-<numIDK>.crt, which
// must have been signed by ca: a serial of another CA means nothing to this
// one's list.
func agentSerial(dir string, ca *CA, numIDK string) (*big.Int, error) {
	if err := ValidateNumIDK(numIDK); err != nil {
		return nil, err
	}
	path := filepath.Join(dir, AgentCertFile(numIDK))
	cert, err := readCert(path)
	if err != nil {
		return nil, err
	}
	if err := cert.CheckSignatureFrom(ca.Cert); err != nil {
		return nil, fmt.Errorf("pki: %s was not issued by the CA in %s: %w", path, dir, err)
	}
	return cert.SerialNumber, nil
}

func revokeSerial(dir string, ca *CA, serial *big.Int, now time.Time) error {
	path := filepath.Join(dir, CRLFile)
	var entries []x509.RevocationListEntry
	number := big.NewInt(1)
	old, err := loadCRL(path, ca.Cert)
	switch {
	case err == nil:
		if IsRevoked(old, serial) {
			return nil
		}
		for _, e := range old.RevokedCertificateEntries {
			// Only the fields CreateRevocationList writes; Raw and the
			// parsed Extensions would be ignored anyway.
			entries = append(entries, x509.RevocationListEntry{
				SerialNumber:   e.SerialNumber,
				RevocationTime: e.RevocationTime,
				ReasonCode:     e.ReasonCode,
			})
		}
		if old.Number != nil {
			// RFC 5280 wants the CRL number to increase with each list.
			number.Add(old.Number, big.NewInt(1))
		}
	case errors.Is(err, fs.ErrNotExist):
	default:
		// A list that cannot be read or verified is not replaced: that
		// would silently un-revoke whatever it held.
		return err
	}
	entries = append(entries, x509.RevocationListEntry{SerialNumber: serial, RevocationTime: now})
	crl, err := ca.signCRL(entries, number, now)
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(path, crl, 0o644)
}

// EnsureCRL returns the revocation list in dir, checked against ca. If
// there is none it first writes an empty one and reports created: the
// collector refuses to start without the list, and like Revoke it starts
// afresh, since a deleted list's revocations are recorded nowhere else.
func (ca *CA) EnsureCRL(dir string, now time.Time) (crl *x509.RevocationList, created bool, err error) {
	path := filepath.Join(dir, CRLFile)
	crl, err = loadCRL(path, ca.Cert)
	if !errors.Is(err, fs.ErrNotExist) {
		return crl, false, err
	}
	data, err := ca.signCRL(nil, big.NewInt(1), now)
	if err != nil {
		return nil, false, err
	}
	if err := atomicfile.WriteFile(path, data, 0o644); err != nil {
		return nil, false, err
	}
	crl, err = loadCRL(path, ca.Cert)
	return crl, err == nil, err
}

// signCRL returns a PEM revocation list signed by ca.
func (ca *CA) signCRL(entries []x509.RevocationListEntry, number *big.Int, now time.Time) ([]byte, error) {
	if err := ca.CheckValid(now); err != nil {
		return nil, err
	}
	tmpl := &x509.RevocationList{
		Number:                    number,
		ThisUpdate:                now,
		RevokedCertificateEntries: entries,
		// The list is re-signed only when a certificate is revoked, never
		// on a schedule, so it stays current for as long as the CA lives;
		// an earlier NextUpdate would make a collector that checks
		// freshness refuse a list that nobody needed to change.
		NextUpdate: ca.Cert.NotAfter,
	}
	der, err := x509.CreateRevocationList(rand.Reader, tmpl, ca.Cert, ca.Key)
	if err != nil {
		return nil, fmt.Errorf("pki: sign revocation list: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: pemCRL, Bytes: der}), nil
}

// LoadCRL reads a PEM revocation list from crlFile and checks that the CA
// in caFile signed it. A missing crlFile gives an error matching
// fs.ErrNotExist.
func LoadCRL(crlFile, caFile string) (*x509.RevocationList, error) {
	ca, err := readCert(caFile)
	if err != nil {
		return nil, err
	}
	return loadCRL(crlFile, ca)
}

func loadCRL(path string, ca *x509.Certificate) (*x509.RevocationList, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != pemCRL {
		return nil, fmt.Errorf("pki: %s: no %s PEM block", path, pemCRL)
	}
	crl, err := x509.ParseRevocationList(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("pki: %s: %w", path, err)
	}
	if err := crl.CheckSignatureFrom(ca); err != nil {
		return nil, fmt.Errorf("pki: %s is not signed by CA %q: %w", path, ca.Subject.CommonName, err)
	}
	return crl, nil
}

// IsRevoked reports whether crl lists serial. A nil list revokes nothing.
func IsRevoked(crl *x509.RevocationList, serial *big.Int) bool {
	if crl == nil || serial == nil {
		return false
	}
	for _, e := range crl.RevokedCertificateEntries {
		if e.SerialNumber != nil && e.SerialNumber.Cmp(serial) == 0 {
			return true
		}
	}
	return false
}
