package report_test

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"idk/collector/cases"
	"idk/collector/report"
	"idk/simulator/simclock"
)

var msk = time.FixedZone("MSK", 3*3600)

// on is a wall-clock time on day d of March 2024 in msk.
func on(d, h, m int) time.Time { return time.Date(2024, time.March, d, h, m, 0, 0, msk) }

// engine is a real case engine on a temporary file, with a virtual clock.
type engine struct {
	t   *testing.T
	e   *cases.Engine
	clk *simclock.Clock
}

func newEngine(t *testing.T, start time.Time) *engine {
	t.Helper()
	clk := simclock.New(start)
	e, err := cases.Open(filepath.Join(t.TempDir(), "cases.db"), msk, clk)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	for _, d := range []cases.Device{
		{NumIDK: "850591", TypeIDK: 2, KodTO: "10101010", NaimTO: "Балтийская", NaimZTK: "пкт", DislIDK: 2},
		{NumIDK: "850592", TypeIDK: 1, KodTO: "10101020", NaimTO: "Калининградская", NaimZTK: "мапп", DislIDK: 1},
	} {
		if err := e.SetDevice(d); err != nil {
			t.Fatal(err)
		}
	}
	return &engine{t: t, e: e, clk: clk}
}

// at moves the clock forward to now and ticks, so deadlines passed by
// then are recorded.
func (g *engine) at(now time.Time) {
	g.t.Helper()
	if d := now.Sub(g.clk.Now()); d > 0 {
		g.clk.Advance(d)
	}
	if err := g.e.Tick(); err != nil {
		g.t.Fatal(err)
	}
}

// add reports ev, with the clock at its time unless it is later.
func (g *engine) add(ev cases.Event) string {
	g.t.Helper()
	g.at(ev.Time)
	if ev.By == "" {
		ev.By = "оператор"
	}
	id, err := g.e.Add(ev)
	if err != nil {
		g.t.Fatalf("add %+v: %v", ev, err)
	}
	return id
}

// inspection is an object that arrives, is scanned and waits for its
// documents past the 15 minutes of TIME_2.
func (g *engine) inspection(numIDK, snim string, arrival time.Time) string {
	g.t.Helper()
	id := g.add(cases.Event{Kind: cases.Arrival, Time: arrival, NumIDK: numIDK})
	g.add(cases.Event{Kind: cases.Scan, Time: arrival.Add(time.Minute), NumIDK: numIDK, NumSnim: snim})
	g.at(arrival.Add(16 * time.Minute))
	return id
}

func table4(t *testing.T, src report.BreachSource, kodTO string, from, to time.Time) []report.Row {
	t.Helper()
	rows, err := report.Table4Rows(src, kodTO, from, to)
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

// checkRows compares rows with want cell by cell, naming the column.
func checkRows(t *testing.T, table *report.Table, got []report.Row, want [][]string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d rows, want %d:\n%s", len(got), len(want), dump(got))
	}
	for i := range want {
		if len(got[i]) != len(table.Columns) {
			t.Fatalf("row %d has %d cells, want %d", i, len(got[i]), len(table.Columns))
		}
		for j, c := range table.Columns {
			if got[i][j] != want[i][j] {
				t.Errorf("row %d %s = %q, want %q", i, c.Name, got[i][j], want[i][j])
			}
		}
	}
}

func dump(rows []report.Row) string {
	var b strings.Builder
	for _, r := range rows {
		b.WriteString(strings.Join(r, " | ") + "\n")
	}
	return b.String()
}

