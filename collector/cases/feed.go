package cases

import (
	"fmt"
	"log/slog"
	"sync"
	"time"

	"idk/collector/ingest"
	"idk/protocol/idkpb"
)

// bucketFeedState, in the collector's index, holds what the feed knows of
// each ИДК's working zone: NUM_IDK -> the last device state (1 byte) and
// the zone flags (1 byte). A value of 1 byte was written before the flags
// were kept; see decodeZone.
const bucketFeedState = "cases.state"

// lateReason is the reason the feed gives a device's own record (a state
// change, a scan, a form) older than the engine's backdating window: the
// agent's spool held it through an outage, and its time is the agent's
// clock corrected at the hello, not a person's claim.
const lateReason = "delivered late from the agent's spool"

// zone is what the feed knows of one ИДК's working zone.
type zone struct {
	state idkpb.DeviceState // the last device state
	// controller: the ИДК has reported a state from its controller. One
	// without a controller never reaches WORKING, so its scans mark the
	// arrivals.
	controller bool
	// visible: the last state came from the controller and shows the zone.
	// A lost link (UNKNOWN), a fault (INOPERABLE) or a staff declaration
	// hides it.
	visible bool
	// occupied: an object has arrived and the zone has not been idle
	// (WAITING, or IDLE: switched off) since. Only an idle zone can have an
	// arrival, so a link that drops and comes back to WORKING is the same
	// object.
	occupied bool
	// ahead: a further vehicle's arrival was marked at its entry into the
	// zone (VehicleEntered) while an earlier object was being worked on,
	// and neither its scan nor its own change into WORKING has been seen
	// since. That change, or its scan where the controller's view is
	// hidden, is then no second arrival.
	ahead bool
}

const (
	zoneController = 1 << iota
	zoneVisible
	zoneOccupied
	zoneAhead
)

func (z zone) encode() []byte {
	var flags byte
	for _, f := range []struct {
		on  bool
		bit byte
	}{{z.controller, zoneController}, {z.visible, zoneVisible}, {z.occupied, zoneOccupied}, {z.ahead, zoneAhead}} {
		if f.on {
			flags |= f.bit
		}
	}
	return []byte{byte(z.state), flags}
}

// decodeZone reads a stored zone. A 1-byte value holds the state alone:
// WORKING and WAITING only ever come from a controller, so they tell
// that one is wired and showing the zone.
func decodeZone(numIDK, v []byte) (zone, error) {
	switch len(v) {
	case 1:
		s := idkpb.DeviceState(v[0])
		ctl := s == idkpb.DeviceState_DEVICE_STATE_WORKING || s == idkpb.DeviceState_DEVICE_STATE_WAITING
		return zone{state: s, controller: ctl, visible: ctl, occupied: s == idkpb.DeviceState_DEVICE_STATE_WORKING}, nil
	case 2:
		return zone{state: idkpb.DeviceState(v[0]), controller: v[1]&zoneController != 0,
			visible: v[1]&zoneVisible != 0, occupied: v[1]&zoneOccupied != 0, ahead: v[1]&zoneAhead != 0}, nil
	}
	return zone{}, fmt.Errorf("cases: device state of %s: %d bytes, want 1 or 2", numIDK, len(v))
}

// arrivalBy says what marked an arrival.
type arrivalBy int

const (
	noArrival arrivalBy = iota
	byController
	byScan
	byEntry // a further vehicle entering while the zone is occupied
)

