package ingest

import (
	"fmt"
	"time"

	"idk/collector/store"
	"idk/protocol/idkpb"
)

// FromStore is the Log of the collector's index (bbolt, or PostgreSQL
// shared by a region): the consumers' buckets are buckets of that index,
// so they commit with the events.
func FromStore(st *store.Store) Log { return storeLog{st} }

type storeLog struct{ st *store.Store }

func (l storeLog) Append(dev *idkpb.Device, epoch uint64, evs []*idkpb.Event, correct func(int64) time.Time, apply func(Tx, *idkpb.Event) error) (Result, error) {
	res, err := l.st.PutEvents(dev, epoch, evs, correct, func(kv *store.KV, ev *idkpb.Event) error { return apply(kv, ev) })
	return Result{Stored: res.Stored, Duplicates: res.Duplicates, New: res.New}, err
}

func (l storeLog) View(fn func(Tx) error) error {
	return l.st.View(func(kv *store.KV) error { return fn(kv) })
}

func (l storeLog) Update(fn func(Tx) error) error {
	return l.st.Update(func(kv *store.KV) error { return fn(kv) })
}

func (l storeLog) Events(after []byte, limit int, fn func(pos []byte, dev *idkpb.Device, epoch uint64, ev *idkpb.Event) error) error {
	devs, err := l.st.Devices()
	if err != nil {
		return fmt.Errorf("devices: %w", err)
	}
	byNum := make(map[string]*idkpb.Device, len(devs))
	for _, d := range devs {
		byNum[d.NumIdk] = d
	}
	return l.st.EventsAfter(after, limit, func(pos []byte, numIDK string, epoch uint64, ev *idkpb.Event) error {
		dev := byNum[numIDK]
		if dev == nil {
			// Every event follows its ИДК's hello; should the device record
			// be gone, its number is all that is known.
			dev = &idkpb.Device{NumIdk: numIDK}
			byNum[numIDK] = dev
		}
		return fn(pos, dev, epoch, ev)
	})
}
