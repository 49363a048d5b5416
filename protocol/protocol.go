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

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"idk/protocol/idkpb"
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

// Write frames and writes m. A file chunk (the one message sent by the
// thousand) goes without a copy of its data: see writeChunk.
func (w *Writer) Write(m proto.Message) error {
	if d, ok := m.(*idkpb.FileData); ok {
		if c := d.GetChunk(); c != nil && len(c.Data) > 0 && len(d.ProtoReflect().GetUnknown()) == 0 && len(c.ProtoReflect().GetUnknown()) == 0 {
			return w.writeChunk(c)
		}
	}
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

// writeChunk frames a FileData holding c as two writes: the frame's
// header and c's other fields, then c.Data straight from the caller's
// buffer. Marshalling would copy every byte of the file once more into
// w.buf only to write it out again. The bytes are a valid encoding of the
// same message, with one difference from proto.Marshal's: crc32c comes
// before data, so that nothing follows the data and one write of it
// suffices. Protobuf parsers accept fields in any order (proto.Unmarshal,
// protodelim and UnmarshalFileData included; TestWriterChunkIsProtobuf
// checks it).
func (w *Writer) writeChunk(c *idkpb.Chunk) error {
	inner := protowire.SizeTag(chunkData) + protowire.SizeBytes(len(c.Data))
	if c.Offset != 0 {
		inner += protowire.SizeTag(chunkOffset) + protowire.SizeVarint(c.Offset)
	}
	if c.Crc32C != 0 {
		inner += protowire.SizeTag(chunkCRC) + protowire.SizeVarint(uint64(c.Crc32C))
	}
	size := protowire.SizeTag(fileDataChunk) + protowire.SizeBytes(inner)
	if size > MaxMessageSize {
		return fmt.Errorf("%w: %d bytes", ErrTooLarge, size)
	}
	b := binary.AppendUvarint(w.buf[:0], uint64(size))
	b = protowire.AppendTag(b, fileDataChunk, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(inner))
	if c.Offset != 0 {
		b = protowire.AppendTag(b, chunkOffset, protowire.VarintType)
		b = protowire.AppendVarint(b, c.Offset)
	}
	if c.Crc32C != 0 {
		b = protowire.AppendTag(b, chunkCRC, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(c.Crc32C))
	}
	b = protowire.AppendTag(b, chunkData, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(len(c.Data)))
	w.buf = b
	if _, err := w.w.Write(b); err != nil {
		return fmt.Errorf("protocol: write chunk: %w", err)
	}
	if _, err := w.w.Write(c.Data); err != nil {
		return fmt.Errorf("protocol: write chunk: %w", err)
	}
	return nil
}

// Field numbers of idkpb.FileData and idkpb.Chunk (protocol/idkpb/idk.proto),
// for the chunk's hand-written encoding and in-place decoding.
const (
	fileDataChunk protowire.Number = 1
	chunkOffset   protowire.Number = 1
	chunkData     protowire.Number = 2
	chunkCRC      protowire.Number = 3
)

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
// end of stream between messages. m holds no reference to the Reader's
// buffer: proto.Unmarshal copies bytes fields.
func (r *Reader) Read(m proto.Message) error {
	b, err := r.frame(m)
	if err != nil {
		return err
	}
	if err := proto.Unmarshal(b, m); err != nil {
		return fmt.Errorf("protocol: decode %T: %w", m, err)
	}
	return nil
}

// ReadFileData is Read for the file stream's data messages, without
// copying a chunk's data: d.GetChunk().Data then points into the
// Reader's buffer and is valid only until the next call of any read
// method of r (Read, ReadFrame, ReadFileData), which reuses that buffer.
// A caller must be done with the data (written it, hashed it) or copy it
// before reading again. See UnmarshalFileData for what is decoded in place.
func (r *Reader) ReadFileData(d *idkpb.FileData) error {
	b, err := r.frame(d)
	if err != nil {
		return err
	}
	if err := UnmarshalFileData(b, d); err != nil {
		return fmt.Errorf("protocol: decode %T: %w", d, err)
	}
	return nil
}

// ReadFrame reads the next frame and returns its bytes, undecoded. It
// returns io.EOF only at a clean end of stream between messages. The
// bytes are the Reader's buffer: valid only until the next call of any
// read method of r.
func (r *Reader) ReadFrame() ([]byte, error) { return r.frame(nil) }

// frame reads the next frame into r.buf and returns it. m names the
// message expected, for errors (nil: a raw frame).
func (r *Reader) frame(m proto.Message) ([]byte, error) {
	what := "frame"
	if m != nil {
		what = fmt.Sprintf("%T", m)
	}
	size, err := binary.ReadUvarint(r.r)
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, io.EOF
		}
		return nil, fmt.Errorf("protocol: read length: %w", err)
	}
	if size > r.limit {
		return nil, fmt.Errorf("%w: %d bytes, at most %d here", ErrTooLarge, size, r.limit)
	}
	b := r.buf[:0]
	for uint64(len(b)) < size {
		n := min(size-uint64(len(b)), growStep)
		b = slices.Grow(b, int(n))
		part := b[len(b) : len(b)+int(n)]
		if _, err := io.ReadFull(r.r, part); err != nil {
			r.buf = b[:0]
			return nil, fmt.Errorf("protocol: read %s: %w", what, noEOF(err))
		}
		b = b[:len(b)+int(n)]
	}
	r.buf = b[:0]
	return b, nil
}

