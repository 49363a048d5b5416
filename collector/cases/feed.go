package cases

import (
	"log/slog"
	"sync"
	"time"

	"idk/protocol/idkpb"
)

// Feed turns agents' stored events into inspection-case events: a scan, an
// arrival (the device going into WORKING from another state), and a
// decision (a form revision that carries one). Times are the events'
// collector times, already corrected for the agent's clock. With live
// false (replaying stored events at start) it only follows the device
// states: the engine has its own durable record of what it was given.
type Feed struct {
	engine *Engine
	log    *slog.Logger

	mu    sync.Mutex
	state map[string]idkpb.DeviceState // by NUM_IDK
}

// NewFeed returns a Feed into e.
func NewFeed(e *Engine, log *slog.Logger) *Feed {
	return &Feed{engine: e, log: log, state: map[string]idkpb.DeviceState{}}
}

func (f *Feed) Event(dev *idkpb.Device, ev *idkpb.Event, live bool) {
	at := time.Unix(0, ev.CollectorTimeUnixNano)
	var ce Event
	switch b := ev.Body.(type) {
	case *idkpb.Event_State:
		f.mu.Lock()
		prev := f.state[dev.NumIdk]
		f.state[dev.NumIdk] = b.State.State
		f.mu.Unlock()
		if b.State.State != idkpb.DeviceState_DEVICE_STATE_WORKING || prev == idkpb.DeviceState_DEVICE_STATE_WORKING {
			return
		}
		ce = Event{Kind: Arrival, Time: at, NumIDK: dev.NumIdk, By: "agent", Source: "controller"}
	case *idkpb.Event_ScanSeen:
		ce = Event{Kind: Scan, Time: at, NumIDK: dev.NumIdk, NumSnim: b.ScanSeen.NumSnim, By: "agent", Source: "agent"}
	case *idkpb.Event_Form:
		var ok bool
		if ce, ok = DecisionEvent(dev.NumIdk, at, b.Form); !ok {
			return
		}
	default:
		return
	}
	if !live {
		return
	}
	if _, err := f.engine.Add(ce); err != nil {
		f.log.Error("inspection event not taken", "kind", ce.Kind, "num_idk", ce.NumIDK, "num_snim", ce.NumSnim, "err", err)
	}
}
