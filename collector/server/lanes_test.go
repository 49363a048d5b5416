package server

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"hash/crc32"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/quic-go/quic-go"
	"google.golang.org/protobuf/proto"

	"idk/protocol"
	"idk/protocol/idkpb"
	"idk/protocol/transport"
)

// upload offers o on a stream of conn and sends content from where the
// reply asks to the end of o's stripe (or of the file), then commits.
// The result is nil when the offer was not answered with SEND.
func upload(conn *quic.Conn, o *idkpb.FileOffer, content []byte) (*idkpb.FileOfferReply, *idkpb.FileResult, error) {
	st, err := conn.OpenStreamSync(context.Background())
	if err != nil {
		return nil, nil, err
	}
	defer transport.EndStream(st)
	w, r := protocol.NewWriter(st), protocol.NewReader(st)
	w.Write(&idkpb.StreamHeader{Kind: idkpb.StreamKind_STREAM_KIND_FILE})
	w.Write(o)
	var rep idkpb.FileOfferReply
	if err := r.Read(&rep); err != nil {
		return nil, nil, err
	}
	if rep.Status != idkpb.FileOfferReply_STATUS_SEND {
		return &rep, nil, nil
	}
	end := o.Size
	if o.RangeSize > 0 {
		end = o.RangeOffset + o.RangeSize
	}
	castagnoli := crc32.MakeTable(crc32.Castagnoli)
	for pos := rep.Offset; pos < end; {
		n := min(end-pos, protocol.ChunkSize)
		data := content[pos : pos+n]
		if err := w.Write(&idkpb.FileData{Body: &idkpb.FileData_Chunk{Chunk: &idkpb.Chunk{Offset: pos, Data: data, Crc32C: crc32.Checksum(data, castagnoli)}}}); err != nil {
			return &rep, nil, err
		}
		pos += n
	}
	w.Write(&idkpb.FileData{Body: &idkpb.FileData_Commit{Commit: &idkpb.Commit{Sha256: o.Sha256}}})
	var res idkpb.FileResult
	if err := r.Read(&res); err != nil {
		return &rep, nil, err
	}
	return &rep, &res, nil
}

// stripeFixture is an agent of the fixture with its connection and n
// lanes, and a file of three and a half chunks to send.
type stripeFixture struct {
	*fixture
	main    *quic.Conn
	lanes   []*quic.Conn
	content []byte
	offer   *idkpb.FileOffer
}

func startStripes(t *testing.T, maxLanes, lanes int) *stripeFixture {
	t.Helper()
	f := start(t, func(c *Config) { c.MaxLanes = maxLanes })
	dev := &idkpb.Device{NumIdk: "850591", KodTo: "10216100"}
	main, rep, err := f.dial(t, "850591", dev)
	if err != nil || rep.Error != "" {
		t.Fatalf("hello: %v %q", err, rep.GetError())
	}
	t.Cleanup(func() { main.CloseWithError(0, "") })
	if rep.MaxLanes != uint32(maxLanes) {
		t.Errorf("hello reply offers %d lanes, want %d", rep.MaxLanes, maxLanes)
	}
	sf := &stripeFixture{fixture: f, main: main}
	for k := 1; k <= lanes; k++ {
		conn, rep, err := f.dialHello(t, "850591", &idkpb.Hello{ProtocolVersion: protocol.Version, Device: dev, Lane: uint32(k)})
		if err != nil || rep.Error != "" {
			t.Fatalf("lane %d hello: %v %q", k, err, rep.GetError())
		}
		t.Cleanup(func() { conn.CloseWithError(0, "") })
		sf.lanes = append(sf.lanes, conn)
	}
	sf.content = make([]byte, 3*protocol.ChunkSize+protocol.ChunkSize/2)
	rand.NewChaCha8([32]byte{1}).Read(sf.content)
	sum := sha256.Sum256(sf.content)
	sf.offer = &idkpb.FileOffer{NumSnim: "202611288505910001", Name: "image.raw", Kind: idkpb.FileKind_FILE_KIND_RAW,
		Size: uint64(len(sf.content)), Sha256: sum[:], ScanTimeUnixNano: time.Now().UnixNano()}
	return sf
}

