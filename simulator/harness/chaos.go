package harness

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"idk/simulator/relay"
)

// ChaosOptions size a chaos run.
type ChaosOptions struct {
	Dir, Bin       string
	Scans          int           // scans the simulated scanner writes
	Interval       time.Duration // between scans; the faults are spread over the scanner's run
	AgentKills     int
	CollectorKills int
	Outages        int           // link cuts through the relay
	MaxOutage      time.Duration // longest cut (each lasts a random time up to it)
	DiskFulls      int           // collector disk filled and freed (needs a tmpfs, so root)
	Seed           uint64
	Drain          time.Duration // how long the system may take to catch up at the end

	// DiskFullOptional lets a run where no tmpfs can be mounted (not
	// root) go on without the full disks and still be OK; the report says
	// so either way. Without it such a run is not OK, because it did not
	// test what it was asked to.
	DiskFullOptional bool

	// Transport, if set, is the agent's collector.transport. "tcp" also
	// puts the link through a TCP relay of the run's own (tcpLink) to the
	// collector's TCP listener, which outages cut as the UDP relay does.
	Transport string

	// Hostile, if set, runs beside the honest agent for the whole run as a
	// second enrolled ИДК (env.Agents[1], whose certificate it holds) and
	// returns a line for the report. The honest ИДК's evidence is then
	// verified on its own: whatever the hostile one sent, it must be
	// intact byte for byte.
	Hostile func(ctx context.Context, env *Env) string
}

// ChaosReport is what a chaos run found.
type ChaosReport struct {
	Written, Stored             int // scans
	Files, FilesStored          int
	Lost, Duplicated, Corrupted int // files
	AgentKills, CollectorKills  int
	Outages, DiskFulls          int
	DiskFullsRequested          int
	LongestOutage               time.Duration
	DrainAfterFaults            time.Duration // from the last fault to everything stored
	Elapsed                     time.Duration
	DiskFullSkipped             string // why the disk-full faults were not played, if they were not
	DiskFullOptional            bool   // the run was allowed to skip them
	Hostile                     string // what the hostile agent did, if one ran
	Transport                   string // the agent's collector.transport, if the run set it
	TransportSeen               string // what the agent's idk_agent_transport said at the end
}

// Intact reports whether nothing was lost, duplicated or corrupted.
func (r ChaosReport) Intact() bool {
	return r.Lost == 0 && r.Duplicated == 0 && r.Corrupted == 0 && r.Stored == r.Written
}

// OK reports whether the run is intact and played the faults it was asked
// for: disk-full faults skipped for want of a tmpfs make it not OK, unless
// the options made them optional.
func (r ChaosReport) OK() bool {
	return r.Intact() && (r.DiskFullSkipped == "" || r.DiskFullOptional)
}

func (r ChaosReport) String() string {
	s := fmt.Sprintf("scans written %d, stored %d; files %d, stored %d; lost %d, duplicated %d, corrupted %d\n",
		r.Written, r.Stored, r.Files, r.FilesStored, r.Lost, r.Duplicated, r.Corrupted)
	s += fmt.Sprintf("kills survived: agent %d, collector %d; link outages %d (longest %.1f s); collector disk full %d of %d times",
		r.AgentKills, r.CollectorKills, r.Outages, r.LongestOutage.Seconds(), r.DiskFulls, r.DiskFullsRequested)
	if r.DiskFullSkipped != "" {
		// On its own line and in capitals: a reader comparing figures
		// must not take this run for one that filled the disk.
		s += "\nDISK-FULL FAULTS NOT PLAYED: " + r.DiskFullSkipped + "; this run says nothing about a full collector disk (run as root to play them)"
	}
	if r.Hostile != "" {
		s += "\n" + r.Hostile
	}
	if r.Transport != "" {
		s += fmt.Sprintf("\nagent transport forced to %s; at the end it shipped over %s", r.Transport, r.TransportSeen)
	}
	s += fmt.Sprintf("\ndrained %.1f s after the last fault; whole run %.1f s", r.DrainAfterFaults.Seconds(), r.Elapsed.Seconds())
	return s
}

