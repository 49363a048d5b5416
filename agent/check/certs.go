package check

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"slices"
	"time"

	"idk/agent/config"
)

// agentOU is the OrganizationalUnit of every agent certificate
// (collector/pki.AgentOU; the agent links nothing under collector/).
const agentOU = "idk-agent"

const renewFix = "попросите администратора сборщика выпустить новый (idk-collector pki renew --num-idk %s) и скопируйте файлы / ask the collector's administrator for a new one (idk-collector pki renew --num-idk %s) and copy the files over"

// certificates checks the agent's certificate files the way the collector
// will judge them at the handshake.
func certificates(cfg config.Config, now time.Time) Report {
	c := cfg.Collector
	num := cfg.Device.NumIDK
	files := Result{Name: NameCertFiles, Detail: fmt.Sprintf("%s, %s, %s", c.Cert, c.Key, c.CA)}
	skip := func(names ...string) Report {
		r := Report{}
		for _, n := range names {
			r = append(r, Result{Name: n, Status: Skip, Text: "сертификат не проверен / certificate not checked",
				Detail: "файлы не читаются / the files cannot be read"})
		}
		return r
	}
	var unreadable []error
	for _, p := range []string{c.Cert, c.Key, c.CA} {
		if _, err := os.ReadFile(p); err != nil {
			unreadable = append(unreadable, err)
		}
	}
	if len(unreadable) > 0 {
		files.Status, files.Text, files.Detail = Fail, "файлы сертификатов не читаются / certificate files cannot be read", errors.Join(unreadable...).Error()
		files.Fix = "проверьте пути collector.cert, collector.key, collector.ca / check collector.cert, collector.key and collector.ca"
		return append(Report{files}, skip(NameCertKey, NameCertCA, NameCertExpiry, NameCertIdentity)...)
	}
	caCerts, err := readCA(c.CA)
	if err != nil {
		files.Status, files.Text, files.Detail = Fail, "файл УЦ не читается / CA file cannot be read", err.Error()
		files.Fix = "скопируйте ca.crt со сборщика заново / copy ca.crt from the collector again"
		return append(Report{files}, skip(NameCertKey, NameCertCA, NameCertExpiry, NameCertIdentity)...)
	}
	files.Status, files.Text = OK, "файлы сертификатов читаются / certificate files are readable"
	r := Report{files}

	pair, err := tls.LoadX509KeyPair(c.Cert, c.Key)
	if err != nil {
		r = append(r, Result{Name: NameCertKey, Status: Fail, Text: "ключ не подходит к сертификату / key does not match the certificate",
			Detail: err.Error(),
			Fix:    "скопируйте сертификат и ключ одной пары (agent-N.crt и agent-N.key) / copy the certificate and key of one pair (agent-N.crt and agent-N.key)"})
		return append(r, skip(NameCertCA, NameCertExpiry, NameCertIdentity)...)
	}
	leaf := pair.Leaf
	r = append(r, Result{Name: NameCertKey, Status: OK, Text: "ключ подходит к сертификату / key matches the certificate", Detail: c.Key})

	// The signature alone: an expired certificate is reported as expired
	// below, not as foreign here.
	var sigErr error
	for _, ca := range caCerts {
		if sigErr = leaf.CheckSignatureFrom(ca); sigErr == nil {
			break
		}
	}
	if sigErr != nil {
		r = append(r, Result{Name: NameCertCA, Status: Fail, Text: "сертификат не подписан УЦ сборщика / certificate is not signed by the collector's CA",
			Detail: fmt.Sprintf("%s, %s: %v", c.Cert, c.CA, sigErr),
			Fix:    "сертификат и ca.crt должны быть с одного сборщика: скопируйте их заново / the certificate and ca.crt must come from the same collector: copy them again"})
	} else {
		r = append(r, Result{Name: NameCertCA, Status: OK, Text: "сертификат подписан УЦ / certificate is signed by the CA", Detail: c.CA})
	}

	r = append(r, expiry(leaf, caCerts, now, num))

	id := Result{Name: NameCertIdentity}
	switch {
	case !slices.Contains(leaf.Subject.OrganizationalUnit, agentOU):
		id.Status, id.Text, id.Detail = Fail, "это не сертификат агента / not an agent certificate", fmt.Sprintf("OU %q", leaf.Subject.OrganizationalUnit)
		id.Fix = "используйте agent-N.crt, а не сертификат сборщика / use agent-N.crt, not the collector's certificate"
	case leaf.Subject.CommonName != num:
		id.Status, id.Text = Fail, "сертификат выдан другому ИДК / certificate is for another ИДК"
		id.Detail = fmt.Sprintf("certificate %q, device.num_idk %q", leaf.Subject.CommonName, num)
		id.Fix = "исправьте device.num_idk или скопируйте сертификат этого ИДК / correct device.num_idk or copy this ИДК's certificate"
	default:
		id.Status, id.Text, id.Detail = OK, "сертификат выдан этому ИДК / certificate names this ИДК", num
	}
	return append(r, id)
}

