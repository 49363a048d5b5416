package pki

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"slices"
)

// ServerTLSConfig is the collector's TLS configuration: it presents
// certFile/keyFile and accepts only TLS 1.3 clients whose certificate
// chains to the CA in caFile and is meant for client authentication.
//
// The caller sets NextProtos (ALPN), maps the peer certificate to an ИДК
// with IdentityFromCert and checks it against the revocation list
// (LoadCRL, IsRevoked); this configuration does neither, so that reloading
// the list needs no new configuration.
func ServerTLSConfig(certFile, keyFile, caFile string) (*tls.Config, error) {
	cert, err := loadKeyPair(certFile, keyFile)
	if err != nil {
		return nil, err
	}
	pool, err := loadPool(caFile)
	if err != nil {
		return nil, err
	}
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    pool,
	}, nil
}

// ClientTLSConfig is an agent's TLS configuration: it presents
// certFile/keyFile and trusts only a TLS 1.3 server whose certificate
// chains to the CA in caFile and names serverName (a DNS name or IP address
// from the collector certificate's hosts). An empty serverName leaves it to
// the dialer, which takes it from the address it dials. The caller sets
// NextProtos (ALPN).
func ClientTLSConfig(certFile, keyFile, caFile, serverName string) (*tls.Config, error) {
	cert, err := loadKeyPair(certFile, keyFile)
	if err != nil {
		return nil, err
	}
	pool, err := loadPool(caFile)
	if err != nil {
		return nil, err
	}
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{cert},
		RootCAs:      pool,
		ServerName:   serverName,
	}, nil
}

// IdentityFromCert returns the NUM_IDK of an agent certificate: its subject
// CommonName, provided the certificate carries the OrganizationalUnit
// AgentOU. It does not verify the chain; pass it a certificate the TLS
// handshake has verified, such as tls.ConnectionState.PeerCertificates[0].
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

func loadKeyPair(certFile, keyFile string) (tls.Certificate, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		// The tls errors do not always name the files.
		return tls.Certificate{}, fmt.Errorf("pki: load key pair %s, %s: %w", certFile, keyFile, err)
	}
	return cert, nil
}

// loadPool reads every certificate in the PEM file caFile.
func loadPool(caFile string) (*x509.CertPool, error) {
	data, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	pool := x509.NewCertPool()
	n := 0
	for block, rest := pem.Decode(data); block != nil; block, rest = pem.Decode(rest) {
		if block.Type != pemCertificate {
			continue
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("pki: %s: %w", caFile, err)
		}
		pool.AddCert(cert)
		n++
	}
	if n == 0 {
		return nil, fmt.Errorf("pki: %s: no %s PEM block", caFile, pemCertificate)
	}
	return pool, nil
}
