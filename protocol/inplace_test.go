package protocol

import (
	"bytes"
	"errors"
	"io"
	"runtime"
	"testing"

	"google.golang.org/protobuf/encoding/protodelim"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"idk/protocol/idkpb"
)

func chunkMsg(off uint64, data []byte, crc uint32) *idkpb.FileData {
	return &idkpb.FileData{Body: &idkpb.FileData_Chunk{Chunk: &idkpb.Chunk{Offset: off, Data: data, Crc32C: crc}}}
}

// The Writer's hand-made chunk frame must be protobuf any implementation
// reads as the same message, whatever fields are zero.
func TestWriterChunkIsProtobuf(t *testing.T) {
	for _, m := range []*idkpb.FileData{
		chunkMsg(0, []byte("x"), 0),
		chunkMsg(7, []byte("abc"), 0),
		chunkMsg(0, []byte("abc"), 0xffffffff),
		chunkMsg(1<<40, bytes.Repeat([]byte{9}, ChunkSize), 12345),
	} {
		var buf bytes.Buffer
		if err := NewWriter(&buf).Write(m); err != nil {
			t.Fatal(err)
		}
		want, err := proto.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		frame := buf.Bytes()
		size, n := protowire.ConsumeVarint(frame)
		if n < 0 || int(size) != len(frame)-n || int(size) != len(want) {
			t.Fatalf("frame length %d (of %d bytes after it), proto.Size says %d", size, len(frame)-n, len(want))
		}
		got := &idkpb.FileData{}
		if err := protodelim.UnmarshalFrom(bytes.NewReader(frame), got); err != nil || !proto.Equal(got, m) {
			t.Fatalf("protodelim read %v (%v), want %v", got, err, m)
		}
		// And the in-place decoder takes it without falling back.
		if _, ok := chunkInPlace(frame[n:]); !ok {
			t.Fatalf("in-place decode refused the Writer's chunk of %d bytes", len(m.GetChunk().Data))
		}
	}
}

// A chunk of one MiB is sent without being marshalled into a copy: the
// Writer's buffer stays a few bytes long.
func TestWriterDoesNotCopyChunkData(t *testing.T) {
	w := NewWriter(io.Discard)
	if err := w.Write(chunkMsg(3, make([]byte, ChunkSize), 1)); err != nil {
		t.Fatal(err)
	}
	if cap(w.buf) > 64 {
		t.Fatalf("writer buffer grew to %d bytes for one chunk: the data was copied", cap(w.buf))
	}
}

// ReadFileData hands out the chunk's bytes from the Reader's buffer: right
// bytes, no copy, and valid until the next read, as documented.
func TestReadFileDataInPlace(t *testing.T) {
	one := bytes.Repeat([]byte{1}, ChunkSize)
	two := bytes.Repeat([]byte{2}, ChunkSize)
	var buf bytes.Buffer
	w := NewWriter(&buf)
	for _, m := range []proto.Message{chunkMsg(0, one, 11), chunkMsg(ChunkSize, two, 22),
		&idkpb.FileData{Body: &idkpb.FileData_Commit{Commit: &idkpb.Commit{Sha256: []byte{1, 2}}}}} {
		if err := w.Write(m); err != nil {
			t.Fatal(err)
		}
	}
	r := NewReader(&buf)
	var d idkpb.FileData
	if err := r.ReadFileData(&d); err != nil {
		t.Fatal(err)
	}
	first := d.GetChunk()
	if first.Offset != 0 || first.Crc32C != 11 || !bytes.Equal(first.Data, one) {
		t.Fatalf("first chunk: offset %d crc %d, %d bytes, right bytes %v", first.Offset, first.Crc32C, len(first.Data), bytes.Equal(first.Data, one))
	}
	if !aliases(first.Data, r.buf[:cap(r.buf)]) {
		t.Fatal("chunk data was copied out of the reader's buffer")
	}
	if cap(first.Data) != len(first.Data) {
		t.Fatalf("chunk data has capacity %d beyond its %d bytes: an append would write into the buffer", cap(first.Data), len(first.Data))
	}
	// The caller consumes the data before the next read (the collector
	// writes and hashes it); what it made of it stays right.
	consumed := bytes.Clone(first.Data)
	if err := r.ReadFileData(&d); err != nil {
		t.Fatal(err)
	}
	second := d.GetChunk()
	if second.Offset != ChunkSize || second.Crc32C != 22 || !bytes.Equal(second.Data, two) {
		t.Fatalf("second chunk wrong: offset %d crc %d", second.Offset, second.Crc32C)
	}
	if !bytes.Equal(consumed, one) {
		t.Fatal("data consumed before the next read changed")
	}
	// The documented lifetime: the buffer is reused, so the first chunk's
	// slice now shows the second frame's bytes (shifted by its longer
	// header). Holding it past the read is wrong.
	if bytes.Equal(first.Data, one) || !bytes.Contains(first.Data, two[:ChunkSize/2]) {
		t.Fatal("the reader did not reuse its buffer for the next frame")
	}
	if err := r.ReadFileData(&d); err != nil || !bytes.Equal(d.GetCommit().GetSha256(), []byte{1, 2}) || d.GetChunk() != nil {
		t.Fatalf("commit after chunks: %v %v", d.GetCommit(), err)
	}
	if err := r.ReadFileData(&d); err != io.EOF {
		t.Fatalf("want io.EOF at end, got %v", err)
	}
}

