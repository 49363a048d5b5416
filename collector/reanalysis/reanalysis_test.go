package reanalysis

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"net/http"
	"net/http/httptest"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"idk/collector/blob"
	"idk/collector/cases"
	"idk/collector/ingest"
	"idk/collector/report"
	"idk/collector/store"
	"idk/protocol/idkpb"
	"idk/simulator/simclock"
)

var (
	msk  = time.FixedZone("MSK", 3*3600)
	devA = &idkpb.Device{NumIdk: "850591", TypeIdk: 2, KodTo: "10216100", NaimTo: "БАЛТИЙСКАЯ", NaimZtk: "ПКТ", DislIdk: 2}
	devB = &idkpb.Device{NumIdk: "850592", TypeIdk: 1, KodTo: "10216100", NaimTo: "БАЛТИЙСКАЯ", NaimZtk: "МАПП", DislIdk: 1}
	// scanned is when the scans were made; the re-analysis is a month on.
	scanned = time.Date(2026, 10, 20, 10, 0, 0, 0, msk)
	now     = time.Date(2026, 11, 23, 15, 0, 0, 0, msk)
)

// facts are the cases' risk profiles by NUM_IDK "/" NUM_SNIM.
type facts map[string]cases.ScanFacts

func (f facts) ScanFacts(numIDK, numSnim string) (cases.ScanFacts, bool, error) {
	s, ok := f[numIDK+"/"+numSnim]
	return s, ok, nil
}

// fixture is a collector: a real store, its index with the scan journal
// consuming the events, the report's entries over the same index, and
// the re-analysis API.
type fixture struct {
	t       *testing.T
	st      *store.Store
	in      *ingest.Ingest
	entries *report.Entries
	rec     *Recorder
	srv     *httptest.Server
	root    string // the re-analysis tree's root
	seq     map[string]uint64
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	return newFixtureWith(t, nil)
}

// newFixtureWith is newFixture with the store's files in files (nil: under
// the store's root).
func newFixtureWith(t *testing.T, files blob.Store) *fixture {
	t.Helper()
	dir := t.TempDir()
	clk := simclock.New(now)
	st, err := store.Open(filepath.Join(dir, "store"), store.Options{Location: msk, Clock: clk, Files: files})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	log := ingest.FromStore(st)
	j := report.NewScanJournal(msk)
	in := ingest.New(ingest.Config{Log: log, Consumers: map[string]ingest.Consumer{"report.scans": j}})
	if err := in.Load(); err != nil {
		t.Fatal(err)
	}
	j.Use(log)
	entries := report.NewEntries(log, j, msk, clk)
	f := &fixture{t: t, st: st, in: in, entries: entries, root: filepath.Join(dir, "rtu"), seq: map[string]uint64{}}
	ff := facts{"850591/S0001": {Risk: cases.RiskProfile{NumPr: "10001"}}}
	f.rec, err = New(Config{
		Root: f.root, StoreRoot: st.Root(), Files: st, Events: st, Entries: entries, DB: log,
		Scans:    JournalScans{Journal: j, Index: log, Facts: ff},
		Location: msk, Clock: clk,
	})
	if err != nil {
		t.Fatal(err)
	}
	f.srv = httptest.NewServer(f.rec.Handler())
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fixture) event(dev *idkpb.Device, at time.Time, ev *idkpb.Event) {
	f.t.Helper()
	f.seq[dev.NumIdk]++
	ev.Seq = f.seq[dev.NumIdk]
	ev.TimeUnixNano = at.UnixNano()
	if _, err := f.in.Ingest(dev, 1, []*idkpb.Event{ev}, func(n int64) time.Time { return time.Unix(0, n) }); err != nil {
		f.t.Fatal(err)
	}
}

