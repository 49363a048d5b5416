package nshs

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"idk/collector/report"
	"idk/internal/clock"
)

var formMSK = time.FixedZone("MSK", 3*60*60)

// formFakeLister is a Lister over a slice: Between gives the НШС that overlap
// [from, to), as a book might, so that Form's own selection is tested.
type formFakeLister struct {
	ns    []NSHS
	err   error
	calls [][2]time.Time
}

func (f *formFakeLister) Between(from, to time.Time) ([]NSHS, error) {
	f.calls = append(f.calls, [2]time.Time{from, to})
	if f.err != nil {
		return nil, f.err
	}
	var out []NSHS
	for _, n := range f.ns {
		if n.Start.Before(to) && (n.End.IsZero() || n.End.After(from)) {
			out = append(out, n)
		}
	}
	return out, nil
}

func formAt(s string) time.Time {
	t, err := time.ParseInLocation("02.01.2006 15:04", s, formMSK)
	if err != nil {
		panic(err)
	}
	return t
}

// formFixture: the duty day of 27.11.2026 (a Friday) is 27.11 08:00 to
// 28.11 08:00 MSK; the week is 23.11 (Monday) to 29.11.
func formFixture() *formFakeLister {
	return &formFakeLister{ns: []NSHS{
		{ID: "n1", Source: SourceIDK, KodTO: "10216100", NumIDK: "850591", Systems: "ИДК 850591",
			Description: "ИДК не работает: отказ рентгеновского излучателя", Category: CategoryI,
			Cause: CauseInternalICT, Start: formAt("27.11.2026 09:15"), End: formAt("27.11.2026 12:20"), Confirmed: true,
			Informed: []string{"ОДС ЦЭД", "ИТС Балтийской таможни"}, Works: "Заменен блок питания излучателя"},
		// open: measured to now, marked
		{ID: "n2", Source: SourceLink, KodTO: "10216100", NumIDK: "850592", Systems: "Канал связи поста с коллектором",
			Description: "Нет связи", Category: CategoryI, Cause: CauseExternalChannel, Start: formAt("28.11.2026 07:59")},
		// category II the same day: not in the form, in the summary
		{ID: "n3", Source: SourceIDK, KodTO: "10216100", Systems: "ИДК 850593", Description: "Сбой АРМ",
			Category: CategoryII, Cause: CauseInternalUser, Start: formAt("27.11.2026 10:00"), End: formAt("27.11.2026 10:40"), Confirmed: true},
		// the day before's duty day (07:59 of 27.11), another body
		{ID: "n4", Source: SourceCollector, KodTO: "10228000", Systems: "Коллектор РТУ", Description: "Коллектор недоступен.",
			Category: CategoryI, Cause: CauseInternalEngineer, Start: formAt("27.11.2026 07:59"), End: formAt("27.11.2026 08:30"), Confirmed: true,
			Informed: []string{"ОДС РТУ"}},
		// the next duty day: 28.11 08:00
		{ID: "n5", Source: SourceIDK, KodTO: "10216100", Systems: "ИДК 850591", Description: "Повтор", Category: CategoryIV,
			Cause: CauseInternalPlanned, Start: formAt("28.11.2026 08:00"), End: formAt("28.11.2026 08:20"), Confirmed: true},
		// the week before (Sunday 22.11 23:59)
		{ID: "n6", Source: SourceIDK, KodTO: "10216100", Systems: "ИДК 850591", Description: "Старое", Category: CategoryI,
			Cause: CauseInternalICT, Start: formAt("22.11.2026 23:59"), End: formAt("23.11.2026 01:00"), Confirmed: true},
		// Monday 23.11 00:00: in the week; ended but not confirmed (5.11)
		{ID: "n7", Source: SourceIDK, KodTO: "10228000", Systems: "ИДК 900001", Description: "Не включается", Category: CategoryIII,
			Cause: CauseExternalPower, Start: formAt("23.11.2026 00:00"), End: formAt("23.11.2026 02:30")},
		{ID: "n8", Source: SourceIDK, KodTO: "10228000", Systems: "ИДК 900001", Description: "Внешний сбой", Category: CategoryV,
			Cause: CauseExternalOperator, Start: formAt("29.11.2026 23:00"), End: formAt("29.11.2026 23:10"), Confirmed: true},
	}}
}

