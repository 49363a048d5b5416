package harness

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"idk/agent/intake"
	"idk/agent/layout/cargoriw"
	"idk/agent/ship"
	"idk/agent/spool"
	"idk/agent/watch"
	"idk/internal/clock"
	"idk/protocol"
	"idk/protocol/idkpb"
	"idk/protocol/transport"
	"idk/simulator/scanner"
)

// FleetBenchOptions shape the fleet benchmark (P5 of issue 14): many
// virtual ИДК in this process against one real collector process.
//
// Each virtual ИДК is the agent's own library code: its own bbolt spool,
// the real intake (agent/intake) fed straight from the simulated scanner
// instead of through the folder watcher, and the real shipper
// (agent/ship) with its own certificate, issued by the harness's CA and
// enrolled in the collector's registry like the harness's agents.
type FleetBenchOptions struct {
	Dir      string
	Bin      string
	IDK      int           // virtual ИДК; default 300
	Duration time.Duration // how long the ИДК produce; default 10 minutes
	// BusyDayScans is the scans of one ИДК on a busy day, and Speedup how
	// many such days are played per day. The reference (order 2354) gives
	// no daily figure, so the default busy day is an assumption: 300
	// scans, played at 10× (one scan every 28.8 s per ИДК).
	BusyDayScans int
	Speedup      float64
	// RawSize is the one RAW image of each scan, small (default 64 KiB)
	// so that the collector's CPU goes to per-file and per-event work
	// rather than to copying bytes.
	RawSize int64
	// FormGap is the time between the revisions of a scan's form, the
	// operator at work; default 2 s.
	FormGap time.Duration
	// Drain bounds the wait, after production stops, for every spool to
	// empty; default 5 minutes.
	Drain time.Duration
}

// The content of one scan and the telemetry of a busy day, the unit the
// rate multiplies.
const (
	fleetDocs          = 2           // scanned documents per scan (item 21б: transport and commercial papers)
	fleetFormRewrites  = 2           // form.xml as created at scan time, then 2 operator saves, the last with the decision: 3 revisions
	fleetStatesPerScan = 2           // WORKING when the vehicle enters, WAITING once decided
	fleetMobileEvery   = 3           // every third ИДК is a mobile one (МИДК) with a GPS receiver
	busyDayPositionGap = time.Minute // the agent's telemetry.position_every default
)

func (o *FleetBenchOptions) defaults() {
	if o.IDK <= 0 {
		o.IDK = 300
	}
	if o.Duration <= 0 {
		o.Duration = 10 * time.Minute
	}
	if o.BusyDayScans <= 0 {
		o.BusyDayScans = 300
	}
	if o.Speedup <= 0 {
		o.Speedup = 10
	}
	if o.RawSize <= 0 {
		o.RawSize = 64 << 10
	}
	if o.FormGap <= 0 {
		o.FormGap = 2 * time.Second
	}
	if o.Drain <= 0 {
		o.Drain = 5 * time.Minute
	}
}

// scanEvery is the time between two scans of one ИДК.
func (o *FleetBenchOptions) scanEvery() time.Duration {
	return time.Duration(float64(24*time.Hour) / (float64(o.BusyDayScans) * o.Speedup))
}

// positionEvery is the time between two positions of a mobile ИДК.
func (o *FleetBenchOptions) positionEvery() time.Duration {
	return time.Duration(float64(busyDayPositionGap) / o.Speedup)
}

// FleetResult is what FleetBench measured.
type FleetResult struct {
	IDK                   int
	Scans, Files, Forms   int   // produced: files are images and documents; forms are form revisions
	Events                int   // events the virtual ИДК put in their spools
	StoredEvents          int   // the collector's idk_collector_events_stored_total over the fleet
	StoredBytes           int64 // sizes in the collector's index of the fleet's files and forms
	Lost                  []string
	Duplicated            int
	FormLatency           FormLatency
	Measured              time.Duration // production and drain: the window of the CPU figure
	Drained               time.Duration // of which the drain after production stopped
	CollectorCPU          time.Duration
	CollectorWait         time.Duration // ready to run, waiting for a CPU (0: not known)
	SimulatorCPU          time.Duration
	RSSPeak, RSSEnd       int64
	ScanEvery, PosEvery   time.Duration
	BusyDayScans, Speedup float64
	Load                  string // the machine's load average at the end of the drain
}