// scan makes a scan as an agent delivers it: seen, a form with the
// operator's decision, and its files uploaded through the store's API.
func (f *fixture) scan(dev *idkpb.Device, at time.Time, snim string, d idkpb.Decision, files map[string]string) {
	f.t.Helper()
	f.event(dev, at, &idkpb.Event{Body: &idkpb.Event_ScanSeen{ScanSeen: &idkpb.ScanSeen{NumSnim: snim}}})
	content := []byte("<CargoRIWForm/>")
	sum := sha256.Sum256(content)
	f.event(dev, at, &idkpb.Event{Body: &idkpb.Event_Form{Form: &idkpb.FormRevision{NumSnim: snim, Revision: 1, Content: content, Sha256: sum[:],
		Form: &idkpb.Form{NumSnim: snim, Decision: d}}}})
	for name, data := range files {
		f.upload(dev, at, snim, name, []byte(data))
	}
}

func (f *fixture) upload(dev *idkpb.Device, at time.Time, snim, name string, data []byte) {
	f.t.Helper()
	sum := sha256.Sum256(data)
	o := &idkpb.FileOffer{NumSnim: snim, Name: name, Kind: idkpb.FileKind_FILE_KIND_RAW, Size: uint64(len(data)), Sha256: sum[:], ScanTimeUnixNano: at.UnixNano()}
	up, rep, err := f.st.Offer(dev, o, at)
	if err != nil {
		f.t.Fatal(err)
	}
	if up == nil {
		return
	}
	defer up.Close()
	chunk := data[rep.Offset:]
	if err := up.Write(&idkpb.Chunk{Offset: rep.Offset, Data: chunk, Crc32C: crc32.Checksum(chunk, crc32.MakeTable(crc32.Castagnoli))}); err != nil {
		f.t.Fatal(err)
	}
	if _, err := up.Commit(sum[:]); err != nil {
		f.t.Fatal(err)
	}
}

// call sends a request to the API and decodes the answer into out.
func (f *fixture) call(method, p string, body any, out any) int {
	f.t.Helper()
	var rd *bytes.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			f.t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	} else {
		rd = bytes.NewReader(nil)
	}
	req, err := http.NewRequest(method, f.srv.URL+p, rd)
	if err != nil {
		f.t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	if out != nil {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			f.t.Fatalf("%s %s: %d, undecodable answer: %v", method, p, resp.StatusCode, err)
		}
	}
	return resp.StatusCode
}

// storedRaw is the store index's RAW files by NUM_SNIM.
func (f *fixture) storedRaw(numIDK string) map[string][]store.FileEntry {
	f.t.Helper()
	files, err := f.st.Files(numIDK)
	if err != nil {
		f.t.Fatal(err)
	}
	out := map[string][]store.FileEntry{}
	for _, e := range files {
		if e.Kind == "raw" {
			out[e.NumSnim] = append(out[e.NumSnim], e)
		}
	}
	return out
}

func sha(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// checkTree checks that dir (under the tree's root) holds exactly want,
// name → SHA-256.
func (f *fixture) checkTree(dir string, want map[string]string) {
	f.t.Helper()
	got := map[string]string{}
	base := filepath.Join(f.root, filepath.FromSlash(dir))
	err := filepath.WalkDir(base, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(base, p)
		got[filepath.ToSlash(rel)] = sha(f.t, p)
		return nil
	})
	if err != nil {
		f.t.Fatal(err)
	}
	if len(got) != len(want) {
		f.t.Errorf("%s holds %d files, want %d:\n got %v\nwant %v", dir, len(got), len(want), got, want)
	}
	for name, sum := range want {
		if got[name] != sum {
			f.t.Errorf("%s/%s: SHA-256 %q, want %q", dir, name, got[name], sum)
		}
	}
}

const body = "10200000" // the РТУ's re-analysis unit

