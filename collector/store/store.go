// Package store keeps what agents deliver, durably: scan files under
// <root>/<KOD_TO>/<YYYYMMDD>/<NUM_SNIM>/, and an index (bbolt) of files,
// scans and events. Nothing is acknowledged before it is on disk: a file is
// written to a temporary name, synced, checked against its SHA-256,
// renamed into place, its folder synced, and recorded in the synced index.
// A file or event delivered twice is recognised and stored once.
package store

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
	"google.golang.org/protobuf/proto"

	"idk/internal/boltfile"
	"idk/internal/diskfree"
	"idk/protocol"
	"idk/protocol/idkpb"
)

var (
	bucketFiles   = []byte("files")   // idk/num_snim/stored_name -> FileEntry
	bucketHashes  = []byte("hashes")  // idk/num_snim/offered_name/sha256hex -> stored_name
	bucketScans   = []byte("scans")   // idk/num_snim -> ScanEntry
	bucketEvents  = []byte("events")  // idk/ + spool epoch (8 bytes BE) + seq (8 bytes BE) -> idkpb.Event
	bucketDevices = []byte("devices") // idk -> idkpb.Device from its latest hello
	bucketAcks    = []byte("acks")    // idk/incident id -> Ack (JSON)
)

// FileEntry describes one stored file.
type FileEntry struct {
	NumIDK   string    `json:"num_idk"`
	NumSnim  string    `json:"num_snim"`
	Name     string    `json:"name"`      // as the agent named it
	StoredAs string    `json:"stored_as"` // path under the root, '/'-separated
	Kind     string    `json:"kind"`
	Size     int64     `json:"size"`
	SHA256   string    `json:"sha256"`
	StoredAt time.Time `json:"stored_at"`
}

// ScanEntry pins the folder of a scan, so that all its files land together
// whatever time they arrive.
type ScanEntry struct {
	NumIDK   string    `json:"num_idk"`
	NumSnim  string    `json:"num_snim"`
	KodTO    string    `json:"kod_to"`
	ScanTime time.Time `json:"scan_time"`
	Dir      string    `json:"dir"` // under the root, '/'-separated
	Forms    uint32    `json:"forms"`
}

// Store is safe for concurrent use.
type Store struct {
	root string
	db   *bolt.DB
	loc  *time.Location
	now  func() time.Time
	log  *slog.Logger
	// minFree, see Options.MinFree.
	minFree uint64

	mu     sync.Mutex
	active map[string]bool // partial files being written

	// Recovered is set when the index was damaged at Open, moved aside,
	// and rebuilt from the scan folders.
	Recovered *boltfile.Recovery
}

// Options configure a Store.
type Options struct {
	Location *time.Location   // time zone of the date folders; default time.Local
	Now      func() time.Time // default time.Now
	Log      *slog.Logger
	// MinFree is the space the store keeps free: an offer that would eat
	// into it is refused (ErrDiskFull) instead of failing half-written.
	MinFree uint64
}

