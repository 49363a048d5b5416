package harness

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// ChaosRegionOptions size a chaos run on a region's shared backends: two
// collectors on one PostgreSQL database and one S3 bucket, the serving
// one SIGKILLed again and again (docs/scale-out.md).
type ChaosRegionOptions struct {
	Dir, Bin string
	Agents   int           // ИДК shipping, each with its own simulated scanner; default 1
	Scans    int           // scans each scanner writes
	Interval time.Duration // between scans; the kills are spread over the scanners' run
	Kills    int           // SIGKILLs of the serving collector
	// Breaches is how many cases are posted to breach during the run:
	// one planted to fall due just after each kill (while no collector
	// serves), the rest between kills.
	Breaches int
	// MaxRestartDelay is the longest a killed collector stays down after
	// the other has taken over; each is restarted after a random delay up
	// to it. Default 1 s.
	MaxRestartDelay time.Duration
	Seed            uint64
	Drain           time.Duration // how long the system may take to catch up at the end
}

// Takeover is one kill of the serving collector and what followed.
type Takeover struct {
	Killed, Took string // the collectors' names
	// Leader is from the kill to the moment a collector's /metrics said
	// idk_collector_leader 1: polled every 50 ms, so up to that late.
	Leader time.Duration
	// AgentsBack is from the kill to the moment every agent said it was
	// connected to the new serving collector (idk_agent_collector of its
	// address 1): the agents' failover, on top of the collectors'. Zero
	// if they were not before the next kill (or the end of the run).
	AgentsBack time.Duration
	// FirstStore is from the kill to the first scan file the new serving
	// collector stored (its idk_collector_files_stored_total above 0);
	// zero if none was seen, as when the agents had nothing left to send.
	FirstStore time.Duration
}

// PlantedBreach is a case posted to breach during the run.
type PlantedBreach struct {
	Case string
	Due  time.Time // its TIME_2 deadline
	// AtKill is set on a case planted to fall due during a takeover.
	AtKill bool
	// Late is from Due to the moment the engine recorded the breach (the
	// version's time): how long the engine was not ticking, plus up to
	// its one-second tick.
	Late time.Duration
	// Rows is how often the case is in the current table 4; Versions and
	// Published are its row's versions in the history and the audit
	// entries that published one. Each must be exactly 1.
	Rows, Versions, Published int
	Problem                   string // what is wrong with it, if anything
}

// ChaosRegionReport is what a region chaos run found.
type ChaosRegionReport struct {
	Written, Stored               int // scans
	Files, FilesStored            int
	Lost, Duplicated, Corrupted   int // files
	Kills                         int
	Takeovers                     []Takeover
	MaxTakeover, MeanTakeover     time.Duration // kill to a new idk_collector_leader 1
	MaxAgentsBack, MeanAgentsBack time.Duration // kill to every agent connected to the new serving collector
	AgentsNotBack                 int           // takeovers after which the agents were not all back before the next kill (or the end)
	MaxFirstStore                 time.Duration // kill to the first file stored after it, over the takeovers that saw one
	MeanFirstStore                time.Duration
	FirstStores                   int // takeovers after which a stored file was seen
	Planted                       []PlantedBreach
	BreachesMissing               int           // planted cases whose breach was not recorded (no TIME_2 row, version or audit entry publishing it)
	BreachesDuplicated            int           // planted cases whose breach was recorded more than once, or not as the engine's first version
	MaxBreachLate                 time.Duration // longest a due breach waited for the engine
	DrainAfterKills               time.Duration // from the last kill to everything stored
	Elapsed                       time.Duration
}

// Intact reports whether nothing was lost, duplicated or corrupted.
func (r ChaosRegionReport) Intact() bool {
	return r.Lost == 0 && r.Duplicated == 0 && r.Corrupted == 0 && r.Stored == r.Written
}

// EngineOnce reports whether every planted breach was recorded, and
// recorded once: the deadline engine neither stopped for good nor ran
// twice.
func (r ChaosRegionReport) EngineOnce() bool {
	return r.BreachesMissing == 0 && r.BreachesDuplicated == 0 && len(r.Planted) > 0
}

