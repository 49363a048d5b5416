package harness

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// The system peers of PeerBench (OpenSSH's scp and rsync over ssh, nginx
// taking HTTPS PUT), each run privately in the bench folder, and how their
// CPU is counted.

// toolPackage names, for each program a peer runs, the Debian package
// that has it.
var toolPackage = map[string]string{
	"ssh": "openssh-client", "scp": "openssh-client", "ssh-keygen": "openssh-client",
	"sshd": "openssh-server", "rsync": "rsync", "nginx": "nginx",
}

// peerTools lists, per system peer, the programs it runs.
var peerTools = map[string][]string{
	"scp":   {"ssh", "scp", "ssh-keygen", "sshd"},
	"rsync": {"ssh", "ssh-keygen", "sshd", "rsync"},
	"nginx": {"nginx"},
}

// findTool looks for a program on PATH and then in the sbin folders,
// which a non-login root shell often leaves out of PATH (sshd, nginx).
func findTool(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, dir := range []string{"/usr/sbin", "/sbin", "/usr/local/sbin"} {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	pkg := toolPackage[name]
	return "", fmt.Errorf("peerbench: %s not found: install the Debian package %s (apt install %s), or leave this peer out with -peers",
		name, pkg, pkg)
}

// userHZ is the unit of the times in /proc/<pid>/stat: USER_HZ, 100 on
// every Linux architecture Go runs on (sysconf(_SC_CLK_TCK)).
const userHZ = 100

// procStat is what the benchmarks need of one /proc/<pid>/stat.
type procStat struct {
	ppid   int
	cpu    time.Duration // utime + stime: the process's own
	reaped time.Duration // cutime + cstime: its children it has waited for
}

// procCPU is a process's own user and system CPU time so far.
func procCPU(pid int) (time.Duration, error) {
	st, err := readProcStat(pid)
	return st.cpu, err
}

// readProcStat parses /proc/<pid>/stat. The command name (field 2) may
// hold spaces and parentheses, so the fields are counted from its last ')'.
func readProcStat(pid int) (procStat, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procStat{}, err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return procStat{}, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	// f[0] is field 3 (state): field k is f[k-3].
	f := strings.Fields(s[i+1:])
	if len(f) < 15 {
		return procStat{}, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f)+2)
	}
	ppid, err := strconv.Atoi(f[1])
	if err != nil {
		return procStat{}, err
	}
	var ticks [4]int64 // utime, stime, cutime, cstime: fields 14 to 17
	for i := range ticks {
		if ticks[i], err = strconv.ParseInt(f[14+i-3], 10, 64); err != nil {
			return procStat{}, fmt.Errorf("/proc/%d/stat: %w", pid, err)
		}
	}
	dur := func(t int64) time.Duration { return time.Duration(t) * time.Second / userHZ }
	return procStat{ppid: ppid, cpu: dur(ticks[0] + ticks[1]), reaped: dur(ticks[2] + ticks[3])}, nil
}

// treeCPU is the CPU time (user + system) spent so far by process root
// and its descendants, and how many of them are alive.
//
// It sums, over root and every live descendant, its own times and those
// of its children that it has already waited for (cutime, cstime): a
// process that ended and was reaped inside the tree (sshd's session
// processes, say) is counted once, in its reaper's figure, and a live one
// once, in its own. Only a process that left the tree (re-parented to
// init) would be missed; sshd and nginx reap their own.
func treeCPU(root int) (cpu time.Duration, procs int, err error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return 0, 0, err
	}
	stats := map[int]procStat{}
	children := map[int][]int{}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue // not a process
		}
		st, err := readProcStat(pid)
		if err != nil {
			continue // ended while we looked
		}
		stats[pid] = st
		children[st.ppid] = append(children[st.ppid], pid)
	}
	if _, ok := stats[root]; !ok {
		return 0, 0, fmt.Errorf("peerbench: process %d is gone", root)
	}
	for todo := []int{root}; len(todo) > 0; {
		pid := todo[0]
		todo = append(todo[1:], children[pid]...)
		cpu += stats[pid].cpu + stats[pid].reaped
		procs++
	}
	return cpu, procs, nil
}

