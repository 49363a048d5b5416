package store

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"idk/collector/kv"
	"idk/protocol/idkpb"
	"idk/simulator/simclock"
)

// putScanFile stores data as a file of scan numSnim made at scanTime.
func putScanFile(t *testing.T, s *Store, numSnim, name string, data []byte, scanTime time.Time) string {
	t.Helper()
	o := offerFor(numSnim, name, data)
	up, rep, err := s.Offer(dev, o, scanTime)
	if err != nil {
		t.Fatal(err)
	}
	defer up.Close()
	if err := up.Write(chunk(data[rep.Offset:], int(rep.Offset))); err != nil {
		t.Fatal(err)
	}
	p, err := up.Commit(o.Sha256)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestRetentionMonthsAndRemove: Months counts each month's files and
// says which are past three years; RemoveMonth refuses a month younger
// than three years from its last day, and removes an expired one's files
// and index entries after writing a record of each file with its
// SHA-256, leaving the other months alone.
func TestRetentionMonthsAndRemove(t *testing.T) {
	root := t.TempDir()
	// 31 October 2026, 23:59 in Moscow: October 2023's last day is not
	// yet three years old.
	clk := simclock.New(time.Date(2026, 10, 31, 23, 59, 0, 0, msk))
	s, err := Open(root, Options{Location: msk, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	oct := time.Date(2023, 10, 31, 23, 0, 0, 0, msk) // the month's last evening
	nov := time.Date(2023, 11, 1, 0, 30, 0, 0, msk)
	raw1, raw2, doc := bytes.Repeat([]byte("a"), 1000), bytes.Repeat([]byte("b"), 500), []byte("scan of a waybill")
	p1 := putScanFile(t, s, "202310310001", "202310310001_1.raw", raw1, oct)
	p2 := putScanFile(t, s, "202310310001", "doc_001.jpg", doc, oct)
	p3 := putScanFile(t, s, "202310050007", "202310050007_1.raw", raw2, time.Date(2023, 10, 5, 9, 0, 0, 0, msk))
	keep := putScanFile(t, s, "202311010001", "202311010001_1.raw", raw1, nov)
	// A form, stored through the events, belongs to its scan's month.
	form := []byte("<form/>")
	sum := sha256Of(form)
	if _, err := s.PutEvents(dev, 1, []*idkpb.Event{{Seq: 1, TimeUnixNano: oct.UnixNano(), Body: &idkpb.Event_Form{Form: &idkpb.FormRevision{
		NumSnim: "202310310001", Revision: 1, Content: form, Sha256: sum}}}}, agent, nil); err != nil {
		t.Fatal(err)
	}
	// A file the index never recorded, in one of the month's folders.
	stray := "10216100/20231005/850591/202310050007/stray.bin"
	if err := os.WriteFile(filepath.Join(root, filepath.FromSlash(stray)), []byte("stray"), 0o640); err != nil {
		t.Fatal(err)
	}

	months, err := s.Months()
	if err != nil {
		t.Fatal(err)
	}
	if len(months) != 2 || months[0].Month != "2023-10" || months[0].Files != 4 || months[0].Bytes != int64(len(raw1)+len(raw2)+len(doc)+len(form)) ||
		months[0].Expired || months[1].Month != "2023-11" || months[1].Files != 1 || months[1].Expired {
		t.Fatalf("months: %+v", months)
	}
	if want := time.Date(2026, 11, 1, 0, 0, 0, 0, msk); !months[0].Removable.Equal(want) {
		t.Errorf("October 2023 removable from %v, want %v", months[0].Removable, want)
	}

	// A minute before its last day is three years old: refused, nothing touched.
	if _, err := s.RemoveMonth("2023-10", "Иванов"); !errors.Is(err, ErrTooYoung) {
		t.Fatalf("remove a month not yet three years old: %v, want ErrTooYoung", err)
	}
	if _, err := os.Stat(filepath.Join(root, RetentionDir)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a refused removal left a record: %v", err)
	}
	if _, err := s.RemoveMonth("2023-10", ""); err == nil {
		t.Error("removal by nobody accepted")
	}

	clk.Advance(time.Minute) // 1 November 2026, 00:00
	if m, _ := s.Months(); !m[0].Expired || m[1].Expired {
		t.Fatalf("after midnight: %+v", m)
	}
	if _, err := s.RemoveMonth("2023-11", "Иванов"); !errors.Is(err, ErrTooYoung) {
		t.Fatalf("remove November 2023: %v, want ErrTooYoung", err)
	}
	rm, err := s.RemoveMonth("2023-10", "Иванов")
	if err != nil {
		t.Fatal(err)
	}
	if rm.Scans != 2 || rm.Files != 5 || len(rm.List) != 5 || rm.By != "Иванов" {
		t.Errorf("removal: %+v", rm)
	}

	// The record lists every file with the SHA-256 of what was removed.
	data, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(rm.Record)))
	if err != nil {
		t.Fatal(err)
	}
	var rec Removal
	if err := json.Unmarshal(data, &rec); err != nil {
		t.Fatal(err)
	}
	got := map[string]RemovedFile{}
	for _, f := range rec.List {
		got[f.Path] = f
	}
	for p, content := range map[string][]byte{p1: raw1, p2: doc, p3: raw2, stray: []byte("stray")} {
		if f, ok := got[p]; !ok || f.SHA256 != hexSHA(content) || f.Size != int64(len(content)) {
			t.Errorf("record of %s: %+v", p, f)
		}
	}
	if !got[stray].Unindexed || got[p1].NumSnim != "202310310001" || rec.Month != "2023-10" || rec.By != "Иванов" {
		t.Errorf("record: %+v", rec)
	}

	// Gone from disk and from the index; November stays.
	for _, p := range []string{p1, p2, p3, stray, "10216100/20231031", "10216100/20231005"} {
		if _, err := os.Stat(filepath.Join(root, filepath.FromSlash(p))); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s still there: %v", p, err)
		}
	}
	if _, err := os.Stat(filepath.Join(root, filepath.FromSlash(keep))); err != nil {
		t.Errorf("November's file: %v", err)
	}
	files, err := s.Files("")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 1 || files[0].StoredAs != keep {
		t.Errorf("index after removal: %+v", files)
	}
	if m, _ := s.Months(); len(m) != 1 || m[0].Month != "2023-11" {
		t.Errorf("months after removal: %+v", m)
	}
	bad := 0
	if _, err := s.Check(func(p Problem) { bad++; t.Errorf("check after removal: %+v", p) }); err != nil || bad != 0 {
		t.Errorf("check: %v", err)
	}
	// Again: nothing left, no second record.
	if rm, err := s.RemoveMonth("2023-10", "Иванов"); err != nil || rm.Record != "" || len(rm.List) != 0 {
		t.Errorf("second removal: %+v, %v", rm, err)
	}
	// The same scan offered again (an agent rebuilt its spool) is a new
	// scan, not a reference to a removed file.
	up, rep, err := s.Offer(dev, offerFor("202310310001", "202310310001_1.raw", raw1), oct)
	if err != nil || up == nil || rep.Status != idkpb.FileOfferReply_STATUS_SEND {
		t.Errorf("offer after removal: %v %v", rep, err)
	}
	if up != nil {
		up.Close()
	}

}

