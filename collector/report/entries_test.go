package report

import (
	"errors"
	"maps"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"idk/collector/ingest"
	"idk/collector/store"
	"idk/simulator/simclock"
)

var entMSK = time.FixedZone("MSK", 3*3600)

// entScans is a fake ScanLookup: scans by NUM_IDK and NUM_SNIM.
type entScans struct {
	mu    sync.Mutex
	scans []ScanIdentity
	snims []string
	err   error
}

func (f *entScans) add(numSnim string, s ScanIdentity) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.scans = append(f.scans, s)
	f.snims = append(f.snims, numSnim)
}

func (f *entScans) LookupScan(numIDK, numSnim string) (ScanIdentity, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return ScanIdentity{}, false, f.err
	}
	var found []ScanIdentity
	for i, s := range f.scans {
		if f.snims[i] == numSnim && (numIDK == "" || s.NumIDK == numIDK) {
			found = append(found, s)
		}
	}
	if len(found) != 1 {
		return ScanIdentity{}, false, nil
	}
	return found[0], true, nil
}

// entScan is a scan of ИДК 850591 recorded on 27.11.2026.
var entScan = ScanIdentity{KodTO: "10216100", NaimTO: "Белгородская", NaimZTK: "МАПП НЕХОТЕЕВКА", TypeIDK: 2,
	NumIDK: "850591", DislIDK: 1, Date: time.Date(2026, 11, 27, 0, 0, 0, 0, entMSK)}

type entFixture struct {
	st    *store.Store
	db    ingest.Log
	scans *entScans
	clk   *simclock.Clock
	e     *Entries
}

