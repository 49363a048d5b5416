package availability

import (
	"fmt"
	"time"

	"idk/collector/ingest"
)

// IncidentsBetween lists every inoperable interval of every ИДК the
// journal knows that overlaps [from, to), computed from the stored
// changes as the Tracker computes them, so that an incident has the same
// ID, start, end and cause whether it is still in memory or weeks old.
// Times are in loc (time.Local if nil); an interval still open at now is
// open. The incidents are in NUM_IDK order, then by start. Acks and
// reporting steps are not in the index's transactions: Tracker.Annotate
// adds them.
//
// Per ИДК it reads three key ranges: back from from, the change in force
// there with the INOPERABLE run it belongs to (so that an incident begun
// before from keeps its start); the changes in [from, to); and on from
// to, the INOPERABLE run in force at to with the change that ends it (so
// that an incident still going at to gets its end and latest cause). The
// cost follows the window, not the history.
func IncidentsBetween(v ingest.Viewer, from, to time.Time, loc *time.Location, now time.Time) ([]Incident, error) {
	if loc == nil {
		loc = time.Local
	}
	var out []Incident
	err := eachDevice(v, func(tx ingest.Tx, numIDK string) ([]Change, error) { return windowChanges(tx, numIDK, from, to) }, func(d Device, changes []Change) {
		for _, inc := range incidents(d.NumIDK, timeline(d, changes, now), loc, now) {
			if inc.Start.Before(to) && (inc.Open() || inc.End.After(from)) {
				out = append(out, inc)
			}
		}
	})

	if err != nil {
		return nil, fmt.Errorf("availability: incidents from %s to %s: %w", from.Format(time.RFC3339), to.Format(time.RFC3339), err)
	}
	return out, nil
}

// windowChanges reads numIDK's changes that decide its incidents
// overlapping [from, to), in key (time) order: the INOPERABLE run in force
// at from (as Journal.Load keeps it), the period's changes, and the run
// crossing to with the change that ends it.
func windowChanges(tx ingest.Tx, numIDK string, from, to time.Time) ([]Change, error) {
	return runChanges(tx, numIDK, from, to, isInoperable, false)
}

// Annotate adds to incs, in place, the acks and reporting steps the
// tracker holds for them: all that were ever saved in its AckStore, since
// UseAckStore loads them whole. It serves incidents IncidentsBetween
// computed from the index, also ones the tracker no longer keeps.
func (t *Tracker) Annotate(incs []Incident) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.annotateLocked(incs)
}

// annotateLocked adds to incs, in place, their acks and reporting steps.
func (t *Tracker) annotateLocked(incs []Incident) {
	for i := range incs {
		inc := &incs[i]
		if a, ok := t.acks[ackKey{inc.NumIDK, inc.ID}]; ok {
			inc.Acked, inc.AckedBy, inc.AckedAt = true, a.By, a.At.In(t.loc)
		}
		for _, s := range ReportSteps {
			if r, ok := t.steps[stepKey{inc.NumIDK, inc.ID, s.Name}]; ok {
				if inc.Reports == nil {
					inc.Reports = map[string]StepReport{}
				}
				r.At = r.At.In(t.loc)
				inc.Reports[s.Name] = r
			}
		}
	}
}
