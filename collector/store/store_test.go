package store

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"idk/collector/kv"
	"idk/protocol/idkpb"
	"idk/simulator/simclock"
)

var (
	dev   = &idkpb.Device{NumIdk: "850591", KodTo: "10216100"}
	msk   = time.FixedZone("MSK", 3*3600)
	t0    = time.Date(2026, 11, 22, 23, 30, 0, 0, time.UTC) // 02:30 on the 23rd in Moscow
	agent = func(n int64) time.Time { return time.Unix(0, n) }
)

func openStore(t *testing.T, root string) *Store {
	t.Helper()
	s, err := Open(root, Options{Location: msk, Clock: simclock.New(t0)})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func offerFor(numSnim, name string, data []byte) *idkpb.FileOffer {
	sum := sha256.Sum256(data)
	return &idkpb.FileOffer{NumSnim: numSnim, Name: name, Kind: idkpb.FileKind_FILE_KIND_RAW, Size: uint64(len(data)), Sha256: sum[:], ScanTimeUnixNano: t0.UnixNano()}
}

func chunk(data []byte, off int) *idkpb.Chunk {
	return &idkpb.Chunk{Offset: uint64(off), Data: data, Crc32C: crc32.Checksum(data, castagnoli)}
}

// send offers data and sends it from the offered offset in chunks of n.
func send(t *testing.T, s *Store, o *idkpb.FileOffer, data []byte, n int) (string, error) {
	t.Helper()
	up, rep, err := s.Offer(dev, o, t0)
	if err != nil {
		return "", err
	}
	if up == nil {
		return "", nil
	}
	defer up.Close()
	for off := int(rep.Offset); off < len(data); off += n {
		end := min(off+n, len(data))
		if err := up.Write(chunk(data[off:end], off)); err != nil {
			return "", err
		}
	}
	return up.Commit(o.Sha256)
}

func TestStoreWritesIntoDatedScanFolderAndDedupes(t *testing.T) {
	root := t.TempDir()
	s := openStore(t, root)
	defer s.Close()
	data := bytes.Repeat([]byte("x-ray "), 50000)
	o := offerFor("202611230001", "202611230001_1.raw", data)
	got, err := send(t, s, o, data, 4096)
	if err != nil {
		t.Fatal(err)
	}
	// The date folder is the scan's local date in the collector's zone.
	want := "10216100/20261123/850591/202611230001/202611230001_1.raw"
	if got != want {
		t.Fatalf("stored as %q, want %q", got, want)
	}
	if b, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(want))); err != nil || !bytes.Equal(b, data) {
		t.Fatalf("content on disk differs: %v", err)
	}
	up, rep, err := s.Offer(dev, o, t0)
	if err != nil || up != nil || rep.Status != idkpb.FileOfferReply_STATUS_HAVE {
		t.Fatalf("second offer: %v %v %v", up, rep, err)
	}
	files, _ := s.Files(dev.NumIdk)
	if len(files) != 1 || files[0].Size != int64(len(data)) {
		t.Fatalf("index: %+v", files)
	}
	if leftovers, _ := filepath.Glob(filepath.Join(root, ".incoming", "*", "*")); len(leftovers) != 0 {
		t.Fatalf("partial files left behind: %v", leftovers)
	}
}

func TestStoreResumesAcrossRestart(t *testing.T) {
	root := t.TempDir()
	s := openStore(t, root)
	data := bytes.Repeat([]byte{7, 8, 9}, 100000)
	o := offerFor("S1", "S1_1.raw", data)
	up, rep, err := s.Offer(dev, o, t0)
	if err != nil || rep.Offset != 0 {
		t.Fatal(rep, err)
	}
	if err := up.Write(chunk(data[:100000], 0)); err != nil {
		t.Fatal(err)
	}
	up.Close() // connection lost
	s.Close()  // collector restarted

	s = openStore(t, root)
	defer s.Close()
	up, rep, err = s.Offer(dev, o, t0)
	if err != nil || rep.Offset != 100000 {
		t.Fatalf("resume offset %v, %v; want 100000", rep, err)
	}
	if err := up.Write(chunk(data[100000:], 100000)); err != nil {
		t.Fatal(err)
	}
	if _, err := up.Commit(o.Sha256); err != nil {
		t.Fatal(err)
	}
	up.Close()
}