// Open opens the store rooted at root, creating it if needed.
func Open(root string, opt Options) (*Store, error) {
	if opt.Location == nil {
		opt.Location = time.Local
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.Log == nil {
		opt.Log = slog.Default()
	}
	if err := os.MkdirAll(filepath.Join(root, ".incoming"), 0o750); err != nil {
		return nil, fmt.Errorf("store: create %s: %w", root, err)
	}
	dbPath := filepath.Join(root, "index.db")
	db, rec, err := boltfile.Open(dbPath, opt.Now)
	if err != nil {
		return nil, fmt.Errorf("store: index: %w", err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketFiles, bucketHashes, bucketScans, bucketEvents, bucketDevices, bucketAcks} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("store: init index %s: %w", dbPath, err)
	}
	s := &Store{root: root, db: db, loc: opt.Location, now: opt.Now, log: opt.Log, minFree: opt.MinFree, active: map[string]bool{}, Recovered: rec}
	if rec != nil {
		opt.Log.Error("collector index was damaged; moved aside and rebuilt from the stored files",
			"index", dbPath, "moved_to", rec.Aside, "cause", rec.Cause)
		n, err := s.reindex()
		if err != nil {
			db.Close()
			return nil, fmt.Errorf("store: rebuild index from %s: %w", root, err)
		}
		opt.Log.Warn("index rebuilt", "files", n)
	}
	return s, nil
}

// Close closes the index.
func (s *Store) Close() error { return s.db.Close() }

// Root is the folder the store writes under.
func (s *Store) Root() string { return s.root }

// ErrDiskFull means the collector has no room for the file now. The agent
// keeps it and offers it again later.
var ErrDiskFull = errors.New("store: collector disk full")

// ErrBusy means another connection is writing the same file right now.
var ErrBusy = errors.New("store: the same file is being received on another stream")

// scan returns the scan's entry, creating it (and pinning its folder) the
// first time the scan is mentioned.
func (s *Store) scan(dev *idkpb.Device, numSnim string, scanTime time.Time) (ScanEntry, error) {
	key := []byte(dev.NumIdk + "/" + numSnim)
	var sc ScanEntry
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketScans)
		if v := b.Get(key); v != nil {
			return json.Unmarshal(v, &sc)
		}
		sc = ScanEntry{
			NumIDK:   dev.NumIdk,
			NumSnim:  numSnim,
			KodTO:    dev.KodTo,
			ScanTime: scanTime,
			Dir:      path.Join(dev.KodTo, scanTime.In(s.loc).Format("20060102"), numSnim),
		}
		return putJSON(b, key, sc)
	})
	if err != nil {
		return sc, fmt.Errorf("store: scan %s/%s: %w", dev.NumIdk, numSnim, err)
	}
	return sc, nil
}

// Upload is one file being received.
type Upload struct {
	s        *Store
	dev      *idkpb.Device
	offer    *idkpb.FileOffer
	scan     ScanEntry
	partial  string
	f        *os.File
	h        hash.Hash
	offset   uint64
	storedAs string // name in the scan folder
	crc      *crc32.Table
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Offer answers a file offer. It returns an Upload when the agent should
// send data (from reply.Offset), or nil when the file is already stored.
func (s *Store) Offer(dev *idkpb.Device, o *idkpb.FileOffer, scanTime time.Time) (*Upload, *idkpb.FileOfferReply, error) {
	if err := protocol.CheckNumSnim(o.NumSnim); err != nil {
		return nil, nil, fmt.Errorf("offer: %w", err)
	}
	if err := protocol.CheckFileName(o.Name); err != nil {
		return nil, nil, fmt.Errorf("offer %s: %w", o.NumSnim, err)
	}
	if len(o.Sha256) != sha256.Size {
		return nil, nil, fmt.Errorf("offer %s/%s: sha256 has %d bytes, want 32", o.NumSnim, o.Name, len(o.Sha256))
	}
	sc, err := s.scan(dev, o.NumSnim, scanTime)
	if err != nil {
		return nil, nil, err
	}
	sum := hex.EncodeToString(o.Sha256)
	hashKey := []byte(dev.NumIdk + "/" + o.NumSnim + "/" + o.Name + "/" + sum)
	var storedAs string
	var taken map[string]bool
	err = s.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketHashes).Get(hashKey); v != nil {
			storedAs = string(v)
			return nil
		}
		taken = map[string]bool{}
		prefix := []byte(dev.NumIdk + "/" + o.NumSnim + "/")
		c := tx.Bucket(bucketFiles).Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			taken[string(k[len(prefix):])] = true
		}
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("store: look up %s/%s: %w", o.NumSnim, o.Name, err)
	}
	if storedAs != "" {
		return nil, &idkpb.FileOfferReply{Status: idkpb.FileOfferReply_STATUS_HAVE, Offset: o.Size}, nil
	}
	// The same name with other content is a new revision of the file (a
	// substituted image is evidence too): keep both, never overwrite.
	storedAs = o.Name
	for n := 2; taken[storedAs]; n++ {
		ext := path.Ext(o.Name)
		storedAs = fmt.Sprintf("%s~%d%s", strings.TrimSuffix(o.Name, ext), n, ext)
	}
	final := filepath.Join(s.root, filepath.FromSlash(sc.Dir), storedAs)
	if ok, err := s.adoptOrphan(dev, o, sc, storedAs, final); err != nil {
		return nil, nil, err
	} else if ok {
		return nil, &idkpb.FileOfferReply{Status: idkpb.FileOfferReply_STATUS_HAVE, Offset: o.Size}, nil
	}

	partial := filepath.Join(s.root, ".incoming", dev.NumIdk, o.NumSnim+"."+o.Name+"."+sum[:16]+".part")
	s.mu.Lock()
	if s.active[partial] {
		s.mu.Unlock()
		return nil, nil, ErrBusy
	}
	s.active[partial] = true
	s.mu.Unlock()
	u := &Upload{s: s, dev: dev, offer: o, scan: sc, partial: partial, storedAs: storedAs, h: sha256.New(), crc: castagnoli}
	if err := u.open(); err != nil {
		u.Close()
		return nil, nil, err
	}
	if free, err := diskfree.Bytes(s.root); err == nil && free < o.Size-u.offset+s.minFree {
		u.Close()
		return nil, nil, fmt.Errorf("%w: %d bytes free, %s/%s needs %d more and %d stay in reserve",
			ErrDiskFull, free, o.NumSnim, o.Name, o.Size-u.offset, s.minFree)
	}
	return u, &idkpb.FileOfferReply{Status: idkpb.FileOfferReply_STATUS_SEND, Offset: u.offset}, nil
}

