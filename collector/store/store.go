// Package store keeps what agents deliver, durably: scan files under
// <root>/<KOD_TO>/<YYYYMMDD>/<NUM_IDK>/<NUM_SNIM>/, and an index (bbolt) of
// files, scans and events. Nothing is acknowledged before it is on disk: a
// file is written to a temporary name, synced, checked against its SHA-256,
// renamed into place, its folder synced, and recorded in the synced index.
// A file or event delivered twice is recognised and stored once, and a
// stored file is never replaced: its name is reserved in the index when the
// offer is accepted, and other content under the same name becomes a new
// revision beside it.
//
// With Options.Files the files live in a blob.Store (an S3 bucket) under
// the same paths as keys instead: an upload is still received and checked
// under the root's .incoming, then put, and only once the bucket has
// confirmed its SHA-256 is it recorded and acknowledged.
package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
	"google.golang.org/protobuf/proto"

	"idk/collector/blob"
	"idk/collector/kv"
	"idk/internal/atomicfile"
	"idk/internal/boltfile"
	"idk/internal/clock"
	"idk/internal/diskfree"
	"idk/internal/filehash"
	"idk/protocol"
	"idk/protocol/idkpb"
)

// The index's buckets. The names are those of the bbolt buckets of
// earlier versions, so an existing index file is read as it is.
const (
	bucketFiles   = "files"   // idk/num_snim/stored_name -> FileEntry
	bucketHashes  = "hashes"  // idk/num_snim/offered_name/sha256hex -> stored_name
	bucketScans   = "scans"   // idk/num_snim -> ScanEntry
	bucketEvents  = "events"  // idk/ + spool epoch (8 bytes BE) + seq (8 bytes BE) -> idkpb.Event
	bucketDevices = "devices" // idk -> idkpb.Device from its latest hello
	bucketAcks    = "acks"    // idk/incident id -> Ack (JSON)
	bucketSteps   = "steps"   // idk/incident id/step -> Ack (JSON) with Step: reporting steps of incidents
	bucketMeta    = "meta"    // layout version and the like
	bucketPending = "pending" // idk/num_snim/stored_name -> reserved at (unix nanos, 8 bytes BE): names reserved for uploads not yet committed
)

// FileEntry describes one stored file.
type FileEntry struct {
	NumIDK   string    `json:"num_idk"`
	NumSnim  string    `json:"num_snim"`
	Name     string    `json:"name"`                    // as the agent offered it
	Original string    `json:"original_name,omitempty"` // the name in the scanner's folder, when it could not be stored as it was
	StoredAs string    `json:"stored_as"`               // path under the root, '/'-separated
	Kind     string    `json:"kind"`
	Size     int64     `json:"size"`
	SHA256   string    `json:"sha256"`
	StoredAt time.Time `json:"stored_at"`
	// Pending marks a name reserved for an upload not yet committed.
	Pending bool `json:"pending,omitempty"`
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
	db   kv.DB
	// bolt is the index file when the store opened it (no Options.Index),
	// nil otherwise: Close records its clean stop.
	bolt  *bolt.DB
	loc   *time.Location
	clock clock.Clock
	log   *slog.Logger
	// minFree, see Options.MinFree.
	minFree uint64
	// files is Options.Files: nil when the files are under root.
	files blob.Store
	// group shares the index commits (and their fsyncs) of concurrent
	// uploads' offers and records.
	group groupCommit

	mu       sync.Mutex
	active   map[string]bool   // partial files being written
	promised map[string]uint64 // partial file -> bytes still to come, counted against free space

	// Recovered is set when the index was damaged at Open, moved aside,
	// and rebuilt from the scan folders. Never with Options.Index.
	Recovered *boltfile.Recovery
}

// Options configure a Store.
type Options struct {
	Location *time.Location // time zone of the date folders; default time.Local
	Clock    clock.Clock    // dates what is stored and decides what is stale; default clock.Real
	Log      *slog.Logger
	// MinFree is the space the store keeps free: an offer that would eat
	// into it is refused (ErrDiskFull) instead of failing half-written.
	MinFree uint64
	// Files is where the stored files live when they are not under the
	// root: a bucket (blob.S3) shared by a region's collectors. Each file
	// is the object whose key is its FileEntry.StoredAs, the folder tree's
	// path, so an operator recognises it. Uploads are still received into
	// <root>/.incoming (resumable, and checked against their SHA-256
	// there) and only then put; MinFree then guards that staging area
	// alone, as the bucket's space is not the local disk's. The index is
	// never rebuilt from a bucket (see Index), and the store does not own
	// Files: Close leaves it alone. nil keeps the files under the root.
	//
	// Collectors that share a bucket must share the index too (Index):
	// an object the index does not record counts as never acknowledged,
	// and one under a reserved name with other content is deleted at the
	// offer. With an index of its own, each collector needs a bucket (or
	// a key prefix, blob.S3Config.Prefix) of its own.
	Files blob.Store
	// Index is where the index lives when it is not the bbolt file
	// <root>/index.db: a database shared by a region's collectors
	// (PostgreSQL). Once Open succeeds the store owns it: Close closes
	// it. Such an index is never rebuilt from the scan folders at Open,
	// as the bbolt file is when it is damaged or missing: one collector's
	// folders hold only part of what a shared index lists, and a damaged
	// database is for its administrators to repair.
	Index kv.DB
}