func TestStoreRefusesBadChunks(t *testing.T) {
	s := openStore(t, t.TempDir())
	defer s.Close()
	data := []byte("0123456789")
	up, _, err := s.Offer(dev, offerFor("S2", "a.raw", data), t0)
	if err != nil {
		t.Fatal(err)
	}
	defer up.Close()
	if err := up.Write(chunk(data[2:], 2)); err == nil || !strings.Contains(err.Error(), "offset") {
		t.Errorf("wrong offset accepted: %v", err)
	}
	bad := chunk(data[:4], 0)
	bad.Crc32C++
	if err := up.Write(bad); err == nil || !strings.Contains(err.Error(), "CRC32C") {
		t.Errorf("bad checksum accepted: %v", err)
	}
	if err := up.Write(chunk(append(data, 'x'), 0)); err == nil {
		t.Error("chunk past the offered size accepted")
	}
	if up.Offset() != 0 {
		t.Errorf("refused chunks moved the offset to %d", up.Offset())
	}
	if _, err := up.Commit(up.offer.Sha256); err == nil {
		t.Error("commit of an incomplete file accepted")
	}
}

func TestStoreDropsCorruptPartialAndAsksForRestart(t *testing.T) {
	root := t.TempDir()
	s := openStore(t, root)
	defer s.Close()
	data := bytes.Repeat([]byte("abc"), 1000)
	o := offerFor("S3", "a.raw", data)
	up, _, _ := s.Offer(dev, o, t0)
	up.Write(chunk(data[:1500], 0))
	up.Close()
	// A power cut on a cheap disk leaves garbage in the partial copy.
	parts, _ := filepath.Glob(filepath.Join(root, ".incoming", dev.NumIdk, "S3", "*.part"))
	if len(parts) != 1 {
		t.Fatalf("partials: %v", parts)
	}
	os.WriteFile(parts[0], bytes.Repeat([]byte{0}, 1500), 0o640)

	if _, err := send(t, s, o, data, 700); !errors.Is(err, ErrRestart) {
		t.Fatalf("want ErrRestart, got %v", err)
	}
	up, rep, err := s.Offer(dev, o, t0)
	if err != nil || rep.Offset != 0 {
		t.Fatalf("after restart: offset %v, %v; want 0", rep, err)
	}
	up.Close()
	if _, err := send(t, s, o, data, 700); err != nil {
		t.Fatal(err)
	}
}

func TestStoreKeepsBothContentsOfOneName(t *testing.T) {
	s := openStore(t, t.TempDir())
	defer s.Close()
	first, second := []byte("first image"), []byte("substituted image")
	a, err := send(t, s, offerFor("S4", "S4_1.raw", first), first, 4)
	if err != nil {
		t.Fatal(err)
	}
	b, err := send(t, s, offerFor("S4", "S4_1.raw", second), second, 4)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(a, "/S4_1.raw") || !strings.HasSuffix(b, "/S4_1~2.raw") {
		t.Fatalf("stored as %s and %s", a, b)
	}
	if again, _ := send(t, s, offerFor("S4", "S4_1.raw", first), first, 4); again != "" {
		t.Fatalf("the first content was stored again as %s", again)
	}
}

