// Package pkicmd is the certificate command line, "idk-collector pki": it
// turns the operator's flags into calls to package pki and reports what it
// made. It lives apart from pki so that the library stays free of flag
// parsing and output formats.
package pkicmd

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"idk/collector/pki"
	"idk/collector/registry"
	"idk/internal/clock"
	"idk/protocol"
)

// progName is how the commands are reached: the collector binary hands
// "idk-collector pki ..." to Main.
const progName = "idk-collector pki"

// Exit codes of Main, after the flag package's convention.
const (
	exitOK    = 0
	exitFail  = 1
	exitUsage = 2
)

// demoHosts are the names a collector on the same machine is dialled by.
const demoHosts = "localhost,127.0.0.1,::1"

// demoKodTO is the customs body the demo enrols its ИДК for (a customs
// post of the Dagestan customs, as in the examples of the reference).
const demoKodTO = "10216100"

var commands = []struct{ name, summary string }{
	{"init", "create the CA (ca.crt, ca.key) and an empty revocation list (ca.crl)"},
	{"collector", "issue the collector's server certificate (collector.crt, collector.key)"},
	{"agent", "issue client certificates, one per ИДК (agent-<NUM_IDK>.crt, .key)"},
	{"renew", "issue an enrolled ИДК (or the collector) a new certificate before the old one expires"},
	{"revoke", "revoke agent certificates by NUM_IDK or serial number (rewrites ca.crl)"},
	{"demo", "init (reusing an existing CA), collector and agent in one go"},
}

// Main runs the certificate commands; args excludes the program name. It
// returns the process exit code: 0 on success, 1 if a command failed, 2 on
// a usage error.
func Main(args []string, stdout, stderr io.Writer) int {
	c := &cli{stdout: stdout, stderr: stderr, clock: clock.Real()}
	return c.run(args)
}

type cli struct {
	stdout, stderr io.Writer
	clock          clock.Clock // injected so tests can move the clock
}

func (c *cli) run(args []string) int {
	if len(args) == 0 {
		c.usage(c.stderr)
		return exitUsage
	}
	switch cmd, rest := args[0], args[1:]; cmd {
	case "help", "-h", "-help", "--help":
		c.usage(c.stdout)
		return exitOK
	case "init":
		return c.cmdInit(rest)
	case "collector":
		return c.cmdCollector(rest)
	case "agent":
		return c.cmdAgent(rest)
	case "renew":
		return c.cmdRenew(rest)
	case "revoke":
		return c.cmdRevoke(rest)
	case "demo":
		return c.cmdDemo(rest)
	default:
		fmt.Fprintf(c.stderr, "%s: unknown command %q\n\n", progName, cmd)
		c.usage(c.stderr)
		return exitUsage
	}
}

func (c *cli) usage(w io.Writer) {
	fmt.Fprintf(w, "usage: %s <command> [flags]\n\nCommands:\n", progName)
	for _, cmd := range commands {
		fmt.Fprintf(w, "  %-10s %s\n", cmd.name, cmd.summary)
	}
	fmt.Fprintf(w, "\nRun '%s <command> -h' for a command's flags.\n", progName)
}

// flagSet makes the FlagSet of one command, with usage text built from
// synopsis and description.
func (c *cli) flagSet(name, synopsis, description string) *flag.FlagSet {
	set := flag.NewFlagSet(progName+" "+name, flag.ContinueOnError)
	set.SetOutput(c.stderr)
	set.Usage = func() {
		fmt.Fprintf(set.Output(), "usage: %s %s %s\n\n%s\n\nFlags:\n", progName, name, synopsis, description)
		set.PrintDefaults()
	}
	return set
}

// parse parses args into set and checks that every flag in required was
// given a value. ok is false when the command must stop with code.
func (c *cli) parse(set *flag.FlagSet, args []string, required ...string) (code int, ok bool) {
	if err := set.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK, false
		}
		return exitUsage, false // set has printed the error and usage
	}
	if set.NArg() > 0 {
		return c.usageError(set, fmt.Sprintf("unexpected argument %q", set.Arg(0))), false
	}
	for _, name := range required {
		if f := set.Lookup(name); f != nil && f.Value.String() == "" {
			return c.usageError(set, "--"+name+" is required"), false
		}
	}
	return exitOK, true
}

func (c *cli) usageError(set *flag.FlagSet, msg string) int {
	fmt.Fprintf(c.stderr, "%s: %s\n", set.Name(), msg)
	set.Usage()
	return exitUsage
}

// fail reports err for command name and returns the failure exit code.
func (c *cli) fail(name string, err error) int {
	fmt.Fprintf(c.stderr, "%s %s: %v\n", progName, name, err)
	if errors.Is(err, fs.ErrExist) {
		if name == "demo" {
			// Only a half-present CA gets here, and demo never
			// replaces a CA.
			fmt.Fprintf(c.stderr, "%s demo: '%s init --force' replaces the CA\n", progName, progName)
		} else {
			fmt.Fprintf(c.stderr, "%s %s: pass --force to replace it\n", progName, name)
		}
	}
	return exitFail
}