// adoptOrphan handles a crash between the rename and the index update: the
// file is in place but unrecorded. If its content is what is offered, it is
// recorded now and need not be sent again.
func (s *Store) adoptOrphan(dev *idkpb.Device, o *idkpb.FileOffer, sc ScanEntry, storedAs, final string) (bool, error) {
	f, err := os.Open(final)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	} else if err != nil {
		return false, fmt.Errorf("store: check %s: %w", final, err)
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return false, fmt.Errorf("store: hash %s: %w", final, err)
	}
	if uint64(n) != o.Size || !bytes.Equal(h.Sum(nil), o.Sha256) {
		// Not ours: move it aside rather than overwrite anything.
		aside := final + ".orphan-" + s.now().UTC().Format("20060102T150405.000000000")
		s.log.Warn("unrecorded file with other content moved aside", "file", final, "to", aside)
		if err := os.Rename(final, aside); err != nil {
			return false, fmt.Errorf("store: move aside %s: %w", final, err)
		}
		return false, nil
	}
	return true, s.record(dev, o, sc, storedAs, int64(n))
}

func (u *Upload) open() error {
	if err := os.MkdirAll(filepath.Dir(u.partial), 0o750); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	f, err := os.OpenFile(u.partial, os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		return fmt.Errorf("store: open partial: %w", err)
	}
	u.f = f
	// Resume: hash what we already hold. A partial file only ever holds
	// chunks that passed their CRC, and the final SHA-256 check catches
	// anything a power cut may have left behind.
	n, err := io.Copy(u.h, f)
	if err != nil {
		return fmt.Errorf("store: read partial %s: %w", u.partial, err)
	}
	if uint64(n) > u.offer.Size {
		if err := f.Truncate(0); err != nil {
			return fmt.Errorf("store: reset partial: %w", err)
		}
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return fmt.Errorf("store: reset partial: %w", err)
		}
		u.h.Reset()
		n = 0
	}
	u.offset = uint64(n)
	return nil
}

// Offset is how many bytes are held.
func (u *Upload) Offset() uint64 { return u.offset }

// Write appends one chunk after checking its offset and checksum.
func (u *Upload) Write(c *idkpb.Chunk) error {
	if c.Offset != u.offset {
		return fmt.Errorf("chunk offset %d, want %d", c.Offset, u.offset)
	}
	if crc32.Checksum(c.Data, u.crc) != c.Crc32C {
		return fmt.Errorf("chunk at offset %d: CRC32C mismatch", c.Offset)
	}
	if u.offset+uint64(len(c.Data)) > u.offer.Size {
		return fmt.Errorf("chunk at offset %d runs past the offered size %d", c.Offset, u.offer.Size)
	}
	if _, err := u.f.Write(c.Data); err != nil {
		return fmt.Errorf("store: write %s: %w", u.partial, err)
	}
	u.h.Write(c.Data)
	u.offset += uint64(len(c.Data))
	return nil
}

