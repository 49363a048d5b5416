// Package config reads the collector's one configuration file (TOML).
// Defaults work for a single regional collector; errors name the file and
// the setting.
package config

import (
	"errors"
	"fmt"
	"time"

	"idk/internal/logging"
	"idk/internal/tomlfile"
)

// Config is the collector's configuration. See deploy/collector.toml.
type Config struct {
	API        API        `toml:"api"`
	Listen     Listen     `toml:"listen"`
	TLS        TLS        `toml:"tls"`
	Agents     Agents     `toml:"agents"`
	Store      Store      `toml:"store"`
	Region     Region     `toml:"region"`
	Cases      Cases      `toml:"cases"`
	Report     Report     `toml:"report"`
	Reanalysis Reanalysis `toml:"reanalysis"`
	Console    Console    `toml:"console"`
	Log        Log        `toml:"log"`
}

// Agents is what each agent is allowed at its hello: lanes for striping
// large files, and a budget so that a fleet back from a long outage
// drains its backlog without knocking the collector over.
type Agents struct {
	// Lanes: extra connections each agent may open for stripes of large
	// files (a link that loses packets at random costs less); 0: none.
	Lanes int `toml:"lanes"`
	// MaxRate caps each agent's file bytes per second; 0: no cap from the
	// collector (the agent's own collector.max_rate still holds).
	MaxRate int64 `toml:"max_rate"`
	// MaxFiles caps each agent's files in flight; 0: the agent's own
	// window (collector.window_files).
	MaxFiles int `toml:"max_files"`
}

// Console sets the accounts of the people who use the web console and the
// API, their sessions, and the audit log.
type Console struct {
	// Accounts is the accounts file (JSON, written by 'idk-collector user'
	// and the console, re-read when it changes). Missing: no accounts yet.
	Accounts string `toml:"accounts"`
	// Audit is the append-only log of sign-ins and of every change made
	// through the console or the API, with the person's name.
	Audit string `toml:"audit"`
	// SessionIdle signs a person out after this long without a request;
	// SessionMax after this long whatever they do.
	SessionIdle time.Duration `toml:"session_idle"`
	SessionMax  time.Duration `toml:"session_max"`
	// LockoutFailures wrong passwords in a row lock the account for
	// LockoutFor.
	LockoutFailures int           `toml:"lockout_failures"`
	LockoutFor      time.Duration `toml:"lockout_for"`
}

// Reanalysis sets where re-analysed images are laid out (item 11).
type Reanalysis struct {
	// Root is the folder of the РТУ's information resource under which
	// «Повторный анализ информации с ИДК/<code>/<YYYYMMDD>/» is made. On
	// the file system of store.root the images are hard links to the
	// stored files; elsewhere they are copies.
	Root string `toml:"root"`
}

// Report sets where the daily reports are kept and when they are made.
type Report struct {
	// Dir holds every published version of every day's report file.
	Dir string `toml:"dir"`
	// PublishAt is how long after midnight (store.timezone) the day
	// before is published, e.g. '30m'.
	PublishAt time.Duration `toml:"publish_at"`
	// Roster maps the operators' CargoRIW logins to their names and seal
	// numbers (table 1 FIO_OPER, LNP_OPER). A missing file is an empty
	// roster: those fields stay empty and their rows are listed as
	// incomplete.
	Roster string `toml:"roster"`
}

// Cases tunes the inspection tracking (table 4).
type Cases struct {
	// BackdateWindow: an inspection event older than this is refused
	// unless it carries a written reason.
	BackdateWindow time.Duration `toml:"backdate_window"`
	// ClockOffsetLimit: the table 4 rows made from the events of an agent
	// whose clock was off by more than this at its hello are flagged
	// (clock_suspect), because their times are the collector's
	// correction of a wrong clock.
	ClockOffsetLimit time.Duration `toml:"clock_offset_limit"`
}

// API protects the HTTP API.
type API struct {
	// TokenFile holds the old shared bearer token, from before accounts
	// (deprecated): set, it is created with a random token on first start
	// if missing and works as it did, while other systems move to their
	// own tokens (idk-collector user token). Empty: off.
	TokenFile string `toml:"token_file"`
	// CorrectionsTokenFile holds the second token that a correction, an
	// inspection event older than cases.backdate_window, must carry in
	// the X-Corrections-Token header besides the API token. It is created
	// with a random token on first start if missing.
	CorrectionsTokenFile string `toml:"corrections_token_file"`
	// MetricsTokenFile, if set, holds the bearer token /metrics requires
	// (Prometheus: authorization.credentials_file). Empty: /metrics is open
	// to whoever reaches the HTTP address.
	MetricsTokenFile string `toml:"metrics_token_file"`
	// ExposeCoordinates adds each ИДК's latitude and longitude to /metrics.
	// Off by default: the metrics carry counts, not where a scanner stands.
	ExposeCoordinates bool `toml:"expose_coordinates"`
	// MaxConnections caps open HTTP connections.
	MaxConnections int `toml:"max_connections"`
}

