package report

import (
	"bytes"
	"encoding/json"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"idk/collector/cases"
	"idk/simulator/simclock"
)

// fakeItem36 is a case engine's table 4 histories and decisions.
type fakeItem36 struct {
	hs        []cases.History
	decisions map[string][]cases.BreachDecision
	decided   []string
}

func (f *fakeItem36) BreachHistory(from, to time.Time) ([]cases.History, error) { return f.hs, nil }

func (f *fakeItem36) Decisions(ids ...string) (map[string][]cases.BreachDecision, error) {
	out := map[string][]cases.BreachDecision{}
	for _, id := range ids {
		if ds, ok := f.decisions[id]; ok {
			out[id] = ds
		}
	}
	return out, nil
}

func (f *fakeItem36) Decide(caseID string, objective bool, by, note string) error {
	if !slices.ContainsFunc(f.hs, func(h cases.History) bool { return h.ID == caseID && h.Current != nil }) {
		return cases.ErrNotFound
	}
	f.decided = append(f.decided, caseID)
	n := len(f.decisions[caseID]) + 1
	f.decisions[caseID] = append(f.decisions[caseID], cases.BreachDecision{Case: caseID, Version: n, Objective: objective, By: by, Note: note, At: nov(30, 12, 0)})
	return nil
}

// standing is the history of a standing breach.
func standing(id, ztk, date, snim, t2, reason string) cases.History {
	r := cases.Row{ID: id, KOD_TO: "10216100", NAIM_TO: "ПСКОВСКАЯ", NAIM_ZTK: ztk, TYPE_IDK: 2, NUM_IDK: "850591", DISL_IDK: 1,
		DATE_NAR: date, NUM_SNIM: snim, TIME_2: t2, PRICH_NAR: reason}
	return cases.History{ID: id, Current: &r, Versions: []cases.Version{{N: 1, At: nov(1, 0, 0), By: "collector", Standing: true, Row: r}}}
}

func item36Fixture() *fakeItem36 {
	withdrawn := standing("C5", "МАПП УБЫЛИНКА", "03.11.2026", "S5", "0,16", "")
	withdrawn.Current = nil
	withdrawn.Versions = append(withdrawn.Versions, cases.Version{N: 2, At: nov(3, 12, 0), By: "ИВАНОВ", Why: "scan event of 2026-11-03T12:00:00+03:00, VER_SCAN 2 (РК)",
		Row: cases.Row{KOD_TO: "10216100", NAIM_ZTK: "МАПП УБЫЛИНКА", NUM_IDK: "850591", DATE_NAR: "03.11.2026", NUM_SNIM: "S5"}})
	other := standing("C9", "ЗТК", "04.11.2026", "S9", "0,20", "")
	other.Current.KOD_TO = "10216200"
	return &fakeItem36{
		hs: []cases.History{
			standing("C0", "МАПП УБЫЛИНКА", "31.10.2026", "S0", "0,17", ""), // the month before
			standing("C1", "МАПП УБЫЛИНКА", "02.11.2026", "S1", "0,17", "ПОЛОМКА ИДК"),
			standing("C2", "МАПП УБЫЛИНКА", "05.11.2026", "S2", "0,18", ""),
			standing("C3", "ПКТ", "01.11.2026", "S3", "0,19", "СБОРНЫЙ ГРУЗ"),
			standing("C4", "МАПП УБЫЛИНКА", "01.11.2026", "S4", "0,21", "детальный анализ снимка"),
			withdrawn, other,
			standing("C6", "ПКТ", "30.11.2026", "S6", "0,25", ""),
			standing("C7", "ПКТ", "01.12.2026", "S7", "0,25", ""), // the month after
		},
		decisions: map[string][]cases.BreachDecision{
			"C1": {{Case: "C1", Version: 1, Objective: false, By: "петров п.п.", At: nov(29, 10, 0)},
				{Case: "C1", Version: 2, Objective: true, By: "петров  п.п.", At: time.Date(2026, 12, 1, 0, 30, 0, 0, time.UTC)}},
			"C3": {{Case: "C3", Version: 1, Objective: false, By: "Сидоров", At: nov(29, 11, 0)}},
		},
	}
}