// stripe sends bytes [off, off+size) of the file on conn and wants them held.
func (sf *stripeFixture) stripe(t *testing.T, conn *quic.Conn, off, size uint64) {
	t.Helper()
	o := proto.CloneOf(sf.offer)
	o.RangeOffset, o.RangeSize = off, size
	rep, res, err := upload(conn, o, sf.content)
	if err != nil || res == nil || !res.RangeHeld || res.Error != "" {
		t.Fatalf("stripe at %d: reply %v, result %v, %v", off, rep, res, err)
	}
}

// whole offers the file whole on the connection and wants it stored
// byte for byte; it returns the offset the collector asked for.
func (sf *stripeFixture) whole(t *testing.T) uint64 {
	t.Helper()
	rep, res, err := upload(sf.main, sf.offer, sf.content)
	if err != nil || res == nil || res.Error != "" || res.StoredAs == "" {
		t.Fatalf("whole offer: reply %v, result %v, %v", rep, res, err)
	}
	got, err := os.ReadFile(filepath.Join(sf.store.Root(), filepath.FromSlash(res.StoredAs)))
	if err != nil || !bytes.Equal(got, sf.content) {
		t.Fatalf("stored %s: %d bytes (%v), not the file sent", res.StoredAs, len(got), err)
	}
	return rep.Offset
}

// incoming lists what the collector still holds of uploads in progress.
func (sf *stripeFixture) incoming(t *testing.T) []string {
	t.Helper()
	var left []string
	root := filepath.Join(sf.store.Root(), ".incoming")
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			left = append(left, strings.TrimPrefix(p, root))
		}
		return err
	})
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	return left
}

// A large file striped over the connection and two lanes at once: each
// stripe is held, and the whole offer takes them up, asks for nothing
// more, and stores the file whole after its SHA-256 check. The lanes do
// not replace the connection, which carries events as before.
func TestStripesOnLanesMakeTheFile(t *testing.T) {
	sf := startStripes(t, 3, 2)
	if got := testutil.ToFloat64(sf.metrics.Lanes); got != 2 {
		t.Errorf("idk_collector_lanes %v, want 2", got)
	}
	c := uint64(protocol.ChunkSize)
	var wg sync.WaitGroup
	wg.Go(func() { sf.stripe(t, sf.main, 0, c) })
	wg.Go(func() { sf.stripe(t, sf.lanes[0], c, 2*c) })
	wg.Go(func() { sf.stripe(t, sf.lanes[1], 3*c, sf.offer.Size-3*c) })
	wg.Wait()
	if t.Failed() {
		return
	}
	if off := sf.whole(t); off != sf.offer.Size {
		t.Errorf("whole offer asked from %d, want %d: the stripes held all of it", off, sf.offer.Size)
	}
	if left := sf.incoming(t); len(left) != 0 {
		t.Errorf("left in .incoming: %v", left)
	}
	ack, err := sendEvents(sf.main, &idkpb.Event{Seq: 1, Body: &idkpb.Event_ScanSeen{ScanSeen: &idkpb.ScanSeen{NumSnim: "202611288505910001"}}})
	if err != nil || ack.Error != "" {
		t.Errorf("events on the connection after its lanes came: %v %q", err, ack.GetError())
	}
}

// A stripe that never came: the whole offer takes the stripes that
// continue what is held, asks for the rest from the gap, drops the
// stripe beyond it, and stores the file whole.
func TestWholeOfferSendsWhatTheStripesMiss(t *testing.T) {
	sf := startStripes(t, 3, 2)
	c := uint64(protocol.ChunkSize)
	sf.stripe(t, sf.main, 0, c)
	sf.stripe(t, sf.lanes[1], 3*c, sf.offer.Size-3*c) // [c, 3c) lost with its lane
	if off := sf.whole(t); off != c {
		t.Errorf("whole offer asked from %d, want %d, where the held stripes end", off, c)
	}
	if left := sf.incoming(t); len(left) != 0 {
		t.Errorf("left in .incoming: %v", left)
	}
}

