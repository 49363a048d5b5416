// Package check diagnoses an agent's installation on a scanner PC: the
// configuration, the scanner's folder, the spool, the devices, the
// certificates, the collector and the clock, each answered in one line in
// Russian and English with what to do about a failure. The installer and
// the shift lead run it as "idk-agent check"; it changes nothing a running
// agent depends on.
package check

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"idk/agent/config"
	"idk/drivers/gps"
	"idk/internal/clock"
)

// Status is the outcome of one check.
type Status int

const (
	OK   Status = iota // passed
	Warn               // passed, but needs attention soon
	Fail               // the agent cannot work as configured
	Skip               // not configured, or depends on a check that failed
)

func (s Status) String() string {
	switch s {
	case OK:
		return "OK"
	case Warn:
		return "WARN"
	case Fail:
		return "FAIL"
	}
	return "SKIP"
}

// Names of the checks, for Report.Find.
const (
	NameConfig       = "config"
	NameOutputDir    = "output_dir"
	NameSpool        = "spool"
	NameDiskFree     = "disk_free"
	NameController   = "controller"
	NameGPS          = "gps"
	NameCertFiles    = "cert_files"
	NameCertKey      = "cert_key"
	NameCertCA       = "cert_ca"
	NameCertExpiry   = "cert_expiry"
	NameCertIdentity = "cert_identity"
	NameCollector    = "collector"
	NameClock        = "clock"
)

// Result is one check's answer. Text is "Russian / English"; Detail is the
// path, figure or error it concerns; Fix, for a warning or failure, says
// what to do, also in both languages.
type Result struct {
	Name   string
	Status Status
	Text   string
	Detail string
	Fix    string
}

// Line is the result as printed: status, text, detail, and what to do.
func (r Result) Line() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%-4s %s", r.Status, r.Text)
	if r.Detail != "" {
		b.WriteString(": ")
		b.WriteString(r.Detail)
	}
	if r.Fix != "" && (r.Status == Warn || r.Status == Fail) {
		b.WriteString(" — ")
		b.WriteString(r.Fix)
	}
	return b.String()
}

// Report is every check's result, in the order they ran.
type Report []Result

// Passed reports whether no check failed; warnings pass.
func (r Report) Passed() bool {
	for _, res := range r {
		if res.Status == Fail {
			return false
		}
	}
	return true
}

// Find returns the result of the check named name.
func (r Report) Find(name string) (Result, bool) {
	for _, res := range r {
		if res.Name == name {
			return res, true
		}
	}
	return Result{}, false
}

// Print writes one line per check.
func (r Report) Print(w io.Writer) {
	for _, res := range r {
		fmt.Fprintln(w, res.Line())
	}
}

// Options tune the checks. The zero value is ready to use.
type Options struct {
	// Clock is the time certificates are judged at and the hello is
	// dated with; nil means clock.Real.
	Clock clock.Clock
	// Timeout bounds each device and network check; 0 means 10 seconds.
	Timeout time.Duration
	// OpenGPS opens the receiver's port; nil means gps.Open.
	OpenGPS func(port string, baud int) (io.ReadCloser, error)
	// Version is the agent's, sent in the hello.
	Version string
	// Log receives the drivers' logs; nil discards them, since the
	// report says what matters.
	Log *slog.Logger
}

// DefaultTimeout bounds each device and network check.
const DefaultTimeout = 10 * time.Second

// CertWarnDays is how close to expiry a certificate is reported as a
// warning: a month leaves time to renew it (idk-collector pki renew).
const CertWarnDays = 30

// MaxClockOffset is the clock difference with the collector reported as a
// warning. The collector corrects event times by the offset it measures,
// but the 15/30-minute inspection limits are judged on them.
const MaxClockOffset = 2 * time.Minute

// Run loads the configuration at cfgPath and runs every check that it
// allows. A configuration that does not load is the only result.
func Run(ctx context.Context, cfgPath string, opt Options) Report {
	opt.Clock = clock.Or(opt.Clock)
	if opt.Timeout <= 0 {
		opt.Timeout = DefaultTimeout
	}
	if opt.OpenGPS == nil {
		opt.OpenGPS = gps.Open
	}
	if opt.Log == nil {
		opt.Log = slog.New(slog.DiscardHandler)
	}
	cfg, err := config.Load(cfgPath)
	if err != nil {
		return Report{{Name: NameConfig, Status: Fail,
			Text:   "файл настроек содержит ошибки / configuration is not valid",
			Detail: err.Error(),
			Fix:    "исправьте указанную настройку / correct the setting named (see deploy/agent.toml)"}}
	}
	r := Report{{Name: NameConfig, Status: OK, Text: "файл настроек верен / configuration is valid", Detail: cfgPath}}
	r = append(r, outputDir(cfg))
	r = append(r, spoolCheck(cfg)...)
	r = append(r, controller(ctx, cfg, opt))
	r = append(r, gpsCheck(ctx, cfg, opt))
	certs := certificates(cfg, opt.Clock.Now())
	r = append(r, certs...)
	r = append(r, collector(ctx, cfg, opt, Report(certs))...)
	return r
}
