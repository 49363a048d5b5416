// Package harness runs the real programs — idk-collector, idk-agent and
// idk-sim — as processes on loopback, with real certificates, and checks
// what the collector holds against what the simulated scanners wrote. The
// demo, the end-to-end tests and the benchmarks all use it.
package harness

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"idk/internal/filehash"
)

// Env is a working folder with certificates and configs for one collector
// and its agents.
type Env struct {
	Dir      string // everything lives below
	Bin      string // folder with idk-collector, idk-agent, idk-sim
	QUICAddr string
	HTTPAddr string
	Agents   []Agent
	root     string
	// Backends is what the collector keeps its index and files in:
	// Embedded or Region (Options.Backends).
	Backends string
	region   *regionBackends // Region's database and bucket
}

// Agent is one simulated ИДК.
type Agent struct {
	NumIDK      string
	KodTO       string
	OutputDir   string // where its scanner writes
	ConfigPath  string
	MetricsAddr string
}

// Options shape an Env.
type Options struct {
	Agents  int   // default 1
	MaxRate int64 // agent's bytes/s cap, 0: none
	Settle  time.Duration
	// CollectorRoot puts the collector's data elsewhere (a small file
	// system, say); default Dir/collector-data.
	CollectorRoot string
	// CollectorMinFree is the collector's store.min_free_bytes; default 0.
	CollectorMinFree uint64
	// Posts are the customs bodies (KOD_TO) the agents are enrolled at,
	// agent i at Posts[i % len(Posts)]; default every agent at 10216100.
	Posts []string
	// Backends: Embedded or Region; default DefaultBackends().
	Backends string
}

