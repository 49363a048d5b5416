package availability

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"

	"idk/internal/clock"
	"idk/protocol/idkpb"
)

// Retention is how far back the tracker keeps each ИДК's changes: today
// and the seven days before it, with a margin. Older days are computed by
// the caller from stored events with Rows.
const Retention = 8 * 24 * time.Hour

// Tracker is the live side: it keeps each ИДК's recent changes in memory
// and answers for today and the last week. It is safe for concurrent use.
type Tracker struct {
	loc       *time.Location
	clock     clock.Clock
	collector *metricsCollector

	mu      sync.Mutex
	devices map[string]*deviceLog
	acks    map[ackKey]Ack
	steps   map[stepKey]StepReport
	store   AckStore
}

// deviceLog is one ИДК's identity and changes.
type deviceLog struct {
	dev     Device
	changes []Change // in time order; equal times in arrival order
	// exactFrom is the first kept change's time once older ones were
	// dropped: before it the tracker no longer knows the state. Zero while
	// nothing was dropped.
	exactFrom time.Time
}

type ackKey struct{ numIDK, id string }

// NewTracker returns an empty tracker. Days are calendar days in loc
// (time.Local if nil); clk is the collector's clock (clock.Real if nil),
// injected so that tests can run a day in a moment.
func NewTracker(loc *time.Location, clk clock.Clock) *Tracker {
	if loc == nil {
		loc = time.Local
	}
	t := &Tracker{loc: loc, clock: clock.Or(clk), devices: map[string]*deviceLog{}, acks: map[ackKey]Ack{}, steps: map[stepKey]StepReport{}}
	t.collector = newMetricsCollector(t)
	return t
}

// UseAckStore loads the acks and reporting steps saved in s and saves
// every later one there, so that they survive a restart. Call it once,
// before serving.
func (t *Tracker) UseAckStore(s AckStore) error {
	acks, err := s.LoadAcks()
	if err != nil {
		return fmt.Errorf("availability: load acks: %w", err)
	}
	steps, err := s.LoadSteps()
	if err != nil {
		return fmt.Errorf("availability: load reporting steps: %w", err)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, a := range acks {
		k := ackKey{a.NumIDK, a.ID}
		// Two people acking at once may both be saved; the first stands,
		// as it does in memory.
		if prev, ok := t.acks[k]; !ok || a.At.Before(prev.At) {
			t.acks[k] = a
		}
	}
	for _, r := range steps {
		k := stepKey{r.NumIDK, r.ID, r.Step}
		if prev, ok := t.steps[k]; !ok || r.At.Before(prev.At) {
			t.steps[k] = r
		}
	}
	t.store = s
	return nil
}

// Apply records one stored StateChange of dev. Call it for each change in
// the device's sequence order; a change that arrives late (an agent
// delivering a backlog) is put in its place by time. dev replaces the
// identity known so far.
func (t *Tracker) Apply(dev Device, c Change) {
	if c.Site != nil {
		// The caller may reuse its message; the tracker keeps the change.
		c.Site = proto.Clone(c.Site).(*idkpb.Site)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	l := t.devices[dev.NumIDK]
	if l == nil {
		l = &deviceLog{}
		t.devices[dev.NumIDK] = l
	}
	l.dev = dev
	i := sort.Search(len(l.changes), func(i int) bool { return l.changes[i].Time.After(c.Time) })
	l.changes = slices.Insert(l.changes, i, c)
	l.prune(t.clock.Now().Add(-Retention))
}

// prune drops changes older than cutoff, but keeps the last one before
// it, which says what state the ИДК was in at the cutoff, and the run of
// INOPERABLE changes it belongs to, so an incident keeps its start and ID.
func (l *deviceLog) prune(cutoff time.Time) {
	before := sort.Search(len(l.changes), func(i int) bool { return !l.changes[i].Time.Before(cutoff) })
	if before < 2 {
		return
	}
	k := before - 1
	for k > 0 && isInoperable(l.changes[k]) && isInoperable(l.changes[k-1]) {
		k--
	}
	if k == 0 {
		return
	}
	l.changes = slices.Delete(l.changes, 0, k)
	l.exactFrom = l.changes[0].Time
}

func isInoperable(c Change) bool { return c.State == idkpb.DeviceState_DEVICE_STATE_INOPERABLE }

// Devices lists the NUM_IDK of every ИДК the tracker has changes for, in
// order.
func (t *Tracker) Devices() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]string, 0, len(t.devices))
	for n := range t.devices {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// CurrentStates returns each known ИДК's state now, NUM_IDK → a key of
// Row.Seconds (WORKING, WAITING, ...), for the console's fleet board.
func (t *Tracker) CurrentStates() map[string]string {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make(map[string]string, len(t.devices))
	for n, l := range t.devices {
		state := "UNKNOWN"
		if k := len(l.changes); k > 0 {
			state = stateName(l.changes[k-1].State)
		}
		out[n] = state
	}
	return out
}

// Rows computes table 3's availability rows of one ИДК for the calendar
// day in the tracker's location that contains day, up to now. It returns
// nil for an ИДК the tracker does not know and for a day older than the
// changes it still keeps.
func (t *Tracker) Rows(numIDK string, day time.Time) []Row {
	t.mu.Lock()
	defer t.mu.Unlock()
	l := t.devices[numIDK]
	if l == nil {
		return nil
	}
	from, _ := dayBounds(day, t.loc)
	if !l.exactFrom.IsZero() && from.Before(l.exactFrom) {
		return nil
	}
	return Rows(l.dev, l.changes, day, t.loc, t.clock.Now())
}

// Incidents lists the ИДК's inoperable intervals still kept, oldest first,
// with their acks and reporting steps. Times are in the tracker's location.
func (t *Tracker) Incidents(numIDK string) []Incident {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.incidentsLocked(numIDK, t.clock.Now())
}

func (t *Tracker) incidentsLocked(numIDK string, now time.Time) []Incident {
	l := t.devices[numIDK]
	if l == nil {
		return nil
	}
	incs := incidents(numIDK, timeline(l.dev, l.changes, now), t.loc, now)
	t.annotateLocked(incs)
	return incs
}

// Ack records that by acknowledged incident id of ИДК numIDK. It is saved
// in the AckStore, if there is one, before it shows. Acking an incident
// again changes nothing: the first ack stands. An unknown incident is an
// error wrapping ErrUnknownIncident.
func (t *Tracker) Ack(numIDK, id, by string) error {
	by = strings.TrimSpace(by)
	if by == "" {
		return fmt.Errorf("ack incident %q of ИДК %q: who acknowledges is not given", id, numIDK)
	}
	t.mu.Lock()
	found := slices.ContainsFunc(t.incidentsLocked(numIDK, t.clock.Now()), func(i Incident) bool { return i.ID == id })
	_, acked := t.acks[ackKey{numIDK, id}]
	store := t.store
	t.mu.Unlock()
	if !found {
		return fmt.Errorf("ack incident %q of ИДК %q: %w", id, numIDK, ErrUnknownIncident)
	}
	if acked {
		return nil
	}
	at := t.clock.Now()
	// Saved outside the lock: a synced write must not stall Apply and the
	// metrics scrape.
	if store != nil {
		if err := store.SaveAck(numIDK, id, by, at); err != nil {
			return fmt.Errorf("ack incident %q of ИДК %q: save: %w", id, numIDK, err)
		}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.acks[ackKey{numIDK, id}]; !ok {
		t.acks[ackKey{numIDK, id}] = Ack{NumIDK: numIDK, ID: id, By: by, At: at}
	}
	return nil
}