// FleetBench runs the fleet against one collector, prints the figures to
// out and returns them. A run that lost something is not an error: the
// result says what, and the caller decides.
//
// Two parts of the agent are left out, on purpose: the folder watcher
// (each file goes to the intake as soon as it is written, without the
// watcher's settle time, which would only add a constant to the form
// latency), and the device state engine (the state changes and positions
// it would derive from the controller and the GPS receiver are appended
// to the spool as it appends them). The collector's CPU is read from
// /proc over production and drain, after every ИДК has connected; the
// check of what arrived comes after, so that it is not measured.
func FleetBench(ctx context.Context, opt FleetBenchOptions, out io.Writer) (FleetResult, error) {
	opt.defaults()
	res := FleetResult{IDK: opt.IDK, ScanEvery: opt.scanEvery(), PosEvery: opt.positionEvery(),
		BusyDayScans: float64(opt.BusyDayScans), Speedup: opt.Speedup}
	if err := os.MkdirAll(opt.Dir, 0o755); err != nil {
		return res, fmt.Errorf("fleet bench: %w", err)
	}
	env, err := NewEnv(opt.Dir, opt.Bin, Options{Agents: opt.IDK})
	if err != nil {
		return res, fmt.Errorf("fleet bench: %w", err)
	}
	logf, err := os.Create(filepath.Join(env.Dir, "fleet.log"))
	if err != nil {
		return res, fmt.Errorf("fleet bench: %w", err)
	}
	defer logf.Close()
	log := slog.New(slog.NewTextHandler(logf, nil))

	coll, err := env.StartCollector()
	if err != nil {
		return res, fmt.Errorf("fleet bench: %w", err)
	}
	defer coll.Stop()

	// Every ИДК connects first: the handshakes are a one-off at a
	// fleet's start, not the steady work measured.
	runCtx, stopFleet := context.WithCancel(ctx)
	defer stopFleet()
	fleet := make([]*virtualIDK, opt.IDK)
	var running sync.WaitGroup
	// The spools close only once their users, intake and shipper, are gone.
	defer func() {
		stopFleet()
		running.Wait()
		for _, v := range fleet {
			if v != nil {
				v.sp.Close()
			}
		}
	}()
	for i, a := range env.Agents {
		v, err := newVirtualIDK(env, a, i, &opt, log)
		if err != nil {
			return res, fmt.Errorf("fleet bench: %w", err)
		}
		v.stopped = runCtx.Done()
		fleet[i] = v
		running.Add(1)
		go func() {
			defer running.Done()
			v.run(runCtx)
		}()
	}
	if err := waitConnections(ctx, env, coll, opt.IDK, 3*time.Minute); err != nil {
		return res, fmt.Errorf("fleet bench: %w", err)
	}

	// The measured window: production, then the drain.
	cpu0, err := procCPU(coll.Pid())
	if err != nil {
		return res, fmt.Errorf("fleet bench: collector CPU: %w", err)
	}
	self0 := selfCPU()
	wait0, waitErr := runQueueWait(coll.Pid())
	began := time.Now()
	rss := startProcWatch(coll.Pid(), filepath.Join(env.Dir, "collector.csv"))
	prodCtx, stopProduction := context.WithTimeout(runCtx, opt.Duration)
	var producing sync.WaitGroup
	errs := make(chan error, opt.IDK)
	for _, v := range fleet {
		producing.Add(1)
		go func() {
			defer producing.Done()
			if err := v.produce(prodCtx, &opt); err != nil {
				errs <- err
			}
		}()
	}
	producing.Wait()
	stopProduction()
	close(errs)
	var failed []error
	for err := range errs {
		failed = append(failed, err)
	}
	if err := errors.Join(failed...); err != nil {
		rss.stop()
		return res, fmt.Errorf("fleet bench: a virtual ИДК failed: %w", err)
	}
	stopped := time.Now()
	drainErr := waitDrained(ctx, fleet, coll, opt.Drain)
	res.Measured, res.Drained = time.Since(began), time.Since(stopped)
	cpu1, cpuErr := procCPU(coll.Pid())
	res.CollectorCPU, res.SimulatorCPU = cpu1-cpu0, selfCPU()-self0
	if wait1, err := runQueueWait(coll.Pid()); err == nil && waitErr == nil {
		res.CollectorWait = wait1 - wait0
	}
	res.RSSPeak, res.RSSEnd = rss.stop()
	res.Load = loadAverage()
	if cpuErr != nil {
		return res, fmt.Errorf("fleet bench: collector CPU: %w", cpuErr)
	}
	if _, peak, err := RSS(coll.Pid()); err == nil {
		res.RSSPeak = max(res.RSSPeak, peak) // VmHWM: the true peak, between samples too
	}
	if drainErr != nil {
		// Not fatal: what did not arrive is counted as lost below.
		fmt.Fprintf(out, "fleet bench: %v\n", drainErr)
	}
	stopFleet()
	running.Wait()

	// The check, after the measured window so that it costs the
	// collector nothing measured.
	if err := res.check(env, fleet); err != nil {
		return res, fmt.Errorf("fleet bench: %w", err)
	}
	res.print(out)
	return res, nil
}