// NewEnv creates certificates (with the collector's own pki command) and
// configuration files in dir.
func NewEnv(dir, bin string, opt Options) (*Env, error) {
	if opt.Agents <= 0 {
		opt.Agents = 1
	}
	if opt.Settle <= 0 {
		opt.Settle = 300 * time.Millisecond
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	// Programs run with the working folder as their current directory.
	if bin, err = filepath.Abs(bin); err != nil {
		return nil, err
	}
	if opt.Backends == "" {
		opt.Backends = DefaultBackends()
	}
	e := &Env{Dir: dir, Bin: bin, root: opt.CollectorRoot, Backends: opt.Backends}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	regionConf := ""
	switch opt.Backends {
	case Embedded:
	case Region:
		if e.region, regionConf, err = newRegion(dir); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("harness: backends %q: want %q or %q", opt.Backends, Embedded, Region)
	}
	if e.root == "" {
		e.root = filepath.Join(dir, "collector-data")
	}
	if e.QUICAddr, err = freeAddr("udp"); err != nil {
		return nil, err
	}
	if e.HTTPAddr, err = freeAddr("tcp"); err != nil {
		return nil, err
	}
	certs := filepath.Join(dir, "certs")
	var nums []string
	for i := range opt.Agents {
		a := Agent{
			NumIDK:    strconv.Itoa(850591 + i),
			KodTO:     "10216100",
			OutputDir: filepath.Join(dir, fmt.Sprintf("scanner-%d", i)),
		}
		if len(opt.Posts) > 0 {
			a.KodTO = opt.Posts[i%len(opt.Posts)]
		}
		if a.MetricsAddr, err = freeAddr("tcp"); err != nil {
			return nil, err
		}
		nums = append(nums, a.NumIDK)
		e.Agents = append(e.Agents, a)
	}
	out, err := exec.Command(filepath.Join(bin, "idk-collector"), "pki", "demo", "--dir", certs,
		"--num-idk", strings.Join(nums, ",")).CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("harness: pki demo: %v: %s", err, out)
	}
	for _, a := range e.Agents {
		if a.KodTO == "10216100" {
			continue // the demo's own
		}
		out, err := exec.Command(filepath.Join(bin, "idk-collector"), "pki", "agent", "--dir", certs,
			"--num-idk", a.NumIDK, "--kod-to", a.KodTO, "--registry-only").CombinedOutput()
		if err != nil {
			return nil, fmt.Errorf("harness: enrol %s at %s: %v: %s", a.NumIDK, a.KodTO, err, out)
		}
	}
	// The old shared API token: these tests post as the other systems did
	// before accounts, naming "by" themselves; the console's tests sign in
	// with accounts of their own.
	collectorConf := fmt.Sprintf(`# written by the test harness
[api]
token_file = "api.token"
[listen]
quic = %q
http = %q
[tls]
ca = "certs/ca.crt"
cert = "certs/collector.crt"
key = "certs/collector.key"
[store]
root = %q
timezone = "Europe/Moscow"
min_free_bytes = %d
%s`, e.QUICAddr, e.HTTPAddr, e.root, opt.CollectorMinFree, regionConf)
	if err := os.WriteFile(filepath.Join(dir, "collector.toml"), []byte(collectorConf), 0o644); err != nil {
		return nil, err
	}
	// The simulated scanner's operators (idk_oper01..06), so that table 1
	// of the daily report names them (report.roster, default roster.toml).
	var roster strings.Builder
	roster.WriteString("# written by the test harness: the simulated scanner's operators\n")
	for i := 1; i <= 6; i++ {
		fmt.Fprintf(&roster, "[[officer]]\nlogin = \"idk_oper%02d\"\nfio = \"ОПЕРАТОР %02d ИДК\"\nlnp = \"%03d\"\n", i, i, 50+i)
	}
	if err := os.WriteFile(filepath.Join(dir, "roster.toml"), []byte(roster.String()), 0o644); err != nil {
		return nil, err
	}
	for i := range e.Agents {
		a := &e.Agents[i]
		if err := os.MkdirAll(a.OutputDir, 0o755); err != nil {
			return nil, err
		}
		a.ConfigPath = filepath.Join(dir, "agent-"+a.NumIDK+".toml")
		conf := fmt.Sprintf(`# written by the test harness
[device]
num_idk = %q
type_idk = 2
kod_to = %q
naim_to = "ДАГЕСТАНСКАЯ"
naim_ztk = "МАПП ЯРАГ-КАЗМАЛЯР"
disl_idk = 1
[scanner]
output_dir = %q
settle = %q
rescan = "5s"
form_grace = "3s"
[collector]
addr = %q
server_name = "localhost"
ca = "certs/ca.crt"
cert = "certs/agent-%s.crt"
key = "certs/agent-%s.key"
max_rate = %d
[spool]
path = "spool-%s.db"
[metrics]
listen = %q
`, a.NumIDK, a.KodTO, a.OutputDir, opt.Settle.String(), e.QUICAddr, a.NumIDK, a.NumIDK, opt.MaxRate, a.NumIDK, a.MetricsAddr)
		if err := os.WriteFile(a.ConfigPath, []byte(conf), 0o644); err != nil {
			return nil, err
		}
	}
	return e, nil
}

// CollectorRoot is where the collector stores data.
func (e *Env) CollectorRoot() string { return e.root }

// taken remembers the addresses handed out in this process: the kernel can
// give a port just released to the next caller, and two programs of one
// Env must never be told to listen on the same one.
var taken sync.Map

func freeAddr(network string) (string, error) {
	for range 100 {
		a, err := pickAddr(network)
		if err != nil {
			return "", err
		}
		if _, dup := taken.LoadOrStore(network+" "+a, true); dup {
			continue
		}
		// The collector also listens on TCP at its QUIC port (the fallback
		// where UDP is blocked), so a UDP port is handed out only with the
		// same TCP port free and reserved.
		if network == "udp" {
			if _, dup := taken.LoadOrStore("tcp "+a, true); dup || !canListen("tcp", a) {
				continue
			}
		}
		return a, nil
	}
	return "", errors.New("harness: no free port after 100 tries")
}

