// Package pki issues and loads the certificates that secure agent–collector
// traffic with mutual TLS, so that neither a demo nor a test needs anything
// made by hand.
//
// One collector (one per regional office) has its own CA. Everything lives in
// one directory on the collector host:
//
//	ca.crt, ca.key                   the CA; ca.key never leaves this host
//	collector.crt, collector.key     the collector's server certificate
//	agent-<NUM_IDK>.crt, .key        one client pair per ИДК, copied with
//	                                 ca.crt to that scanner PC
//	ca.crl                           revoked agent certificates, signed by the CA
//
// An agent certificate names its ИДК by number (NUM_IDK) in the subject
// CommonName and carries the OrganizationalUnit "idk-agent"; see
// IdentityFromCert.
//
// The functions expect one operator at a time: two Revoke calls racing on
// the same directory can lose one of the revocations.
package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"idk/internal/atomicfile"
	"idk/internal/clock"
)

// Names of the files in a PKI directory.
const (
	CACertFile        = "ca.crt"
	CAKeyFile         = "ca.key"
	CollectorCertFile = "collector.crt"
	CollectorKeyFile  = "collector.key"
	CRLFile           = "ca.crl"
)

// AgentCertFile is the name of the certificate file of ИДК numIDK.
func AgentCertFile(numIDK string) string { return "agent-" + numIDK + ".crt" }

// AgentKeyFile is the name of the private key file of ИДК numIDK.
func AgentKeyFile(numIDK string) string { return "agent-" + numIDK + ".key" }

// Subject names of the certificates.
const (
	CACommonName        = "IDK Collector CA"
	CollectorCommonName = "IDK Collector"
	// AgentOU is the OrganizationalUnit of every agent certificate. It is
	// what tells an agent's certificate from the collector's, which the
	// same CA signs.
	AgentOU = "idk-agent"
)

// Default validity periods.
const (
	DefaultCAValidity   = 10 * 365 * 24 * time.Hour
	DefaultLeafValidity = 2 * 365 * 24 * time.Hour
)

// backdate moves NotBefore into the past: scanner PCs' clocks drift, and a
// certificate valid only from the instant it was made would be refused by
// an agent whose clock runs a few minutes behind the collector's.
const backdate = time.Hour

const (
	pemCertificate = "CERTIFICATE"
	pemPrivateKey  = "PRIVATE KEY"
	pemCRL         = "X509 CRL"
)

// Options tune how certificates are made. The zero value is ready to use.
type Options struct {
	// Clock dates new certificates and revocations; nil means clock.Real.
	// Tests set it to issue certificates that have already expired.
	Clock clock.Clock
	// Validity is how long a new certificate is valid. Zero means
	// DefaultCAValidity for the CA and DefaultLeafValidity for the others.
	// A leaf never outlives its CA: its NotAfter is cut to the CA's.
	Validity time.Duration
	// Organization is the subject O of a new CA. Collector and agent
	// certificates copy it from the CA, so only CreateCA reads it.
	Organization string
	// Force lets a function replace files that already exist. Replacing
	// the CA invalidates every certificate it issued.
	Force bool
}

func (o Options) now() time.Time { return clock.Or(o.Clock).Now() }

func (o Options) validity(def time.Duration) (time.Duration, error) {
	switch {
	case o.Validity < 0:
		return 0, fmt.Errorf("pki: validity %v is negative", o.Validity)
	case o.Validity == 0:
		return def, nil
	}
	return o.Validity, nil
}

// CA is a certificate authority loaded from a PKI directory.
type CA struct {
	Cert *x509.Certificate
	Key  *ecdsa.PrivateKey
}