// expiry judges the agent's certificate and the CA's dates at now.
func expiry(leaf *x509.Certificate, caCerts []*x509.Certificate, now time.Time, num string) Result {
	res := Result{Name: NameCertExpiry}
	days := int(leaf.NotAfter.Sub(now).Hours() / 24)
	until := leaf.NotAfter.UTC().Format(time.DateOnly)
	fix := fmt.Sprintf(renewFix, num, num)
	switch {
	case now.After(leaf.NotAfter):
		res.Status, res.Text = Fail, "срок сертификата истёк / certificate has expired"
		res.Detail, res.Fix = "on "+until, fix
		return res
	case now.Before(leaf.NotBefore):
		res.Status, res.Text = Fail, "сертификат ещё не действует / certificate is not valid yet"
		res.Detail = "from " + leaf.NotBefore.UTC().Format(time.RFC3339)
		res.Fix = "проверьте часы этого компьютера / check this PC's clock"
		return res
	case days < CertWarnDays:
		res.Status, res.Text = Warn, "сертификат скоро истекает / certificate expires soon"
		res.Detail, res.Fix = fmt.Sprintf("%d days left, until %s", days, until), fix
	default:
		res.Status, res.Text = OK, "сертификат действителен / certificate is valid"
		res.Detail = fmt.Sprintf("%d days left, until %s", days, until)
	}
	for _, ca := range caCerts {
		if now.After(ca.NotAfter) {
			res.Status, res.Text = Fail, "срок сертификата УЦ истёк / the CA certificate has expired"
			res.Detail = fmt.Sprintf("CA %q on %s", ca.Subject.CommonName, ca.NotAfter.UTC().Format(time.DateOnly))
			res.Fix = "администратору сборщика нужен новый УЦ / the collector's administrator needs a new CA"
			return res
		}
		if caDays := int(ca.NotAfter.Sub(now).Hours() / 24); caDays < CertWarnDays && res.Status == OK {
			res.Status, res.Text = Warn, "сертификат УЦ скоро истекает / the CA certificate expires soon"
			res.Detail = fmt.Sprintf("CA %q: %d days left; agent: %s", ca.Subject.CommonName, caDays, res.Detail)
			res.Fix = "администратору сборщика нужен новый УЦ / the collector's administrator needs a new CA"
		}
	}
	return res
}

// readCA reads every certificate in the PEM file path.
func readCA(path string) ([]*x509.Certificate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var certs []*x509.Certificate
	for block, rest := pem.Decode(data); block != nil; block, rest = pem.Decode(rest) {
		if block.Type != "CERTIFICATE" {
			continue
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		certs = append(certs, cert)
	}
	if len(certs) == 0 {
		return nil, fmt.Errorf("%s: no CERTIFICATE PEM block", path)
	}
	return certs, nil
}