// Listen sets the addresses.
type Listen struct {
	QUIC string `toml:"quic"` // UDP address agents connect to
	// TCP is the TCP address agents connect to where UDP is blocked (TLS
	// 1.3, the same certificates and protocol); by default the same as
	// QUIC (TCP and UDP ports are apart); empty: off.
	TCP  string `toml:"tcp"`
	HTTP string `toml:"http"` // metrics and API; empty: off
	// HTTPS serves the console, the API and the metrics over TLS, for
	// the office network; empty: off.
	HTTPS string `toml:"https"`
	// HTTPSCert and HTTPSKey are the certificate HTTPS shows; empty: the
	// collector's own (tls.cert, tls.key).
	HTTPSCert string `toml:"https_cert"`
	HTTPSKey  string `toml:"https_key"`
}

// TLS names the certificate files.
type TLS struct {
	CA   string `toml:"ca"`
	Cert string `toml:"cert"`
	Key  string `toml:"key"`
	CRL  string `toml:"crl"` // optional revocation list
	// Registry lists the enrolled ИДК and the customs body (KOD_TO) each
	// belongs to; default agents.toml beside the CA certificate.
	Registry string `toml:"registry"`
}

// Store sets where data lands.
type Store struct {
	Root     string `toml:"root"`
	Timezone string `toml:"timezone"` // of the date folders, e.g. Europe/Moscow
	// MinFreeBytes is kept free on the store's disk: files that would eat
	// into it are refused until an operator makes room (agents hold them).
	MinFreeBytes uint64 `toml:"min_free_bytes"`
}

// Region sets the backends the collectors of a region share
// (docs/scale-out.md). Left empty, one collector keeps its index in bbolt
// and its files under store.root.
type Region struct {
	// Postgres is the DSN of the region's PostgreSQL, e.g.
	// 'postgres://idk@db.rtu.example/idk?sslmode=verify-full': set, the
	// index (files, scans, events, cases) lives there, shared by every
	// collector of the region, and one of them at a time runs the
	// deadlines and the reports. Empty: bbolt in store.root.
	Postgres string `toml:"postgres"`
	// PostgresPasswordFile holds the database password, kept out of this
	// file; empty: none (certificate or peer authentication).
	PostgresPasswordFile string `toml:"postgres_password_file"`
	// S3 keeps the files in an S3-compatible bucket instead of store.root.
	S3 S3 `toml:"s3"`
}

// S3 is an S3-compatible bucket (Ceph RGW and the like) for the files.
type S3 struct {
	// Endpoint is the server's URL, e.g. 'https://s3.rtu.example'; empty:
	// the files stay under store.root.
	Endpoint string `toml:"endpoint"`
	Bucket   string `toml:"bucket"`
	// Prefix goes before every object key (the tree under store.root
	// today), e.g. 'idk/'.
	Prefix string `toml:"prefix"`
	// Region is the signing region most S3-compatible servers ignore.
	Region string `toml:"region"`
	// AccessKeyFile and SecretKeyFile hold the credentials.
	AccessKeyFile string `toml:"access_key_file"`
	SecretKeyFile string `toml:"secret_key_file"`
	// CA is the certificate file of the authority the server's
	// certificate comes from, if not a system one.
	CA string `toml:"ca"`
	// PartSize is the size of each part of a multipart upload, bytes.
	PartSize int64 `toml:"part_size"`
}

// Log sets logging; both daemons share its form.
type Log = logging.Config

// Default returns the defaults.
func Default() Config {
	return Config{
		API:        API{CorrectionsTokenFile: "corrections.token", MaxConnections: 256},
		Listen:     Listen{QUIC: ":7443", TCP: ":7443", HTTP: "127.0.0.1:9465"},
		TLS:        TLS{CA: "certs/ca.crt", Cert: "certs/collector.crt", Key: "certs/collector.key"},
		Agents:     Agents{Lanes: 15},
		Store:      Store{Root: "data", Timezone: "Europe/Moscow", MinFreeBytes: 1 << 30},
		Region:     Region{S3: S3{Region: "us-east-1", PartSize: 64 << 20}},
		Cases:      Cases{BackdateWindow: 24 * time.Hour, ClockOffsetLimit: 2 * time.Minute},
		Report:     Report{Dir: "reports", PublishAt: 30 * time.Minute, Roster: "roster.toml"},
		Reanalysis: Reanalysis{Root: "reanalysis"},
		Console:    Console{Accounts: "accounts.json", Audit: "audit.jsonl", SessionIdle: time.Hour, SessionMax: 13 * time.Hour, LockoutFailures: 5, LockoutFor: 15 * time.Minute},
		Log:        Log{Level: "info", Format: "text"},
	}
}

// tcpAsQUIC stands, while a file is read, for a listen.tcp it does not
// set: no address looks like it.
const tcpAsQUIC = "\x00as listen.quic"

