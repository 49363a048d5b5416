// Package devstate keeps the state accounting of one ИДК: it turns
// controller samples, GPS fixes, staff declarations and operator decisions
// into state changes, the raw material of table 3 of the daily report
// (TIME_JOB, TIME_WAIT, TIME_OPER, TIME_TEH, TIME_NEPAB, TIME_PEREDISL).
//
// The Engine emits changes only; an interval is the span between two
// consecutive changes, and the collector sums the intervals per day and
// splits them at midnight. The Engine is pure logic driven by the times its
// inputs carry: it starts no goroutines and never reads the clock, so a
// simulated day runs in milliseconds and tests are exact. It is not safe for
// concurrent use; the agent feeds it from one goroutine.
//
// The state is derived by priority; the first rule that applies wins:
//
//  1. Relocation, mobile ИДК only: a valid GPS fix faster than
//     Config.RelocationSpeed starts RELOCATION. It ends when the unit has
//     stood for Config.ArrivalDwell (not faster than RelocationSpeed, and
//     within RelocationRadius of where it stopped), and the end is
//     back-dated to the start of that dwell, so that the interval is the
//     real driving time. The site then switches to the site arrived at. A
//     staff declaration of RELOCATION counts too, at rule 2.
//  2. A staff declaration in force: its state, cause and note.
//  3. A controller fault: INOPERABLE with the fault's cause. The last fault
//     seen outlasts a lost link, which it often caused.
//  4. The controller link down for more than Config.LinkGrace: UNKNOWN,
//     back-dated to the first failed poll, so the gap is exact.
//  5. Not powered: IDLE.
//  6. Powered, not ready: OPERATIONS (warm-up, preparation).
//  7. Powered and ready: WORKING from an object's arrival until the
//     operator's decision, and while the scanner is scanning; WAITING
//     otherwise, which includes the time before the first object.
//
// A Change is emitted only when the state, the cause or the site differs
// from the current one, and change times never go backwards. Every Change
// carries the site the ИДК stands at; during a relocation that is the site
// it left.
//
// A mobile ИДК seen beyond its site's radius without moving fast has
// either left at walking pace, or its PC was off during the drive, or the
// receiver jumped. The Engine then holds its changes back, for up to
// Config.ArrivalDwell, until it knows which site they belong to: if the
// unit moves on (fast, or farther than RelocationRadius), it is relocating
// since it was first seen away; if it is seen back within the site's
// radius, nothing happened and the held changes go out as they were; if it
// stays, they go out with the new site from the first fix that saw it
// there, and no relocation time is booked, since none was seen.
package devstate

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"idk/drivers/modbus"
	"idk/protocol/codes"
	"idk/protocol/idkpb"
)

// Sources of a Change, the StateChange.source values.
const (
	SourceController = "controller" // derived from the scanner's controller and the operator's work
	SourceStaff      = "staff"      // declared by the shift
	SourceGPS        = "gps"        // a relocation seen by the GPS receiver
	SourceAgent      = "agent"      // the agent has no data: it was not running, or has not heard from the controller yet
)

// Defaults of the Config fields left zero.
const (
	DefaultRelocationRadius = 500.0 // metres
	DefaultRelocationSpeed  = 10.0  // km/h
	DefaultArrivalDwell     = 10 * time.Minute
	DefaultLinkGrace        = 30 * time.Second
	DefaultZoneClear        = 5 * time.Second
)

// OutsideDisl and OutsideName describe a place outside any checkpoint, the
// site of a mobile ИДК that stopped where no known site is (DISL_P 5,
// «ВНЕ ПП»).
const (
	OutsideDisl = codes.DislOutside
	OutsideName = "ВНЕ ПП"
)

// SnapshotVersion is the format of the Snapshot this package writes.
const SnapshotVersion = 1

// Site is a place the ИДК stands at: the location fields of table 3.
type Site struct {
	Name   string  `json:"name"`    // NAIM_ZTK_M_D: the checkpoint or customs control zone
	KodTO  string  `json:"kod_to"`  // KOD_M_D: code of the customs body, 8 digits
	NaimTO string  `json:"naim_to"` // NAIM_M_D: name of the customs office
	Disl   uint32  `json:"disl"`    // DISL_P: 1 АПП, 2 МПП, 3 ЖДПП, 4 ВПП, 5 ВНЕ ПП
	Lat    float64 `json:"lat"`     // degrees, WGS 84
	Lon    float64 `json:"lon"`
	// Radius in metres around Lat, Lon that belongs to the site; 0 means
	// Config.RelocationRadius.
	Radius float64 `json:"radius,omitempty"`
}