// TestItem36: the month's rows of the office, grouped by post, those
// without a cause first, each with its decision in force, as rows, as a
// workbook read back and as a printable page.
func TestItem36(t *testing.T) {
	src := item36Fixture()
	rep, err := BuildItem36(src, "10216100", nov(17, 0, 0), nov(30, 12, 0))
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, r := range rep.Rows {
		ids = append(ids, r.CaseID)
		if len(r.Row) != len(Item36Table.Columns) {
			t.Fatalf("row %s has %d cells", r.CaseID, len(r.Row))
		}
	}
	// МАПП УБЫЛИНКА: C2 (no cause), then C4, C1, C5 by date; ПКТ: C6 (no
	// cause), C3.
	if want := []string{"C2", "C4", "C1", "C5", "C6", "C3"}; !slices.Equal(ids, want) {
		t.Fatalf("rows %q, want %q", ids, want)
	}
	if rep.NaimTO != "ПСКОВСКАЯ" || !rep.Month.Equal(nov(1, 0, 0)) {
		t.Errorf("report %s %v", rep.NaimTO, rep.Month)
	}
	c := func(i int, name string) string { return rep.Rows[i].Row[Item36Table.Field(name)] }
	if !rep.Rows[0].NoCause || rep.Rows[1].NoCause || !rep.Rows[3].Withdrawn || rep.Rows[3].NoCause {
		t.Errorf("flags: %+v", rep.Rows)
	}
	// The decision in force is the last; its day is in the report's zone.
	if c(2, "RESHENIE") != Objective || c(2, "KTO_RESHIL") != "ПЕТРОВ П.П." || c(2, "DATA_RESHENIYA") != "01.12.2026" {
		t.Errorf("C1 decision: %q", rep.Rows[2].Row[12:])
	}
	if c(5, "RESHENIE") != NotObjective || c(5, "KTO_RESHIL") != "СИДОРОВ" || c(5, "DATA_RESHENIYA") != "29.11.2026" {
		t.Errorf("C3 decision: %q", rep.Rows[5].Row[12:])
	}
	if c(0, "RESHENIE") != "" || c(1, "PRICH_NAR") != "ДЕТАЛЬНЫЙ АНАЛИЗ СНИМКА" || !strings.HasPrefix(c(3, "PRICH_NAR"), "ОТМЕНЕНО 03.11.2026 ИВАНОВ: СКАНИРОВАНИЕ") {
		t.Errorf("cells: %+v", rep.Rows)
	}

	var buf bytes.Buffer
	if err := rep.WriteXLSX(&buf); err != nil {
		t.Fatal(err)
	}
	wb, err := ReadWorkbook(&buf)
	if err != nil {
		t.Fatal(err)
	}
	sheet := wb[Item36Table.Sheet]
	if len(sheet) != 1+len(rep.Rows) {
		t.Fatalf("sheet of %d rows, want %d", len(sheet), 1+len(rep.Rows))
	}
	for i, col := range Item36Table.Columns {
		if sheet[0][i] != col.Name {
			t.Errorf("header %d: %q, want %q", i, sheet[0][i], col.Name)
		}
	}
	for i, r := range rep.Rows {
		for j := range r.Row {
			if got := cellAt(sheet[i+1], j); got != r.Row[j] {
				t.Errorf("row %d %s: %q, want %q", i+1, Item36Table.Columns[j].Name, got, r.Row[j])
			}
		}
	}

	buf.Reset()
	if err := rep.WriteHTML(&buf); err != nil {
		t.Fatal(err)
	}
	page := buf.String()
	for _, want := range []string{"size: A4 landscape", "Начальник таможенного поста", "за ноябрь 2026 г.",
		"таможенный пост (ЗТК): МАПП УБЫЛИНКА", "таможенный пост (ЗТК): ПКТ", `class="nocause"`, "ПРИЧИНА НЕ УКАЗАНА",
		"<th>RESHENIE</th>", "ОБЪЕКТИВНАЯ", "ПЕТРОВ П.П."} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if n := strings.Count(page, "Начальник таможенного поста"); n != 2 {
		t.Errorf("%d signature lines, want one per post (2)", n)
	}
	if strings.Index(page, "S2") > strings.Index(page, "S4") {
		t.Error("page: the breach without a cause is not first")
	}

	// A month without breaches is still a document to sign.
	empty, err := BuildItem36(&fakeItem36{}, "10216100", nov(1, 0, 0), nov(30, 0, 0))
	if err != nil || len(empty.Rows) != 0 {
		t.Fatalf("empty: %+v, %v", empty, err)
	}
	buf.Reset()
	if err := empty.WriteHTML(&buf); err != nil || !strings.Contains(buf.String(), "не допущено") || !strings.Contains(buf.String(), "Начальник таможенного поста") {
		t.Errorf("empty page: %v\n%s", err, buf.String())
	}
}