// UnmarshalFileData decodes b into d as proto.Unmarshal does, except that
// a chunk's data is not copied: d.GetChunk().Data aliases b (with its
// capacity cut to its length, so an append cannot spill into the rest of
// b), and is valid as long as b is. The in-place path takes the messages
// the agent sends, a FileData holding only a chunk whose fields (offset,
// data, crc32c) each appear once, in any order; anything else (a commit,
// unknown or repeated fields, a field of the wrong wire type, bytes that
// do not parse) goes to proto.Unmarshal, so the result, or the error, is
// always the one proto.Unmarshal would give (FuzzUnmarshalFileData).
func UnmarshalFileData(b []byte, d *idkpb.FileData) error {
	if c, ok := chunkInPlace(b); ok {
		proto.Reset(d)
		d.Body = &idkpb.FileData_Chunk{Chunk: c}
		return nil
	}
	return proto.Unmarshal(b, d)
}

// chunkInPlace decodes b if it is a FileData holding exactly one chunk
// made of distinct known fields; ok false: leave it to proto.Unmarshal.
func chunkInPlace(b []byte) (c *idkpb.Chunk, ok bool) {
	num, typ, n := protowire.ConsumeTag(b)
	if n < 0 || num != fileDataChunk || typ != protowire.BytesType {
		return nil, false
	}
	inner, m := protowire.ConsumeBytes(b[n:])
	if m < 0 || n+m != len(b) {
		return nil, false
	}
	c = &idkpb.Chunk{}
	var seen [chunkCRC + 1]bool
	for len(inner) > 0 {
		num, typ, n := protowire.ConsumeTag(inner)
		if n < 0 || num < chunkOffset || num > chunkCRC || seen[num] {
			return nil, false
		}
		seen[num] = true
		inner = inner[n:]
		switch num {
		case chunkOffset, chunkCRC:
			if typ != protowire.VarintType {
				return nil, false
			}
			v, n := protowire.ConsumeVarint(inner)
			if n < 0 {
				return nil, false
			}
			if num == chunkOffset {
				c.Offset = v
			} else {
				c.Crc32C = uint32(v) // as proto.Unmarshal truncates a uint32 field
			}
			inner = inner[n:]
		case chunkData:
			if typ != protowire.BytesType {
				return nil, false
			}
			v, n := protowire.ConsumeBytes(inner)
			if n < 0 {
				return nil, false
			}
			c.Data = v[:len(v):len(v)]
			inner = inner[n:]
		}
	}
	return c, true
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
