package ship

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"idk/agent/spool"
	"idk/protocol/idkpb"
	"idk/protocol/transport"
)

// The shipper keeps its own record of a lost link to the collector, for
// the collector's book of ICT incidents (collector/nshs): the link from a
// post is an ICT means, and an outage of it longer than a threshold is an
// НШС that only this end can date.
//
//   - The link is lost when a session that got through the hello ends, or
//     cannot be made at all: the start is then the moment the session ended
//     (the last moment connected), or the first failed dial. It is kept in
//     the spool's meta, so that a restart of the agent during the outage
//     keeps the real start.
//   - The link is back when a hello gets through: that is the end. An
//     outage no longer than Config.OutageThreshold is forgotten there.
//   - A longer one waits until the spool has nothing pending (monitoring
//     data that the post works normally again, 5.9 of the regulation): then
//     one LinkOutage event (start, end, drained) is appended and the record
//     cleared, in one transaction, so the event is appended exactly once.
//   - Lost again before the spool drained, the outage goes on: its start
//     stays, its end is set again at the next reconnection. Normal
//     operation was never confirmed in between.

// DefaultOutageThreshold is Config.OutageThreshold's default.
const DefaultOutageThreshold = 5 * time.Minute

// metaOutage names the spool meta that holds the outage in progress.
const metaOutage = "ship.link_outage"

// outage is the record of a lost link, as kept in the spool's meta. Times
// are Unix nanoseconds by Config.Clock.
type outage struct {
	Start  int64  `json:"start"`
	End    int64  `json:"end,omitempty"` // 0 while the link is down
	Reason string `json:"reason,omitempty"`
}

// readOutage reads the outage in progress. A record that cannot be read
// is none: it must not stop the shipping, and the next outage replaces it.
func readOutage(tx *spool.Tx) (outage, bool) {
	var o outage
	v := tx.Meta(metaOutage)
	if len(v) == 0 || json.Unmarshal(v, &o) != nil {
		return outage{}, false
	}
	return o, o.Start != 0
}

func putOutage(tx *spool.Tx, o outage) error {
	b, err := json.Marshal(o)
	if err != nil {
		return err
	}
	return tx.PutMeta(metaOutage, b)
}

// clearOutage forgets the outage: an empty value reads as none.
func clearOutage(tx *spool.Tx) error { return tx.PutMeta(metaOutage, nil) }

// linkDown records that the link is lost (a session ended) or could not be
// made (cause: the error). Only the first failure of an outage writes the
// spool; a failure after a reconnection that had not yet drained the
// spool reopens the same outage.
func (s *Shipper) linkDown(cause error) error {
	now := s.cfg.Clock.Now().UnixNano()
	reason := ""
	if cause != nil {
		reason = cause.Error()
	}
	if s.down {
		return nil // already recorded: spare the disk a write per backoff
	}
	err := s.cfg.Spool.Update(func(tx *spool.Tx) error {
		o, ok := readOutage(tx)
		switch {
		case !ok:
			o = outage{Start: now, Reason: reason}
		case o.End != 0:
			o.End = 0 // reconnected but never drained: the same outage
		default:
			return nil // down since before a restart of the agent
		}
		return putOutage(tx, o)
	})
	if err == nil {
		s.down = true
	}
	return err
}

// linkUp records that a hello got through. An outage no longer than the
// threshold is forgotten; a longer one now waits for the spool to drain
// (see drainOutage).
func (s *Shipper) linkUp() error {
	s.down = false
	now := s.cfg.Clock.Now().UnixNano()
	return s.cfg.Spool.Update(func(tx *spool.Tx) error {
		o, ok := readOutage(tx)
		if !ok {
			return nil
		}
		if o.End == 0 {
			o.End = now
		}
		if time.Duration(o.End-o.Start) <= s.cfg.OutageThreshold {
			return clearOutage(tx)
		}
		return putOutage(tx, o)
	})
}

// drainOutage appends the LinkOutage event of an outage that has ended once
// the spool holds nothing pending; done reports that no outage waits for
// it any more.
func (s *Shipper) drainOutage() (done bool, err error) {
	var o outage
	var ok bool
	if err := s.cfg.Spool.View(func(tx *spool.Tx) error {
		o, ok = readOutage(tx)
		return nil
	}); err != nil {
		return false, err
	}
	if !ok || o.End == 0 {
		return true, nil
	}
	// Looked at on every change of the spool while a backlog drains: the
	// first pending event and file only, not Stats' walk of them all.
	evs, err := s.cfg.Spool.PendingEvents(1, 1)
	if err != nil {
		return false, err
	}
	if len(evs) > 0 {
		return false, nil
	}
	if _, err := s.cfg.Spool.NextFile(nil); !errors.Is(err, spool.ErrEmpty) {
		return false, err // a file pending (nil), or a failure
	}
	drained := s.cfg.Clock.Now().UnixNano()
	err = s.cfg.Spool.Update(func(tx *spool.Tx) error {
		if cur, ok := readOutage(tx); !ok || cur != o {
			return nil // changed meanwhile: looked at again on the next pass
		}
		_, err := tx.AppendEvent(&idkpb.Event{TimeUnixNano: drained, Body: &idkpb.Event_LinkOutage{LinkOutage: &idkpb.LinkOutage{
			StartUnixNano: o.Start, EndUnixNano: o.End, DrainedUnixNano: drained, Reason: o.Reason}}})
		if err != nil {
			return err
		}
		return clearOutage(tx)
	})
	if err != nil {
		return false, fmt.Errorf("record link outage: %w", err)
	}
	s.cfg.Log.Warn("link to collector was lost; outage recorded for the collector's book of ICT incidents",
		"start", time.Unix(0, o.Start), "end", time.Unix(0, o.End), "drained", time.Unix(0, drained), "reason", o.Reason)
	return true, nil
}

// outages runs beside the event and file loops of a session: it waits for
// the spool to drain after an outage, then records the outage. Its
// failures are logged and end it only: shipping goes on.
func (s *Shipper) outages(ctx context.Context, _ transport.Conn) error {
	changed, unsubscribe := s.cfg.Spool.Subscribe()
	defer unsubscribe()
	for {
		done, err := s.drainOutage()
		if err != nil {
			s.cfg.Log.Error("cannot record the link outage", "err", err)
			return nil
		}
		if done {
			return nil
		}
		if s.sleep(ctx, changed, pollEvery) != nil {
			return nil // the session is over; the next one looks again
		}
	}
}