func TestStoreAdoptsFileRenamedBeforeACrash(t *testing.T) {
	root := t.TempDir()
	s := openStore(t, root)
	defer s.Close()
	data := []byte("renamed, then the collector died before indexing")
	dir := filepath.Join(root, "10216100", "20261123", "850591", "S5")
	os.MkdirAll(dir, 0o750)
	os.WriteFile(filepath.Join(dir, "S5_1.raw"), data, 0o640)
	up, rep, err := s.Offer(dev, offerFor("S5", "S5_1.raw", data), t0)
	if err != nil || up != nil || rep.Status != idkpb.FileOfferReply_STATUS_HAVE {
		t.Fatalf("orphan not adopted: %v %v", rep, err)
	}
	if files, _ := s.Files(""); len(files) != 1 {
		t.Fatalf("orphan not indexed: %v", files)
	}
	// An unrecorded file with other content is moved aside, never overwritten.
	os.WriteFile(filepath.Join(dir, "S5_2.raw"), []byte("stranger"), 0o640)
	mine := []byte("the real second image")
	if _, err := send(t, s, offerFor("S5", "S5_2.raw", mine), mine, 5); err != nil {
		t.Fatal(err)
	}
	aside, _ := filepath.Glob(filepath.Join(dir, ".S5_2.raw.orphan-*"))
	if len(aside) != 1 {
		t.Fatalf("stranger not moved aside: %v", aside)
	}
}

func TestStoreOneWriterPerFile(t *testing.T) {
	s := openStore(t, t.TempDir())
	defer s.Close()
	data := []byte("contended")
	o := offerFor("S6", "a.raw", data)
	up, _, err := s.Offer(dev, o, t0)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Offer(dev, o, t0); !errors.Is(err, ErrBusy) {
		t.Fatalf("second writer: %v, want ErrBusy", err)
	}
	up.Close()
	up, _, err = s.Offer(dev, o, t0)
	if err != nil {
		t.Fatalf("after the first let go: %v", err)
	}
	up.Close()
}

func TestStoreRefusesUnsafeNames(t *testing.T) {
	s := openStore(t, t.TempDir())
	defer s.Close()
	for _, o := range []*idkpb.FileOffer{
		offerFor("../../etc", "x.raw", []byte("x")),
		offerFor("S7", "../x.raw", []byte("x")),
		offerFor("S7", `..\x.raw`, []byte("x")),
		offerFor("S7", ".hidden", []byte("x")),
	} {
		if _, _, err := s.Offer(dev, o, t0); err == nil {
			t.Errorf("offer %s/%s accepted", o.NumSnim, o.Name)
		}
	}
}

func TestStoreEventsOnceAndFormsAsFiles(t *testing.T) {
	root := t.TempDir()
	s := openStore(t, root)
	defer s.Close()
	form := []byte("<?xml version=\"1.0\" encoding=\"windows-1251\"?><CargoRIWForm/>")
	sum := sha256.Sum256(form)
	evs := []*idkpb.Event{
		{Seq: 1, TimeUnixNano: t0.UnixNano(), Body: &idkpb.Event_ScanSeen{ScanSeen: &idkpb.ScanSeen{NumSnim: "S8"}}},
		{Seq: 2, TimeUnixNano: t0.UnixNano(), Body: &idkpb.Event_Form{Form: &idkpb.FormRevision{NumSnim: "S8", Revision: 1, Content: form, Sha256: sum[:]}}},
	}
	res, err := s.PutEvents(dev, 1, evs, agent, nil)
	if err != nil || res.Stored != 2 || res.Duplicates != 0 {
		t.Fatalf("first delivery: %+v %v", res, err)
	}
	res, err = s.PutEvents(dev, 1, evs, agent, nil)
	if err != nil || res.Stored != 0 || res.Duplicates != 2 {
		t.Fatalf("second delivery: %+v %v", res, err)
	}
	b, err := os.ReadFile(filepath.Join(root, "10216100", "20261123", "850591", "S8", "form-r001.xml"))
	if err != nil || !bytes.Equal(b, form) {
		t.Fatalf("form file: %v", err)
	}
	stored, _ := s.Events(dev.NumIdk)
	if len(stored) != 2 {
		t.Fatalf("events stored: %d", len(stored))
	}
	tampered := &idkpb.Event{Seq: 3, Body: &idkpb.Event_Form{Form: &idkpb.FormRevision{NumSnim: "S8", Revision: 2, Content: form, Sha256: make([]byte, 32)}}}
	if _, err := s.PutEvents(dev, 1, []*idkpb.Event{tampered}, agent, nil); err == nil {
		t.Fatal("form whose content does not match its hash accepted")
	}
}

