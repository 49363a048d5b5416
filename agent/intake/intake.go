// Package intake turns settled files from the scanner's output folder into
// spool records: a new scan becomes a ScanSeen event, each new state of a
// registration form becomes a FormRevision event, and each image or
// document is hashed (SHA-256, recorded when first seen) and queued for
// shipping. It only reads the scanner's files.
package intake

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"

	"idk/agent/layout"
	"idk/agent/spool"
	"idk/agent/watch"
	"idk/internal/clock"
	"idk/protocol"
	"idk/protocol/idkpb"
)

// Config wires an Intake.
type Config struct {
	Layout layout.Layout
	Spool  *spool.Spool
	Clock  clock.Clock // the form grace and the times recorded; default clock.Real
	Log    *slog.Logger
	// Retry asks the watcher to offer a path again once settled.
	Retry func(path string)
	// FormGrace is how long a form may stay half-written before it is
	// shipped as it is, with its parse error (default 2 minutes).
	FormGrace time.Duration
	// OnDecision, if set, is told when a recorded form revision carries
	// the operator's decision, with the time the form was saved.
	OnDecision func(numSnim string, at time.Time)
}

// Intake consumes ready files.
type Intake struct {
	cfg Config

	mu         sync.Mutex
	incomplete map[string]time.Time // form path -> first seen incomplete
	warned     map[string]bool      // paths already warned about (one line per problem, not a flood)
	blobs      chan watch.Ready
}

// New returns an Intake.
func New(cfg Config) *Intake {
	cfg.Clock = clock.Or(cfg.Clock)
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.FormGrace <= 0 {
		cfg.FormGrace = 2 * time.Minute
	}
	if cfg.Retry == nil {
		cfg.Retry = func(string) {}
	}
	return &Intake{cfg: cfg, incomplete: map[string]time.Time{}, warned: map[string]bool{}, blobs: make(chan watch.Ready, 4096)}
}

// Batches: each stage takes what has piled up on its channel, up to these
// limits, and records it in one synced spool transaction. The sync, not
// the work, is what a small file costs (one per file capped the intake at
// about 100 files/s); a file still counts as taken only once the
// transaction holding it is synced. The byte limit keeps a large image
// from holding back the small files batched with it while it is hashed.
const (
	maxBatch      = 256
	maxBatchBytes = 64 << 20
)

// Run consumes ready files until ctx ends. Forms are handled at once;
// images are hashed on a goroutine of their own, so a form never waits
// behind a 2 GB image.
func (in *Intake) Run(ctx context.Context, ready <-chan watch.Ready) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-ctx.Done():
				return
			case r := <-in.blobs:
				in.recordBatch(gather(r, in.blobs))
			}
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return nil
		case r := <-ready:
			batch := gather(r, ready)
			for i, err := range in.handleBatch(ctx, batch) {
				if err != nil {
					in.cfg.Log.Error("cannot take scan file; will retry", "file", batch[i].Path, "err", err)
					in.cfg.Retry(batch[i].Path)
				}
			}
		}
	}
}

// gather returns first and whatever else is waiting on c, within the
// batch limits, without waiting for more.
func gather(first watch.Ready, c <-chan watch.Ready) []watch.Ready {
	batch := []watch.Ready{first}
	size := first.Size
	for len(batch) < maxBatch && size < maxBatchBytes {
		select {
		case r := <-c:
			batch = append(batch, r)
			size += r.Size
		default:
			return batch
		}
	}
	return batch
}

// op is one file's change to the spool, prepared (read, parsed, hashed)
// outside the transaction that applies it.
type op struct {
	// apply makes the change. It may run twice, batched and then alone,
	// so it sets everything it reports afresh each time.
	apply func(tx *spool.Tx) error
	// after, if set, runs once the change is committed (logs, callbacks).
	after func()
	// blob: the file goes on to the hashing goroutine once committed.
	blob bool
}

