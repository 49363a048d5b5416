package cases

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"maps"

	"idk/collector/kv"
)

// The engine's store (kv.DB): a bbolt file of its own, or a region's
// PostgreSQL database. Either commits durably before Update returns, which
// is what makes a change durable before the call that made it returns.
// The bucket names are the bbolt file's top-level buckets, as they were
// before the store was behind kv, so old files open unchanged.
const (
	bucketCases    = "cases"    // ID -> record (JSON)
	bucketLive     = "live"     // ID -> "": the cases held in memory
	bucketBreached = "breached" // ID -> breachState (JSON) of every case with marks
	bucketSnim     = "snim"     // snimKey -> ID of the case holding the image
	bucketSeen     = "seen"     // SHA-256 of an added event -> ID of the case it went to
	bucketCounts   = "counts"   // NUM_IDK 0x00 rule -> marks ever made (8 bytes, big-endian)
	bucketDevices  = "devices"  // NUM_IDK -> Device (JSON)
	bucketMeta     = "meta"     // "seq" -> the last case number given (8 bytes, big-endian)
	// bucketAudit (audit.go) holds the audit log; bucketScans and
	// bucketScanSnim (scanindex.go) the scan index; bucketDecisions
	// (decision.go) the breach decisions.
)

// buckets lists every bucket, for Open to create in a new bbolt file (see
// createBuckets).
var buckets = []string{bucketCases, bucketLive, bucketBreached, bucketSnim, bucketSeen, bucketCounts, bucketDevices, bucketMeta, bucketAudit, bucketScans, bucketScanSnim}

// errStop ends a Scan early; the caller that returns it ignores it.
var errStop = errors.New("stop scan")

var keySeq = []byte("seq")

func snimKey(numIDK, snim string) string { return numIDK + "\x00" + snim }

func countBytes(k countKey) []byte { return []byte(k.numIDK + "\x00" + string(k.rule)) }

func u64(n uint64) []byte { return binary.BigEndian.AppendUint64(nil, n) }

// eventKey identifies an event for idempotence: the hash of all its
// normalised fields, with the time as an instant.
func eventKey(ev Event) []byte {
	ev.Time = ev.Time.UTC()
	data, _ := json.Marshal(ev) // plain strings, a time and a bool: cannot fail
	sum := sha256.Sum256(data)
	return sum[:]
}

// load reads the state a previous run left. It fills the engine's maps
// only after the read succeeds, so a failed load leaves them as they were.
func (e *Engine) load() error {
	if err := e.migrateScanIndex(); err != nil {
		return err
	}
	var (
		seq      uint64
		devices  map[string]Device
		counts   map[countKey]uint64
		cases    map[string]*record
		snim     map[string]string
		breached map[string]breachState
	)
	err := e.db.View(func(tx kv.Tx) error {
		// Reset on every call, so that a View run again starts afresh.
		seq = 0
		devices, counts, cases = map[string]Device{}, map[countKey]uint64{}, map[string]*record{}
		snim, breached = map[string]string{}, map[string]breachState{}
		v, err := tx.Get(bucketMeta, keySeq)
		if err != nil {
			return fmt.Errorf("read case number: %w", err)
		}
		if len(v) == 8 {
			seq = binary.BigEndian.Uint64(v)
		}
		err = tx.Scan(bucketDevices, nil, nil, false, func(k, v []byte) error {
			var d Device
			if err := json.Unmarshal(v, &d); err != nil {
				return fmt.Errorf("device %s: %w", k, err)
			}
			devices[string(k)] = d
			return nil
		})
		if err != nil {
			return err
		}
		err = tx.Scan(bucketCounts, nil, nil, false, func(k, v []byte) error {
			var key countKey
			for i, c := range k {
				if c == 0 {
					key = countKey{numIDK: string(k[:i]), rule: Rule(k[i+1:])}
					break
				}
			}
			if key.rule == "" || len(v) != 8 {
				return fmt.Errorf("counter %q: malformed", k)
			}
			counts[key] = binary.BigEndian.Uint64(v)
			return nil
		})
		if err != nil {
			return err
		}
		err = tx.Scan(bucketLive, nil, nil, false, func(k, _ []byte) error {
			data, err := tx.Get(bucketCases, k)
			if err != nil {
				return fmt.Errorf("case %s: %w", k, err)
			}
			r, err := decodeRecord(k, data)
			if err != nil {
				return err
			}
			cases[r.ID] = r
			if r.NumSnim != "" {
				snim[snimKey(r.NumIDK, r.NumSnim)] = r.ID
			}
			return nil
		})
		if err != nil {
			return err
		}
		return tx.Scan(bucketBreached, nil, nil, false, func(k, v []byte) error {
			var st breachState
			if err := json.Unmarshal(v, &st); err != nil {
				return fmt.Errorf("breach state of case %s: %w", k, err)
			}
			breached[string(k)] = st
			return nil
		})
	})
	if err != nil {
		return err
	}
	e.seq = seq
	maps.Copy(e.devices, devices)
	maps.Copy(e.counts, counts)
	maps.Copy(e.cases, cases)
	maps.Copy(e.snim, snim)
	maps.Copy(e.breached, breached)
	return nil
}