func cellAt(r []string, i int) string {
	if i < len(r) {
		return r[i]
	}
	return ""
}

// TestItem36HTTP: the report in its three formats, a decision recorded,
// and the refusals.
func TestItem36HTTP(t *testing.T) {
	src := item36Fixture()
	h := &Item36Handler{Cases: src, Location: scanMSK, Offices: func() []string { return []string{"10216100", "10216200"} },
		Clock: simclock.New(nov(30, 12, 0))}
	do := func(method, target, body string) *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(method, target, strings.NewReader(body)))
		return w
	}
	w := do("GET", "/api/v1/reports/item36?month=2026-11&kod_to=10216100", "")
	if w.Code != 200 || w.Header().Get("Content-Type") != XLSXType {
		t.Fatalf("xlsx: %d %s", w.Code, w.Body)
	}
	if wb, err := ReadWorkbook(w.Body); err != nil || len(wb[Item36Table.Sheet]) != 7 {
		t.Errorf("xlsx read back: %v, %d rows", err, len(wb[Item36Table.Sheet]))
	}
	w = do("GET", "/api/v1/reports/item36?month=11.2026&kod_to=10216100&format=html", "")
	if w.Code != 200 || !strings.HasPrefix(w.Header().Get("Content-Type"), "text/html") || !strings.Contains(w.Body.String(), "Начальник таможенного поста") {
		t.Errorf("html: %d %s", w.Code, w.Header())
	}
	w = do("POST", "/api/v1/reports/item36/decision", `{"case_id":"C2","objective":false,"by":"Петров","note":"нет причины"}`)
	var ds []cases.BreachDecision
	if w.Code != 200 || json.Unmarshal(w.Body.Bytes(), &ds) != nil || len(ds) != 1 || ds[0].Objective || ds[0].By != "Петров" {
		t.Fatalf("decision: %d %s", w.Code, w.Body)
	}
	w = do("GET", "/api/v1/reports/item36?month=2026-11&kod_to=10216100&format=json", "")
	var reply Item36Reply
	if w.Code != 200 || json.Unmarshal(w.Body.Bytes(), &reply) != nil || len(reply.Rows) != 6 {
		t.Fatalf("json: %d %s", w.Code, w.Body)
	}
	if r := reply.Rows[0]; r.CaseID != "C2" || !r.NoCause || r.Decision == nil || r.Row[Item36Table.Field("RESHENIE")] != NotObjective {
		t.Errorf("json row C2: %+v", r)
	}
	w = do("GET", "/api/v1/reports/item36?month=2026-11&kod_to=10216200&format=json", "")
	if json.Unmarshal(w.Body.Bytes(), &reply) != nil || len(reply.Rows) != 1 || reply.Rows[0].CaseID != "C9" {
		t.Errorf("other office: %s", w.Body)
	}

	for _, tc := range []struct {
		method, target, body string
		code                 int
	}{
		{"GET", "/api/v1/reports/item36?kod_to=10216100", "", 400},
		{"GET", "/api/v1/reports/item36?month=2026-13&kod_to=10216100", "", 400},
		{"GET", "/api/v1/reports/item36?month=2026-11", "", 400}, // two offices
		{"GET", "/api/v1/reports/item36?month=2026-11&kod_to=10005000", "", 404},
		{"GET", "/api/v1/reports/item36?month=2026-11&kod_to=10216100&format=pdf", "", 400},
		{"GET", "/api/v1/reports/item36?month=2026-11&kod_to=10216100&day=1", "", 400},
		{"POST", "/api/v1/reports/item36/decision", `{"case_id":"C2","by":"Петров"}`, 400},
		{"POST", "/api/v1/reports/item36/decision", `{"case_id":"C2","objective":true}`, 400},
		{"POST", "/api/v1/reports/item36/decision", `{"objective":true,"by":"Петров"}`, 400},
		{"POST", "/api/v1/reports/item36/decision", `{"case_id":"C2","objective":true,"by":"Петров","extra":1}`, 400},
		{"POST", "/api/v1/reports/item36/decision", `{"case_id":"NONE","objective":true,"by":"Петров"}`, 404},
		{"GET", "/api/v1/reports/item36/decision", "", 405},
	} {
		if w := do(tc.method, tc.target, tc.body); w.Code != tc.code {
			t.Errorf("%s %s %s: %d, want %d: %s", tc.method, tc.target, tc.body, w.Code, tc.code, w.Body)
		}
	}
	if !slices.Equal(src.decided, []string{"C2"}) {
		t.Errorf("decided %q", src.decided)
	}
}