// commit applies ops in one synced transaction and returns each op's
// error. If that transaction fails, each op is tried again alone, so that
// one file the spool will not take does not hold back the others.
func (in *Intake) commit(ops []op) []error {
	errs := make([]error, len(ops))
	if len(ops) == 0 {
		return errs
	}
	err := in.cfg.Spool.Update(func(tx *spool.Tx) error {
		for _, o := range ops {
			if err := o.apply(tx); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil && len(ops) > 1 {
		for i, o := range ops {
			errs[i] = in.cfg.Spool.Update(o.apply)
		}
	} else {
		for i := range errs {
			errs[i] = err
		}
	}
	for i, o := range ops {
		if errs[i] == nil && o.after != nil {
			o.after()
		}
	}
	return errs
}

// handle takes one ready file (see handleBatch).
func (in *Intake) handle(ctx context.Context, r watch.Ready) error {
	return in.handleBatch(ctx, []watch.Ready{r})[0]
}

// handleBatch takes ready files: the scan of each is recorded, forms are
// recorded, images and documents go on to be hashed. It returns each
// file's error, nil for the files taken or ignored.
func (in *Intake) handleBatch(ctx context.Context, rs []watch.Ready) []error {
	errs := make([]error, len(rs))
	var ops []op
	var idx []int // ops[i] is for rs[idx[i]]
	for i, r := range rs {
		o, err := in.prepare(r)
		if err != nil {
			errs[i] = err
			continue
		}
		if o.apply != nil {
			ops = append(ops, o)
			idx = append(idx, i)
		}
	}
	for j, err := range in.commit(ops) {
		i := idx[j]
		if err != nil {
			errs[i] = err
			continue
		}
		if ops[j].blob {
			// Its scan is recorded at once (a ScanSeen need not wait for
			// a 2 GB image to be hashed); the file itself once hashed.
			select {
			case in.blobs <- rs[i]:
			case <-ctx.Done():
			}
		}
	}
	return errs
}

// prepare reads what a ready file needs recorded; an op without apply
// means there is nothing to record.
func (in *Intake) prepare(r watch.Ready) (op, error) {
	f, ok := in.cfg.Layout.Classify(r.Rel)
	if !ok {
		in.warnOnce(r.Path, "file in the output folder is not part of a scan; ignored", "file", r.Path)
		return op{}, nil
	}
	if err := protocol.CheckNumSnim(f.NumSnim); err != nil {
		in.warnOnce(r.Path, "scan folder name is not a scan number; ignored", "file", r.Path, "err", err)
		return op{}, nil
	}
	scan := func(tx *spool.Tx) error {
		_, err := in.ensureScan(tx, f.NumSnim)
		return err
	}
	switch f.Kind {
	case layout.KindForm:
		return in.form(r, f)
	case layout.KindRaw, layout.KindDocument:
		return op{apply: scan, blob: true}, nil
	}
	return op{apply: scan}, nil
}

func (in *Intake) warnOnce(key, msg string, args ...any) {
	in.mu.Lock()
	seen := in.warned[key+msg]
	in.warned[key+msg] = true
	in.mu.Unlock()
	if !seen {
		in.cfg.Log.Warn(msg, args...)
	}
}

// ensureScan records a scan the first time any of its files is seen, in
// tx, and returns its record.
func (in *Intake) ensureScan(tx *spool.Tx, numSnim string) (spool.Scan, error) {
	sc, ok, err := tx.Scan(numSnim)
	if err != nil || ok {
		return sc, err
	}
	now := in.cfg.Clock.Now()
	sc = spool.Scan{NumSnim: numSnim, FirstSeen: now}
	err = func() error {
		if err := tx.PutScan(sc); err != nil {
			return err
		}
		// Chain the scan to the ones before it, so the collector can show
		// that none was dropped in between.
		var index uint64
		if b := tx.Meta("scan_index"); len(b) == 8 {
			index = binary.BigEndian.Uint64(b)
		}
		index++
		chain := protocol.ChainNext(tx.Meta("scan_chain"), index, numSnim)
		if err := tx.PutMeta("scan_index", binary.BigEndian.AppendUint64(nil, index)); err != nil {
			return err
		}
		if err := tx.PutMeta("scan_chain", chain); err != nil {
			return err
		}
		_, err = tx.AppendEvent(&idkpb.Event{TimeUnixNano: now.UnixNano(),
			Body: &idkpb.Event_ScanSeen{ScanSeen: &idkpb.ScanSeen{NumSnim: numSnim, Index: index, Chain: chain}}})
		return err
	}()
	if err != nil {
		return sc, fmt.Errorf("record scan %s: %w", numSnim, err)
	}
	return sc, nil
}

// form prepares a new revision of a registration form, if it changed.
func (in *Intake) form(r watch.Ready, f layout.File) (op, error) {
	data, err := readLimited(r.Path, protocol.MaxFormSize)
	if errors.Is(err, errTooLarge) {
		// No real form is this big, but it is the scanner's file and must
		// reach the collector: it goes as a file, like an image (hashed
		// here: it is no image, and at most a few megabytes).
		in.warnOnce(r.Path, "registration form too large to be a form; shipped as a file", "file", r.Path, "limit_bytes", protocol.MaxFormSize)
		return in.prepareRecord(r, false)
	}
	if err != nil {
		return op{}, fmt.Errorf("read registration form: %w", err)
	}
	sum := sha256.Sum256(data)
	var parseErr string
	parsed, err := in.cfg.Layout.ParseForm(f.NumSnim+"/"+f.Name, data)
	if err != nil {
		if errors.Is(err, layout.ErrIncomplete) && in.stillYoung(r.Path) {
			// Most likely the operator's program is writing it right now.
			in.cfg.Log.Debug("form incomplete; will look again", "file", r.Path, "err", err)
			in.cfg.Retry(r.Path)
			return op{}, nil
		}
		parseErr = err.Error()
	}
	in.mu.Lock()
	delete(in.incomplete, r.Path)
	in.mu.Unlock()

	var rev uint32
	var decided bool // this revision carries the scan's first decision
	apply := func(tx *spool.Tx) error {
		rev, decided = 0, false
		sc, err := in.ensureScan(tx, f.NumSnim)
		if err != nil {
			return err
		}
		if string(sc.FormSHA256) == string(sum[:]) {
			return nil // the same content again (rescan, touch): not a new revision
		}
		sc.Forms++
		sc.FormSHA256 = sum[:]
		rev = sc.Forms
		if parsed != nil && parsed.Decision != layout.DecisionNone && !sc.Decided {
			sc.Decided, decided = true, true
		}
		if err := tx.PutScan(sc); err != nil {
			return fmt.Errorf("record form %s: %w", r.Path, err)
		}
		fr := &idkpb.FormRevision{NumSnim: f.NumSnim, Revision: rev, Content: data, Sha256: sum[:], ParseError: parseErr}
		if parsed != nil {
			fr.Form = FormProto(parsed)
		}
		if _, err := tx.AppendEvent(&idkpb.Event{TimeUnixNano: r.ModTime.UnixNano(), Body: &idkpb.Event_Form{Form: fr}}); err != nil {
			return fmt.Errorf("record form %s: %w", r.Path, err)
		}
		return nil
	}
	after := func() {
		if rev > 0 && parseErr != "" {
			in.cfg.Log.Warn("registration form cannot be parsed; shipped as it is", "file", r.Path, "revision", rev, "err", parseErr)
		} else if rev > 0 {
			in.cfg.Log.Info("form revision recorded", "num_snim", f.NumSnim, "revision", rev, "decision", decisionName(parsed.Decision))
			if decided && in.cfg.OnDecision != nil {
				in.cfg.OnDecision(f.NumSnim, r.ModTime)
			}
		}
	}
	return op{apply: apply, after: after}, nil
}

func (in *Intake) stillYoung(path string) bool {
	now := in.cfg.Clock.Now()
	in.mu.Lock()
	defer in.mu.Unlock()
	first, ok := in.incomplete[path]
	if !ok {
		in.incomplete[path] = now
		return true
	}
	return now.Sub(first) < in.cfg.FormGrace
}

var errTooLarge = errors.New("file too large")

func readLimited(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, errTooLarge
	}
	return data, nil
}

// blob hashes an image or document and queues it, unless the spool
// already knows this exact file (a rescan after a restart).
func (in *Intake) blob(r watch.Ready) error { return in.record(r, false) }

// recordBatch is blob for several files, recorded in one transaction.
func (in *Intake) recordBatch(rs []watch.Ready) {
	var ops []op
	var paths []string
	for _, r := range rs {
		o, err := in.prepareRecord(r, false)
		if err != nil {
			in.cfg.Log.Error("cannot queue scan file; will retry", "file", r.Path, "err", err)
			in.cfg.Retry(r.Path)
			continue
		}
		if o.apply != nil {
			ops = append(ops, o)
			paths = append(paths, r.Path)
		}
	}
	for i, err := range in.commit(ops) {
		if err != nil {
			in.cfg.Log.Error("cannot queue scan file; will retry", "file", paths[i], "err", err)
			in.cfg.Retry(paths[i])
		}
	}
}

// record is blob; with force it hashes the file even when its size and
// modification time are those recorded, because the shipper found that
// its content is not (a substitute of the same size whose time was kept,
// as a copy that preserves times makes).
func (in *Intake) record(r watch.Ready, force bool) error {
	o, err := in.prepareRecord(r, force)
	if err != nil || o.apply == nil {
		return err
	}
	return in.commit([]op{o})[0]
}

// prepareRecord hashes the file for record, unless the spool knows it.
//
// It runs on the intake's goroutines for the watcher's offers and on the
// shipper's for Rehash, often for the same change of the same file, so
// the record is read again in the transaction that writes it: one change
// makes one CHANGED event, never two.
func (in *Intake) prepareRecord(r watch.Ready, force bool) (op, error) {
	f, _ := in.cfg.Layout.Classify(r.Rel)
	key := f.NumSnim + "/" + f.Name
	var known spool.File
	var have bool
	err := in.cfg.Spool.View(func(tx *spool.Tx) error {
		var err error
		known, have, err = tx.File(key)
		return err
	})
	if err != nil {
		return op{}, err
	}
	if have && !force && known.Size == r.Size && known.ModTime.Equal(r.ModTime) {
		return op{}, nil
	}
	sum, size, err := hashFile(r.Path, r.Size)
	if err != nil {
		return op{}, fmt.Errorf("hash: %w", err)
	}
	if size != r.Size {
		in.cfg.Retry(r.Path) // still changing after all
		return op{}, nil
	}
	if have && string(known.SHA256) == string(sum) {
		return op{}, nil // touched, same bytes
	}
	firstSeen := in.cfg.Clock.Now()
	var changed bool // the spool held other content for this file
	var was []byte   // that content's SHA-256
	var renamed string
	apply := func(tx *spool.Tx) error {
		changed, was, renamed = false, nil, ""
		cur, ok, err := tx.File(key)
		if err != nil {
			return err
		}
		if ok && string(cur.SHA256) == string(sum) {
			return nil // recorded meanwhile by the other caller
		}
		// The scan is recorded by now (handleBatch did it before the file
		// came here), except for a damaged spool rebuilt meanwhile.
		scan, err := in.ensureScan(tx, f.NumSnim)
		if err != nil {
			return err
		}
		changed, was = ok, cur.SHA256
		// A name the collector could not store as it is (":" in it, a
		// Windows device name, too long with the scan folder) is still
		// queued under its real name, so that two originals that map to
		// one safe name stay two files; the shipper offers it as
		// protocol.SafeName(name), and the event keeps the link between
		// the two as evidence.
		if !ok && protocol.CheckFileName(f.Name) != nil {
			renamed = protocol.SafeName(f.Name)
			_, err := tx.AppendEvent(&idkpb.Event{TimeUnixNano: in.cfg.Clock.Now().UnixNano(), Body: &idkpb.Event_Integrity{Integrity: &idkpb.Integrity{
				Kind: idkpb.Integrity_KIND_RENAMED, NumSnim: f.NumSnim, Name: renamed, OriginalName: f.Name, FirstSha256: sum}}})
			if err != nil {
				return err
			}
		}
		if changed {
			// Evidence for table 5 (substituted images): the collector counts it.
			_, err := tx.AppendEvent(&idkpb.Event{TimeUnixNano: in.cfg.Clock.Now().UnixNano(), Body: &idkpb.Event_Integrity{Integrity: &idkpb.Integrity{
				Kind: idkpb.Integrity_KIND_CHANGED, NumSnim: f.NumSnim, Name: f.Name, FirstSha256: cur.SHA256, NowSha256: sum}}})
			if err != nil {
				return err
			}
		}
		return tx.PutFile(spool.File{
			NumSnim:   f.NumSnim,
			Name:      f.Name,
			Path:      r.Path,
			Kind:      fileKind(f.Kind),
			Size:      size,
			ModTime:   r.ModTime,
			SHA256:    sum,
			ScanTime:  scan.FirstSeen,
			FirstSeen: firstSeen,
		})
	}
	after := func() {
		if renamed != "" {
			in.cfg.Log.Warn("scan file name cannot be stored as it is; shipped under a safe name",
				"file", r.Path, "num_snim", f.NumSnim, "name", f.Name, "shipped_as", renamed)
		}
		if changed {
			in.cfg.Log.Warn("scan file content changed after it was first seen; the new content is shipped too",
				"file", r.Path, "was_sha256", fmt.Sprintf("%x", was), "now_sha256", fmt.Sprintf("%x", sum))
		}
	}
	return op{apply: apply, after: after}, nil
}

// hashFile is filehash.File with a buffer sized to the file (up to 1 MB):
// filehash's fixed 1 MB buffer, garbage after every file, made a backlog
// of 1 KB files allocate a megabyte each, hundreds of MB/s, which kept
// the collector busy and the heap tens of MB above what it held.
func hashFile(path string, size int64) ([]byte, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	h := sha256.New()
	// One byte more than the file, so a file read whole ends with EOF on
	// the second read; a file that grew meanwhile is read on, and the
	// caller sees the new size.
	buf := make([]byte, min(max(size+1, 4096), 1<<20))
	n, err := io.CopyBuffer(h, struct{ io.Reader }{f}, buf)
	if err != nil {
		return nil, n, err
	}
	return h.Sum(nil), n, nil
}

// Rehash is called by the shipper when a queued file's content changed
// under it: it is hashed again now, whatever its size and time say.
func (in *Intake) Rehash(f spool.File) {
	fi, err := os.Stat(f.Path)
	if err != nil {
		in.cfg.Log.Error("scan file vanished while being shipped", "file", f.Path, "err", err)
		return
	}
	r := watch.Ready{Path: f.Path, Rel: f.NumSnim + "/" + f.Name, Size: fi.Size(), ModTime: fi.ModTime()}
	if err := in.record(r, true); err != nil {
		in.cfg.Log.Error("cannot re-hash changed scan file", "file", f.Path, "err", err)
	}
}

func fileKind(k layout.Kind) idkpb.FileKind {
	switch k {
	case layout.KindForm:
		return idkpb.FileKind_FILE_KIND_UNSPECIFIED // an oversized form, sent as a file
	case layout.KindRaw:
		return idkpb.FileKind_FILE_KIND_RAW
	case layout.KindDocument:
		return idkpb.FileKind_FILE_KIND_DOCUMENT
	}
	return idkpb.FileKind_FILE_KIND_UNSPECIFIED
}

// FormProto converts a parsed form to its wire form.
func FormProto(f *layout.Form) *idkpb.Form {
	nanos := func(t time.Time) int64 {
		if t.IsZero() {
			return 0
		}
		return t.UnixNano()
	}
	p := &idkpb.Form{
		NumSnim:                f.NumSnim,
		CreatedUnixNano:        nanos(f.Created),
		SavedUnixNano:          nanos(f.Saved),
		TruckId:                f.TruckID,
		TrailerId:              f.TrailerID,
		Country:                f.Country,
		CustomsInfo1:           f.CustomsInfo1,
		CustomsInfo2:           f.CustomsInfo2,
		CustomsInfo3:           f.CustomsInfo3,
		InspectionDateUnixNano: nanos(f.InspectionDate),
		CommentUpper:           f.CommentUpper,
		CommentLower:           f.CommentLower,
		Decision:               idkpb.Decision(f.Decision),
		SuspicionReason:        f.SuspicionReason,
		Marks:                  uint32(max(f.Marks, 0)),
		Operator:               f.Operator,
		VidTs:                  uint32(max(f.VidTS, 0)),
	}
	for _, c := range f.Containers {
		if c.Empty() {
			continue
		}
		p.Containers = append(p.Containers, &idkpb.Container{
			Number: c.Number, From: c.From, To: c.To, Cargo: c.Cargo, Direction: idkpb.Direction(c.Direction),
		})
	}
	return p
}

func decisionName(d layout.Decision) string {
	switch d {
	case layout.DecisionSuspected:
		return "suspected"
	case layout.DecisionNotSuspected:
		return "not suspected"
	}
	return "none"
}
