package cases

import (
	"fmt"
	"log/slog"
	"sync"
	"time"

	"idk/collector/ingest"
	"idk/protocol/idkpb"
)

// bucketFeedState, in the collector's index, holds each ИДК's last device
// state as the feed saw it: NUM_IDK -> idkpb.DeviceState (1 byte).
const bucketFeedState = "cases.state"

// Feed turns agents' stored events into inspection-case events: a scan, an
// arrival (the device going into WORKING from another state), and a
// decision (a form revision that carries one). Times are the events'
// collector times, already corrected for the agent's clock.
//
// To tell an arrival it needs each ИДК's last device state: it records it
// in the transaction that stores the event (ingest.Consumer) and loads it
// at start (ingest.Loader). The engine is handed the case events once
// they are committed (ingest.Follower); it keeps its own durable record.
type Feed struct {
	engine *Engine
	log    *slog.Logger

	mu    sync.Mutex
	state map[string]idkpb.DeviceState // by NUM_IDK, as of the last Follow
}

// NewFeed returns a Feed into e.
func NewFeed(e *Engine, log *slog.Logger) *Feed {
	if log == nil {
		log = slog.Default()
	}
	return &Feed{engine: e, log: log, state: map[string]idkpb.DeviceState{}}
}

// Apply records dev's device state if ev changes it.
func (f *Feed) Apply(tx ingest.Tx, dev *idkpb.Device, _ uint64, ev *idkpb.Event) error {
	sc := ev.GetState()
	if sc == nil {
		return nil
	}
	if sc.State < 0 || sc.State > 255 {
		return fmt.Errorf("cases: device state %d out of range", sc.State)
	}
	return tx.Put(bucketFeedState, []byte(dev.NumIdk), []byte{byte(sc.State)})
}

// Load reads each ИДК's last device state.
func (f *Feed) Load(tx ingest.Tx) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return tx.Scan(bucketFeedState, nil, nil, false, func(k, v []byte) error {
		if len(v) != 1 {
			return fmt.Errorf("cases: device state of %s: %d bytes, want 1", k, len(v))
		}
		f.state[string(k)] = idkpb.DeviceState(v[0])
		return nil
	})
}

// State is the last device state of numIDK the feed has seen.
func (f *Feed) State(numIDK string) idkpb.DeviceState {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.state[numIDK]
}

// Follow hands the engine the case events of committed events.
func (f *Feed) Follow(dev *idkpb.Device, _ uint64, evs []*idkpb.Event) {
	for _, ev := range evs {
		ce, ok := f.caseEvent(dev, ev)
		if !ok {
			continue
		}
		if _, err := f.engine.Add(ce); err != nil {
			f.log.Error("inspection event not taken", "kind", ce.Kind, "num_idk", ce.NumIDK, "num_snim", ce.NumSnim, "err", err)
		}
	}
}

func (f *Feed) caseEvent(dev *idkpb.Device, ev *idkpb.Event) (Event, bool) {
	at := time.Unix(0, ev.CollectorTimeUnixNano)
	switch b := ev.Body.(type) {
	case *idkpb.Event_State:
		f.mu.Lock()
		prev := f.state[dev.NumIdk]
		f.state[dev.NumIdk] = b.State.State
		f.mu.Unlock()
		if b.State.State != idkpb.DeviceState_DEVICE_STATE_WORKING || prev == idkpb.DeviceState_DEVICE_STATE_WORKING {
			return Event{}, false
		}
		return Event{Kind: Arrival, Time: at, NumIDK: dev.NumIdk, By: "agent", Source: "controller"}, true
	case *idkpb.Event_ScanSeen:
		return Event{Kind: Scan, Time: at, NumIDK: dev.NumIdk, NumSnim: b.ScanSeen.NumSnim, By: "agent", Source: "agent"}, true
	case *idkpb.Event_Form:
		return DecisionEvent(dev.NumIdk, at, b.Form)
	}
	return Event{}, false
}
