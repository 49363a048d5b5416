package report

import (
	"crypto/sha256"
	"errors"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"idk/collector/cases"
	"idk/collector/ingest"
	"idk/collector/store"
	"idk/protocol/idkpb"
	"idk/simulator/simclock"
)

var scanMSK = time.FixedZone("MSK", 3*3600)

// nov is a time on day d of November 2026, Moscow.
func nov(d, h, m int) time.Time { return time.Date(2026, time.November, d, h, m, 0, 0, scanMSK) }

var (
	devA = &idkpb.Device{NumIdk: "850591", TypeIdk: 2, KodTo: "10216100", NaimTo: "Балтийская", NaimZtk: "пкт", DislIdk: 2}
	devB = &idkpb.Device{NumIdk: "850592", TypeIdk: 1, KodTo: "10216100", NaimTo: "Балтийская", NaimZtk: "МАПП Долгое", DislIdk: 1}
	devC = &idkpb.Device{NumIdk: "850593", TypeIdk: 2, KodTo: "10005000", NaimTo: "Другая", NaimZtk: "ЗТК", DislIdk: 1}
)

// fakeFacts are cases by NUM_IDK "/" NUM_SNIM.
type fakeFacts map[string]cases.ScanFacts

func (f fakeFacts) ScanFacts(numIDK, numSnim string) (cases.ScanFacts, bool, error) {
	s, ok := f[numIDK+"/"+numSnim]
	return s, ok, nil
}

type fakeRoster map[string]Officer

func (r fakeRoster) Officer(login string) (Officer, bool) {
	o, ok := r[strings.ToLower(strings.TrimSpace(login))]
	return o, ok
}

var roster = fakeRoster{"idk_oper02": {FIO: "Петров Петр Петрович", LNP: "056"}}

// scanFixture is the collector's index with the scan journal consuming it.
type scanFixture struct {
	t   *testing.T
	st  *store.Store
	log ingest.Log
	in  *ingest.Ingest
	j   *ScanJournal
	seq map[string]uint64
}