// ErrRestart means the partial copy was bad and has been dropped: the
// agent should offer the file again from the start.
var ErrRestart = errors.New("store: content does not match its SHA-256; partial copy dropped")

// Commit makes the file durable and indexed. It returns the stored path
// under the root.
func (u *Upload) Commit(sum []byte) (string, error) {
	if !bytes.Equal(sum, u.offer.Sha256) {
		return "", fmt.Errorf("commit sha256 differs from the offer's")
	}
	if u.offset != u.offer.Size {
		return "", fmt.Errorf("commit at %d bytes, offered %d", u.offset, u.offer.Size)
	}
	if !bytes.Equal(u.h.Sum(nil), sum) {
		u.f.Close()
		u.f = nil
		os.Remove(u.partial)
		return "", ErrRestart
	}
	if err := u.f.Sync(); err != nil {
		return "", fmt.Errorf("store: sync %s: %w", u.partial, err)
	}
	if err := u.f.Close(); err != nil {
		return "", fmt.Errorf("store: close %s: %w", u.partial, err)
	}
	u.f = nil
	dir, err := u.s.scanDir(u.scan)
	if err != nil {
		return "", err
	}
	final := filepath.Join(dir, u.storedAs)
	if err := os.Rename(u.partial, final); err != nil {
		return "", fmt.Errorf("store: rename into %s: %w", final, err)
	}
	if err := syncDir(dir); err != nil {
		return "", err
	}
	if err := u.s.record(u.dev, u.offer, u.scan, u.storedAs, int64(u.offset)); err != nil {
		return "", err
	}
	return path.Join(u.scan.Dir, u.storedAs), nil
}

// Close releases the upload; an uncommitted partial file stays for resume.
func (u *Upload) Close() {
	if u.f != nil {
		u.f.Close()
		u.f = nil
	}
	u.s.mu.Lock()
	delete(u.s.active, u.partial)
	u.s.mu.Unlock()
}

func (s *Store) record(dev *idkpb.Device, o *idkpb.FileOffer, sc ScanEntry, storedAs string, size int64) error {
	sum := hex.EncodeToString(o.Sha256)
	e := FileEntry{
		NumIDK:   dev.NumIdk,
		NumSnim:  o.NumSnim,
		Name:     o.Name,
		StoredAs: path.Join(sc.Dir, storedAs),
		Kind:     kindName(o.Kind),
		Size:     size,
		SHA256:   sum,
		StoredAt: s.now(),
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		if err := putJSON(tx.Bucket(bucketFiles), []byte(dev.NumIdk+"/"+o.NumSnim+"/"+storedAs), e); err != nil {
			return err
		}
		return tx.Bucket(bucketHashes).Put([]byte(dev.NumIdk+"/"+o.NumSnim+"/"+o.Name+"/"+sum), []byte(storedAs))
	})
	if err != nil {
		return fmt.Errorf("store: index %s: %w", e.StoredAs, err)
	}
	return nil
}

func kindName(k idkpb.FileKind) string {
	switch k {
	case idkpb.FileKind_FILE_KIND_RAW:
		return "raw"
	case idkpb.FileKind_FILE_KIND_DOCUMENT:
		return "document"
	}
	return "other"
}

// EventResult counts what PutEvents did.
type EventResult struct {
	Stored, Duplicates int
	New                []*idkpb.Event // the events stored now, with CollectorTimeUnixNano set
}

