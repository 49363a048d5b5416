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
	"idk/internal/filehash"
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
				if err := in.blob(r); err != nil {
					in.cfg.Log.Error("cannot queue scan file; will retry", "file", r.Path, "err", err)
					in.cfg.Retry(r.Path)
				}
			}
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return nil
		case r := <-ready:
			if err := in.handle(ctx, r); err != nil {
				in.cfg.Log.Error("cannot take scan file; will retry", "file", r.Path, "err", err)
				in.cfg.Retry(r.Path)
			}
		}
	}
}

func (in *Intake) handle(ctx context.Context, r watch.Ready) error {
	f, ok := in.cfg.Layout.Classify(r.Rel)
	if !ok {
		in.warnOnce(r.Path, "file in the output folder is not part of a scan; ignored", "file", r.Path)
		return nil
	}
	if err := protocol.CheckNumSnim(f.NumSnim); err != nil {
		in.warnOnce(r.Path, "scan folder name is not a scan number; ignored", "file", r.Path, "err", err)
		return nil
	}
	if _, err := in.ensureScan(f.NumSnim); err != nil {
		return err
	}
	switch f.Kind {
	case layout.KindForm:
		return in.form(r, f)
	case layout.KindRaw, layout.KindDocument:
		select {
		case in.blobs <- r:
		case <-ctx.Done():
		}
		return nil
	}
	return nil
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

// ensureScan records a scan the first time any of its files is seen.
func (in *Intake) ensureScan(numSnim string) (spool.Scan, error) {
	var sc spool.Scan
	err := in.cfg.Spool.Update(func(tx *spool.Tx) error {
		var ok bool
		var err error
		if sc, ok, err = tx.Scan(numSnim); err != nil || ok {
			return err
		}
		now := in.cfg.Clock.Now()
		sc = spool.Scan{NumSnim: numSnim, FirstSeen: now}
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
	})
	if err != nil {
		return sc, fmt.Errorf("record scan %s: %w", numSnim, err)
	}
	return sc, nil
}

// form records a new revision of a registration form, if it changed.
func (in *Intake) form(r watch.Ready, f layout.File) error {
	data, err := readLimited(r.Path, protocol.MaxFormSize)
	if errors.Is(err, errTooLarge) {
		// No real form is this big, but it is the scanner's file and must
		// reach the collector: it goes as a file, like an image.
		in.warnOnce(r.Path, "registration form too large to be a form; shipped as a file", "file", r.Path, "limit_bytes", protocol.MaxFormSize)
		return in.blob(r)
	}
	if err != nil {
		return fmt.Errorf("read registration form: %w", err)
	}
	sum := sha256.Sum256(data)
	var parseErr string
	parsed, err := in.cfg.Layout.ParseForm(f.NumSnim+"/"+f.Name, data)
	if err != nil {
		if errors.Is(err, layout.ErrIncomplete) && in.stillYoung(r.Path) {
			// Most likely the operator's program is writing it right now.
			in.cfg.Log.Debug("form incomplete; will look again", "file", r.Path, "err", err)
			in.cfg.Retry(r.Path)
			return nil
		}
		parseErr = err.Error()
	}
	in.mu.Lock()
	delete(in.incomplete, r.Path)
	in.mu.Unlock()

	var rev uint32
	var decided bool // this revision carries the scan's first decision
	err = in.cfg.Spool.Update(func(tx *spool.Tx) error {
		sc, _, err := tx.Scan(f.NumSnim)
		if err != nil {
			return err
		}
		if string(sc.FormSHA256) == string(sum[:]) {
			rev = 0
			return nil // the same content again (rescan, touch): not a new revision
		}
		sc.Forms++
		sc.FormSHA256 = sum[:]
		rev = sc.Forms
		if parsed != nil && parsed.Decision != layout.DecisionNone && !sc.Decided {
			sc.Decided, decided = true, true
		}
		if err := tx.PutScan(sc); err != nil {
			return err
		}
		fr := &idkpb.FormRevision{NumSnim: f.NumSnim, Revision: rev, Content: data, Sha256: sum[:], ParseError: parseErr}
		if parsed != nil {
			fr.Form = FormProto(parsed)
		}
		_, err = tx.AppendEvent(&idkpb.Event{TimeUnixNano: r.ModTime.UnixNano(), Body: &idkpb.Event_Form{Form: fr}})
		return err
	})
	if err != nil {
		return fmt.Errorf("record form %s: %w", r.Path, err)
	}
	if rev > 0 && parseErr != "" {
		in.cfg.Log.Warn("registration form cannot be parsed; shipped as it is", "file", r.Path, "revision", rev, "err", parseErr)
	} else if rev > 0 {
		in.cfg.Log.Info("form revision recorded", "num_snim", f.NumSnim, "revision", rev, "decision", decisionName(parsed.Decision))
		if decided && in.cfg.OnDecision != nil {
			in.cfg.OnDecision(f.NumSnim, r.ModTime)
		}
	}
	return nil
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

// record is blob; with force it hashes the file even when its size and
// modification time are those recorded, because the shipper found that
// its content is not (a substitute of the same size whose time was kept,
// as a copy that preserves times makes).
//
// It runs on the intake's goroutine for the watcher's offers and on the
// shipper's for Rehash, often for the same change of the same file, so
// the record is read again in the transaction that writes it: one change
// makes one CHANGED event, never two.
func (in *Intake) record(r watch.Ready, force bool) error {
	f, _ := in.cfg.Layout.Classify(r.Rel)
	key := f.NumSnim + "/" + f.Name
	var known spool.File
	var have bool
	var scan spool.Scan
	err := in.cfg.Spool.View(func(tx *spool.Tx) error {
		var err error
		if known, have, err = tx.File(key); err != nil {
			return err
		}
		scan, _, err = tx.Scan(f.NumSnim)
		return err
	})
	if err != nil {
		return err
	}
	if have && !force && known.Size == r.Size && known.ModTime.Equal(r.ModTime) {
		return nil
	}
	sum, size, err := filehash.File(r.Path)
	if err != nil {
		return fmt.Errorf("hash: %w", err)
	}
	if size != r.Size {
		in.cfg.Retry(r.Path) // still changing after all
		return nil
	}
	if have && string(known.SHA256) == string(sum) {
		return nil // touched, same bytes
	}
	rec := spool.File{
		NumSnim:   f.NumSnim,
		Name:      f.Name,
		Path:      r.Path,
		Kind:      fileKind(f.Kind),
		Size:      size,
		ModTime:   r.ModTime,
		SHA256:    sum,
		ScanTime:  scan.FirstSeen,
		FirstSeen: in.cfg.Clock.Now(),
	}
	var changed bool // the spool held other content for this file
	var was []byte   // that content's SHA-256
	var renamed string
	err = in.cfg.Spool.Update(func(tx *spool.Tx) error {
		cur, ok, err := tx.File(key)
		if err != nil {
			return err
		}
		if ok && string(cur.SHA256) == string(sum) {
			changed, renamed = false, ""
			return nil // recorded meanwhile by the other caller
		}
		changed, was, renamed = ok, cur.SHA256, ""
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
		return tx.PutFile(rec)
	})
	if err != nil {
		return err
	}
	if renamed != "" {
		in.cfg.Log.Warn("scan file name cannot be stored as it is; shipped under a safe name",
			"file", r.Path, "num_snim", f.NumSnim, "name", f.Name, "shipped_as", renamed)
	}
	if changed {
		in.cfg.Log.Warn("scan file content changed after it was first seen; the new content is shipped too",
			"file", r.Path, "was_sha256", fmt.Sprintf("%x", was), "now_sha256", fmt.Sprintf("%x", sum))
	}
	return nil
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