func newScanFixture(t *testing.T) *scanFixture {
	t.Helper()
	st, err := store.Open(t.TempDir(), store.Options{Location: scanMSK, Clock: simclock.New(nov(30, 12, 0))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	f := &scanFixture{t: t, st: st, log: ingest.FromStore(st), j: NewScanJournal(scanMSK), seq: map[string]uint64{}}
	f.in = ingest.New(ingest.Config{Log: f.log, Consumers: map[string]ingest.Consumer{"report.scans": f.j}})
	if err := f.in.Load(); err != nil {
		t.Fatal(err)
	}
	f.j.Use(f.log)
	return f
}

// send ingests ev of dev made at at by the agent's clock, which is skew
// behind the collector's.
func (f *scanFixture) send(dev *idkpb.Device, at time.Time, skew time.Duration, ev *idkpb.Event) {
	f.t.Helper()
	f.seq[dev.NumIdk]++
	ev.Seq = f.seq[dev.NumIdk]
	ev.TimeUnixNano = at.UnixNano()
	correct := func(n int64) time.Time { return time.Unix(0, n).Add(skew) }
	if _, err := f.in.Ingest(dev, 1, []*idkpb.Event{ev}, correct); err != nil {
		f.t.Fatal(err)
	}
}

func (f *scanFixture) scan(dev *idkpb.Device, at time.Time, snim string) {
	f.t.Helper()
	f.send(dev, at, 0, &idkpb.Event{Body: &idkpb.Event_ScanSeen{ScanSeen: &idkpb.ScanSeen{NumSnim: snim, Index: f.seq[dev.NumIdk] + 1}}})
}

func (f *scanFixture) form(dev *idkpb.Device, at time.Time, rev uint32, form *idkpb.Form) {
	f.t.Helper()
	f.send(dev, at, 0, &idkpb.Event{Body: &idkpb.Event_Form{Form: formRev(rev, form)}})
}

// formRev is revision rev of form as the agent sends it: the parsed
// fields with the file's bytes (here a stand-in) and their hash.
func formRev(rev uint32, form *idkpb.Form) *idkpb.FormRevision {
	content := []byte("<CargoRIWForm/>")
	sum := sha256.Sum256(content)
	return &idkpb.FormRevision{NumSnim: form.NumSnim, Revision: rev, Content: content, Sha256: sum[:], Form: form}
}

type row1Out struct {
	row  Row
	miss *Missing
}

func (f *scanFixture) table1(kodTO string, from, to time.Time, facts FactSource) []row1Out {
	f.t.Helper()
	var out []row1Out
	err := f.j.Table1(f.log, kodTO, from, to, facts, roster, func(r Row, m *Missing) error {
		if len(r) != len(Table1.Columns) {
			f.t.Fatalf("row of %d cells, want %d", len(r), len(Table1.Columns))
		}
		out = append(out, row1Out{r, m})
		return nil
	})
	if err != nil {
		f.t.Fatal(err)
	}
	return out
}

func cell(r Row, name string) string { return r[Table1.Field(name)] }

// fullForm is a final CargoRIW form of scan snim made at created.
func fullForm(snim string, created time.Time) *idkpb.Form {
	return &idkpb.Form{
		NumSnim:         snim,
		CreatedUnixNano: created.UnixNano(),
		SavedUnixNano:   created.Add(12*time.Minute + 31*time.Second).UnixNano(),
		TruckId:         snim,
		TrailerId:       "а654-аа 777 / АВ1234 77",
		Country:         "РОССИЯ",
		CustomsInfo1:    "XZ12345678/10702070/170717/0012345/накл 55",
		CustomsInfo2:    "ООО «Восток»",
		Containers: []*idkpb.Container{
			{Number: "mscu 123456-7", From: "Китай", To: "Россия", Cargo: "8708 29 9009", Direction: idkpb.Direction_DIRECTION_IMPORT},
			{Number: "TGHU7654321", From: "Китай", To: "Казахстан", Cargo: "6403", Direction: idkpb.Direction_DIRECTION_EXPORT},
		},
		CommentUpper:    "запасные части\nдля автомобилей",
		CommentLower:    "плотные вложения;  проведён осмотр",
		Decision:        idkpb.Decision_DECISION_SUSPECTED,
		SuspicionReason: "НЕСООТВЕТСТВИЕ",
		Marks:           2,
		Operator:        " IDK_oper02 ",
		VidTs:           2,
	}
}

var fullRisk = cases.RiskProfile{KodTeh: "05", VidPr: "55", KodToPr: "10216000", DateReg: "12.12.2012", NumPr: "12361", DocType: 4}

// Every cell of a complete row, and a later revision wins over an earlier
// one whatever order they arrive in.
func TestTable1Row(t *testing.T) {
	f := newScanFixture(t)
	f.scan(devA, nov(5, 10, 0), "201711050006080003")
	partial := &idkpb.Form{NumSnim: "201711050006080003", CreatedUnixNano: nov(5, 10, 0).UnixNano(), TrailerId: "X1", Operator: "other"}
	f.form(devA, nov(5, 10, 2), 1, partial)
	f.form(devA, nov(5, 10, 13), 3, fullForm("201711050006080003", nov(5, 10, 0)))
	f.form(devA, nov(5, 10, 14), 2, partial) // late, and older than 3

	facts := fakeFacts{"850591/201711050006080003": {Risk: fullRisk}}
	rows := f.table1("10216100", nov(1, 0, 0), nov(6, 0, 0), facts)
	if len(rows) != 1 {
		t.Fatalf("%d rows, want 1", len(rows))
	}
	want := map[string]string{
		"KOD_TO": "10216100", "NAIM_TO": "БАЛТИЙСКАЯ", "NAIM_ZTK": "ПКТ", "TYPE_IDK": "2", "NUM_IDK": "850591",
		"DISL_IDK": "2", "DATE_SYS": "05.11.2026", "TIME_AN_SNIM": "13", "VER_SCAN": "1",
		"KOD_TEH": "05", "VID_PR": "55", "KOD_TO_PR": "10216000", "DATE_REG": "12.12.2012", "NUM_PR": "12361",
		"NAPR": "1", "DOC_TYPE": "4", "DOC_NUM": "10702070/170717/0012345", "STRANA_OTP": "КИТАЙ", "STRANA_NAZ": "РОССИЯ",
		"KOD_TNVED": "8708299009", "NAIM_TOV": "ЗАПАСНЫЕ ЧАСТИ ДЛЯ АВТОМОБИЛЕЙ", "VES_TP": "", "VES_TOV": "",
		"NAIM_PER": "", "INN_PER": "", "FIO_VODIT": "", "NAIM_OTP_POL": "", "INN_OTP_POL": "",
		"VID_TS": "2", "NUM_TS": "А654АА777", "NUM_P_TS": "АВ123477", "NUM_CONT": "MSCU1234567", "NUM_OB": "",
		"NUM_SNIM": "201711050006080003", "OS_OTM": "1", "PRIM": "ПЛОТНЫЕ ВЛОЖЕНИЯ; ПРОВЕДЁН ОСМОТР", "REZ": "2",
		"FIO_OPER": "ПЕТРОВ ПЕТР ПЕТРОВИЧ", "LNP_OPER": "056",
	}
	if len(want) != len(Table1.Columns) {
		t.Fatalf("the test lists %d fields, table 1 has %d", len(want), len(Table1.Columns))
	}
	for _, c := range Table1.Columns {
		if got := cell(rows[0].row, c.Name); got != want[c.Name] {
			t.Errorf("%s = %q, want %q", c.Name, got, want[c.Name])
		}
	}
	if rows[0].miss != nil {
		t.Errorf("complete row listed as missing %v", rows[0].miss.Fields)
	}
}

// Rows are in DATE_SYS, NUM_IDK, scan time, NUM_SNIM order; only the
// customs body's, only the range's days.
func TestTable1OrderRangeKodTO(t *testing.T) {
	f := newScanFixture(t)
	f.scan(devA, nov(2, 9, 0), "A2")
	f.scan(devB, nov(2, 8, 0), "B2")
	f.scan(devC, nov(2, 8, 30), "C2") // another customs office
	f.scan(devA, nov(1, 23, 59), "A1")
	f.scan(devB, nov(1, 0, 0), "B1")
	f.scan(devA, nov(2, 9, 0), "A0") // same time as A2: by NUM_SNIM
	f.scan(devA, nov(2, 7, 0), "A3") // earlier than A2
	f.scan(devA, nov(3, 0, 0), "A4") // the next day: outside [1, 3)

	got := func(from, to time.Time, kodTO string) []string {
		var s []string
		for _, r := range f.table1(kodTO, from, to, nil) {
			s = append(s, cell(r.row, "DATE_SYS")[:2]+" "+cell(r.row, "NUM_IDK")+" "+cell(r.row, "NUM_SNIM"))
		}
		return s
	}
	want := []string{"01 850591 A1", "01 850592 B1", "02 850591 A3", "02 850591 A0", "02 850591 A2", "02 850592 B2"}
	if s := got(nov(1, 0, 0), nov(3, 0, 0), "10216100"); !reflect.DeepEqual(s, want) {
		t.Errorf("rows\n got %q\nwant %q", s, want)
	}
	if s := got(nov(2, 0, 0), nov(3, 0, 0), "10216100"); !reflect.DeepEqual(s, want[2:]) {
		t.Errorf("day 2 rows %q", s)
	}
	if s := got(nov(1, 0, 0), nov(30, 0, 0), "10005000"); !reflect.DeepEqual(s, []string{"02 850593 C2"}) {
		t.Errorf("the other office's rows %q", s)
	}
	if s := got(nov(1, 0, 0), nov(30, 0, 0), "99999999"); s != nil {
		t.Errorf("rows of an office with no ИДК: %q", s)
	}

	// emit's error stops the stream and is returned.
	stop := errors.New("stop")
	n := 0
	err := f.j.Table1(f.log, "10216100", nov(1, 0, 0), nov(3, 0, 0), nil, nil, func(Row, *Missing) error { n++; return stop })
	if !errors.Is(err, stop) || n != 1 {
		t.Errorf("Table1 after emit's error: %v after %d rows", err, n)
	}
}

// The fields nobody supplied, by the kind of scan.
func TestTable1Missing(t *testing.T) {
	f := newScanFixture(t)
	f.scan(devA, nov(5, 10, 0), "S1") // no form, no case
	f.scan(devA, nov(5, 10, 1), "S2") // radiation control
	f.scan(devA, nov(5, 10, 2), "S3") // a risk given in part, no plates, unknown operator
	f3 := fullForm("S3", nov(5, 10, 2))
	f3.TrailerId, f3.Containers[0].Number, f3.Operator, f3.VidTs = "", "А654АА777", "nobody", 9
	f.form(devA, nov(5, 10, 20), 1, f3)
	f.scan(devA, nov(5, 10, 3), "S4") // form undecided, not saved, transit
	f4 := fullForm("S4", nov(5, 10, 3))
	f4.Decision, f4.SavedUnixNano, f4.Containers[0].Direction = idkpb.Decision_DECISION_NONE, 0, idkpb.Direction_DIRECTION_TRANSIT
	f.form(devA, nov(5, 10, 4), 1, f4)

	facts := fakeFacts{
		"850591/S2": {VerScan: cases.ScanRadiation},
		"850591/S3": {Risk: cases.RiskProfile{KodTeh: "05", NumPr: "12361"}},
	}
	rows := f.table1("10216100", nov(5, 0, 0), nov(6, 0, 0), facts)
	if len(rows) != 4 {
		t.Fatalf("%d rows", len(rows))
	}
	want := [][]string{
		{"TIME_AN_SNIM", "VER_SCAN", "NAPR", "VID_TS", "NUM_TS", "NUM_CONT", "REZ", "FIO_OPER", "LNP_OPER"},
		nil,
		{"VID_PR", "KOD_TO_PR", "DATE_REG", "DOC_TYPE", "VID_TS", "NUM_TS", "NUM_CONT", "FIO_OPER", "LNP_OPER"},
		{"TIME_AN_SNIM", "VER_SCAN", "NAPR", "REZ"},
	}
	for i, r := range rows {
		var got []string
		if r.miss != nil {
			got = r.miss.Fields
			if r.miss.NumIDK != "850591" || r.miss.NumSnim != cell(r.row, "NUM_SNIM") || r.miss.Date != "05.11.2026" {
				t.Errorf("row %d: Missing %+v", i, r.miss)
			}
		}
		if !reflect.DeepEqual(got, want[i]) {
			t.Errorf("%s missing\n got %q\nwant %q", cell(r.row, "NUM_SNIM"), got, want[i])
		}
	}
	if v := cell(rows[1].row, "VER_SCAN"); v != "2" {
		t.Errorf("radiation control VER_SCAN = %q", v)
	}
	if v := cell(rows[0].row, "OS_OTM"); v != "" {
		t.Errorf("OS_OTM without a form = %q", v)
	}
	if v := cell(rows[2].row, "NUM_CONT"); v != "" {
		t.Errorf("a plate in «N контейнера» made NUM_CONT %q", v)
	}
}

// A form whose scan was not seen makes the row at its Created, corrected
// by the agent's clock offset; the ScanSeen that comes later moves it.
func TestTable1FormBeforeScan(t *testing.T) {
	f := newScanFixture(t)
	created := nov(5, 23, 50) // by the agent's clock, 20 minutes slow
	f.send(devA, created.Add(15*time.Minute), 20*time.Minute, &idkpb.Event{Body: &idkpb.Event_Form{Form: formRev(1, fullForm("S1", created))}})
	rows := f.table1("10216100", nov(1, 0, 0), nov(30, 0, 0), fakeFacts{})
	if len(rows) != 1 || cell(rows[0].row, "DATE_SYS") != "06.11.2026" || cell(rows[0].row, "REZ") != "2" {
		t.Fatalf("row from the form alone: %+v", rows)
	}
	f.scan(devA, nov(5, 23, 55), "S1")
	rows = f.table1("10216100", nov(1, 0, 0), nov(30, 0, 0), fakeFacts{})
	if len(rows) != 1 || cell(rows[0].row, "DATE_SYS") != "05.11.2026" || cell(rows[0].row, "REZ") != "2" {
		t.Errorf("row after its ScanSeen: %+v", rows)
	}
	// The same folder seen again later keeps the first time.
	f.scan(devA, nov(7, 9, 0), "S1")
	if rows = f.table1("10216100", nov(1, 0, 0), nov(30, 0, 0), nil); len(rows) != 1 || cell(rows[0].row, "DATE_SYS") != "05.11.2026" {
		t.Errorf("row after a second ScanSeen: %+v", rows)
	}
}

func TestLookupScan(t *testing.T) {
	f := newScanFixture(t)
	f.scan(devA, nov(5, 10, 0), "S1")
	f.scan(devA, nov(6, 10, 0), "S2")
	f.scan(devC, nov(6, 11, 0), "S2")
	look := func(numIDK, snim string) (ScanIdentity, bool) {
		t.Helper()
		s, ok, err := f.j.LookupScan(numIDK, snim)
		if err != nil {
			t.Fatal(err)
		}
		return s, ok
	}
	want := ScanIdentity{KodTO: "10216100", NaimTO: "БАЛТИЙСКАЯ", NaimZTK: "ПКТ", TypeIDK: 2, NumIDK: "850591", DislIDK: 2, Date: nov(5, 0, 0)}
	for _, idk := range []string{"850591", ""} {
		if s, ok := look(idk, " s1 "); !ok || s != want {
			t.Errorf("LookupScan(%q, S1) = %+v, %v; want %+v", idk, s, ok, want)
		}
	}
	if _, ok := look("", "S2"); ok {
		t.Error("S2 of two ИДК found without NUM_IDK")
	}
	if s, ok := look("850593", "S2"); !ok || s.KodTO != "10005000" {
		t.Errorf("S2 of 850593: %+v, %v", s, ok)
	}
	if _, ok := look("850592", "S1"); ok {
		t.Error("S1 found at an ИДК that did not make it")
	}
	if _, _, err := NewScanJournal(scanMSK).LookupScan("", "S1"); err == nil {
		t.Error("LookupScan before Use did not fail")
	}
}

// A collector upgraded to the journal fills it once from the event log.
func TestScanJournalBackfill(t *testing.T) {
	dir := t.TempDir()
	st, err := store.Open(dir, store.Options{Location: scanMSK, Clock: simclock.New(nov(30, 12, 0))})
	if err != nil {
		t.Fatal(err)
	}
	// The hello stores the identity the backfill hands the consumers.
	if err := st.PutDevice(devA); err != nil {
		t.Fatal(err)
	}
	log := ingest.FromStore(st)
	old := ingest.New(ingest.Config{Log: log})
	if err := old.Load(); err != nil {
		t.Fatal(err)
	}
	ev := &idkpb.Event{Seq: 1, TimeUnixNano: nov(5, 10, 0).UnixNano(), Body: &idkpb.Event_ScanSeen{ScanSeen: &idkpb.ScanSeen{NumSnim: "S1", Index: 1}}}
	fe := &idkpb.Event{Seq: 2, TimeUnixNano: nov(5, 10, 13).UnixNano(), Body: &idkpb.Event_Form{Form: formRev(1, fullForm("S1", nov(5, 10, 0)))}}
	if _, err := old.Ingest(devA, 1, []*idkpb.Event{ev, fe}, func(n int64) time.Time { return time.Unix(0, n) }); err != nil {
		t.Fatal(err)
	}
	j := NewScanJournal(scanMSK)
	in := ingest.New(ingest.Config{Log: log, Consumers: map[string]ingest.Consumer{"report.scans": j}})
	if err := in.Load(); err != nil {
		t.Fatal(err)
	}
	var rows []Row
	err = j.Table1(log, "10216100", nov(1, 0, 0), nov(30, 0, 0), nil, roster, func(r Row, _ *Missing) error { rows = append(rows, r); return nil })
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1 || cell(rows[0], "NUM_SNIM") != "S1" || cell(rows[0], "REZ") != "2" || cell(rows[0], "FIO_OPER") == "" {
		t.Errorf("rows after the backfill: %q", rows)
	}
	st.Close()
}

// state sends a StateChange of dev's at at, saying where it stands (site
// nil: where it stood).
func (f *scanFixture) state(dev *idkpb.Device, at time.Time, st idkpb.DeviceState, site *idkpb.Site) {
	f.t.Helper()
	f.send(dev, at, 0, &idkpb.Event{Body: &idkpb.Event_State{State: &idkpb.StateChange{State: st, Source: "staff", Site: site}}})
}

// A mobile ИДК's scans show the site it stood at when it made each: its
// StateChanges' sites, by their time, whenever the scan's event comes. A
// site field left empty is the hello's; a site naming another customs
// body is not taken.
func TestTable1Site(t *testing.T) {
	f := newScanFixture(t)
	devM := &idkpb.Device{NumIdk: "850594", TypeIdk: 2, KodTo: "10216100", NaimTo: "Балтийская", NaimZtk: "ЗТК Дом", DislIdk: 5}
	dolgoe := &idkpb.Site{NaimZtk: "МАПП Долгое", KodTo: "10216100", NaimTo: "Балтийская таможня", Disl: 1}
	sever := &idkpb.Site{NaimZtk: "ждпп  Север", Disl: 3} // no KOD_TO, no NAIM_TO
	alien := &idkpb.Site{NaimZtk: "Чужой ЗТК", KodTo: "10005000", NaimTo: "Другая", Disl: 2}

	f.scan(devM, nov(5, 7, 0), "S1") // no site said yet: the hello's
	f.state(devM, nov(5, 8, 0), idkpb.DeviceState_DEVICE_STATE_OPERATIONS, dolgoe)
	f.scan(devM, nov(5, 8, 0), "S2") // at the change's very time
	f.state(devM, nov(5, 9, 0), idkpb.DeviceState_DEVICE_STATE_WAITING, nil)
	f.scan(devM, nov(5, 9, 30), "S3") // a change without a site: still Долгое
	f.state(devM, nov(5, 12, 0), idkpb.DeviceState_DEVICE_STATE_RELOCATION, dolgoe)
	f.state(devM, nov(5, 13, 0), idkpb.DeviceState_DEVICE_STATE_OPERATIONS, sever)
	f.scan(devM, nov(5, 14, 0), "S4")
	f.state(devM, nov(5, 15, 0), idkpb.DeviceState_DEVICE_STATE_OPERATIONS, alien)
	f.scan(devM, nov(5, 15, 30), "S5") // another office's site: the hello's
	// Late events, after the changes of 13:00 and 15:00: each takes the
	// site of its own time.
	f.scan(devM, nov(5, 10, 0), "S6")
	f.form(devM, nov(5, 16, 0), 1, fullForm("S7", nov(5, 11, 0))) // the form makes the row
	f.form(devM, nov(5, 16, 1), 1, fullForm("S8", nov(5, 11, 30)))
	f.scan(devM, nov(5, 13, 30), "S8") // its ScanSeen moves it to Север

	type id struct{ kodTO, naimTO, naimZTK, disl string }
	hello := id{"10216100", "БАЛТИЙСКАЯ", "ЗТК ДОМ", "5"}
	atDolgoe := id{"10216100", "БАЛТИЙСКАЯ ТАМОЖНЯ", "МАПП ДОЛГОЕ", "1"}
	atSever := id{"10216100", "БАЛТИЙСКАЯ", "ЖДПП СЕВЕР", "3"}
	want := map[string]id{
		"S1": hello, "S2": atDolgoe, "S3": atDolgoe, "S4": atSever, "S5": hello,
		"S6": atDolgoe, "S7": atDolgoe, "S8": atSever,
	}
	rows := f.table1("10216100", nov(5, 0, 0), nov(6, 0, 0), nil)
	if len(rows) != len(want) {
		t.Fatalf("%d rows, want %d", len(rows), len(want))
	}
	for _, r := range rows {
		snim := cell(r.row, "NUM_SNIM")
		got := id{cell(r.row, "KOD_TO"), cell(r.row, "NAIM_TO"), cell(r.row, "NAIM_ZTK"), cell(r.row, "DISL_IDK")}
		if got != want[snim] {
			t.Errorf("%s: identity %q, want %q", snim, got, want[snim])
		}
	}
	if rows := f.table1("10005000", nov(1, 0, 0), nov(30, 0, 0), nil); len(rows) != 0 {
		t.Errorf("a site naming 10005000 put %d rows into its report", len(rows))
	}

	// Tables 2 and 6 copy the same identity.
	for snim, w := range want {
		s, ok, err := f.j.LookupScan("850594", snim)
		if err != nil || !ok {
			t.Fatalf("LookupScan(%s): %v, %v", snim, ok, err)
		}
		got := id{s.KodTO, s.NaimTO, s.NaimZTK, strconv.Itoa(s.DislIDK)}
		if got != w || s.TypeIDK != 2 || s.NumIDK != "850594" {
			t.Errorf("LookupScan(%s) = %+v, want %q", snim, s, w)
		}
	}
}

// DOC_NUM is the first ДТ or transit declaration number of «Доп Там
// Инфо1», whole; other documents' numbers are no DOC_NUM, and a row
// without one is not incomplete for it.
func TestTable1DocNum(t *testing.T) {
	for info, want := range map[string]string{
		"XZ12345678/10702070/170717/0012345/накл 55":                  "10702070/170717/0012345",
		"CMR 123/10702070 / 170717 / 0012345/10216100/010125/7654321": "10702070/170717/0012345",
		"накл 55/CMR 123":          "",
		"TIR XZ12345678":           "",
		"110702070/170717/0012345": "", // 9 digits: no ДТ
		"":                         "",
	} {
		if got := t1FormFields(&idkpb.Form{CustomsInfo1: info}).DocNum; got != want {
			t.Errorf("DOC_NUM of %q = %q, want %q", info, got, want)
		}
	}
	f := newScanFixture(t)
	f.scan(devA, nov(5, 10, 0), "S1")
	form := fullForm("S1", nov(5, 10, 0))
	form.CustomsInfo1 = "накл 55/CMR 123"
	f.form(devA, nov(5, 10, 13), 1, form)
	rows := f.table1("10216100", nov(5, 0, 0), nov(6, 0, 0), nil)
	if len(rows) != 1 || cell(rows[0].row, "DOC_NUM") != "" {
		t.Fatalf("rows %+v", rows)
	}
	if m := rows[0].miss; m != nil && slices.Contains(m.Fields, "DOC_NUM") {
		t.Errorf("DOC_NUM listed missing: %v", m.Fields)
	}
}

func TestPlates(t *testing.T) {
	for in, want := range map[string][2]string{
		"А654АА777/АВ123477":   {"А654АА777", "АВ123477"},
		"RD5689 / D689":        {"RD5689", "D689"},
		"rd-5689, d 689":       {"RD5689", "D689"},
		"А654АА777 АВ123477":   {"А654АА777", "АВ123477"},
		"А 654 АА 777":         {"А654АА777", ""},
		"А654АА777":            {"А654АА777", ""},
		"/АВ123477":            {"АВ123477", ""},
		"":                     {"", ""},
		"A1;B2;C3":             {"A1", "B2"},
		" А654АА777 ; АВ1234 ": {"А654АА777", "АВ1234"},
	} {
		ts, pts := t1Plates(in)
		if ts != want[0] || pts != want[1] {
			t.Errorf("t1Plates(%q) = %q, %q; want %q", in, ts, pts, want)
		}
	}
}