// Load reads path over the defaults; relative paths are taken relative to
// the file's folder.
func Load(path string) (Config, error) {
	c := Default()
	// listen.tcp left out follows listen.quic, whatever that says.
	c.Listen.TCP = tcpAsQUIC
	if err := tomlfile.Decode(path, &c); err != nil {
		return c, err
	}
	if c.Listen.TCP == tcpAsQUIC {
		c.Listen.TCP = c.Listen.QUIC
	}
	tomlfile.Resolve(path, &c.TLS.CA, &c.TLS.Cert, &c.TLS.Key, &c.TLS.CRL, &c.TLS.Registry, &c.Store.Root, &c.API.TokenFile, &c.API.CorrectionsTokenFile, &c.API.MetricsTokenFile, &c.Report.Dir, &c.Report.Roster, &c.Reanalysis.Root, &c.Console.Accounts, &c.Console.Audit, &c.Listen.HTTPSCert, &c.Listen.HTTPSKey, &c.Region.PostgresPasswordFile, &c.Region.S3.AccessKeyFile, &c.Region.S3.SecretKeyFile, &c.Region.S3.CA)
	if err := c.Validate(); err != nil {
		return c, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// Validate checks the settings.
func (c Config) Validate() error {
	var errs []error
	if c.Listen.QUIC == "" {
		errs = append(errs, errors.New("listen.quic: required"))
	}
	if c.Agents.Lanes < 0 || c.Agents.Lanes > 15 {
		errs = append(errs, fmt.Errorf("agents.lanes: %d: want 0-15", c.Agents.Lanes))
	}
	if c.Agents.MaxRate < 0 {
		errs = append(errs, fmt.Errorf("agents.max_rate: %d: want bytes per second, or 0 for no cap", c.Agents.MaxRate))
	}
	if c.Agents.MaxFiles < 0 || c.Agents.MaxFiles > 32 {
		errs = append(errs, fmt.Errorf("agents.max_files: %d: want 1-32, or 0 for the agent's own window", c.Agents.MaxFiles))
	}
	if c.API.MaxConnections < 1 {
		errs = append(errs, fmt.Errorf("api.max_connections: %d: want at least 1", c.API.MaxConnections))
	}
	if c.Cases.BackdateWindow <= 0 {
		errs = append(errs, fmt.Errorf("cases.backdate_window: %v: want a positive duration, e.g. '24h'", c.Cases.BackdateWindow))
	}
	if c.Cases.ClockOffsetLimit <= 0 {
		errs = append(errs, fmt.Errorf("cases.clock_offset_limit: %v: want a positive duration, e.g. '2m'", c.Cases.ClockOffsetLimit))
	}
	if c.API.CorrectionsTokenFile == "" {
		errs = append(errs, errors.New("api.corrections_token_file: required: corrections need a token of their own"))
	}
	if c.Report.Dir == "" {
		errs = append(errs, errors.New("report.dir: required"))
	}
	if c.Report.PublishAt < 0 || c.Report.PublishAt >= 24*time.Hour {
		errs = append(errs, fmt.Errorf("report.publish_at: %v: want a time after midnight under 24h, e.g. '30m'", c.Report.PublishAt))
	}
	if c.Console.Accounts == "" || c.Console.Audit == "" {
		errs = append(errs, errors.New("console.accounts, console.audit: required"))
	}
	if c.Console.SessionIdle <= 0 || c.Console.SessionMax < c.Console.SessionIdle {
		errs = append(errs, fmt.Errorf("console.session_idle %v, session_max %v: want positive durations, idle at most max", c.Console.SessionIdle, c.Console.SessionMax))
	}
	if c.Console.LockoutFailures < 1 || c.Console.LockoutFor <= 0 {
		errs = append(errs, fmt.Errorf("console.lockout_failures %d, lockout_for %v: want at least 1 and a positive duration", c.Console.LockoutFailures, c.Console.LockoutFor))
	}
	if (c.Listen.HTTPSCert == "") != (c.Listen.HTTPSKey == "") {
		errs = append(errs, errors.New("listen.https_cert, listen.https_key: give both or neither"))
	}
	if c.Store.Root == "" {
		errs = append(errs, errors.New("store.root: required"))
	}
	if s3 := c.Region.S3; s3.Endpoint != "" {
		if s3.Bucket == "" || s3.AccessKeyFile == "" || s3.SecretKeyFile == "" {
			errs = append(errs, errors.New("region.s3: endpoint set: bucket, access_key_file and secret_key_file are required"))
		}
		if s3.PartSize < 5<<20 {
			errs = append(errs, fmt.Errorf("region.s3.part_size: %d: want at least 5242880 (5 MiB, the S3 minimum)", s3.PartSize))
		}
	}
	if _, err := c.Location(); err != nil {
		errs = append(errs, fmt.Errorf("store.timezone: %w", err))
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("log.level: %q: want debug, info, warn or error", c.Log.Level))
	}
	return errors.Join(errs...)
}

// Location is the time zone of the date folders.
func (c Config) Location() (*time.Location, error) {
	return time.LoadLocation(c.Store.Timezone)
}