func (r ChaosRegionReport) String() string {
	s := fmt.Sprintf("scans written %d, stored %d; files %d, stored %d; lost %d, duplicated %d, corrupted %d\n",
		r.Written, r.Stored, r.Files, r.FilesStored, r.Lost, r.Duplicated, r.Corrupted)
	s += fmt.Sprintf("serving collector killed %d times; takeover (kill to idk_collector_leader 1) max %.2f s, mean %.2f s",
		r.Kills, r.MaxTakeover.Seconds(), r.MeanTakeover.Seconds())
	if r.FirstStores > 0 {
		s += fmt.Sprintf("; kill to the first file stored after it max %.2f s, mean %.2f s (%d of %d takeovers)",
			r.MaxFirstStore.Seconds(), r.MeanFirstStore.Seconds(), r.FirstStores, len(r.Takeovers))
	}
	s += fmt.Sprintf("\nagents connected to the new serving collector after the kill: max %.2f s, mean %.2f s", r.MaxAgentsBack.Seconds(), r.MeanAgentsBack.Seconds())
	if r.AgentsNotBack > 0 {
		s += fmt.Sprintf("; after %d takeovers NOT all back before the next kill or the end", r.AgentsNotBack)
	}
	for i, t := range r.Takeovers {
		s += fmt.Sprintf("\n  kill %d: %s killed, %s took over in %.2f s", i+1, t.Killed, t.Took, t.Leader.Seconds())
		if t.AgentsBack > 0 {
			s += fmt.Sprintf(", every agent on it %.2f s after the kill", t.AgentsBack.Seconds())
		} else {
			s += ", agents not all on it before the next kill or the end"
		}
		if t.FirstStore > 0 {
			s += fmt.Sprintf(", first file stored %.2f s after the kill", t.FirstStore.Seconds())
		}
	}
	atKill := 0
	for _, p := range r.Planted {
		if p.AtKill {
			atKill++
		}
	}
	s += fmt.Sprintf("\nbreaches planted %d (%d due during a takeover): missing %d, recorded more than once %d; longest wait for the engine %.2f s",
		len(r.Planted), atKill, r.BreachesMissing, r.BreachesDuplicated, r.MaxBreachLate.Seconds())
	for _, p := range r.Planted {
		if p.Problem != "" {
			s += fmt.Sprintf("\n  case %s: %s", p.Case, p.Problem)
		}
	}
	s += fmt.Sprintf("\ndrained %.1f s after the last kill; whole run %.1f s", r.DrainAfterKills.Seconds(), r.Elapsed.Seconds())
	return s
}

// regionCollector is one collector process of the run's region.
type regionCollector struct {
	env        *Env
	name       string // also its log's name
	config     string
	quic, http string
	proc       *Proc
}

// AddCollector writes the configuration of another collector of the
// Env's region, named name: collector.toml as NewEnv wrote it, with
// listen.quic and listen.http on fresh addresses and a store.root of its
// own (partial uploads are the one thing a region's collector keeps
// locally). It shares everything else — certificates (whose name the
// agents check, "localhost", fits any collector on loopback), the API
// token and the region's backends. It returns the config's path and the
// two addresses.
func (e *Env) AddCollector(name string) (config, quicAddr, httpAddr string, err error) {
	b, err := os.ReadFile(filepath.Join(e.Dir, "collector.toml"))
	if err != nil {
		return "", "", "", fmt.Errorf("harness: %w", err)
	}
	if quicAddr, err = freeAddr("udp"); err != nil {
		return "", "", "", err
	}
	if httpAddr, err = freeAddr("tcp"); err != nil {
		return "", "", "", err
	}
	conf := string(b)
	for _, r := range [][2]string{
		{"quic = " + strconv.Quote(e.QUICAddr), "quic = " + strconv.Quote(quicAddr)},
		{"http = " + strconv.Quote(e.HTTPAddr), "http = " + strconv.Quote(httpAddr)},
		{"root = " + strconv.Quote(e.root), "root = " + strconv.Quote(filepath.Join(e.Dir, name+"-data"))},
	} {
		if !strings.Contains(conf, r[0]) {
			return "", "", "", fmt.Errorf("harness: collector.toml has no line %s", r[0])
		}
		conf = strings.Replace(conf, r[0], r[1], 1)
	}
	config = filepath.Join(e.Dir, name+".toml")
	if err := os.WriteFile(config, []byte(conf), 0o644); err != nil {
		return "", "", "", fmt.Errorf("harness: %w", err)
	}
	return config, quicAddr, httpAddr, nil
}

