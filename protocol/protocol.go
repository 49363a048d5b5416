// Package protocol is the versioned wire format between an ИДК agent and its
// collector: the generated messages (package idkpb), the framing that puts
// them on a QUIC stream, and the checks both sides apply to names that
// end up in file paths.
package protocol

//go:generate protoc --go_out=. --go_opt=paths=source_relative idkpb/idk.proto

import (
	"bufio"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"

	"google.golang.org/protobuf/proto"
)

// Version is the protocol version the agent announces in its hello. The
// collector refuses versions it does not speak, with an error that says so.
const Version = 1

// ALPN is the TLS application protocol both sides require.
const ALPN = "idk/1"

// MaxMessageSize bounds one framed message. A chunk is ChunkSize plus a few
// bytes of framing; forms are far smaller.
const MaxMessageSize = 4 << 20

// ChunkSize is the payload of one file chunk. 1 MiB keeps the per-message
// overhead negligible and the agent's memory small.
const ChunkSize = 1 << 20

// MaxFormSize bounds a registration form the agent will send as an event.
const MaxFormSize = 1 << 20

// ErrTooLarge is returned for a frame larger than MaxMessageSize.
var ErrTooLarge = errors.New("protocol: message too large")

// Writer writes length-delimited messages (uvarint length, then bytes: the
// same framing as protodelim), reusing one buffer so that sending chunks
// does not allocate per message.
type Writer struct {
	w   io.Writer
	buf []byte
}

// NewWriter returns a Writer on w.
func NewWriter(w io.Writer) *Writer { return &Writer{w: w} }

// Write frames and writes m.
func (w *Writer) Write(m proto.Message) error {
	size := proto.Size(m)
	if size > MaxMessageSize {
		return fmt.Errorf("%w: %d bytes", ErrTooLarge, size)
	}
	b := binary.AppendUvarint(w.buf[:0], uint64(size))
	b, err := proto.MarshalOptions{UseCachedSize: true}.MarshalAppend(b, m)
	if err != nil {
		return fmt.Errorf("protocol: marshal %T: %w", m, err)
	}
	w.buf = b
	if _, err := w.w.Write(b); err != nil {
		return fmt.Errorf("protocol: write %T: %w", m, err)
	}
	return nil
}

// Reader reads messages written by Writer, reusing its buffer.
type Reader struct {
	r     *bufio.Reader
	buf   []byte
	limit uint64
}

// NewReader returns a Reader on r that accepts frames up to MaxMessageSize.
func NewReader(r io.Reader) *Reader {
	return &Reader{r: bufio.NewReaderSize(r, 64<<10), limit: MaxMessageSize}
}

// SetLimit lowers the largest frame the Reader accepts, for a stream that
// may carry only small messages (a hello, an offer).
func (r *Reader) SetLimit(n int) { r.limit = uint64(min(n, MaxMessageSize)) }

// growStep is how much more buffer a frame gets for each step of data that
// arrives: a peer that announces a large frame and then stalls holds only
// what it really sent, not what it announced.
const growStep = 256 << 10

// Read reads the next message into m. It returns io.EOF only at a clean
// end of stream between messages.
func (r *Reader) Read(m proto.Message) error {
	size, err := binary.ReadUvarint(r.r)
	if err != nil {
		if errors.Is(err, io.EOF) {
			return io.EOF
		}
		return fmt.Errorf("protocol: read length: %w", err)
	}
	if size > r.limit {
		return fmt.Errorf("%w: %d bytes, at most %d here", ErrTooLarge, size, r.limit)
	}
	b := r.buf[:0]
	for uint64(len(b)) < size {
		n := min(size-uint64(len(b)), growStep)
		b = slices.Grow(b, int(n))
		part := b[len(b) : len(b)+int(n)]
		if _, err := io.ReadFull(r.r, part); err != nil {
			r.buf = b[:0]
			return fmt.Errorf("protocol: read %T: %w", m, noEOF(err))
		}
		b = b[:len(b)+int(n)]
	}
	r.buf = b[:0]
	if err := proto.Unmarshal(b, m); err != nil {
		return fmt.Errorf("protocol: decode %T: %w", m, err)
	}
	return nil
}

func noEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

var (
	numSnimRE = regexp.MustCompile(`^[0-9A-Za-z]{1,40}$`)
	numIDKRE  = regexp.MustCompile(`^[0-9A-Za-z]{1,20}$`)
	kodToRE   = regexp.MustCompile(`^[0-9]{8}$`)
)

// CheckNumSnim checks a scan number before it becomes a folder name.
func CheckNumSnim(s string) error {
	if !numSnimRE.MatchString(s) {
		return fmt.Errorf("NUM_SNIM %q: want 1-40 letters and digits", s)
	}
	return nil
}

// CheckNumIDK checks an ИДК number.
func CheckNumIDK(s string) error {
	if !numIDKRE.MatchString(s) {
		return fmt.Errorf("NUM_IDK %q: want 1-20 letters and digits, no spaces", s)
	}
	return nil
}

// CheckKodTO checks a customs body code.
func CheckKodTO(s string) error {
	if !kodToRE.MatchString(s) {
		return fmt.Errorf("KOD_TO %q: want 8 digits", s)
	}
	return nil
}

// ChainNext extends a spool's scan chain (see idkpb.ScanSeen): the agent
// computes it when it records a scan, the collector checks it.
func ChainNext(prev []byte, index uint64, numSnim string) []byte {
	if len(prev) == 0 {
		prev = make([]byte, sha256.Size)
	}
	h := sha256.New()
	h.Write(prev)
	h.Write(binary.BigEndian.AppendUint64(nil, index))
	h.Write([]byte(numSnim))
	return h.Sum(nil)
}