// pickAddr returns a port on 127.0.0.1 that network can listen on now,
// below the kernel's range of ephemeral ports where it can: a port the
// kernel hands out (for a listener on port 0, or as the local end of any
// outgoing connection, of which a region's PostgreSQL and S3 clients make
// many) can be taken by another socket between the pick and the bind of
// the program told to use it (seen in CI: "bind: address already in use").
func pickAddr(network string) (string, error) {
	if lo, hi, ok := belowEphemeral(); ok {
		for range 50 {
			a := net.JoinHostPort("127.0.0.1", strconv.Itoa(lo+rand.IntN(hi-lo)))
			if canListen(network, a) {
				return a, nil
			}
		}
	}
	if network == "udp" {
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			return "", err
		}
		defer c.Close()
		return c.LocalAddr().String(), nil
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// belowEphemeral is a range of ports [lo, hi) under the kernel's
// ephemeral ones (Linux: net.ipv4.ip_local_port_range); ok is false where
// that range is not known or leaves too little room.
func belowEphemeral() (lo, hi int, ok bool) {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 0, 0, false
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return 0, 0, false
	}
	first, err := strconv.Atoi(f[0])
	if err != nil || first < 12000 {
		return 0, 0, false
	}
	return 10000, first, true
}

// canListen reports whether network can listen on addr now.
func canListen(network, addr string) bool {
	if network == "udp" {
		c, err := net.ListenPacket("udp", addr)
		if err != nil {
			return false
		}
		c.Close()
		return true
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return false
	}
	l.Close()
	return true
}

// Proc is a running program.
type Proc struct {
	Name string
	cmd  *exec.Cmd
	log  *os.File
	done chan struct{}
	err  error
}

// Start runs a program from the Env's bin folder, logging to Dir/<name>.log.
func (e *Env) Start(name, program string, args ...string) (*Proc, error) {
	return startProc(e.Dir, name, filepath.Join(e.Bin, program), args...)
}

// startProc runs the program at path in dir, logging to dir/<name>.log.
func startProc(dir, name, path string, args ...string) (*Proc, error) {
	logf, err := os.OpenFile(filepath.Join(dir, name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(path, args...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("harness: start %s: %w", filepath.Base(path), err)
	}
	p := &Proc{Name: name, cmd: cmd, log: logf, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	return p, nil
}

// StartCollector starts the collector and waits until it serves: its
// /healthz answers 200 (a collector of a region standing by answers 503).
func (e *Env) StartCollector() (*Proc, error) {
	p, err := e.Start("collector", "idk-collector", "-config", filepath.Join(e.Dir, "collector.toml"))
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if r, err := http.Get("http://" + e.HTTPAddr + "/healthz"); err == nil {
			r.Body.Close()
			if r.StatusCode == http.StatusOK {
				return p, nil
			}
		}
		select {
		case <-p.done:
			return nil, fmt.Errorf("harness: collector exited: %v (see %s)", p.err, filepath.Join(e.Dir, "collector.log"))
		case <-time.After(50 * time.Millisecond):
		}
	}
	p.Kill()
	return nil, errors.New("harness: collector did not come up in 20s")
}

// StartAgent starts agent i.
func (e *Env) StartAgent(i int) (*Proc, error) {
	return e.Start("agent-"+e.Agents[i].NumIDK, "idk-agent", "-config", e.Agents[i].ConfigPath)
}

// Kill sends SIGKILL and waits for the process to go.
func (p *Proc) Kill() {
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// Stop sends SIGTERM and waits up to 10 s, then kills.
func (p *Proc) Stop() error {
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return nil
	case <-time.After(10 * time.Second):
		p.Kill()
		return fmt.Errorf("harness: %s did not stop on SIGTERM", p.Name)
	}
}

// Exited reports whether the process has ended.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Pid is the process id.
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// PeakRSS reads the process's peak resident set (VmHWM) in bytes; Linux only.
func PeakRSS(pid int) (int64, error) {
	_, peak, err := RSS(pid)
	return peak, err
}

// RSS reads a process's resident set now (VmRSS) and at its peak (VmHWM),
// in bytes; Linux only.
func RSS(pid int) (now, peak int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	field := func(name string) (int64, error) {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, name+":"); ok {
				kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
				return kb << 10, err
			}
		}
		return 0, errors.New("no " + name + " in /proc status")
	}
	if now, err = field("VmRSS"); err != nil {
		return 0, 0, err
	}
	peak, err = field("VmHWM")
	return now, peak, err
}

