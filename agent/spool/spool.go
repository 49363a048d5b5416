// Package spool keeps, durably in a bbolt file, everything the agent has
// seen and not yet delivered: events waiting for the collector's
// acknowledgement, files waiting to be shipped, and what the agent knows of
// each scan. Every change is one synced bbolt transaction, so a crash or a
// power cut leaves either the state before or the state after, never half.
package spool

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"google.golang.org/protobuf/proto"
	"idk/internal/boltfile"

	"idk/protocol/idkpb"
)

var (
	bucketMeta   = []byte("meta")
	bucketEvents = []byte("events") // seq (8 bytes BE) -> idkpb.Event
	bucketScans  = []byte("scans")  // NUM_SNIM -> Scan (JSON)
	bucketFiles  = []byte("files")  // NUM_SNIM/name -> File (JSON)
	bucketQueue  = []byte("queue")  // order (8 bytes BE) + NUM_SNIM/name -> nothing
	keyNextSeq   = []byte("next_seq")
	keyNextOrder = []byte("next_order")
	keyEpoch     = []byte("epoch")
	// keyTotals holds the pending totals (see totals), kept in the same
	// transactions that change them, so that Stats, read at every metrics
	// scrape and every status report, costs the same with 100 000 files
	// queued as with none: walking the queue read every file record, which
	// pulled the whole spool file into the agent's resident set through
	// bbolt's memory map.
	keyTotals = []byte("totals")
)

// totals are the pending items' counts and sizes, as Stats reports them.
type totals struct {
	events, eventBytes, files, fileBytes int64
}

func (t totals) encode() []byte {
	b := make([]byte, 0, 32)
	for _, n := range []int64{t.events, t.eventBytes, t.files, t.fileBytes} {
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	return b
}

func decodeTotals(b []byte) (totals, bool) {
	if len(b) != 32 {
		return totals{}, false
	}
	n := func(i int) int64 { return int64(binary.BigEndian.Uint64(b[8*i:])) }
	return totals{n(0), n(1), n(2), n(3)}, true
}

// countTotals walks the pending items: once, for a spool written before
// the totals were kept.
func countTotals(tx *bolt.Tx) (totals, error) {
	var t totals
	c := tx.Bucket(bucketEvents).Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		t.events++
		t.eventBytes += int64(len(v))
	}
	files := tx.Bucket(bucketFiles)
	qc := tx.Bucket(bucketQueue).Cursor()
	for k, _ := qc.First(); k != nil; k, _ = qc.Next() {
		var r fileRecord
		b := files.Get(k[8:])
		if b == nil {
			continue
		}
		if err := json.Unmarshal(b, &r); err != nil {
			return t, fmt.Errorf("spool: decode files/%s: %w", k[8:], err)
		}
		t.files++
		t.fileBytes += r.Size
	}
	return t, nil
}

// Spool is the agent's durable queue. It is safe for concurrent use.
type Spool struct {
	db    *bolt.DB
	epoch uint64
	// Recovered is set when the file was damaged and moved aside at Open:
	// this spool started empty, and the agent rebuilds it from the
	// scanner's folder and the collector's acknowledgements.
	Recovered *boltfile.Recovery

	mu     sync.Mutex
	subs   []chan struct{}
	unmapT *time.Timer // the unmap due after the last Update, if any
	closed bool
	warned bool // unmap failed once and said so
}

// unmapAfter is how soon after an Update the spool's pages are dropped
// from the agent's resident set (see unmap); Updates in between share it.
// The intake at 700 files/s had 60 MB of the spool mapped within a second
// (each fault maps the pages around it too).
const unmapAfter = 250 * time.Millisecond

