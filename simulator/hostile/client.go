package hostile

// The raw client: one agent connection made by hand with a real
// certificate, speaking the project's protocol, so that everything it sends
// is what a thief holding that certificate could send. The tests and the
// Forger use it.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash/crc32"
	"io"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/quic-go/quic-go"

	"idk/collector/pki"
	"idk/protocol"
	"idk/protocol/idkpb"
	"idk/protocol/transport"
)

// moscow is the collector's time zone in the harness config: it picks the
// date folder. Moscow has kept UTC+3 all year since 2014.
var moscow = time.FixedZone("MSK", 3*60*60)

// dateDir is the date folder of a scan seen at t.
func dateDir(t time.Time) string { return t.In(moscow).Format("20060102") }

// client is one agent connection made by hand with ИДК num's real
// certificate. Everything it sends is what a thief holding that
// certificate could send.
type client struct {
	num   string
	conn  *quic.Conn
	epoch uint64
	seq   uint64 // last event sequence number used
	index uint64 // last ScanSeen index
	chain []byte
}

// dialAddr opens a QUIC connection to addr with ИДК num's certificate
// from the PKI folder dir. A non-nil sessions cache lets the TLS client
// resume an earlier session, as an attacker with a revoked certificate
// would try to.
func dialAddr(ctx context.Context, addr, dir, num string, sessions tls.ClientSessionCache) (*client, error) {
	conf, err := transport.ClientTLS(filepath.Join(dir, pki.AgentCertFile(num)), filepath.Join(dir, pki.AgentKeyFile(num)),
		filepath.Join(dir, pki.CACertFile), "localhost")
	if err != nil {
		return nil, err
	}
	conf.NextProtos = []string{protocol.ALPN}
	conf.ClientSessionCache = sessions
	conn, err := quic.DialAddr(ctx, addr, conf, transport.QUICConfig())
	if err != nil {
		return nil, err
	}
	return &client{num: num, conn: conn, epoch: uint64(time.Now().UnixNano())}, nil
}

// device is the identity a hello carries.
func device(num, kod string) *idkpb.Device {
	return &idkpb.Device{NumIdk: num, KodTo: kod, TypeIdk: 2, DislIdk: 1,
		NaimTo: "ДАГЕСТАНСКАЯ", NaimZtk: "МАПП ЯРАГ-КАЗМАЛЯР"}
}

// errRefused is a hello the collector answered with an error, or a
// connection it closed instead of answering.
type errRefused struct{ msg string }

func (e *errRefused) Error() string { return "hello refused: " + e.msg }

// hello says hello as dev and returns nil if the collector accepted it.
func (c *client) hello(ctx context.Context, dev *idkpb.Device) error {
	st, err := c.conn.OpenStreamSync(ctx)
	if err != nil {
		return &errRefused{err.Error()}
	}
	defer transport.EndStream(st)
	st.SetDeadline(time.Now().Add(15 * time.Second))
	w, r := protocol.NewWriter(st), protocol.NewReader(st)
	w.Write(&idkpb.StreamHeader{Kind: idkpb.StreamKind_STREAM_KIND_HELLO})
	w.Write(&idkpb.Hello{ProtocolVersion: protocol.Version, Device: dev, AgentTimeUnixNano: time.Now().UnixNano(),
		AgentVersion: "hostile", SpoolEpoch: c.epoch})
	var rep idkpb.HelloReply
	if err := r.Read(&rep); err != nil {
		return &errRefused{err.Error()}
	}
	if rep.Error != "" {
		return &errRefused{rep.Error}
	}
	return nil
}

// close ends the connection as an agent's orderly goodbye.
func (c *client) close() { c.conn.CloseWithError(0, "") }

// fileStream is one FILE stream.
type fileStream struct {
	st *quic.Stream
	w  *protocol.Writer
	r  *protocol.Reader
}

