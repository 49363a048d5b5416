package cases

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"idk/collector/kv"
)

// bucketDecisions holds the first deputy head's decisions on breaches
// (item 36): case ID 0x00 version (8 bytes, big-endian) -> BreachDecision
// (JSON). Like the audit log it is append-only: a later decision on the
// same case is a new version, and the older ones stay, because the
// decision is a written resolution and a changed mind must not erase the
// first one. The bucket is created by the first Decide, inside its own
// transaction, so files written before decisions existed need no
// migration.
const bucketDecisions = "decisions"

// BreachDecision is the first deputy head's decision (item 36) on
// whether the causes of a breach of the item 35 limits were objective.
type BreachDecision struct {
	Case string `json:"case_id"`
	// Version is 1 for the first decision on the case, then 2, 3, ...:
	// the latest one is in force.
	Version   int       `json:"version"`
	Objective bool      `json:"objective"`
	By        string    `json:"by"`             // who decided, as given
	At        time.Time `json:"at"`             // collector time it was recorded
	Note      string    `json:"note,omitempty"` // the resolution's text, if any
}

func decisionKey(id string, version int) []byte {
	return binary.BigEndian.AppendUint64([]byte(id+"\x00"), uint64(version))
}

// Decide records the first deputy head's decision on the breach of case
// caseID (or of the case it was merged into, which holds the breach):
// objective says whether its causes were objective, by who decided, note
// the resolution's text. A second decision on the same case is a new
// version; the earlier ones are kept. A case that does not exist is
// ErrNotFound, one with no standing breach (never breached, or every
// breach withdrawn: there is nothing to decide on) or an empty by is
// ErrInvalid.
func (e *Engine) Decide(caseID string, objective bool, by, note string) error {
	caseID, by, note = strings.TrimSpace(caseID), strings.TrimSpace(by), strings.TrimSpace(note)
	switch {
	case caseID == "":
		return fmt.Errorf("cases: decide: %w", invalid("case_id is empty"))
	case by == "":
		return fmt.Errorf("cases: decide on %s: %w", caseID, invalid("by is empty: say who decided"))
	}
	r, err := e.find(caseID)
	if err != nil {
		return fmt.Errorf("cases: decide on %s: %w", caseID, err)
	}
	if r == nil {
		return fmt.Errorf("cases: decide: case_id %q: no such case: %w", caseID, ErrNotFound)
	}
	if _, ok := r.breachedAt(); !ok {
		return fmt.Errorf("cases: decide: case_id %q: %w", caseID, invalid("case %s has no breach to decide on", r.ID))
	}
	d := BreachDecision{Case: r.ID, Objective: objective, By: by, At: e.clock.Now().In(e.loc), Note: note}
	err = e.db.Update(func(tx kv.Tx) error {
		// The next version is read in the same transaction as the write,
		// so two deputies deciding at once get versions 1 and 2, not two 1s.
		// It is set afresh on every call, since Update may run fn again.
		prefix := []byte(d.Case + "\x00")
		d.Version = 1
		err := tx.Scan(bucketDecisions, prefix, kv.PrefixEnd(prefix), true, func(k, _ []byte) error {
			d.Version = int(binary.BigEndian.Uint64(k[len(prefix):])) + 1
			return errStop // the last key holds the latest version
		})
		if err != nil && !errors.Is(err, errStop) {
			return fmt.Errorf("read versions: %w", err)
		}
		data, err := json.Marshal(d)
		if err != nil {
			return fmt.Errorf("encode: %w", err)
		}
		return tx.Put(bucketDecisions, decisionKey(d.Case, d.Version), data)
	})
	if err != nil {
		return fmt.Errorf("cases: decide on %s: store: %w", caseID, err)
	}
	return nil
}

// Decisions returns every decision on the cases ids, each case's oldest
// first (the last is in force), keyed by case ID; a case with none is
// absent. With no ids it returns every decision recorded. An ID is taken
// as given: Decide stores a decision under the case holding the breach,
// the ID table 4 and BreachHistory show.
func (e *Engine) Decisions(ids ...string) (map[string][]BreachDecision, error) {
	out := map[string][]BreachDecision{}
	err := e.db.View(func(tx kv.Tx) error {
		clear(out) // a View run again starts afresh
		read := func(k, v []byte) error {
			var d BreachDecision
			if err := json.Unmarshal(v, &d); err != nil {
				return fmt.Errorf("decision %x: %w", k, err)
			}
			d.At = d.At.In(e.loc)
			out[d.Case] = append(out[d.Case], d)
			return nil
		}
		// A bucket that was never written (no decision recorded) scans
		// as empty.
		if len(ids) == 0 {
			return tx.Scan(bucketDecisions, nil, nil, false, read)
		}
		for _, id := range ids {
			if _, done := out[id]; done {
				continue
			}
			prefix := []byte(id + "\x00")
			if err := tx.Scan(bucketDecisions, prefix, kv.PrefixEnd(prefix), false, read); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("cases: decisions: %w", err)
	}
	return out, nil
}
