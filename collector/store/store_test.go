package store

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"hash/crc32"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"idk/protocol/idkpb"
)

var (
	dev   = &idkpb.Device{NumIdk: "850591", KodTo: "10216100"}
	msk   = time.FixedZone("MSK", 3*3600)
	t0    = time.Date(2026, 11, 22, 23, 30, 0, 0, time.UTC) // 02:30 on the 23rd in Moscow
	agent = func(n int64) time.Time { return time.Unix(0, n) }
)

func openStore(t *testing.T, root string) *Store {
	t.Helper()
	s, err := Open(root, Options{Location: msk, Now: func() time.Time { return t0 }})
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
	want := "10216100/20261123/202611230001/202611230001_1.raw"
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
	parts, _ := filepath.Glob(filepath.Join(root, ".incoming", dev.NumIdk, "*.part"))
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
	dir := filepath.Join(root, "10216100", "20261123", "S5")
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
	aside, _ := filepath.Glob(filepath.Join(dir, "S5_2.raw.orphan-*"))
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
	res, err := s.PutEvents(dev, 1, evs, agent)
	if err != nil || res.Stored != 2 || res.Duplicates != 0 {
		t.Fatalf("first delivery: %+v %v", res, err)
	}
	res, err = s.PutEvents(dev, 1, evs, agent)
	if err != nil || res.Stored != 0 || res.Duplicates != 2 {
		t.Fatalf("second delivery: %+v %v", res, err)
	}
	b, err := os.ReadFile(filepath.Join(root, "10216100", "20261123", "S8", "form-r001.xml"))
	if err != nil || !bytes.Equal(b, form) {
		t.Fatalf("form file: %v", err)
	}
	stored, _ := s.Events(dev.NumIdk)
	if len(stored) != 2 {
		t.Fatalf("events stored: %d", len(stored))
	}
	tampered := &idkpb.Event{Seq: 3, Body: &idkpb.Event_Form{Form: &idkpb.FormRevision{NumSnim: "S8", Revision: 2, Content: form, Sha256: make([]byte, 32)}}}
	if _, err := s.PutEvents(dev, 1, []*idkpb.Event{tampered}, agent); err == nil {
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
	if res, err := s.PutEvents(dev, 1, []*idkpb.Event{ev(1)}, agent); err != nil || res.Stored != 1 {
		t.Fatal(res, err)
	}
	if res, err := s.PutEvents(dev, 2, []*idkpb.Event{ev(1)}, agent); err != nil || res.Stored != 1 || res.Duplicates != 0 {
		t.Fatalf("seq 1 of a new epoch: %+v %v", res, err)
	}
	other := []byte("<CargoRIWForm><Decision/></CargoRIWForm>")
	osum := sha256.Sum256(other)
	e3 := &idkpb.Event{Seq: 2, Body: &idkpb.Event_Form{Form: &idkpb.FormRevision{NumSnim: "S9", Revision: 1, Content: other, Sha256: osum[:]}}}
	if _, err := s.PutEvents(dev, 2, []*idkpb.Event{e3}, agent); err != nil {
		t.Fatal(err)
	}
	forms, _ := filepath.Glob(filepath.Join(root, "10216100", "*", "S9", "form-r*.xml"))
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