func aliases(a, b []byte) bool {
	if len(a) == 0 || len(b) == 0 {
		return false
	}
	for i := range b {
		if &b[i] == &a[0] {
			return true
		}
	}
	return false
}

// Reading chunk after chunk allocates a few small structures each, not a
// copy of the data (Read allocates a MiB a chunk).
func TestReadFileDataAllocatesNoData(t *testing.T) {
	const chunks = 16
	var buf bytes.Buffer
	w := NewWriter(&buf)
	data := make([]byte, ChunkSize)
	for i := range chunks {
		if err := w.Write(chunkMsg(uint64(i)*ChunkSize, data, 1)); err != nil {
			t.Fatal(err)
		}
	}
	r := NewReader(bytes.NewReader(buf.Bytes()))
	var d idkpb.FileData
	if err := r.ReadFileData(&d); err != nil { // the first grows the buffer
		t.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range chunks - 1 {
		if err := r.ReadFileData(&d); err != nil {
			t.Fatal(err)
		}
	}
	runtime.ReadMemStats(&after)
	if per := (after.TotalAlloc - before.TotalAlloc) / (chunks - 1); per > 4<<10 {
		t.Fatalf("%d bytes allocated per chunk read in place", per)
	}
}

func TestReadFrameAndErrors(t *testing.T) {
	var buf bytes.Buffer
	if err := NewWriter(&buf).Write(&idkpb.Hello{AgentVersion: "v"}); err != nil {
		t.Fatal(err)
	}
	raw := bytes.Clone(buf.Bytes())
	r := NewReader(&buf)
	b, err := r.ReadFrame()
	if err != nil {
		t.Fatal(err)
	}
	var h idkpb.Hello
	if err := proto.Unmarshal(b, &h); err != nil || h.AgentVersion != "v" {
		t.Fatalf("raw frame decodes to %v, %v", &h, err)
	}
	if _, err := r.ReadFrame(); err != io.EOF {
		t.Fatalf("want io.EOF, got %v", err)
	}
	// A truncated chunk frame is ErrUnexpectedEOF, a huge one ErrTooLarge.
	if err := NewReader(bytes.NewReader(raw[:len(raw)-1])).ReadFileData(&idkpb.FileData{}); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("truncated: %v", err)
	}
	r = NewReader(bytes.NewReader([]byte{0xff, 0xff, 0xff, 0xff, 0x0f}))
	if err := r.ReadFileData(&idkpb.FileData{}); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("huge: %v", err)
	}
	// Bytes that are not protobuf fail as proto.Unmarshal fails.
	bad := []byte{2, 0x0a, 0x05}
	if err := NewReader(bytes.NewReader(bad)).ReadFileData(&idkpb.FileData{}); err == nil {
		t.Fatal("a chunk field announcing 5 bytes of 0 decoded")
	}
}

// FuzzUnmarshalFileData: the in-place decoder gives what proto.Unmarshal
// gives, message or error, for any bytes.
func FuzzUnmarshalFileData(f *testing.F) {
	for _, m := range []proto.Message{
		chunkMsg(5, []byte("hello"), 7),
		chunkMsg(0, nil, 0),
		&idkpb.FileData{Body: &idkpb.FileData_Commit{Commit: &idkpb.Commit{Sha256: []byte{1}}}},
	} {
		b, _ := proto.Marshal(m)
		f.Add(b)
	}
	var buf bytes.Buffer
	_ = NewWriter(&buf).Write(chunkMsg(1<<33, []byte("reordered"), 0xfffffff0))
	f.Add(buf.Bytes()[1:])
	f.Add([]byte{0x0a, 0x04, 0x08, 0x01, 0x08, 0x02})             // offset twice
	f.Add([]byte{0x0a, 0x03, 0x10, 0x01, 0x00})                   // data as a varint
	f.Add([]byte{0x0a, 0x0b, 0x18, 0xff, 0xff, 0xff, 0xff, 0x1f}) // crc past 32 bits, cut short
	f.Fuzz(func(t *testing.T, b []byte) {
		want := &idkpb.FileData{}
		wantErr := proto.Unmarshal(b, want)
		got := &idkpb.FileData{Body: &idkpb.FileData_Commit{Commit: &idkpb.Commit{Sha256: []byte{9}}}} // stale content to be replaced
		gotErr := UnmarshalFileData(b, got)
		if (wantErr == nil) != (gotErr == nil) {
			t.Fatalf("proto.Unmarshal: %v, UnmarshalFileData: %v", wantErr, gotErr)
		}
		if wantErr == nil && !proto.Equal(got, want) {
			t.Fatalf("got %v, want %v", got, want)
		}
	})
}