func TestSessionLaysOutTreeAndWritesTables5And6(t *testing.T) {
	f := newFixture(t)
	f.scan(devA, scanned, "S0001", idkpb.Decision_DECISION_NOT_SUSPECTED, map[string]string{"S0001_1.raw": "raw one", "S0001_2.raw": "raw two"})
	f.scan(devA, scanned.Add(time.Minute), "S0002", idkpb.Decision_DECISION_SUSPECTED, map[string]string{"S0002_1.raw": "raw three"})
	f.scan(devB, scanned.Add(2*time.Minute), "S0003", idkpb.Decision_DECISION_NOT_SUSPECTED, map[string]string{"S0003_1.raw": "raw four"})
	// The agent noticed a file of S0002 changed: a lead, not a result.
	f.event(devA, scanned.Add(time.Hour), &idkpb.Event{Body: &idkpb.Event_Integrity{Integrity: &idkpb.Integrity{
		Kind: idkpb.Integrity_KIND_CHANGED, NumSnim: "S0002", Name: "S0002_1.raw", FirstSha256: []byte{1}, NowSha256: []byte{2}}}})

	// The analyst selects: every scan of the post in October, then the
	// suspected ones, then by risk profile.
	var sel struct {
		Scans     []Scan `json:"scans"`
		Truncated bool   `json:"truncated"`
	}
	q := "/api/v1/reanalysis/scans?kod_to=10216100&from=01.10.2026&to=31.10.2026"
	if code := f.call("GET", q, nil, &sel); code != 200 || len(sel.Scans) != 3 {
		t.Fatalf("select: %d %+v", code, sel)
	}
	if code := f.call("GET", q+"&rez=2", nil, &sel); code != 200 || len(sel.Scans) != 1 || sel.Scans[0].NumSnim != "S0002" || sel.Scans[0].DateSys != "20.10.2026" {
		t.Fatalf("select rez=2: %d %+v", code, sel)
	}
	if code := f.call("GET", q+"&num_pr=10001", nil, &sel); code != 200 || len(sel.Scans) != 1 || sel.Scans[0].NumSnim != "S0001" {
		t.Fatalf("select num_pr: %d %+v", code, sel)
	}
	if code := f.call("GET", q+"&num_idk=850592", nil, &sel); code != 200 || len(sel.Scans) != 1 || sel.Scans[0].NumSnim != "S0003" {
		t.Fatalf("select num_idk: %d %+v", code, sel)
	}
	var leads struct {
		Leads []Lead `json:"leads"`
	}
	if code := f.call("GET", q, nil, &leads); code != 200 {
		t.Fatal(code)
	}
	if code := f.call("GET", strings.Replace(q, "/scans", "/leads", 1), nil, &leads); code != 200 || len(leads.Leads) != 1 ||
		leads.Leads[0].Kind != "changed" || leads.Leads[0].NumSnim != "S0002" || leads.Leads[0].NumIDK != "850591" {
		t.Fatalf("leads: %d %+v", code, leads)
	}

	req := Request{
		FIO: "ИВАНОВ ИВАН ИВАНОВИЧ", LNP: "283", KodTO: body, Date: "23.11.2026",
		Scans:       []ScanRef{{NumIDK: "850591", NumSnim: "S0001"}, {NumSnim: "S0002"}},
		Substituted: []ScanRef{{NumSnim: "S0002"}},
		Violations: []Violation{
			{ScanRef: ScanRef{NumSnim: "S0002"}, Opisanie: "В РЕЗУЛЬТАТЕ ПОВТОРНОГО АНАЛИЗА УСТАНОВЛЕНО, ЧТО ГРУЗА БОЛЬШЕ", Rez: "0"},
			{ScanRef: ScanRef{NumSnim: "S0001"}, Opisanie: "СНИМОК НЕ ПРОАНАЛИЗИРОВАН", Rez: "9", DateSysR: "25.11.2026"},
		},
		DraftProfiles: 1,
	}
	var s Session
	if code := f.call("POST", "/api/v1/reanalysis/sessions", req, &s); code != http.StatusCreated {
		t.Fatalf("record: %d %+v", code, s)
	}
	folder := Section + "/" + body + "/20261123"
	if s.ID != "RA-000001" || s.Folder != folder || len(s.Problems) != 0 || s.By != "ИВАНОВ ИВАН ИВАНОВИЧ" {
		t.Fatalf("session: %+v", s)
	}

	// Item 11: every RAW file of each scan, under its NUM_SNIM, with the
	// content the store's index has, as a hard link to the stored file.
	raw := f.storedRaw("850591")
	want := map[string]string{}
	for _, snim := range []string{"S0001", "S0002"} {
		for _, e := range raw[snim] {
			name := snim + "/" + path.Base(e.StoredAs)
			want[name] = e.SHA256
			laid, err := os.Stat(filepath.Join(f.root, filepath.FromSlash(folder), filepath.FromSlash(name)))
			if err != nil {
				t.Fatal(err)
			}
			stored, err := os.Stat(filepath.Join(f.st.Root(), filepath.FromSlash(e.StoredAs)))
			if err != nil {
				t.Fatalf("the archive's file: %v", err)
			}
			if !os.SameFile(laid, stored) {
				t.Errorf("%s is not a hard link to %s", name, e.StoredAs)
			}
		}
	}
	if len(want) != 3 {
		t.Fatalf("store index has %d RAW files of the two scans, want 3", len(want))
	}
	f.checkTree(folder, want)
	if len(s.Files) != 3 {
		t.Fatalf("session files: %+v", s.Files)
	}
	for _, p := range s.Files {
		if p.How != "link" || want[strings.TrimPrefix(p.Path, folder+"/")] != p.SHA256 {
			t.Errorf("placed: %+v", p)
		}
	}

	// Tables 5 and 6, through the report's entries.
	from, to := time.Date(2026, 11, 1, 0, 0, 0, 0, msk), time.Date(2026, 12, 1, 0, 0, 0, 0, msk)
	t5, err := f.entries.Latest(5, body, from, to)
	if err != nil {
		t.Fatal(err)
	}
	want5 := map[string]string{"KOD_TO": body, "DATE_SYS": "23.11.2026", "KOL_VO_PR_SNIM": "2", "KOL_VO_NAR": "2",
		"KOL_VO_OT_SNIM": "0", "KOL_VO_POD_SNIM": "1", "KOL_VO_PPR": "1", "KOL_VO_UPR": "0", "KOL_VO_EPR": "0",
		"FIO": "ИВАНОВ ИВАН ИВАНОВИЧ", "LNP": "283"}
	if len(t5) != 1 || t5[0].ID != s.Table5 || fmt.Sprint(t5[0].Fields) != fmt.Sprint(want5) {
		t.Fatalf("table 5: %+v, want one row %v (%s)", t5, want5, s.Table5)
	}
	t6, err := f.entries.Latest(6, body, from, to)
	if err != nil {
		t.Fatal(err)
	}
	if len(t6) != 2 {
		t.Fatalf("table 6: %+v", t6)
	}
	want6 := []map[string]string{
		{"KOD_TO": body, "DATE_SYS_V": "23.11.2026", "NUM_SNIM": "S0002", "OPISANIE": req.Violations[0].Opisanie, "REZ": "0", "FIO": "ИВАНОВ ИВАН ИВАНОВИЧ", "LNP": "283"},
		{"KOD_TO": body, "DATE_SYS_V": "23.11.2026", "NUM_SNIM": "S0001", "OPISANIE": req.Violations[1].Opisanie, "REZ": "9", "DATE_SYS_R": "25.11.2026", "FIO": "ИВАНОВ ИВАН ИВАНОВИЧ", "LNP": "283"},
	}
	for i, en := range t6 {
		if en.ID != s.Violations[i].Entry || fmt.Sprint(en.Fields) != fmt.Sprint(want6[i]) {
			t.Errorf("table 6 row %d: %+v, want %v (%s)", i, en, want6[i], s.Violations[i].Entry)
		}
	}

	// The session reads back as recorded.
	var got Session
	if code := f.call("GET", "/api/v1/reanalysis/sessions/"+s.ID, nil, &got); code != 200 || got.Table5 != s.Table5 || len(got.Files) != 3 || got.Violations[1].Entry != s.Violations[1].Entry {
		t.Fatalf("get session: %d %+v", code, got)
	}
	var list struct {
		Sessions []Session `json:"sessions"`
	}
	if code := f.call("GET", "/api/v1/reanalysis/sessions?kod_to="+body+"&from=23.11.2026&to=23.11.2026", nil, &list); code != 200 || len(list.Sessions) != 1 {
		t.Fatalf("list sessions: %d %+v", code, list)
	}
	if code := f.call("GET", "/api/v1/reanalysis/sessions/RA-000009", nil, nil); code != http.StatusNotFound {
		t.Errorf("unknown session: %d", code)
	}
	// The archive is as it was: every stored file in place, same content.
	for _, files := range raw {
		for _, e := range files {
			if got := sha(t, filepath.Join(f.st.Root(), filepath.FromSlash(e.StoredAs))); got != e.SHA256 {
				t.Errorf("archive file %s changed", e.StoredAs)
			}
		}
	}
}

