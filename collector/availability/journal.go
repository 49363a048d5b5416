package availability

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

	"google.golang.org/protobuf/proto"

	"idk/collector/ingest"
	"idk/collector/registry"
	"idk/protocol/idkpb"
)

// The journal's buckets. A change's key sorts by ИДК, then time, then the
// event's place in its spool, so one range scan finds an ИДК's changes
// from any time on, and equal times keep their arrival order.
const (
	bucketChanges = "availability.changes" // NUM_IDK "/" time (8 bytes, Unix ns) epoch (8) seq (8) -> idkpb.StateChange
	bucketDevices = "availability.devices" // NUM_IDK -> idkpb.Device the latest change came with
)

// Journal is the tracker's durable side: it records each state change in
// the transaction that stores its event (ingest.Consumer), hands committed
// changes to the tracker (ingest.Follower), and at start loads into the
// tracker only the changes it keeps, Retention's worth per ИДК
// (ingest.Loader).
type Journal struct{ t *Tracker }

// NewJournal returns the journal of t.
func NewJournal(t *Tracker) *Journal { return &Journal{t: t} }

func changeKey(numIDK string, at time.Time, epoch, seq uint64) []byte {
	k := timeKey(numIDK, at)
	k = binary.BigEndian.AppendUint64(k, epoch)
	return binary.BigEndian.AppendUint64(k, seq)
}

// timeKey is the first possible key of numIDK's changes at or after at.
func timeKey(numIDK string, at time.Time) []byte {
	// The offset keeps times before 1970 in order as unsigned numbers.
	return binary.BigEndian.AppendUint64([]byte(numIDK+"/"), uint64(at.UnixNano())^(1<<63))
}

func keyTime(k []byte) time.Time {
	i := len(k) - 24
	return time.Unix(0, int64(binary.BigEndian.Uint64(k[i:])^(1<<63)))
}

// Apply records ev if it is a state change.
func (j *Journal) Apply(tx ingest.Tx, dev *idkpb.Device, epoch uint64, ev *idkpb.Event) error {
	sc := ev.GetState()
	if sc == nil {
		return nil
	}
	v, err := proto.Marshal(sc)
	if err != nil {
		return fmt.Errorf("availability: encode change: %w", err)
	}
	at := time.Unix(0, ev.CollectorTimeUnixNano)
	if err := tx.Put(bucketChanges, changeKey(dev.NumIdk, at, epoch, ev.Seq), v); err != nil {
		return err
	}
	// The identity the tracker shows is the one the latest change came
	// with; written only when it changed, as it rarely does.
	d, err := proto.MarshalOptions{Deterministic: true}.Marshal(dev)
	if err != nil {
		return fmt.Errorf("availability: encode device: %w", err)
	}
	old, err := tx.Get(bucketDevices, []byte(dev.NumIdk))
	if err != nil || bytes.Equal(old, d) {
		return err
	}
	return tx.Put(bucketDevices, []byte(dev.NumIdk), d)
}

// Follow gives the tracker the committed state changes.
func (j *Journal) Follow(dev *idkpb.Device, _ uint64, evs []*idkpb.Event) {
	d := registry.DeviceFromProto(dev)
	for _, ev := range evs {
		if sc := ev.GetState(); sc != nil {
			j.t.Apply(d, ChangeFromProto(time.Unix(0, ev.CollectorTimeUnixNano), sc))
		}
	}
}

var errEnough = errors.New("enough")

// decodeChange decodes a stored change, whose time is in its key.
func decodeChange(k, v []byte) (Change, error) {
	sc := &idkpb.StateChange{}
	if err := proto.Unmarshal(v, sc); err != nil {
		return Change{}, fmt.Errorf("decode %x: %w", k, err)
	}
	return ChangeFromProto(keyTime(k), sc), nil
}