// TestTable4 drives a real engine through breaches that stand, are
// corrected, and are withdrawn wholly or in part, and checks the rows.
func TestTable4(t *testing.T) {
	g := newEngine(t, on(4, 8, 0))

	// The day before the report: not in it.
	g.inspection("850591", "S9", on(4, 10, 0))
	g.add(cases.Event{Kind: cases.DocsReturned, Time: on(4, 10, 20), NumIDK: "850591", NumSnim: "S9"})

	// S2: a breach corrected to another time by a later report; its
	// reason given.
	a := g.inspection("850591", "S2", on(5, 10, 0))
	g.add(cases.Event{Kind: cases.DocsReturned, Time: on(5, 10, 25), NumIDK: "850591", NumSnim: "S2"})
	if err := g.e.SetReason(a, "очередь", "начальник смены"); err != nil {
		t.Fatal(err)
	}
	g.at(on(5, 10, 40))
	g.add(cases.Event{Kind: cases.DocsReturned, Time: on(5, 10, 20), NumIDK: "850591", NumSnim: "S2", By: "Петров", Reason: "уточнено по журналу"})

	// S1: a breach withdrawn by a late end event with a reason.
	g.inspection("850591", "S1", on(5, 11, 0))
	g.add(cases.Event{Kind: cases.DocsReturned, Time: on(5, 11, 18), NumIDK: "850591", NumSnim: "S1", By: "Петров"})
	g.at(on(5, 11, 30))
	g.add(cases.Event{Kind: cases.DocsReturned, Time: on(5, 11, 10), NumIDK: "850591", NumSnim: "S1", By: "Иванов", Reason: "запись из журнала"})

	// S3: TIME_1 and TIME_2 breached, then the risk withdrawn: TIME_2
	// stands, TIME_1 is withdrawn.
	g.add(cases.Event{Kind: cases.RiskDetected, Time: on(5, 12, 0), NumIDK: "850591", Docs: []string{"MDP3"}})
	g.inspection("850591", "S3", on(5, 12, 1))
	g.add(cases.Event{Kind: cases.DocsHanded, Time: on(5, 12, 21), NumIDK: "850591", Docs: []string{"MDP3"}})
	g.add(cases.Event{Kind: cases.CarrierInformed, Time: on(5, 12, 22), NumIDK: "850591", Docs: []string{"MDP3"}})
	g.add(cases.Event{Kind: cases.DocsReturned, Time: on(5, 12, 25), NumIDK: "850591", NumSnim: "S3"})
	g.add(cases.Event{Kind: cases.RiskWithdrawn, Time: on(5, 12, 30), NumIDK: "850591", NumSnim: "S3", By: "Сидоров", Reason: "ошибка ввода"})

	// Another customs body's ИДК: not in this report.
	g.inspection("850592", "Y1", on(5, 13, 0))

	// The next day: S0 still running at the report; S4 withdrawn within
	// the backdating window, so without a reason.
	g.inspection("850591", "S0", on(6, 9, 0))
	g.inspection("850591", "S4", on(6, 10, 0))
	g.add(cases.Event{Kind: cases.DocsReturned, Time: on(6, 10, 14), NumIDK: "850591", NumSnim: "S4", By: "Петров"})
	// S5: TIME_2 breached while running, then withdrawn by the scan kind
	// declared after its deadline: radiation control inspects no object.
	g.inspection("850591", "S5", on(6, 10, 20))
	g.add(cases.Event{Kind: cases.Scan, Time: on(6, 10, 38), NumIDK: "850591", NumSnim: "S5", VerScan: cases.ScanRadiation, By: "Петров"})
	g.at(on(6, 11, 0))

	row := func(date, snim, t1, t2, prich string) []string {
		return []string{"10101010", "БАЛТИЙСКАЯ", "ПКТ", "2", "850591", "2", date, snim, t1, t2, "", prich}
	}
	want := [][]string{
		row("05.03.2024", "S1", "", "0,18", "ОТМЕНЕНО 05.03.2024 ИВАНОВ: ЗАПИСЬ ИЗ ЖУРНАЛА"),
		row("05.03.2024", "S2", "", "0,20", "ОЧЕРЕДЬ"),
		row("05.03.2024", "S3", "0,22", "0,24", "TIME_1 ОТМЕНЕНО 05.03.2024 СИДОРОВ: ОШИБКА ВВОДА"),
		row("06.03.2024", "S0", "", "2,00", ""),
		row("06.03.2024", "S4", "", "0,16", "ОТМЕНЕНО 06.03.2024 ПЕТРОВ: ДОКУМЕНТЫ ВОЗВРАЩЕНЫ (П. 22Д) 06.03.2024 10:14"),
		row("06.03.2024", "S5", "", "0,16", "ОТМЕНЕНО 06.03.2024 ПЕТРОВ: СКАНИРОВАНИЕ 06.03.2024 10:38, ВИД СНИМКА 2 (РК)"),
	}
	checkRows(t, &report.Table4, table4(t, g.e, "10101010", on(5, 0, 0), on(7, 0, 0)), want)
	checkRows(t, &report.Table4, table4(t, g.e, "10101010", on(5, 0, 0), on(6, 0, 0)), want[:3])
	checkRows(t, &report.Table4, table4(t, g.e, "10101020", on(5, 0, 0), on(6, 0, 0)), [][]string{
		{"10101020", "КАЛИНИНГРАДСКАЯ", "МАПП", "1", "850592", "1", "05.03.2024", "Y1", "", "22,00", "", ""},
	})
	if rows := table4(t, g.e, "10101010", on(7, 0, 0), on(8, 0, 0)); len(rows) != 0 {
		t.Errorf("a day without breaches: %s", dump(rows))
	}
}

