package cases

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"time"

	"idk/collector/kv"
)

// bucketAudit is the audit log: case ID 0x00 revision (8 bytes,
// big-endian) -> AuditEntry (JSON). It is append-only: an entry is
// written once, in the transaction of the change it records, and
// nothing deletes from the bucket. A case's entries are one range of
// keys, in revision order.
const bucketAudit = "audit"

// AuditEntry is one change of a case: who made it, when, what caused it
// and the revision of the case it produced.
type AuditEntry struct {
	Case string `json:"case_id"`
	// Rev is the case's revision after the change: 1 for the change that
	// opened it (or, for a case older than the log, its first change
	// since), then 2, 3, ...
	Rev  uint64    `json:"version"`
	At   time.Time `json:"at"`   // collector time of the change
	By   string    `json:"by"`   // who reported its cause; "collector" for a deadline or a site
	What string    `json:"what"` // the event and its reason, or what the collector saw
	// Event is the event that caused the change, when one did.
	Event *Event `json:"event,omitempty"`
	// RowVersion is the version of the table 4 row the change added (see
	// History), when it added one.
	RowVersion int `json:"row_version,omitempty"`
}

func auditKey(id string, rev uint64) []byte { return append([]byte(id+"\x00"), u64(rev)...) }

// logAudit gives each case of the change its next revision and an audit
// entry for it, by and what as c says.
func (ch *change) logAudit(c cause) {
	for _, id := range slices.Sorted(maps.Keys(ch.recs)) {
		r := ch.recs[id]
		r.Rev++
		by, what, ev := c.of(r)
		a := AuditEntry{Case: id, Rev: r.Rev, At: ch.now, By: by, What: what, Event: ev}
		if r.MergedInto != "" {
			a.What += ", merged into " + r.MergedInto
		}
		if old, err := ch.lookupStored(id); err == nil && (old == nil || len(old.History) < len(r.History)) && len(r.History) > 0 {
			a.RowVersion = len(r.History)
		}
		ch.audit = append(ch.audit, a)
	}
}

// writeAudit appends the change's entries to the log in tx. An entry
// that is already there is an error, never overwritten.
func (ch *change) writeAudit(tx kv.Tx) error {
	for _, a := range ch.audit {
		k := auditKey(a.Case, a.Rev)
		old, err := tx.Get(bucketAudit, k)
		if err != nil {
			return fmt.Errorf("read audit entry %d of case %s: %w", a.Rev, a.Case, err)
		}
		if old != nil {
			return fmt.Errorf("audit entry %d of case %s is already written", a.Rev, a.Case)
		}
		data, err := json.Marshal(a)
		if err != nil {
			return fmt.Errorf("encode audit entry %d of case %s: %w", a.Rev, a.Case, err)
		}
		if err := tx.Put(bucketAudit, k, data); err != nil {
			return fmt.Errorf("put audit entry %d of case %s: %w", a.Rev, a.Case, err)
		}
	}
	return nil
}

// Audit returns the audit log of case id, oldest first: every change of
// the case since the log was kept. ok is false when there is no such
// case. The ID of a case merged into another gives its own entries,
// the last of which names the case it went into.
func (e *Engine) Audit(id string) (entries []AuditEntry, ok bool, err error) {
	r, err := e.loadRecord(id)
	if err != nil {
		return nil, false, fmt.Errorf("cases: audit of %s: %w", id, err)
	}
	if r == nil {
		return nil, false, nil
	}
	entries = []AuditEntry{}
	prefix := []byte(id + "\x00")
	err = e.db.View(func(tx kv.Tx) error {
		entries = entries[:0]
		return tx.Scan(bucketAudit, prefix, kv.PrefixEnd(prefix), false, func(k, v []byte) error {
			var a AuditEntry
			if err := json.Unmarshal(v, &a); err != nil {
				return fmt.Errorf("audit entry %x: %w", k, err)
			}
			a.At = a.At.In(e.loc)
			if a.Event != nil {
				a.Event.Time = a.Event.Time.In(e.loc)
			}
			entries = append(entries, a)
			return nil
		})
	})
	if err != nil {
		return nil, false, fmt.Errorf("cases: audit of %s: %w", id, err)
	}
	return entries, true, nil
}