// runChanges reads numIDK's changes in key (time) order that decide the
// runs of changes inRun picks overlapping [from, to): backwards from from,
// the change in force there and, while it is in a run, the run's earlier
// changes (and, with beforeRun, the change before the run, which says where
// it began); the period's changes; and forwards from to, while a run is
// still going, its changes and the one that ends it. The cost is the
// runs at the edges, not the history.
func runChanges(tx ingest.Tx, numIDK string, from, to time.Time, inRun func(Change) bool, beforeRun bool) ([]Change, error) {
	prefix := []byte(numIDK + "/")
	start, end := timeKey(numIDK, from), timeKey(numIDK, to)
	if !from.Before(to) {
		end = start
	}
	var before []Change
	err := tx.Scan(bucketChanges, prefix, start, true, func(k, v []byte) error {
		c, err := decodeChange(k, v)
		if err != nil {
			return err
		}
		if n := len(before); n > 0 && (!inRun(before[n-1]) || (!beforeRun && !inRun(c))) {
			return errEnough
		}
		before = append(before, c)
		return nil
	})
	if err != nil && !errors.Is(err, errEnough) {
		return nil, err
	}
	slices.Reverse(before)
	out := before
	err = tx.Scan(bucketChanges, start, end, false, func(k, v []byte) error {
		c, err := decodeChange(k, v)
		if err == nil {
			out = append(out, c)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	if n := len(out); n == 0 || !inRun(out[n-1]) {
		return out, nil
	}
	err = tx.Scan(bucketChanges, end, ingest.PrefixEnd(prefix), false, func(k, v []byte) error {
		c, err := decodeChange(k, v)
		if err != nil {
			return err
		}
		out = append(out, c)
		if !inRun(c) {
			return errEnough
		}
		return nil
	})
	if err != nil && !errors.Is(err, errEnough) {
		return nil, err
	}
	return out, nil
}

// eachDevice calls fn, in one read transaction, with each ИДК the journal
// knows and the changes read picks for it.
func eachDevice(v ingest.Viewer, read func(tx ingest.Tx, numIDK string) ([]Change, error), fn func(d Device, changes []Change)) error {
	return v.View(func(tx ingest.Tx) error {
		devs, err := journalDevices(tx)
		if err != nil {
			return err
		}
		for _, d := range devs {
			changes, err := read(tx, d.NumIdk)
			if err != nil {
				return fmt.Errorf("changes of %s: %w", d.NumIdk, err)
			}
			fn(registry.DeviceFromProto(d), changes)
		}
		return nil
	})
}

// journalDevices reads the identity of every ИДК the journal has a change
// of.
func journalDevices(tx ingest.Tx) ([]*idkpb.Device, error) {
	var devs []*idkpb.Device
	err := tx.Scan(bucketDevices, nil, nil, false, func(k, v []byte) error {
		d := &idkpb.Device{}
		if err := proto.Unmarshal(v, d); err != nil {
			return fmt.Errorf("availability: device %s: %w", k, err)
		}
		devs = append(devs, d)
		return nil
	})
	return devs, err
}

// Load puts into the tracker, for each ИДК, what it would hold had it run
// all along: the changes of the last Retention, the last change before
// them (the state at the window's start) with the run of INOPERABLE
// changes it belongs to (so an incident keeps its start and ID), and
// whether anything older exists. Two range scans per ИДК: the cost does
// not grow with history.
func (j *Journal) Load(tx ingest.Tx) error {
	cutoff := j.t.clock.Now().Add(-Retention)
	devs, err := journalDevices(tx)
	if err != nil {
		return err
	}
	for _, dev := range devs {
		l, err := loadDevice(tx, dev, cutoff)
		if err != nil {
			return fmt.Errorf("availability: changes of %s: %w", dev.NumIdk, err)
		}
		if len(l.changes) == 0 {
			continue
		}
		j.t.mu.Lock()
		j.t.devices[dev.NumIdk] = l
		j.t.mu.Unlock()
	}
	return nil
}

func loadDevice(tx ingest.Tx, dev *idkpb.Device, cutoff time.Time) (*deviceLog, error) {
	l := &deviceLog{dev: registry.DeviceFromProto(dev)}
	decode := func(k, v []byte) (Change, error) {
		sc := &idkpb.StateChange{}
		if err := proto.Unmarshal(v, sc); err != nil {
			return Change{}, fmt.Errorf("decode %x: %w", k, err)
		}
		return ChangeFromProto(keyTime(k), sc), nil
	}
	// Backwards from the cutoff: the change in force there, and the
	// INOPERABLE run it ends; one more tells whether older ones exist.
	var before []Change
	older := false
	from, cut := []byte(dev.NumIdk+"/"), timeKey(dev.NumIdk, cutoff)
	err := tx.Scan(bucketChanges, from, cut, true, func(k, v []byte) error {
		c, err := decode(k, v)
		if err != nil {
			return err
		}
		if n := len(before); n > 0 && !(isInoperable(before[n-1]) && isInoperable(c)) {
			older = true
			return errEnough
		}
		before = append(before, c)
		return nil
	})
	if err != nil && !errors.Is(err, errEnough) {
		return nil, err
	}
	slices.Reverse(before)
	l.changes = before
	err = tx.Scan(bucketChanges, cut, ingest.PrefixEnd(from), false, func(k, v []byte) error {
		c, err := decode(k, v)
		if err == nil {
			l.changes = append(l.changes, c)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	if older && len(l.changes) > 0 {
		l.exactFrom = l.changes[0].Time
	}
	return l, nil
}
