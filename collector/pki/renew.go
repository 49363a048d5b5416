package pki

import (
	"crypto/x509"
	"fmt"
	"net"
	"path/filepath"
	"slices"
)

// RenewAgent issues ИДК numIDK a new certificate, with a new key and a new
// serial number, in place of the one in agent-<numIDK>.crt, and returns
// both. The old certificate must have been issued by the CA in dir for
// that ИДК; it is not revoked, so an agent still presenting it keeps
// working until it expires or is revoked (Revoke by its serial).
//
// The new pair is made in memory and only then written, each file
// replaced atomically (key first), so a failure leaves the old files or a
// key that does not match its certificate, which an agent's reloading
// configuration refuses while it keeps the old pair; never a half file.
func RenewAgent(dir, numIDK string, opts Options) (renewed, old *x509.Certificate, err error) {
	if err := ValidateNumIDK(numIDK); err != nil {
		return nil, nil, err
	}
	old, err = currentLeaf(dir, AgentCertFile(numIDK))
	if err != nil {
		return nil, nil, err
	}
	if id, err := IdentityFromCert(old); err != nil || id != numIDK {
		return nil, nil, fmt.Errorf("pki: %s is not ИДК %s's certificate (subject %q); enrol it with 'pki agent' instead",
			filepath.Join(dir, AgentCertFile(numIDK)), numIDK, old.Subject.CommonName)
	}
	opts.Force = true
	renewed, err = IssueAgent(dir, numIDK, opts)
	return renewed, old, err
}

// RenewCollector issues the collector a new server certificate, with a new
// key and a new serial number, in place of the one in collector.crt, and
// returns both. hosts are the names and addresses it must carry; empty
// means the same as the old certificate's. See RenewAgent for how the
// files are replaced.
func RenewCollector(dir string, hosts []string, opts Options) (renewed, old *x509.Certificate, err error) {
	old, err = currentLeaf(dir, CollectorCertFile)
	if err != nil {
		return nil, nil, err
	}
	if !slices.Contains(old.ExtKeyUsage, x509.ExtKeyUsageServerAuth) {
		return nil, nil, fmt.Errorf("pki: %s is not a server certificate", filepath.Join(dir, CollectorCertFile))
	}
	if len(hosts) == 0 {
		hosts = append(hosts, old.DNSNames...)
		for _, ip := range old.IPAddresses {
			hosts = append(hosts, net.IP(ip).String())
		}
	}
	opts.Force = true
	renewed, err = IssueCollector(dir, hosts, opts)
	return renewed, old, err
}

// currentLeaf reads the certificate in dir/name and checks that the CA in
// dir issued it: renewing what another CA issued would hand out a
// certificate the peer's trust does not expect.
func currentLeaf(dir, name string) (*x509.Certificate, error) {
	ca, err := LoadCA(dir)
	if err != nil {
		return nil, err
	}
	path := filepath.Join(dir, name)
	cert, err := readCert(path)
	if err != nil {
		return nil, fmt.Errorf("%w; nothing to renew", err)
	}
	if err := cert.CheckSignatureFrom(ca.Cert); err != nil {
		return nil, fmt.Errorf("pki: %s was not issued by the CA in %s: %w", path, dir, err)
	}
	return cert, nil
}
