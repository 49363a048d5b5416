package devstate

import (
	"time"

	"idk/protocol/idkpb"
)

// maxPending bounds the changes held while relocating or away. Only a
// controller flapping for hours while the GPS receiver is silent comes
// near it; then the oldest changes are folded into the next ones.
const maxPending = 4096

// verdict is the state by rules 2-7 at one moment.
type verdict struct {
	state  idkpb.DeviceState
	cause  idkpb.InoperableCause
	note   string
	source string // SourceStaff, SourceController, or SourceAgent when nothing is known
	// since is when the state began if earlier than the input's time: the
	// first failed poll of a lost link. Zero means the input's time.
	since time.Time
}

// shadowAt derives the state at t by rules 2-7.
func (e *Engine) shadowAt(t time.Time) verdict {
	s := &e.s
	if d := s.Declared; d != nil {
		return verdict{state: d.State, cause: d.Cause, note: d.Note, source: SourceStaff}
	}
	ctl := verdict{source: SourceController}
	switch {
	case s.HaveSignals && s.Signals.Fault != idkpb.InoperableCause_INOPERABLE_CAUSE_UNSPECIFIED:
		// Checked before the link: a fault often takes the link down with
		// it (a generator breakdown cuts the controller's power), and the
		// fault is the better account of that time.
		ctl.state, ctl.cause = idkpb.DeviceState_DEVICE_STATE_INOPERABLE, s.Signals.Fault
	case !s.LinkDownSince.IsZero() && t.Sub(s.LinkDownSince) > e.cfg.LinkGrace:
		ctl.state, ctl.since = idkpb.DeviceState_DEVICE_STATE_UNKNOWN, s.LinkDownSince
	case !s.HaveSignals:
		// No controller sample yet, or the link lost within the grace
		// before the first one: nothing is known.
		return verdict{state: idkpb.DeviceState_DEVICE_STATE_UNKNOWN, source: SourceAgent}
	case !s.Signals.Powered:
		ctl.state = idkpb.DeviceState_DEVICE_STATE_IDLE
	case !s.Signals.Ready:
		ctl.state = idkpb.DeviceState_DEVICE_STATE_OPERATIONS
	case s.ObjectPending || s.Signals.Scanning:
		ctl.state = idkpb.DeviceState_DEVICE_STATE_WORKING
	default:
		ctl.state = idkpb.DeviceState_DEVICE_STATE_WAITING
	}
	return ctl
}

// advance brings the Shadow up to t, logging its change in Pending while
// relocating or away.
func (e *Engine) advance(t time.Time) {
	s := &e.s
	v := e.shadowAt(t)
	sh := s.Shadow
	// The source counts here, unlike for emitting: when staff declare the
	// state the controller shows, the state has a new owner from then on,
	// and a back-dated controller state must not reach over its time.
	if v.state == sh.State && v.cause == sh.Cause && v.source == sh.Source {
		return
	}
	at := t
	// Back-date only within one source (or after nothing was known): a lost
	// link behind a staff declaration shows when the declaration ends.
	if !v.since.IsZero() && (v.source == sh.Source || sh.Source == SourceAgent || sh.State == idkpb.DeviceState_DEVICE_STATE_UNSPECIFIED) {
		at = v.since
	}
	if at.Before(sh.Time) {
		at = sh.Time
	}
	s.Shadow = Change{Time: at, State: v.state, Cause: v.cause, Note: v.note, Source: v.source}
	if s.Relocating || s.Away {
		s.Pending = append(s.Pending, s.Shadow)
		if len(s.Pending) > maxPending {
			s.Pending = append(s.Pending[:0], s.Pending[1:]...)
		}
	}
}

// step derives the state at input time t and returns the changes.
func (e *Engine) step(t time.Time) []Change {
	e.advance(t)
	return e.settle(t)
}

// settle finishes a dwell that has lasted long enough by t, then emits the
// state shown.
func (e *Engine) settle(t time.Time) []Change {
	s := &e.s
	if (s.Relocating || s.Away) && !s.DwellStart.IsZero() && t.Sub(s.DwellStart) >= e.cfg.ArrivalDwell {
		return e.arrive()
	}
	switch {
	case s.Away:
		return nil // held until the site is known
	case s.Relocating:
		return e.emit(Change{Time: s.RelocationStart, State: idkpb.DeviceState_DEVICE_STATE_RELOCATION, Source: SourceGPS, Site: s.Site})
	}
	c := s.Shadow
	c.Site = s.Site
	return e.emit(c)
}

// emit makes c the current Change unless it describes the current state.
// Its time is moved up to the current one's, so that times never go
// backwards even when inputs from different clocks interleave.
func (e *Engine) emit(c Change) []Change {
	cur := e.s.Current
	if c.sameAs(cur) {
		return nil
	}
	if cur.State == idkpb.DeviceState_DEVICE_STATE_UNSPECIFIED && c.Source == SourceAgent {
		// A fresh Engine starts its record with the first state it knows.
		return nil
	}
	if c.Time.Before(cur.Time) {
		c.Time = cur.Time
	}
	e.s.Current = c
	return []Change{c}
}