// step is the zone after ev, and whether ev marks an object's arrival.
//
//   - A change into WORKING is an arrival only if the zone was idle
//     before. A return to WORKING after a lost link, a fault or a staff
//     declaration, with no WAITING between, is the object already there.
//   - A scan marks the arrival itself where the states cannot: at an
//     ИДК without a controller, and while the controller's view is hidden
//     and no object has arrived. The agent first saw the scan folder at
//     its ScanSeen time, so the object had arrived by then at the latest.
//   - A VehicleEntered (the controller's vehicle-in-zone edge while the
//     ИДК is WORKING on an earlier object) is a further vehicle's arrival
//     if the zone is occupied. Its later change into WORKING from an idle
//     zone (after the earlier object's decision), or its scan while the
//     controller's view is hidden and the zone idle, is the same vehicle
//     and no arrival.
func (z zone) step(ev *idkpb.Event) (zone, arrivalBy) {
	switch b := ev.Body.(type) {
	case *idkpb.Event_State:
		s := b.State.State
		fromController := b.State.Source == "controller"
		z.controller = z.controller || fromController
		z.visible = fromController && s != idkpb.DeviceState_DEVICE_STATE_UNKNOWN && s != idkpb.DeviceState_DEVICE_STATE_INOPERABLE
		prev := z.state
		z.state = s
		switch s {
		case idkpb.DeviceState_DEVICE_STATE_IDLE:
			// Switched off: whoever entered is no longer being inspected.
			z.occupied, z.ahead = false, false
		case idkpb.DeviceState_DEVICE_STATE_WAITING:
			z.occupied = false
		case idkpb.DeviceState_DEVICE_STATE_WORKING:
			if prev != idkpb.DeviceState_DEVICE_STATE_WORKING && !z.occupied {
				z.occupied = true
				if z.ahead {
					z.ahead = false
					return z, noArrival
				}
				return z, byController
			}
			z.occupied = true
		}
	case *idkpb.Event_ScanSeen:
		ahead := z.ahead
		z.ahead = false
		switch {
		case !z.controller:
			return z, byScan
		case !z.visible && !z.occupied:
			z.occupied = true
			if ahead {
				return z, noArrival
			}
			return z, byScan
		}
	case *idkpb.Event_VehicleEntered:
		if z.controller && z.occupied {
			z.ahead = true
			return z, byEntry
		}
	}
	return z, noArrival
}

// arrival is the arrival event ev marks, if any, and moves the zone on.
func (f *Feed) arrival(dev *idkpb.Device, ev *idkpb.Event) (Event, bool) {
	f.mu.Lock()
	z, by := f.zones[dev.NumIdk].step(ev)
	f.zones[dev.NumIdk] = z
	f.mu.Unlock()
	at := time.Unix(0, ev.CollectorTimeUnixNano)
	switch by {
	case byController, byEntry:
		return Event{Kind: Arrival, Time: at, NumIDK: dev.NumIdk, By: "agent", Source: "controller"}, true
	case byScan:
		// The scan's image comes with it, so that the scan joins this
		// arrival and no older arrival that no scan claimed.
		return Event{Kind: Arrival, Time: at, NumIDK: dev.NumIdk, NumSnim: ev.GetScanSeen().GetNumSnim(), By: "agent", Source: "scan"}, true
	}
	return Event{}, false
}

// Feed turns agents' stored events into inspection-case events: a scan, an
// arrival (see zone.step: the device going into WORKING from an idle zone,
// a further vehicle entering the occupied zone, or a scan where no
// controller shows the zone), and a decision (a form
// revision that carries one). Times are the events' collector times,
// already corrected for the agent's clock.
//
// To tell an arrival it needs each ИДК's zone state: it records it
// in the transaction that stores the event (ingest.Consumer) and loads it
// at start (ingest.Loader). The engine is handed the case events once
// they are committed (ingest.Follower); it keeps its own durable record.
type Feed struct {
	engine *Engine
	log    *slog.Logger

	mu    sync.Mutex
	zones map[string]zone // by NUM_IDK, as of the last Follow
}

// NewFeed returns a Feed into e.
func NewFeed(e *Engine, log *slog.Logger) *Feed {
	if log == nil {
		log = slog.Default()
	}
	return &Feed{engine: e, log: log, zones: map[string]zone{}}
}

// Apply records what ev changes in dev's zone (a device state, or a scan
// that marked an arrival) and in its site history (a state change that
// says where the ИДК stands, as table 3 takes it).
func (f *Feed) Apply(tx ingest.Tx, dev *idkpb.Device, _ uint64, ev *idkpb.Event) error {
	if s := ev.GetState().GetSite(); s != nil {
		if err := applySite(tx, dev.NumIdk, siteChange{At: time.Unix(0, ev.CollectorTimeUnixNano), Place: placeOf(s)}); err != nil {
			return err
		}
	}
	if ev.GetState() == nil && ev.GetScanSeen() == nil && ev.GetVehicleEntered() == nil {
		return nil
	}
	if sc := ev.GetState(); sc != nil && (sc.State < 0 || sc.State > 255) {
		return fmt.Errorf("cases: device state %d out of range", sc.State)
	}
	key := []byte(dev.NumIdk)
	v, err := tx.Get(bucketFeedState, key)
	if err != nil {
		return fmt.Errorf("cases: device state of %s: %w", dev.NumIdk, err)
	}
	var z zone
	if v != nil {
		if z, err = decodeZone(key, v); err != nil {
			return err
		}
	}
	next, _ := z.step(ev)
	if next == z && v != nil && len(v) == 2 {
		return nil
	}
	return tx.Put(bucketFeedState, key, next.encode())
}