// Open opens the store rooted at root, creating it if needed.
func Open(root string, opt Options) (*Store, error) {
	if opt.Location == nil {
		opt.Location = time.Local
	}
	opt.Clock = clock.Or(opt.Clock)
	if opt.Log == nil {
		opt.Log = slog.Default()
	}
	if err := os.MkdirAll(filepath.Join(root, ".incoming"), 0o750); err != nil {
		return nil, fmt.Errorf("store: create %s: %w", root, err)
	}
	if opt.Index != nil {
		s := newStore(root, opt, opt.Index, nil, nil)
		if err := s.migrate(); err != nil {
			return nil, err // the caller still holds opt.Index
		}
		return s, nil
	}
	dbPath := filepath.Join(root, "index.db")
	_, statErr := os.Stat(dbPath)
	// Scan folders beside a missing index tell it was lost, not new;
	// with the files in a bucket there are none to tell (nor to rebuild
	// from).
	lost := errors.Is(statErr, os.ErrNotExist) && opt.Files == nil && holdsScans(root)
	db, rec, err := boltfile.Open(dbPath, opt.Clock.Now)
	if err != nil {
		return nil, fmt.Errorf("store: index: %w", err)
	}
	// Nested buckets are bbolt's alone: the consumers' state moves out of
	// them before the index is seen through kv.
	if err := migrateNestedKV(db); err != nil {
		db.Close()
		return nil, fmt.Errorf("store: index %s: %w", dbPath, err)
	}
	s := newStore(root, opt, kv.Bolt(db), db, rec)
	if rec != nil && opt.Files != nil {
		// The files are in a bucket that may hold other collectors'
		// files too: what belongs in this index cannot be told from it.
		opt.Log.Error("collector index was damaged and moved aside; it is NOT rebuilt, because the files are in a bucket (Options.Files), not in scan folders: restore the index from a backup",
			"index", dbPath, "moved_to", rec.Aside, "cause", rec.Cause)
	} else if rec != nil {
		opt.Log.Error("collector index was damaged; moved aside and rebuilt from the stored files",
			"index", dbPath, "moved_to", rec.Aside, "cause", rec.Cause)
		n, err := s.reindex()
		if err != nil {
			db.Close()
			return nil, fmt.Errorf("store: rebuild index from %s: %w", root, err)
		}
		opt.Log.Warn("index rebuilt", "files", n)
	} else if lost {
		opt.Log.Error("collector index missing beside stored scans; rebuilding it from the scan folders", "index", dbPath)
		n, err := s.reindex()
		if err != nil {
			db.Close()
			return nil, fmt.Errorf("store: rebuild index from %s: %w", root, err)
		}
		s.Recovered = &boltfile.Recovery{Cause: errors.New("index file missing")}
		opt.Log.Warn("index rebuilt", "files", n)
	}
	if err := s.migrate(); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

func newStore(root string, opt Options, db kv.DB, file *bolt.DB, rec *boltfile.Recovery) *Store {
	s := &Store{root: root, db: db, bolt: file, loc: opt.Location, clock: opt.Clock, log: opt.Log, minFree: opt.MinFree, files: opt.Files,
		active: map[string]bool{}, promised: map[string]uint64{}, Recovered: rec}
	s.group.db = db
	return s
}

// holdsScans reports whether root has a customs body's folder of scans.
func holdsScans(root string) bool {
	entries, _ := os.ReadDir(root)
	for _, e := range entries {
		if e.IsDir() && protocol.CheckKodTO(e.Name()) == nil {
			return true
		}
	}
	return false
}

// Close closes the index: the bbolt file with its clean stop recorded
// (boltfile skips the full check at the next Open), or Options.Index.
func (s *Store) Close() error {
	if s.bolt != nil {
		return boltfile.Close(s.bolt)
	}
	return s.db.Close()
}

// Root is the folder the store writes under: the scan folders, or with
// Options.Files only the staging area .incoming (and the bbolt index).
func (s *Store) Root() string { return s.root }

// ErrDiskFull means the collector has no room for the file now. The agent
// keeps it and offers it again later.
var ErrDiskFull = errors.New("store: collector disk full")

// ErrBusy means another connection is writing the same file right now.
var ErrBusy = errors.New("store: the same file is being received on another stream")

// ErrInvalid marks what can never be stored as it was sent (a bad name, a
// bad size, a malformed batch): sending it again will not help.
var ErrInvalid = errors.New("store: invalid")

// MaxFileSize bounds one offered file: far above any X-ray image, far
// below anything whose size arithmetic could wrap.
const MaxFileSize = 1 << 40

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// scanDirOf is the folder of a scan: the ИДК's customs body and number
// come from the collector's registry and the connection's certificate, so
// no two ИДК can ever write into one folder.
func (s *Store) scanDirOf(dev *idkpb.Device, numSnim string, scanTime time.Time) string {
	return path.Join(dev.KodTo, scanTime.In(s.loc).Format("20060102"), dev.NumIdk, numSnim)
}

// scanTx returns the scan's entry, creating it (and pinning its folder) the
// first time the scan is mentioned.
func (s *Store) scanTx(tx kv.Tx, dev *idkpb.Device, numSnim string, scanTime time.Time) (ScanEntry, error) {
	key := []byte(dev.NumIdk + "/" + numSnim)
	var sc ScanEntry
	v, err := tx.Get(bucketScans, key)
	if err != nil {
		return sc, fmt.Errorf("%s %s: %w", bucketScans, key, err)
	}
	if v != nil {
		if err := json.Unmarshal(v, &sc); err != nil {
			return sc, fmt.Errorf("decode scan %s: %w", key, err)
		}
		return sc, nil
	}
	sc = ScanEntry{NumIDK: dev.NumIdk, NumSnim: numSnim, KodTO: dev.KodTo, ScanTime: scanTime, Dir: s.scanDirOf(dev, numSnim, scanTime)}
	return sc, putJSON(tx, bucketScans, key, sc)
}

// Upload is one file being received.
type Upload struct {
	s        *Store
	dev      *idkpb.Device
	offer    *idkpb.FileOffer
	scan     ScanEntry
	partial  string
	f        *os.File
	w        *partialWriter // appends to f
	h        hash.Hash
	offset   uint64
	storedAs string // name in the scan folder, reserved in the index
	crc      *crc32.Table
	// The bytes this upload takes: [start, end). A whole file's upload
	// takes [0, size); a stripe's (FileOffer.range_size) only its range,
	// held apart, unhashed, until the file is offered whole.
	start, end uint64
	// fromStripes: of the bytes held when the upload opened, how many came
	// from stripes held beside its partial (takeStripes), not from an
	// earlier transfer of the same file that was cut off.
	fromStripes uint64
}

// IsStripe reports whether the upload takes a stripe of the file rather
// than the file: its commit holds the stripe (Hold), it stores nothing.
func (u *Upload) IsStripe() bool { return u.offer.RangeSize > 0 }

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// checkOffer refuses, for good, an offer that can never be stored.
func checkOffer(o *idkpb.FileOffer) error {
	if err := protocol.CheckNumSnim(o.NumSnim); err != nil {
		return invalid("offer: %v", err)
	}
	if err := protocol.CheckFileName(o.Name); err != nil {
		return invalid("offer %s: %v", o.NumSnim, err)
	}
	if len(o.OriginalName) > 4*protocol.MaxNameBytes {
		return invalid("offer %s/%s: original name longer than %d bytes", o.NumSnim, o.Name, 4*protocol.MaxNameBytes)
	}
	if len(o.Sha256) != sha256.Size {
		return invalid("offer %s/%s: sha256 has %d bytes, want 32", o.NumSnim, o.Name, len(o.Sha256))
	}
	if o.Size > MaxFileSize {
		return invalid("offer of %q in scan %s: larger than a terabyte, more than any scan file", o.Name, o.NumSnim)
	}
	if o.RangeSize > 0 && (o.RangeOffset >= o.Size || o.RangeSize > o.Size-o.RangeOffset) {
		return invalid("offer %s/%s: stripe of %d bytes at %d runs past the file's %d bytes", o.NumSnim, o.Name, o.RangeSize, o.RangeOffset, o.Size)
	}
	return nil
}

// stripePath is where a stripe starting at offset is held before the file
// is offered whole: the first stripe in the whole file's partial itself
// (it is its beginning), each other one in a file of its own beside it.
func stripePath(partial string, offset uint64) string {
	if offset == 0 {
		return partial
	}
	return partial + "." + strconv.FormatUint(offset, 10)
}

// Offer answers a file offer. It returns an Upload when the agent should
// send data (from reply.Offset), or nil when the file is already stored.
// Errors wrapping ErrInvalid mean the offer can never be stored; ErrBusy
// and ErrDiskFull mean "not now".
func (s *Store) Offer(dev *idkpb.Device, o *idkpb.FileOffer, scanTime time.Time) (*Upload, *idkpb.FileOfferReply, error) {
	if err := checkOffer(o); err != nil {
		return nil, nil, err
	}
	sum := hex.EncodeToString(o.Sha256)
	hashKey := []byte(dev.NumIdk + "/" + o.NumSnim + "/" + o.Name + "/" + sum)
	var (
		sc       ScanEntry
		storedAs string
		have     bool
		known    bool // the scan and the content are in the index already
	)
	prefix := dev.NumIdk + "/" + o.NumSnim + "/"
	// known looks the content up: stored (have), or reserved by an upload
	// not yet committed (a resume).
	lookup := func(tx kv.Tx) error {
		known, have = false, false
		v, err := tx.Get(bucketHashes, hashKey)
		if err != nil || v == nil {
			return err
		}
		known, storedAs = true, string(v)
		var e FileEntry
		ev, err := tx.Get(bucketFiles, []byte(prefix+storedAs))
		if err != nil {
			return err
		}
		if ev != nil {
			if err := json.Unmarshal(ev, &e); err != nil {
				return fmt.Errorf("decode %s%s: %w", prefix, storedAs, err)
			}
		}
		have = !e.Pending
		return nil
	}
	// A file offered again (the collector has it, or part of it) changes
	// nothing in the index: a read transaction answers it, without the
	// write transaction's commit and fsync.
	err := s.db.View(func(tx kv.Tx) error {
		v, err := tx.Get(bucketScans, []byte(dev.NumIdk+"/"+o.NumSnim))
		if err != nil || v == nil {
			return err
		}
		if err := json.Unmarshal(v, &sc); err != nil {
			return fmt.Errorf("decode scan %s/%s: %w", dev.NumIdk, o.NumSnim, err)
		}
		return lookup(tx)
	})
	if err != nil {
		return nil, nil, fmt.Errorf("store: offer %s/%s: %w", o.NumSnim, o.Name, err)
	}
	// Otherwise one transaction (shared with other uploads' offers and
	// records) looks again and, if the content is new, reserves a name no
	// other upload, form or stored file holds: two streams offering one
	// name with different contents get two names.
	if !known {
		err = s.group.update(func(tx kv.Tx) error {
			var err error
			if sc, err = s.scanTx(tx, dev, o.NumSnim, scanTime); err != nil {
				return err
			}
			if err := lookup(tx); err != nil || known {
				return err
			}
			if storedAs, err = freeName(tx, prefix, o.Name); err != nil {
				return err
			}
			e := FileEntry{NumIDK: dev.NumIdk, NumSnim: o.NumSnim, Name: o.Name, Original: o.OriginalName,
				StoredAs: path.Join(sc.Dir, storedAs), Kind: kindName(o.Kind), Size: int64(o.Size), SHA256: sum, Pending: true, StoredAt: s.clock.Now()}
			if err := putJSON(tx, bucketFiles, []byte(prefix+storedAs), e); err != nil {
				return err
			}
			// Listed apart as well, so the sweep of abandoned uploads reads the
			// reservations, not every stored file.
			if err := put(tx, bucketPending, []byte(prefix+storedAs), binary.BigEndian.AppendUint64(nil, uint64(e.StoredAt.UnixNano()))); err != nil {
				return err
			}
			return put(tx, bucketHashes, hashKey, []byte(storedAs))
		})
		if err != nil {
			return nil, nil, fmt.Errorf("store: offer %s/%s: %w", o.NumSnim, o.Name, err)
		}
	}
	if have {
		return nil, &idkpb.FileOfferReply{Status: idkpb.FileOfferReply_STATUS_HAVE, Offset: o.Size}, nil
	}
	adopt := s.adoptOrphan
	if s.files != nil {
		adopt = s.adoptBlobOrphan
	}
	final := filepath.Join(s.root, filepath.FromSlash(sc.Dir), storedAs)
	if ok, err := adopt(dev, o, sc, storedAs, final); err != nil {
		return nil, nil, err
	} else if ok {
		return nil, &idkpb.FileOfferReply{Status: idkpb.FileOfferReply_STATUS_HAVE, Offset: o.Size}, nil
	}

	whole := filepath.Join(s.root, ".incoming", dev.NumIdk, o.NumSnim, storedAs+".part")
	u := &Upload{s: s, dev: dev, offer: o, scan: sc, partial: whole, storedAs: storedAs, crc: castagnoli, end: o.Size}
	if u.IsStripe() {
		u.start, u.end = o.RangeOffset, o.RangeOffset+o.RangeSize
		u.partial = stripePath(whole, u.start)
	} else {
		u.h = sha256.New()
	}
	held, err := partialSize(u.partial)
	if err != nil {
		return nil, nil, err
	}
	s.mu.Lock()
	if s.active[u.partial] {
		s.mu.Unlock()
		return nil, nil, ErrBusy
	}
	span := u.end - u.start
	need := span - min(held, span)
	if err := s.reserveLocked(u.partial, need); err != nil {
		s.mu.Unlock()
		return nil, nil, err
	}
	s.active[u.partial] = true
	s.mu.Unlock()
	if err := u.open(); err != nil {
		u.Close()
		return nil, nil, err
	}
	return u, &idkpb.FileOfferReply{Status: idkpb.FileOfferReply_STATUS_SEND, Offset: u.offset}, nil
}

// freeName is name, or the first name~N.ext, that no entry of the scan
// (stored, reserved or a form) holds.
func freeName(tx kv.Tx, prefix, name string) (string, error) {
	storedAs := name
	for n := 2; ; n++ {
		v, err := tx.Get(bucketFiles, []byte(prefix+storedAs))
		if err != nil {
			return "", fmt.Errorf("%s %s%s: %w", bucketFiles, prefix, storedAs, err)
		}
		if v == nil {
			return storedAs, nil
		}
		ext := path.Ext(name)
		storedAs = fmt.Sprintf("%s~%d%s", strings.TrimSuffix(name, ext), n, ext)
	}
}

func partialSize(p string) (uint64, error) {
	fi, err := os.Stat(p)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("store: %w", err)
	}
	return uint64(fi.Size()), nil
}

