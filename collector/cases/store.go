package cases

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// The engine's bbolt file. bbolt syncs every committed transaction, which
// is what makes a change durable before the call that made it returns.
var (
	bucketCases    = []byte("cases")    // ID -> record (JSON)
	bucketLive     = []byte("live")     // ID -> "": the cases held in memory
	bucketBreached = []byte("breached") // ID -> breachState (JSON) of every case with marks
	bucketSnim     = []byte("snim")     // snimKey -> ID of the case holding the image
	bucketSeen     = []byte("seen")     // SHA-256 of an added event -> ID of the case it went to
	bucketCounts   = []byte("counts")   // NUM_IDK 0x00 rule -> marks ever made (8 bytes, big-endian)
	bucketDevices  = []byte("devices")  // NUM_IDK -> Device (JSON)
	bucketMeta     = []byte("meta")     // "seq" -> the last case number given (8 bytes, big-endian)
	// bucketAudit (audit.go) holds the audit log; bucketScans and
	// bucketScanSnim (scanindex.go) the scan index.
)

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

// load reads the state a previous run left.
func (e *Engine) load() error {
	err := e.db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketCases, bucketLive, bucketBreached, bucketSnim, bucketSeen, bucketCounts, bucketDevices, bucketMeta, bucketAudit, bucketScans, bucketScanSnim} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return fmt.Errorf("create bucket %s: %w", b, err)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if err := e.migrateScanIndex(); err != nil {
		return err
	}
	return e.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketMeta).Get(keySeq); len(v) == 8 {
			e.seq = binary.BigEndian.Uint64(v)
		}
		err := tx.Bucket(bucketDevices).ForEach(func(k, v []byte) error {
			var d Device
			if err := json.Unmarshal(v, &d); err != nil {
				return fmt.Errorf("device %s: %w", k, err)
			}
			e.devices[string(k)] = d
			return nil
		})
		if err != nil {
			return err
		}
		err = tx.Bucket(bucketCounts).ForEach(func(k, v []byte) error {
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
			e.counts[key] = binary.BigEndian.Uint64(v)
			return nil
		})
		if err != nil {
			return err
		}
		cases := tx.Bucket(bucketCases)
		err = tx.Bucket(bucketLive).ForEach(func(k, _ []byte) error {
			r, err := decodeRecord(k, cases.Get(k))
			if err != nil {
				return err
			}
			e.cases[r.ID] = r
			if r.NumSnim != "" {
				e.snim[snimKey(r.NumIDK, r.NumSnim)] = r.ID
			}
			return nil
		})
		if err != nil {
			return err
		}
		return tx.Bucket(bucketBreached).ForEach(func(k, v []byte) error {
			var st breachState
			if err := json.Unmarshal(v, &st); err != nil {
				return fmt.Errorf("breach state of case %s: %w", k, err)
			}
			e.breached[string(k)] = st
			return nil
		})
	})
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
	err := e.db.View(func(tx *bolt.Tx) error {
		data := tx.Bucket(bucketCases).Get([]byte(id))
		if data == nil {
			return nil
		}
		var err error
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

func (e *Engine) get(bucket, key []byte) (string, error) {
	var v string
	err := e.db.View(func(tx *bolt.Tx) error {
		v = string(tx.Bucket(bucket).Get(key))
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("read %s index: %w", bucket, err)
	}
	return v, nil
}

// write stores the change in tx.
func (ch *change) write(tx *bolt.Tx) error {
	cases, live, breached, snim := tx.Bucket(bucketCases), tx.Bucket(bucketLive), tx.Bucket(bucketBreached), tx.Bucket(bucketSnim)
	for id, r := range ch.recs {
		data, err := json.Marshal(r)
		if err != nil {
			return fmt.Errorf("encode case %s: %w", id, err)
		}
		if err := cases.Put([]byte(id), data); err != nil {
			return fmt.Errorf("put case %s: %w", id, err)
		}
		if r.MergedInto == "" {
			err = live.Put([]byte(id), []byte{})
		} else {
			err = live.Delete([]byte(id))
		}
		if err != nil {
			return fmt.Errorf("index case %s: %w", id, err)
		}
		if r.MergedInto == "" && r.NumSnim != "" {
			if err := snim.Put([]byte(snimKey(r.NumIDK, r.NumSnim)), []byte(id)); err != nil {
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
			err = breached.Put([]byte(id), state)
		} else {
			err = breached.Delete([]byte(id))
		}
		if err != nil {
			return fmt.Errorf("index breaches of case %s: %w", id, err)
		}
	}
	for _, id := range ch.evict {
		if err := live.Delete([]byte(id)); err != nil {
			return fmt.Errorf("unlist case %s: %w", id, err)
		}
	}
	for k, n := range ch.added {
		if err := tx.Bucket(bucketCounts).Put(countBytes(k), u64(ch.e.counts[k]+n)); err != nil {
			return fmt.Errorf("count breach %s of ИДК %s: %w", k.rule, k.numIDK, err)
		}
	}
	for _, s := range ch.seen {
		if err := tx.Bucket(bucketSeen).Put(s.key, []byte(s.id)); err != nil {
			return fmt.Errorf("index event of case %s: %w", s.id, err)
		}
	}
	if ch.seq != ch.e.seq {
		if err := tx.Bucket(bucketMeta).Put(keySeq, u64(ch.seq)); err != nil {
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
		if err := tx.Bucket(bucketDevices).Put([]byte(ch.device.NumIDK), data); err != nil {
			return fmt.Errorf("put device %s: %w", ch.device.NumIDK, err)
		}
	}
	return nil
}
