package protocol

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"google.golang.org/protobuf/encoding/protodelim"
	"google.golang.org/protobuf/proto"

	"idk/protocol/idkpb"
)

func TestFramingRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf)
	msgs := []proto.Message{
		&idkpb.StreamHeader{Kind: idkpb.StreamKind_STREAM_KIND_FILE},
		&idkpb.FileData{Body: &idkpb.FileData_Chunk{Chunk: &idkpb.Chunk{Offset: 7, Data: bytes.Repeat([]byte{1}, ChunkSize), Crc32C: 9}}},
		&idkpb.FileData{Body: &idkpb.FileData_Commit{Commit: &idkpb.Commit{Sha256: []byte{1, 2}}}},
	}
	for _, m := range msgs {
		if err := w.Write(m); err != nil {
			t.Fatal(err)
		}
	}
	// The framing is protodelim's, so any protobuf implementation can read it.
	first := &idkpb.StreamHeader{}
	if err := protodelim.UnmarshalFrom(bytes.NewReader(buf.Bytes()), first); err != nil || first.Kind != idkpb.StreamKind_STREAM_KIND_FILE {
		t.Fatalf("protodelim read: %v %v", first, err)
	}
	r := NewReader(&buf)
	h := &idkpb.StreamHeader{}
	if err := r.Read(h); err != nil || h.Kind != idkpb.StreamKind_STREAM_KIND_FILE {
		t.Fatalf("header: %v %v", h, err)
	}
	d := &idkpb.FileData{}
	if err := r.Read(d); err != nil || len(d.GetChunk().GetData()) != ChunkSize || d.GetChunk().GetOffset() != 7 {
		t.Fatalf("chunk: %v", err)
	}
	if err := r.Read(d); err != nil || !bytes.Equal(d.GetCommit().GetSha256(), []byte{1, 2}) {
		t.Fatalf("commit: %v", err)
	}
	if err := r.Read(d); err != io.EOF {
		t.Fatalf("want io.EOF at end, got %v", err)
	}
}

func TestReaderRefusesHugeAndTruncated(t *testing.T) {
	huge := []byte{0xff, 0xff, 0xff, 0xff, 0x0f} // uvarint far above MaxMessageSize
	if err := NewReader(bytes.NewReader(huge)).Read(&idkpb.Hello{}); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("huge frame: got %v", err)
	}
	var buf bytes.Buffer
	if err := NewWriter(&buf).Write(&idkpb.Hello{AgentVersion: "x"}); err != nil {
		t.Fatal(err)
	}
	cut := buf.Bytes()[:buf.Len()-1]
	if err := NewReader(bytes.NewReader(cut)).Read(&idkpb.Hello{}); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("truncated frame: got %v", err)
	}
}

func TestChecks(t *testing.T) {
	for _, bad := range []string{"", "../x", "a:b"} {
		if CheckFileName(bad) == nil {
			t.Errorf("CheckFileName(%q) accepted", bad)
		}
	}
	for _, good := range []string{"201701040006080003_1.raw", "doc_001.jpg", "form.xml"} {
		if err := CheckFileName(good); err != nil {
			t.Errorf("CheckFileName(%q): %v", good, err)
		}
	}
	if CheckNumSnim("../etc") == nil || CheckNumSnim("70001DJ01201701020002") != nil {
		t.Error("CheckNumSnim")
	}
	if CheckKodTO("1010101") == nil || CheckKodTO("10101010") != nil {
		t.Error("CheckKodTO")
	}
	if CheckNumIDK("85 0591") == nil || CheckNumIDK("850591") != nil {
		t.Error("CheckNumIDK")
	}
}

// FuzzReader feeds arbitrary bytes to the decoder as each message kind the
// collector reads from an agent: it must return an error or a message,
// never panic or allocate without bound.
func FuzzReader(f *testing.F) {
	var buf bytes.Buffer
	w := NewWriter(&buf)
	_ = w.Write(&idkpb.StreamHeader{Kind: idkpb.StreamKind_STREAM_KIND_EVENTS})
	_ = w.Write(&idkpb.EventBatch{Events: []*idkpb.Event{{Seq: 1, Body: &idkpb.Event_ScanSeen{ScanSeen: &idkpb.ScanSeen{NumSnim: "1"}}}}})
	f.Add(buf.Bytes())
	buf.Reset()
	_ = w.Write(&idkpb.FileOffer{NumSnim: "1", Name: "a.raw", Size: 10, Sha256: make([]byte, 32)})
	_ = w.Write(&idkpb.FileData{Body: &idkpb.FileData_Chunk{Chunk: &idkpb.Chunk{Data: []byte("0123456789"), Crc32C: 1}}})
	f.Add(buf.Bytes())
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, m := range []proto.Message{&idkpb.StreamHeader{}, &idkpb.Hello{}, &idkpb.EventBatch{}, &idkpb.FileOffer{}, &idkpb.FileData{}} {
			r := NewReader(bytes.NewReader(data))
			for range 4 {
				if err := r.Read(m); err != nil {
					break
				}
			}
		}
	})
}