// listFlag is a repeatable flag whose values may also be comma-separated;
// each value is checked by valid and kept once.
// kodTOFlag is a KOD_TO, checked when the flag is parsed, as listFlag
// checks each NUM_IDK.
type kodTOFlag string

func (k *kodTOFlag) String() string { return string(*k) }

func (k *kodTOFlag) Set(s string) error {
	s = strings.TrimSpace(s)
	if err := protocol.CheckKodTO(s); err != nil {
		return err
	}
	*k = kodTOFlag(s)
	return nil
}

type listFlag struct {
	values []string
	valid  func(string) error
}

func (l *listFlag) String() string { return strings.Join(l.values, ",") }

func (l *listFlag) Set(s string) error {
	for v := range strings.SplitSeq(s, ",") {
		v = strings.TrimSpace(v)
		if v == "" {
			continue
		}
		if l.valid != nil {
			if err := l.valid(v); err != nil {
				return err
			}
		}
		if !slices.Contains(l.values, v) {
			l.values = append(l.values, v)
		}
	}
	return nil
}

func (c *cli) cmdInit(args []string) int {
	set := c.flagSet("init", "--dir DIR [--org ORG] [--force]",
		"Creates the collector's CA in DIR: ca.crt, ca.key and an empty ca.crl.\n"+
			"Refuses to replace an existing CA unless --force is given: a new CA\n"+
			"invalidates every certificate the old one issued.")
	dir := set.String("dir", "", "PKI `directory`, created if missing")
	org := set.String("org", "", "`organisation` (subject O) of the CA; later certificates copy it")
	force := set.Bool("force", false, "replace an existing CA")
	if code, ok := c.parse(set, args, "dir"); !ok {
		return code
	}
	cert, err := pki.CreateCA(*dir, pki.Options{Clock: c.clock, Organization: *org, Force: *force})
	if err != nil {
		return c.fail("init", err)
	}
	c.reportCA(*dir, cert, "created")
	return exitOK
}

func (c *cli) cmdCollector(args []string) int {
	set := c.flagSet("collector", "--dir DIR --hosts HOST[,HOST...] [--force]",
		"Issues the collector's server certificate (collector.crt, collector.key),\n"+
			"signed by the CA in DIR, for every DNS name and IP address agents dial.")
	dir := set.String("dir", "", "PKI `directory` holding the CA")
	// No default: a certificate for localhost alone would be refused by
	// every agent on another machine, a failure far from its cause.
	hosts := set.String("hosts", "", "comma-separated DNS names and IP `addresses`, e.g. "+demoHosts)
	force := set.Bool("force", false, "replace an existing collector certificate")
	if code, ok := c.parse(set, args, "dir", "hosts"); !ok {
		return code
	}
	cert, err := pki.IssueCollector(*dir, strings.Split(*hosts, ","), pki.Options{Clock: c.clock, Force: *force})
	if err != nil {
		return c.fail("collector", err)
	}
	c.reportLeaf(*dir, pki.CollectorCertFile, pki.CollectorKeyFile, cert, "issued")
	return exitOK
}

func (c *cli) cmdAgent(args []string) int {
	set := c.flagSet("agent", "--dir DIR --num-idk NUM_IDK [--num-idk ...] --kod-to KOD_TO [--force | --registry-only]",
		"Enrols each ИДК: issues its client certificate (agent-<NUM_IDK>.crt, .key),\n"+
			"signed by the CA in DIR, and records in the registry (agents.toml in DIR)\n"+
			"the customs body whose evidence it produces. Copy both files and ca.crt\n"+
			"to that scanner PC. To replace a certificate, revoke the old one first,\n"+
			"then use --force. To move an ИДК to another customs body, run again with\n"+
			"--registry-only.")
	dir := set.String("dir", "", "PKI `directory` holding the CA")
	nums := &listFlag{valid: pki.ValidateNumIDK}
	set.Var(nums, "num-idk", "ИДК `number` (NUM_IDK); repeat the flag or separate with commas")
	kodTO := new(kodTOFlag)
	set.Var(kodTO, "kod-to", "`code` of the customs body (KOD_TO, 8 digits) the ИДК works for")
	force := set.Bool("force", false, "replace existing agent certificates")
	regOnly := set.Bool("registry-only", false, "only record the KOD_TO in the registry; issue no certificate")
	if code, ok := c.parse(set, args, "dir", "num-idk", "kod-to"); !ok {
		return code
	}
	// Each ИДК is independent: one that fails does not stop the others.
	code := exitOK
	for _, n := range nums.values {
		if !*regOnly {
			cert, err := pki.IssueAgent(*dir, n, pki.Options{Clock: c.clock, Force: *force})
			if err != nil {
				code = c.fail("agent", err)
				continue
			}
			c.reportLeaf(*dir, pki.AgentCertFile(n), pki.AgentKeyFile(n), cert, "issued")
		}
		if err := c.enrol(*dir, n, string(*kodTO)); err != nil {
			code = c.fail("agent", err)
		}
	}
	return code
}