func decodeRecord(id, data []byte) (*record, error) {
	if data == nil {
		return nil, fmt.Errorf("case %s: listed but not stored", id)
	}
	var r record
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("case %s: %w", id, err)
	}
	return &r, nil
}

// loadRecord reads a case from disk. It is nil if there is no such case.
func (e *Engine) loadRecord(id string) (*record, error) {
	var r *record
	err := e.db.View(func(tx kv.Tx) error {
		r = nil
		data, err := tx.Get(bucketCases, []byte(id))
		if err != nil || data == nil {
			return err
		}
		r, err = decodeRecord([]byte(id), data)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("read case: %w", err)
	}
	return r, nil
}

// diskSnim is the ID of the case holding an image, from the index of
// every case ever stored, or "".
func (e *Engine) diskSnim(numIDK, snim string) (string, error) {
	return e.get(bucketSnim, []byte(snimKey(numIDK, snim)))
}

// seenEvent is the ID of the case an identical event went to, or "".
func (e *Engine) seenEvent(key []byte) (string, error) { return e.get(bucketSeen, key) }

func (e *Engine) get(bucket string, key []byte) (string, error) {
	var v string
	err := e.db.View(func(tx kv.Tx) error {
		// string copies the value, which is valid only in the transaction.
		data, err := tx.Get(bucket, key)
		v = string(data)
		return err
	})
	if err != nil {
		return "", fmt.Errorf("read %s index: %w", bucket, err)
	}
	return v, nil
}

// write stores the change in tx. It changes nothing but tx, so that
// kv.DB.Update may run it again; apply puts the change in memory once it
// is stored.
func (ch *change) write(tx kv.Tx) error {
	for id, r := range ch.recs {
		data, err := json.Marshal(r)
		if err != nil {
			return fmt.Errorf("encode case %s: %w", id, err)
		}
		if err := tx.Put(bucketCases, []byte(id), data); err != nil {
			return fmt.Errorf("put case %s: %w", id, err)
		}
		if r.MergedInto == "" {
			err = tx.Put(bucketLive, []byte(id), []byte{})
		} else {
			err = tx.Delete(bucketLive, []byte(id))
		}
		if err != nil {
			return fmt.Errorf("index case %s: %w", id, err)
		}
		if r.MergedInto == "" && r.NumSnim != "" {
			if err := tx.Put(bucketSnim, []byte(snimKey(r.NumIDK, r.NumSnim)), []byte(id)); err != nil {
				return fmt.Errorf("index image of case %s: %w", id, err)
			}
		}
		if err := indexScan(tx, r); err != nil {
			return fmt.Errorf("index scan of case %s: %w", id, err)
		}
		if st, ok := stateOf(r); ok {
			var state []byte
			if state, err = json.Marshal(st); err != nil {
				return fmt.Errorf("encode breach state of case %s: %w", id, err)
			}
			err = tx.Put(bucketBreached, []byte(id), state)
		} else {
			err = tx.Delete(bucketBreached, []byte(id))
		}
		if err != nil {
			return fmt.Errorf("index breaches of case %s: %w", id, err)
		}
	}
	for _, id := range ch.evict {
		if err := tx.Delete(bucketLive, []byte(id)); err != nil {
			return fmt.Errorf("unlist case %s: %w", id, err)
		}
	}
	for k, n := range ch.added {
		if err := tx.Put(bucketCounts, countBytes(k), u64(ch.e.counts[k]+n)); err != nil {
			return fmt.Errorf("count breach %s of ИДК %s: %w", k.rule, k.numIDK, err)
		}
	}
	for _, s := range ch.seen {
		if err := tx.Put(bucketSeen, s.key, []byte(s.id)); err != nil {
			return fmt.Errorf("index event of case %s: %w", s.id, err)
		}
	}
	if ch.seq != ch.e.seq {
		if err := tx.Put(bucketMeta, keySeq, u64(ch.seq)); err != nil {
			return fmt.Errorf("put case number: %w", err)
		}
	}
	if err := ch.writeAudit(tx); err != nil {
		return err
	}
	if ch.device != nil {
		data, err := json.Marshal(ch.device)
		if err != nil {
			return fmt.Errorf("encode device %s: %w", ch.device.NumIDK, err)
		}
		if err := tx.Put(bucketDevices, []byte(ch.device.NumIDK), data); err != nil {
			return fmt.Errorf("put device %s: %w", ch.device.NumIDK, err)
		}
	}
	return nil
}