// reserveLocked promises need bytes to the upload key if there is room
// for them (roomLocked). s.mu is held.
func (s *Store) reserveLocked(key string, need uint64) error {
	if err := s.roomLocked(need); err != nil {
		return err
	}
	s.promised[key] = need
	return nil
}

// roomLocked reports ErrDiskFull unless the disk has need bytes beyond the
// reserve and what is promised to uploads already. s.mu is held. The
// arithmetic saturates rather than wrap, whatever an offer claims.
func (s *Store) roomLocked(need uint64) error {
	free, err := diskfree.Bytes(s.root)
	if err != nil {
		return nil // no figure on this platform: the write itself will tell
	}
	promised := s.promisedLocked()
	if satAdd(satAdd(need, s.minFree), promised) > free {
		s.log.Warn("refusing to store: not enough free space", "free_bytes", free, "needs_bytes", need,
			"promised_bytes", promised, "reserve_bytes", s.minFree)
		return ErrDiskFull
	}
	return nil
}

func (s *Store) promisedLocked() uint64 {
	var sum uint64
	for _, n := range s.promised {
		sum = satAdd(sum, n)
	}
	return sum
}

func satAdd(a, b uint64) uint64 {
	if a > ^uint64(0)-b {
		return ^uint64(0)
	}
	return a + b
}

