package pkicmd

import (
	"crypto/x509"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"idk/collector/pki"
	"idk/collector/registry"
)

// maxDays bounds --days so that the validity cannot overflow a Duration;
// a leaf never outlives its CA anyway.
const maxDays = 100 * 365

func (c *cli) cmdRenew(args []string) int {
	set := c.flagSet("renew", "--dir DIR (--num-idk NUM_IDK [--num-idk ...] | --collector [--hosts HOST,...]) [--days D] [--revoke-old]",
		"Issues a new certificate, with a new key and serial number, in place of the\n"+
			"current one of an enrolled ИДК (agent-<NUM_IDK>.crt, .key) or of the\n"+
			"collector (collector.crt, .key). The identity and the registry entry stay\n"+
			"as they are. The old certificate stays valid until it expires, so the ИДК\n"+
			"keeps shipping until the new files reach it, unless --revoke-old is given.\n"+
			"Both programs take the new files up within seconds, without a restart.")
	dir := set.String("dir", "", "PKI `directory` holding the CA")
	nums := &listFlag{valid: pki.ValidateNumIDK}
	set.Var(nums, "num-idk", "ИДК `number` whose certificate to renew; repeatable, comma-separated")
	collector := set.Bool("collector", false, "renew the collector's server certificate instead")
	hosts := set.String("hosts", "", "with --collector: comma-separated DNS names and IP `addresses`; default: those of the current certificate")
	days := set.Int("days", 0, "`days` the new certificate is valid; default 730, never beyond the CA")
	revokeOld := set.Bool("revoke-old", false, "also revoke the replaced certificate at once (a stolen key); the ИДК is locked out until it has the new files")
	if code, ok := c.parse(set, args, "dir"); !ok {
		return code
	}
	switch {
	case *collector == (len(nums.values) > 0):
		return c.usageError(set, "give either --num-idk or --collector")
	case *hosts != "" && !*collector:
		return c.usageError(set, "--hosts goes with --collector")
	case *revokeOld && *collector:
		// The revocation list is checked against agents' certificates
		// only; agents trust any collector certificate the CA signed.
		return c.usageError(set, "--revoke-old applies to agent certificates; a collector certificate is withdrawn by renewing the CA")
	case *days < 0 || *days > maxDays:
		return c.usageError(set, fmt.Sprintf("--days %d: want 1 to %d", *days, maxDays))
	}
	opts := pki.Options{Clock: c.clock, Validity: time.Duration(*days) * 24 * time.Hour}

	if *collector {
		var hostList []string
		if *hosts != "" {
			hostList = strings.Split(*hosts, ",")
		}
		renewed, old, err := pki.RenewCollector(*dir, hostList, opts)
		if err != nil {
			return c.fail("renew", err)
		}
		c.reportRenewal(*dir, pki.CollectorCertFile, pki.CollectorKeyFile, renewed, old)
		fmt.Fprintf(c.stdout, "the collector presents the new certificate to agents within seconds, without a restart;\n"+
			"agents need nothing new: they trust the CA (%s), not the certificate\n", pki.CACertFile)
		return exitOK
	}

	agents, err := registry.Read(filepath.Join(*dir, registry.FileName))
	if err != nil {
		return c.fail("renew", err)
	}
	// Each ИДК is independent: one that fails does not stop the others.
	code := exitOK
	for _, n := range nums.values {
		if !slices.ContainsFunc(agents, func(a registry.Agent) bool { return a.NumIDK == n }) {
			code = c.fail("renew", fmt.Errorf("ИДК %s is not enrolled in %s: enrol it with '%s agent --num-idk %s --kod-to KOD_TO'",
				n, filepath.Join(*dir, registry.FileName), progName, n))
			continue
		}
		renewed, old, err := pki.RenewAgent(*dir, n, opts)
		if err != nil {
			code = c.fail("renew", err)
			continue
		}
		c.reportRenewal(*dir, pki.AgentCertFile(n), pki.AgentKeyFile(n), renewed, old)
		if *revokeOld {
			if err := c.revokeOld(*dir, old, opts); err != nil {
				code = c.fail("renew", err)
				continue
			}
		}
		fmt.Fprintf(c.stdout, "copy %s and %s to the scanner PC of ИДК %s, over the files named by cert and key\n"+
			"in the [collector] section of its agent.toml; the agent presents the new certificate on its\n"+
			"next connection, within seconds, without a restart (ca.crt is unchanged)\n",
			pki.AgentCertFile(n), pki.AgentKeyFile(n), n)
	}
	return code
}

// revokeOld revokes the certificate a renewal replaced.
func (c *cli) revokeOld(dir string, old *x509.Certificate, opts pki.Options) error {
	if old.SerialNumber == nil {
		return errors.New("pki: replaced certificate has no serial number")
	}
	// Through "0x" so that pki.Revoke cannot take a short serial for a
	// NUM_IDK.
	if _, err := pki.Revoke(dir, "0x"+old.SerialNumber.Text(16), opts); err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "revoked the replaced certificate, serial %s, in %s: the ИДК cannot connect until it has the new files\n",
		pki.FormatSerial(old.SerialNumber), filepath.Join(dir, pki.CRLFile))
	return nil
}

func (c *cli) reportRenewal(dir, certName, keyName string, renewed, old *x509.Certificate) {
	c.reportLeaf(dir, certName, keyName, renewed, "renewed")
	fmt.Fprintf(c.stdout, "  replaces serial %s (valid until %s), which stays valid until then unless revoked:\n"+
		"  %s revoke --dir %s --serial %s\n",
		pki.FormatSerial(old.SerialNumber), old.NotAfter.UTC().Format(time.DateOnly),
		progName, dir, pki.FormatSerial(old.SerialNumber))
}