var formNow = formAt("28.11.2026 10:04")

func formReadBack(t *testing.T, d *Document) map[string][][]string {
	t.Helper()
	var buf bytes.Buffer
	if err := d.WriteXLSX(&buf); err != nil {
		t.Fatal(err)
	}
	wb, err := report.ReadWorkbook(&buf)
	if err != nil {
		t.Fatal(err)
	}
	return wb
}

func TestFormDayRowsCellByCell(t *testing.T) {
	l := formFixture()
	d, err := DayForm(l, formAt("27.11.2026 00:00"), DefaultShiftStart, formMSK, formNow, "")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := l.calls[0], [2]time.Time{formAt("27.11.2026 08:00"), formAt("28.11.2026 08:00")}; got != want {
		t.Errorf("Between(%v), want %v", got, want)
	}
	wb := formReadBack(t, d)
	if len(wb) != 1 {
		t.Errorf("sheets %d, want the form only", len(wb))
	}
	rows := wb[FormTable.Sheet]
	want := [][]string{
		{"TAM_ORGAN", "SISTEMY_OPISANIE", "KATEGORIYA", "DATA_VOZN", "DATA_USTR", "PRODOLZH", "PRICHINY_RABOTY"},
		{"10216100",
			strings.ToUpper("ИДК 850591. ИДК не работает: отказ рентгеновского излучателя. Проинформированы: ОДС ЦЭД, ИТС Балтийской таможни."),
			"I", "27.11.2026 09:15", "27.11.2026 12:20", "3,05",
			strings.ToUpper("Внутренняя: неисправность (сбой) средств ИКТ. Заменен блок питания излучателя.")},
		{"10216100",
			strings.ToUpper("Канал связи поста с коллектором. Нет связи. Проинформированы: не указано."),
			"I", "28.11.2026 07:59", "", "2,05 (продолжается)",
			strings.ToUpper("Внешняя: неисправность канала связи оператора связи.")},
	}
	if len(rows) != len(want) {
		t.Fatalf("%d rows, want %d: %q", len(rows), len(want), rows)
	}
	for i := range want {
		for j := range want[i] {
			if rows[i][j] != want[i][j] {
				t.Errorf("row %d %s: %q, want %q", i+1, want[0][j], rows[i][j], want[i][j])
			}
		}
	}
	// The document keeps the case as entered, for the page.
	if got := d.Rows[0][1]; !strings.HasPrefix(got, "ИДК 850591. ИДК не работает") {
		t.Errorf("row 1 column 2 %q", got)
	}
}

func TestFormOnlyCategoryI(t *testing.T) {
	d, err := WeekForm(formFixture(), formAt("25.11.2026 00:00"), formMSK, formNow, "")
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, n := range d.NSHS {
		if n.Category != CategoryI {
			t.Errorf("НШС %s of category %s in the form", n.ID, n.Category)
		}
		ids = append(ids, n.ID)
	}
	if want := []string{"n4", "n1", "n2"}; !slices.Equal(ids, want) {
		t.Errorf("form НШС %v, want %v", ids, want)
	}
	var all []string
	for _, n := range d.All {
		all = append(all, n.ID)
	}
	if want := []string{"n7", "n4", "n1", "n3", "n2", "n5", "n8"}; !slices.Equal(all, want) {
		t.Errorf("week's НШС %v, want %v", all, want)
	}
	if _, err := FormOne(formFixture(), "n3", formMSK, formNow); !errors.Is(err, ErrNotCategoryI) {
		t.Errorf("FormOne of category II: %v, want ErrNotCategoryI", err)
	}
	if _, err := FormOne(formFixture(), "nope", formMSK, formNow); !errors.Is(err, ErrFormNotFound) {
		t.Errorf("FormOne of an unknown ID: %v, want ErrFormNotFound", err)
	}
	one, err := FormOne(formFixture(), "n4", formMSK, formNow)
	if err != nil {
		t.Fatal(err)
	}
	rows := formReadBack(t, one)[FormTable.Sheet]
	if len(rows) != 2 || rows[1][0] != "10228000" || rows[1][3] != "27.11.2026 07:59" || rows[1][4] != "27.11.2026 08:30" || rows[1][5] != "0,31" {
		t.Errorf("single НШС form %q", rows)
	}
}

