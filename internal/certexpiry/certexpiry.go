// Package certexpiry exports when a certificate file expires, as a
// Prometheus gauge read from the file at every scrape: a certificate
// renewed in place shows its new date without a restart, and an alert on
// (metric - time()) warns before the old one lapses.
package certexpiry

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Collector reports the NotAfter of the certificate in one PEM file, in
// Unix seconds. It holds no state: each scrape reads the file again.
type Collector struct {
	path string
	desc *prometheus.Desc
}

// New returns a Collector for the certificate file at path, exported as
// the gauge name with help text help. A file holding several certificates
// (a CA bundle) reports the earliest expiry, the first one that will break
// a handshake.
func New(name, help, path string) *Collector {
	return &Collector{path: path, desc: prometheus.NewDesc(name, help, nil, nil)}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

// Collect implements prometheus.Collector. A file that cannot be read or
// parsed gives no sample rather than a failed scrape: the rest of the
// page stays useful, and an absent series is alerted on as such; the
// program that uses the certificate reports the broken file itself.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	t, err := NotAfter(c.path)
	if err != nil {
		return
	}
	ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(t.Unix()))
}

// NotAfter returns the earliest NotAfter of the certificates in the PEM
// file at path.
func NotAfter(path string) (time.Time, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return time.Time{}, fmt.Errorf("certexpiry: %w", err)
	}
	var earliest time.Time
	for block, rest := pem.Decode(data); block != nil; block, rest = pem.Decode(rest) {
		if block.Type != "CERTIFICATE" {
			continue
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return time.Time{}, fmt.Errorf("certexpiry: %s: %w", path, err)
		}
		if earliest.IsZero() || cert.NotAfter.Before(earliest) {
			earliest = cert.NotAfter
		}
	}
	if earliest.IsZero() {
		return time.Time{}, fmt.Errorf("certexpiry: %s: %w", path, errNoCertificate)
	}
	return earliest, nil
}

var errNoCertificate = errors.New("no CERTIFICATE PEM block")
