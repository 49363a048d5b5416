package pki

import (
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
)

// IdentityFromCert returns the NUM_IDK of an agent certificate: its subject
// CommonName, provided the certificate carries the OrganizationalUnit
// AgentOU. It does not verify the chain; pass it a certificate the TLS
// handshake has verified, such as tls.ConnectionState.PeerCertificates[0].
//
// The TLS configurations themselves are built by idk/protocol/transport,
// which the agent links without this package.
func IdentityFromCert(cert *x509.Certificate) (numIDK string, err error) {
	if cert == nil {
		return "", errors.New("pki: no client certificate")
	}
	if !slices.Contains(cert.Subject.OrganizationalUnit, AgentOU) {
		return "", fmt.Errorf("pki: certificate %q (serial %s) is not an agent certificate: OU %q, want %q",
			cert.Subject.CommonName, FormatSerial(cert.SerialNumber), cert.Subject.OrganizationalUnit, AgentOU)
	}
	if err := ValidateNumIDK(cert.Subject.CommonName); err != nil {
		return "", fmt.Errorf("pki: agent certificate serial %s: %w", FormatSerial(cert.SerialNumber), err)
	}
	return cert.Subject.CommonName, nil
}