// Proto returns the site as sent to the collector.
func (s Site) Proto() *idkpb.Site {
	return &idkpb.Site{NaimZtk: s.Name, KodTo: s.KodTO, NaimTo: s.NaimTO, Disl: s.Disl, Lat: s.Lat, Lon: s.Lon}
}

// Config describes the ИДК and the thresholds of the accounting. Zero
// thresholds take the defaults above.
type Config struct {
	// Mobile is true for a mobile ИДК (TYPE_IDK 1). GPS fixes are ignored
	// for a stationary one.
	Mobile bool
	// Home is a stationary ИДК's site, and where a mobile one starts when
	// there is no snapshot. A mobile ИДК needs its coordinates.
	Home Site
	// Sites are the known sites of a mobile ИДК. On arrival the nearest one
	// within its radius is picked; if there is none, the site is an unnamed
	// one (OutsideName, OutsideDisl) at the arrival position.
	Sites []Site
	// RelocationRadius is the default radius of a site in metres (500).
	RelocationRadius float64
	// RelocationSpeed in km/h above which the unit is moving (10).
	RelocationSpeed float64
	// ArrivalDwell is how long the unit must not move to have arrived (10m).
	ArrivalDwell time.Duration
	// LinkGrace is how long the controller link may be down before the
	// state becomes UNKNOWN (30s), so that one lost poll is not a gap.
	LinkGrace time.Duration
	// ZoneClear is how long the controller's vehicle_in_zone must have
	// been seen off before its rising edge counts as a further vehicle
	// entering while an object is pending (5s), so that a presence sensor
	// that drops out for a moment (the gap between a tractor and its
	// trailer) is not a second vehicle. See Engine.Entered.
	ZoneClear time.Duration
}

// Change is a state transition: from Time on, the ИДК is in State, until
// the next Change.
type Change struct {
	Time   time.Time             `json:"time"`
	State  idkpb.DeviceState     `json:"state"`
	Cause  idkpb.InoperableCause `json:"cause,omitempty"` // INOPERABLE only
	Note   string                `json:"note,omitempty"`  // given by staff with a declaration
	Source string                `json:"source"`          // SourceController, SourceStaff, SourceGPS or SourceAgent
	Site   Site                  `json:"site,omitzero"`
}

// Proto returns the change as sent to the collector. The time is not part
// of it: it goes into the enclosing Event's time_unix_nano.
func (c Change) Proto() *idkpb.StateChange {
	return &idkpb.StateChange{State: c.State, Cause: c.Cause, Note: c.Note, Source: c.Source, Site: c.Site.Proto()}
}

// sameAs reports whether c and d describe the same state of the ИДК, the
// test for emitting a Change: a new note or source alone is not one.
func (c Change) sameAs(d Change) bool {
	return c.State == d.State && c.Cause == d.Cause && c.Site == d.Site
}

// Declaration is what the shift says the ИДК is doing; it is in force until
// the next one.
//
//   - OPERATIONS: shift change, control inspection, radiation control,
//     deployment, folding, refuelling, rest and meal breaks (TIME_OPER);
//   - MAINTENANCE: maintenance and repair (TIME_TEH);
//   - INOPERABLE with a Cause, such as WEATHER, REBOOT or OTHER (TIME_NEPAB);
//   - RELOCATION, mobile ИДК only: a relocation the GPS did not see;
//   - UNSPECIFIED: clears the declaration, so the controller decides again.
//
// WORKING, WAITING, IDLE and UNKNOWN cannot be declared: they are facts
// the controller and the operator's decisions establish.
type Declaration struct {
	State idkpb.DeviceState     `json:"state"`
	Cause idkpb.InoperableCause `json:"cause,omitempty"`
	Note  string                `json:"note,omitempty"`
}