// PutEvents stores a batch of events from one device's spool (epoch),
// each once. Form revisions are also written as files into their scan
// folder. correct maps the agent's clock to the collector's.
func (s *Store) PutEvents(dev *idkpb.Device, epoch uint64, evs []*idkpb.Event, correct func(int64) time.Time) (EventResult, error) {
	var res EventResult
	type kv struct{ k, v []byte }
	var fresh []kv
	for _, ev := range evs {
		key := binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64([]byte(dev.NumIdk+"/"), epoch), ev.Seq)
		var have bool
		s.db.View(func(tx *bolt.Tx) error { have = tx.Bucket(bucketEvents).Get(key) != nil; return nil })
		if have {
			res.Duplicates++
			continue
		}
		// Side effects first (idempotent: a redelivered event rewrites the
		// same bytes), then the event itself, so a crash in between is
		// repaired by the agent sending the batch again.
		when := correct(ev.TimeUnixNano)
		ev.CollectorTimeUnixNano = when.UnixNano()
		switch b := ev.Body.(type) {
		case *idkpb.Event_ScanSeen:
			if err := protocol.CheckNumSnim(b.ScanSeen.NumSnim); err != nil {
				return res, fmt.Errorf("event %d: %w", ev.Seq, err)
			}
			if _, err := s.scan(dev, b.ScanSeen.NumSnim, when); err != nil {
				return res, err
			}
		case *idkpb.Event_Form:
			if err := s.putForm(dev, b.Form, when); err != nil {
				return res, fmt.Errorf("event %d: %w", ev.Seq, err)
			}
		}
		v, err := proto.Marshal(ev)
		if err != nil {
			return res, fmt.Errorf("store: encode event %d: %w", ev.Seq, err)
		}
		fresh = append(fresh, kv{key, v})
		res.New = append(res.New, ev)
	}
	if len(fresh) == 0 {
		return res, nil
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketEvents)
		for _, e := range fresh {
			if err := b.Put(e.k, e.v); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return res, fmt.Errorf("store: index %d events: %w", len(fresh), err)
	}
	res.Stored = len(fresh)
	return res, nil
}

// putForm writes a form revision as form-rNNN.xml in its scan folder.
func (s *Store) putForm(dev *idkpb.Device, fr *idkpb.FormRevision, when time.Time) error {
	if err := protocol.CheckNumSnim(fr.NumSnim); err != nil {
		return err
	}
	if fr.Revision == 0 || fr.Revision > 9999 {
		return fmt.Errorf("form %s: revision %d out of range", fr.NumSnim, fr.Revision)
	}
	if got := sha256.Sum256(fr.Content); !bytes.Equal(got[:], fr.Sha256) {
		return fmt.Errorf("form %s revision %d: content does not match its sha256", fr.NumSnim, fr.Revision)
	}
	sc, err := s.scan(dev, fr.NumSnim, when)
	if err != nil {
		return err
	}
	dir, err := s.scanDir(sc)
	if err != nil {
		return err
	}
	// Forms are numbered by the collector in order of arrival and stored
	// once per content: an agent whose spool was rebuilt sends the current
	// form again as its revision 1, and that must neither overwrite the
	// old revision 1 nor be stored twice.
	sum := hex.EncodeToString(fr.Sha256)
	hashKey := []byte(dev.NumIdk + "/" + fr.NumSnim + "/form/" + sum)
	var have bool
	s.db.View(func(tx *bolt.Tx) error { have = tx.Bucket(bucketHashes).Get(hashKey) != nil; return nil })
	if have {
		return nil
	}
	rev := sc.Forms + 1
	name := fmt.Sprintf("form-r%03d.xml", rev)
	if err := writeFileSync(filepath.Join(dir, name), fr.Content); err != nil {
		return err
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		e := FileEntry{NumIDK: dev.NumIdk, NumSnim: fr.NumSnim, Name: name, StoredAs: path.Join(sc.Dir, name),
			Kind: "form", Size: int64(len(fr.Content)), SHA256: sum, StoredAt: s.now()}
		if err := putJSON(tx.Bucket(bucketFiles), []byte(dev.NumIdk+"/"+fr.NumSnim+"/"+name), e); err != nil {
			return err
		}
		if err := tx.Bucket(bucketHashes).Put(hashKey, []byte(name)); err != nil {
			return err
		}
		sc.Forms = rev
		return putJSON(tx.Bucket(bucketScans), []byte(dev.NumIdk+"/"+fr.NumSnim), sc)
	})
}