// SetCollectorAddrs replaces collector.addr in an agent's config by
// collector.addrs, the region's collectors in the order the agent tries
// them.
func SetCollectorAddrs(path string, addrs []string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("harness: %w", err)
	}
	quoted := make([]string, len(addrs))
	for i, a := range addrs {
		quoted[i] = strconv.Quote(a)
	}
	lines := strings.Split(string(b), "\n")
	section, found := "", false
	for i, line := range lines {
		t := strings.TrimSpace(line)
		if strings.HasPrefix(t, "[") {
			section = t
			continue
		}
		if k, _, ok := strings.Cut(t, "="); ok && section == "[collector]" && strings.TrimSpace(k) == "addr" {
			lines[i] = "addrs = [" + strings.Join(quoted, ", ") + "]"
			found = true
			break
		}
	}
	if !found {
		return fmt.Errorf("harness: %s has no collector.addr", path)
	}
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")), 0o644); err != nil {
		return fmt.Errorf("harness: %w", err)
	}
	return nil
}

// start starts the collector and waits until its listen.http answers,
// serving or standing by (503): which one it is depends on the election.
func (c *regionCollector) start() error {
	p, err := c.env.Start(c.name, "idk-collector", "-config", c.config)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if r, err := quickClient.Get("http://" + c.http + "/metrics"); err == nil {
			r.Body.Close()
			c.proc = p
			return nil
		}
		select {
		case <-p.done:
			return fmt.Errorf("harness: %s exited: %v (see %s.log)", c.name, p.err, filepath.Join(c.env.Dir, c.name))
		case <-time.After(50 * time.Millisecond):
		}
	}
	p.Kill()
	return fmt.Errorf("harness: %s did not answer on %s in 30 s", c.name, c.http)
}

// quickClient reads the collectors' /metrics and API: a collector that
// is killed refuses at once, but one that hangs must not hang the run.
var quickClient = &http.Client{Timeout: 5 * time.Second}

// scrapeSum returns the value of series on addr's /metrics, and the sum of
// every series whose name (with its labels) begins with sumPrefix.
func scrapeSum(addr, series, sumPrefix string) (v float64, sum float64, err error) {
	r, err := quickClient.Get("http://" + addr + "/metrics")
	if err != nil {
		return 0, 0, err
	}
	defer r.Body.Close()
	b, err := io.ReadAll(r.Body)
	if err != nil {
		return 0, 0, err
	}
	found := false
	for _, line := range strings.Split(string(b), "\n") {
		if s, ok := strings.CutPrefix(line, series+" "); ok {
			if v, err = strconv.ParseFloat(strings.TrimSpace(s), 64); err != nil {
				return 0, 0, fmt.Errorf("harness: %s at %s: %w", series, addr, err)
			}
			found = true
		}
		if sumPrefix != "" && strings.HasPrefix(line, sumPrefix) {
			if i := strings.LastIndexByte(line, ' '); i > 0 {
				if x, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
					sum += x
				}
			}
		}
	}
	if !found {
		return 0, 0, fmt.Errorf("harness: no series %s at %s", series, addr)
	}
	return v, sum, nil
}

// isLeader reports whether c says it serves the region.
func (c *regionCollector) isLeader() bool {
	v, _, err := scrapeSum(c.http, "idk_collector_leader", "")
	return err == nil && v == 1
}

// filesStored is the sum of c's idk_collector_files_stored_total over
// the ИДК, 0 while it stands by (the standby's /metrics has none).
func (c *regionCollector) filesStored() float64 {
	_, n, err := scrapeSum(c.http, "idk_collector_leader", "idk_collector_files_stored_total{")
	if err != nil {
		return 0
	}
	return n
}