// virtualIDK is one ИДК of the fleet: a simulated scanner writing to disk,
// and the agent's spool, intake and shipper.
type virtualIDK struct {
	agent  Agent
	mobile bool
	sp     *spool.Spool
	sc     *scanner.Scanner
	in     *intake.Intake
	sh     *ship.Shipper
	ready  chan watch.Ready // the intake's input, as the watcher would feed it
	// stopped is closed when the intake and shipper are told to end; the
	// scanner then stops waiting for the intake.
	stopped <-chan struct{}

	mu     sync.Mutex
	files  map[string]string // NUM_SNIM/name -> hex SHA-256 of images and documents
	forms  []formSaved
	events int
	scans  int
}

// formSaved is one form revision as the scanner saved it.
type formSaved struct {
	numSnim, sha string
	rev          int
	saved        time.Time
}

func newVirtualIDK(env *Env, a Agent, i int, opt *FleetBenchOptions, log *slog.Logger) (*virtualIDK, error) {
	certs := filepath.Join(env.Dir, "certs")
	tlsConf, err := transport.ClientTLS(filepath.Join(certs, "agent-"+a.NumIDK+".crt"), filepath.Join(certs, "agent-"+a.NumIDK+".key"),
		filepath.Join(certs, "ca.crt"), "localhost")
	if err != nil {
		return nil, fmt.Errorf("ИДК %s: %w", a.NumIDK, err)
	}
	tlsConf.NextProtos = []string{protocol.ALPN}
	sp, err := spool.Open(filepath.Join(env.Dir, "spool-"+a.NumIDK+".db"))
	if err != nil {
		return nil, fmt.Errorf("ИДК %s: %w", a.NumIDK, err)
	}
	sc, err := scanner.New(scanner.Config{Out: a.OutputDir, NumIDK: a.NumIDK, RawMin: opt.RawSize, RawMax: opt.RawSize,
		DocsPerScan: fleetDocs, FormRevisions: fleetFormRewrites, Seed: uint64(i + 1), SuspectRatio: 0.2}, clock.Real())
	if err != nil {
		sp.Close()
		return nil, fmt.Errorf("ИДК %s: %w", a.NumIDK, err)
	}
	v := &virtualIDK{agent: a, mobile: i%fleetMobileEvery == fleetMobileEvery-1, sp: sp, sc: sc,
		ready: make(chan watch.Ready, 16), files: map[string]string{}}
	typ := uint32(2)
	if v.mobile {
		typ = 1
	}
	l := log.With("num_idk", a.NumIDK)
	v.in = intake.New(intake.Config{Layout: cargoriw.Layout{}, Spool: sp, Log: l.With("part", "intake")})
	v.sh = ship.New(ship.Config{
		Addr:    env.QUICAddr,
		TLS:     tlsConf,
		QUIC:    transport.QUICConfig(),
		Device:  &idkpb.Device{NumIdk: a.NumIDK, TypeIdk: typ, KodTo: a.KodTO, NaimTo: "ДАГЕСТАНСКАЯ", NaimZtk: "МАПП ЯРАГ-КАЗМАЛЯР", DislIdk: 1},
		Spool:   sp,
		Metrics: ship.NewMetrics(prometheus.NewRegistry(), sp, nil),
		Log:     l.With("part", "ship"),
		Version: "fleetbench",
		// As in the agent, a file found changed is hashed again (none
		// changes here).
		OnRehash: v.in.Rehash,
	})
	return v, nil
}

