// Package config reads the agent's one configuration file (TOML). Every
// setting has a default that works on a scanner PC, except the ИДК's
// identity and the collector's address, which only the site can know.
// Errors name the file and the setting.
package config

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"time"

	"idk/drivers/modbus"
	"idk/internal/logging"
	"idk/internal/tomlfile"
	"idk/protocol"
	"idk/protocol/codes"
	"idk/protocol/idkpb"
)

// Config is the agent's configuration. See deploy/agent.toml for the
// documented example.
type Config struct {
	Device    Device    `toml:"device"`
	Scanner   Scanner   `toml:"scanner"`
	Collector Collector `toml:"collector"`
	Spool     Spool     `toml:"spool"`
	Metrics   Metrics   `toml:"metrics"`
	Log       Log       `toml:"log"`
	Telemetry Telemetry `toml:"telemetry"`
	// Controller is the scanner's PLC, read over Modbus; leave transport
	// empty on a PC with no controller link.
	Controller modbus.Config `toml:"controller"`
	// Sites are the places a mobile ИДК works at, for naming where it
	// arrived after a relocation.
	Sites []Site `toml:"sites"`
}

// Telemetry tunes the device time accounting (table 3 of the daily report).
type Telemetry struct {
	Lat              float64       `toml:"lat"` // position of the home site, degrees
	Lon              float64       `toml:"lon"`
	GPSPort          string        `toml:"gps_port"` // serial port of the NMEA receiver (mobile ИДК); "": none
	GPSBaud          int           `toml:"gps_baud"`
	RelocationRadius float64       `toml:"relocation_radius"` // metres from the site that count as leaving it
	RelocationSpeed  float64       `toml:"relocation_speed"`  // km/h above which the unit is moving
	ArrivalDwell     time.Duration `toml:"arrival_dwell"`     // stopped this long at a new place = arrived
	LinkGrace        time.Duration `toml:"link_grace"`        // controller silence tolerated before the state is unknown
}

// Site is a known place of work of a mobile ИДК.
type Site struct {
	NaimZTK string  `toml:"naim_ztk"`
	KodTO   string  `toml:"kod_to"`
	NaimTO  string  `toml:"naim_to"`
	DislIDK uint32  `toml:"disl_idk"`
	Lat     float64 `toml:"lat"`
	Lon     float64 `toml:"lon"`
	Radius  float64 `toml:"radius"` // metres; 0: telemetry.relocation_radius
}

// Device is the ИДК's identity, as the daily report names it.
type Device struct {
	NumIDK  string `toml:"num_idk"`  // NUM_IDK: must equal the certificate's name
	TypeIDK uint32 `toml:"type_idk"` // TYPE_IDK: 1 mobile, 2 stationary
	KodTO   string `toml:"kod_to"`   // KOD_TO: 8 digits
	NaimTO  string `toml:"naim_to"`  // NAIM_TO
	NaimZTK string `toml:"naim_ztk"` // NAIM_ZTK
	DislIDK uint32 `toml:"disl_idk"` // DISL_IDK: 1 АПП, 2 МПП, 3 ЖДПП, 4 ВПП, 5 ВНЕ ПП
}

// Scanner is where the image-analysis program writes.
type Scanner struct {
	OutputDir string        `toml:"output_dir"`
	Layout    string        `toml:"layout"`     // "cargoriw"
	Settle    time.Duration `toml:"settle"`     // unchanged this long = ready
	Rescan    time.Duration `toml:"rescan"`     // full rescan period
	FormGrace time.Duration `toml:"form_grace"` // a half-written form is shipped as is after this
}

// Collector is where to ship.
type Collector struct {
	Addr string `toml:"addr"` // host:port (UDP for QUIC, TCP for the fallback)
	// Addrs are the region's collectors, host:port each, for a region
	// that runs several behind shared storage: the agent ships to one and
	// moves on to the next in order when that one cannot be reached.
	// Either addr (one collector) or addrs; see Addresses.
	Addrs []string `toml:"addrs"`
	// ServerName is the TLS name every collector's certificate must
	// carry; default: the host of each collector's own address.
	ServerName string `toml:"server_name"`
	CA         string `toml:"ca"`
	Cert       string `toml:"cert"`
	Key        string `toml:"key"`
	// MaxRate caps file bytes per second sent to the collector; 0: none.
	MaxRate int64 `toml:"max_rate"`
	// OutageThreshold: a link to the collector down longer than this is
	// reported, once back, as an ICT incident (НШС) of the post.
	OutageThreshold time.Duration `toml:"outage_threshold"`
	// WindowFiles caps the files sent at once, each on its own stream;
	// 1 sends one file at a time. At most 32, the collector's limit per
	// connection.
	WindowFiles int `toml:"window_files"`
	// WindowBytes caps the sizes of the files sent at once, together;
	// one file of any size may always go.
	WindowBytes int64 `toml:"window_bytes"`
	// FreshAge: files first seen less than this ago go before the
	// backlog, with part of the window kept for them.
	FreshAge time.Duration `toml:"fresh_age"`
	// Transport is how to reach the collector: 'auto' QUIC, falling back
	// to TLS over TCP (same port number) where UDP is blocked and back to
	// QUIC when it gets through; 'quic' or 'tcp' that one only.
	Transport string `toml:"transport"`
	// Lanes: files of 8 MiB and more are cut into stripes sent at once
	// over so many connections, this one included, as far as the
	// collector allows (agents.lanes there), except to a collector less
	// than ship.StripeMinRTT away; 1: none. At most 16.
	Lanes int `toml:"lanes"`
}