// adoptOrphan handles a crash between the rename and the index update: the
// file is in place but unrecorded. If its content is what is offered, it is
// recorded now and need not be sent again.
func (s *Store) adoptOrphan(dev *idkpb.Device, o *idkpb.FileOffer, sc ScanEntry, storedAs, final string) (bool, error) {
	sum, n, err := filehash.File(final)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	} else if err != nil {
		return false, fmt.Errorf("store: check %s: %w", final, err)
	}
	if uint64(n) != o.Size || !bytes.Equal(sum, o.Sha256) {
		// Unrecorded, and not this content: a reservation whose upload
		// crashed mid-rename cannot hold other bytes, so this is something
		// the collector never accepted. Move it aside, never overwrite.
		aside := filepath.Join(filepath.Dir(final), "."+filepath.Base(final)+".orphan-"+s.clock.Now().UTC().Format("20060102T150405.000000000"))
		s.log.Warn("unrecorded file with other content moved aside", "file", final, "to", aside)
		if err := os.Rename(final, aside); err != nil {
			return false, fmt.Errorf("store: move aside %s: %w", final, err)
		}
		return false, nil
	}
	return true, s.record(dev, o, sc, storedAs, int64(n))
}

func (u *Upload) open() error {
	// Another upload of the scan that commits removes the scan's partials
	// folder once it is empty (Commit): between MkdirAll and OpenFile here
	// it may be gone again, so make it anew and try once more.
	var f *os.File
	for try := 0; ; try++ {
		if err := os.MkdirAll(filepath.Dir(u.partial), 0o750); err != nil {
			return fmt.Errorf("store: %w", err)
		}
		var err error
		f, err = os.OpenFile(u.partial, os.O_RDWR|os.O_CREATE, 0o640)
		if err == nil {
			break
		}
		if !errors.Is(err, fs.ErrNotExist) || try == 2 {
			return fmt.Errorf("store: open partial: %w", err)
		}
	}
	u.f = f
	if u.IsStripe() {
		return u.openStripe()
	}
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
		u.h.Reset()
		n = 0
	}
	if u.w, err = newPartialWriter(f, n, u.offer.Size >= directMinSize); err != nil {
		return err
	}
	held, err := u.takeStripes(uint64(n))
	if err != nil {
		return err
	}
	u.offset = held
	return nil
}