func TestSecondSessionOfTheDayAddsWithoutClobbering(t *testing.T) {
	f := newFixture(t)
	f.scan(devA, scanned, "S0001", idkpb.Decision_DECISION_NOT_SUSPECTED, map[string]string{"S0001_1.raw": "raw one"})
	f.scan(devA, scanned, "S0002", idkpb.Decision_DECISION_NOT_SUSPECTED, map[string]string{"S0002_1.raw": "raw two"})
	f.scan(devB, scanned, "S0003", idkpb.Decision_DECISION_NOT_SUSPECTED, map[string]string{"S0003_1.raw": "raw three"})
	first := Request{FIO: "ИВАНОВ ИВАН ИВАНОВИЧ", LNP: "283", KodTO: body, Date: "23.11.2026", Scans: []ScanRef{{NumSnim: "S0001"}, {NumSnim: "S0002"}}}
	var s1, s2 Session
	if code := f.call("POST", "/api/v1/reanalysis/sessions", first, &s1); code != http.StatusCreated {
		t.Fatalf("first: %d %+v", code, s1)
	}
	folder := s1.Folder
	// Someone put another file where S0003's RAW file would go.
	intruder := filepath.Join(f.root, filepath.FromSlash(folder), "S0003", "S0003_1.raw")
	if err := os.MkdirAll(filepath.Dir(intruder), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(intruder, []byte("not the scan"), 0o640); err != nil {
		t.Fatal(err)
	}
	second := Request{FIO: "ПЕТРОВ ПЕТР ПЕТРОВИЧ", LNP: "056", KodTO: body, Date: "23.11.2026", Scans: []ScanRef{{NumSnim: "S0002"}, {NumSnim: "S0003"}}, Missing: []ScanRef{{NumSnim: "S0003"}}}
	if code := f.call("POST", "/api/v1/reanalysis/sessions", second, &s2); code != http.StatusCreated {
		t.Fatalf("second: %d %+v", code, s2)
	}
	if s2.ID != "RA-000002" || s2.Folder != folder {
		t.Fatalf("second session: %+v", s2)
	}
	how := map[string]string{}
	for _, p := range s2.Files {
		how[p.Path] = p.How
	}
	if how[folder+"/S0002/S0002_1.raw"] != "present" || how[folder+"/S0003/S0003_1~2.raw"] != "link" || len(how) != 2 {
		t.Fatalf("second session placed %v", how)
	}
	a, b := f.storedRaw("850591"), f.storedRaw("850592")
	f.checkTree(folder, map[string]string{
		"S0001/S0001_1.raw":   a["S0001"][0].SHA256,
		"S0002/S0002_1.raw":   a["S0002"][0].SHA256,
		"S0003/S0003_1.raw":   sha(t, intruder), // kept as it was
		"S0003/S0003_1~2.raw": b["S0003"][0].SHA256,
	})
	if got, _ := os.ReadFile(intruder); string(got) != "not the scan" {
		t.Errorf("a file already in the folder was replaced: %q", got)
	}
	// Two table 5 rows for the day, one per session.
	t5, err := f.entries.Latest(5, body, time.Date(2026, 11, 23, 0, 0, 0, 0, msk), time.Date(2026, 11, 24, 0, 0, 0, 0, msk))
	if err != nil {
		t.Fatal(err)
	}
	if len(t5) != 2 || t5[1].Fields["KOL_VO_PR_SNIM"] != "2" || t5[1].Fields["KOL_VO_OT_SNIM"] != "1" || t5[1].Fields["LNP"] != "056" {
		t.Fatalf("table 5: %+v", t5)
	}
}

func TestCopyWhenNoLinkIsPossible(t *testing.T) {
	f := newFixture(t)
	f.rec.link = func(string, string) error { return &os.LinkError{Op: "link", Err: syscall.EXDEV} }
	f.scan(devA, scanned, "S0001", idkpb.Decision_DECISION_NOT_SUSPECTED, map[string]string{"S0001_1.raw": "raw one"})
	s, err := f.rec.Record(Request{FIO: "ИВАНОВ И.И.", LNP: "283", KodTO: body, Date: "23.11.2026", Scans: []ScanRef{{NumSnim: "S0001"}}})
	if err != nil {
		t.Fatal(err)
	}
	e := f.storedRaw("850591")["S0001"][0]
	if len(s.Files) != 1 || s.Files[0].How != "copy" {
		t.Fatalf("placed %+v", s.Files)
	}
	laid := filepath.Join(f.root, filepath.FromSlash(s.Files[0].Path))
	li, _ := os.Stat(laid)
	si, _ := os.Stat(filepath.Join(f.st.Root(), filepath.FromSlash(e.StoredAs)))
	if li == nil || si == nil || os.SameFile(li, si) || sha(t, laid) != e.SHA256 {
		t.Fatalf("copy: %v %v", li, si)
	}
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(laid), ".copy-*")); len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
	// Laid out again (a retry): recognised by content, not copied twice.
	s, err = f.rec.Record(Request{FIO: "ИВАНОВ И.И.", LNP: "283", KodTO: body, Date: "23.11.2026", Scans: []ScanRef{{NumSnim: "S0001"}}})
	if err != nil || s.Files[0].How != "present" {
		t.Fatalf("again: %+v %v", s.Files, err)
	}
}

