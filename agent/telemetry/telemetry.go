// Package telemetry runs the agent's device inputs — the scanner
// controller (Modbus) and, on a mobile ИДК, the GPS receiver — through the
// device state engine (package devstate), and records every state change
// durably in the spool, from where it travels to the collector as an
// event. Staff declarations and operators' decisions enter here too.
package telemetry

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"idk/agent/devstate"
	"idk/agent/spool"
	"idk/drivers/gps"
	"idk/drivers/modbus"
	"idk/internal/clock"
	"idk/internal/diskfree"
	"idk/protocol/idkpb"
)

// Spool meta keys.
const (
	metaSnapshot  = "devstate"
	metaHeartbeat = "heartbeat"
)

// Config wires Telemetry.
type Config struct {
	Engine     devstate.Config
	Controller *modbus.Config // nil: no controller wired
	GPSPort    string         // serial device of the NMEA receiver; "": none
	GPSBaud    int            // default 4800
	Spool      *spool.Spool
	// Clock times the heartbeat and the engine's steps; default
	// clock.Real. A Controller without a clock of its own polls on it.
	Clock clock.Clock
	Log   *slog.Logger
	// Heartbeat is how often the agent notes that it is alive, which
	// bounds how much of a power cut could be booked as the last state.
	Heartbeat time.Duration // default 15s
	// PositionEvery is how often a moving or parked mobile ИДК reports
	// its position (default 1m).
	PositionEvery time.Duration
	// SpoolDir and MinFree: when the spool's disk has less than MinFree
	// bytes left, telemetry detail (positions) is not recorded, so that
	// the room left goes to scans, forms and state changes.
	SpoolDir string
	MinFree  uint64
}

// Telemetry owns the engine. It is safe for concurrent use.
type Telemetry struct {
	cfg Config

	mu      sync.Mutex
	eng     *devstate.Engine
	lastPos time.Time
	// savedAt is when the snapshot was last written without a change.
	// Every sample moves the snapshot a little; writing (and syncing) it
	// once a second is plenty, since a restart re-derives the state from
	// the next samples anyway. Changes are always written at once.
	savedAt time.Time

	shed     atomic.Uint64 // positions not recorded for lack of disk
	shedding bool          // under mu: a shedding episode is under way (logged once)
}