// FieldError is an invalid input, named by its field.
type FieldError struct {
	Field string // e.g. "cause"
	Msg   string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Msg }

// Signals is what the last good controller sample said, reduced to what
// the accounting uses.
type Signals struct {
	Powered       bool                  `json:"powered"`
	Ready         bool                  `json:"ready"`
	Scanning      bool                  `json:"scanning"`
	VehicleInZone bool                  `json:"vehicle_in_zone"`
	Fault         idkpb.InoperableCause `json:"fault,omitempty"` // the first fault signal on, or UNSPECIFIED
}

// Snapshot is the Engine's whole state, to resume after a restart: save it
// (as JSON, say) together with the changes of every call that returned
// some, and pass it to New at the next start.
type Snapshot struct {
	Version int `json:"version"` // SnapshotVersion

	// Current is the last Change emitted.
	Current Change `json:"current"`
	// Last is the latest input time seen: the previous run was alive then.
	Last time.Time `json:"last"`
	// Site is where the ИДК stands (the site it left, while relocating).
	Site Site `json:"site"`

	// Shadow is the state by rules 2-7, ignoring relocation, and since
	// when. Its Site is not used. It is what Current is when the unit is
	// not relocating.
	Shadow Change `json:"shadow"`

	// Declared is the staff declaration in force, if any.
	Declared *Declaration `json:"declared,omitempty"`

	// HaveSignals is true once a good controller sample has been seen
	// since the start (or the last gap); Signals is the last one.
	HaveSignals bool    `json:"have_signals"`
	Signals     Signals `json:"signals"`
	// LinkDownSince is when the controller link was first seen down; zero
	// while it is up.
	LinkDownSince time.Time `json:"link_down_since,omitzero"`
	// ObjectPending is true from an object's arrival until the operator's
	// decision.
	ObjectPending bool `json:"object_pending"`
	// ZoneClearSince is when vehicle_in_zone was first seen off by a good
	// sample, since it was last on; zero while it is on, or not seen off
	// since the start (or the last gap).
	ZoneClearSince time.Time `json:"zone_clear_since,omitzero"`

	// Relocating is true while RELOCATION is shown (rule 1), from
	// RelocationStart.
	Relocating      bool      `json:"relocating"`
	RelocationStart time.Time `json:"relocation_start,omitzero"`
	// Away is true while the unit is far from its site without having been
	// seen moving, since RelocationStart; its changes are held in Pending.
	Away bool `json:"away"`
	// DwellStart is when the unit stopped moving (or was first seen away),
	// at DwellLat, DwellLon: ArrivalDwell later it has arrived, at
	// DwellStart. Zero while moving.
	DwellStart time.Time `json:"dwell_start,omitzero"`
	DwellLat   float64   `json:"dwell_lat,omitempty"`
	DwellLon   float64   `json:"dwell_lon,omitempty"`
	// FixLat and FixLon are the last valid position seen while relocating
	// or away: the place arrived at.
	FixLat float64 `json:"fix_lat,omitempty"`
	FixLon float64 `json:"fix_lon,omitempty"`
	// Pending are the Shadow changes while relocating or away, the first
	// being the Shadow at the start: replayed with the site arrived at.
	Pending []Change `json:"pending,omitempty"`
}

// Engine derives the ИДК's state changes from its inputs. Every input
// method returns the changes it caused, in time order, usually none.
type Engine struct {
	cfg Config
	s   Snapshot
	// entered are the times of further vehicles entering, until Entered
	// takes them.
	entered []time.Time
}

// New returns an Engine for cfg that resumes from snap, or starts fresh if
// snap is nil. A stationary ИДК always stands at cfg.Home, whatever the
// snapshot says, so that a corrected configuration takes effect.
func New(cfg Config, snap *Snapshot) (*Engine, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("devstate: %w", err)
	}
	e := &Engine{cfg: cfg}
	if snap == nil {
		e.s = Snapshot{Version: SnapshotVersion, Site: cfg.Home, Current: Change{Site: cfg.Home}}
		return e, nil
	}
	if snap.Version != SnapshotVersion {
		return nil, fmt.Errorf("devstate: snapshot version %d, want %d", snap.Version, SnapshotVersion)
	}
	if snap.Relocating && snap.Away {
		return nil, errors.New("devstate: snapshot is both relocating and away")
	}
	e.s = snap.clone()
	if !cfg.Mobile {
		// The ИДК was configured as mobile when the snapshot was taken:
		// there is no relocation to finish, and the next input derives the
		// state at home.
		e.s.Site = cfg.Home
		e.s.stopMoving()
	}
	return e, nil
}

