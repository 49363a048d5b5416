// Package ship delivers the agent's spool to the collector over QUIC with
// mutual TLS. It reconnects forever with capped backoff (no retry limit
// that would drop data), sends events and each file on streams of their
// own so a form never waits behind an image, resumes a file from the byte
// the collector already holds, and marks an item done in the spool only
// after the collector has acknowledged it as stored.
package ship

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"os"
	"sync"
	"time"

	"github.com/quic-go/quic-go"
	"golang.org/x/time/rate"

	"idk/agent/spool"
	"idk/protocol"
	"idk/protocol/idkpb"
)

// Config wires a Shipper.
type Config struct {
	Addr       string // collector host:port
	TLS        *tls.Config
	QUIC       *quic.Config
	Device     *idkpb.Device
	Spool      *spool.Spool
	Metrics    *Metrics
	Log        *slog.Logger
	Now        func() time.Time
	Version    string
	MinBackoff time.Duration // default 500ms
	MaxBackoff time.Duration // default 30s
	// MaxRate caps file bytes per second, so that shipping does not starve
	// the crossing's other traffic on a thin link. 0: no cap.
	MaxRate int64
	// OnRehash is called when a queued file no longer has the content
	// hashed when it was first seen. It must re-hash and update the spool.
	OnRehash func(f spool.File)
}

// Shipper sends the spool to the collector.
type Shipper struct {
	cfg     Config
	limiter *rate.Limiter
}

// New returns a shipper.
func New(cfg Config) *Shipper {
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = 500 * time.Millisecond
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = 30 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	limiter := rate.NewLimiter(rate.Inf, 0)
	if cfg.MaxRate > 0 {
		limiter = rate.NewLimiter(rate.Limit(cfg.MaxRate), protocol.ChunkSize)
	}
	return &Shipper{cfg: cfg, limiter: limiter}
}

// Run ships until ctx ends.
func (s *Shipper) Run(ctx context.Context) error {
	backoff := s.cfg.MinBackoff
	for {
		connected, err := s.session(ctx)
		if ctx.Err() != nil {
			return nil
		}
		s.cfg.Metrics.Connected.Set(0)
		s.cfg.Metrics.Reconnects.Inc()
		if connected {
			// The collector was there a moment ago (a restart, a lost
			// path): come back promptly. The backoff grows only while it
			// cannot be reached at all.
			backoff = s.cfg.MinBackoff
		}
		// Jitter keeps a fleet that lost the collector together from
		// coming back in lockstep.
		wait := backoff/2 + rand.N(backoff/2+1)
		s.cfg.Log.Warn("connection to collector lost; retrying", "addr", s.cfg.Addr, "err", err, "retry_in", wait.Round(time.Millisecond))
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
		backoff = min(2*backoff, s.cfg.MaxBackoff)
	}
}

// session runs one connection; connected reports whether the hello got
// through.
func (s *Shipper) session(ctx context.Context) (connected bool, err error) {
	conn, err := quic.DialAddr(ctx, s.cfg.Addr, s.cfg.TLS, s.cfg.QUIC)
	if err != nil {
		return false, fmt.Errorf("dial %s: %w", s.cfg.Addr, err)
	}
	defer conn.CloseWithError(0, "agent closing")
	if err := s.hello(ctx, conn); err != nil {
		return false, err
	}
	s.cfg.Metrics.Connected.Set(1)
	s.cfg.Log.Info("connected to collector", "addr", s.cfg.Addr)

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	for _, loop := range []func(context.Context, *quic.Conn) error{s.events, s.files} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := loop(ctx, conn); err != nil {
				cancel(err)
			}
		}()
	}
	wg.Wait()
	return true, context.Cause(ctx)
}

func (s *Shipper) hello(ctx context.Context, conn *quic.Conn) error {
	st, err := conn.OpenStreamSync(ctx)
	if err != nil {
		return fmt.Errorf("open hello stream: %w", err)
	}
	defer endStream(st)
	st.SetDeadline(time.Now().Add(15 * time.Second))
	w, r := protocol.NewWriter(st), protocol.NewReader(st)
	if err := w.Write(&idkpb.StreamHeader{Kind: idkpb.StreamKind_STREAM_KIND_HELLO}); err != nil {
		return err
	}
	err = w.Write(&idkpb.Hello{
		ProtocolVersion:   protocol.Version,
		Device:            s.cfg.Device,
		AgentTimeUnixNano: s.cfg.Now().UnixNano(),
		AgentVersion:      s.cfg.Version,
		SpoolEpoch:        s.cfg.Spool.Epoch(),
	})
	if err != nil {
		return err
	}
	var rep idkpb.HelloReply
	if err := r.Read(&rep); err != nil {
		return fmt.Errorf("hello: %w", err)
	}
	if rep.Error != "" {
		return fmt.Errorf("collector refused hello: %s", rep.Error)
	}
	offset := time.Duration(rep.ClockOffsetNanos)
	s.cfg.Metrics.ClockOffset.Set(offset.Seconds())
	if offset.Abs() > time.Minute {
		s.cfg.Log.Warn("this PC's clock differs from the collector's; the collector corrects event times", "offset", offset)
	}
	return nil
}