// New restores the engine from the spool.
func New(cfg Config) (*Telemetry, error) {
	cfg.Clock = clock.Or(cfg.Clock)
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = 15 * time.Second
	}
	if cfg.PositionEvery <= 0 {
		cfg.PositionEvery = time.Minute
	}
	if cfg.GPSBaud == 0 {
		cfg.GPSBaud = 4800
	}
	var snap *devstate.Snapshot
	err := cfg.Spool.View(func(tx *spool.Tx) error {
		if b := tx.Meta(metaSnapshot); b != nil {
			snap = &devstate.Snapshot{}
			if err := json.Unmarshal(b, snap); err != nil {
				return fmt.Errorf("device state snapshot: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("telemetry: %w", err)
	}
	eng, err := devstate.New(cfg.Engine, snap)
	if err != nil {
		return nil, fmt.Errorf("telemetry: %w", err)
	}
	return &Telemetry{cfg: cfg, eng: eng}, nil
}

// Run feeds the engine until ctx ends.
func (t *Telemetry) Run(ctx context.Context) error {
	now := t.cfg.Clock.Now()
	var lastAlive time.Time
	t.cfg.Spool.View(func(tx *spool.Tx) error {
		if b := tx.Meta(metaHeartbeat); b != nil {
			lastAlive, _ = time.Parse(time.RFC3339Nano, string(b))
		}
		return nil
	})
	if !lastAlive.IsZero() {
		// The agent was not running between its last heartbeat and now
		// (a stop, a crash, a power cut): that time is a gap, not work.
		t.apply(func(e *devstate.Engine) []devstate.Change { return e.Resume(now, lastAlive) })
	}
	t.heartbeat()

	var wg sync.WaitGroup
	defer wg.Wait()
	if c := t.cfg.Controller; c != nil {
		cc := *c
		cc.Logger = t.cfg.Log.With("part", "controller")
		if cc.Clock == nil {
			cc.Clock = t.cfg.Clock
		}
		p, err := modbus.New(cc)
		if err != nil {
			return fmt.Errorf("telemetry: controller: %w", err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.Run(ctx, func(s modbus.Sample) {
				t.apply(func(e *devstate.Engine) []devstate.Change { return e.Controller(s) })
			})
		}()
	}
	if t.cfg.GPSPort != "" {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t.runGPS(ctx)
		}()
	}
	tick := t.cfg.Clock.NewTicker(t.cfg.Heartbeat)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			t.heartbeat()
			return nil
		case <-tick.C():
			t.heartbeat()
		}
	}
}

// runGPS reads the receiver, reopening the port if it goes away (a USB
// receiver unplugged and plugged back).
func (t *Telemetry) runGPS(ctx context.Context) {
	log := t.cfg.Log.With("part", "gps", "port", t.cfg.GPSPort)
	for ctx.Err() == nil {
		port, err := gps.Open(t.cfg.GPSPort, t.cfg.GPSBaud)
		if err != nil {
			log.Warn("cannot open GPS receiver; retrying", "err", err)
			if clock.Sleep(ctx, t.cfg.Clock, 10*time.Second) != nil {
				return
			}
			continue
		}
		stop := context.AfterFunc(ctx, func() { port.Close() })
		t.readGPS(gps.NewReader(port, log), log)
		stop()
		port.Close()
	}
}

func (t *Telemetry) readGPS(r *gps.Reader, log *slog.Logger) {
	for {
		f, err := r.Next()
		if err != nil {
			if err != io.EOF {
				log.Warn("GPS receiver read failed; reopening", "err", err)
			}
			return
		}
		t.GPS(f)
	}
}

// GPS feeds one fix (exported so tests and simulators can drive it).
func (t *Telemetry) GPS(f gps.Fix) {
	t.apply(func(e *devstate.Engine) []devstate.Change { return e.GPS(f) })
	if !f.Valid || f.Time.IsZero() {
		return
	}
	t.mu.Lock()
	due := f.Time.Sub(t.lastPos) >= t.cfg.PositionEvery
	if due {
		t.lastPos = f.Time
	}
	t.mu.Unlock()
	if due && t.lowDisk() {
		t.shed.Add(1)
		return
	}
	if due {
		t.record(f.Time, &idkpb.Event_Position{Position: &idkpb.Position{Lat: f.Lat, Lon: f.Lon, SpeedKmh: f.SpeedKmh, Valid: true}})
	}
}

// Shed is how many telemetry details were not recorded for lack of disk.
func (t *Telemetry) Shed() uint64 { return t.shed.Load() }

// lowDisk reports whether the spool's disk is below MinFree, logging the
// start and the end of each such episode once.
func (t *Telemetry) lowDisk() bool {
	if t.cfg.SpoolDir == "" || t.cfg.MinFree == 0 {
		return false
	}
	free, err := diskfree.Bytes(t.cfg.SpoolDir)
	low := err == nil && free < t.cfg.MinFree
	t.mu.Lock()
	defer t.mu.Unlock()
	if low != t.shedding {
		t.shedding = low
		if low {
			t.cfg.Log.Error("spool disk nearly full: positions are no longer recorded; scans, forms and state changes still are",
				"dir", t.cfg.SpoolDir, "free_bytes", free, "min_free_bytes", t.cfg.MinFree)
		} else {
			t.cfg.Log.Info("spool disk has room again: positions are recorded again", "dir", t.cfg.SpoolDir, "free_bytes", free)
		}
	}
	return low
}

// Declare records a state declared by staff.
func (t *Telemetry) Declare(d devstate.Declaration) error {
	var derr error
	t.apply(func(e *devstate.Engine) []devstate.Change {
		ch, err := e.Declare(t.cfg.Clock.Now(), d)
		derr = err
		return ch
	})
	return derr
}

// Decision tells the engine that an operator recorded a decision.
func (t *Telemetry) Decision(at time.Time) {
	t.apply(func(e *devstate.Engine) []devstate.Change { return e.Decision(at) })
}

// Current is the state now.
func (t *Telemetry) Current() devstate.Change {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.eng.Current()
}

// apply runs one engine step and records its changes and the engine's
// snapshot in one spool transaction, so a restart resumes exactly where
// the last recorded change left it.
func (t *Telemetry) apply(step func(*devstate.Engine) []devstate.Change) {
	t.mu.Lock()
	defer t.mu.Unlock()
	changes := step(t.eng)
	entered := t.eng.Entered()
	// The throttle is on the wall clock, not Config.Clock: it bounds the
	// disk syncs per real second, which a virtual day must not multiply.
	if len(changes) == 0 && len(entered) == 0 && time.Since(t.savedAt) < time.Second {
		return
	}
	t.savedAt = time.Now()
	snap, err := json.Marshal(t.eng.Snapshot())
	if err != nil {
		t.cfg.Log.Error("cannot encode device state snapshot", "err", err)
		return
	}
	err = t.cfg.Spool.Update(func(tx *spool.Tx) error {
		for _, c := range changes {
			ev := &idkpb.Event{TimeUnixNano: c.Time.UnixNano(), Body: &idkpb.Event_State{State: c.Proto()}}
			if _, err := tx.AppendEvent(ev); err != nil {
				return err
			}
		}
		// After the changes: an entry is at its sample's time, which no
		// change of the same step follows.
		for _, at := range entered {
			ev := &idkpb.Event{TimeUnixNano: at.UnixNano(), Body: &idkpb.Event_VehicleEntered{VehicleEntered: &idkpb.VehicleEntered{}}}
			if _, err := tx.AppendEvent(ev); err != nil {
				return err
			}
		}
		return tx.PutMeta(metaSnapshot, snap)
	})
	if err != nil {
		t.cfg.Log.Error("cannot record device state change", "err", err)
		return
	}
	for _, c := range changes {
		t.cfg.Log.Info("device state", "state", StateName(c.State), "cause", CauseName(c.Cause), "since", c.Time, "source", c.Source, "site", c.Site.Name)
	}
	for _, at := range entered {
		t.cfg.Log.Info("further vehicle entered the zone", "at", at)
	}
}

func (t *Telemetry) record(at time.Time, body *idkpb.Event_Position) {
	err := t.cfg.Spool.Update(func(tx *spool.Tx) error {
		_, err := tx.AppendEvent(&idkpb.Event{TimeUnixNano: at.UnixNano(), Body: body})
		return err
	})
	if err != nil {
		t.cfg.Log.Error("cannot record position", "err", err)
	}
}

func (t *Telemetry) heartbeat() {
	now := t.cfg.Clock.Now().UTC().Format(time.RFC3339Nano)
	if err := t.cfg.Spool.Update(func(tx *spool.Tx) error { return tx.PutMeta(metaHeartbeat, []byte(now)) }); err != nil {
		t.cfg.Log.Error("cannot record heartbeat", "err", err)
	}
}

var stateNames = map[string]idkpb.DeviceState{
	"working":     idkpb.DeviceState_DEVICE_STATE_WORKING,
	"waiting":     idkpb.DeviceState_DEVICE_STATE_WAITING,
	"operations":  idkpb.DeviceState_DEVICE_STATE_OPERATIONS,
	"maintenance": idkpb.DeviceState_DEVICE_STATE_MAINTENANCE,
	"inoperable":  idkpb.DeviceState_DEVICE_STATE_INOPERABLE,
	"relocation":  idkpb.DeviceState_DEVICE_STATE_RELOCATION,
	"idle":        idkpb.DeviceState_DEVICE_STATE_IDLE,
	"unknown":     idkpb.DeviceState_DEVICE_STATE_UNKNOWN,
	"clear":       idkpb.DeviceState_DEVICE_STATE_UNSPECIFIED,
}

var causeNames = map[string]idkpb.InoperableCause{
	"reboot":      idkpb.InoperableCause_INOPERABLE_CAUSE_REBOOT,
	"weather":     idkpb.InoperableCause_INOPERABLE_CAUSE_WEATHER,
	"generator":   idkpb.InoperableCause_INOPERABLE_CAUSE_GENERATOR,
	"boom":        idkpb.InoperableCause_INOPERABLE_CAUSE_BOOM,
	"accelerator": idkpb.InoperableCause_INOPERABLE_CAUSE_ACCELERATOR,
	"chassis":     idkpb.InoperableCause_INOPERABLE_CAUSE_CHASSIS,
	"software":    idkpb.InoperableCause_INOPERABLE_CAUSE_SOFTWARE,
	"other":       idkpb.InoperableCause_INOPERABLE_CAUSE_OTHER,
}

// StateName is the command-line name of a state.
func StateName(s idkpb.DeviceState) string {
	for k, v := range stateNames {
		if v == s && k != "clear" {
			return k
		}
	}
	return "unspecified"
}

// CauseName is the command-line name of a cause, "" for none.
func CauseName(c idkpb.InoperableCause) string {
	for k, v := range causeNames {
		if v == c {
			return k
		}
	}
	return ""
}

// ParseDeclaration reads a staff declaration as typed on the command line:
// state operations|maintenance|inoperable|relocation|clear, cause (for
// inoperable) reboot|weather|generator|boom|accelerator|chassis|software|other.
func ParseDeclaration(state, cause, note string) (devstate.Declaration, error) {
	s, ok := stateNames[strings.ToLower(state)]
	if !ok {
		return devstate.Declaration{}, fmt.Errorf("state %q: want operations, maintenance, inoperable, relocation or clear", state)
	}
	d := devstate.Declaration{State: s, Note: note}
	if cause != "" {
		c, ok := causeNames[strings.ToLower(cause)]
		if !ok {
			return d, fmt.Errorf("cause %q: want reboot, weather, generator, boom, accelerator, chassis, software or other", cause)
		}
		d.Cause = c
	}
	return d, nil
}