// Chaos runs a scanner, an agent and a collector as real processes, with
// the agent's link through a relay, and while scans are being written it
// SIGKILLs the agent and the collector at random moments, cuts the link,
// and fills the collector's disk. At the end it waits for the system to
// catch up and compares what the scanner wrote with what the collector
// holds, byte for byte.
func Chaos(ctx context.Context, opt ChaosOptions, out io.Writer) (ChaosReport, error) {
	began := time.Now()
	var rep ChaosReport
	if err := os.MkdirAll(opt.Dir, 0o755); err != nil {
		return rep, err
	}
	rng := rand.New(rand.NewPCG(opt.Seed, 0xc4a05))

	// The collector's data on a small tmpfs, so its disk can be filled.
	root := ""
	mnt := filepath.Join(opt.Dir, "collector-disk")
	rep.DiskFullsRequested, rep.DiskFullOptional = opt.DiskFulls, opt.DiskFullOptional
	if opt.DiskFulls > 0 {
		os.MkdirAll(mnt, 0o755)
		if b, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=1g", "tmpfs", mnt).CombinedOutput(); err != nil {
			rep.DiskFullSkipped = fmt.Sprintf("cannot mount a tmpfs: %v: %s", err, bytes.TrimSpace(b))
			fmt.Fprintf(out, "chaos: %s: the %d disk-full faults will NOT be played\n", rep.DiskFullSkipped, opt.DiskFulls)
			opt.DiskFulls = 0
		} else {
			defer exec.Command("umount", "-l", mnt).Run()
			root = filepath.Join(mnt, "data")
		}
	}
	agents := 1
	if opt.Hostile != nil {
		agents = 2
	}
	env, err := NewEnv(filepath.Join(opt.Dir, "env"), opt.Bin, Options{Agents: agents, Settle: 150 * time.Millisecond,
		CollectorRoot: root, CollectorMinFree: 16 << 20})
	if err != nil {
		return rep, err
	}
	var rl interface {
		SetOutage(bool)
		Close() error
	}
	if opt.Transport == "tcp" {
		// The collector's TCP listener is on its QUIC port number
		// (listen.tcp's default).
		tl, err := newTCPLink(env.QUICAddr)
		if err != nil {
			return rep, err
		}
		if err := setCollectorAddr(env.Agents[0].ConfigPath, tl.Addr()); err != nil {
			tl.Close()
			return rep, err
		}
		rl = tl
	} else {
		if rl, err = env.Relay(0, relay.Config{Latency: 2 * time.Millisecond, Jitter: time.Millisecond, Loss: 0.002}); err != nil {
			return rep, err
		}
	}
	defer rl.Close()
	if opt.Transport != "" {
		rep.Transport = opt.Transport
		if err := setAgentTransport(env.Agents[0].ConfigPath, opt.Transport); err != nil {
			return rep, err
		}
	}

	var mu sync.Mutex // guards the two processes against the fault loop and the final stop
	coll, err := env.StartCollector()
	if err != nil {
		return rep, err
	}
	agent, err := env.StartAgent(0)
	if err != nil {
		return rep, err
	}
	defer func() {
		mu.Lock()
		defer mu.Unlock()
		agent.Stop()
		coll.Stop()
	}()
	a := env.Agents[0]
	manifest := filepath.Join(env.Dir, "manifest.jsonl")
	sim, err := env.Start("scanner", "idk-sim", "scanner", "-out", a.OutputDir, "-num-idk", a.NumIDK,
		"-scans", strconv.Itoa(opt.Scans), "-interval", opt.Interval.String(),
		"-raw-min", "40000", "-raw-max", "160000", "-docs", "1", "-seed", strconv.FormatUint(opt.Seed, 10), "-manifest", manifest)
	if err != nil {
		return rep, err
	}
	// The hostile agent, if any, until the honest one is verified.
	hostileLine := ""
	stopHostile := func() {}
	if opt.Hostile != nil {
		hctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			defer close(done)
			hostileLine = opt.Hostile(hctx, env)
		}()
		stopHostile = func() { cancel(); <-done }
		defer stopHostile()
	}

	// The faults, in random order, spread over the scanner's expected run.
	type fault int
	const (
		killAgent fault = iota
		killCollector
		outage
		diskFull
	)
	var faults []fault
	for range opt.AgentKills {
		faults = append(faults, killAgent)
	}
	for range opt.CollectorKills {
		faults = append(faults, killCollector)
	}
	for range opt.Outages {
		faults = append(faults, outage)
	}
	for range opt.DiskFulls {
		faults = append(faults, diskFull)
	}
	rng.Shuffle(len(faults), func(i, j int) { faults[i], faults[j] = faults[j], faults[i] })
	span := time.Duration(opt.Scans) * opt.Interval
	gap := span / time.Duration(len(faults)+1)
	fmt.Fprintf(out, "chaos: %d scans over ~%v; %d faults, one every ~%v\n", opt.Scans, span.Round(time.Second), len(faults), gap.Round(time.Millisecond))

	var lastFault time.Time
	for i, f := range faults {
		select {
		case <-ctx.Done():
			return rep, ctx.Err()
		case <-time.After(gap/2 + time.Duration(rng.Int64N(int64(gap)+1))):
		}
		switch f {
		case killAgent:
			mu.Lock()
			agent.Kill()
			time.Sleep(time.Duration(rng.IntN(300)) * time.Millisecond)
			agent, err = env.StartAgent(0)
			mu.Unlock()
			if err != nil {
				return rep, err
			}
			rep.AgentKills++
		case killCollector:
			mu.Lock()
			coll.Kill()
			time.Sleep(time.Duration(rng.IntN(300)) * time.Millisecond)
			coll, err = env.StartCollector()
			mu.Unlock()
			if err != nil {
				return rep, fmt.Errorf("chaos: collector did not come back after kill %d: %w", rep.CollectorKills+1, err)
			}
			rep.CollectorKills++
		case outage:
			d := time.Duration(rng.Int64N(int64(opt.MaxOutage))) + 500*time.Millisecond
			rl.SetOutage(true)
			time.Sleep(d)
			rl.SetOutage(false)
			rep.Outages++
			rep.LongestOutage = max(rep.LongestOutage, d)
		case diskFull:
			if err := fillDisk(mnt, 2*time.Second+time.Duration(rng.IntN(2000))*time.Millisecond); err != nil {
				return rep, err
			}
			rep.DiskFulls++
		}
		lastFault = time.Now()
		if (i+1)%20 == 0 {
			fmt.Fprintf(out, "chaos: %d/%d faults\n", i+1, len(faults))
		}
	}
	<-sim.done
	if sim.err != nil {
		return rep, fmt.Errorf("chaos: scanner: %v", sim.err)
	}
	exp, err := ReadManifest(manifest)
	if err != nil {
		return rep, err
	}
	dctx, cancel := context.WithTimeout(ctx, opt.Drain)
	defer cancel()
	v, werr := env.WaitStoredOf(dctx, a.NumIDK, exp)
	rep.DrainAfterFaults = time.Since(lastFault)
	if opt.Transport != "" {
		rep.TransportSeen = "none"
		for _, t := range []string{"quic", "tcp"} {
			if n, err := Metric(a.MetricsAddr, `idk_agent_transport{transport="`+t+`"}`); err == nil && n == 1 {
				rep.TransportSeen = t
			}
		}
	}
	stopHostile() // safe to call again from the defer
	rep.Hostile = hostileLine
	rep.Elapsed = time.Since(began)
	if werr != nil && v.Files == 0 {
		return rep, werr
	}
	rep.Written, rep.Files = len(exp), v.Files
	rep.FilesStored = int(v.Stored)
	rep.Lost, rep.Duplicated, rep.Corrupted = len(v.Missing), len(v.Duplicated), len(v.Corrupted)
	bad := map[string]bool{}
	for _, k := range append(append(v.Missing, v.Corrupted...), v.Duplicated...) {
		bad[filepath.Dir(k)] = true
	}
	rep.Stored = rep.Written - len(bad)
	return rep, nil
}