func TestFormDutyDayBoundaries(t *testing.T) {
	ids := func(d *Document) []string {
		var out []string
		for _, n := range d.All {
			out = append(out, n.ID)
		}
		return out
	}
	for _, tc := range []struct {
		day   string
		shift time.Duration
		kod   string
		want  []string
	}{
		{"26.11.2026", DefaultShiftStart, "", []string{"n4"}},             // 07:59 of 27.11: the day before
		{"27.11.2026", DefaultShiftStart, "", []string{"n1", "n3", "n2"}}, // 08:00 of 27.11 to 07:59 of 28.11
		{"28.11.2026", DefaultShiftStart, "", []string{"n5"}},             // 08:00 of 28.11
		{"27.11.2026", DefaultShiftStart, "10228000", nil},
		{"27.11.2026", 0, "", []string{"n4", "n1", "n3"}}, // a calendar day
		{"27.11.2026", 7*time.Hour + 59*time.Minute, "", []string{"n4", "n1", "n3"}},
	} {
		d, err := DayForm(formFixture(), formAt(tc.day+" 00:00"), tc.shift, formMSK, formNow, tc.kod)
		if err != nil {
			t.Fatal(err)
		}
		if got := ids(d); !slices.Equal(got, tc.want) {
			t.Errorf("day %s shift %v kod %q: %v, want %v", tc.day, tc.shift, tc.kod, got, tc.want)
		}
	}
	// A date given as a time late in the day is still that date.
	from, to := DutyDay(formAt("27.11.2026 23:30"), DefaultShiftStart, formMSK)
	if !from.Equal(formAt("27.11.2026 08:00")) || !to.Equal(formAt("28.11.2026 08:00")) {
		t.Errorf("DutyDay %v - %v", from, to)
	}
	if _, err := DayForm(formFixture(), formNow, 24*time.Hour, formMSK, formNow, ""); err == nil {
		t.Error("shift start 24h accepted")
	}
}