// enrol records numIDK's customs body in the registry beside the CA.
func (c *cli) enrol(dir, numIDK, kodTO string) error {
	path := filepath.Join(dir, registry.FileName)
	if err := registry.Put(path, registry.Agent{NumIDK: numIDK, KodTO: kodTO}); err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "enrolled %s for KOD_TO %s in %s\n", numIDK, kodTO, path)
	return nil
}

func (c *cli) cmdRevoke(args []string) int {
	set := c.flagSet("revoke", "--dir DIR (--num-idk NUM_IDK | --serial SERIAL)...",
		"Adds agent certificates to the revocation list ca.crl of the CA in DIR.\n"+
			"--num-idk revokes the certificate now in agent-<NUM_IDK>.crt. The\n"+
			"collector refuses revoked certificates once it reloads ca.crl.")
	dir := set.String("dir", "", "PKI `directory` holding the CA")
	nums := &listFlag{valid: pki.ValidateNumIDK}
	set.Var(nums, "num-idk", "ИДК `number` whose current certificate to revoke; repeatable, comma-separated")
	serials := &listFlag{valid: func(s string) error { _, err := pki.ParseSerial(s); return err }}
	set.Var(serials, "serial", "hex `serial` number to revoke (01:ab:..., 0x1ab or 1ab); repeatable")
	if code, ok := c.parse(set, args, "dir"); !ok {
		return code
	}
	if len(nums.values) == 0 && len(serials.values) == 0 {
		return c.usageError(set, "--num-idk or --serial is required")
	}
	opts := pki.Options{Clock: c.clock}
	code := exitOK
	crlPath := filepath.Join(*dir, pki.CRLFile)
	for _, n := range nums.values {
		serial, err := pki.Revoke(*dir, n, opts)
		if err != nil {
			code = c.fail("revoke", err)
			continue
		}
		fmt.Fprintf(c.stdout, "revoked ИДК %s (serial %s) in %s\n", n, pki.FormatSerial(serial), crlPath)
	}
	for _, s := range serials.values {
		serial, _ := pki.ParseSerial(s) // checked by the flag
		// Through "0x" so that pki.Revoke cannot take a short serial for a
		// NUM_IDK.
		if _, err := pki.Revoke(*dir, "0x"+serial.Text(16), opts); err != nil {
			code = c.fail("revoke", err)
			continue
		}
		fmt.Fprintf(c.stdout, "revoked serial %s in %s\n", pki.FormatSerial(serial), crlPath)
	}
	return code
}

func (c *cli) cmdDemo(args []string) int {
	set := c.flagSet("demo", "--dir DIR --num-idk NUM_IDK [--num-idk ...] [--kod-to KOD_TO] [--hosts HOST,...] [--org ORG]",
		"Makes everything a demo needs in DIR: the CA (an existing one is reused),\n"+
			"the collector certificate and the agent certificates, and enrols the\n"+
			"agents in the registry (agents.toml). Running it again\n"+
			"keeps every certificate that is still valid, so it is safe to repeat.")
	dir := set.String("dir", "", "PKI `directory`, created if missing")
	nums := &listFlag{valid: pki.ValidateNumIDK}
	set.Var(nums, "num-idk", "ИДК `number` (NUM_IDK); repeat the flag or separate with commas")
	hosts := set.String("hosts", demoHosts, "comma-separated DNS names and IP `addresses` of the collector")
	org := set.String("org", "", "`organisation` (subject O) of a new CA")
	kodTO := kodTOFlag(demoKodTO)
	set.Var(&kodTO, "kod-to", "`code` of the customs body (KOD_TO) the demo ИДК are enrolled for")
	if code, ok := c.parse(set, args, "dir", "num-idk", "hosts", "kod-to"); !ok {
		return code
	}
	if err := c.demo(*dir, strings.Split(*hosts, ","), nums.values, *org, string(kodTO)); err != nil {
		return c.fail("demo", err)
	}
	return exitOK
}