// openStripe resumes a stripe: the bytes its file holds are the first
// of the range. The first stripe's file is the whole file's partial,
// which an earlier whole offer may have taken past the range: the stripe
// is then complete.
func (u *Upload) openStripe() error {
	fi, err := u.f.Stat()
	if err != nil {
		return fmt.Errorf("store: partial %s: %w", u.partial, err)
	}
	n := uint64(fi.Size())
	if n > u.end-u.start && u.start > 0 {
		// Longer than its range: not a file this store wrote.
		if err := u.f.Truncate(0); err != nil {
			return fmt.Errorf("store: reset stripe %s: %w", u.partial, err)
		}
		n = 0
	}
	u.offset = u.start + min(n, u.end-u.start)
	u.w, err = newPartialWriter(u.f, int64(u.offset-u.start), u.end-u.start >= directMinSize)
	return err
}

// takeStripes appends to the whole file's partial, held n bytes long, the
// stripes held beside it that continue it, hashing them on the way, and
// drops the stripes it cannot use: those that start inside what is held,
// or after a gap, which the whole upload now sends itself. A stripe still
// being received (a lane the agent lost, not yet noticed here) is left to
// its upload. It returns the bytes held then.
func (u *Upload) takeStripes(n uint64) (uint64, error) {
	dir := filepath.Dir(u.partial)
	prefix := filepath.Base(u.partial) + "."
	entries, err := os.ReadDir(dir)
	if err != nil {
		return n, fmt.Errorf("store: stripes of %s: %w", u.partial, err)
	}
	stripes := map[uint64]string{}
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), prefix)
		if !ok {
			continue
		}
		if off, err := strconv.ParseUint(rest, 10, 64); err == nil && off > 0 {
			stripes[off] = filepath.Join(dir, e.Name())
		}
	}
	if len(stripes) == 0 {
		return n, nil
	}
	u.s.mu.Lock()
	for off, p := range stripes {
		if u.s.active[p] {
			delete(stripes, off)
		}
	}
	u.s.mu.Unlock()
	for {
		p, ok := stripes[n]
		if !ok {
			break
		}
		delete(stripes, n)
		taken, err := u.appendStripe(p, n)
		if err != nil {
			return n, err
		}
		n += taken
		u.fromStripes += taken
	}
	for _, p := range stripes {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return n, fmt.Errorf("store: drop stripe: %w", err)
		}
	}
	return n, nil
}

// appendStripe copies the stripe at p onto the partial, held n bytes
// long, and removes it. It copies no more than the offered size.
func (u *Upload) appendStripe(p string, n uint64) (uint64, error) {
	src, err := os.Open(p)
	if err != nil {
		return 0, fmt.Errorf("store: stripe: %w", err)
	}
	defer src.Close()
	taken, err := io.Copy(io.MultiWriter(u.w, u.h), io.LimitReader(src, int64(u.offer.Size-n)))
	if err != nil {
		return 0, fmt.Errorf("store: take stripe %s into %s: %w", p, u.partial, err)
	}
	if err := os.Remove(p); err != nil {
		return 0, fmt.Errorf("store: %w", err)
	}
	return uint64(taken), nil
}

// Offset is the position of the next byte to write: how many bytes are
// held, for a whole file.
func (u *Upload) Offset() uint64 { return u.offset }

// Resumed reports whether the upload goes on from bytes an earlier,
// interrupted transfer of the same file or stripe left, rather than from
// the start. Bytes its stripes brought do not count: a striped file's
// whole offer starts where the stripes end by design. The stripe at the
// file's start is held in the whole file's partial, so it cannot be told
// from a cut-off transfer by itself; it is not counted when other stripes
// followed it.
func (u *Upload) Resumed() bool {
	return u.offset > u.start && u.fromStripes == 0
}

// Write appends one chunk after checking its offset and checksum.
func (u *Upload) Write(c *idkpb.Chunk) error {
	if c.Offset != u.offset {
		return invalid("chunk offset %d, want %d", c.Offset, u.offset)
	}
	if crc32.Checksum(c.Data, u.crc) != c.Crc32C {
		return invalid("chunk at offset %d: CRC32C mismatch", c.Offset)
	}
	if u.offset+uint64(len(c.Data)) > u.end {
		if u.IsStripe() {
			return invalid("chunk at offset %d runs past the stripe's end at %d", c.Offset, u.end)
		}
		return invalid("chunk at offset %d runs past the offered size %d", c.Offset, u.offer.Size)
	}
	if _, err := u.w.Write(c.Data); err != nil {
		return fmt.Errorf("store: write %s: %w", u.partial, err)
	}
	if u.h != nil {
		u.h.Write(c.Data)
	}
	u.offset += uint64(len(c.Data))
	return nil
}