// wait blocks until the spool changes, a poll interval passes, or ctx ends.
func wait(ctx context.Context, changed <-chan struct{}) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-changed:
	case <-time.After(2 * time.Second):
	}
	return nil
}

func (s *Shipper) events(ctx context.Context, conn *quic.Conn) error {
	changed := s.cfg.Spool.Subscribe()
	st, err := conn.OpenStreamSync(ctx)
	if err != nil {
		return fmt.Errorf("open event stream: %w", err)
	}
	defer endStream(st)
	w, r := protocol.NewWriter(st), protocol.NewReader(st)
	if err := w.Write(&idkpb.StreamHeader{Kind: idkpb.StreamKind_STREAM_KIND_EVENTS}); err != nil {
		return err
	}
	for {
		evs, err := s.cfg.Spool.PendingEvents(256, 1<<20)
		if err != nil {
			return err
		}
		if len(evs) == 0 {
			if err := wait(ctx, changed); err != nil {
				return err
			}
			continue
		}
		if err := w.Write(&idkpb.EventBatch{Events: evs}); err != nil {
			return err
		}
		var ack idkpb.EventAck
		if err := r.Read(&ack); err != nil {
			return fmt.Errorf("event ack: %w", err)
		}
		if ack.Error != "" {
			return fmt.Errorf("collector refused events %d-%d: %s", evs[0].Seq, evs[len(evs)-1].Seq, ack.Error)
		}
		if err := s.cfg.Spool.AckEvents(evs); err != nil {
			return err
		}
		s.cfg.Metrics.EventsShipped.Add(float64(len(evs)))
	}
}

func (s *Shipper) files(ctx context.Context, conn *quic.Conn) error {
	changed := s.cfg.Spool.Subscribe()
	refusedWait := time.Second
	for {
		f, err := s.cfg.Spool.NextFile()
		if errors.Is(err, spool.ErrEmpty) {
			if err := wait(ctx, changed); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return err
		}
		if err := s.sendFile(ctx, conn, f); err != nil {
			var busy errBusy
			if errors.As(err, &busy) {
				// The collector cannot take the file now: the old
				// connection's stream still holds it, or its disk is full.
				// Keep the file and ask again, less often the longer it
				// lasts.
				s.cfg.Log.Warn("collector refused a file for now; keeping it", "err", err, "retry_in", refusedWait)
				select {
				case <-ctx.Done():
				case <-time.After(refusedWait):
				}
				refusedWait = min(2*refusedWait, 30*time.Second)
				continue
			}
			return err
		}
		refusedWait = time.Second
	}
}

type errBusy struct{ msg string }

func (e errBusy) Error() string { return e.msg }

// errChanged means the file on disk no longer matches the spool record.
var errChanged = errors.New("file changed since it was first seen")

