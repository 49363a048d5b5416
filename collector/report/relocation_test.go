package report

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"idk/collector/availability"
	"idk/collector/ingest"
	"idk/collector/store"
	"idk/protocol/idkpb"
	"idk/simulator/simclock"
)

// TestRelocationSheet: relocations ingested into the real index, read
// back by availability.Relocations, written to a workbook and read again:
// a mobile ИДК that moved twice in the month, one move still going on.
func TestRelocationSheet(t *testing.T) {
	loc := time.FixedZone("MSK", 3*3600)
	day := func(d, h, m int) time.Time { return time.Date(2026, time.October, d, h, m, 0, 0, loc) }
	clk := simclock.New(day(31, 12, 0))
	st, err := store.Open(t.TempDir(), store.Options{Location: loc, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	log := ingest.FromStore(st)
	j := availability.NewJournal(availability.NewTracker(loc, clk))
	in := ingest.New(ingest.Config{Log: log, Consumers: map[string]ingest.Consumer{"availability": j}, Followers: []ingest.Follower{j}})
	if err := in.Load(); err != nil {
		t.Fatal(err)
	}
	dev := &idkpb.Device{NumIdk: "850592", TypeIdk: 1, KodTo: "10216100", NaimTo: "Балтийская", NaimZtk: "МАПП А", DislIdk: 1}
	a := &idkpb.Site{NaimZtk: "МАПП А", KodTo: "10216100", NaimTo: "Балтийская", Disl: 1}
	b := &idkpb.Site{NaimZtk: "ЗТК Б", KodTo: "10209010", NaimTo: "Псковская", Disl: 5}
	var evs []*idkpb.Event
	for i, c := range []struct {
		at    time.Time
		state idkpb.DeviceState
		site  *idkpb.Site
	}{
		{day(2, 8, 0), idkpb.DeviceState_DEVICE_STATE_WORKING, a},
		{day(6, 9, 0), idkpb.DeviceState_DEVICE_STATE_RELOCATION, a},
		{day(10, 17, 45), idkpb.DeviceState_DEVICE_STATE_OPERATIONS, b},
		{day(30, 7, 0), idkpb.DeviceState_DEVICE_STATE_RELOCATION, b},
	} {
		evs = append(evs, &idkpb.Event{Seq: uint64(i + 1), TimeUnixNano: c.at.UnixNano(),
			Body: &idkpb.Event_State{State: &idkpb.StateChange{State: c.state, Site: c.site}}})
	}
	if _, err := in.Ingest(dev, 1, evs, func(n int64) time.Time { return time.Unix(0, n) }); err != nil {
		t.Fatal(err)
	}
	rels, err := availability.Relocations(log, day(1, 0, 0), time.Date(2026, time.November, 1, 0, 0, 0, 0, loc), loc)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := WriteWorkbook(&buf, []Sheet{RelocationSheet(rels, loc)}, WorkbookOptions{Title: "Передислокация ИДК 10.2026", Created: day(31, 12, 0)}); err != nil {
		t.Fatal(err)
	}
	book, err := ReadWorkbook(&buf)
	if err != nil {
		t.Fatal(err)
	}
	got := book[RelocationTable.Sheet]
	want := [][]string{
		{"REGION", "NUM_IDK", "TYPE_IDK", "KOD_M_D_OT", "NAIM_M_D_OT", "NAIM_ZTK_M_D_OT", "KOD_M_D_DO", "NAIM_M_D_DO", "NAIM_ZTK_M_D_DO", "DATE_START", "DATE_END", "TIME_PEREDISL", "KOL_DN", "PUNKT"},
		{"10200000", "850592", "1", "10216100", "БАЛТИЙСКАЯ", "МАПП А", "10209010", "ПСКОВСКАЯ", "ЗТК Б", "06.10.2026 09:00", "10.10.2026 17:45", "104,45", "5", "29"},
		{"10200000", "850592", "1", "10209010", "ПСКОВСКАЯ", "ЗТК Б", "", "", "", "30.10.2026 07:00"},
	}
	if !reflect.DeepEqual(trimRows(got), want) {
		t.Fatalf("sheet:\n got %q\nwant %q", got, want)
	}

	// The same over HTTP: JSON and the workbook, and a bad month refused.
	h := &RelocationHandler{Index: log, Location: loc, TempDir: t.TempDir()}
	for target, want := range map[string]int{
		"/api/v1/reports/relocations?month=2026-10&format=json": http.StatusOK,
		"/api/v1/reports/relocations?month=10.2026":             http.StatusOK,
		"/api/v1/reports/relocations?month=2026-13":             http.StatusBadRequest,
		"/api/v1/reports/relocations?month=2026-10&format=pdf":  http.StatusBadRequest,
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, target, nil))
		if rec.Code != want {
			t.Errorf("%s: %d %s, want %d", target, rec.Code, rec.Body, want)
			continue
		}
		switch {
		case strings.Contains(target, "json"):
			var got []availability.Relocation
			if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil || len(got) != len(rels) {
				t.Errorf("%s: %d relocations, want %d (%v)", target, len(got), len(rels), err)
			}
		case want == http.StatusOK:
			wb, err := ReadWorkbook(rec.Body)
			if err != nil || len(wb[RelocationTable.Sheet]) != len(rels)+1 {
				t.Errorf("%s: workbook %v %v", target, wb, err)
			}
		}
	}
}

// trimRows drops the empty cells a reader gives at the end of a row.
func trimRows(rows [][]string) [][]string {
	out := make([][]string, len(rows))
	for i, r := range rows {
		n := len(r)
		for n > 0 && r[n-1] == "" {
			n--
		}
		out[i] = r[:n]
	}
	return out
}