// Spool is the local durable queue.
type Spool struct {
	Path string `toml:"path"`
	// MinFreeBytes: below this much free space on the spool's disk the
	// agent stops recording telemetry detail (positions) first, so the
	// room left goes to scans and forms, which are never dropped.
	MinFreeBytes uint64 `toml:"min_free_bytes"`
}

// Metrics is the Prometheus endpoint.
type Metrics struct {
	Listen string `toml:"listen"` // empty: off
}

// Log sets logging; both daemons share its form.
type Log = logging.Config

// Default returns the defaults.
func Default() Config {
	return Config{
		Scanner: Scanner{Layout: "cargoriw", Settle: 2 * time.Second, Rescan: time.Minute, FormGrace: 2 * time.Minute},
		Collector: Collector{
			CA: "certs/ca.crt", Cert: "certs/agent.crt", Key: "certs/agent.key",
			OutageThreshold: 5 * time.Minute,
			WindowFiles:     32, WindowBytes: 64 << 20, FreshAge: time.Hour,
			Transport: "auto", Lanes: 16,
		},
		Spool:   Spool{Path: "spool.db", MinFreeBytes: 256 << 20},
		Metrics: Metrics{Listen: "127.0.0.1:9464"},
		Log:     Log{Level: "info", Format: "text"},
		Telemetry: Telemetry{GPSBaud: 4800, RelocationRadius: 500, RelocationSpeed: 10,
			ArrivalDwell: 10 * time.Minute, LinkGrace: 30 * time.Second},
	}
}