// CreateCA makes a new self-signed CA (ECDSA P-256) in dir, creating dir if
// needed, and writes ca.crt, ca.key and an empty ca.crl. It refuses, with an
// error matching fs.ErrExist, to replace an existing ca.crt or ca.key unless
// opts.Force is set.
func CreateCA(dir string, opts Options) (*x509.Certificate, error) {
	validity, err := opts.validity(DefaultCAValidity)
	if err != nil {
		return nil, err
	}
	// 0700: the directory holds the CA key.
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("pki: create directory: %w", err)
	}
	certPath := filepath.Join(dir, CACertFile)
	keyPath := filepath.Join(dir, CAKeyFile)
	if !opts.Force {
		if err := refuseExisting(certPath, keyPath); err != nil {
			return nil, fmt.Errorf("%w; refusing to replace the CA, which would invalidate every certificate it issued", err)
		}
	}

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("pki: generate CA key: %w", err)
	}
	serial, err := newSerial()
	if err != nil {
		return nil, err
	}
	now := opts.now()
	subject := pkix.Name{CommonName: CACommonName}
	if opts.Organization != "" {
		subject.Organization = []string{opts.Organization}
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               subject,
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(validity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		// The CA signs only leaves, never another CA.
		MaxPathLen:     0,
		MaxPathLenZero: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("pki: create CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("pki: parse new CA certificate: %w", err)
	}
	ca := &CA{Cert: cert, Key: key}

	// An empty list from the start lets the collector load ca.crl
	// unconditionally, and a replaced CA must not be left with a list its
	// predecessor signed, which would no longer verify.
	crl, err := ca.signCRL(nil, big.NewInt(1), now)
	if err != nil {
		return nil, err
	}
	if err := writeKey(keyPath, key); err != nil {
		return nil, err
	}
	if err := writeCert(certPath, der); err != nil {
		return nil, err
	}
	if err := atomicfile.WriteFile(filepath.Join(dir, CRLFile), crl, 0o644); err != nil {
		return nil, err
	}
	return cert, nil
}

// LoadCA reads ca.crt and ca.key from dir and checks that they belong
// together.
func LoadCA(dir string) (*CA, error) {
	certPath := filepath.Join(dir, CACertFile)
	keyPath := filepath.Join(dir, CAKeyFile)
	cert, err := readCert(certPath)
	if err != nil {
		return nil, err
	}
	if !cert.IsCA || cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		return nil, fmt.Errorf("pki: %s is not a CA certificate", certPath)
	}
	key, err := readKey(keyPath)
	if err != nil {
		return nil, err
	}
	if !key.PublicKey.Equal(cert.PublicKey) {
		return nil, fmt.Errorf("pki: %s does not match %s", keyPath, certPath)
	}
	return &CA{Cert: cert, Key: key}, nil
}

// IssueCollector makes the collector's server certificate, signed by the CA
// in dir, and writes collector.crt and collector.key. hosts lists the names
// and IP addresses agents dial, e.g. "localhost", "127.0.0.1", "::1". It
// refuses to replace existing files unless opts.Force is set.
func IssueCollector(dir string, hosts []string, opts Options) (*x509.Certificate, error) {
	var dnsNames []string
	var ips []net.IP
	for _, h := range hosts {
		h = strings.TrimSpace(h)
		if h == "" {
			continue
		}
		if ip := net.ParseIP(h); ip != nil {
			ips = append(ips, ip)
			continue
		}
		if !validDNSName(h) {
			return nil, fmt.Errorf("pki: host %q is neither an IP address nor a DNS name", h)
		}
		dnsNames = append(dnsNames, h)
	}
	if len(dnsNames) == 0 && len(ips) == 0 {
		return nil, errors.New("pki: no hosts for the collector certificate")
	}
	tmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: CollectorCommonName},
		DNSNames:    dnsNames,
		IPAddresses: ips,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	return issueLeaf(dir, CollectorCertFile, CollectorKeyFile, tmpl, opts)
}

// IssueAgent makes the client certificate of ИДК numIDK, signed by the CA in
// dir, and writes agent-<numIDK>.crt and agent-<numIDK>.key. It refuses to
// replace existing files unless opts.Force is set: revoke the old
// certificate first, since afterwards only its serial can name it.
func IssueAgent(dir, numIDK string, opts Options) (*x509.Certificate, error) {
	if err := ValidateNumIDK(numIDK); err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		Subject: pkix.Name{
			CommonName:         numIDK,
			OrganizationalUnit: []string{AgentOU},
		},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	return issueLeaf(dir, AgentCertFile(numIDK), AgentKeyFile(numIDK), tmpl, opts)
}

// maxNumIDKLen bounds NUM_IDK; it also keeps file names short.
const maxNumIDKLen = 20

// ValidateNumIDK reports whether s can be an ИДК number (NUM_IDK): 1 to 20
// characters of 0-9, A-Z, a-z. The restriction keeps the number safe to use
// in a file name and a certificate subject.
func ValidateNumIDK(s string) error {
	ok := len(s) >= 1 && len(s) <= maxNumIDKLen
	for i := 0; ok && i < len(s); i++ {
		ok = isAlnum(s[i])
	}
	if !ok {
		return fmt.Errorf("pki: NUM_IDK %q: must be 1-%d characters of 0-9, A-Z, a-z", s, maxNumIDKLen)
	}
	return nil
}

func isAlnum(c byte) bool {
	return '0' <= c && c <= '9' || 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z'
}

// validDNSName accepts host names made of letters, digits, '-' and '_',
// optionally with a leading "*." wildcard. It only catches typos (a port, a
// URL, a scope zone); it is not a full RFC 1123 check.
func validDNSName(h string) bool {
	h = strings.TrimSuffix(strings.TrimPrefix(h, "*."), ".")
	if h == "" || len(h) > 253 {
		return false
	}
	for label := range strings.SplitSeq(h, ".") {
		if label == "" || len(label) > 63 {
			return false
		}
		for i := 0; i < len(label); i++ {
			if c := label[i]; !isAlnum(c) && c != '-' && c != '_' {
				return false
			}
		}
	}
	return true
}