// Open opens or creates the spool file. A second agent on the same file
// gets an error instead of waiting forever. A damaged file is moved aside
// and replaced by an empty one (see Recovered).
func Open(path string) (*Spool, error) {
	db, rec, err := boltfile.Open(path, time.Now)
	if err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	var epoch uint64
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketMeta, bucketEvents, bucketScans, bucketFiles, bucketQueue} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		m := tx.Bucket(bucketMeta)
		if _, ok := decodeTotals(m.Get(keyTotals)); !ok {
			t, err := countTotals(tx)
			if err != nil {
				return err
			}
			if err := m.Put(keyTotals, t.encode()); err != nil {
				return err
			}
		}
		if v := m.Get(keyEpoch); len(v) == 8 {
			epoch = binary.BigEndian.Uint64(v)
			return nil
		}
		// A new spool: its epoch keeps its sequence numbers apart from
		// those of any spool before it (see idkpb.Hello.spool_epoch).
		epoch = uint64(time.Now().UnixNano())
		return m.Put(keyEpoch, u64(epoch))
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("spool: init %s: %w", path, err)
	}
	return &Spool{db: db, epoch: epoch, Recovered: rec}, nil
}

// Epoch identifies this spool file; it is fixed when the file is created.
func (s *Spool) Epoch() uint64 { return s.epoch }

// Close closes the file.
func (s *Spool) Close() error {
	s.mu.Lock()
	s.closed = true
	if s.unmapT != nil {
		s.unmapT.Stop()
	}
	s.mu.Unlock()
	return boltfile.Close(s.db)
}

// Subscribe returns a channel that is signalled (without blocking,
// coalesced) after every update, so the shipper wakes as soon as there is
// something new to send, and a function that ends the subscription (each
// connection subscribes anew, so a subscription must not outlive it).
func (s *Spool) Subscribe() (<-chan struct{}, func()) {
	c := make(chan struct{}, 1)
	s.mu.Lock()
	s.subs = append(s.subs, c)
	s.mu.Unlock()
	return c, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.subs = slices.DeleteFunc(s.subs, func(x chan struct{}) bool { return x == c })
	}
}

// Update runs fn in one durable transaction. Several changes may share
// one (the intake records a batch of files in one): its sync, not its
// size, is what a small change costs.
func (s *Spool) Update(fn func(*Tx) error) error {
	err := s.db.Update(func(btx *bolt.Tx) error { return fn(&Tx{btx}) })
	if err == nil {
		s.mu.Lock()
		for _, c := range s.subs {
			select {
			case c <- struct{}{}:
			default:
			}
		}
		if s.unmapT == nil && !s.closed {
			s.unmapT = time.AfterFunc(unmapAfter, func() {
				s.mu.Lock()
				s.unmapT = nil
				s.mu.Unlock()
				s.unmap()
			})
		}
		s.mu.Unlock()
	}
	return err
}

// unmap drops the spool file's pages from the agent's resident set. bbolt
// reads the file through a shared memory map, and every page a
// transaction reads stays mapped, and counted in the resident set, until
// the map is replaced when the file grows. Each commit writes the pages it
// changes to free pages anywhere in the file (copy on write) and the next
// transaction reads them back, so even appends alone touch, over time, a
// large part of the file: with 20 000 small files queued (a 58 MB spool)
// the mapped part measured 26 MB of the agent's 60 MB, and 60 MB of a
// 280 MB spool as 100 000 files were taken. The pages are clean copies of
// the file in the page cache, which the kernel may drop anyway; unmapping
// them costs a minor fault the next time one is read.
func (s *Spool) unmap() {
	// The read transaction holds off a remap (bbolt takes its map lock
	// for writing to remap), so the address and size stay those of the
	// current map while the call runs.
	err := s.db.View(func(tx *bolt.Tx) error { return unmapCached(s.db.Info().Data, int(tx.Size())) })
	if errors.Is(err, berrors.ErrDatabaseNotOpen) {
		return // closed meanwhile: nothing mapped
	}
	if err != nil {
		s.mu.Lock()
		warn := !s.warned
		s.warned = true
		s.mu.Unlock()
		if warn {
			slog.Warn("cannot drop the spool's pages from memory; the resident set will count them", "err", err)
		}
	}
}