func (s *Shipper) sendFile(ctx context.Context, conn *quic.Conn, f spool.File) error {
	src, err := os.Open(f.Path)
	if errors.Is(err, fs.ErrNotExist) {
		// Gone from the scanner before it could be shipped: record it and
		// move on, so one missing file does not hold up the rest.
		s.cfg.Log.Error("scan file disappeared before it was shipped", "file", f.Path, "num_snim", f.NumSnim)
		return s.markMissing(f)
	} else if err != nil {
		return fmt.Errorf("open %s: %w", f.Path, err)
	}
	defer src.Close()

	st, err := conn.OpenStreamSync(ctx)
	if err != nil {
		return fmt.Errorf("open file stream: %w", err)
	}
	defer endStream(st)
	w, r := protocol.NewWriter(st), protocol.NewReader(st)
	if err := w.Write(&idkpb.StreamHeader{Kind: idkpb.StreamKind_STREAM_KIND_FILE}); err != nil {
		return err
	}
	err = w.Write(&idkpb.FileOffer{
		NumSnim:          f.NumSnim,
		Name:             f.Name,
		Kind:             f.Kind,
		Size:             uint64(f.Size),
		Sha256:           f.SHA256,
		ScanTimeUnixNano: f.ScanTime.UnixNano(),
	})
	if err != nil {
		return err
	}
	var rep idkpb.FileOfferReply
	if err := r.Read(&rep); err != nil {
		return fmt.Errorf("offer %s: %w", f.Key(), err)
	}
	switch rep.Status {
	case idkpb.FileOfferReply_STATUS_HAVE:
		return s.markDone(f, "")
	case idkpb.FileOfferReply_STATUS_SEND:
	default:
		if rep.Error == "" {
			rep.Error = rep.Status.String()
		}
		return errBusy{fmt.Sprintf("collector refused %s: %s", f.Key(), rep.Error)}
	}
	if rep.Offset > uint64(f.Size) {
		return fmt.Errorf("collector asks for %s from %d, beyond its %d bytes", f.Key(), rep.Offset, f.Size)
	}

	err = s.stream(ctx, src, w, f, rep.Offset)
	if errors.Is(err, errChanged) {
		st.CancelWrite(1)
		s.cfg.Log.Warn("scan file changed after it was first seen; hashing it again", "file", f.Path)
		if s.cfg.OnRehash != nil {
			s.cfg.OnRehash(f)
		}
		return nil
	}
	if err != nil {
		return err
	}
	var res idkpb.FileResult
	if err := r.Read(&res); err != nil {
		return fmt.Errorf("commit %s: %w", f.Key(), err)
	}
	if res.Restart {
		s.cfg.Metrics.FileRestarts.Inc()
		s.cfg.Log.Warn("collector's copy failed its checksum; sending again from the start", "file", f.Key())
		return nil
	}
	if res.Error != "" {
		return fmt.Errorf("collector did not store %s: %s", f.Key(), res.Error)
	}
	s.cfg.Metrics.FilesShipped.Inc()
	return s.markDone(f, res.StoredAs)
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// stream sends the file from offset and the commit, checking on the way
// that the content is still what was hashed when first seen. Only one
// chunk is ever in memory.
func (s *Shipper) stream(ctx context.Context, src *os.File, w *protocol.Writer, f spool.File, offset uint64) error {
	h := sha256.New()
	if offset > 0 {
		if _, err := io.CopyN(h, src, int64(offset)); err != nil {
			return fmt.Errorf("%w: %s: %v", errChanged, f.Path, err)
		}
	}
	buf := make([]byte, protocol.ChunkSize)
	chunk := &idkpb.Chunk{}
	msg := &idkpb.FileData{Body: &idkpb.FileData_Chunk{Chunk: chunk}}
	pos := offset
	for pos < uint64(f.Size) {
		n, err := io.ReadFull(src, buf[:min(uint64(len(buf)), uint64(f.Size)-pos)])
		if err != nil {
			return fmt.Errorf("%w: read %s at %d: %v", errChanged, f.Path, pos, err)
		}
		if err := s.limiter.WaitN(ctx, n); err != nil {
			return err
		}
		h.Write(buf[:n])
		chunk.Offset, chunk.Data, chunk.Crc32C = pos, buf[:n], crc32.Checksum(buf[:n], castagnoli)
		if err := w.Write(msg); err != nil {
			return err
		}
		pos += uint64(n)
		s.cfg.Metrics.SentBytes.Add(float64(n))
	}
	if n, _ := src.Read(buf[:1]); n > 0 {
		return fmt.Errorf("%w: %s grew", errChanged, f.Path)
	}
	sum := h.Sum(nil)
	if string(sum) != string(f.SHA256) {
		return fmt.Errorf("%w: %s has another SHA-256", errChanged, f.Path)
	}
	return w.Write(&idkpb.FileData{Body: &idkpb.FileData_Commit{Commit: &idkpb.Commit{Sha256: sum}}})
}

// markMissing closes a file that vanished from the scanner's folder and
// records the fact as evidence for table 5 (missing images).
func (s *Shipper) markMissing(f spool.File) error {
	return s.cfg.Spool.Update(func(tx *spool.Tx) error {
		_, err := tx.AppendEvent(&idkpb.Event{TimeUnixNano: s.cfg.Now().UnixNano(), Body: &idkpb.Event_Integrity{Integrity: &idkpb.Integrity{
			Kind: idkpb.Integrity_KIND_MISSING, NumSnim: f.NumSnim, Name: f.Name, FirstSha256: f.SHA256}}})
		if err != nil {
			return err
		}
		f.Done, f.DoneAt, f.StoredAs = true, s.cfg.Now(), ""
		return tx.PutFile(f)
	})
}

func (s *Shipper) markDone(f spool.File, storedAs string) error {
	return s.cfg.Spool.Update(func(tx *spool.Tx) error {
		cur, ok, err := tx.File(f.Key())
		if err != nil {
			return err
		}
		if ok && string(cur.SHA256) != string(f.SHA256) {
			return nil // re-hashed meanwhile: the new content still has to go
		}
		f.Done, f.DoneAt, f.StoredAs = true, s.cfg.Now(), storedAs
		return tx.PutFile(f)
	})
}

// endStream finishes both directions: QUIC counts a stream against the
// collector's limit until its receive side is read or cancelled as well.
func endStream(st *quic.Stream) {
	st.CancelRead(0)
	st.Close()
}