// issueLeaf completes tmpl as an end-entity certificate of the CA in dir,
// with a new key, and writes it as certName and keyName in dir.
func issueLeaf(dir, certName, keyName string, tmpl *x509.Certificate, opts Options) (*x509.Certificate, error) {
	validity, err := opts.validity(DefaultLeafValidity)
	if err != nil {
		return nil, err
	}
	certPath := filepath.Join(dir, certName)
	keyPath := filepath.Join(dir, keyName)
	if !opts.Force {
		if err := refuseExisting(certPath, keyPath); err != nil {
			return nil, err
		}
	}
	ca, err := LoadCA(dir)
	if err != nil {
		return nil, err
	}
	now := opts.now()
	if err := ca.CheckValid(now); err != nil {
		return nil, err
	}

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("pki: generate key for %s: %w", certPath, err)
	}
	serial, err := newSerial()
	if err != nil {
		return nil, err
	}
	tmpl.SerialNumber = serial
	tmpl.Subject.Organization = ca.Cert.Subject.Organization
	tmpl.NotBefore = now.Add(-backdate)
	tmpl.NotAfter = now.Add(validity)
	if tmpl.NotAfter.After(ca.Cert.NotAfter) {
		tmpl.NotAfter = ca.Cert.NotAfter
	}
	// ECDSA keys only sign; KeyEncipherment belongs to RSA key exchange.
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	tmpl.BasicConstraintsValid = true
	tmpl.IsCA = false

	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.Key)
	if err != nil {
		return nil, fmt.Errorf("pki: create %s: %w", certPath, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("pki: parse new %s: %w", certPath, err)
	}
	// Key first: if the certificate write then fails, loading the pair
	// reports a mismatch instead of silently using the old key.
	if err := writeKey(keyPath, key); err != nil {
		return nil, err
	}
	if err := writeCert(certPath, der); err != nil {
		return nil, err
	}
	return cert, nil
}

// CheckValid refuses to sign at a time the CA is not valid: what it signed
// would not verify anyway.
func (ca *CA) CheckValid(now time.Time) error {
	if now.After(ca.Cert.NotAfter) {
		return fmt.Errorf("pki: CA %q expired at %s; create a new one", ca.Cert.Subject.CommonName,
			ca.Cert.NotAfter.UTC().Format(time.RFC3339))
	}
	return nil
}

// serialLimit bounds serial numbers to 128 random bits, which RFC 5280's
// 20-octet limit holds and which no two certificates will share.
var serialLimit = new(big.Int).Lsh(big.NewInt(1), 128)

func newSerial() (*big.Int, error) {
	for {
		n, err := rand.Int(rand.Reader, serialLimit)
		if err != nil {
			return nil, fmt.Errorf("pki: generate serial number: %w", err)
		}
		// RFC 5280 wants a positive serial.
		if n.Sign() > 0 {
			return n, nil
		}
	}
}

// FormatSerial writes a serial number as colon-separated hex octets, the
// way openssl's -text output does. Revoke accepts it back.
func FormatSerial(serial *big.Int) string {
	if serial == nil {
		return ""
	}
	b := serial.Bytes()
	if len(b) == 0 {
		return "00"
	}
	var sb strings.Builder
	for i, c := range b {
		if i > 0 {
			sb.WriteByte(':')
		}
		fmt.Fprintf(&sb, "%02x", c)
	}
	return sb.String()
}

// refuseExisting returns an error matching fs.ErrExist naming the first of
// paths that exists.
func refuseExisting(paths ...string) error {
	for _, p := range paths {
		_, err := os.Lstat(p)
		if err == nil {
			return fmt.Errorf("pki: %s: %w", p, fs.ErrExist)
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("pki: %w", err)
		}
	}
	return nil
}

func readCert(path string) (*x509.Certificate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != pemCertificate {
		return nil, fmt.Errorf("pki: %s: no %s PEM block", path, pemCertificate)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("pki: %s: %w", path, err)
	}
	return cert, nil
}

func readKey(path string) (*ecdsa.PrivateKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != pemPrivateKey {
		return nil, fmt.Errorf("pki: %s: no %s PEM block", path, pemPrivateKey)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("pki: %s: %w", path, err)
	}
	key, ok := k.(*ecdsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("pki: %s: key is %T, want ECDSA", path, k)
	}
	return key, nil
}

func writeCert(path string, der []byte) error {
	return atomicfile.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: pemCertificate, Bytes: der}), 0o644)
}

func writeKey(path string, key *ecdsa.PrivateKey) error {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("pki: encode %s: %w", path, err)
	}
	return atomicfile.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: pemPrivateKey, Bytes: der}), 0o600)
}
