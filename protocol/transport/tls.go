package transport

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
)

// pemCertificate is the PEM block type of a certificate.
const pemCertificate = "CERTIFICATE"

// ServerTLS is the collector's TLS configuration: it presents
// certFile/keyFile and accepts only TLS 1.3 clients whose certificate
// chains to the CA in caFile and is meant for client authentication.
//
// The caller sets NextProtos (ALPN), maps the peer certificate to an ИДК
// (pki.IdentityFromCert) and checks it against the revocation list; this
// configuration does neither, so that reloading the list needs no new
// configuration.
func ServerTLS(certFile, keyFile, caFile string) (*tls.Config, error) {
	cert, pool, err := load(certFile, keyFile, caFile)
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

// ClientTLS is an agent's TLS configuration: it presents certFile/keyFile
// and trusts only a TLS 1.3 server whose certificate chains to the CA in
// caFile and names serverName (a DNS name or IP address from the collector
// certificate's hosts). An empty serverName leaves it to the dialer, which
// takes it from the address it dials. The caller sets NextProtos (ALPN).
func ClientTLS(certFile, keyFile, caFile, serverName string) (*tls.Config, error) {
	cert, pool, err := load(certFile, keyFile, caFile)
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

// load reads this end's certificate and key and the CA certificates it
// trusts.
func load(certFile, keyFile, caFile string) (tls.Certificate, *x509.CertPool, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		// The tls errors do not always name the files.
		return tls.Certificate{}, nil, fmt.Errorf("transport: load key pair %s, %s: %w", certFile, keyFile, err)
	}
	pool, err := CertPool(caFile)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	return cert, pool, nil
}

// CertPool reads every certificate in the PEM file caFile: the authority
// a connection trusts (agents and collectors; a region's S3 server and
// collectors, for the collector's and the national level's clients). A
// file without one, or with one that does not parse, is an error.
func CertPool(caFile string) (*x509.CertPool, error) {
	data, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("transport: %w", err)
	}
	pool := x509.NewCertPool()
	n := 0
	for block, rest := pem.Decode(data); block != nil; block, rest = pem.Decode(rest) {
		if block.Type != pemCertificate {
			continue
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("transport: %s: %w", caFile, err)
		}
		pool.AddCert(cert)
		n++
	}
	if n == 0 {
		return nil, fmt.Errorf("transport: %s: no %s PEM block", caFile, pemCertificate)
	}
	return pool, nil
}