// A rebuilt agent spool starts its sequence numbers again under a new
// epoch: those events are new, not duplicates, and a form sent again
// neither overwrites nor duplicates the stored revision.
func TestStoreKeepsEpochsApartAndFormsOncePerContent(t *testing.T) {
	root := t.TempDir()
	s := openStore(t, root)
	defer s.Close()
	form := []byte("<CargoRIWForm/>")
	sum := sha256.Sum256(form)
	ev := func(seq uint64) *idkpb.Event {
		return &idkpb.Event{Seq: seq, TimeUnixNano: t0.UnixNano(), Body: &idkpb.Event_Form{Form: &idkpb.FormRevision{NumSnim: "S9", Revision: 1, Content: form, Sha256: sum[:]}}}
	}
	if res, err := s.PutEvents(dev, 1, []*idkpb.Event{ev(1)}, agent, nil); err != nil || res.Stored != 1 {
		t.Fatal(res, err)
	}
	if res, err := s.PutEvents(dev, 2, []*idkpb.Event{ev(1)}, agent, nil); err != nil || res.Stored != 1 || res.Duplicates != 0 {
		t.Fatalf("seq 1 of a new epoch: %+v %v", res, err)
	}
	other := []byte("<CargoRIWForm><Decision/></CargoRIWForm>")
	osum := sha256.Sum256(other)
	e3 := &idkpb.Event{Seq: 2, Body: &idkpb.Event_Form{Form: &idkpb.FormRevision{NumSnim: "S9", Revision: 1, Content: other, Sha256: osum[:]}}}
	if _, err := s.PutEvents(dev, 2, []*idkpb.Event{e3}, agent, nil); err != nil {
		t.Fatal(err)
	}
	forms, _ := filepath.Glob(filepath.Join(root, "10216100", "*", "850591", "S9", "form-r*.xml"))
	if len(forms) != 2 {
		t.Fatalf("form files %v: want r001 (first content) and r002 (second)", forms)
	}
	if b, _ := os.ReadFile(forms[0]); !bytes.Equal(b, form) {
		t.Fatal("form-r001.xml was overwritten")
	}
	if evs, _ := s.Events(dev.NumIdk); len(evs) != 3 {
		t.Fatalf("events stored: %d, want 3", len(evs))
	}
}

// A damaged index is moved aside and rebuilt from the scan folders.
func TestStoreRebuildsDamagedIndexFromFolders(t *testing.T) {
	root := t.TempDir()
	s := openStore(t, root)
	data := []byte("an image that must not be forgotten")
	if _, err := send(t, s, offerFor("S10", "S10_1.raw", data), data, 8); err != nil {
		t.Fatal(err)
	}
	s.Close()
	os.Truncate(filepath.Join(root, "index.db"), 5000)

	s = openStore(t, root)
	defer s.Close()
	if s.Recovered == nil {
		t.Fatal("damage not reported")
	}
	if _, err := os.Stat(s.Recovered.Aside); err != nil {
		t.Fatalf("damaged index not kept: %v", err)
	}
	files, _ := s.Files(dev.NumIdk)
	if len(files) != 1 || files[0].Name != "S10_1.raw" || files[0].Size != int64(len(data)) {
		t.Fatalf("rebuilt index: %+v", files)
	}
	// The agent offering it again is told it is there.
	up, rep, err := s.Offer(dev, offerFor("S10", "S10_1.raw", data), t0)
	if err != nil || up != nil || rep.Status != idkpb.FileOfferReply_STATUS_HAVE {
		t.Fatalf("offer after rebuild: %v %v", rep, err)
	}
}

func TestStoreTakesZeroByteFile(t *testing.T) {
	s := openStore(t, t.TempDir())
	defer s.Close()
	got, err := send(t, s, offerFor("S11", "S11_1.raw", nil), nil, 1)
	if err != nil || !strings.HasSuffix(got, "/S11_1.raw") {
		t.Fatalf("zero-byte file: %q %v", got, err)
	}
}