// View runs fn in a read-only transaction.
func (s *Spool) View(fn func(*Tx) error) error {
	return s.db.View(func(btx *bolt.Tx) error { return fn(&Tx{btx}) })
}

// Tx is a spool transaction.
type Tx struct{ tx *bolt.Tx }

// Scan is what the agent knows of one scan folder.
type Scan struct {
	NumSnim   string    `json:"num_snim"`
	FirstSeen time.Time `json:"first_seen"`
	// Forms counts the form revisions recorded; FormSHA256 is the last one's hash.
	Forms      uint32 `json:"forms"`
	FormSHA256 []byte `json:"form_sha256,omitempty"`
	// Decided is set by the first form revision with a decision; later
	// revisions (an operator editing comments) are not new decisions.
	Decided bool `json:"decided,omitempty"`
}

// File is one scan file the agent has hashed and queued.
type File struct {
	NumSnim   string         `json:"num_snim"`
	Name      string         `json:"name"`
	Path      string         `json:"path"` // absolute path on this machine
	Kind      idkpb.FileKind `json:"kind"`
	Size      int64          `json:"size"`
	ModTime   time.Time      `json:"mod_time"`
	SHA256    []byte         `json:"sha256"`
	ScanTime  time.Time      `json:"scan_time"`
	FirstSeen time.Time      `json:"first_seen"`
	Done      bool           `json:"done"`
	DoneAt    time.Time      `json:"done_at,omitzero"`
	StoredAs  string         `json:"stored_as,omitempty"`
	order     uint64
}

// Key is the file's identity in the spool.
func (f File) Key() string { return f.NumSnim + "/" + f.Name }

// AppendEvent gives ev the next sequence number and stores it.
func (t *Tx) AppendEvent(ev *idkpb.Event) (uint64, error) {
	seq, err := t.next(keyNextSeq)
	if err != nil {
		return 0, err
	}
	ev.Seq = seq
	b, err := proto.Marshal(ev)
	if err != nil {
		return 0, fmt.Errorf("spool: encode event: %w", err)
	}
	if err := t.tx.Bucket(bucketEvents).Put(u64(seq), b); err != nil {
		return 0, err
	}
	return seq, t.addTotals(totals{events: 1, eventBytes: int64(len(b))})
}

// addTotals adds d to the pending totals.
func (t *Tx) addTotals(d totals) error {
	m := t.tx.Bucket(bucketMeta)
	cur, _ := decodeTotals(m.Get(keyTotals))
	cur.events += d.events
	cur.eventBytes += d.eventBytes
	cur.files += d.files
	cur.fileBytes += d.fileBytes
	return m.Put(keyTotals, cur.encode())
}

// Scan returns the record of a scan.
func (t *Tx) Scan(numSnim string) (Scan, bool, error) {
	var sc Scan
	ok, err := t.getJSON(bucketScans, []byte(numSnim), &sc)
	return sc, ok, err
}

// PutScan stores the record of a scan.
func (t *Tx) PutScan(sc Scan) error { return t.putJSON(bucketScans, []byte(sc.NumSnim), sc) }

// File returns the record of a file by its key (NUM_SNIM/name).
func (t *Tx) File(key string) (File, bool, error) {
	var f File
	ok, err := t.getJSON(bucketFiles, []byte(key), &f)
	return f, ok, err
}

// PutFile stores a file record. A file that is not done is queued for
// shipping behind those queued before it; a done file leaves the queue.
func (t *Tx) PutFile(f File) error {
	old, had, err := t.File(f.Key())
	if err != nil {
		return err
	}
	q := t.tx.Bucket(bucketQueue)
	// The totals count what is queued: take out the old state, add the new.
	var d totals
	if had && !old.Done {
		d.files--
		d.fileBytes -= old.Size
	}
	if !f.Done {
		d.files++
		d.fileBytes += f.Size
	}
	if d != (totals{}) {
		if err := t.addTotals(d); err != nil {
			return err
		}
	}
	if had && !old.Done {
		f.order = old.order
		if f.Done {
			if err := q.Delete(queueKey(old.order, old.Key())); err != nil {
				return err
			}
		}
	} else if !f.Done {
		if f.order, err = t.next(keyNextOrder); err != nil {
			return err
		}
		if err := q.Put(queueKey(f.order, f.Key()), nil); err != nil {
			return err
		}
	}
	return t.putJSON(bucketFiles, []byte(f.Key()), fileRecord{f, f.order})
}