func (cfg Config) withDefaults() (Config, error) {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, &FieldError{Field: "config." + field, Msg: fmt.Sprintf(format, args...)})
	}
	for _, f := range []struct {
		name string
		v    *float64
		def  float64
	}{
		{"RelocationRadius", &cfg.RelocationRadius, DefaultRelocationRadius},
		{"RelocationSpeed", &cfg.RelocationSpeed, DefaultRelocationSpeed},
	} {
		if *f.v < 0 || math.IsNaN(*f.v) {
			bad(f.name, "%v: want a positive number", *f.v)
		} else if *f.v == 0 {
			*f.v = f.def
		}
	}
	for _, f := range []struct {
		name string
		v    *time.Duration
		def  time.Duration
	}{
		{"ArrivalDwell", &cfg.ArrivalDwell, DefaultArrivalDwell},
		{"LinkGrace", &cfg.LinkGrace, DefaultLinkGrace},
		{"ZoneClear", &cfg.ZoneClear, DefaultZoneClear},
	} {
		if *f.v < 0 {
			bad(f.name, "%v is negative", *f.v)
		} else if *f.v == 0 {
			*f.v = f.def
		}
	}
	checkSite := func(field string, s Site, needPosition bool) {
		if !codes.Disl.Valid(int(s.Disl)) {
			bad(field+".Disl", "%d: want 1-5 (АПП, МПП, ЖДПП, ВПП, ВНЕ ПП)", s.Disl)
		}
		if s.Radius < 0 || math.IsNaN(s.Radius) {
			bad(field+".Radius", "%v: want 0 (the default) or more metres", s.Radius)
		}
		if math.Abs(s.Lat) > 90 || math.IsNaN(s.Lat) || math.Abs(s.Lon) > 180 || math.IsNaN(s.Lon) {
			bad(field+".Lat", "%v, %v is not a position", s.Lat, s.Lon)
		} else if needPosition && s.Lat == 0 && s.Lon == 0 {
			// Without a position a site can neither be left nor arrived at.
			bad(field+".Lat", "a mobile ИДК's site needs its Lat and Lon")
		}
	}
	checkSite("Home", cfg.Home, cfg.Mobile)
	for i, s := range cfg.Sites {
		checkSite(fmt.Sprintf("Sites[%d]", i), s, true)
	}
	cfg.Sites = slices.Clone(cfg.Sites)
	return cfg, errors.Join(errs...)
}

// Current returns the last Change emitted. Before the first one it has
// State UNSPECIFIED and the starting site.
func (e *Engine) Current() Change { return e.s.Current }

// Snapshot returns the Engine's state, for New after a restart.
func (e *Engine) Snapshot() Snapshot { return e.s.clone() }

func (s Snapshot) clone() Snapshot {
	if s.Declared != nil {
		d := *s.Declared
		s.Declared = &d
	}
	s.Pending = slices.Clone(s.Pending)
	return s
}