// Load reads path over the defaults. Relative paths in the file are taken
// relative to the file's folder, so a config folder can be moved whole.
func Load(path string) (Config, error) {
	c := Default()
	if err := tomlfile.Decode(path, &c); err != nil {
		return c, err
	}
	tomlfile.Resolve(path, &c.Scanner.OutputDir, &c.Collector.CA, &c.Collector.Cert, &c.Collector.Key, &c.Spool.Path)
	if err := c.Validate(); err != nil {
		return c, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// Validate checks every setting; the error names the first bad one.
func (c Config) Validate() error {
	var errs []error
	bad := func(field string, err error) { errs = append(errs, fmt.Errorf("%s: %w", field, err)) }
	if err := protocol.CheckNumIDK(c.Device.NumIDK); err != nil {
		bad("device.num_idk", err)
	}
	if !codes.TypeIDK.Valid(int(c.Device.TypeIDK)) {
		bad("device.type_idk", fmt.Errorf("%d: want 1 (mobile) or 2 (stationary)", c.Device.TypeIDK))
	}
	if err := protocol.CheckKodTO(c.Device.KodTO); err != nil {
		bad("device.kod_to", err)
	}
	if !codes.Disl.Valid(int(c.Device.DislIDK)) {
		bad("device.disl_idk", fmt.Errorf("%d: want 1-5 (АПП, МПП, ЖДПП, ВПП, ВНЕ ПП)", c.Device.DislIDK))
	}
	if c.Scanner.OutputDir == "" {
		bad("scanner.output_dir", errors.New("required"))
	}
	if c.Scanner.Layout != "cargoriw" {
		bad("scanner.layout", fmt.Errorf("%q: the known layout is \"cargoriw\"", c.Scanner.Layout))
	}
	if c.Scanner.Settle < 100*time.Millisecond {
		bad("scanner.settle", fmt.Errorf("%v: want at least 100ms", c.Scanner.Settle))
	}
	if c.Collector.OutageThreshold < time.Minute {
		bad("collector.outage_threshold", fmt.Errorf("%v: want at least '1m'", c.Collector.OutageThreshold))
	}
	if c.Collector.WindowFiles < 1 || c.Collector.WindowFiles > 32 {
		bad("collector.window_files", fmt.Errorf("%d: want 1-32", c.Collector.WindowFiles))
	}
	if c.Collector.Lanes < 1 || c.Collector.Lanes > 16 {
		bad("collector.lanes", fmt.Errorf("%d: want 1-16", c.Collector.Lanes))
	}
	if c.Collector.WindowBytes < 1 {
		bad("collector.window_bytes", fmt.Errorf("%d: want bytes, e.g. 67108864 (64 MiB)", c.Collector.WindowBytes))
	}
	if c.Collector.FreshAge < 0 {
		bad("collector.fresh_age", fmt.Errorf("%v: want a duration, e.g. '1h'", c.Collector.FreshAge))
	}
	if c.Collector.MaxRate < 0 {
		bad("collector.max_rate", fmt.Errorf("%d: want 0 (no cap) or bytes per second", c.Collector.MaxRate))
	}
	c.Collector.validateAddrs(bad)
	switch c.Collector.Transport {
	case "auto", "quic", "tcp":
	default:
		bad("collector.transport", fmt.Errorf("%q: want 'auto', 'quic' or 'tcp'", c.Collector.Transport))
	}
	if c.Controller.Transport != "" {
		if err := c.Controller.Map.Validate(); err != nil {
			bad("controller.map", err)
		}
	}
	for i, st := range c.Sites {
		if st.NaimZTK == "" {
			bad(fmt.Sprintf("sites[%d].naim_ztk", i), errors.New("required"))
		}
		if err := protocol.CheckKodTO(st.KodTO); err != nil {
			bad(fmt.Sprintf("sites[%d].kod_to", i), err)
		}
		if !codes.Disl.Valid(int(st.DislIDK)) {
			bad(fmt.Sprintf("sites[%d].disl_idk", i), fmt.Errorf("%d: want 1-5", st.DislIDK))
		}
	}
	if c.Telemetry.GPSPort != "" && c.Device.TypeIDK != 1 {
		bad("telemetry.gps_port", errors.New("GPS is for a mobile ИДК (device.type_idk = 1)"))
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level", fmt.Errorf("%q: want debug, info, warn or error", c.Log.Level))
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		bad("log.format", fmt.Errorf("%q: want text or json", c.Log.Format))
	}
	return errors.Join(errs...)
}

// Addresses are the collectors to ship to, in the order they are tried:
// collector.addrs, or else collector.addr alone; none if neither is set.
func (c Collector) Addresses() []string {
	if len(c.Addrs) > 0 {
		return slices.Clone(c.Addrs)
	}
	if c.Addr != "" {
		return []string{c.Addr}
	}
	return nil
}

// validateAddrs checks collector.addr and collector.addrs: one of them,
// each address host:port, no address twice. addr and addrs saying the
// same one collector is tolerated, as when a site adds the list beside
// the old line; anything else set in both is ambiguous.
func (c Collector) validateAddrs(bad func(string, error)) {
	switch {
	case c.Addr == "" && len(c.Addrs) == 0:
		bad("collector.addr", errors.New("required (host:port), or collector.addrs for several collectors"))
		return
	case c.Addr != "" && len(c.Addrs) > 0 && !slices.Equal(c.Addrs, []string{c.Addr}):
		bad("collector.addr, collector.addrs", errors.New("both set: set collector.addrs (the list of collectors) or collector.addr (one collector), not both"))
		return
	}
	if len(c.Addrs) == 0 {
		if err := checkHostPort(c.Addr); err != nil {
			bad("collector.addr", err)
		}
		return
	}
	for i, a := range c.Addrs {
		field := fmt.Sprintf("collector.addrs[%d]", i)
		if err := checkHostPort(a); err != nil {
			bad(field, err)
		} else if j := slices.Index(c.Addrs, a); j < i {
			bad(field, fmt.Errorf("%q: listed already as collector.addrs[%d]", a, j))
		}
	}
}

// checkHostPort checks that addr is host:port, as the dialers need it.
func checkHostPort(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q: want host:port: %w", addr, err)
	}
	if host == "" {
		return fmt.Errorf("%q: want host:port: no host", addr)
	}
	// A service name ("https") resolves too; a number must be a port.
	if n, err := strconv.Atoi(port); port == "" || (err == nil && (n < 1 || n > 65535)) {
		return fmt.Errorf("%q: want host:port: port %q", addr, port)
	}
	return nil
}

// TLSServerName is the name the collector's certificate must carry, for
// a caller that talks to one collector (the first): collector.server_name,
// or else the host of that collector's address. The shipper, which may
// talk to each of several, takes collector.server_name as it is and,
// when it is empty, the host of each address it dials.
func (c Config) TLSServerName() (string, error) {
	if c.Collector.ServerName != "" {
		return c.Collector.ServerName, nil
	}
	addrs := c.Collector.Addresses()
	if len(addrs) == 0 {
		return "", errors.New("collector.addr: required (host:port)")
	}
	field := "collector.addr"
	if len(c.Collector.Addrs) > 0 {
		field = "collector.addrs[0]"
	}
	host, _, err := net.SplitHostPort(addrs[0])
	if err != nil {
		return "", fmt.Errorf("%s %q: %w", field, addrs[0], err)
	}
	return host, nil
}

// DeviceProto returns the identity as the protocol carries it.
func (c Config) DeviceProto() *idkpb.Device {
	d := c.Device
	return &idkpb.Device{NumIdk: d.NumIDK, TypeIdk: d.TypeIDK, KodTo: d.KodTO, NaimTo: d.NaimTO, NaimZtk: d.NaimZTK, DislIdk: d.DislIDK}
}