// Two streams offering one name with different contents at the same time
// both get a name of their own: neither replaces the other.
func TestStoreReservesNameAtOffer(t *testing.T) {
	s := openStore(t, t.TempDir())
	defer s.Close()
	a, b := []byte("content A"), []byte("content B")
	upA, _, err := s.Offer(dev, offerFor("S12", "x.raw", a), t0)
	if err != nil {
		t.Fatal(err)
	}
	upB, _, err := s.Offer(dev, offerFor("S12", "x.raw", b), t0)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		up   *Upload
		data []byte
		want string
	}{{upB, b, "/x~2.raw"}, {upA, a, "/x.raw"}} {
		if err := c.up.Write(chunk(c.data, 0)); err != nil {
			t.Fatal(err)
		}
		got, err := c.up.Commit(offerFor("", "", c.data).Sha256)
		c.up.Close()
		if err != nil || !strings.HasSuffix(got, c.want) {
			t.Fatalf("stored as %q, %v; want ...%s", got, err, c.want)
		}
	}
	for _, data := range [][]byte{a, b} {
		if _, rep, err := s.Offer(dev, offerFor("S12", "x.raw", data), t0); err != nil || rep.Status != idkpb.FileOfferReply_STATUS_HAVE {
			t.Fatalf("offer again: %v %v", rep, err)
		}
	}
}

// An uploaded file named like the collector's own form revisions keeps its
// content when forms arrive.
func TestStoreFormsNeverOverwriteUploads(t *testing.T) {
	root := t.TempDir()
	s := openStore(t, root)
	defer s.Close()
	planted := []byte("uploaded, named like a form")
	if _, err := send(t, s, offerFor("S13", "form-r001.xml", planted), planted, 64); err != nil {
		t.Fatal(err)
	}
	form := []byte("<CargoRIWForm/>")
	sum := sha256.Sum256(form)
	ev := &idkpb.Event{Seq: 1, Body: &idkpb.Event_Form{Form: &idkpb.FormRevision{NumSnim: "S13", Revision: 1, Content: form, Sha256: sum[:]}}}
	if _, err := s.PutEvents(dev, 1, []*idkpb.Event{ev}, agent, nil); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, "10216100", "20261123", "850591", "S13")
	if b, _ := os.ReadFile(filepath.Join(dir, "form-r001.xml")); !bytes.Equal(b, planted) {
		t.Fatalf("the uploaded file was overwritten: %q", b)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "form-r001~2.xml")); !bytes.Equal(b, form) {
		t.Fatalf("the form was not stored beside it: %q", b)
	}
}

