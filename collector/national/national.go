// Package national is the FTS level of the ИДК reports: it pulls each
// region's daily and monthly reports and its monthly summary from the
// region's collector over the collector's HTTP API, keeps them with every
// earlier version, and adds the regions' summaries up into the national
// one. It never needs, and never asks for, the images.
package national

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"idk/internal/tomlfile"
)

// Config is the national puller's configuration (deploy/national.toml).
type Config struct {
	// Dir is where the pulled reports are kept, a folder per region.
	Dir string `toml:"dir"`
	// Timeout bounds one request: a large region's month takes its
	// collector a while to build when it is not published yet.
	Timeout time.Duration `toml:"timeout"`
	// Parallel is how many regions are pulled at once.
	Parallel int      `toml:"parallel"`
	Regions  []Region `toml:"region"`
}

// Region is one РТУ's collector.
type Region struct {
	// Name names the region in reports, logs and as its folder: 'СЗТУ'.
	Name string `toml:"name"`
	// URL is the collector's API base: 'https://collector.rtu.example:9466'.
	URL string `toml:"url"`
	// TokenFile holds the bearer token of the region's account for the
	// FTS (role 'system').
	TokenFile string `toml:"token_file"`
	// CA is the certificate of the CA that signed the collector's HTTPS
	// certificate; empty: the system's roots.
	CA string `toml:"ca"`
}

// Default is the configuration before the file is read.
func Default() Config {
	return Config{Dir: "national", Timeout: 5 * time.Minute, Parallel: 4}
}

// Load reads the configuration file at path over Default, taking relative
// paths relative to the file's folder, and checks it.
func Load(path string) (Config, error) {
	cfg := Default()
	if err := tomlfile.Decode(path, &cfg); err != nil {
		return Config{}, err
	}
	tomlfile.Resolve(path, &cfg.Dir)
	for i := range cfg.Regions {
		tomlfile.Resolve(path, &cfg.Regions[i].TokenFile, &cfg.Regions[i].CA)
	}
	if err := cfg.Check(); err != nil {
		return Config{}, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, nil
}

// Check reports every setting that is wrong, each by name.
func (c Config) Check() error {
	var errs []error
	if c.Dir == "" {
		errs = append(errs, errors.New("dir is required"))
	}
	if c.Timeout <= 0 {
		errs = append(errs, fmt.Errorf("timeout %v: want above 0", c.Timeout))
	}
	if c.Parallel <= 0 {
		errs = append(errs, fmt.Errorf("parallel %d: want at least 1", c.Parallel))
	}
	if len(c.Regions) == 0 {
		errs = append(errs, errors.New("no [[region]]"))
	}
	seen := map[string]bool{}
	for i, r := range c.Regions {
		at := fmt.Sprintf("region %d", i+1)
		if r.Name != "" {
			at = fmt.Sprintf("region %d (%s)", i+1, r.Name)
		}
		if err := checkName(r.Name); err != nil {
			errs = append(errs, fmt.Errorf("%s: name: %w", at, err))
		}
		// Two entries with one name would share a folder.
		if seen[r.Name] {
			errs = append(errs, fmt.Errorf("%s: name given twice", at))
		}
		seen[r.Name] = true
		if u, err := url.Parse(r.URL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			errs = append(errs, fmt.Errorf("%s: url %q: want https://host:port", at, r.URL))
		}
		if r.TokenFile == "" {
			errs = append(errs, fmt.Errorf("%s: token_file is required", at))
		}
	}
	return errors.Join(errs...)
}

// checkName accepts a region's name as the name of its folder: one path
// element, not hidden, so that no name reaches outside Dir.
func checkName(n string) error {
	switch {
	case strings.TrimSpace(n) == "":
		return errors.New("required")
	case n != strings.TrimSpace(n):
		return fmt.Errorf("%q: spaces at either end", n)
	case strings.ContainsAny(n, `/\:*?"<>|`) || strings.HasPrefix(n, "."):
		return fmt.Errorf("%q: not a folder name (no / \\ : * ? \" < > |, no leading dot)", n)
	}
	for _, r := range n {
		if r < ' ' {
			return fmt.Errorf("%q: a control character", n)
		}
	}
	return nil
}

// Target is what to pull: a month's monthly report and summary, or a
// day's daily reports. Both are kept in the folder of their month.
type Target struct {
	Month string // 2026-11
	Day   string // 2026-11-27; empty: the month's report
}

// MonthTarget is the monthly report of month, written 2026-11 or
// 11.2026 as the collector's own commands take it.
func MonthTarget(month string) (Target, error) {
	t, err := parseEither(month, "2006-01", "01.2006")
	if err != nil {
		return Target{}, fmt.Errorf("month %q: want 2026-11 or 11.2026", month)
	}
	return Target{Month: t.Format("2006-01")}, nil
}

// DayTarget is the daily reports of day, written 2026-11-27 or
// 27.11.2026.
func DayTarget(day string) (Target, error) {
	t, err := parseEither(day, "2006-01-02", "02.01.2006")
	if err != nil {
		return Target{}, fmt.Errorf("date %q: want 2026-11-27 or 27.11.2026", day)
	}
	return Target{Month: t.Format("2006-01"), Day: t.Format("2006-01-02")}, nil
}

func parseEither(s string, layouts ...string) (t time.Time, err error) {
	for _, l := range layouts {
		if t, err = time.Parse(l, s); err == nil {
			return t, nil
		}
	}
	return t, err
}

func (t Target) String() string {
	if t.Day != "" {
		return t.Day
	}
	return t.Month
}