// run is the agent side until ctx ends: intake and shipper.
func (v *virtualIDK) run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		v.in.Run(ctx, v.ready)
	}()
	go func() {
		defer wg.Done()
		v.sh.Run(ctx)
	}()
	wg.Wait()
}

// produce is the scanner and the device until ctx ends: scans at the
// fleet's rate, the first at a random point of the first period so that
// the fleet does not scan in lockstep, and a mobile ИДК's positions.
func (v *virtualIDK) produce(ctx context.Context, opt *FleetBenchOptions) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	if v.mobile {
		phase := rand.N(opt.positionEvery())
		wg.Add(1)
		go func() {
			defer wg.Done()
			v.positions(ctx, phase, opt.positionEvery())
		}()
	}
	every := opt.scanEvery()
	next := time.Now().Add(rand.N(min(every, opt.Duration/2)))
	for {
		if clock.Sleep(ctx, clock.Real(), time.Until(next)) != nil {
			return nil
		}
		// A scan begun is finished even past the end of production, as
		// an operator finishes the form: only whole scans are counted.
		if err := v.scan(context.WithoutCancel(ctx), opt.FormGap); err != nil {
			return fmt.Errorf("ИДК %s: %w", v.agent.NumIDK, err)
		}
		next = next.Add(every)
	}
}