// Load reads each ИДК's last device state, and hands the engine each
// ИДК's site history.
func (f *Feed) Load(tx ingest.Tx) error {
	f.mu.Lock()
	err := tx.Scan(bucketFeedState, nil, nil, false, func(k, v []byte) error {
		z, err := decodeZone(k, v)
		if err != nil {
			return err
		}
		f.zones[string(k)] = z
		return nil
	})
	f.mu.Unlock()
	if err != nil {
		return err
	}
	sites := map[string][]siteChange{}
	err = tx.Scan(bucketFeedSites, nil, nil, false, func(k, v []byte) error {
		h, err := decodeSites(k, v)
		if err != nil {
			return err
		}
		sites[norm(string(k))] = h
		return nil
	})
	if err != nil || f.engine == nil {
		return err // a feed without an engine keeps only the index's state
	}
	return f.engine.useSites(sites)
}

// State is the last device state of numIDK the feed has seen.
func (f *Feed) State(numIDK string) idkpb.DeviceState {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.zones[numIDK].state
}

// Follow hands the engine the case events of committed events.
func (f *Feed) Follow(dev *idkpb.Device, _ uint64, evs []*idkpb.Event) {
	// Every event of the connection was corrected by the offset measured
	// at its hello: one over the limit marks them all.
	offset := f.engine.suspectOffset(dev.NumIdk)
	for _, ev := range evs {
		// Where the ИДК stands goes first, so that a breach this batch
		// makes is stamped with it.
		if s := ev.GetState().GetSite(); s != nil {
			c := siteChange{At: time.Unix(0, ev.CollectorTimeUnixNano), Place: placeOf(s)}
			if err := f.engine.noteSite(norm(dev.NumIdk), c); err != nil {
				f.log.Error("site not taken for table 4", "num_idk", dev.NumIdk, "err", err)
			}
		}
		// The arrival a scan marks goes first, so that the scan joins it.
		if a, ok := f.arrival(dev, ev); ok {
			a.ClockOffset = offset
			f.add(a, true)
		}
		if ce, ok := f.caseEvent(dev, ev); ok {
			ce.ClockOffset = offset
			// A post's report is timed by the agent's clock when the shift
			// lead made it, not by what anyone typed: late through the
			// spool is honest, like the device's own records.
			_, own := ev.Body.(*idkpb.Event_ScanSeen)
			_, form := ev.Body.(*idkpb.Event_Form)
			_, post := ev.Body.(*idkpb.Event_CaseReport)
			f.add(ce, own || form || post)
		}
	}
}

// add hands ce to the engine. own marks the device's own records, which
// get lateReason when the spool held them past the backdating window.
func (f *Feed) add(ce Event, own bool) {
	if own && ce.Reason == "" && f.engine.late(ce.Time, f.engine.clock.Now()) {
		ce.Reason = lateReason
	}
	if _, err := f.engine.Add(ce); err != nil {
		f.log.Error("inspection event not taken", "kind", ce.Kind, "num_idk", ce.NumIDK, "num_snim", ce.NumSnim, "err", err)
	}
}

func (f *Feed) caseEvent(dev *idkpb.Device, ev *idkpb.Event) (Event, bool) {
	at := time.Unix(0, ev.CollectorTimeUnixNano)
	switch b := ev.Body.(type) {
	case *idkpb.Event_ScanSeen:
		return Event{Kind: Scan, Time: at, NumIDK: dev.NumIdk, NumSnim: b.ScanSeen.NumSnim, By: "agent", Source: "agent"}, true
	case *idkpb.Event_Form:
		return DecisionEvent(dev.NumIdk, at, b.Form)
	case *idkpb.Event_CaseReport:
		// Staff at the post (idk-agent case). The ИДК is the
		// connection's: the report names none, so a post can speak only
		// for its own ИДК.
		// The report's note is its written reason: a risk_withdrawn from
		// the post needs one.
		r, p := b.CaseReport, b.CaseReport.GetRisk()
		return Event{Kind: Kind(r.Kind), Time: at, NumIDK: dev.NumIdk, NumSnim: r.NumSnim, Docs: r.Docs,
			Suspected: r.Suspected, CaseID: r.CaseId, By: r.By, Source: "post", Reason: r.Note,
			Risk: RiskProfile{KodTeh: p.GetKodTeh(), VidPr: p.GetVidPr(), KodToPr: p.GetKodToPr(), DateReg: p.GetDateReg(), NumPr: p.GetNumPr(),
				DocType: int(p.GetDocType())}}, true
	}
	return Event{}, false
}