// A lane is for stripes: the events stream and whole files go on the
// connection; a lane beyond the collector's limit is refused at its
// hello, and with no lanes configured there are none.
func TestLanesCarryOnlyStripesWithinTheLimit(t *testing.T) {
	sf := startStripes(t, 2, 1)
	rep, res, err := upload(sf.lanes[0], sf.offer, sf.content)
	if err != nil || res != nil || rep.Status != idkpb.FileOfferReply_STATUS_REJECTED {
		t.Errorf("whole offer on a lane: reply %v, result %v, %v; want rejected", rep, res, err)
	}
	if ack, err := sendEvents(sf.lanes[0], &idkpb.Event{Seq: 1, Body: &idkpb.Event_ScanSeen{ScanSeen: &idkpb.ScanSeen{NumSnim: "202611288505910001"}}}); err == nil && ack.Error == "" {
		t.Error("events stored from a lane")
	}
	dev := &idkpb.Device{NumIdk: "850591", KodTo: "10216100"}
	// The refusal is the hello's reply, or the close that follows it when
	// that overtakes the reply.
	refusal := func(f *fixture, lane uint32) string {
		_, hr, err := f.dialHello(t, "850591", &idkpb.Hello{ProtocolVersion: protocol.Version, Device: dev, Lane: lane})
		if err != nil {
			return err.Error()
		}
		return hr.GetError()
	}
	if got := refusal(sf.fixture, 3); !strings.Contains(got, "at most 2 lanes") {
		t.Errorf("lane 3 of 2: %q, want refused", got)
	}
	if got := refusal(start(t), 1); !strings.Contains(got, "at most 0 lanes") {
		t.Errorf("a lane where none are configured: %q, want refused", got)
	}
}

// idk_collector_resumed_uploads_total counts transfers that go on from
// what a cut-off transfer left, not whole offers that start where their
// stripes end.
func TestResumedCountsCutTransfersNotStripes(t *testing.T) {
	sf := startStripes(t, 3, 2)
	c := uint64(protocol.ChunkSize)
	sf.stripe(t, sf.main, 0, c)
	sf.stripe(t, sf.lanes[0], c, 2*c)
	sf.stripe(t, sf.lanes[1], 3*c, sf.offer.Size-3*c)
	if off := sf.whole(t); off != sf.offer.Size {
		t.Fatalf("whole offer asked from %d, want %d", off, sf.offer.Size)
	}
	if got := testutil.ToFloat64(sf.metrics.Resumed); got != 0 {
		t.Errorf("after a striped file: resumed uploads %v, want 0", got)
	}

	// A second file, cut off after its first chunk.
	sf.offer = proto.CloneOf(sf.offer)
	sf.offer.Name = "image2.raw"
	st, err := sf.main.OpenStreamSync(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	w, r := protocol.NewWriter(st), protocol.NewReader(st)
	w.Write(&idkpb.StreamHeader{Kind: idkpb.StreamKind_STREAM_KIND_FILE})
	w.Write(sf.offer)
	var rep idkpb.FileOfferReply
	if err := r.Read(&rep); err != nil || rep.Status != idkpb.FileOfferReply_STATUS_SEND || rep.Offset != 0 {
		t.Fatalf("offer of image2.raw: %v %v", &rep, err)
	}
	data := sf.content[:c]
	if err := w.Write(&idkpb.FileData{Body: &idkpb.FileData_Chunk{Chunk: &idkpb.Chunk{Offset: 0, Data: data, Crc32C: crc32.Checksum(data, crc32.MakeTable(crc32.Castagnoli))}}}); err != nil {
		t.Fatal(err)
	}
	// The chunk must be written before the stream is cut: wait for it.
	eventually(t, "the first chunk received", func() bool {
		return testutil.ToFloat64(sf.metrics.BytesReceived) >= float64(sf.offer.Size+c)
	})
	st.CancelWrite(1)
	st.CancelRead(1)

	var off uint64
	eventually(t, "image2.raw stored after the cut", func() bool {
		rep, res, err := upload(sf.main, sf.offer, sf.content)
		if err != nil || rep.Status == idkpb.FileOfferReply_STATUS_REFUSED {
			return false // still busy with the cut transfer
		}
		if res == nil || res.StoredAs == "" {
			t.Fatalf("second offer of image2.raw: %v %v", rep, res)
		}
		off = rep.Offset
		return true
	})
	if off != c {
		t.Errorf("second offer of image2.raw asked from %d, want %d", off, c)
	}
	if got := testutil.ToFloat64(sf.metrics.Resumed); got != 1 {
		t.Errorf("after a cut-off transfer: resumed uploads %v, want 1", got)
	}
}

// eventually waits up to 10 s for cond, and fails the test naming what
// did not happen.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 10 s", what)
		}
	}
}