// Whatever size an offer claims, the free-space arithmetic does not wrap,
// and a refusal says nothing of the disk.
func TestStoreRefusesImpossibleSizes(t *testing.T) {
	s, err := Open(t.TempDir(), Options{Location: msk, Clock: simclock.New(t0), MinFree: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, size := range []uint64{^uint64(0), ^uint64(0) - 1<<20 + 1, 1 << 41} {
		o := offerFor("S14", "big.raw", []byte("x"))
		o.Size = size
		if _, _, err := s.Offer(dev, o, t0); !errors.Is(err, ErrInvalid) {
			t.Errorf("size %d: %v, want ErrInvalid", size, err)
		}
	}
	o := offerFor("S14", "big.raw", []byte("x"))
	o.Size = MaxFileSize // a terabyte: more than the test's disk has
	_, _, err = s.Offer(dev, o, t0)
	if !errors.Is(err, ErrDiskFull) {
		t.Fatalf("terabyte offer: %v, want ErrDiskFull", err)
	}
	if strings.ContainsAny(err.Error(), "0123456789/") {
		t.Fatalf("refusal discloses figures or paths: %q", err)
	}
}

// A stripe must lie inside its file, whatever the offer's numbers: one
// that starts past the end, runs past it, or wraps around is refused.
func TestStoreRefusesStripesOutsideTheFile(t *testing.T) {
	s, err := Open(t.TempDir(), Options{Location: msk, Clock: simclock.New(t0), MinFree: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	content := bytes.Repeat([]byte("x"), 100)
	for _, r := range []struct{ off, size uint64 }{{100, 1}, {0, 101}, {50, 51}, {1, ^uint64(0)}, {^uint64(0), 2}} {
		o := offerFor("S15", "img.raw", content)
		o.RangeOffset, o.RangeSize = r.off, r.size
		if _, _, err := s.Offer(dev, o, t0); !errors.Is(err, ErrInvalid) {
			t.Errorf("stripe of %d at %d in 100 bytes: %v, want ErrInvalid", r.size, r.off, err)
		}
	}
	o := offerFor("S15", "img.raw", content)
	o.RangeOffset, o.RangeSize = 50, 50
	u, rep, err := s.Offer(dev, o, t0)
	if err != nil || rep.Offset != 50 || !u.IsStripe() {
		t.Fatalf("the last half as a stripe: %v %v, want it asked from 50", rep, err)
	}
	u.Close()
}

// Bytes promised to uploads in flight count against the free space.
func TestStoreCountsPromisedBytes(t *testing.T) {
	s := openStore(t, t.TempDir())
	defer s.Close()
	o1 := offerFor("S15", "a.raw", []byte("a"))
	up, _, err := s.Offer(dev, o1, t0)
	if err != nil {
		t.Fatal(err)
	}
	defer up.Close()
	s.mu.Lock()
	promised := s.promisedLocked()
	s.mu.Unlock()
	if promised != 1 {
		t.Fatalf("promised %d bytes, want 1", promised)
	}
	s.mu.Lock()
	s.promised["someone else"] = ^uint64(0) / 2
	s.mu.Unlock()
	if _, _, err := s.Offer(dev, offerFor("S15", "b.raw", []byte("b")), t0); !errors.Is(err, ErrDiskFull) {
		t.Fatalf("offer beyond what is promised: %v, want ErrDiskFull", err)
	}
}

// A batch naming one sequence number twice is refused whole.
func TestStoreRefusesRepeatedSequence(t *testing.T) {
	s := openStore(t, t.TempDir())
	defer s.Close()
	evs := []*idkpb.Event{
		{Seq: 1, Body: &idkpb.Event_ScanSeen{ScanSeen: &idkpb.ScanSeen{NumSnim: "S16"}}},
		{Seq: 1, Body: &idkpb.Event_ScanSeen{ScanSeen: &idkpb.ScanSeen{NumSnim: "S17"}}},
	}
	if _, err := s.PutEvents(dev, 1, evs, agent, nil); !errors.Is(err, ErrInvalid) {
		t.Fatalf("repeated seq: %v, want ErrInvalid", err)
	}
	if stored, _ := s.Events(dev.NumIdk); len(stored) != 0 {
		t.Fatalf("%d events stored from a refused batch", len(stored))
	}
}

// A tree of the first layout, where two ИДК shared <KOD_TO>/<date>/<NUM_SNIM>,
// is parted by the index into folders of their own.
func TestStoreMigratesSharedFolders(t *testing.T) {
	root := t.TempDir()
	s := openStore(t, root)
	other := &idkpb.Device{NumIdk: "850592", KodTo: "10216100"}
	a, b := []byte("850591's image"), []byte("850592's image")
	if _, err := send(t, s, offerFor("S18", "a.raw", a), a, 64); err != nil {
		t.Fatal(err)
	}
	up, _, err := s.Offer(other, offerFor("S18", "b.raw", b), t0)
	if err != nil {
		t.Fatal(err)
	}
	up.Write(chunk(b, 0))
	if _, err := up.Commit(offerFor("", "", b).Sha256); err != nil {
		t.Fatal(err)
	}
	up.Close()
	// Rewrite what was stored into the first layout, as an old collector had it.
	old := filepath.Join(root, "10216100", "20261123", "S18")
	os.MkdirAll(old, 0o750)
	for _, m := range []struct{ idk, name string }{{"850591", "a.raw"}, {"850592", "b.raw"}} {
		os.Rename(filepath.Join(root, "10216100", "20261123", m.idk, "S18", m.name), filepath.Join(old, m.name))
	}
	err = s.db.Update(func(tx kv.Tx) error {
		tx.Delete(bucketMeta, keyLayout)
		for _, k := range []string{"850591/S18", "850592/S18"} {
			var sc ScanEntry
			v, _ := tx.Get(bucketScans, []byte(k))
			json.Unmarshal(v, &sc)
			sc.Dir = "10216100/20261123/S18"
			putJSON(tx, bucketScans, []byte(k), sc)
		}
		for _, k := range []string{"850591/S18/a.raw", "850592/S18/b.raw"} {
			var e FileEntry
			v, _ := tx.Get(bucketFiles, []byte(k))
			json.Unmarshal(v, &e)
			e.StoredAs = "10216100/20261123/S18/" + filepath.Base(k)
			putJSON(tx, bucketFiles, []byte(k), e)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()

	s = openStore(t, root)
	defer s.Close()
	for idk, want := range map[string][]byte{"850591": a, "850592": b} {
		files, _ := s.Files(idk)
		if len(files) != 1 || !strings.HasPrefix(files[0].StoredAs, "10216100/20261123/"+idk+"/S18/") {
			t.Fatalf("%s after migration: %+v", idk, files)
		}
		if got, _ := os.ReadFile(filepath.Join(root, files[0].StoredAs)); !bytes.Equal(got, want) {
			t.Fatalf("%s: content %q", idk, got)
		}
	}
	if _, err := os.Stat(old); !os.IsNotExist(err) {
		t.Fatalf("old shared folder still there: %v", err)
	}
	var problems []Problem
	if n, err := s.Check(func(p Problem) { problems = append(problems, p) }); err != nil || n != 2 || len(problems) != 0 {
		t.Fatalf("check after migration: %d files, %v, %v", n, problems, err)
	}
}

// Check finds a stored file changed on disk, one gone, and one nobody
// recorded.
func TestStoreCheckReportsDisagreements(t *testing.T) {
	root := t.TempDir()
	s := openStore(t, root)
	defer s.Close()
	for _, name := range []string{"a.raw", "b.raw"} {
		data := []byte("image " + name)
		if _, err := send(t, s, offerFor("S19", name, data), data, 64); err != nil {
			t.Fatal(err)
		}
	}
	dir := filepath.Join(root, "10216100", "20261123", "850591", "S19")
	os.WriteFile(filepath.Join(dir, "a.raw"), []byte("image a.rax"), 0o640)
	os.Remove(filepath.Join(dir, "b.raw"))
	os.WriteFile(filepath.Join(dir, "c.raw"), []byte("planted"), 0o640)
	got := map[string]string{}
	if _, err := s.Check(func(p Problem) { got[filepath.Base(p.Path)] = p.What }); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"a.raw": "sha256", "b.raw": "missing", "c.raw": "unindexed"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("check: %v, want %v", got, want)
	}
}

// An upload abandoned for longer than the sweep's age leaves nothing.
func TestStoreSweepsAbandonedPartials(t *testing.T) {
	root := t.TempDir()
	clk := simclock.New(t0)
	s, err := Open(root, Options{Location: msk, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	data := []byte("abandoned halfway")
	up, _, err := s.Offer(dev, offerFor("S20", "a.raw", data), t0)
	if err != nil {
		t.Fatal(err)
	}
	up.Write(chunk(data[:5], 0))
	up.Close()
	parts, _ := filepath.Glob(filepath.Join(root, ".incoming", "850591", "S20", "*.part"))
	if len(parts) != 1 {
		t.Fatalf("partials: %v", parts)
	}
	os.Chtimes(parts[0], t0, t0)
	clk.Advance(8 * 24 * time.Hour)
	if n, err := s.SweepPartials(7 * 24 * time.Hour); err != nil || n != 1 {
		t.Fatalf("sweep: %d, %v", n, err)
	}
	if _, err := os.Stat(parts[0]); !os.IsNotExist(err) {
		t.Fatal("partial file left")
	}
	// Offered again, it starts over under its own name.
	_, rep, err := s.Offer(dev, offerFor("S20", "a.raw", data), t0)
	if err != nil || rep.Status != idkpb.FileOfferReply_STATUS_SEND || rep.Offset != 0 {
		t.Fatalf("after sweep: %v %v", rep, err)
	}
}

// A missing index beside stored scans is rebuilt too, each file credited
// to the ИДК its folder names.
func TestStoreRebuildsMissingIndex(t *testing.T) {
	root := t.TempDir()
	s := openStore(t, root)
	data := []byte("kept while the index went missing")
	if _, err := send(t, s, offerFor("S21", "a.raw", data), data, 8); err != nil {
		t.Fatal(err)
	}
	s.Close()
	os.Remove(filepath.Join(root, "index.db"))
	s = openStore(t, root)
	defer s.Close()
	if files, _ := s.Files("850591"); len(files) != 1 || s.Recovered == nil {
		t.Fatalf("after the index went missing: %+v, recovered %v", files, s.Recovered)
	}
}

// A name reserved for an offer refused for space, with no partial file,
// is dropped by the sweep too.
func TestStoreSweepsReservationsWithoutPartial(t *testing.T) {
	clk := simclock.New(t0)
	s, err := Open(t.TempDir(), Options{Location: msk, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.mu.Lock()
	s.promised["someone else"] = ^uint64(0) / 2
	s.mu.Unlock()
	if _, _, err := s.Offer(dev, offerFor("S22", "a.raw", []byte("a")), t0); !errors.Is(err, ErrDiskFull) {
		t.Fatalf("offer: %v, want ErrDiskFull", err)
	}
	pending := func() (n int) {
		s.db.View(func(tx kv.Tx) error {
			return tx.Scan(bucketPending, nil, nil, false, func(_, _ []byte) error { n++; return nil })
		})
		return n
	}
	if pending() != 1 {
		t.Fatalf("%d reservations, want the refused offer's", pending())
	}
	clk.Advance(8 * 24 * time.Hour)
	if _, err := s.SweepPartials(7 * 24 * time.Hour); err != nil {
		t.Fatal(err)
	}
	if n := pending(); n != 0 {
		t.Fatalf("%d reservations left after the sweep", n)
	}
	err = s.db.View(func(tx kv.Tx) error {
		if v, err := tx.Get(bucketFiles, []byte("850591/S22/a.raw")); err != nil || v != nil {
			return fmt.Errorf("the reserved name is still in the index (%v)", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// A reported step of an incident is kept as first reported, across a
// restart: a second report of the same step changes nothing.
func TestStepsFirstReportStands(t *testing.T) {
	root := t.TempDir()
	s := openStore(t, root)
	if err := s.SaveStep("850591", "850591-1", "request", "ПЕТРОВ", t0); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveStep("850591", "850591-1", "request", "СИДОРОВ", t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveStep("850591", "850591-1", "head", "ИВАНОВ", t0.Add(2*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, root)
	defer s.Close()
	steps, err := s.Steps()
	if err != nil || len(steps) != 2 {
		t.Fatalf("steps after reopening: %+v %v", steps, err)
	}
	got := map[string]Ack{}
	for _, a := range steps {
		got[a.Step] = a
	}
	if r := got["request"]; r.By != "ПЕТРОВ" || !r.At.Equal(t0) || r.ID != "850591-1" || r.NumIDK != "850591" {
		t.Errorf("request step: %+v, want the first report", r)
	}
	if h := got["head"]; h.By != "ИВАНОВ" {
		t.Errorf("head step: %+v", h)
	}
	if acks, _ := s.Acks(); len(acks) != 0 {
		t.Errorf("steps read as acknowledgements: %+v", acks)
	}
}
