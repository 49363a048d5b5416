// Package scenario scripts simulated days of an ИДК — shifts, objects,
// faults, a lost controller link, staff declarations, a relocation — and
// carries their ground truth: the intervals the agent ought to account,
// from which the expected table 3 figures follow.
package scenario

import (
	"fmt"
	"sort"
	"time"

	"idk/drivers/modbus"
	"idk/protocol/idkpb"
	"idk/simulator/gpssim"
)

// Target is what a scenario acts on: the simulated controller, the staff
// at the agent, the operator, and the GPS receiver.
type Target interface {
	SetSignal(name modbus.Signal, on bool) error
	LinkDown() error
	LinkUp() error
	Declare(state, cause, note string) error // as `idk-agent state` does
	Decision(at time.Time)
	GPS(st gpssim.State, at time.Time)
}

// Step is something that happens at a time of the day.
type Step struct {
	At   time.Duration // since the start of the day
	Name string
	Do   func(t Target, at time.Time) error
}

// Truth is an interval the agent should account.
type Truth struct {
	From, To time.Duration
	State    idkpb.DeviceState
	Cause    idkpb.InoperableCause
	Site     string // NAIM_ZTK
}

// Scenario is one scripted day.
type Scenario struct {
	Name   string
	Mobile bool
	Length time.Duration
	Steps  []Step
	Truth  []Truth
	// Route is the GPS route of a mobile ИДК from the start of the day.
	Route []gpssim.Leg
	Home  gpssim.Point
}

// Expected sums the truth per site and state.
func (s Scenario) Expected() map[string]map[idkpb.DeviceState]time.Duration {
	out := map[string]map[idkpb.DeviceState]time.Duration{}
	for _, tr := range s.Truth {
		if out[tr.Site] == nil {
			out[tr.Site] = map[idkpb.DeviceState]time.Duration{}
		}
		out[tr.Site][tr.State] += tr.To - tr.From
	}
	return out
}

// Check verifies the truth is contiguous and covers the whole day.
func (s Scenario) Check() error {
	var at time.Duration
	for i, tr := range s.Truth {
		if tr.From != at || tr.To <= tr.From {
			return fmt.Errorf("scenario %s: truth[%d] %v-%v does not follow %v", s.Name, i, tr.From, tr.To, at)
		}
		at = tr.To
	}
	if at != s.Length {
		return fmt.Errorf("scenario %s: truth ends at %v, day is %v", s.Name, at, s.Length)
	}
	return nil
}

func h(hh, mm int) time.Duration { return time.Duration(hh)*time.Hour + time.Duration(mm)*time.Minute }

func signal(name modbus.Signal, on bool) func(Target, time.Time) error {
	return func(t Target, _ time.Time) error { return t.SetSignal(name, on) }
}

// powerOff switches the scanner off as its operator does: not ready, then
// no power.
func powerOff(t Target, _ time.Time) error {
	if err := t.SetSignal(modbus.Ready, false); err != nil {
		return err
	}
	return t.SetSignal(modbus.Powered, false)
}

func declare(state, cause, note string) func(Target, time.Time) error {
	return func(t Target, _ time.Time) error { return t.Declare(state, cause, note) }
}

// builder accumulates steps and truth in time order.
type builder struct {
	s    Scenario
	site string
}

func (b *builder) step(at time.Duration, name string, do func(Target, time.Time) error) {
	b.s.Steps = append(b.s.Steps, Step{At: at, Name: name, Do: do})
}

func (b *builder) truth(from, to time.Duration, st idkpb.DeviceState, cause idkpb.InoperableCause) {
	b.s.Truth = append(b.s.Truth, Truth{From: from, To: to, State: st, Cause: cause, Site: b.site})
}

// objects schedules objects every `every` from `from` while an object can
// finish before `to`: arrival, scan two minutes in, the vehicle leaves at
// five, the operator decides at `work`. Truth: WORKING from arrival to
// decision, WAITING between objects (the span before the first object and
// after the last is the caller's).
func (b *builder) objects(from, to, every, work time.Duration) (lastEnd time.Duration) {
	lastEnd = from
	for at := from; at+work <= to; at += every {
		if at > lastEnd {
			b.truth(lastEnd, at, idkpb.DeviceState_DEVICE_STATE_WAITING, 0)
		}
		b.step(at, "arrival", signal(modbus.VehicleInZone, true))
		b.step(at+2*time.Minute, "scan", signal(modbus.Scanning, true))
		b.step(at+4*time.Minute, "scan done", signal(modbus.Scanning, false))
		b.step(at+5*time.Minute, "vehicle leaves", signal(modbus.VehicleInZone, false))
		b.step(at+work, "decision", func(t Target, now time.Time) error { t.Decision(now); return nil })
		b.truth(at, at+work, idkpb.DeviceState_DEVICE_STATE_WORKING, 0)
		lastEnd = at + work
	}
	return lastEnd
}

func (b *builder) done() Scenario {
	sort.SliceStable(b.s.Steps, func(i, j int) bool { return b.s.Steps[i].At < b.s.Steps[j].At })
	return b.s
}

const (
	working     = idkpb.DeviceState_DEVICE_STATE_WORKING
	waiting     = idkpb.DeviceState_DEVICE_STATE_WAITING
	operations  = idkpb.DeviceState_DEVICE_STATE_OPERATIONS
	maintenance = idkpb.DeviceState_DEVICE_STATE_MAINTENANCE
	inoperable  = idkpb.DeviceState_DEVICE_STATE_INOPERABLE
	relocation  = idkpb.DeviceState_DEVICE_STATE_RELOCATION
	idle        = idkpb.DeviceState_DEVICE_STATE_IDLE
	unknown     = idkpb.DeviceState_DEVICE_STATE_UNKNOWN
)