// Hold ends a stripe's upload: every byte of its range is held, for the
// file's whole offer to take up. Nothing is stored nor synced yet: the
// whole file is, with its SHA-256 checked, before the agent is told.
func (u *Upload) Hold(sum []byte) error {
	if !u.IsStripe() {
		return invalid("a whole file's upload ends with its commit")
	}
	if !bytes.Equal(sum, u.offer.Sha256) {
		return invalid("commit sha256 differs from the offer's")
	}
	if u.offset != u.end {
		return invalid("stripe commit at %d, the stripe ends at %d", u.offset, u.end)
	}
	return u.w.Flush()
}

// ErrRestart means the partial copy was bad and has been dropped: the
// agent should offer the file again from the start.
var ErrRestart = errors.New("store: content does not match its SHA-256; partial copy dropped")

// Commit makes the file durable and indexed. It returns the stored path
// under the root (with Options.Files, the object's key).
func (u *Upload) Commit(sum []byte) (string, error) {
	return u.CommitContext(context.Background(), sum)
}

// CommitContext is Commit; ctx bounds the put into Options.Files (the
// local store does not use it).
func (u *Upload) CommitContext(ctx context.Context, sum []byte) (string, error) {
	if !bytes.Equal(sum, u.offer.Sha256) {
		return "", invalid("commit sha256 differs from the offer's")
	}
	if u.offset != u.offer.Size {
		return "", invalid("commit at %d bytes, offered %d", u.offset, u.offer.Size)
	}
	if u.IsStripe() {
		return "", invalid("a stripe's upload ends with its hold")
	}
	if !bytes.Equal(u.h.Sum(nil), sum) {
		u.closeFile()
		os.Remove(u.partial)
		return "", ErrRestart
	}
	if err := u.w.Close(); err != nil {
		return "", err
	}
	if err := u.f.Sync(); err != nil {
		return "", fmt.Errorf("store: sync %s: %w", u.partial, err)
	}
	if err := u.f.Close(); err != nil {
		return "", fmt.Errorf("store: close %s: %w", u.partial, err)
	}
	u.f = nil
	if u.s.files != nil {
		return u.commitBlob(ctx)
	}
	dir, err := u.s.scanDir(u.scan)
	if err != nil {
		return "", err
	}
	final := filepath.Join(dir, u.storedAs)
	// The name was reserved for this content: anything already there was
	// never recorded (adoptOrphan moved such files aside at the offer), so
	// Link refuses rather than replace if something appeared since.
	if err := os.Link(u.partial, final); err != nil {
		return "", fmt.Errorf("store: place %s: %w", final, err)
	}
	if err := syncDir(dir); err != nil {
		return "", err
	}
	if err := os.Remove(u.partial); err != nil {
		return "", fmt.Errorf("store: %w", err)
	}
	os.Remove(filepath.Dir(u.partial)) // the scan's partials folder, once empty
	if err := u.s.record(u.dev, u.offer, u.scan, u.storedAs, int64(u.offset)); err != nil {
		return "", err
	}
	return path.Join(u.scan.Dir, u.storedAs), nil
}

// Close releases the upload; an uncommitted partial file stays for resume.
func (u *Upload) Close() {
	u.closeFile()
	u.s.mu.Lock()
	delete(u.s.active, u.partial)
	delete(u.s.promised, u.partial)
	u.s.mu.Unlock()
}

// closeFile writes what the upload holds unwritten and closes the
// partial, if still open.
func (u *Upload) closeFile() {
	if u.w != nil {
		u.w.Close()
		u.w = nil
	}
	if u.f != nil {
		u.f.Close()
		u.f = nil
	}
}