// demo makes or reuses the CA, the collector certificate and the agent
// certificates. A leaf is reused only if it would pass a handshake now:
// its key matches, it chains to the current CA, it is not revoked and, for
// the collector, it names every host. Anything else is replaced, which is
// harmless because such a certificate is useless anyway.
func (c *cli) demo(dir string, hosts, nums []string, org, kodTO string) error {
	now := c.clock.Now()
	ca, err := pki.LoadCA(dir)
	switch {
	case err == nil:
		if err := ca.CheckValid(now); err != nil {
			return err // replacing a CA is for init --force, not a demo
		}
		c.reportCA(dir, ca.Cert, "reused")
	case errors.Is(err, fs.ErrNotExist):
		// pki.CreateCA still refuses if half of the CA is there.
		cert, err := pki.CreateCA(dir, pki.Options{Clock: c.clock, Organization: org})
		if err != nil {
			return err
		}
		c.reportCA(dir, cert, "created")
		if ca, err = pki.LoadCA(dir); err != nil {
			return err
		}
	default:
		return err
	}

	crl, created, err := ca.EnsureCRL(dir, now)
	if err != nil {
		return err
	}
	if created {
		fmt.Fprintf(c.stdout, "wrote empty %s\n", filepath.Join(dir, pki.CRLFile))
	}
	replace := pki.Options{Clock: c.clock, Force: true}

	certName, keyName := pki.CollectorCertFile, pki.CollectorKeyFile
	if leaf := usableLeaf(dir, certName, keyName, ca.Cert, crl, now, x509.ExtKeyUsageServerAuth); leaf != nil && coversHosts(leaf, hosts) {
		c.reportLeaf(dir, certName, keyName, leaf, "reused")
	} else {
		cert, err := pki.IssueCollector(dir, hosts, replace)
		if err != nil {
			return err
		}
		c.reportLeaf(dir, certName, keyName, cert, "issued")
	}

	for _, n := range nums {
		certName, keyName := pki.AgentCertFile(n), pki.AgentKeyFile(n)
		if leaf := usableLeaf(dir, certName, keyName, ca.Cert, crl, now, x509.ExtKeyUsageClientAuth); leaf != nil {
			if id, err := pki.IdentityFromCert(leaf); err == nil && id == n {
				c.reportLeaf(dir, certName, keyName, leaf, "reused")
				continue
			}
		}
		cert, err := pki.IssueAgent(dir, n, replace)
		if err != nil {
			return err
		}
		c.reportLeaf(dir, certName, keyName, cert, "issued")
	}
	for _, n := range nums {
		if err := c.enrol(dir, n, kodTO); err != nil {
			return err
		}
	}

	fmt.Fprintf(c.stdout, "\ncollector needs: %s\n", strings.Join([]string{pki.CACertFile, pki.CRLFile, pki.CollectorCertFile, pki.CollectorKeyFile}, ", "))
	for _, n := range nums {
		fmt.Fprintf(c.stdout, "agent %s needs: %s\n", n, strings.Join([]string{pki.CACertFile, pki.AgentCertFile(n), pki.AgentKeyFile(n)}, ", "))
	}
	return nil
}

// usableLeaf returns the certificate in certName if it would be accepted
// now, or nil.
func usableLeaf(dir, certName, keyName string, ca *x509.Certificate, crl *x509.RevocationList, now time.Time, usage x509.ExtKeyUsage) *x509.Certificate {
	pair, err := tls.LoadX509KeyPair(filepath.Join(dir, certName), filepath.Join(dir, keyName))
	if err != nil || pair.Leaf == nil {
		return nil
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	opts := x509.VerifyOptions{Roots: roots, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{usage}}
	if _, err := pair.Leaf.Verify(opts); err != nil || pki.IsRevoked(crl, pair.Leaf.SerialNumber) {
		return nil
	}
	return pair.Leaf
}

func coversHosts(cert *x509.Certificate, hosts []string) bool {
	for _, h := range hosts {
		if h = strings.TrimSpace(h); h != "" && cert.VerifyHostname(h) != nil {
			return false
		}
	}
	return true
}

func (c *cli) reportCA(dir string, cert *x509.Certificate, verb string) {
	fmt.Fprintf(c.stdout, "%s CA %q, serial %s, valid until %s\n", verb, cert.Subject.CommonName,
		pki.FormatSerial(cert.SerialNumber), cert.NotAfter.UTC().Format(time.DateOnly))
	fmt.Fprintf(c.stdout, "  %s\n  %s  (secret: never copy it off this host)\n  %s\n",
		filepath.Join(dir, pki.CACertFile), filepath.Join(dir, pki.CAKeyFile), filepath.Join(dir, pki.CRLFile))
}

func (c *cli) reportLeaf(dir, certName, keyName string, cert *x509.Certificate, verb string) {
	fmt.Fprintf(c.stdout, "%s %q, serial %s, valid until %s\n", verb, cert.Subject.CommonName,
		pki.FormatSerial(cert.SerialNumber), cert.NotAfter.UTC().Format(time.DateOnly))
	fmt.Fprintf(c.stdout, "  %s\n  %s\n", filepath.Join(dir, certName), filepath.Join(dir, keyName))
}