// fakeBreaches is a BreachSource answering with fixed histories.
type fakeBreaches []cases.History

func (f fakeBreaches) BreachHistory(from, to time.Time) ([]cases.History, error) { return f, nil }

// TestTable4DateNarAfterFirstMark: a case listed under the day of a
// withdrawn first breach shows under the DATE_NAR of the breach that
// stands, which may be a later day.
func TestTable4DateNarAfterFirstMark(t *testing.T) {
	cur := cases.Row{ID: "C1", KOD_TO: "10101010", NUM_IDK: "850591", DATE_NAR: "01.04.2024", NUM_SNIM: "S1", TIME_3: "0,45"}
	src := fakeBreaches{{ID: "C1", Current: &cur, Versions: []cases.Version{
		{N: 1, Standing: true, Row: cases.Row{KOD_TO: "10101010", NUM_IDK: "850591", DATE_NAR: "31.03.2024", NUM_SNIM: "S1", TIME_1: "0,16"}},
		{N: 2, Standing: true, At: on(31, 23, 50), By: "Сидоров", Why: "risk_withdrawn event of 2024-03-31T23:50:00+03:00, reason: ошибка", Row: cur},
	}}}
	april := time.Date(2024, time.April, 1, 0, 0, 0, 0, msk)
	checkRows(t, &report.Table4, table4(t, src, "10101010", april, april.AddDate(0, 0, 1)), [][]string{
		{"10101010", "", "", "", "850591", "", "01.04.2024", "S1", "0,16", "", "0,45", "TIME_1 ОТМЕНЕНО 31.03.2024 СИДОРОВ: ОШИБКА"},
	})
	if rows := table4(t, src, "10101010", on(31, 0, 0), april); len(rows) != 0 {
		t.Errorf("listed under its first mark's day: %s", dump(rows))
	}
}

// TestTable4WithdrawalWhy: PRICH_NAR says wholly what withdrew a breach:
// the reason given or the event and its time, and the kind of scan when
// the event declared one.
func TestTable4WithdrawalWhy(t *testing.T) {
	first := cases.Row{KOD_TO: "10101010", NUM_IDK: "850591", DATE_NAR: "05.03.2024", TIME_2: "0,16"}
	for _, c := range []struct{ why, want string }{
		{"scan event of 2024-03-05T10:38:00+03:00, VER_SCAN 2 (РК)", "ОТМЕНЕНО 05.03.2024 ПЕТРОВ: СКАНИРОВАНИЕ 05.03.2024 10:38, ВИД СНИМКА 2 (РК)"},
		{"scan event of 2024-03-05T10:38:00+03:00, VER_SCAN 5 (ТЕСТ), reason: записано позже", "ОТМЕНЕНО 05.03.2024 ПЕТРОВ: ЗАПИСАНО ПОЗЖЕ, ВИД СНИМКА 5 (ТЕСТ)"},
		{"docs_returned event of 2024-03-05T10:14:00+03:00, reason: запись из журнала", "ОТМЕНЕНО 05.03.2024 ПЕТРОВ: ЗАПИСЬ ИЗ ЖУРНАЛА"},
		{"docs_returned event of 2024-03-05T10:14:00+03:00", "ОТМЕНЕНО 05.03.2024 ПЕТРОВ: ДОКУМЕНТЫ ВОЗВРАЩЕНЫ (П. 22Д) 05.03.2024 10:14"},
		{"something else", "ОТМЕНЕНО 05.03.2024 ПЕТРОВ: SOMETHING ELSE"},
	} {
		src := fakeBreaches{{ID: "C1", Versions: []cases.Version{
			{N: 1, Standing: true, At: on(5, 10, 16), By: "collector", Row: first},
			{N: 2, At: on(5, 10, 38), By: "Петров", Why: c.why, Row: cases.Row{KOD_TO: "10101010", NUM_IDK: "850591", DATE_NAR: "05.03.2024"}},
		}}}
		rows := table4(t, src, "10101010", on(5, 0, 0), on(6, 0, 0))
		if len(rows) != 1 {
			t.Fatalf("%s: %d rows, want 1", c.why, len(rows))
		}
		if got := rows[0][report.Table4.Field("PRICH_NAR")]; got != c.want {
			t.Errorf("%s: PRICH_NAR %q, want %q", c.why, got, c.want)
		}
		if got := rows[0][report.Table4.Field("TIME_2")]; got != "0,16" {
			t.Errorf("%s: TIME_2 %q, want the last standing version's 0,16", c.why, got)
		}
	}
}
