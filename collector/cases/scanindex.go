package cases

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"idk/collector/kv"
)

// The scan index: per image, what the daily report takes from its case
// (table 1's VER_SCAN and risk section, table 3's time in the working
// zone), so that a report over a month reads one small entry per scan
// instead of decoding every case. It is written in the transaction that
// stores the case (change.write), so it never disagrees with the cases.
//
// An entry's key sorts by ИДК, then by the object's zone start (its first
// arrival, or its scan when no arrival was reported; see zoneStart), then
// by case ID, so one range scan finds an ИДК's zones of a period in order.
const (
	bucketScans    = "scans"      // NUM_IDK 0x00 zone start (8 bytes) 0x00 ID -> scanEntry (JSON)
	bucketScanSnim = "scans.snim" // NUM_IDK 0x00 NUM_SNIM -> its key in bucketScans
)

// keyScanIndex in bucketMeta marks the scan index as filled for every
// case stored before it existed (migrateScanIndex); keyScanIndexAt holds
// the last case ID indexed while that runs, so a crash resumes there.
//
// The "-2" is the entries' version: version 1 (keys "scanindex" and
// "scanindex-at", deleted when version 2 is filled) held the last
// decision where the first belongs, so a file filled by it is indexed
// again, once.
var (
	keyScanIndex     = []byte("scanindex-2")
	keyScanIndexAt   = []byte("scanindex-2-at")
	keysScanIndexOld = [][]byte{[]byte("scanindex"), []byte("scanindex-at")}
)

// migrateBatch is how many cases one transaction of the migration indexes:
// a year of cases in one transaction would hold all its pages in memory.
// A variable only so that a test can make batches small.
var migrateBatch = 10000

// ScanFacts is what table 1 takes from the case of a scan.
type ScanFacts struct {
	VerScan ScanKind    // the kind of scan staff declared; 0 when not said
	Risk    RiskProfile // the ПР that triggered the inspection; zero when none was reported
}

// Zone is an object's stay in the working zone: from its arrival (or its
// scan when no arrival was reported) to the operator's first decision on
// it (zero while none). The inspection ends with that decision: a later
// edit of the form (a decision changed or saved again) does not keep the
// object in the zone.
type Zone struct {
	Arrival, Decision time.Time
}

// scanEntry is the stored entry of one image. Times are instants; a zero
// time is left out.
type scanEntry struct {
	NumSnim  string      `json:"num_snim"`
	Arrival  time.Time   `json:"arrival,omitzero"`  // the first arrival event
	Scan     time.Time   `json:"scan,omitzero"`     // the first scan event
	Decision time.Time   `json:"decision,omitzero"` // the first decision event
	VerScan  ScanKind    `json:"ver_scan,omitempty"`
	Risk     RiskProfile `json:"risk,omitzero"`
}

// scanEntryOf is r's entry.
//
// The risk is that of the latest risk_detected that reported one, unless
// a risk_withdrawn after it cancelled it: a withdrawn profile did not
// trigger the inspection.
func scanEntryOf(r *record) scanEntry {
	s := scanEntry{NumSnim: r.NumSnim, VerScan: r.scanKind()}
	for _, ev := range r.Events {
		switch ev.Kind {
		case Arrival:
			if s.Arrival.IsZero() {
				s.Arrival = ev.Time.UTC()
			}
		case Scan:
			if s.Scan.IsZero() {
				s.Scan = ev.Time.UTC()
			}
		case Decision:
			if t := ev.Time.UTC(); s.Decision.IsZero() || t.Before(s.Decision) {
				s.Decision = t // the first decision ends the stay
			}
		case RiskDetected:
			if ev.Risk != (RiskProfile{}) {
				s.Risk = ev.Risk
			}
		case RiskWithdrawn:
			s.Risk = RiskProfile{}
		}
	}
	return s
}

// zoneStart is when the object entered the working zone: its arrival, or
// its scan when no arrival was reported or the arrival is reported later
// than the scan (an object is in the zone when it is scanned). A case that
// has its image from a decision alone starts at its first event.
func (s scanEntry) zoneStart(r *record) time.Time {
	switch {
	case !s.Arrival.IsZero() && (s.Scan.IsZero() || !s.Arrival.After(s.Scan)):
		return s.Arrival
	case !s.Scan.IsZero():
		return s.Scan
	}
	return r.first().UTC()
}

func scanKey(numIDK string, start time.Time, id string) []byte {
	k := zoneKey(numIDK, start)
	k = append(k, 0)
	return append(k, id...)
}

// zoneKey is the first possible key of numIDK's entries starting at or
// after t. The offset keeps times before 1970 in order as unsigned
// numbers.
func zoneKey(numIDK string, t time.Time) []byte {
	return binary.BigEndian.AppendUint64([]byte(numIDK+"\x00"), uint64(t.UnixNano())^(1<<63))
}

func scanKeyTime(numIDK string, k []byte) time.Time {
	i := len(numIDK) + 1
	return time.Unix(0, int64(binary.BigEndian.Uint64(k[i:i+8])^(1<<63)))
}

