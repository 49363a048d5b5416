package pki

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"

	"idk/internal/clock"
)

// ClientVerifier checks agents' certificates itself, instead of leaving it
// to crypto/tls, so that every refusal is seen and counted with its
// reason, and so that the revocation list is checked during the handshake.
type ClientVerifier struct {
	Roots       *x509.CertPool
	Revocations *RevocationChecker // nil: none checked
	// Clock decides which certificates have expired; nil means
	// clock.Real.
	Clock clock.Clock
	// OnRefuse is told of every refused handshake: reason is one of
	// no_certificate, unknown_ca, expired, revoked, not_an_agent, invalid.
	OnRefuse func(reason string, err error)
	// OnListError is told when a changed revocation list cannot be read;
	// the last good one stays in force.
	OnListError func(error)
}

// Apply makes conf verify clients with v. conf must come from
// transport.ServerTLS (whose ClientCAs become v's roots if v has none).
func (v *ClientVerifier) Apply(conf *tls.Config) {
	if v.Roots == nil {
		v.Roots = conf.ClientCAs
	}
	v.Clock = clock.Or(v.Clock)
	// RequestClientCert lets the handshake reach VerifyPeerCertificate even
	// without a certificate, so that case is counted too; the callback
	// refuses it.
	conf.ClientAuth = tls.RequestClientCert
	conf.VerifyPeerCertificate = v.verify
}

func (v *ClientVerifier) verify(raw [][]byte, _ [][]*x509.Certificate) error {
	reason, err := v.check(raw)
	if err != nil && v.OnRefuse != nil {
		v.OnRefuse(reason, err)
	}
	return err
}

func (v *ClientVerifier) check(raw [][]byte) (string, error) {
	if len(raw) == 0 {
		return "no_certificate", errors.New("no client certificate")
	}
	certs := make([]*x509.Certificate, len(raw))
	for i, b := range raw {
		c, err := x509.ParseCertificate(b)
		if err != nil {
			return "invalid", fmt.Errorf("client certificate %d: %w", i, err)
		}
		certs[i] = c
	}
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	leaf := certs[0]
	_, err := leaf.Verify(x509.VerifyOptions{
		Roots: v.Roots, Intermediates: inter, CurrentTime: v.Clock.Now(),
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	if err != nil {
		var unknown x509.UnknownAuthorityError
		var invalid x509.CertificateInvalidError
		switch {
		case errors.As(err, &unknown):
			return "unknown_ca", fmt.Errorf("client certificate %q: %w", leaf.Subject.CommonName, err)
		case errors.As(err, &invalid) && invalid.Reason == x509.Expired:
			return "expired", fmt.Errorf("client certificate %q: %w", leaf.Subject.CommonName, err)
		}
		return "invalid", fmt.Errorf("client certificate %q: %w", leaf.Subject.CommonName, err)
	}
	if _, err := IdentityFromCert(leaf); err != nil {
		return "not_an_agent", err
	}
	if v.Revocations != nil {
		revoked, rerr := v.Revocations.Revoked(leaf.SerialNumber)
		if revoked {
			return "revoked", fmt.Errorf("client certificate %q (serial %s) is revoked", leaf.Subject.CommonName, FormatSerial(leaf.SerialNumber))
		}
		if rerr != nil && v.OnListError != nil {
			v.OnListError(rerr)
		}
	}
	return "", nil
}