// TestRetentionRemovesLeftoversOfACrash: files the index no longer lists
// (a removal that crashed after its index transaction) are removed by
// the next run, and recorded as unindexed.
func TestRetentionRemovesLeftoversOfACrash(t *testing.T) {
	root := t.TempDir()
	clk := simclock.New(time.Date(2027, 1, 1, 0, 0, 0, 0, msk))
	s, err := Open(root, Options{Location: msk, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	p := putScanFile(t, s, "202312010001", "202312010001_1.raw", []byte("left"), time.Date(2023, 12, 1, 10, 0, 0, 0, msk))
	// The crash: the index forgot the scan, the file stayed.
	err = s.db.Update(func(tx kv.Tx) error {
		for _, b := range []string{bucketFiles, bucketHashes, bucketScans} {
			if err := deletePrefix(tx, b, []byte(dev.NumIdk+"/")); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	rm, err := s.RemoveMonth("2023-12", "Петров")
	if err != nil {
		t.Fatal(err)
	}
	if len(rm.List) != 1 || rm.List[0].Path != p || !rm.List[0].Unindexed || rm.List[0].SHA256 != hexSHA([]byte("left")) {
		t.Errorf("removal: %+v", rm)
	}
	if _, err := os.Stat(filepath.Join(root, "10216100", "20231201")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("date folder still there: %v", err)
	}
}

func sha256Of(b []byte) []byte {
	s := sha256.Sum256(b)
	return s[:]
}

func hexSHA(b []byte) string { return hex.EncodeToString(sha256Of(b)) }