// openFile opens a FILE stream and writes its header.
func (c *client) openFile(ctx context.Context) (*fileStream, error) {
	st, err := c.conn.OpenStreamSync(ctx)
	if err != nil {
		return nil, err
	}
	if d, ok := ctx.Deadline(); ok {
		st.SetDeadline(d)
	}
	f := &fileStream{st: st, w: protocol.NewWriter(st), r: protocol.NewReader(st)}
	if err := f.w.Write(&idkpb.StreamHeader{Kind: idkpb.StreamKind_STREAM_KIND_FILE}); err != nil {
		f.end()
		return nil, err
	}
	return f, nil
}

// offer opens a FILE stream, offers o and reads the collector's answer.
// The stream stays open for send and commit; the caller ends it.
func (c *client) offer(ctx context.Context, o *idkpb.FileOffer) (*fileStream, *idkpb.FileOfferReply, error) {
	f, err := c.openFile(ctx)
	if err != nil {
		return nil, nil, err
	}
	if err := f.w.Write(o); err != nil {
		f.end()
		return nil, nil, err
	}
	var rep idkpb.FileOfferReply
	if err := f.r.Read(&rep); err != nil {
		f.end()
		return nil, nil, fmt.Errorf("offer %s/%s: %w", o.NumSnim, o.Name, err)
	}
	return f, &rep, nil
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// send writes data[from:] in protocol.ChunkSize chunks.
func (f *fileStream) send(data []byte, from uint64) error {
	for off := from; off < uint64(len(data)); {
		end := min(off+protocol.ChunkSize, uint64(len(data)))
		p := data[off:end]
		err := f.w.Write(&idkpb.FileData{Body: &idkpb.FileData_Chunk{Chunk: &idkpb.Chunk{
			Offset: off, Data: p, Crc32C: crc32.Checksum(p, castagnoli)}}})
		if err != nil {
			return err
		}
		off = end
	}
	return nil
}

// commit sends the commit and reads the result.
func (f *fileStream) commit(sum []byte) (*idkpb.FileResult, error) {
	if err := f.w.Write(&idkpb.FileData{Body: &idkpb.FileData_Commit{Commit: &idkpb.Commit{Sha256: sum}}}); err != nil {
		return nil, err
	}
	var res idkpb.FileResult
	if err := f.r.Read(&res); err != nil {
		return nil, err
	}
	return &res, nil
}

// end finishes the stream in both directions.
func (f *fileStream) end() { transport.EndStream(f.st) }

// offerOf is an honest offer of data as numSnim/name, seen at scanTime.
func offerOf(numSnim, name string, data []byte, scanTime time.Time) *idkpb.FileOffer {
	kind := idkpb.FileKind_FILE_KIND_DOCUMENT
	if strings.HasSuffix(name, ".raw") {
		kind = idkpb.FileKind_FILE_KIND_RAW
	}
	return &idkpb.FileOffer{NumSnim: numSnim, Name: name, Kind: kind, Size: uint64(len(data)),
		Sha256: sum(data), ScanTimeUnixNano: scanTime.UnixNano()}
}

// upload offers data and, if told SEND, sends and commits it. res is nil
// when nothing was sent.
func (c *client) upload(ctx context.Context, o *idkpb.FileOffer, data []byte) (rep *idkpb.FileOfferReply, res *idkpb.FileResult, err error) {
	f, rep, err := c.offer(ctx, o)
	if err != nil {
		return nil, nil, err
	}
	defer f.end()
	if rep.Status != idkpb.FileOfferReply_STATUS_SEND {
		return rep, nil, nil
	}
	if err := f.send(data, rep.Offset); err != nil {
		return rep, nil, err
	}
	res, err = f.commit(o.Sha256)
	return rep, res, err
}

// nextSeq is the next event sequence number of this connection's spool.
func (c *client) nextSeq() uint64 { c.seq++; return c.seq }

// scanSeen is the next ScanSeen event of this client's spool, chained.
func (c *client) scanSeen(numSnim string, at time.Time) *idkpb.Event {
	c.index++
	c.chain = protocol.ChainNext(c.chain, c.index, numSnim)
	return &idkpb.Event{Seq: c.nextSeq(), TimeUnixNano: at.UnixNano(),
		Body: &idkpb.Event_ScanSeen{ScanSeen: &idkpb.ScanSeen{NumSnim: numSnim, Index: c.index, Chain: c.chain}}}
}

// formRevision is a FormRevision event carrying content and, if form is
// not nil, its parsed fields.
func (c *client) formRevision(numSnim string, rev uint32, content []byte, form *idkpb.Form, at time.Time) *idkpb.Event {
	fr := &idkpb.FormRevision{NumSnim: numSnim, Revision: rev, Content: content, Sha256: sum(content), Form: form}
	if form == nil {
		fr.ParseError = "not a form"
	}
	return &idkpb.Event{Seq: c.nextSeq(), TimeUnixNano: at.UnixNano(), Body: &idkpb.Event_Form{Form: fr}}
}

// sendEvents sends one batch on an EVENTS stream of its own and reads the
// ack.
func (c *client) sendEvents(ctx context.Context, evs ...*idkpb.Event) (*idkpb.EventAck, error) {
	st, err := c.conn.OpenStreamSync(ctx)
	if err != nil {
		return nil, err
	}
	defer transport.EndStream(st)
	if d, ok := ctx.Deadline(); ok {
		st.SetDeadline(d)
	}
	w, r := protocol.NewWriter(st), protocol.NewReader(st)
	if err := w.Write(&idkpb.StreamHeader{Kind: idkpb.StreamKind_STREAM_KIND_EVENTS}); err != nil {
		return nil, err
	}
	if err := w.Write(&idkpb.EventBatch{Events: evs}); err != nil {
		return nil, err
	}
	var ack idkpb.EventAck
	if err := r.Read(&ack); err != nil {
		return nil, err
	}
	return &ack, nil
}

// claimFrame writes the length prefix of a frame of n bytes and then, in
// the background, filler bytes of it (as many as flow control lets
// through), never finishing the frame: a peer that announces a large
// message and stalls.
func claimFrame(st *quic.Stream, n uint64, filler int) error {
	if _, err := st.Write(binary.AppendUvarint(nil, n)); err != nil {
		return err
	}
	go st.Write(make([]byte, filler)) // blocks on flow control; ends with the connection
	return nil
}

// readFrame reads one raw frame (length prefix and body) from r.
func readFrame(r io.Reader) ([]byte, error) {
	br := &byteReader{r: r}
	n, err := binary.ReadUvarint(br)
	if err != nil {
		return nil, err
	}
	if n > protocol.MaxMessageSize {
		return nil, fmt.Errorf("frame of %d bytes", n)
	}
	b := make([]byte, n)
	_, err = io.ReadFull(r, b)
	return b, err
}

type byteReader struct{ r io.Reader }

func (b *byteReader) ReadByte() (byte, error) {
	var p [1]byte
	_, err := io.ReadFull(b.r, p[:])
	return p[0], err
}

func sum(b []byte) []byte { s := sha256.Sum256(b); return s[:] }

func hexSum(b []byte) string { return hex.EncodeToString(sum(b)) }

// content is n bytes that differ for every seed.
func content(seed string, n int) []byte {
	var b bytes.Buffer
	for i := 0; b.Len() < n; i++ {
		s := sha256.Sum256([]byte(seed + strconv.Itoa(i)))
		b.Write(s[:])
	}
	return b.Bytes()[:n]
}

// scanNumber is a scan number as CargoRIW writes it: the date, the last six
// digits of NUM_IDK and the day's counter.
func scanNumber(at time.Time, num string, n int) string {
	return fmt.Sprintf("%s%s%04d", at.In(moscow).Format("20060102"), num, n)
}