// Resume accounts for the time the agent was not running. Call it once at
// agent start, before any input, with the current time and the last time
// the previous run is known to have been alive (the time of a clean stop,
// or of its last heartbeat after a crash; zero if unknown). The snapshot's
// latest input time counts as alive too.
//
// A gap longer than LinkGrace is time nobody observed, whether the stop was
// clean or not: it is UNKNOWN from the last alive time on (source "agent"),
// and what the Engine knew of the controller, of a pending object and of a
// dwell is forgotten. A staff declaration stays in force and shows again
// at now; everything else is derived again as inputs arrive. A shorter gap,
// such as a quick restart of the service, is no gap: nothing is emitted and
// the state continues.
//
// Booking a clean stop as a gap is deliberate: the scanner PC is shut down
// cleanly every night, and the state it was in then (waiting, say) must not
// run on until morning.
func (e *Engine) Resume(now, lastAlive time.Time) []Change {
	s := &e.s
	alive := lastAlive
	if s.Last.After(alive) {
		alive = s.Last
	}
	if alive.IsZero() || now.Sub(alive) <= e.cfg.LinkGrace {
		return nil
	}
	var out []Change
	if s.Away {
		// Those changes were observed; with the position unsettled, they
		// belong to the site the unit was last known at.
		out = e.flush()
	}
	s.stopMoving()
	s.HaveSignals, s.Signals, s.LinkDownSince, s.ObjectPending = false, Signals{}, time.Time{}, false
	s.ZoneClearSince = time.Time{}

	gap := Change{Time: alive, State: idkpb.DeviceState_DEVICE_STATE_UNKNOWN, Source: SourceAgent}
	s.Shadow = gap
	gap.Site = s.Site
	if !gap.sameAs(s.Current) {
		if gap.Time.Before(s.Current.Time) {
			gap.Time = s.Current.Time
		}
		s.Current = gap
		out = append(out, gap)
	}
	e.seen(now)
	return append(out, e.step(now)...)
}

// Controller takes one controller sample. A sample with Err set carries no
// signals, whether the link is down or the controller refused a read: for
// the accounting the controller is unreachable either way.
func (e *Engine) Controller(smp modbus.Sample) []Change {
	t := smp.Time
	if t.IsZero() {
		return nil
	}
	e.seen(t)
	s := &e.s
	if smp.Link != modbus.LinkUp || smp.Err != nil {
		if s.LinkDownSince.IsZero() {
			s.LinkDownSince = t
		}
		return e.step(t)
	}
	s.LinkDownSince = time.Time{}
	f := smp.Flags
	sig := Signals{
		Powered:       f[modbus.Powered],
		Ready:         f[modbus.Ready],
		Scanning:      f[modbus.Scanning],
		VehicleInZone: f[modbus.VehicleInZone],
		Fault:         faultCause(f),
	}
	prev := s.Signals // zero before the first sample: a vehicle already there counts as arriving
	havePrev := s.HaveSignals
	s.Signals, s.HaveSignals = sig, true
	entering := sig.VehicleInZone && !prev.VehicleInZone
	switch {
	case !sig.VehicleInZone:
		if s.ZoneClearSince.IsZero() {
			s.ZoneClearSince = t
		}
	case entering:
		// A further vehicle while an object is pending: the state stays
		// WORKING, so only this tells its arrival. The zone must have been
		// seen clear long enough, which a link that drops and comes back
		// never shows: the last good sample's signals outlast it.
		if havePrev && sig.Powered && s.ObjectPending && !s.ZoneClearSince.IsZero() && t.Sub(s.ZoneClearSince) >= e.cfg.ZoneClear {
			e.entered = append(e.entered, t)
		}
		s.ZoneClearSince = time.Time{}
	}
	switch {
	case !sig.Powered:
		// With the scanner off, no object is being inspected; one left
		// pending would book tomorrow's first wait as work.
		s.ObjectPending = false
	case entering, sig.Scanning && !prev.Scanning:
		s.ObjectPending = true
	}
	return e.step(t)
}

// Entered returns, and forgets, the times at which the controller showed
// a further vehicle entering the work zone while an object was pending:
// the rising edge of vehicle_in_zone, after the zone was seen clear for at
// least Config.ZoneClear. No Change tells those arrivals, since the state
// stays WORKING. The first vehicle's edge, which starts WORKING, is not
// one. Call it after every input; the agent records them as
// VehicleEntered events.
func (e *Engine) Entered() []time.Time {
	t := e.entered
	e.entered = nil
	return t
}

// faults maps the controller's fault signals to causes, in the order that
// picks the cause when several are on.
var faults = []struct {
	sig   modbus.Signal
	cause idkpb.InoperableCause
}{
	{modbus.AcceleratorFault, idkpb.InoperableCause_INOPERABLE_CAUSE_ACCELERATOR},
	{modbus.GeneratorFault, idkpb.InoperableCause_INOPERABLE_CAUSE_GENERATOR},
	{modbus.BoomFault, idkpb.InoperableCause_INOPERABLE_CAUSE_BOOM},
	{modbus.ChassisFault, idkpb.InoperableCause_INOPERABLE_CAUSE_CHASSIS},
	{modbus.SoftwareFault, idkpb.InoperableCause_INOPERABLE_CAUSE_SOFTWARE},
}