// fileRecord carries the queue position alongside the exported fields.
type fileRecord struct {
	File
	Order uint64 `json:"order"`
}

// ErrEmpty is returned when there is nothing pending (that the caller does
// not skip).
var ErrEmpty = errors.New("spool: nothing pending")

// NextFile returns the oldest queued file that skip does not pass over,
// or ErrEmpty. skip is given each queued file's key (NUM_SNIM/name),
// oldest first, until it returns false; a nil skip passes over nothing.
// The shipper skips the files it is waiting to offer again, so one file
// the collector will not take now does not hold up those queued after it.
// ErrEmpty means skip has seen every queued key.
func (s *Spool) NextFile(skip func(key string) bool) (File, error) {
	var f File
	err := s.View(func(t *Tx) error {
		c := t.tx.Bucket(bucketQueue).Cursor()
		k, _ := c.First()
		for ; k != nil; k, _ = c.Next() {
			if skip == nil || !skip(string(k[8:])) {
				break
			}
		}
		if k == nil {
			return ErrEmpty
		}
		var ok bool
		var err error
		f, ok, err = t.File(string(k[8:]))
		if err == nil && !ok {
			err = fmt.Errorf("spool: queued file %q has no record", k[8:])
		}
		return err
	})
	return f, err
}

// Queued calls fn with each queued file in queue order, oldest first (or
// newest first if newestFirst), until fn returns false or the queue ends.
// It reads one transaction's view, inside which fn must not use the spool:
// the shipper uses it to choose the next files of its window, reading
// only as far as it needs, from either end.
func (s *Spool) Queued(newestFirst bool, fn func(File) bool) error {
	return s.View(func(t *Tx) error {
		c := t.tx.Bucket(bucketQueue).Cursor()
		first, next := c.First, c.Next
		if newestFirst {
			first, next = c.Last, c.Prev
		}
		for k, _ := first(); k != nil; k, _ = next() {
			f, ok, err := t.File(string(k[8:]))
			if err != nil {
				return err
			}
			if !ok {
				return fmt.Errorf("spool: queued file %q has no record", k[8:])
			}
			if !fn(f) {
				return nil
			}
		}
		return nil
	})
}

// PendingEvents returns up to max events (and at most maxBytes of them, but
// always at least one) in sequence order.
func (s *Spool) PendingEvents(max, maxBytes int) ([]*idkpb.Event, error) {
	return s.PendingEventsAfter(0, max, maxBytes)
}

// PendingEventsAfter is PendingEvents from the first event with a sequence
// number above after: those not yet sent on a stream that has sent up to
// after and waits for its acknowledgements.
func (s *Spool) PendingEventsAfter(after uint64, max, maxBytes int) ([]*idkpb.Event, error) {
	var evs []*idkpb.Event
	err := s.View(func(t *Tx) error {
		c := t.tx.Bucket(bucketEvents).Cursor()
		size := 0
		for k, v := c.Seek(u64(after + 1)); k != nil && len(evs) < max; k, v = c.Next() {
			if len(evs) > 0 && size+len(v) > maxBytes {
				break
			}
			ev := &idkpb.Event{}
			if err := proto.Unmarshal(v, ev); err != nil {
				return fmt.Errorf("spool: decode event %d: %w", binary.BigEndian.Uint64(k), err)
			}
			size += len(v)
			evs = append(evs, ev)
		}
		return nil
	})
	return evs, err
}