// scan writes one scan as the image-analysis program does and hands each
// file to the intake once written, as the watcher would once it settled.
func (v *virtualIDK) scan(ctx context.Context, formGap time.Duration) error {
	w, err := v.sc.BeginScan()
	if err != nil {
		return err
	}
	if err := v.state(idkpb.DeviceState_DEVICE_STATE_WORKING); err != nil {
		return err
	}
	if err := w.WriteRaw(ctx, 1); err != nil {
		return err
	}
	raw := cargoriw.RawName(w.NumSnim(), 1)
	if err := v.offer(w, raw); err != nil {
		return err
	}
	if err := v.form(w, 0); err != nil {
		return err
	}
	if err := w.WriteDocs(); err != nil {
		return err
	}
	names, err := os.ReadDir(w.Dir())
	if err != nil {
		return err
	}
	for _, e := range names {
		if e.Name() != cargoriw.FormName && e.Name() != raw {
			if err := v.offer(w, e.Name()); err != nil {
				return err
			}
		}
	}
	for rev := 1; rev <= w.Revisions(); rev++ {
		time.Sleep(formGap)
		if err := v.form(w, rev); err != nil {
			return err
		}
	}
	s, err := w.Finish()
	if err != nil {
		return err
	}
	// The intake hashes images and documents on a goroutine of its own:
	// the scan counts once each is in the spool, so that an empty spool
	// at the end means every file was shipped, not that some were never
	// queued.
	for name := range s.Files {
		if name == cargoriw.FormName {
			continue
		}
		err := v.await(s.NumSnim+"/"+name+" queued", func(tx *spool.Tx) (bool, error) {
			_, ok, err := tx.File(s.NumSnim + "/" + name)
			return ok, err
		})
		if err != nil {
			return err
		}
	}
	if err := v.state(idkpb.DeviceState_DEVICE_STATE_WAITING); err != nil {
		return err
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	v.scans++
	v.events++ // the intake's ScanSeen
	for name, sum := range s.Files {
		if name != cargoriw.FormName {
			v.files[s.NumSnim+"/"+name] = sum
		}
	}
	return nil
}

// offer hands a written file to the intake.
func (v *virtualIDK) offer(w *scanner.ScanWriter, name string) error {
	p := filepath.Join(w.Dir(), name)
	fi, err := os.Stat(p)
	if err != nil {
		return err
	}
	select {
	case v.ready <- watch.Ready{Path: p, Rel: w.NumSnim() + "/" + name, Size: fi.Size(), ModTime: fi.ModTime()}:
		return nil
	case <-v.stopped:
		return errors.New("the agent side stopped")
	}
}

// form saves revision rev of the scan's form and waits until the intake
// has recorded it: the operator's next save must not overwrite a revision
// the intake has not read yet (the watcher's settle would merge the two,
// and this bench counts every revision).
func (v *virtualIDK) form(w *scanner.ScanWriter, rev int) error {
	if err := w.WriteForm(rev); err != nil {
		return err
	}
	saved := time.Now()
	data, err := os.ReadFile(filepath.Join(w.Dir(), cargoriw.FormName))
	if err != nil {
		return err
	}
	sum := sha256.Sum256(data)
	if err := v.offer(w, cargoriw.FormName); err != nil {
		return err
	}
	err = v.await(fmt.Sprintf("%s form revision %d recorded", w.NumSnim(), rev), func(tx *spool.Tx) (bool, error) {
		sc, _, err := tx.Scan(w.NumSnim())
		return bytes.Equal(sc.FormSHA256, sum[:]), err
	})
	if err != nil {
		return err
	}
	v.mu.Lock()
	v.forms = append(v.forms, formSaved{numSnim: w.NumSnim(), sha: hex.EncodeToString(sum[:]), rev: rev, saved: saved})
	v.events++
	v.mu.Unlock()
	return nil
}

// await polls the spool until ok says the intake has done its part.
func (v *virtualIDK) await(what string, ok func(*spool.Tx) (bool, error)) error {
	for deadline := time.Now().Add(time.Minute); ; {
		var done bool
		err := v.sp.View(func(tx *spool.Tx) error {
			var err error
			done, err = ok(tx)
			return err
		})
		if err != nil || done {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not in a minute: %s", what)
		}
		select {
		case <-v.stopped:
			return errors.New("the agent side stopped")
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// state records a change of the device's state as the agent's telemetry
// does for one the controller shows.
func (v *virtualIDK) state(s idkpb.DeviceState) error {
	return v.event(&idkpb.Event{TimeUnixNano: time.Now().UnixNano(),
		Body: &idkpb.Event_State{State: &idkpb.StateChange{State: s, Source: "controller"}}})
}

// positions records a mobile ИДК's GPS position, parked near its post, as
// the agent's telemetry does.
func (v *virtualIDK) positions(ctx context.Context, phase, every time.Duration) {
	if clock.Sleep(ctx, clock.Real(), phase) != nil {
		return
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		ev := &idkpb.Event{TimeUnixNano: time.Now().UnixNano(), Body: &idkpb.Event_Position{
			Position: &idkpb.Position{Lat: 42.05 + rand.Float64()*1e-4, Lon: 48.30 + rand.Float64()*1e-4, Valid: true}}}
		if err := v.event(ev); err != nil {
			return // the spool is closing
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (v *virtualIDK) event(ev *idkpb.Event) error {
	err := v.sp.Update(func(tx *spool.Tx) error {
		_, err := tx.AppendEvent(ev)
		return err
	})
	if err != nil {
		return fmt.Errorf("record event: %w", err)
	}
	v.mu.Lock()
	v.events++
	v.mu.Unlock()
	return nil
}

// waitConnections waits until the collector has n agent connections.
func waitConnections(ctx context.Context, env *Env, coll *Proc, n int, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		c, err := Metric(env.HTTPAddr, "idk_collector_connections")
		if err == nil && int(c) >= n {
			return nil
		}
		if coll.Exited() {
			return fmt.Errorf("the collector exited; see %s", filepath.Join(env.Dir, "collector.log"))
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%v of %d virtual ИДК connected after %v", c, n, limit)
		}
		if clock.Sleep(ctx, clock.Real(), 200*time.Millisecond) != nil {
			return ctx.Err()
		}
	}
}

// waitDrained waits until every spool is empty: each event and file
// acknowledged by the collector as stored.
func waitDrained(ctx context.Context, fleet []*virtualIDK, coll *Proc, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		left := 0
		for _, v := range fleet {
			st, err := v.sp.Stats()
			if err != nil {
				return fmt.Errorf("spool of %s: %w", v.agent.NumIDK, err)
			}
			left += st.Events + st.Files
		}
		if left == 0 {
			return nil
		}
		if coll.Exited() {
			return errors.New("the collector exited during the drain")
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d items still in the spools after a drain of %v", left, limit)
		}
		if clock.Sleep(ctx, clock.Real(), 100*time.Millisecond) != nil {
			return ctx.Err()
		}
	}
}

// check compares, ИДК by ИДК, what the collector's index holds with what
// the virtual ИДК produced: every image and document under its name with
// its SHA-256 (and the stored bytes hashed again), every form revision by
// its SHA-256, and the count of stored events. Form latencies come from
// the index's stored_at, the collector's clock: this machine's clock too.
func (r *FleetResult) check(env *Env, fleet []*virtualIDK) error {
	metrics, err := scrape(env.HTTPAddr)
	if err != nil {
		return err
	}
	// Each form's latency, for a look at when the slow ones happened.
	csv, err := os.Create(filepath.Join(env.Dir, "forms.csv"))
	if err != nil {
		return err
	}
	defer csv.Close()
	fmt.Fprintln(csv, "saved_unix_ms,latency_ms,num_idk,num_snim,revision")
	for _, v := range fleet {
		if err := r.checkOne(env, v, metrics, csv); err != nil {
			return err
		}
	}
	return csv.Close()
}

// checkOne is check for one virtual ИДК.
func (r *FleetResult) checkOne(env *Env, v *virtualIDK, metrics map[string]float64, csv io.Writer) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	num := v.agent.NumIDK
	r.Scans += v.scans
	r.Files += len(v.files)
	r.Forms += len(v.forms)
	r.Events += v.events
	entries, err := indexOf(env, num)
	if err != nil {
		return err
	}
	byName := map[string][]indexEntry{}
	formAt := map[string]time.Time{} // NUM_SNIM/sha256 -> stored_at
	for _, e := range entries {
		r.StoredBytes += e.Size
		if e.Kind == "form" {
			formAt[e.NumSnim+"/"+e.SHA256] = e.StoredAt
			continue
		}
		byName[e.NumSnim+"/"+e.Name] = append(byName[e.NumSnim+"/"+e.Name], e)
	}
	for key, sum := range v.files {
		got := byName[key]
		if len(got) == 0 {
			r.Lost = append(r.Lost, num+"/"+key+": not in the index")
			continue
		}
		if len(got) > 1 {
			r.Duplicated++
		}
		disk, _, err := env.hashStored(got[0].StoredAs)
		if got[0].SHA256 != sum || err != nil || hex.EncodeToString(disk) != sum {
			r.Lost = append(r.Lost, num+"/"+key+": another SHA-256 in the index or on disk")
		}
	}
	for _, f := range v.forms {
		at, ok := formAt[f.numSnim+"/"+f.sha]
		if !ok {
			r.Lost = append(r.Lost, num+"/"+f.numSnim+": form revision "+f.sha[:12]+" not in the index")
			continue
		}
		r.FormLatency.Each = append(r.FormLatency.Each, at.Sub(f.saved))
		fmt.Fprintf(csv, "%d,%d,%s,%s,%d\n", f.saved.UnixMilli(), at.Sub(f.saved).Milliseconds(), num, f.numSnim, f.rev)
	}
	stored := int(metrics[fmt.Sprintf("idk_collector_events_stored_total{num_idk=%q}", num)])
	r.StoredEvents += stored
	if stored < v.events {
		r.Lost = append(r.Lost, fmt.Sprintf("%s: %d of %d events stored", num, stored, v.events))
	}
	return nil
}

// indexEntry is an entry of the collector's /api/v1/files listing with
// the time it was indexed, which StoredFile leaves out.
type indexEntry struct {
	StoredFile
	StoredAt time.Time `json:"stored_at"`
}

// indexOf lists what the collector has indexed as ИДК numIDK's.
func indexOf(env *Env, numIDK string) ([]indexEntry, error) {
	r, err := env.APIGet("/api/v1/files?num_idk=" + numIDK)
	if err != nil {
		return nil, err
	}
	defer r.Body.Close()
	if r.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(r.Body)
		return nil, fmt.Errorf("files listing of %s: %s: %s", numIDK, r.Status, b)
	}
	var files []indexEntry
	if err := json.NewDecoder(r.Body).Decode(&files); err != nil {
		return nil, fmt.Errorf("files listing of %s: %w", numIDK, err)
	}
	return files, nil
}

// LostCount is the number of items lost (files, form revisions, and ИДК
// short of events).
func (r FleetResult) LostCount() int { return len(r.Lost) }

func (r FleetResult) print(out io.Writer) {
	mobile := r.IDK / fleetMobileEvery
	fmt.Fprintf(out, "\nfleet bench (P5): %d virtual ИДК in one process (the agent's spool, intake and shipper each, own certificate) -> one idk-collector process, QUIC+mTLS on loopback\n", r.IDK)
	fmt.Fprintf(out, "rate: %.0f× a busy day of %.0f scans per ИДК in 24 h (assumed: the domain reference gives no scans-per-day figure) = one scan every %.1f s per ИДК, %.1f scans/s for the fleet\n",
		r.Speedup, r.BusyDayScans, r.ScanEvery.Seconds(), float64(r.IDK)/r.ScanEvery.Seconds())
	fmt.Fprintf(out, "      each scan: 1 small RAW image, %d documents, %d form revisions (created, edited, decided), %d state changes (WORKING, WAITING); %d mobile ИДК also send a position every %.0f s (1/min ×%.0f)\n",
		fleetDocs, fleetFormRewrites+1, fleetStatesPerScan, mobile, r.PosEvery.Seconds(), r.Speedup)
	fmt.Fprintf(out, "produced: %d scans, %d images and documents, %d form revisions, %d events; the collector counted %d events stored\n",
		r.Scans, r.Files, r.Forms, r.Events, r.StoredEvents)
	verdict := "OK"
	if len(r.Lost) > 0 {
		verdict = "FAILED"
	}
	fmt.Fprintf(out, "lost %d   (goal: lost 0 — %s; every file in the index with its SHA-256 and the same bytes on disk, every form revision, every event)\n", len(r.Lost), verdict)
	for i, l := range r.Lost {
		if i == 20 {
			fmt.Fprintf(out, "   ... and %d more\n", len(r.Lost)-20)
			break
		}
		fmt.Fprintf(out, "   lost: %s\n", l)
	}
	if r.Duplicated > 0 {
		fmt.Fprintf(out, "duplicated in the index: %d\n", r.Duplicated)
	}
	fmt.Fprintf(out, "form latency (saved by the ИДК -> in the collector's index, stored_at): p50 %.3f s, p99 %.3f s, max %.3f s over %d revisions\n",
		r.FormLatency.Quantile(0.5).Seconds(), r.FormLatency.Quantile(0.99).Seconds(), r.FormLatency.Quantile(1).Seconds(), len(r.FormLatency.Each))
	slow := 0
	for _, d := range r.FormLatency.Each {
		if d >= time.Second {
			slow++
		}
	}
	fmt.Fprintf(out, "   forms over 1 s: %d of %d (each form's latency: forms.csv in the working folder)\n", slow, len(r.FormLatency.Each))
	cpu := r.CollectorCPU.Seconds()
	fmt.Fprintf(out, "collector CPU: %.1f s over %.1f s (%.0f s production + %.1f s drain) = %.2f cores; its threads also waited %.1f s for a CPU (run queue)\n",
		cpu, r.Measured.Seconds(), (r.Measured - r.Drained).Seconds(), r.Drained.Seconds(), cpu/r.Measured.Seconds(), r.CollectorWait.Seconds())
	fmt.Fprintf(out, "   per 1000 events: %.3f CPU-s   per GB stored (%.1f MB): %.1f CPU-s   (the same CPU divided by each, not a split)\n",
		cpu/(float64(r.Events)/1000), float64(r.StoredBytes)/1e6, cpu/(float64(r.StoredBytes)/1e9))
	fmt.Fprintf(out, "collector RSS: peak %.1f MB (VmHWM), end %.1f MB (VmRSS)\n", float64(r.RSSPeak)/(1<<20), float64(r.RSSEnd)/(1<<20))
	fmt.Fprintf(out, "(this process, the %d virtual ИДК on the same cores: %.1f CPU-s, %.2f cores; the machine: %d cores, load average %s at the end; per second: collector.csv)\n",
		r.IDK, r.SimulatorCPU.Seconds(), r.SimulatorCPU.Seconds()/r.Measured.Seconds(), runtime.NumCPU(), r.Load)
}

// scrape reads every sample of the collector's /metrics, by series as
// exposed (name and labels).
func scrape(addr string) (map[string]float64, error) {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	m := map[string]float64{}
	for _, line := range strings.Split(string(b), "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		if f, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			m[line[:i]] = f
		}
	}
	return m, nil
}

// runQueueWait is the time the threads of a process have spent ready to
// run but waiting for a CPU (the second field of each thread's
// /proc/<pid>/task/<tid>/schedstat), summed: against its CPU time it
// tells a collector that was slow itself from one the machine starved.
func runQueueWait(pid int) (time.Duration, error) {
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/schedstat", pid))
	if err != nil {
		return 0, fmt.Errorf("schedstat of process %d: %w", pid, err)
	}
	if len(tasks) == 0 {
		return 0, fmt.Errorf("no schedstat for process %d (a kernel without CONFIG_SCHEDSTATS, or no such process)", pid)
	}
	var sum time.Duration
	for _, t := range tasks {
		b, err := os.ReadFile(t)
		if err != nil {
			continue // a thread that ended
		}
		f := strings.Fields(string(b))
		if len(f) < 2 {
			continue
		}
		if ns, err := strconv.ParseInt(f[1], 10, 64); err == nil {
			sum += time.Duration(ns)
		}
	}
	return sum, nil
}

// selfCPU is this process's user and system CPU time so far.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// procWatch samples a process's resident set and CPU time every second,
// and writes the samples to a CSV file as it goes: a slow stretch of the
// run can then be set beside what the collector (and the machine) did.
type procWatch struct {
	stopc chan struct{}
	done  chan struct{}
	peak  int64
	last  int64
}

func startProcWatch(pid int, csvPath string) *procWatch {
	w := &procWatch{stopc: make(chan struct{}), done: make(chan struct{})}
	csv, err := os.Create(csvPath)
	if err == nil {
		fmt.Fprintln(csv, "unix_ms,collector_cpu_ms,collector_runqueue_wait_ms,collector_rss_bytes,loadavg_1m")
	}
	go func() {
		defer close(w.done)
		if csv != nil {
			defer csv.Close()
		}
		for {
			if now, _, err := RSS(pid); err == nil {
				w.last, w.peak = now, max(w.peak, now)
			}
			if csv != nil {
				cpu, _ := procCPU(pid)
				wait, _ := runQueueWait(pid)
				fmt.Fprintf(csv, "%d,%d,%d,%d,%s\n", time.Now().UnixMilli(), cpu.Milliseconds(), wait.Milliseconds(), w.last, loadAverage())
			}
			select {
			case <-w.stopc:
				return
			case <-time.After(time.Second):
			}
		}
	}()
	return w
}

// stop ends the sampling and returns the peak sampled and the last sample.
func (w *procWatch) stop() (peak, last int64) {
	select {
	case <-w.stopc:
	default:
		close(w.stopc)
	}
	<-w.done
	return w.peak, w.last
}

// loadAverage is the machine's load average over the last minute, as
// /proc/loadavg gives it; "" if unknown.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return ""
	}
	return f[0]
}