func (s *Store) record(dev *idkpb.Device, o *idkpb.FileOffer, sc ScanEntry, storedAs string, size int64) error {
	sum := hex.EncodeToString(o.Sha256)
	e := FileEntry{
		NumIDK:   dev.NumIdk,
		NumSnim:  o.NumSnim,
		Name:     o.Name,
		Original: o.OriginalName,
		StoredAs: path.Join(sc.Dir, storedAs),
		Kind:     kindName(o.Kind),
		Size:     size,
		SHA256:   sum,
		StoredAt: s.clock.Now(),
	}
	// Shared with the commits of other uploads in flight: it returns once
	// the transaction holding this record is synced.
	err := s.group.update(func(tx kv.Tx) error {
		key := []byte(dev.NumIdk + "/" + o.NumSnim + "/" + storedAs)
		if err := putJSON(tx, bucketFiles, key, e); err != nil {
			return err
		}
		if err := del(tx, bucketPending, key); err != nil {
			return err
		}
		return put(tx, bucketHashes, []byte(dev.NumIdk+"/"+o.NumSnim+"/"+o.Name+"/"+sum), []byte(storedAs))
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
// each once, in one transaction (one fsync for the batch). Form revisions
// are also written as files into their scan folder. correct maps the
// agent's clock to the collector's. A batch that names one sequence number
// twice is refused whole (ErrInvalid): one of the two would be lost.
//
// apply, if not nil, is called inside the same transaction for each new
// (not duplicate) event once it is stored, with CollectorTimeUnixNano set:
// what it writes through the KV commits with the log or not at all, so
// state derived from the events can never fall behind or run ahead of
// them. An error from apply refuses the whole batch.
func (s *Store) PutEvents(dev *idkpb.Device, epoch uint64, evs []*idkpb.Event, correct func(int64) time.Time, apply func(*KV, *idkpb.Event) error) (EventResult, error) {
	var res EventResult
	seqs := make(map[uint64]bool, len(evs))
	for _, ev := range evs {
		if ev.Seq == 0 || seqs[ev.Seq] {
			return res, invalid("event batch: sequence number %d repeated or zero", ev.Seq)
		}
		seqs[ev.Seq] = true
	}
	// A batch sent again (its ack was lost) holds nothing new: a read
	// transaction tells, without a commit and its fsync.
	dup := true
	err := s.db.View(func(tx kv.Tx) error {
		for _, ev := range evs {
			key := binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64([]byte(dev.NumIdk+"/"), epoch), ev.Seq)
			v, err := tx.Get(bucketEvents, key)
			if err != nil {
				return fmt.Errorf("%s %x: %w", bucketEvents, key, err)
			}
			if v == nil {
				dup = false
				return nil
			}
		}
		return nil
	})
	if err != nil {
		return res, fmt.Errorf("store: %d events of %s: %w", len(evs), dev.NumIdk, err)
	}
	if dup && len(evs) > 0 {
		return EventResult{Duplicates: len(evs)}, nil
	}
	// One transaction for the whole batch: one fsync of the index instead
	// of one per event. Form files are written (synced) inside it; a crash
	// before the commit leaves an unrecorded form file that the
	// redelivered batch writes again under the same name.
	err = s.db.Update(func(tx kv.Tx) error {
		// Reset on each call: the index may run fn again (a retried
		// PostgreSQL transaction).
		res = EventResult{}
		for _, ev := range evs {
			key := binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64([]byte(dev.NumIdk+"/"), epoch), ev.Seq)
			if v, err := tx.Get(bucketEvents, key); err != nil {
				return fmt.Errorf("%s %x: %w", bucketEvents, key, err)
			} else if v != nil {
				res.Duplicates++
				continue
			}
			when := correct(ev.TimeUnixNano)
			ev.CollectorTimeUnixNano = when.UnixNano()
			switch body := ev.Body.(type) {
			case *idkpb.Event_ScanSeen:
				if err := protocol.CheckNumSnim(body.ScanSeen.NumSnim); err != nil {
					return invalid("event %d: %v", ev.Seq, err)
				}
				if _, err := s.scanTx(tx, dev, body.ScanSeen.NumSnim, when); err != nil {
					return err
				}
			case *idkpb.Event_Form:
				if err := s.putFormTx(tx, dev, body.Form, when); err != nil {
					return fmt.Errorf("event %d: %w", ev.Seq, err)
				}
			}
			v, err := proto.Marshal(ev)
			if err != nil {
				return fmt.Errorf("store: encode event %d: %w", ev.Seq, err)
			}
			if err := put(tx, bucketEvents, key, v); err != nil {
				return err
			}
			if apply != nil {
				if err := apply(&KV{tx}, ev); err != nil {
					return fmt.Errorf("event %d: %w", ev.Seq, err)
				}
			}
			res.New = append(res.New, ev)
		}
		return nil
	})
	if err != nil {
		return EventResult{}, fmt.Errorf("store: %d events of %s: %w", len(evs), dev.NumIdk, err)
	}
	res.Stored = len(res.New)
	return res, nil
}

// putFormTx writes a form revision as form-rNNN.xml in its scan folder and
// records it in tx. Forms are numbered by the collector in order of
// arrival and stored once per content: an agent whose spool was rebuilt
// sends the current form again as its revision 1, and that must neither
// overwrite the old revision 1 nor be stored twice. The name is one no
// uploaded file holds.
func (s *Store) putFormTx(tx kv.Tx, dev *idkpb.Device, fr *idkpb.FormRevision, when time.Time) error {
	if err := protocol.CheckNumSnim(fr.NumSnim); err != nil {
		return invalid("form: %v", err)
	}
	if fr.Revision == 0 || fr.Revision > 9999 {
		return invalid("form %s: revision %d out of range", fr.NumSnim, fr.Revision)
	}
	if len(fr.Content) > protocol.MaxFormSize {
		return invalid("form %s: larger than %d bytes", fr.NumSnim, protocol.MaxFormSize)
	}
	if got := sha256.Sum256(fr.Content); !bytes.Equal(got[:], fr.Sha256) {
		return invalid("form %s revision %d: content does not match its sha256", fr.NumSnim, fr.Revision)
	}
	sc, err := s.scanTx(tx, dev, fr.NumSnim, when)
	if err != nil {
		return err
	}
	sum := hex.EncodeToString(fr.Sha256)
	hashKey := []byte(dev.NumIdk + "/" + fr.NumSnim + "/form/" + sum)
	if v, err := tx.Get(bucketHashes, hashKey); err != nil {
		return fmt.Errorf("%s %s: %w", bucketHashes, hashKey, err)
	} else if v != nil {
		return nil
	}
	// A form is written at once, so it needs room, not a promise.
	s.mu.Lock()
	err = s.roomLocked(uint64(len(fr.Content)))
	s.mu.Unlock()
	if err != nil {
		return err
	}
	rev := sc.Forms + 1
	prefix := dev.NumIdk + "/" + fr.NumSnim + "/"
	name, err := freeName(tx, prefix, fmt.Sprintf("form-r%03d.xml", rev))
	if err != nil {
		return err
	}
	if s.files != nil {
		if err := s.putFormBlob(path.Join(sc.Dir, name), fr.Content, fr.Sha256); err != nil {
			return err
		}
	} else {
		dir, err := s.scanDir(sc)
		if err != nil {
			return err
		}
		if err := atomicfile.WriteFile(filepath.Join(dir, name), fr.Content, 0o640); err != nil {
			return err
		}
	}
	e := FileEntry{NumIDK: dev.NumIdk, NumSnim: fr.NumSnim, Name: name, StoredAs: path.Join(sc.Dir, name),
		Kind: "form", Size: int64(len(fr.Content)), SHA256: sum, StoredAt: s.clock.Now()}
	if err := putJSON(tx, bucketFiles, []byte(prefix+name), e); err != nil {
		return err
	}
	if err := put(tx, bucketHashes, hashKey, []byte(name)); err != nil {
		return err
	}
	sc.Forms = rev
	return putJSON(tx, bucketScans, []byte(dev.NumIdk+"/"+fr.NumSnim), sc)
}

// PutDevice records a device's identity as its latest hello gave it.
func (s *Store) PutDevice(dev *idkpb.Device) error {
	v, err := proto.Marshal(dev)
	if err != nil {
		return fmt.Errorf("store: encode device %s: %w", dev.NumIdk, err)
	}
	// Every hello records the device, and it is nearly always what the
	// last hello said: a read transaction finds that out without a
	// commit's fsync per connection.
	same := false
	err = s.db.View(func(tx kv.Tx) error {
		old, err := tx.Get(bucketDevices, []byte(dev.NumIdk))
		same = bytes.Equal(old, v)
		return err
	})
	if err == nil && !same {
		err = s.db.Update(func(tx kv.Tx) error { return put(tx, bucketDevices, []byte(dev.NumIdk), v) })
	}
	if err != nil {
		return fmt.Errorf("store: record device %s: %w", dev.NumIdk, err)
	}
	return nil
}

// Devices lists every device that ever said hello.
func (s *Store) Devices() ([]*idkpb.Device, error) {
	var out []*idkpb.Device
	err := s.db.View(func(tx kv.Tx) error {
		return tx.Scan(bucketDevices, nil, nil, false, func(k, v []byte) error {
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

// Ack is an acknowledgement of an incident by a person, or (Step set) a
// reporting step of the incident done by that person.
type Ack struct {
	NumIDK string    `json:"num_idk"`
	ID     string    `json:"id"`
	Step   string    `json:"step,omitempty"`
	By     string    `json:"by"`
	At     time.Time `json:"at"`
}

// SaveAck records an incident acknowledgement durably.
func (s *Store) SaveAck(numIDK, id, by string, at time.Time) error {
	err := s.db.Update(func(tx kv.Tx) error {
		return putJSON(tx, bucketAcks, []byte(numIDK+"/"+id), Ack{NumIDK: numIDK, ID: id, By: by, At: at})
	})
	if err != nil {
		return fmt.Errorf("store: record acknowledgement of %s: %w", id, err)
	}
	return nil
}

// SaveStep records durably that a reporting step of an incident was done.
// The first record of a step stands: saving it again changes nothing.
func (s *Store) SaveStep(numIDK, id, step, by string, at time.Time) error {
	err := s.db.Update(func(tx kv.Tx) error {
		key := []byte(numIDK + "/" + id + "/" + step)
		if v, err := tx.Get(bucketSteps, key); err != nil || v != nil {
			return err
		}
		return putJSON(tx, bucketSteps, key, Ack{NumIDK: numIDK, ID: id, Step: step, By: by, At: at})
	})
	if err != nil {
		return fmt.Errorf("store: record step %s of %s: %w", step, id, err)
	}
	return nil
}

// Acks lists every recorded acknowledgement.
func (s *Store) Acks() ([]Ack, error) { return s.acks(bucketAcks) }

// Steps lists every recorded reporting step.
func (s *Store) Steps() ([]Ack, error) { return s.acks(bucketSteps) }

func (s *Store) acks(bucket string) ([]Ack, error) {
	var out []Ack
	err := s.db.View(func(tx kv.Tx) error {
		return tx.Scan(bucket, nil, nil, false, func(k, v []byte) error {
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
	err := s.db.View(func(tx kv.Tx) error {
		var prefix []byte // nil: every key
		if numIDK != "" {
			prefix = []byte(numIDK + "/")
		}
		return tx.Scan(bucketFiles, prefix, kv.PrefixEnd(prefix), false, func(k, v []byte) error {
			var e FileEntry
			if err := json.Unmarshal(v, &e); err != nil {
				return fmt.Errorf("decode %s: %w", k, err)
			}
			if !e.Pending {
				out = append(out, e)
			}
			return nil
		})
	})
	return out, err
}

// EachEvent calls fn with each stored event of a device, in order of spool
// epoch and sequence number.
func (s *Store) EachEvent(numIDK string, fn func(epoch uint64, ev *idkpb.Event) error) error {
	return s.db.View(func(tx kv.Tx) error {
		prefix := []byte(numIDK + "/")
		return tx.Scan(bucketEvents, prefix, kv.PrefixEnd(prefix), false, func(k, v []byte) error {
			if len(k) != len(prefix)+16 {
				return fmt.Errorf("event key %x: want 16 bytes after the prefix", k)
			}
			ev := &idkpb.Event{}
			if err := proto.Unmarshal(v, ev); err != nil {
				return fmt.Errorf("decode event %x: %w", k, err)
			}
			return fn(binary.BigEndian.Uint64(k[len(prefix):]), ev)
		})
	})
}

// Events returns a device's stored events in sequence order.
func (s *Store) Events(numIDK string) ([]*idkpb.Event, error) {
	var out []*idkpb.Event
	err := s.db.View(func(tx kv.Tx) error {
		prefix := []byte(numIDK + "/")
		return tx.Scan(bucketEvents, prefix, kv.PrefixEnd(prefix), false, func(k, v []byte) error {
			ev := &idkpb.Event{}
			if err := proto.Unmarshal(v, ev); err != nil {
				return fmt.Errorf("decode event %x: %w", k, err)
			}
			out = append(out, ev)
			return nil
		})
	})
	return out, err
}

// putJSON sets key in bucket to v as JSON.
func putJSON(tx kv.Tx, bucket string, key []byte, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s %s: %w", bucket, key, err)
	}
	return put(tx, bucket, key, data)
}

// put and del name the bucket and key in their errors, which the index's
// own errors may not.
func put(tx kv.Tx, bucket string, key, value []byte) error {
	if err := tx.Put(bucket, key, value); err != nil {
		return fmt.Errorf("put %s %q: %w", bucket, key, err)
	}
	return nil
}

func del(tx kv.Tx, bucket string, key []byte) error {
	if err := tx.Delete(bucket, key); err != nil {
		return fmt.Errorf("delete %s %q: %w", bucket, key, err)
	}
	return nil
}