func newEntFixture(t *testing.T) *entFixture {
	t.Helper()
	clk := simclock.New(time.Date(2026, 11, 28, 10, 0, 0, 0, entMSK))
	st, err := store.Open(t.TempDir(), store.Options{Location: entMSK, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	scans := &entScans{}
	scans.add("201701040006080003", entScan)
	db := ingest.FromStore(st)
	return &entFixture{st: st, db: db, scans: scans, clk: clk, e: NewEntries(db, scans, entMSK, clk)}
}

// entRow2 is a valid table 2 row naming the recorded scan.
func entRow2() map[string]string {
	return map[string]string{
		"NUM_SNIM": "201701040006080003", "KOD_TEH": "01", "NAIM_DOK": "4", "NUM_DOK": "10218030/241016/0019077",
		"NUM_PR": "12361", "NAPR": "1", "NAIM_ORG": "ООО ЕЛКА", "OB_NAR": "1. КЛЕН; 2. БЕРЕЗА", "KOD_TNVED": "010101",
		"KOL_VO_TOV": "12 ШТ.", "REZ": "1", "DATE_VOZB": "28.11.2026", "NUM_DELA": "10216000-1234/2026",
		"NUM_STAT": "Ч. 3 СТ. 16.1 КОАП РФ", "STOIM": "96532.3", "SUMM_SHT": "1817",
	}
}

func entRow5(date string) map[string]string {
	return map[string]string{"KOD_TO": "10216100", "DATE_SYS": date, "KOL_VO_PR_SNIM": "20", "KOL_VO_NAR": "5",
		"FIO": "ИВАНОВ ИВАН ИВАНОВИЧ", "LNP": "283"}
}

func entRow6(date string) map[string]string {
	return map[string]string{"KOD_TO": "10216100", "DATE_SYS_V": date, "NUM_SNIM": "70001DJ01201701020002",
		"OPISANIE": "В РЕЗУЛЬТАТЕ ПОВТОРНОГО АНАЛИЗА УСТАНОВЛЕНО", "REZ": "0", "FIO": "ИВАНОВ ИВАН ИВАНОВИЧ", "LNP": "283"}
}

func entDay(d int) time.Time { return time.Date(2026, 11, d, 0, 0, 0, 0, entMSK) }

func entRows(t *testing.T, e *Entries, table int, kod string, from, to time.Time) []Row {
	t.Helper()
	var rows []Row
	if err := e.Rows(table, kod, from, to, func(r Row) error { rows = append(rows, r); return nil }); err != nil {
		t.Fatal(err)
	}
	return rows
}

func TestEntriesAddCopiesScanIdentityAndFormats(t *testing.T) {
	f := newEntFixture(t)
	out, err := f.e.Add(2, []map[string]string{entRow2()}, " ПЕТРОВ ")
	if err != nil {
		t.Fatal(err)
	}
	en := out[0]
	if en.ID != "T2-000001" || en.Version != 1 || en.Table != 2 || en.By != "ПЕТРОВ" || !en.At.Equal(f.clk.Now()) {
		t.Fatalf("entry: %+v", en)
	}
	want := map[string]string{"KOD_TO": "10216100", "NAIM_TO": "БЕЛГОРОДСКАЯ", "NAIM_ZTK": "МАПП НЕХОТЕЕВКА", "TYPE_IDK": "2",
		"NUM_IDK": "850591", "DISL_IDK": "1", "DATE_SYS": "27.11.2026", "STOIM": "96532,3"}
	for k, v := range want {
		if en.Fields[k] != v {
			t.Errorf("%s = %q, want %q", k, en.Fields[k], v)
		}
	}
	rows := entRows(t, f.e, 2, "10216100", entDay(1), entDay(28))
	if len(rows) != 1 || len(rows[0]) != len(Table2.Columns) {
		t.Fatalf("rows: %q", rows)
	}
	r := rows[0]
	for _, c := range []struct{ field, want string }{
		{"KOD_TO", "10216100"}, {"DATE_SYS", "27.11.2026"}, {"STOIM", "96532,3"}, {"KONF", ""}, {"REZ", "1"}, {"KOD_TEH", "01"},
	} {
		if got := r[Table2.Field(c.field)]; got != c.want {
			t.Errorf("row %s = %q, want %q", c.field, got, c.want)
		}
	}
	// A second Add continues the numbering; another table has its own.
	out, err = f.e.Add(2, []map[string]string{entRow2()}, "ПЕТРОВ")
	if err != nil || out[0].ID != "T2-000002" {
		t.Fatalf("second: %v %+v", err, out)
	}
	out, err = f.e.Add(5, []map[string]string{entRow5("27.11.2026")}, "ПЕТРОВ")
	if err != nil || out[0].ID != "T5-000001" {
		t.Fatalf("table 5: %v %+v", err, out)
	}
}

func TestEntriesAddAllOrNone(t *testing.T) {
	f := newEntFixture(t)
	bad := entRow5("27.11.2026")
	bad["FIO"] = "Иванов"
	_, err := f.e.Add(5, []map[string]string{entRow5("26.11.2026"), bad, entRow5("31.11.2026")}, "ПЕТРОВ")
	var es EntryErrors
	if !errors.As(err, &es) || len(es) != 2 || !errors.Is(err, ErrEntryRefused) {
		t.Fatalf("want two EntryErrors, got %v", err)
	}
	if !strings.HasPrefix(es[0].Error(), "table 5, row 2, field FIO: ") || !strings.HasPrefix(es[1].Error(), "table 5, row 3, field DATE_SYS: ") {
		t.Fatalf("errors: %v", err)
	}
	if rows := entRows(t, f.e, 5, "10216100", entDay(1), entDay(30)); len(rows) != 0 {
		t.Fatalf("a refused request stored %d rows", len(rows))
	}
	// The numbering did not move either.
	out, err := f.e.Add(5, []map[string]string{entRow5("26.11.2026")}, "ПЕТРОВ")
	if err != nil || out[0].ID != "T5-000001" {
		t.Fatalf("after refusal: %v %+v", err, out)
	}
}

func TestEntriesAddRefusesRequest(t *testing.T) {
	f := newEntFixture(t)
	for _, c := range []struct {
		table int
		rows  []map[string]string
		by    string
		want  string
	}{
		{3, []map[string]string{entRow5("27.11.2026")}, "ПЕТРОВ", "tables 2, 5 and 6 only"},
		{5, []map[string]string{entRow5("27.11.2026")}, " ", `"by" is required`},
		{5, nil, "ПЕТРОВ", "no rows"},
		{5, make([]map[string]string, maxRowsPerAdd+1), "ПЕТРОВ", "at most"},
	} {
		_, err := f.e.Add(c.table, c.rows, c.by)
		if err == nil || !strings.Contains(err.Error(), c.want) || !errors.Is(err, ErrEntryRefused) {
			t.Errorf("Add(%d, %d rows, %q): %v, want %q", c.table, len(c.rows), c.by, err, c.want)
		}
	}
	f.scans.err = errors.New("index closed")
	if _, err := f.e.Add(2, []map[string]string{entRow2()}, "ПЕТРОВ"); err == nil || errors.Is(err, ErrEntryRefused) || !strings.Contains(err.Error(), "index closed") {
		t.Fatalf("failed lookup: %v", err)
	}
}

func TestEntriesCorrectKeepsHistory(t *testing.T) {
	f := newEntFixture(t)
	out, err := f.e.Add(6, []map[string]string{entRow6("20.11.2026")}, "ИВАНОВ")
	if err != nil {
		t.Fatal(err)
	}
	id := out[0].ID
	f.clk.Advance(time.Hour)
	if _, err := f.e.Correct(id, map[string]string{"REZ": "1"}, "ИВАНОВ", ""); err == nil || !strings.Contains(err.Error(), "reason") {
		t.Fatalf("without a reason: %v", err)
	}
	// The whole row is checked again: REZ 1 needs DATE_SYS_R.
	_, err = f.e.Correct(id, map[string]string{"REZ": "1"}, "ИВАНОВ", "РЕЗУЛЬТАТ ПОЛУЧЕН")
	if err == nil || err.Error() != "table 6, entry "+id+", field DATE_SYS_R: required for REZ 1: the date the results were received" {
		t.Fatalf("incomplete correction: %v", err)
	}
	v2, err := f.e.Correct(id, map[string]string{"REZ": "1", "DATE_SYS_R": "25.11.2026"}, "СИДОРОВ", "РЕЗУЛЬТАТ ПОЛУЧЕН")
	if err != nil {
		t.Fatal(err)
	}
	if v2.Version != 2 || v2.Reason != "РЕЗУЛЬТАТ ПОЛУЧЕН" || v2.By != "СИДОРОВ" || v2.Fields["OPISANIE"] == "" || v2.Fields["DATE_SYS_R"] != "25.11.2026" {
		t.Fatalf("v2: %+v", v2)
	}
	if _, err := f.e.Correct(id, map[string]string{"REZ": "1"}, "СИДОРОВ", "ЕЩЕ РАЗ"); err == nil || !strings.Contains(err.Error(), "changes nothing") {
		t.Fatalf("no-op correction: %v", err)
	}
	// Moving the entry to another day: Rows lists it there only.
	if _, err := f.e.Correct(id, map[string]string{"DATE_SYS_V": "21.11.2026"}, "СИДОРОВ", "ОПЕЧАТКА В ДАТЕ"); err != nil {
		t.Fatal(err)
	}
	h, err := f.e.History(id)
	if err != nil {
		t.Fatal(err)
	}
	if len(h) != 3 || h[0].Version != 1 || h[0].Fields["REZ"] != "0" || h[1].Version != 2 || h[2].Fields["DATE_SYS_V"] != "21.11.2026" {
		t.Fatalf("history: %+v", h)
	}
	if rows := entRows(t, f.e, 6, "10216100", entDay(20), entDay(21)); len(rows) != 0 {
		t.Fatalf("old day still lists the entry: %q", rows)
	}
	rows := entRows(t, f.e, 6, "10216100", entDay(1), entDay(30))
	if len(rows) != 1 || rows[0][Table6.Field("DATE_SYS_V")] != "21.11.2026" || rows[0][Table6.Field("REZ")] != "1" {
		t.Fatalf("rows: %q", rows)
	}
	if _, err := f.e.History("T6-000009"); !errors.Is(err, ErrNoEntry) {
		t.Fatalf("unknown id: %v", err)
	}
	if _, err := f.e.Correct("T6-000009", map[string]string{"REZ": "1"}, "А", "Б"); !errors.Is(err, ErrNoEntry) {
		t.Fatalf("correct unknown id: %v", err)
	}
	if _, err := f.e.History("X-1"); !errors.Is(err, ErrEntryRefused) {
		t.Fatalf("malformed id: %v", err)
	}
}

func TestEntriesCorrectTable2NewScanRetakesIdentity(t *testing.T) {
	f := newEntFixture(t)
	other := entScan
	other.NumIDK, other.NaimZTK, other.Date = "850592", "ПКТ", entDay(26)
	f.scans.add("201701040006080004", other)
	out, err := f.e.Add(2, []map[string]string{entRow2()}, "ПЕТРОВ")
	if err != nil {
		t.Fatal(err)
	}
	v2, err := f.e.Correct(out[0].ID, map[string]string{"NUM_SNIM": "201701040006080004"}, "ПЕТРОВ", "НЕ ТОТ СНИМОК")
	if err != nil {
		t.Fatal(err)
	}
	if v2.Fields["NUM_IDK"] != "850592" || v2.Fields["NAIM_ZTK"] != "ПКТ" || v2.Fields["DATE_SYS"] != "26.11.2026" {
		t.Fatalf("identity not retaken: %+v", v2.Fields)
	}
}

func TestEntriesCorrectConflict(t *testing.T) {
	f := newEntFixture(t)
	out, err := f.e.Add(5, []map[string]string{entRow5("27.11.2026")}, "ПЕТРОВ")
	if err != nil {
		t.Fatal(err)
	}
	id := out[0].ID
	// Another officer's correction lands between the read and the write:
	// the scan lookup of a table 2 row is where that window is, so it is
	// simulated by storing version 2 directly before Correct writes.
	if _, err := f.e.Correct(id, map[string]string{"KOL_VO_NAR": "6"}, "А", "Б"); err != nil {
		t.Fatal(err)
	}
	err = f.db.Update(func(tx ingest.Tx) error {
		en, _, err := latestEntry(tx, id)
		if err != nil {
			return err
		}
		// Rewriting an existing version is refused.
		if err := putEntry(tx, en, 1); err == nil || !strings.Contains(err.Error(), "already stored") {
			t.Errorf("overwrite: %v", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	f.e.db = &conflictingEntries{db: f.db, id: id}
	_, err = f.e.Correct(id, map[string]string{"KOL_VO_NAR": "7"}, "А", "Б")
	if !errors.Is(err, ErrEntryChanged) {
		t.Fatalf("want ErrEntryChanged, got %v", err)
	}
}

// conflictingEntries stores another version of id just before the first
// write transaction, as a concurrent correction would.
type conflictingEntries struct {
	db   DB
	id   string
	done bool
}

func (c *conflictingEntries) View(fn func(ingest.Tx) error) error { return c.db.View(fn) }

func (c *conflictingEntries) Update(fn func(ingest.Tx) error) error {
	if !c.done {
		c.done = true
		err := c.db.Update(func(tx ingest.Tx) error {
			en, _, err := latestEntry(tx, c.id)
			if err != nil {
				return err
			}
			en.Version++
			en.Fields = maps.Clone(en.Fields)
			en.Fields["KOL_VO_NAR"] = "9"
			return putEntry(tx, en, 1)
		})
		if err != nil {
			return err
		}
	}
	return c.db.Update(fn)
}

func TestEntriesRowsRangeOrderAndPost(t *testing.T) {
	f := newEntFixture(t)
	other := entRow5("27.11.2026")
	other["KOD_TO"] = "10216200"
	rows := []map[string]string{entRow5("28.11.2026"), entRow5("27.11.2026"), entRow5("01.11.2026"), entRow5("31.10.2026"), entRow5("01.12.2026"), other, entRow5("27.11.2026")}
	for i, r := range rows {
		r["KOL_VO_NAR"] = string(rune('0' + i))
	}
	if _, err := f.e.Add(5, rows, "ПЕТРОВ"); err != nil {
		t.Fatal(err)
	}
	got := entRows(t, f.e, 5, "10216100", MonthStart(entDay(15)), entDay(28))
	var order []string
	for _, r := range got {
		order = append(order, r[Table5.Field("DATE_SYS")]+"/"+r[Table5.Field("KOL_VO_NAR")])
	}
	want := []string{"01.11.2026/2", "27.11.2026/1", "27.11.2026/6"}
	if !reflect.DeepEqual(order, want) {
		t.Fatalf("rows %v, want %v", order, want)
	}
	// A bound that is not midnight takes the days that start within it.
	got = entRows(t, f.e, 5, "10216100", entDay(27).Add(time.Hour), entDay(28).Add(time.Hour))
	if len(got) != 1 || got[0][Table5.Field("DATE_SYS")] != "28.11.2026" {
		t.Fatalf("mid-day bounds: %q", got)
	}
	// emit's error stops the stream and is returned.
	stop := errors.New("stop")
	n := 0
	if err := f.e.Rows(5, "10216100", entDay(1), entDay(30), func(Row) error { n++; return stop }); err != stop || n != 1 {
		t.Fatalf("emit error: %v after %d", err, n)
	}
	if err := f.e.Rows(4, "10216100", entDay(1), entDay(30), func(Row) error { return nil }); !errors.Is(err, ErrEntryRefused) {
		t.Fatalf("table 4: %v", err)
	}
	if err := f.e.Rows(5, "1021", entDay(1), entDay(30), func(Row) error { return nil }); !errors.Is(err, ErrEntryRefused) {
		t.Fatalf("bad KOD_TO: %v", err)
	}
}

func TestEntriesSurviveReopen(t *testing.T) {
	dir := t.TempDir()
	clk := simclock.New(time.Date(2026, 11, 28, 10, 0, 0, 0, entMSK))
	st, err := store.Open(dir, store.Options{Location: entMSK, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	e := NewEntries(ingest.FromStore(st), &entScans{}, entMSK, clk)
	if _, err := e.Add(5, []map[string]string{entRow5("27.11.2026")}, "ПЕТРОВ"); err != nil {
		t.Fatal(err)
	}
	if err := e.SetCounts("850591", entDay(27), Counts{"OKO_GRU_IM": 3}, "ПЕТРОВ"); err != nil {
		t.Fatal(err)
	}
	st.Close()
	st, err = store.Open(dir, store.Options{Location: entMSK, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	e = NewEntries(ingest.FromStore(st), &entScans{}, entMSK, clk)
	if rows := entRows(t, e, 5, "10216100", entDay(1), entDay(30)); len(rows) != 1 {
		t.Fatalf("after reopen: %q", rows)
	}
	if c, ok, err := e.Counts("850591", entDay(27)); err != nil || !ok || c["OKO_GRU_IM"] != 3 {
		t.Fatalf("counts after reopen: %v %v %v", c, ok, err)
	}
	out, err := e.Add(5, []map[string]string{entRow5("27.11.2026")}, "ПЕТРОВ")
	if err != nil || out[0].ID != "T5-000002" {
		t.Fatalf("numbering after reopen: %v %+v", err, out)
	}
}

func TestCountsVersions(t *testing.T) {
	f := newEntFixture(t)
	var _ CountSource = f.e
	if _, ok, err := f.e.Counts("850591", entDay(27)); ok || err != nil {
		t.Fatalf("nothing entered: %v %v", ok, err)
	}
	if err := f.e.SetCounts("850591", entDay(27).Add(23*time.Hour), Counts{"OKO_GRU_IM": 12, "KOVR_GRU_IM": 10}, "ПЕТРОВ"); err != nil {
		t.Fatal(err)
	}
	f.clk.Advance(time.Hour)
	if err := f.e.SetCounts("850591", entDay(27), Counts{"OKO_GRU_IM": 14, "KOVR_GRU_IM": 10, "OKO_LEG_EX": 1}, "ИВАНОВ"); err != nil {
		t.Fatal(err)
	}
	c, ok, err := f.e.Counts("850591", entDay(27).Add(5*time.Hour))
	if err != nil || !ok || !reflect.DeepEqual(c, Counts{"OKO_GRU_IM": 14, "KOVR_GRU_IM": 10, "OKO_LEG_EX": 1}) {
		t.Fatalf("latest: %v %v %v", c, ok, err)
	}
	sc, _, _ := f.e.storedCounts("850591", entDay(27))
	if sc.Version != 2 || sc.By != "ИВАНОВ" || sc.Date != "27.11.2026" {
		t.Fatalf("stored: %+v", sc)
	}
	// Both versions are kept.
	n := 0
	f.db.View(func(tx ingest.Tx) error {
		return tx.Scan(bucketCounts, nil, nil, false, func(_, _ []byte) error { n++; return nil })
	})
	if n != 2 {
		t.Fatalf("%d versions stored, want 2", n)
	}
	// Other days and ИДК are apart.
	if _, ok, _ := f.e.Counts("850591", entDay(26)); ok {
		t.Fatal("26th has counts")
	}
	if _, ok, _ := f.e.Counts("85059", entDay(27)); ok {
		t.Fatal("ИДК 85059 has 850591's counts")
	}
}

func TestCountsValidation(t *testing.T) {
	f := newEntFixture(t)
	for _, c := range []struct {
		numIDK string
		counts Counts
		by     string
		want   string
	}{
		{"850591", Counts{"OKO_GRU_IM": 8, "KOVR_GRU_IM": 10}, "П", "table 3, NUM_IDK 850591, 27.11.2026, field KOVR_GRU_IM: 10 is more than OKO_GRU_IM 8"},
		{"850591", Counts{"KOVR_IN_EX": 1}, "П", "field KOVR_IN_EX: 1 is more than OKO_IN_EX 0"},
		{"850591", Counts{"OKO_POR_EX": -1}, "П", "field OKO_POR_EX: -1 is negative"},
		{"850591", Counts{"TIME_JOB": 5}, "П", "field TIME_JOB: not an object count of table 3"},
		{"850591", Counts{"oko_gru_im": 5}, "П", "field oko_gru_im: not an object count"},
		{"850591", Counts{}, "П", "no counts given"},
		{"850 591", Counts{"OKO_GRU_IM": 1}, "П", "NUM_IDK"},
		{"850591", Counts{"OKO_GRU_IM": 1}, "", `"by" is required`},
	} {
		err := f.e.SetCounts(c.numIDK, entDay(27), c.counts, c.by)
		if err == nil || !strings.Contains(err.Error(), c.want) || !errors.Is(err, ErrEntryRefused) {
			t.Errorf("SetCounts(%q, %v): %v, want %q", c.numIDK, c.counts, err, c.want)
		}
	}
	if _, ok, _ := f.e.Counts("850591", entDay(27)); ok {
		t.Fatal("refused counts were stored")
	}
}