// fillDisk fills the tmpfs at mnt to the brim for d, then frees it, as a
// careless copy to the collector's disk would.
func fillDisk(mnt string, d time.Duration) error {
	p := filepath.Join(mnt, "filler.bin")
	f, err := os.Create(p)
	if err != nil {
		return err
	}
	buf := make([]byte, 1<<20)
	for {
		if _, err := f.Write(buf); err != nil {
			break // ENOSPC: full
		}
	}
	f.Close()
	time.Sleep(d)
	return os.Remove(p)
}

// setAgentTransport sets collector.transport in an agent's config as
// NewEnv wrote it.
func setAgentTransport(path, transport string) error {
	return setCollectorKey(path, "transport", strconv.Quote(transport))
}

// tcpLink forwards TCP connections to upstream, for an agent on TCP. An
// outage holds every byte, and every new connection, until it ends: what
// a cut link does to TCP, which then delivers them late (its
// retransmissions), not lost. Connections whose end closes are closed
// on the other side too.
type tcpLink struct {
	ln       net.Listener
	upstream string
	closed   chan struct{}

	mu     sync.Mutex
	resume chan struct{} // while an outage lasts: closed when it ends
	conns  map[net.Conn]bool
}

func newTCPLink(upstream string) (*tcpLink, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("harness: tcp link: %w", err)
	}
	l := &tcpLink{ln: ln, upstream: upstream, closed: make(chan struct{}), conns: map[net.Conn]bool{}}
	go l.serve()
	return l, nil
}

