package check_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/quic-go/quic-go"

	"idk/agent/check"
	"idk/agent/spool"
	"idk/collector/pki"
	"idk/collector/server"
	"idk/collector/store"
	"idk/drivers/modbus"
	"idk/protocol"
	"idk/protocol/transport"
	"idk/simulator/gpssim"
	"idk/simulator/plc"
	"idk/simulator/simclock"
)

const (
	numIDK = "850591"
	kodTO  = "10216100"
)

// site is an installation: a real collector (server, store, registry
// answer and certificates) and a real Modbus controller on loopback, and
// the folders an agent needs. Tests break one piece at a time.
type site struct {
	dir       string
	certs     string // the collector's PKI directory
	collector string // its QUIC address
	plc       string // the controller's TCP address

	// The agent's settings, written to agent.toml by config.
	outputDir, spoolPath, cert, key, ca string
	num                                 string
	gpsPort                             string // a mobile ИДК's receiver; "": none
}

func newSite(t *testing.T) *site {
	t.Helper()
	dir := t.TempDir()
	s := &site{dir: dir, certs: filepath.Join(dir, "pki"), num: numIDK}
	if _, err := pki.CreateCA(s.certs, pki.Options{}); err != nil {
		t.Fatal(err)
	}
	if _, err := pki.IssueCollector(s.certs, []string{"localhost", "127.0.0.1"}, pki.Options{}); err != nil {
		t.Fatal(err)
	}
	if _, err := pki.IssueAgent(s.certs, numIDK, pki.Options{}); err != nil {
		t.Fatal(err)
	}
	s.cert = filepath.Join(s.certs, pki.AgentCertFile(numIDK))
	s.key = filepath.Join(s.certs, pki.AgentKeyFile(numIDK))
	s.ca = filepath.Join(s.certs, pki.CACertFile)
	s.outputDir = filepath.Join(dir, "out")
	s.spoolPath = filepath.Join(dir, "spool", "spool.db")
	for _, d := range []string{s.outputDir, filepath.Dir(s.spoolPath)} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	s.collector = startCollector(t, s.certs)

	ctl, err := plc.New(plcMap())
	if err != nil {
		t.Fatal(err)
	}
	if err := ctl.SetSignal(modbus.Powered, true); err != nil {
		t.Fatal(err)
	}
	srv, err := ctl.ServeTCP("127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	s.plc = srv.Addr()
	return s
}

func plcMap() modbus.Map {
	return modbus.Map{
		Powered:  modbus.Point{Source: modbus.Coil, Address: 0},
		Ready:    modbus.Point{Source: modbus.Coil, Address: 1},
		Scanning: modbus.Point{Source: modbus.DiscreteInput, Address: 0},
	}
}

// startCollector runs the collector's QUIC side on loopback, with ИДК
// 850591 enrolled, and returns its address.
func startCollector(t *testing.T, certs string) string {
	t.Helper()
	tlsConf, err := transport.ServerTLS(filepath.Join(certs, pki.CollectorCertFile), filepath.Join(certs, pki.CollectorKeyFile), filepath.Join(certs, pki.CACertFile))
	if err != nil {
		t.Fatal(err)
	}
	tlsConf.NextProtos = []string{protocol.ALPN}
	st, err := store.Open(filepath.Join(t.TempDir(), "data"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	srv := server.New(server.Config{Store: st, Metrics: server.NewMetrics(prometheus.NewRegistry()),
		Identify: func(cs tls.ConnectionState) (string, error) {
			if len(cs.PeerCertificates) == 0 {
				return "", errors.New("no certificate")
			}
			return pki.IdentityFromCert(cs.PeerCertificates[0])
		},
		Enrolled: func(n string) (string, bool) { return kodTO, n == numIDK },
	})
	ln, err := quic.ListenAddr("127.0.0.1:0", tlsConf, transport.QUICConfig())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { srv.Serve(ctx, ln); close(done) }()
	t.Cleanup(func() { cancel(); ln.Close(); <-done })
	return ln.Addr().String()
}

// config writes agent.toml and returns its path.
func (s *site) config(t *testing.T) string {
	t.Helper()
	q := func(v string) string { return fmt.Sprintf("%q", v) }
	typeIDK, gps := "2", ""
	if s.gpsPort != "" {
		typeIDK, gps = "1", "gps_port = "+q(s.gpsPort)
	}
	text := strings.Join([]string{
		"[telemetry]", gps,
		"[device]", "num_idk = " + q(s.num), "type_idk = " + typeIDK, "kod_to = " + q(kodTO), "disl_idk = 1",
		"[scanner]", "output_dir = " + q(s.outputDir),
		"[collector]", "addr = " + q(s.collector), "server_name = \"localhost\"",
		"ca = " + q(s.ca), "cert = " + q(s.cert), "key = " + q(s.key),
		"[spool]", "path = " + q(s.spoolPath),
		"[controller]", "transport = \"tcp\"", "address = " + q(s.plc), "timeout = \"1s\"",
		"[controller.map.powered]", "source = \"coil\"", "address = 0",
		"[controller.map.ready]", "source = \"coil\"", "address = 1",
		"[controller.map.scanning]", "source = \"discrete_input\"", "address = 0",
	}, "\n") + "\n"
	path := filepath.Join(s.dir, "agent.toml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func run(t *testing.T, s *site, opt check.Options) check.Report {
	t.Helper()
	if opt.Timeout == 0 {
		opt.Timeout = 3 * time.Second
	}
	r := check.Run(context.Background(), s.config(t), opt)
	var out bytes.Buffer
	r.Print(&out)
	t.Logf("report:\n%s", out.String())
	return r
}

// want checks that the check named name has status st and that its line
// says every one of texts.
func want(t *testing.T, r check.Report, name string, st check.Status, texts ...string) {
	t.Helper()
	res, ok := r.Find(name)
	if !ok {
		t.Errorf("no %s check in the report", name)
		return
	}
	if res.Status != st {
		t.Errorf("%s: %s, want %s: %s", name, res.Status, st, res.Line())
	}
	for _, text := range texts {
		if !strings.Contains(res.Line(), text) {
			t.Errorf("%s: line %q does not say %q", name, res.Line(), text)
		}
	}
}

func TestWorkingSiteAllPass(t *testing.T) {
	s := newSite(t)
	r := run(t, s, check.Options{})
	if !r.Passed() {
		t.Error("a working installation did not pass")
	}
	for _, name := range []string{check.NameConfig, check.NameOutputDir, check.NameSpool, check.NameController,
		check.NameCertFiles, check.NameCertKey, check.NameCertCA, check.NameCertExpiry, check.NameCertIdentity,
		check.NameCollector, check.NameClock} {
		want(t, r, name, check.OK)
	}
	want(t, r, check.NameGPS, check.Skip)
	want(t, r, check.NameOutputDir, check.OK, s.outputDir, "папка сканера читается / scanner output folder is readable")
	want(t, r, check.NameController, check.OK, "powered=true")
	want(t, r, check.NameCertExpiry, check.OK, "days left")
}

func TestRunningAgentsSpoolIsLeftAlone(t *testing.T) {
	s := newSite(t)
	// The running agent's spool, locked as the agent holds it.
	sp, err := spool.Open(s.spoolPath)
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	before, err := os.ReadFile(s.spoolPath)
	if err != nil {
		t.Fatal(err)
	}
	r := run(t, s, check.Options{})
	want(t, r, check.NameSpool, check.OK, "running agent")
	if after, _ := os.ReadFile(s.spoolPath); !bytes.Equal(before, after) {
		t.Error("the check changed the running agent's spool")
	}
	if entries, _ := os.ReadDir(filepath.Dir(s.spoolPath)); len(entries) != 1 {
		t.Errorf("the check left files beside the spool: %v", entries)
	}
	// And still usable by the agent.
	if err := sp.Update(func(*spool.Tx) error { return nil }); err != nil {
		t.Errorf("spool after the check: %v", err)
	}
}

func TestBrokenSiteNamesEachFailure(t *testing.T) {
	tests := []struct {
		name    string
		breakIt func(t *testing.T, s *site)
		check   string
		texts   []string
	}{
		{"missing output folder", func(t *testing.T, s *site) { s.outputDir = filepath.Join(s.dir, "no-such-folder") },
			check.NameOutputDir, []string{"scanner output folder does not exist", "no-such-folder", "scanner.output_dir"}},
		{"unwritable spool", func(t *testing.T, s *site) {
			// A file where the spool's folder should be: not writable
			// even by root, who ignores permissions.
			blocker := filepath.Join(s.dir, "blocker")
			if err := os.WriteFile(blocker, nil, 0o644); err != nil {
				t.Fatal(err)
			}
			s.spoolPath = filepath.Join(blocker, "spool.db")
		}, check.NameSpool, []string{"spool folder is not writable", "spool.path"}},
		{"wrong CA", func(t *testing.T, s *site) {
			other := filepath.Join(s.dir, "other-pki")
			if _, err := pki.CreateCA(other, pki.Options{}); err != nil {
				t.Fatal(err)
			}
			if _, err := pki.IssueAgent(other, numIDK, pki.Options{}); err != nil {
				t.Fatal(err)
			}
			s.cert, s.key = filepath.Join(other, pki.AgentCertFile(numIDK)), filepath.Join(other, pki.AgentKeyFile(numIDK))
		}, check.NameCertCA, []string{"certificate is not signed by the collector's CA"}},
		{"expired certificate", func(t *testing.T, s *site) {
			// Issued for a day, a week ago, by the right CA.
			weekAgo := simclock.New(time.Now().Add(-7 * 24 * time.Hour))
			if _, err := pki.IssueAgent(s.certs, numIDK, pki.Options{Clock: weekAgo, Validity: 24 * time.Hour, Force: true}); err != nil {
				t.Fatal(err)
			}
		}, check.NameCertExpiry, []string{"certificate has expired", "pki renew --num-idk " + numIDK}},
		{"collector not listening", func(t *testing.T, s *site) { s.collector = closedUDP(t) },
			check.NameCollector, []string{"collector does not answer", "collector.addr"}},
		{"controller not answering", func(t *testing.T, s *site) { s.plc = closedTCP(t) },
			check.NameController, []string{"controller does not answer", "Modbus tcp"}},
		{"certificate of another ИДК", func(t *testing.T, s *site) { s.num = "850599" },
			check.NameCertIdentity, []string{"certificate is for another ИДК"}},
		{"not enrolled", func(t *testing.T, s *site) {
			// A good certificate of the right CA, for an ИДК the registry
			// does not know.
			if _, err := pki.IssueAgent(s.certs, "850592", pki.Options{}); err != nil {
				t.Fatal(err)
			}
			s.num = "850592"
			s.cert, s.key = filepath.Join(s.certs, pki.AgentCertFile("850592")), filepath.Join(s.certs, pki.AgentKeyFile("850592"))
		}, check.NameCollector, []string{"collector refused this ИДК", "not enrolled"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSite(t)
			tt.breakIt(t, s)
			r := run(t, s, check.Options{})
			want(t, r, tt.check, check.Fail, tt.texts...)
			if r.Passed() {
				t.Error("report passed")
			}
		})
	}
}

func TestGPS(t *testing.T) {
	s := newSite(t)
	s.gpsPort = "COM7"
	// A receiver that speaks: two epochs of a fix at the post.
	speaking := func(port string, baud int) (io.ReadCloser, error) {
		if port != "COM7" {
			return nil, fmt.Errorf("opened %q, want COM7", port)
		}
		r, w := io.Pipe()
		sim, err := gpssim.New(w, gpssim.Config{Start: gpssim.Point{Lat: 42.98, Lon: 47.5}})
		if err != nil {
			return nil, err
		}
		go func() {
			at := time.Now()
			for i := range 2 {
				if sim.WriteEpoch(at.Add(time.Duration(i)*time.Second), gpssim.State{Pos: gpssim.Point{Lat: 42.98, Lon: 47.5}, Fix: true}) != nil {
					return
				}
			}
		}()
		return r, nil
	}
	r := run(t, s, check.Options{OpenGPS: speaking})
	want(t, r, check.NameGPS, check.OK, "GPS receiver answers", "42.98")

	// A receiver that says nothing.
	var silent *io.PipeWriter
	r = run(t, s, check.Options{Timeout: 2 * time.Second, OpenGPS: func(string, int) (io.ReadCloser, error) {
		var r *io.PipeReader
		r, silent = io.Pipe()
		return r, nil
	}})
	want(t, r, check.NameGPS, check.Fail, "GPS receiver says nothing", "COM7")
	silent.Close()

	// No such port.
	r = run(t, s, check.Options{OpenGPS: func(port string, _ int) (io.ReadCloser, error) {
		return nil, fmt.Errorf("open %s: no such port", port)
	}})
	want(t, r, check.NameGPS, check.Fail, "GPS port cannot be opened", "no such port")
}

func TestWarnings(t *testing.T) {
	s := newSite(t)
	// Twenty days left.
	if _, err := pki.IssueAgent(s.certs, numIDK, pki.Options{Validity: 20 * 24 * time.Hour, Force: true}); err != nil {
		t.Fatal(err)
	}
	// This PC's clock five minutes behind the collector's.
	r := run(t, s, check.Options{Clock: simclock.New(time.Now().Add(-5 * time.Minute))})
	want(t, r, check.NameCertExpiry, check.Warn, "certificate expires soon", "20 days left")
	want(t, r, check.NameClock, check.Warn, "clock differs from the collector's", "5m0s")
	if !r.Passed() {
		t.Error("warnings failed the report")
	}
}

func TestBadConfigIsTheOnlyResult(t *testing.T) {
	path := filepath.Join(t.TempDir(), "agent.toml")
	if err := os.WriteFile(path, []byte("[device]\nnum_idk = \"850591\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := check.Run(context.Background(), path, check.Options{})
	if len(r) != 1 || r.Passed() {
		t.Fatalf("report %v, want one failure", r)
	}
	want(t, r, check.NameConfig, check.Fail, "configuration is not valid", "device.kod_to")
}

// closedUDP is a loopback UDP address nothing listens on.
func closedUDP(t *testing.T) string {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := c.LocalAddr().String()
	c.Close()
	return addr
}

// closedTCP is a loopback TCP address nothing listens on.
func closedTCP(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}