// With the store's files outside its root (a bucket; here a blob.Local
// tree), nothing can be linked: each file is read through the store,
// checked, and copied; an altered one is a problem, not laid out.
func TestCopyFromFilesOutsideTheStoreRoot(t *testing.T) {
	tree := t.TempDir()
	files, err := blob.NewLocal(tree)
	if err != nil {
		t.Fatal(err)
	}
	f := newFixtureWith(t, files)
	f.rec.link = func(string, string) error {
		t.Error("hard link tried with the files outside the store root")
		return nil
	}
	f.scan(devA, scanned, "S0001", idkpb.Decision_DECISION_NOT_SUSPECTED, map[string]string{"S0001_1.raw": "raw one"})
	f.scan(devA, scanned, "S0002", idkpb.Decision_DECISION_NOT_SUSPECTED, map[string]string{"S0002_1.raw": "raw two"})
	req := Request{FIO: "ИВАНОВ И.И.", LNP: "283", KodTO: body, Date: "23.11.2026", Scans: []ScanRef{{NumSnim: "S0001"}}}
	s, err := f.rec.Record(req)
	if err != nil {
		t.Fatal(err)
	}
	e := f.storedRaw("850591")["S0001"][0]
	if len(s.Files) != 1 || s.Files[0].How != "copy" || len(s.Problems) != 0 {
		t.Fatalf("placed %+v, problems %+v", s.Files, s.Problems)
	}
	laid := filepath.Join(f.root, filepath.FromSlash(s.Files[0].Path))
	if sha(t, laid) != e.SHA256 {
		t.Fatal("copy differs from the stored file")
	}
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(laid), ".copy-*")); len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
	if s, err = f.rec.Record(req); err != nil || s.Files[0].How != "present" {
		t.Fatalf("again: %+v %v", s.Files, err)
	}

	e2 := f.storedRaw("850591")["S0002"][0]
	p := filepath.Join(tree, filepath.FromSlash(e2.StoredAs))
	os.Chmod(p, 0o640)
	if err := os.WriteFile(p, []byte("raw tw0"), 0o640); err != nil {
		t.Fatal(err)
	}
	s, err = f.rec.Record(Request{FIO: "ИВАНОВ И.И.", LNP: "283", KodTO: body, Date: "23.11.2026", Scans: []ScanRef{{NumSnim: "S0002"}}})
	if err != nil || len(s.Files) != 0 || len(s.Problems) != 1 || !strings.Contains(s.Problems[0].Msg, "differs from the index") {
		t.Fatalf("altered: files %+v, problems %+v, %v", s.Files, s.Problems, err)
	}
	if left, _ := filepath.Glob(filepath.Join(f.root, "*", "*", "*", "S0002", ".copy-*")); len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