// StoredFile is one entry of the collector's /api/v1/files listing.
type StoredFile struct {
	NumIDK   string `json:"num_idk"`
	NumSnim  string `json:"num_snim"`
	Name     string `json:"name"`
	StoredAs string `json:"stored_as"`
	Kind     string `json:"kind"`
	Size     int64  `json:"size"`
	SHA256   string `json:"sha256"`
}

// APIGet sends an authenticated GET to the collector's API, with the
// token the collector created in the working folder.
func (e *Env) APIGet(path string) (*http.Response, error) {
	tok, err := os.ReadFile(filepath.Join(e.Dir, "api.token"))
	if err != nil {
		return nil, fmt.Errorf("harness: api token: %w", err)
	}
	req, err := http.NewRequest(http.MethodGet, "http://"+e.HTTPAddr+path, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
	return http.DefaultClient.Do(req)
}

// Stored lists what the collector has indexed.
func (e *Env) Stored() ([]StoredFile, error) { return e.StoredOf("") }

// StoredOf lists what the collector has indexed as ИДК numIDK's ("" for
// every ИДК).
func (e *Env) StoredOf(numIDK string) ([]StoredFile, error) {
	path := "/api/v1/files"
	if numIDK != "" {
		path += "?num_idk=" + numIDK
	}
	r, err := e.APIGet(path)
	if err != nil {
		return nil, err
	}
	defer r.Body.Close()
	if r.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(r.Body)
		return nil, fmt.Errorf("harness: files listing: %s: %s", r.Status, b)
	}
	var files []StoredFile
	return files, json.NewDecoder(r.Body).Decode(&files)
}

// Metric reads one sample's value from a Prometheus endpoint; series is
// the name with labels exactly as exposed, e.g. `idk_collector_connections`.
func Metric(addr, series string) (float64, error) {
	r, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return 0, err
	}
	defer r.Body.Close()
	b, err := io.ReadAll(r.Body)
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			return strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
	}
	return 0, fmt.Errorf("harness: no series %s at %s", series, addr)
}

// Expected is what a scanner wrote: per scan, per file name, the SHA-256
// of the final content. Forms are compared with the last stored revision.
type Expected map[string]map[string]string

// Report is the outcome of Verify.
type Report struct {
	Scans, Files       int   // expected
	Stored, Bytes      int64 // found and byte-identical
	Missing, Corrupted []string
	Duplicated         []string
}

// OK reports whether everything arrived exactly once and intact.
func (r Report) OK() bool {
	return len(r.Missing) == 0 && len(r.Corrupted) == 0 && len(r.Duplicated) == 0
}

func (r Report) String() string {
	return fmt.Sprintf("scans=%d files=%d stored=%d bytes=%d missing=%d corrupted=%d duplicated=%d",
		r.Scans, r.Files, r.Stored, r.Bytes, len(r.Missing), len(r.Corrupted), len(r.Duplicated))
}

// Verify compares the collector's index and the bytes on its disk with
// what the scanner wrote. Every stored file is hashed again from disk.
func (e *Env) Verify(exp Expected) (Report, error) { return e.VerifyOf("", exp) }

