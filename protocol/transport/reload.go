package transport

import (
	"crypto/tls"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"sync"
	"time"

	"idk/internal/clock"
)

// DefaultReloadEvery is how often, at most, a KeyPair looks at its files:
// often enough that a renewed certificate is in use within seconds, rarely
// enough that a busy collector does not stat two files per handshake.
const DefaultReloadEvery = 5 * time.Second

// Reload tunes how a KeyPair follows its files. The zero value is ready to
// use.
type Reload struct {
	// Clock paces the looks at the files; nil means clock.Real.
	Clock clock.Clock
	// Every is the least time between two looks; 0 means
	// DefaultReloadEvery.
	Every time.Duration
	// Log is told of every certificate taken up and every change that
	// could not be used; nil means slog.Default.
	Log *slog.Logger
}

// KeyPair is a certificate and its key read from two files, read again
// when either file changes (modification time or size), so that a
// certificate renewed in place is presented on the next handshake without
// a restart. A change that cannot be used (a file half copied, a key that
// does not match the certificate) is logged once and the last good pair
// stays in use; the files are tried again when they change again.
type KeyPair struct {
	certFile, keyFile string
	clk               clock.Clock
	every             time.Duration
	log               *slog.Logger

	mu      sync.Mutex
	cur     *tls.Certificate
	stamp   stamp     // of the files cur was read from
	bad     stamp     // of the last change that could not be used
	checked time.Time // on clk
}

// stamp identifies a state of the two files.
type stamp struct {
	certMod, keyMod   time.Time
	certSize, keySize int64
}

// NewKeyPair reads certFile and keyFile, which must hold a matching pair.
func NewKeyPair(certFile, keyFile string, r Reload) (*KeyPair, error) {
	k := &KeyPair{certFile: certFile, keyFile: keyFile, clk: clock.Or(r.Clock), every: r.Every, log: r.Log}
	if k.every <= 0 {
		k.every = DefaultReloadEvery
	}
	if k.log == nil {
		k.log = slog.Default()
	}
	st, err := k.stat()
	if err != nil {
		return nil, err
	}
	cert, err := k.load()
	if err != nil {
		return nil, err
	}
	k.cur, k.stamp, k.checked = cert, st, k.clk.Now()
	return k, nil
}

// Certificate returns the pair to present now, reading the files again if
// Every has passed since the last look and they have changed.
func (k *KeyPair) Certificate() *tls.Certificate {
	k.mu.Lock()
	defer k.mu.Unlock()
	now := k.clk.Now()
	if now.Sub(k.checked) < k.every && !now.Before(k.checked) {
		return k.cur
	}
	k.checked = now
	st, err := k.stat()
	if err != nil {
		if st != k.bad {
			k.bad = st
			k.log.Error("certificate files cannot be read; still presenting the previous certificate", "err", err)
		}
		return k.cur
	}
	if st == k.stamp || st == k.bad {
		return k.cur
	}
	cert, err := k.load()
	if err != nil {
		k.bad = st
		k.log.Error("changed certificate files cannot be used; still presenting the previous certificate until they change again",
			"cert", k.certFile, "key", k.keyFile, "err", err)
		return k.cur
	}
	k.cur, k.stamp, k.bad = cert, st, stamp{}
	k.log.Info("certificate reloaded", "cert", k.certFile, "subject", cert.Leaf.Subject.CommonName,
		"serial", cert.Leaf.SerialNumber.Text(16), "not_after", cert.Leaf.NotAfter.UTC().Format(time.RFC3339))
	return k.cur
}

// GetClientCertificate serves as tls.Config.GetClientCertificate.
func (k *KeyPair) GetClientCertificate(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
	return k.Certificate(), nil
}

// GetCertificate serves as tls.Config.GetCertificate.
func (k *KeyPair) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return k.Certificate(), nil
}

func (k *KeyPair) stat() (stamp, error) {
	var st stamp
	var err error
	st.certMod, st.certSize, err = statFile(k.certFile)
	if err != nil {
		return st, err
	}
	st.keyMod, st.keySize, err = statFile(k.keyFile)
	return st, err
}

func statFile(path string) (time.Time, int64, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return time.Time{}, 0, fmt.Errorf("transport: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return time.Time{}, 0, fmt.Errorf("transport: %s: %w", path, fs.ErrInvalid)
	}
	return fi.ModTime(), fi.Size(), nil
}

// load reads the pair; tls.LoadX509KeyPair refuses a key that does not
// match the certificate, and fills Leaf.
func (k *KeyPair) load() (*tls.Certificate, error) {
	cert, err := tls.LoadX509KeyPair(k.certFile, k.keyFile)
	if err != nil {
		// The tls errors do not always name the files.
		return nil, fmt.Errorf("transport: load key pair %s, %s: %w", k.certFile, k.keyFile, err)
	}
	return &cert, nil
}

// ClientTLSReloading is ClientTLS whose certificate follows its files (see
// KeyPair): the agent's, so that a certificate renewed on the scanner PC is
// presented on the next connection without restarting the agent. The CA
// file is read once.
func ClientTLSReloading(certFile, keyFile, caFile, serverName string, r Reload) (*tls.Config, error) {
	kp, err := NewKeyPair(certFile, keyFile, r)
	if err != nil {
		return nil, err
	}
	pool, err := CertPool(caFile)
	if err != nil {
		return nil, err
	}
	return &tls.Config{
		MinVersion:           tls.VersionTLS13,
		GetClientCertificate: kp.GetClientCertificate,
		RootCAs:              pool,
		ServerName:           serverName,
	}, nil
}

// ServerTLSReloading is ServerTLS whose certificate follows its files (see
// KeyPair): the collector's, so that its renewed server certificate is
// presented to the next agent without a restart. The CA file is read once.
func ServerTLSReloading(certFile, keyFile, caFile string, r Reload) (*tls.Config, error) {
	kp, err := NewKeyPair(certFile, keyFile, r)
	if err != nil {
		return nil, err
	}
	pool, err := CertPool(caFile)
	if err != nil {
		return nil, err
	}
	return &tls.Config{
		MinVersion:     tls.VersionTLS13,
		GetCertificate: kp.GetCertificate,
		ClientAuth:     tls.RequireAndVerifyClientCert,
		ClientCAs:      pool,
	}, nil
}