func TestFormWeeklySummary(t *testing.T) {
	for _, day := range []string{"23.11.2026", "25.11.2026", "29.11.2026"} {
		from, to := Week(formAt(day+" 12:00"), formMSK)
		if !from.Equal(formAt("23.11.2026 00:00")) || !to.Equal(formAt("30.11.2026 00:00")) {
			t.Errorf("week of %s: %v - %v", day, from, to)
		}
	}
	d, err := WeekForm(formFixture(), formAt("29.11.2026 00:00"), formMSK, formNow, "")
	if err != nil {
		t.Fatal(err)
	}
	wb := formReadBack(t, d)
	if rows := wb[FormTable.Sheet]; len(rows) != 4 {
		t.Errorf("form sheet %d rows, want header and 3", len(rows))
	}
	want := [][]string{
		{"TAM_ORGAN", "KAT_I", "KAT_II", "KAT_III", "KAT_IV", "KAT_V", "VSEGO", "PRODOLZH", "OTKRYTO"},
		// n1 3:05 + n2 2:05 (open) + n3 0:40 + n5 0:20
		{"10216100", "2", "1", "0", "1", "0", "4", "6,10", "1"},
		// n4 0:31 + n7 2:30 (not confirmed: open) + n8 0:10
		{"10228000", "1", "0", "1", "0", "1", "3", "3,11", "1"},
		{"ВСЕГО", "3", "1", "1", "1", "1", "7", "9,21", "2"},
	}
	got := wb[SummaryTable.Sheet]
	if len(got) != len(want) {
		t.Fatalf("summary %q, want %q", got, want)
	}
	for i := range want {
		if !slices.Equal(got[i], want[i]) {
			t.Errorf("summary row %d %q, want %q", i+1, got[i], want[i])
		}
	}
	one, err := WeekForm(formFixture(), formAt("29.11.2026 00:00"), formMSK, formNow, "10228000")
	if err != nil {
		t.Fatal(err)
	}
	if len(one.Summary) != 1 || one.Summary[0].Row()[0] != "10228000" || one.Summary[0].Total != 3 {
		t.Errorf("one body's summary %+v", one.Summary)
	}
	// The week before holds n6 only.
	prev, err := WeekForm(formFixture(), formAt("22.11.2026 00:00"), formMSK, formNow, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(prev.NSHS) != 1 || prev.NSHS[0].ID != "n6" {
		t.Errorf("the week before: %+v", prev.NSHS)
	}
}

func TestFormHTML(t *testing.T) {
	d, err := WeekForm(formFixture(), formAt("25.11.2026 00:00"), formMSK, formNow, "")
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := d.WriteHTML(&buf); err != nil {
		t.Fatal(err)
	}
	page := buf.String()
	for _, s := range append(FormTitles[:],
		"Сведения о нештатных ситуациях I категории",
		"Должность, И.О. Фамилия, телефон специалиста ИКТ",
		"size: A4",
		"за неделю с 23.11.2026 по 29.11.2026",
		"Проинформированы: ОДС ЦЭД, ИТС Балтийской таможни.",
		"2,05 (продолжается)",
		"Сводка нештатных ситуаций",
		"ВСЕГО",
	) {
		if !strings.Contains(page, s) {
			t.Errorf("page lacks %q", s)
		}
	}
	day, err := DayForm(formFixture(), formAt("25.11.2026 00:00"), DefaultShiftStart, formMSK, formNow, "10216100")
	if err != nil {
		t.Fatal(err)
	}
	buf.Reset()
	if err := day.WriteHTML(&buf); err != nil {
		t.Fatal(err)
	}
	page = buf.String()
	for _, s := range []string{"не было", "Должность, И.О. Фамилия, телефон специалиста ИКТ", "с 25.11.2026 08:00 по 26.11.2026 08:00"} {
		if !strings.Contains(page, s) {
			t.Errorf("empty day's page lacks %q", s)
		}
	}
	if strings.Contains(page, "Сводка") {
		t.Error("a day's page has the weekly summary")
	}
}

type formFixedClock struct {
	clock.Clock
	now time.Time
}

func (c formFixedClock) Now() time.Time { return c.now }

func formServer(l Lister) *FormHandler {
	return &FormHandler{Book: l, Location: formMSK, Clock: formFixedClock{clock.Real(), formNow}}
}

func formGet(t *testing.T, h http.Handler, query string) *httptest.ResponseRecorder {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/api/v1/nshs/form"+query, nil))
	return rec
}

func TestFormHTTP(t *testing.T) {
	h := formServer(formFixture())
	rec := formGet(t, h, "?day=2026-11-27")
	if rec.Code != 200 || rec.Header().Get("Content-Type") != report.XLSXType {
		t.Fatalf("day: %d %s %s", rec.Code, rec.Header().Get("Content-Type"), rec.Body)
	}
	if cd := rec.Header().Get("Content-Disposition"); !strings.Contains(cd, "nshs-form-day-2026-11-27.xlsx") {
		t.Errorf("Content-Disposition %q", cd)
	}
	wb, err := report.ReadWorkbook(bytes.NewReader(rec.Body.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if rows := wb[FormTable.Sheet]; len(rows) != 3 || rows[2][5] != "2,05 (продолжается)" {
		t.Errorf("day rows %q", rows)
	}

	rec = formGet(t, h, "?week=27.11.2026&kod_to=10216100&format=html")
	if rec.Code != 200 || !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/html") {
		t.Fatalf("week html: %d %s", rec.Code, rec.Body)
	}
	if body := rec.Body.String(); !strings.Contains(body, "Должность, И.О. Фамилия, телефон специалиста ИКТ") || !strings.Contains(body, "10216100") {
		t.Error("week page lacks the signature line or the body")
	}
	if cd := rec.Header().Get("Content-Disposition"); !strings.Contains(cd, "nshs-form-week-2026-11-23-10216100.html") {
		t.Errorf("Content-Disposition %q", cd)
	}

	rec = formGet(t, h, "?id=n1")
	if rec.Code != 200 {
		t.Fatalf("id: %d %s", rec.Code, rec.Body)
	}

	// Shift start 09:00: 27.11 09:15 is of 27.11; the 07:59 one of 26.11 09:00.
	h9 := formServer(formFixture())
	h9.ShiftStart = 9 * time.Hour
	rec = formGet(t, h9, "?day=2026-11-26&format=html")
	if body := rec.Body.String(); rec.Code != 200 || !strings.Contains(body, "27.11.2026 07:59") || strings.Contains(body, "27.11.2026 09:15") {
		t.Errorf("shift 09:00: %d", rec.Code)
	}

	for _, tc := range []struct {
		query  string
		status int
		names  string
	}{
		{"", 400, "one of id, day or week"},
		{"?day=2026-11-27&week=2026-11-27", 400, "day and week"},
		{"?day=27-11-2026", 400, `day "27-11-2026"`},
		{"?day=", 400, "day is empty"},
		{"?week=xx", 400, `week "xx"`},
		{"?id=", 400, "id is empty"},
		{"?id=nope", 404, "id nope"},
		{"?id=n3", 422, "id n3"},
		{"?id=n1&kod_to=10228000", 404, "kod_to 10228000"},
		{"?day=2026-11-27&kod_to=123", 400, "kod_to"},
		{"?day=2026-11-27&format=pdf", 400, "format"},
		{"?date=2026-11-27", 400, `"date"`},
		{"?day=2026-11-27&day=2026-11-28", 400, "day"},
	} {
		rec := formGet(t, h, tc.query)
		if rec.Code != tc.status || !strings.Contains(rec.Body.String(), tc.names) {
			t.Errorf("%q: %d %q, want %d naming %q", tc.query, rec.Code, rec.Body, tc.status, tc.names)
		}
	}

	failing := formServer(&formFakeLister{err: errors.New("book unreadable")})
	if rec := formGet(t, failing, "?week=2026-11-27"); rec.Code != 500 || !strings.Contains(rec.Body.String(), "book unreadable") {
		t.Errorf("failing book: %d %s", rec.Code, rec.Body)
	}
	if rec := formGet(t, h, "?day=2026-11-27"); rec.Code != 200 {
		t.Errorf("again: %d", rec.Code)
	}
	var post = httptest.NewRecorder()
	h.ServeHTTP(post, httptest.NewRequest("POST", "/api/v1/nshs/form?day=2026-11-27", io.NopCloser(strings.NewReader(""))))
	if post.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST: %d", post.Code)
	}
}

// formFinderLister has Find, as the Book does: FormOne uses it, not Between.
type formFinderLister struct{ *formFakeLister }

func (f formFinderLister) Find(id string) (NSHS, error) {
	for _, n := range f.ns {
		if n.ID == id {
			return n, nil
		}
	}
	return NSHS{}, fmt.Errorf("nshs: %q: %w", id, ErrNoNSHS)
}

func TestFormOneFinder(t *testing.T) {
	l := formFinderLister{formFixture()}
	d, err := FormOne(l, "n2", formMSK, formNow)
	if err != nil {
		t.Fatal(err)
	}
	if len(l.calls) != 0 {
		t.Errorf("Between called %v", l.calls)
	}
	if d.Kind != FormKindOne || d.KodTO != "10216100" || len(d.Rows) != 1 || d.Rows[0][5] != "2,05 (продолжается)" || d.Rows[0][4] != "" {
		t.Errorf("document %+v", d)
	}
	if _, err := FormOne(l, "idk-x", formMSK, formNow); !errors.Is(err, ErrFormNotFound) || !errors.Is(err, ErrNoNSHS) {
		t.Errorf("unknown ID: %v", err)
	}
	if rec := formGet(t, formServer(l), "?id=idk-x"); rec.Code != 404 || !strings.Contains(rec.Body.String(), "id idk-x") {
		t.Errorf("unknown ID over HTTP: %d %s", rec.Code, rec.Body)
	}
}

// The Book is what the handler is given in the collector.
var _ interface {
	Lister
	Finder
} = (*Book)(nil)