func (l *tcpLink) Addr() string { return l.ln.Addr().String() }

func (l *tcpLink) SetOutage(on bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case on && l.resume == nil:
		l.resume = make(chan struct{})
	case !on && l.resume != nil:
		close(l.resume)
		l.resume = nil
	}
}

// hold waits out an outage; false once the link is closed.
func (l *tcpLink) hold() bool {
	l.mu.Lock()
	resume := l.resume
	l.mu.Unlock()
	if resume == nil {
		return true
	}
	select {
	case <-resume:
		return true
	case <-l.closed:
		return false
	}
}

func (l *tcpLink) track(cs ...net.Conn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	select {
	case <-l.closed:
		return false
	default:
	}
	for _, c := range cs {
		l.conns[c] = true
	}
	return true
}

func (l *tcpLink) serve() {
	for {
		c, err := l.ln.Accept()
		if err != nil {
			return
		}
		go l.pipe(c)
	}
}

func (l *tcpLink) pipe(c net.Conn) {
	if !l.hold() {
		c.Close()
		return
	}
	up, err := net.Dial("tcp", l.upstream)
	if err != nil {
		c.Close() // the collector is down: so is the agent's connection
		return
	}
	if !l.track(c, up) {
		c.Close()
		up.Close()
		return
	}
	go l.copy(up, c)
	l.copy(c, up)
}

func (l *tcpLink) copy(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if !l.hold() {
				break
			}
			if _, err := dst.Write(buf[:n]); err != nil {
				break
			}
		}
		if err != nil {
			break
		}
	}
	dst.Close()
	src.Close()
	l.mu.Lock()
	delete(l.conns, dst)
	delete(l.conns, src)
	l.mu.Unlock()
}

func (l *tcpLink) Close() error {
	l.mu.Lock()
	select {
	case <-l.closed:
	default:
		close(l.closed)
	}
	for c := range l.conns {
		c.Close()
	}
	l.mu.Unlock()
	return l.ln.Close()
}