func faultCause(flags map[modbus.Signal]bool) idkpb.InoperableCause {
	for _, f := range faults {
		if flags[f.sig] {
			return f.cause
		}
	}
	return idkpb.InoperableCause_INOPERABLE_CAUSE_UNSPECIFIED
}

// Arrival records that an object arrived in the work zone at t. The rising
// edges of the controller's vehicle_in_zone and scanning signals count as
// arrivals already. An arrival while the controller says the scanner is off
// is ignored: nothing can be inspected.
func (e *Engine) Arrival(t time.Time) []Change {
	if t.IsZero() {
		return nil
	}
	e.seen(t)
	if !e.s.HaveSignals || e.s.Signals.Powered {
		e.s.ObjectPending = true
	}
	return e.step(t)
}

// Decision records that the operator recorded a decision at t, ending the
// work on the current object. Call it once per object, for the first form
// revision that carries a decision: a later revision of an old form must
// not end the work on the next object.
func (e *Engine) Decision(t time.Time) []Change {
	if t.IsZero() {
		return nil
	}
	e.seen(t)
	e.s.ObjectPending = false
	return e.step(t)
}

// Declare puts the staff declaration d in force from t, or clears it if
// d.State is UNSPECIFIED. It returns a *FieldError naming the field if d is
// not valid, and changes nothing then. Declaring the state already shown
// emits nothing, even with a new note.
func (e *Engine) Declare(t time.Time, d Declaration) ([]Change, error) {
	if t.IsZero() {
		return nil, fmt.Errorf("devstate: declare: %w", &FieldError{Field: "time", Msg: "zero"})
	}
	if err := e.check(d); err != nil {
		return nil, fmt.Errorf("devstate: declare %s: %w", d.State, err)
	}
	e.seen(t)
	if d.State == idkpb.DeviceState_DEVICE_STATE_UNSPECIFIED {
		e.s.Declared = nil
	} else {
		e.s.Declared = &d
	}
	return e.step(t), nil
}

func (e *Engine) check(d Declaration) error {
	switch d.State {
	case idkpb.DeviceState_DEVICE_STATE_UNSPECIFIED,
		idkpb.DeviceState_DEVICE_STATE_OPERATIONS,
		idkpb.DeviceState_DEVICE_STATE_MAINTENANCE,
		idkpb.DeviceState_DEVICE_STATE_INOPERABLE:
	case idkpb.DeviceState_DEVICE_STATE_RELOCATION:
		if !e.cfg.Mobile {
			return &FieldError{Field: "state", Msg: "a stationary ИДК cannot be relocated"}
		}
	case idkpb.DeviceState_DEVICE_STATE_WORKING,
		idkpb.DeviceState_DEVICE_STATE_WAITING,
		idkpb.DeviceState_DEVICE_STATE_IDLE,
		idkpb.DeviceState_DEVICE_STATE_UNKNOWN:
		return &FieldError{Field: "state", Msg: d.State.String() + " cannot be declared: it comes from the controller"}
	default:
		return &FieldError{Field: "state", Msg: fmt.Sprintf("%d is not a device state", int32(d.State))}
	}
	if _, ok := idkpb.InoperableCause_name[int32(d.Cause)]; !ok {
		return &FieldError{Field: "cause", Msg: fmt.Sprintf("%d is not an inoperability cause", int32(d.Cause))}
	}
	inoperable := d.State == idkpb.DeviceState_DEVICE_STATE_INOPERABLE
	hasCause := d.Cause != idkpb.InoperableCause_INOPERABLE_CAUSE_UNSPECIFIED
	switch {
	case inoperable && !hasCause:
		return &FieldError{Field: "cause", Msg: "INOPERABLE needs a cause"}
	case !inoperable && hasCause:
		return &FieldError{Field: "cause", Msg: "a cause goes only with INOPERABLE"}
	}
	return nil
}

// seen records t as the latest input time.
func (e *Engine) seen(t time.Time) {
	if t.After(e.s.Last) {
		e.s.Last = t
	}
}