// settledTreeCPU is treeCPU once the tree is back to procs processes (a
// finished session's processes reaped, so their time is in the root's
// cutime), or after 5 s.
func settledTreeCPU(root, procs int) (time.Duration, error) {
	deadline := time.Now().Add(5 * time.Second)
	for {
		cpu, n, err := treeCPU(root)
		if err != nil || n <= procs || time.Now().After(deadline) {
			return cpu, err
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// exitedCPU is the CPU time of a program that has ended, from its wait4
// rusage, which on Linux includes the children it waited for (scp's and
// rsync's ssh).
func exitedCPU(p *Proc) time.Duration {
	st := p.cmd.ProcessState
	return st.UserTime() + st.SystemTime()
}

// waitTCP waits until something accepts connections at addr, or p ends.
func waitTCP(addr string, p *Proc, logPath string) error {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return nil
		}
		select {
		case <-p.done:
			return fmt.Errorf("peerbench: %s exited: %v (see %s)", p.Name, p.err, logPath)
		case <-time.After(50 * time.Millisecond):
		}
	}
	p.Kill()
	return fmt.Errorf("peerbench: %s did not listen on %s in 10s (see %s)", p.Name, addr, logPath)
}

// sshPeer is a private sshd on loopback and the key to log in to it.
type sshPeer struct {
	proc      *Proc
	port      string
	key, user string
	ssh       string // the client program
}

// startSSHD generates a host key and a user key in dir and starts sshd
// on a free loopback port, in the foreground (-D), logging to stderr (-e).
func startSSHD(dir string) (*sshPeer, error) {
	paths := map[string]string{}
	for _, name := range []string{"ssh", "ssh-keygen", "sshd"} {
		p, err := findTool(name)
		if err != nil {
			return nil, err
		}
		paths[name] = p
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	hostKey, userKey := filepath.Join(dir, "host_ed25519"), filepath.Join(dir, "user_ed25519")
	for _, k := range []string{hostKey, userKey} {
		os.Remove(k)
		os.Remove(k + ".pub")
		if out, err := exec.Command(paths["ssh-keygen"], "-q", "-t", "ed25519", "-N", "", "-f", k).CombinedOutput(); err != nil {
			return nil, fmt.Errorf("peerbench: ssh-keygen: %w: %s", err, out)
		}
	}
	pub, err := os.ReadFile(userKey + ".pub")
	if err != nil {
		return nil, err
	}
	authorized := filepath.Join(dir, "authorized_keys")
	if err := os.WriteFile(authorized, pub, 0o600); err != nil {
		return nil, err
	}
	addr, err := freeAddr("tcp")
	if err != nil {
		return nil, err
	}
	_, port, _ := net.SplitHostPort(addr)
	// Root logs in (the benchmark runs as root); StrictModes no because
	// the bench folder's owners and modes are whatever the caller's are;
	// no PAM, so nothing of the machine's own login setup is involved.
	// OpenSSH 9 scp speaks SFTP, so the server needs the sftp subsystem;
	// internal-sftp runs it inside the session's sshd process.
	conf := fmt.Sprintf(`# written by idk-sim peerbench
ListenAddress %s
HostKey %s
AuthorizedKeysFile %s
PidFile %s
StrictModes no
UsePAM no
PermitRootLogin yes
PasswordAuthentication no
KbdInteractiveAuthentication no
Subsystem sftp internal-sftp
`, addr, hostKey, authorized, filepath.Join(dir, "sshd.pid"))
	confPath := filepath.Join(dir, "sshd_config")
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		return nil, err
	}
	// sshd refuses to start without its privilege separation folder,
	// which the distribution's service creates at boot; its place is
	// compiled in, so it cannot be moved into the bench folder.
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		return nil, fmt.Errorf("peerbench: sshd's privilege separation folder: %w", err)
	}
	// sshd re-executes itself and so insists on an absolute path.
	p, err := startProc(dir, "sshd", paths["sshd"], "-D", "-e", "-f", confPath)
	if err != nil {
		return nil, err
	}
	if err := waitTCP(addr, p, filepath.Join(dir, "sshd.log")); err != nil {
		return nil, err
	}
	// sshd can only log in as the user it runs as, unless that is root.
	me, err := user.Current()
	if err != nil {
		p.Stop()
		return nil, err
	}
	return &sshPeer{proc: p, port: port, key: userKey, user: me.Username, ssh: paths["ssh"]}, nil
}