// indexScan writes r's entry in tx, replacing the entry its image had
// under another key: a case merged into another hands its image to that
// case (change.merge), whose ID differs, and a late arrival moves the zone
// start. A case holds at most one image and never trades it for another,
// so the image's key in bucketScanSnim finds every stale entry; a merged
// record itself (image gone to the other case) writes nothing.
func indexScan(tx kv.Tx, r *record) error {
	if r.MergedInto != "" || r.NumSnim == "" {
		return nil
	}
	s := scanEntryOf(r)
	key := scanKey(r.NumIDK, s.zoneStart(r), r.ID)
	value, err := json.Marshal(s)
	if err != nil {
		return fmt.Errorf("encode scan entry: %w", err)
	}
	snim := []byte(snimKey(r.NumIDK, r.NumSnim))
	old, err := tx.Get(bucketScanSnim, snim)
	if err != nil {
		return err
	}
	if bytes.Equal(old, key) {
		// Tick rewrites cases whose marks change: most writes leave the
		// entry as it was, and need not dirty its page.
		cur, err := tx.Get(bucketScans, key)
		if err != nil {
			return err
		}
		if bytes.Equal(cur, value) {
			return nil
		}
	} else {
		if old != nil {
			if err := tx.Delete(bucketScans, old); err != nil {
				return err
			}
		}
		if err := tx.Put(bucketScanSnim, snim, key); err != nil {
			return err
		}
	}
	return tx.Put(bucketScans, key, value)
}

// migrateScanIndex fills the scan index from the cases stored before it
// existed, or before its entries' version (keyScanIndex), once, in
// batches. indexScan replaces an entry of an older version in place.
// Entries are keyed by their content, so a batch done again after a
// crash writes the same entries.
func (e *Engine) migrateScanIndex() error {
	var done bool
	var at []byte
	err := e.db.View(func(tx kv.Tx) error {
		v, err := tx.Get(bucketMeta, keyScanIndex)
		if err != nil {
			return err
		}
		done = v != nil
		v, err = tx.Get(bucketMeta, keyScanIndexAt)
		at = bytes.Clone(v)
		return err
	})
	if err != nil || done {
		return err
	}
	for {
		// A batch's progress (next, n) lives in fn and reaches at only
		// once the batch is stored: Update may run fn again, and a batch
		// that failed must be done again from where it started.
		var next []byte
		var n int
		err := e.db.Update(func(tx kv.Tx) error {
			next, n = at, 0
			var from []byte
			if at != nil {
				from = append(bytes.Clone(at), 0) // the first key after at
			}
			more := false
			err := tx.Scan(bucketCases, from, nil, false, func(k, v []byte) error {
				if n == migrateBatch {
					more = true
					return errStop
				}
				r, err := decodeRecord(k, v)
				if err != nil {
					return err
				}
				if err := indexScan(tx, r); err != nil {
					return fmt.Errorf("index scan of case %s: %w", k, err)
				}
				next, n = bytes.Clone(k), n+1
				return nil
			})
			if err != nil && !errors.Is(err, errStop) {
				return err
			}
			if !more {
				for _, old := range append([][]byte{keyScanIndexAt}, keysScanIndexOld...) {
					if err := tx.Delete(bucketMeta, old); err != nil {
						return err
					}
				}
				return tx.Put(bucketMeta, keyScanIndex, []byte{1})
			}
			return tx.Put(bucketMeta, keyScanIndexAt, next)
		})
		if err != nil {
			return fmt.Errorf("fill the scan index: %w", err)
		}
		at = next
		if n < migrateBatch {
			return nil
		}
	}
}

// ScanFacts returns what table 1 takes from the case holding image
// numSnim of ИДК numIDK. ok is false when no case holds it.
func (e *Engine) ScanFacts(numIDK, numSnim string) (ScanFacts, bool, error) {
	var s scanEntry
	var ok bool
	err := e.db.View(func(tx kv.Tx) error {
		s, ok = scanEntry{}, false
		key, err := tx.Get(bucketScanSnim, []byte(snimKey(norm(numIDK), norm(numSnim))))
		if err != nil || key == nil {
			return err
		}
		v, err := tx.Get(bucketScans, key)
		if err != nil {
			return err
		}
		if v == nil {
			return fmt.Errorf("entry %q is listed but not stored", key)
		}
		ok = true
		return json.Unmarshal(v, &s)
	})
	if err != nil {
		return ScanFacts{}, false, fmt.Errorf("cases: scan facts of %s at ИДК %s: %w", numSnim, numIDK, err)
	}
	return ScanFacts{VerScan: s.VerScan, Risk: s.Risk}, ok, nil
}

// Zones returns the zones of ИДК numIDK whose arrival is in [from, to),
// in arrival order (then by case ID), with times in the engine's zone.
func (e *Engine) Zones(numIDK string, from, to time.Time) ([]Zone, error) {
	numIDK = norm(numIDK)
	var zones []Zone
	err := e.db.View(func(tx kv.Tx) error {
		zones = zones[:0]
		start, end := zoneKey(numIDK, from), zoneKey(numIDK, to)
		if bytes.Compare(start, end) >= 0 {
			return nil // an empty or backward period, which a cursor found empty too
		}
		return tx.Scan(bucketScans, start, end, false, func(k, v []byte) error {
			var s scanEntry
			if err := json.Unmarshal(v, &s); err != nil {
				return fmt.Errorf("entry %q: %w", k, err)
			}
			z := Zone{Arrival: scanKeyTime(numIDK, k).In(e.loc)}
			if !s.Decision.IsZero() {
				z.Decision = s.Decision.In(e.loc)
			}
			zones = append(zones, z)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("cases: zones of ИДК %s: %w", numIDK, err)
	}
	return zones, nil
}