// VerifyOf is Verify over what the collector credits to ИДК numIDK alone
// ("" for every ИДК): with another ИДК sending the same scan numbers and
// names, only this one's files count.
func (e *Env) VerifyOf(numIDK string, exp Expected) (Report, error) {
	files, err := e.StoredOf(numIDK)
	if err != nil {
		return Report{}, err
	}
	byName := map[string][]StoredFile{} // num_snim/name -> entries
	lastForm := map[string]StoredFile{} // num_snim -> highest form revision
	for _, f := range files {
		if f.Kind == "form" {
			if cur, ok := lastForm[f.NumSnim]; !ok || f.Name > cur.Name {
				lastForm[f.NumSnim] = f
			}
			continue
		}
		byName[f.NumSnim+"/"+f.Name] = append(byName[f.NumSnim+"/"+f.Name], f)
	}
	var rep Report
	for snim, names := range exp {
		rep.Scans++
		for name, sum := range names {
			rep.Files++
			key := snim + "/" + name
			var got []StoredFile
			if strings.HasSuffix(name, ".xml") {
				if f, ok := lastForm[snim]; ok {
					got = []StoredFile{f}
				}
			} else {
				got = byName[key]
			}
			switch {
			case len(got) == 0:
				rep.Missing = append(rep.Missing, key)
				continue
			case len(got) > 1:
				rep.Duplicated = append(rep.Duplicated, key)
			}
			disk, size, err := e.hashStored(got[0].StoredAs)
			if err != nil || hex.EncodeToString(disk) != sum || got[0].SHA256 != sum {
				rep.Corrupted = append(rep.Corrupted, key)
				continue
			}
			rep.Stored++
			rep.Bytes += size
		}
	}
	return rep, nil
}

// hashStored returns the SHA-256 and size of a stored file, read where
// the collector keeps it: under its root, or in the region's bucket.
func (e *Env) hashStored(storedAs string) ([]byte, int64, error) {
	if e.region == nil {
		return filehash.File(filepath.Join(e.CollectorRoot(), filepath.FromSlash(storedAs)))
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r, _, err := e.region.files.Open(ctx, storedAs)
	if err != nil {
		return nil, 0, err
	}
	defer r.Close()
	h := sha256.New()
	n, err := io.Copy(h, r)
	if err != nil {
		return nil, 0, fmt.Errorf("harness: read %s: %w", storedAs, err)
	}
	return h.Sum(nil), n, nil
}

// WaitStored polls until the collector holds every expected file (or ctx
// ends) and returns the final verification. It gives up at once if one of
// the watched processes exits.
func (e *Env) WaitStored(ctx context.Context, exp Expected, watch ...*Proc) (Report, error) {
	return e.WaitStoredOf(ctx, "", exp, watch...)
}

// WaitStoredOf is WaitStored over ИДК numIDK's files alone (see VerifyOf).
func (e *Env) WaitStoredOf(ctx context.Context, numIDK string, exp Expected, watch ...*Proc) (Report, error) {
	for {
		for _, p := range watch {
			if p.Exited() {
				return Report{}, fmt.Errorf("harness: %s exited (%v) while waiting; see %s.log", p.Name, p.err, filepath.Join(e.Dir, p.Name))
			}
		}
		rep, err := e.VerifyOf(numIDK, exp)
		if err == nil && len(rep.Missing) == 0 {
			return rep, nil
		}
		select {
		case <-ctx.Done():
			if err != nil {
				return rep, err
			}
			return rep, fmt.Errorf("harness: %s after waiting: %w", rep, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// BuildPrograms builds idk-agent, idk-collector and idk-sim into a new
// temporary folder (with the race detector if race) and returns it; the
// caller removes it. Test packages that run the programs call it from
// their TestMain.
func BuildPrograms(race bool) (string, error) {
	dir, err := os.MkdirTemp("", "idk-bin-")
	if err != nil {
		return "", err
	}
	args := []string{"build", "-o", dir + "/"}
	if race {
		args = append(args, "-race")
	}
	args = append(args, "idk/agent/cmd/idk-agent", "idk/collector/cmd/idk-collector", "idk/simulator/cmd/idk-sim")
	if out, err := exec.Command("go", args...).CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return "", fmt.Errorf("building the programs: %v\n%s", err, out)
	}
	return dir, nil
}

// DumpLogsOnFailure prints the tail of each program's log in env when t
// fails, so a failing end-to-end test shows what the processes said.
func DumpLogsOnFailure(t testing.TB, env *Env) {
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		logs, _ := filepath.Glob(filepath.Join(env.Dir, "*.log"))
		for _, l := range logs {
			b, _ := os.ReadFile(l)
			if len(b) > 60000 {
				b = b[len(b)-60000:]
			}
			t.Logf("==== %s (tail)\n%s", filepath.Base(l), b)
		}
	})
}