// opts are the client options both scp and rsync's ssh use: the throwaway
// host key is neither checked nor remembered.
func (s *sshPeer) opts() []string {
	return []string{"-i", s.key, "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
		"-o", "BatchMode=yes", "-o", "LogLevel=ERROR"}
}

// nginxPeer is a private nginx taking HTTPS PUT on loopback.
type nginxPeer struct {
	proc   *Proc
	url    string
	caFile string // its self-signed certificate, for the client to trust
}

// startNginx writes a self-signed certificate and a configuration in dir
// and starts nginx in the foreground, storing what is PUT in dataDir.
func startNginx(dir, dataDir string) (*nginxPeer, error) {
	bin, err := findTool("nginx")
	if err != nil {
		return nil, err
	}
	for _, d := range []string{dir, dataDir, filepath.Join(dir, "body-temp")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	if err := selfSignedCert(certFile, keyFile); err != nil {
		return nil, err
	}
	addr, err := freeAddr("tcp")
	if err != nil {
		return nil, err
	}
	// One worker: one client connection uses one worker anyway. The worker
	// runs as root (nginx would drop to nobody) so it can write in the
	// bench folder, whoever owns it. The body goes to a temporary file in
	// body-temp and is renamed into the root, so both are on one file
	// system. No fsync: nginx has no setting for it. TLS 1.3 as the
	// project's, which nginx before 1.23.4 does not offer by default.
	conf := fmt.Sprintf(`# written by idk-sim peerbench
user root;
worker_processes 1;
pid %s;
error_log %s;
events { worker_connections 64; }
http {
    access_log off;
    client_body_temp_path %s;
    server {
        listen %s ssl;
        ssl_certificate %s;
        ssl_certificate_key %s;
        ssl_protocols TLSv1.3;
        root %s;
        location / {
            dav_methods PUT;
            client_max_body_size 0;
        }
    }
}
`, filepath.Join(dir, "nginx.pid"), filepath.Join(dir, "error.log"), filepath.Join(dir, "body-temp"),
		addr, certFile, keyFile, dataDir)
	confPath := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	// -e: the error log before the configuration is read, which would
	// otherwise be the distribution's /var/log/nginx/error.log.
	p, err := startProc(dir, "nginx", bin, "-e", filepath.Join(dir, "error.log"), "-c", confPath, "-p", dir, "-g", "daemon off;")
	if err != nil {
		return nil, err
	}
	if err := waitTCP(addr, p, filepath.Join(dir, "error.log")); err != nil {
		return nil, err
	}
	return &nginxPeer{proc: p, url: "https://" + addr + "/", caFile: certFile}, nil
}

// selfSignedCert writes a P-256 certificate for 127.0.0.1 and localhost,
// valid for a day, and its key.
func selfSignedCert(certFile, keyFile string) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "idk peerbench nginx"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return err
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return err
	}
	return os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600)
}

// PeerHTTPSPut PUTs each file to baseURL + its base name, one after the
// other on one kept-alive connection, trusting only the certificate in
// caFile. It is the client of the nginx peer, run as its own idk-sim
// process so that its CPU is measured apart.
func PeerHTTPSPut(ctx context.Context, baseURL, caFile string, paths []string) error {
	pemBytes, err := os.ReadFile(caFile)
	if err != nil {
		return err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemBytes) {
		return fmt.Errorf("peer-https-put: no certificate in %s", caFile)
	}
	client := &http.Client{Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS13},
		// The default 4 KiB buffer would cut the body into 4 KiB TLS
		// records; a larger one lets them reach TLS's 16 KiB.
		WriteBufferSize: 256 << 10,
	}}
	for _, p := range paths {
		if err := putFile(ctx, client, baseURL+filepath.Base(p), p); err != nil {
			return err
		}
	}
	return nil
}

// putFile PUTs one file and checks that nginx created it.
func putFile(ctx context.Context, client *http.Client, url, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, url, f)
	if err != nil {
		return err
	}
	req.ContentLength = fi.Size()
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("peer-https-put: %w", err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusNoContent {
		return fmt.Errorf("peer-https-put: %s: %s", url, resp.Status)
	}
	return nil
}