// chaosRegion is a run's state shared by its parts.
type chaosRegion struct {
	env   *Env
	colls [2]*regionCollector
}

// serving waits up to d for a collector that says it serves and returns
// its index.
func (cr *chaosRegion) serving(ctx context.Context, d time.Duration) (int, error) {
	deadline := time.Now().Add(d)
	for {
		for i, c := range cr.colls {
			if c.isLeader() {
				return i, nil
			}
		}
		if time.Now().After(deadline) {
			return -1, fmt.Errorf("harness: no collector of the region served for %v", d)
		}
		select {
		case <-ctx.Done():
			return -1, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// api sends an authenticated request to the collector that serves,
// trying each in turn while the one asked answers 503 (standing by) or
// not at all (killed, or not yet listening), for up to 60 s: a request
// sent across a takeover goes to the new collector. Only requests that
// are idempotent are sent this way: a POST of an event the serving
// collector took but did not answer is taken again as the same event.
func (cr *chaosRegion) api(ctx context.Context, method, path string, body any) ([]byte, error) {
	tok, err := os.ReadFile(filepath.Join(cr.env.Dir, "api.token"))
	if err != nil {
		return nil, fmt.Errorf("harness: api token: %w", err)
	}
	var data []byte
	if body != nil {
		if data, err = json.Marshal(body); err != nil {
			return nil, err
		}
	}
	deadline := time.Now().Add(time.Minute)
	var last error
	for i := 0; ; i++ {
		c := cr.colls[i%len(cr.colls)]
		req, err := http.NewRequestWithContext(ctx, method, "http://"+c.http+path, bytes.NewReader(data))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
		r, err := quickClient.Do(req)
		if err == nil {
			b, rerr := io.ReadAll(r.Body)
			r.Body.Close()
			switch {
			case rerr != nil:
				err = rerr
			case r.StatusCode == http.StatusOK:
				return b, nil
			case r.StatusCode == http.StatusServiceUnavailable:
				err = fmt.Errorf("%s: standing by", c.name)
			default:
				return nil, fmt.Errorf("harness: %s %s at %s: %s: %s", method, path, c.name, r.Status, bytes.TrimSpace(b))
			}
		}
		last = err
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("harness: %s %s: no collector served for a minute: %w", method, path, last)
		}
		if i%len(cr.colls) == len(cr.colls)-1 {
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
}

// plant posts, for ИДК numIDK, the arrival of an object whose TIME_2
// (15 minutes to the inspection's end, which is never reported) falls
// due at due: inside the backdating window, so no reason is needed, and
// in the future, so that the engine's tick, not the post, records the
// breach. It returns the case's ID.
func (cr *chaosRegion) plant(ctx context.Context, numIDK string, due time.Time) (string, error) {
	b, err := cr.api(ctx, http.MethodPost, "/api/v1/cases/events", map[string]any{
		"kind": "arrival", "num_idk": numIDK, "by": "ОПЕРАТОР",
		"time": due.Add(-15 * time.Minute).Format(time.RFC3339),
	})
	if err != nil {
		return "", err
	}
	var ans struct {
		CaseID string `json:"case_id"`
	}
	if err := json.Unmarshal(b, &ans); err != nil || ans.CaseID == "" {
		return "", fmt.Errorf("harness: planting a breach: answer %s: %v", b, err)
	}
	return ans.CaseID, nil
}

// ChaosRegion runs two collectors of one region on the shared backends
// (PostgreSQL and S3), agents that list both, and a simulated scanner per
// agent; while scans are written it SIGKILLs whichever collector serves,
// at random moments, and once the other has taken over restarts it after
// a random short delay (it comes back standing by). It measures each takeover, plants breaches
// that fall due while no collector serves, and at the end checks that
// every scan is stored once and intact in the bucket, and that every
// planted breach was recorded by the deadline engine exactly once.
func ChaosRegion(ctx context.Context, opt ChaosRegionOptions, out io.Writer) (ChaosRegionReport, error) {
	began := time.Now()
	var rep ChaosRegionReport
	if opt.Agents <= 0 {
		opt.Agents = 1
	}
	if opt.MaxRestartDelay <= 0 {
		opt.MaxRestartDelay = time.Second
	}
	if opt.Drain <= 0 {
		opt.Drain = 2 * time.Minute
	}
	if err := os.MkdirAll(opt.Dir, 0o755); err != nil {
		return rep, err
	}
	rng := rand.New(rand.NewPCG(opt.Seed, 0x4e610))
	env, err := NewEnv(filepath.Join(opt.Dir, "env"), opt.Bin, Options{Agents: opt.Agents, Settle: 150 * time.Millisecond, Backends: Region})
	if err != nil {
		return rep, err
	}
	cr := &chaosRegion{env: env}
	cr.colls[0] = &regionCollector{env: env, name: "collector-a", config: filepath.Join(env.Dir, "collector.toml"), quic: env.QUICAddr, http: env.HTTPAddr}
	b := &regionCollector{env: env, name: "collector-b"}
	if b.config, b.quic, b.http, err = env.AddCollector(b.name); err != nil {
		return rep, err
	}
	cr.colls[1] = b
	for _, a := range env.Agents {
		if err := SetCollectorAddrs(a.ConfigPath, []string{cr.colls[0].quic, cr.colls[1].quic}); err != nil {
			return rep, err
		}
	}

	// The processes, stopped at the end once no restart is under way.
	var restarts sync.WaitGroup
	var agents, sims []*Proc
	defer func() {
		restarts.Wait()
		for _, p := range sims {
			if !p.Exited() {
				p.Kill() // a run that failed early: its scanner need not finish
			}
		}
		for _, p := range agents {
			p.Stop()
		}
		for _, c := range cr.colls {
			if c.proc != nil {
				c.proc.Stop()
			}
		}
	}()
	// A first, so that it is the one serving when B starts; B stands by.
	if err := cr.colls[0].start(); err != nil {
		return rep, err
	}
	if _, err := cr.serving(ctx, 30*time.Second); err != nil {
		return rep, err
	}
	if err := cr.colls[1].start(); err != nil {
		return rep, err
	}
	for i := range env.Agents {
		p, err := env.StartAgent(i)
		if err != nil {
			return rep, err
		}
		agents = append(agents, p)
	}
	manifests := make([]string, len(env.Agents))
	for i, a := range env.Agents {
		manifests[i] = filepath.Join(env.Dir, "manifest-"+a.NumIDK+".jsonl")
		sim, err := env.Start("scanner-"+a.NumIDK, "idk-sim", "scanner", "-out", a.OutputDir, "-num-idk", a.NumIDK,
			"-scans", strconv.Itoa(opt.Scans), "-interval", opt.Interval.String(),
			"-raw-min", "40000", "-raw-max", "160000", "-docs", "1",
			"-seed", strconv.FormatUint(opt.Seed+uint64(i), 10), "-manifest", manifests[i])
		if err != nil {
			return rep, err
		}
		sims = append(sims, sim)
	}

	// The planted breaches: one due just after each kill while there are
	// enough, the rest posted between kills. Each on an ИДК of its own
	// that no agent is, so that no scan and no other arrival joins its
	// case.
	extra := max(opt.Breaches-opt.Kills, 0)
	plant := func(due time.Time, atKill bool) error {
		id, err := cr.plant(ctx, fmt.Sprintf("8599%02d", len(rep.Planted)+1), due)
		if err != nil {
			return err
		}
		rep.Planted = append(rep.Planted, PlantedBreach{Case: id, Due: due, AtKill: atKill})
		return nil
	}
	// Each kill takes about four seconds of its own (a breach planted
	// three seconds ahead, then the takeover): the waits between them
	// are what is left of the scanners' run, so that the last kill too
	// comes while they write.
	span := time.Duration(opt.Scans) * opt.Interval
	gap := max(span/time.Duration(opt.Kills+1)-4*time.Second, 500*time.Millisecond)
	fmt.Fprintf(out, "chaos-region: %d agents × %d scans over ~%v; %d kills of the serving collector, ~%v apart besides their own ~4 s; %d breaches planted\n",
		opt.Agents, opt.Scans, span.Round(time.Second), opt.Kills, gap.Round(time.Millisecond), opt.Breaches)

	var lastKill time.Time
	var takeovers []*Takeover
	w := &agentWatch{stop: func() {}}
	defer func() { w.stop() }()
	for k := range opt.Kills {
		if extra > 0 {
			// Due in two seconds, well before the next kill.
			if err := plant(time.Now().Truncate(time.Second).Add(2*time.Second), false); err != nil {
				return rep, err
			}
			extra--
		}
		select {
		case <-ctx.Done():
			return rep, ctx.Err()
		case <-time.After(gap/2 + time.Duration(rng.Int64N(int64(gap)+1))):
		}
		s, err := cr.serving(ctx, 30*time.Second)
		if err != nil {
			return rep, err
		}
		victim, other := cr.colls[s], cr.colls[1-s]
		if len(rep.Planted) < opt.Breaches {
			// Due during the takeover: the kill comes 0.2–1.2 s before
			// the deadline, when the dying collector's engine has not
			// recorded it yet.
			due := time.Now().Truncate(time.Second).Add(3 * time.Second)
			if err := plant(due, true); err != nil {
				return rep, err
			}
			time.Sleep(time.Until(due.Add(-200*time.Millisecond - time.Duration(rng.IntN(1000))*time.Millisecond)))
			// The post may have crossed a takeover of its own (none is
			// played here, but a collector may lose its lock): kill the
			// one serving now.
			if s, err = cr.serving(ctx, 30*time.Second); err != nil {
				return rep, err
			}
			victim, other = cr.colls[s], cr.colls[1-s]
		}
		kill := time.Now()
		victim.proc.Kill()
		lastKill = kill
		// The takeover, by the collector standing by: the killed one is
		// restarted only afterwards (a random short delay later), so it
		// comes back standing by. Restarted at once it would often win
		// the lock itself — it campaigns as it starts, the standby once a
		// second — and the run would measure a restart, not a failover.
		var t Takeover
		t.Killed = victim.name
		for !other.isLeader() {
			if time.Since(kill) > time.Minute {
				return rep, fmt.Errorf("chaos-region: %s did not take over within a minute of kill %d", other.name, k+1)
			}
			time.Sleep(50 * time.Millisecond)
		}
		took := other
		t.Took, t.Leader = took.name, time.Since(kill)
		delay := time.Duration(rng.Int64N(int64(opt.MaxRestartDelay) + 1))
		restarted := make(chan error, 1)
		restarts.Add(1)
		go func() {
			defer restarts.Done()
			time.Sleep(delay)
			restarted <- victim.start()
		}()
		if err := <-restarted; err != nil {
			return rep, fmt.Errorf("chaos-region: %s did not come back after kill %d: %w", victim.name, k+1, err)
		}
		rep.Kills++
		// The agents' failover is watched beside the next kill's wait:
		// it can outlast it.
		w.stop()
		w = watchAgents(env, took, kill, sims, &t)
		takeovers = append(takeovers, &t)
		fmt.Fprintf(out, "chaos-region: kill %d: %s killed, %s serves after %.2f s\n", k+1, t.Killed, t.Took, t.Leader.Seconds())
	}
	for len(rep.Planted) < opt.Breaches {
		if err := plant(time.Now().Truncate(time.Second).Add(2*time.Second), false); err != nil {
			return rep, err
		}
	}

	for _, sim := range sims {
		<-sim.done
		if sim.err != nil {
			return rep, fmt.Errorf("chaos-region: %s: %w", sim.Name, sim.err)
		}
	}
	dctx, cancel := context.WithTimeout(ctx, opt.Drain)
	defer cancel()
	s, err := cr.serving(dctx, opt.Drain)
	if err != nil {
		return rep, err
	}
	// Verify through the serving collector's API; the files are read
	// back from the bucket.
	view := *env
	view.HTTPAddr = cr.colls[s].http
	for i, a := range env.Agents {
		exp, err := ReadManifest(manifests[i])
		if err != nil {
			return rep, err
		}
		v, werr := view.WaitStoredOf(dctx, a.NumIDK, exp)
		if werr != nil && v.Files == 0 {
			return rep, werr
		}
		rep.Written += len(exp)
		rep.Files += v.Files
		rep.FilesStored += int(v.Stored)
		rep.Lost += len(v.Missing)
		rep.Duplicated += len(v.Duplicated)
		rep.Corrupted += len(v.Corrupted)
		bad := map[string]bool{}
		for _, k := range append(append(v.Missing, v.Corrupted...), v.Duplicated...) {
			bad[filepath.Dir(k)] = true
		}
		rep.Stored += len(exp) - len(bad)
	}
	rep.DrainAfterKills = time.Since(lastKill)
	w.stop()
	rep.summarise(takeovers)
	if err := cr.checkBreaches(dctx, &rep); err != nil {
		return rep, err
	}
	rep.Elapsed = time.Since(began)
	return rep, nil
}

// agentWatch watches the agents after a takeover; stop ends the watch
// and waits for it.
type agentWatch struct{ stop func() }

// watchAgents measures, into t, how long after the kill every agent was
// connected to took, and the first file took stored while the scanners
// still wrote (afterwards the agents may have nothing left to send),
// until both are seen or stop is called.
func watchAgents(env *Env, took *regionCollector, kill time.Time, sims []*Proc, t *Takeover) *agentWatch {
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for {
			if t.AgentsBack == 0 && agentsOn(env, took.quic) {
				t.AgentsBack = time.Since(kill)
			}
			if t.FirstStore == 0 && took.filesStored() > 0 {
				t.FirstStore = time.Since(kill)
			}
			if t.AgentsBack > 0 && (t.FirstStore > 0 || allExited(sims)) {
				return
			}
			select {
			case <-quit:
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	var once sync.Once
	return &agentWatch{stop: func() {
		once.Do(func() { close(quit) })
		<-done
	}}
}

// summarise fills the report's takeover figures in from ts, whose
// watches have ended.
func (r *ChaosRegionReport) summarise(ts []*Takeover) {
	var sumLeader, sumBack, sumStore time.Duration
	for _, t := range ts {
		r.Takeovers = append(r.Takeovers, *t)
		r.MaxTakeover = max(r.MaxTakeover, t.Leader)
		sumLeader += t.Leader
		if t.AgentsBack > 0 {
			r.MaxAgentsBack = max(r.MaxAgentsBack, t.AgentsBack)
			sumBack += t.AgentsBack
		} else {
			r.AgentsNotBack++
		}
		if t.FirstStore > 0 {
			r.FirstStores++
			r.MaxFirstStore = max(r.MaxFirstStore, t.FirstStore)
			sumStore += t.FirstStore
		}
	}
	if len(ts) > 0 {
		r.MeanTakeover = sumLeader / time.Duration(len(ts))
	}
	if n := len(ts) - r.AgentsNotBack; n > 0 {
		r.MeanAgentsBack = sumBack / time.Duration(n)
	}
	if r.FirstStores > 0 {
		r.MeanFirstStore = sumStore / time.Duration(r.FirstStores)
	}
}

// agentsOn reports whether every agent of env says it is connected to
// the collector at addr.
func agentsOn(env *Env, addr string) bool {
	for _, a := range env.Agents {
		if v, err := Metric(a.MetricsAddr, `idk_agent_collector{addr="`+addr+`"}`); err != nil || v != 1 {
			return false
		}
	}
	return true
}

// allExited reports whether every process of ps has ended.
func allExited(ps []*Proc) bool {
	for _, p := range ps {
		if !p.Exited() {
			return false
		}
	}
	return true
}

// checkBreaches waits until every planted case has its TIME_2 row, then
// checks that each was recorded once: one row in the current table 4,
// one version in its history, one audit entry that published it, the
// audit's revisions 1, 2, ... with none twice or skipped. A deadline
// engine running on two collectors at once would record a breach twice
// (two versions, or two audit entries of one revision refused); one that
// stopped for good would leave it unrecorded.
func (cr *chaosRegion) checkBreaches(ctx context.Context, rep *ChaosRegionReport) error {
	type row struct {
		ID  string         `json:"id"`
		Row map[string]any `json:"row"`
	}
	type history struct {
		ID       string `json:"id"`
		Versions []struct {
			N   int       `json:"version"`
			At  time.Time `json:"at"`
			By  string    `json:"by"`
			Row struct {
				TIME2 string `json:"TIME_2"`
			} `json:"row"`
		} `json:"versions"`
	}
	type audit struct {
		Rev        uint64 `json:"version"`
		By         string `json:"by"`
		RowVersion int    `json:"row_version"`
	}
	// The dates span yesterday and today in the collectors' zone: a row
	// is dated by its deadline, which may fall either side of midnight.
	loc, err := time.LoadLocation("Europe/Moscow")
	if err != nil {
		loc = time.FixedZone("MSK", 3*3600)
	}
	now := time.Now().In(loc)
	days := "from=" + now.AddDate(0, 0, -1).Format("2006-01-02") + "&to=" + now.Format("2006-01-02")
	var rows []row
	// The last breach planted is due two seconds after its post; the
	// engine records it within a tick, or a takeover, of that.
	for waited := time.Now(); ; {
		b, err := cr.api(ctx, http.MethodGet, "/api/v1/breaches?"+days, nil)
		if err != nil {
			return err
		}
		rows = nil
		if err := json.Unmarshal(b, &rows); err != nil {
			return fmt.Errorf("harness: breaches: %w", err)
		}
		have := map[string]bool{}
		for _, r := range rows {
			if s, _ := r.Row["TIME_2"].(string); s != "" {
				have[r.ID] = true
			}
		}
		all := true
		for _, p := range rep.Planted {
			all = all && have[p.Case]
		}
		if all || time.Since(waited) > 30*time.Second {
			break // what is missing then is counted below
		}
		time.Sleep(200 * time.Millisecond)
	}
	b, err := cr.api(ctx, http.MethodGet, "/api/v1/breaches?history=1&"+days, nil)
	if err != nil {
		return err
	}
	var hist []history
	if err := json.Unmarshal(b, &hist); err != nil {
		return fmt.Errorf("harness: breach history: %w", err)
	}
	for i := range rep.Planted {
		p := &rep.Planted[i]
		var problems []string
		for _, r := range rows {
			if s, _ := r.Row["TIME_2"].(string); r.ID == p.Case && s != "" {
				p.Rows++
			}
		}
		for _, h := range hist {
			if h.ID != p.Case {
				continue
			}
			p.Versions += len(h.Versions)
			if len(h.Versions) > 0 {
				p.Late = h.Versions[0].At.Sub(p.Due)
				if v := h.Versions[0]; v.By != collectorByName || v.N != 1 {
					problems = append(problems, fmt.Sprintf("first version %d by %q, want 1 by the engine", v.N, v.By))
				}
			}
		}
		b, err := cr.api(ctx, http.MethodGet, "/api/v1/cases/"+p.Case+"/audit", nil)
		if err != nil {
			problems = append(problems, "audit: "+err.Error())
		} else {
			var entries []audit
			if err := json.Unmarshal(b, &entries); err != nil {
				return fmt.Errorf("harness: audit of %s: %w", p.Case, err)
			}
			for j, a := range entries {
				if a.Rev != uint64(j+1) {
					problems = append(problems, fmt.Sprintf("audit revision %d at place %d", a.Rev, j+1))
				}
				if a.RowVersion > 0 {
					p.Published++
				}
			}
		}
		if p.Rows == 0 || p.Versions == 0 || p.Published == 0 {
			rep.BreachesMissing++
		}
		if p.Rows > 1 || p.Versions > 1 || p.Published > 1 || len(problems) > 0 {
			rep.BreachesDuplicated++
		}
		if p.Rows != 1 || p.Versions != 1 || p.Published != 1 {
			problems = append(problems, fmt.Sprintf("%d TIME_2 rows, %d versions, %d audit entries publishing one; want 1 each", p.Rows, p.Versions, p.Published))
		}
		p.Problem = strings.Join(problems, "; ")
		rep.MaxBreachLate = max(rep.MaxBreachLate, p.Late)
	}
	return nil
}

// collectorByName is who the engine's own versions are by (a deadline
// that passed): cases.collectorBy.
const collectorByName = "collector"