// StationarySite is the stationary scenario's place.
const StationarySite = "МАПП ЯРАГ-КАЗМАЛЯР"

// Stationary is a day of a stationary ИДК: off at night, warm-up, objects,
// a lunch break declared by staff, an accelerator fault, the controller
// link lost for twenty minutes, daily maintenance, an evening shift, off.
func Stationary() Scenario {
	b := &builder{s: Scenario{Name: "stationary", Length: 24 * time.Hour}, site: StationarySite}
	b.truth(0, h(7, 0), idle, 0)
	b.step(h(7, 0), "power on", signal(modbus.Powered, true))
	b.truth(h(7, 0), h(7, 30), operations, 0)
	b.step(h(7, 30), "ready", signal(modbus.Ready, true))
	b.truth(h(7, 30), h(8, 0), waiting, 0)
	end := b.objects(h(8, 0), h(12, 0), 30*time.Minute, 12*time.Minute)
	b.truth(end, h(12, 0), waiting, 0)
	b.step(h(12, 0), "lunch break", declare("operations", "", "обед"))
	b.truth(h(12, 0), h(13, 0), operations, 0)
	b.step(h(13, 0), "break over", declare("clear", "", ""))
	b.truth(h(13, 0), h(14, 0), waiting, 0)
	b.step(h(14, 0), "accelerator fault", signal(modbus.AcceleratorFault, true))
	b.truth(h(14, 0), h(15, 10), inoperable, idkpb.InoperableCause_INOPERABLE_CAUSE_ACCELERATOR)
	b.step(h(15, 10), "accelerator repaired", signal(modbus.AcceleratorFault, false))
	b.truth(h(15, 10), h(16, 0), waiting, 0)
	b.step(h(16, 0), "controller link lost", func(t Target, _ time.Time) error { return t.LinkDown() })
	b.truth(h(16, 0), h(16, 20), unknown, 0)
	b.step(h(16, 20), "controller link back", func(t Target, _ time.Time) error { return t.LinkUp() })
	b.truth(h(16, 20), h(17, 0), waiting, 0)
	b.step(h(17, 0), "daily maintenance", declare("maintenance", "", "ежедневное ТО"))
	b.truth(h(17, 0), h(18, 0), maintenance, 0)
	b.step(h(18, 0), "maintenance done", declare("clear", "", ""))
	end = b.objects(h(18, 0), h(20, 0), 20*time.Minute, 10*time.Minute)
	b.truth(end, h(22, 0), waiting, 0)
	b.step(h(22, 0), "power off", powerOff)
	b.truth(h(22, 0), h(24, 0), idle, 0)
	return b.done()
}

// Mobile sites.
var (
	SiteA = gpssim.Point{Lat: 42.0830, Lon: 48.2950} // home
	SiteB = gpssim.Point{Lat: 42.2600, Lon: 48.2950} // about 19.7 km north
)

// Mobile site names.
const (
	MobileSiteA = "МАПП ЯРАГ-КАЗМАЛЯР"
	MobileSiteB = "ЗТК ДЕРБЕНТ"
)

// Mobile is a day of a mobile ИДК that works at site A in the morning,
// folds up, drives about 20 km to site B, deploys there and works the
// afternoon, with a spell without GPS fix at site B.
func Mobile() Scenario {
	b := &builder{s: Scenario{Name: "mobile", Mobile: true, Length: 24 * time.Hour, Home: SiteA}, site: MobileSiteA}
	b.truth(0, h(6, 0), idle, 0)
	b.step(h(6, 0), "power on", signal(modbus.Powered, true))
	b.truth(h(6, 0), h(6, 30), operations, 0)
	b.step(h(6, 30), "ready", signal(modbus.Ready, true))
	b.truth(h(6, 30), h(7, 0), waiting, 0)
	end := b.objects(h(7, 0), h(11, 0), 30*time.Minute, 15*time.Minute)
	b.truth(end, h(11, 0), waiting, 0)
	b.step(h(11, 0), "folding up", declare("operations", "", "свертывание"))
	b.step(h(11, 20), "power off for the drive", powerOff)
	b.truth(h(11, 0), h(11, 30), operations, 0)
	// 11:30-12:00 driving at 40 km/h (the engine sees it from the GPS).
	b.truth(h(11, 30), h(12, 0), relocation, 0)
	b.site = MobileSiteB
	// Deployment at B is still the declared operations.
	b.truth(h(12, 0), h(12, 40), operations, 0)
	b.step(h(12, 20), "power on at B", signal(modbus.Powered, true))
	b.step(h(12, 40), "deployed", func(t Target, _ time.Time) error {
		if err := t.SetSignal(modbus.Ready, true); err != nil {
			return err
		}
		return t.Declare("clear", "", "")
	})
	b.truth(h(12, 40), h(13, 0), waiting, 0)
	end = b.objects(h(13, 0), h(17, 0), 30*time.Minute, 15*time.Minute)
	b.truth(end, h(18, 0), waiting, 0)
	b.step(h(18, 0), "power off", powerOff)
	b.truth(h(18, 0), h(24, 0), idle, 0)
	b.s.Route = []gpssim.Leg{
		gpssim.Stay(h(11, 30)),
		gpssim.Drive(SiteB, 39.4), // 19.7 km in 30 minutes
		gpssim.Stay(h(3, 0)),      // 12:00-15:00 at B
		gpssim.NoFix(30 * time.Minute),
		gpssim.Stay(h(8, 30)),
	}
	return b.done()
}
