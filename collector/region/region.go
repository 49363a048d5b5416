// Package region opens the backends the collectors of a region share
// (docs/scale-out.md): the index in PostgreSQL and the files in an
// S3-compatible bucket, as the [region] section of the collector's
// configuration names them. Left unset, a collector keeps both to itself
// (bbolt and store.root), and Open returns nothing to share.
package region

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"idk/collector/blob"
	"idk/collector/config"
	"idk/collector/kv/pgkv"
	"idk/internal/secretfile"
	"idk/protocol/transport"
)

// Backends are the shared backends a configuration names; a nil field is
// one the collector keeps to itself.
type Backends struct {
	Index *pgkv.DB // PostgreSQL, region.postgres
	Files *blob.S3 // the bucket, region.s3
}

// Open connects to the backends cfg names. Close what it returns.
func Open(ctx context.Context, cfg config.Region) (*Backends, error) {
	b := &Backends{}
	if cfg.Postgres != "" {
		dsn, err := PostgresDSN(cfg)
		if err != nil {
			return nil, err
		}
		if b.Index, err = pgkv.Open(ctx, dsn); err != nil {
			return nil, fmt.Errorf("region.postgres: %w", err)
		}
	}
	if cfg.S3.Endpoint != "" {
		c, err := S3Config(cfg.S3)
		if err != nil {
			b.Close()
			return nil, err
		}
		if b.Files, err = blob.NewS3(c); err != nil {
			b.Close()
			return nil, fmt.Errorf("region.s3: %w", err)
		}
	}
	return b, nil
}

// Close closes the index's connections.
func (b *Backends) Close() error {
	if b.Index != nil {
		return b.Index.Close()
	}
	return nil
}

// PostgresDSN is region.postgres with the password of
// region.postgres_password_file, if any, put in: the file keeps the
// password out of the configuration (and its logs).
func PostgresDSN(cfg config.Region) (string, error) {
	if cfg.PostgresPasswordFile == "" {
		return cfg.Postgres, nil
	}
	pw, err := secret("region.postgres_password_file", cfg.PostgresPasswordFile)
	if err != nil {
		return "", err
	}
	if strings.HasPrefix(cfg.Postgres, "postgres://") || strings.HasPrefix(cfg.Postgres, "postgresql://") {
		u, err := url.Parse(cfg.Postgres)
		if err != nil {
			return "", fmt.Errorf("region.postgres: %w", errors.New("not a valid URL")) // the error would repeat the DSN
		}
		u.User = url.UserPassword(u.User.Username(), pw)
		return u.String(), nil
	}
	// key=value form: a quoted value, with \ and ' escaped (libpq's rule).
	q := strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(pw)
	return cfg.Postgres + " password='" + q + "'", nil
}

// S3Config is blob's configuration of region.s3, with the keys read from
// their files and the server's CA, if given, as the only trusted root.
func S3Config(s config.S3) (blob.S3Config, error) {
	access, err := secret("region.s3.access_key_file", s.AccessKeyFile)
	if err != nil {
		return blob.S3Config{}, err
	}
	key, err := secret("region.s3.secret_key_file", s.SecretKeyFile)
	if err != nil {
		return blob.S3Config{}, err
	}
	c := blob.S3Config{Endpoint: s.Endpoint, Region: s.Region, Bucket: s.Bucket, Prefix: s.Prefix,
		AccessKey: access, SecretKey: key, PartSize: s.PartSize}
	if s.CA != "" {
		pool, err := transport.CertPool(s.CA)
		if err != nil {
			return blob.S3Config{}, fmt.Errorf("region.s3.ca: %w", err)
		}
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool}
		c.HTTPClient = &http.Client{Transport: tr}
	}
	return c, nil
}

// secret reads the secret file of setting.
func secret(setting, path string) (string, error) {
	s, err := secretfile.Read(path)
	if err != nil {
		return "", fmt.Errorf("%s: %w", setting, err)
	}
	return s, nil
}