// PutDevice records a device's identity as its latest hello gave it.
func (s *Store) PutDevice(dev *idkpb.Device) error {
	v, err := proto.Marshal(dev)
	if err != nil {
		return fmt.Errorf("store: encode device %s: %w", dev.NumIdk, err)
	}
	err = s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketDevices).Put([]byte(dev.NumIdk), v) })
	if err != nil {
		return fmt.Errorf("store: record device %s: %w", dev.NumIdk, err)
	}
	return nil
}

// Devices lists every device that ever said hello.
func (s *Store) Devices() ([]*idkpb.Device, error) {
	var out []*idkpb.Device
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketDevices).ForEach(func(k, v []byte) error {
			d := &idkpb.Device{}
			if err := proto.Unmarshal(v, d); err != nil {
				return fmt.Errorf("decode device %s: %w", k, err)
			}
			out = append(out, d)
			return nil
		})
	})
	return out, err
}

// Ack is an acknowledgement of an incident by a person.
type Ack struct {
	NumIDK string    `json:"num_idk"`
	ID     string    `json:"id"`
	By     string    `json:"by"`
	At     time.Time `json:"at"`
}

// SaveAck records an incident acknowledgement durably.
func (s *Store) SaveAck(numIDK, id, by string, at time.Time) error {
	err := s.db.Update(func(tx *bolt.Tx) error {
		return putJSON(tx.Bucket(bucketAcks), []byte(numIDK+"/"+id), Ack{NumIDK: numIDK, ID: id, By: by, At: at})
	})
	if err != nil {
		return fmt.Errorf("store: record acknowledgement of %s: %w", id, err)
	}
	return nil
}

// Acks lists every recorded acknowledgement.
func (s *Store) Acks() ([]Ack, error) {
	var out []Ack
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketAcks).ForEach(func(k, v []byte) error {
			var a Ack
			if err := json.Unmarshal(v, &a); err != nil {
				return fmt.Errorf("decode acknowledgement %s: %w", k, err)
			}
			out = append(out, a)
			return nil
		})
	})
	return out, err
}

// Files lists stored files, of one device or (numIDK "") of all.
func (s *Store) Files(numIDK string) ([]FileEntry, error) {
	var out []FileEntry
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketFiles).Cursor()
		prefix := []byte(numIDK)
		if numIDK != "" {
			prefix = append(prefix, '/')
		}
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			var e FileEntry
			if err := json.Unmarshal(v, &e); err != nil {
				return fmt.Errorf("decode %s: %w", k, err)
			}
			out = append(out, e)
		}
		return nil
	})
	return out, err
}

// EachEvent calls fn with each stored event of a device, in order of spool
// epoch and sequence number.
func (s *Store) EachEvent(numIDK string, fn func(epoch uint64, ev *idkpb.Event) error) error {
	return s.db.View(func(tx *bolt.Tx) error {
		prefix := []byte(numIDK + "/")
		c := tx.Bucket(bucketEvents).Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			if len(k) != len(prefix)+16 {
				return fmt.Errorf("event key %x: want 16 bytes after the prefix", k)
			}
			ev := &idkpb.Event{}
			if err := proto.Unmarshal(v, ev); err != nil {
				return fmt.Errorf("decode event %x: %w", k, err)
			}
			if err := fn(binary.BigEndian.Uint64(k[len(prefix):]), ev); err != nil {
				return err
			}
		}
		return nil
	})
}

// Events returns a device's stored events in sequence order.
func (s *Store) Events(numIDK string) ([]*idkpb.Event, error) {
	var out []*idkpb.Event
	err := s.db.View(func(tx *bolt.Tx) error {
		prefix := []byte(numIDK + "/")
		c := tx.Bucket(bucketEvents).Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			ev := &idkpb.Event{}
			if err := proto.Unmarshal(v, ev); err != nil {
				return fmt.Errorf("decode event %x: %w", k, err)
			}
			out = append(out, ev)
		}
		return nil
	})
	return out, err
}

func putJSON(b *bolt.Bucket, key []byte, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return b.Put(key, data)
}