// AckEvents forgets events the collector has stored.
func (s *Spool) AckEvents(evs []*idkpb.Event) error {
	return s.Update(func(t *Tx) error {
		b := t.tx.Bucket(bucketEvents)
		var d totals
		for _, ev := range evs {
			k := u64(ev.Seq)
			v := b.Get(k)
			if v == nil {
				continue // acknowledged before (a batch sent again after a reconnect)
			}
			d.events--
			d.eventBytes -= int64(len(v))
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		if d == (totals{}) {
			return nil
		}
		return t.addTotals(d)
	})
}

// Stats summarises what is waiting to be delivered.
type Stats struct {
	Events      int
	EventBytes  int64
	Files       int
	FileBytes   int64
	OldestEvent time.Time // zero when none
	OldestFile  time.Time // zero when none
}

// Stats reads the pending totals. The counts and sizes are kept as the
// items come and go (see keyTotals); only the oldest event and the oldest
// queued file are read, so it costs the same however long the backlog.
func (s *Spool) Stats() (Stats, error) {
	var st Stats
	err := s.View(func(t *Tx) error {
		tot, ok := decodeTotals(t.tx.Bucket(bucketMeta).Get(keyTotals))
		if !ok {
			return errors.New("spool: pending totals missing")
		}
		st.Events, st.EventBytes, st.Files, st.FileBytes = int(tot.events), tot.eventBytes, int(tot.files), tot.fileBytes
		if k, v := t.tx.Bucket(bucketEvents).Cursor().First(); k != nil {
			ev := &idkpb.Event{}
			if err := proto.Unmarshal(v, ev); err == nil {
				st.OldestEvent = time.Unix(0, ev.TimeUnixNano)
			}
		}
		qc := t.tx.Bucket(bucketQueue).Cursor()
		for k, _ := qc.First(); k != nil; k, _ = qc.Next() {
			// The first queued file with a record: one without is damage,
			// skipped here as it always was.
			if f, ok, err := t.File(string(k[8:])); err == nil && ok {
				st.OldestFile = f.FirstSeen
				break
			}
		}
		return nil
	})
	return st, err
}

// Meta returns a small named value the agent keeps across restarts (the
// device-state snapshot, the last heartbeat); nil if never set.
func (t *Tx) Meta(name string) []byte {
	v := t.tx.Bucket(bucketMeta).Get([]byte("x:" + name))
	if v == nil {
		return nil
	}
	return append([]byte(nil), v...)
}

// PutMeta stores a small named value.
func (t *Tx) PutMeta(name string, v []byte) error {
	return t.tx.Bucket(bucketMeta).Put([]byte("x:"+name), v)
}

func (t *Tx) next(key []byte) (uint64, error) {
	m := t.tx.Bucket(bucketMeta)
	n := uint64(1)
	if v := m.Get(key); len(v) == 8 {
		n = binary.BigEndian.Uint64(v)
	}
	return n, m.Put(key, u64(n+1))
}

func (t *Tx) getJSON(bucket, key []byte, v any) (bool, error) {
	b := t.tx.Bucket(bucket).Get(key)
	if b == nil {
		return false, nil
	}
	if f, ok := v.(*File); ok {
		var r fileRecord
		if err := json.Unmarshal(b, &r); err != nil {
			return false, fmt.Errorf("spool: decode %s/%s: %w", bucket, key, err)
		}
		*f = r.File
		f.order = r.Order
		return true, nil
	}
	if err := json.Unmarshal(b, v); err != nil {
		return false, fmt.Errorf("spool: decode %s/%s: %w", bucket, key, err)
	}
	return true, nil
}

func (t *Tx) putJSON(bucket, key []byte, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("spool: encode %s/%s: %w", bucket, key, err)
	}
	return t.tx.Bucket(bucket).Put(key, b)
}

func u64(n uint64) []byte { return binary.BigEndian.AppendUint64(nil, n) }

func queueKey(order uint64, key string) []byte {
	return append(u64(order), key...)
}