func TestAlteredArchiveFileIsAProblemNotLaidOut(t *testing.T) {
	f := newFixture(t)
	f.scan(devA, scanned, "S0001", idkpb.Decision_DECISION_NOT_SUSPECTED, map[string]string{"S0001_1.raw": "raw one"})
	f.scan(devA, scanned, "S0002", idkpb.Decision_DECISION_NOT_SUSPECTED, nil)
	e := f.storedRaw("850591")["S0001"][0]
	p := filepath.Join(f.st.Root(), filepath.FromSlash(e.StoredAs))
	if err := os.Chmod(p, 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte("raw 0ne"), 0o640); err != nil {
		t.Fatal(err)
	}
	s, err := f.rec.Record(Request{FIO: "ИВАНОВ И.И.", LNP: "283", KodTO: body, Date: "23.11.2026", Scans: []ScanRef{{NumSnim: "S0001"}, {NumSnim: "S0002"}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Files) != 0 || len(s.Problems) != 2 || !strings.Contains(s.Problems[0].Msg, "differs from the index") || !strings.Contains(s.Problems[1].Msg, "no RAW file") {
		t.Fatalf("files %+v, problems %+v", s.Files, s.Problems)
	}
}

func TestBadBodyIsRefusedNamingTheField(t *testing.T) {
	f := newFixture(t)
	f.scan(devA, scanned, "S0001", idkpb.Decision_DECISION_NOT_SUSPECTED, map[string]string{"S0001_1.raw": "raw one"})
	good := func() Request {
		return Request{FIO: "ИВАНОВ И.И.", LNP: "283", KodTO: body, Date: "23.11.2026", Scans: []ScanRef{{NumSnim: "S0001"}}}
	}
	for _, c := range []struct {
		name  string
		edit  func(*Request)
		field string
	}{
		{"short code", func(r *Request) { r.KodTO = "102000" }, "kod_to"},
		{"lower case", func(r *Request) { r.FIO = "Иванов" }, "fio"},
		{"no seal", func(r *Request) { r.LNP = "" }, "lnp"},
		{"future", func(r *Request) { r.Date = "24.11.2026" }, "date"},
		{"bad date", func(r *Request) { r.Date = "2026-11-23" }, "date"},
		{"no scans", func(r *Request) { r.Scans = nil }, "scans"},
		{"unknown scan", func(r *Request) { r.Scans = append(r.Scans, ScanRef{NumSnim: "S0009"}) }, "scans[1].num_snim"},
		{"twice", func(r *Request) { r.Scans = append(r.Scans, ScanRef{NumSnim: "S0001"}) }, "scans[1].num_snim"},
		{"missing not re-analysed", func(r *Request) { r.Missing = []ScanRef{{NumSnim: "S0009"}} }, "missing[0].num_snim"},
		{"bad rez", func(r *Request) {
			r.Violations = []Violation{{ScanRef: ScanRef{NumSnim: "S0001"}, Opisanie: "X", Rez: "15"}}
		}, "violations[0].rez"},
		{"result date for rez 0", func(r *Request) {
			r.Violations = []Violation{{ScanRef: ScanRef{NumSnim: "S0001"}, Opisanie: "X", Rez: "0", DateSysR: "23.11.2026"}}
		}, "violations[0].date_sys_r"},
		{"no result date", func(r *Request) {
			r.Violations = []Violation{{ScanRef: ScanRef{NumSnim: "S0001"}, Opisanie: "X", Rez: "1"}}
		}, "violations[0].date_sys_r"},
		{"no description", func(r *Request) {
			r.Violations = []Violation{{ScanRef: ScanRef{NumSnim: "S0001"}, Rez: "0"}}
		}, "violations[0].opisanie"},
		{"negative count", func(r *Request) { r.DraftProfiles = -1 }, "kol_vo_ppr"},
	} {
		t.Run(c.name, func(t *testing.T) {
			req := good()
			c.edit(&req)
			var out struct {
				Error  string       `json:"error"`
				Errors []FieldError `json:"errors"`
			}
			if code := f.call("POST", "/api/v1/reanalysis/sessions", req, &out); code != http.StatusBadRequest {
				t.Fatalf("%d %+v", code, out)
			}
			if len(out.Errors) != 1 || out.Errors[0].Field != c.field || !strings.Contains(out.Error, c.field) {
				t.Fatalf("errors %+v, want one naming %s", out, c.field)
			}
		})
	}
	// An unknown field of the body is refused by name too.
	var out struct {
		Error string `json:"error"`
	}
	if code := f.call("POST", "/api/v1/reanalysis/sessions", map[string]any{"kod_to": body, "fio_x": "X"}, &out); code != http.StatusBadRequest || !strings.Contains(out.Error, "fio_x") {
		t.Fatalf("unknown field: %d %+v", code, out)
	}
	// Nothing was laid out and no entry written.
	if _, err := os.Stat(filepath.Join(f.root, Section)); !os.IsNotExist(err) {
		t.Errorf("a refused session laid out files: %v", err)
	}
	t5, _ := f.entries.Latest(5, body, time.Date(2026, 1, 1, 0, 0, 0, 0, msk), time.Date(2027, 1, 1, 0, 0, 0, 0, msk))
	if len(t5) != 0 {
		t.Errorf("a refused session wrote table 5: %+v", t5)
	}
	// Selection parameters are checked by name as well.
	if code := f.call("GET", "/api/v1/reanalysis/scans?kod_to=10216100&from=01.10.2026&to=31.10.2026&rezz=1", nil, &out); code != 400 || !strings.Contains(out.Error, "rezz") {
		t.Errorf("unknown parameter: %d %+v", code, out)
	}
	var fe struct {
		Errors []FieldError `json:"errors"`
	}
	if code := f.call("GET", "/api/v1/reanalysis/scans?kod_to=10216100&from=01.10.2026", nil, &fe); code != 400 || len(fe.Errors) != 1 || fe.Errors[0].Field != "to" {
		t.Errorf("missing to: %d %+v", code, fe)
	}
}
