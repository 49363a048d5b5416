package nshs

import (
	"cmp"
	"errors"
	"fmt"
	"html/template"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"idk/collector/report"
)

// The appendix 4 form «Сведения о нештатных ситуациях I категории»: for
// one НШС (FormOne), for the duty shift's day (DayForm, 5.17) and as the
// weekly summary of a customs body (WeekForm, 2.1.4), each as an .xlsx
// workbook and as a printable page.

// Lister gives the НШС of a period: (*Book).Between implements it. Form
// keeps only those that began in [from, to), so Between may give more
// (those that overlap the period, say).
type Lister interface {
	Between(from, to time.Time) ([]NSHS, error)
}

// Finder is what FormOne uses, when the Lister has it, to find an НШС by
// its ID: (*Book).Find, whose error for an unknown ID wraps ErrNoNSHS.
// Without it FormOne looks through every НШС up to now.
type Finder interface {
	Find(id string) (NSHS, error)
}

// Errors of FormOne.
var (
	// ErrFormNotFound: no НШС has the ID (an error of FormOne wrapping it
	// may wrap ErrNoNSHS too).
	ErrFormNotFound = errors.New("nshs: form: no such НШС")
	// ErrNotCategoryI: the form is «Сведения о нештатных ситуациях I
	// категории» and takes no other.
	ErrNotCategoryI = errors.New("nshs: the form is for category I НШС only")
)

// DefaultShiftStart is when the duty shift's day begins (5.17) unless
// told otherwise: 08:00 local time.
const DefaultShiftStart = 8 * time.Hour

// FormTable is the form's one table: a row per category I НШС. Its
// column identifiers are ours, in the daily report's style (the form gives
// only numbered Russian titles, FormTitles):
//
//	1 TAM_ORGAN        Таможенный орган, в котором возникла НШС: KOD_TO
//	2 SISTEMY_OPISANIE Информационные системы, ... кто проинформирован:
//	                   the systems, the description, then
//	                   "Проинформированы: ..." (NSHS.Informed)
//	3 KATEGORIYA       Категория НШС: the Roman numeral, "I"
//	4 DATA_VOZN        Дата, время возникновения НШС: "ДД.ММ.ГГГГ ЧЧ:ММ"
//	5 DATA_USTR        Дата, время устранения НШС: the same, empty while
//	                   the НШС goes on
//	6 PRODOLZH         Продолжительность НШС (часов, минут): "Ч,ММ"; while
//	                   the НШС goes on, so far, followed by «(продолжается)»
//	7 PRICHINY_RABOTY  Причины НШС и работы, ...: the cause's name (4.1),
//	                   then the works done (NSHS.Works)
//
// The workbook writes the Text columns (1, 2, 3, 7) upper case, as every
// table of the report package; the printable page keeps the case they
// were entered in.
var FormTable = report.Table{
	Number: 4, // appendix 4
	Sheet:  "НШС I категории",
	Title:  "Сведения о нештатных ситуациях I категории",
	Columns: []report.Column{
		{Name: "TAM_ORGAN", Kind: report.Text, Width: 12},
		{Name: "SISTEMY_OPISANIE", Kind: report.Text, Width: 60},
		{Name: "KATEGORIYA", Kind: report.Text, Width: 11},
		{Name: "DATA_VOZN", Kind: report.Date, Width: 17},
		{Name: "DATA_USTR", Kind: report.Date, Width: 17},
		{Name: "PRODOLZH", Kind: report.Duration, Width: 22},
		{Name: "PRICHINY_RABOTY", Kind: report.Text, Width: 60},
	},
}

// FormTitles are the Russian titles of FormTable's columns, exactly as
// appendix 4 gives them.
var FormTitles = [7]string{
	"Таможенный орган, в котором возникла НШС",
	"Информационные системы, информационно-программные средства, функционирование которых нарушено. Краткое описание НШС, кто проинформирован",
	"Категория НШС",
	"Дата, время возникновения НШС",
	"Дата, время устранения НШС",
	"Продолжительность НШС (часов, минут)",
	"Причины НШС и работы, проведенные по восстановлению функционирования средств ИКТ в штатном режиме",
}

// SummaryTable is the weekly summary's second sheet (2.1.4): a row per
// customs body with the week's НШС of every category, and a row ВСЕГО
// when there are several bodies.
//
//	TAM_ORGAN  the customs body (KOD_TO), or ВСЕГО
//	KAT_I..KAT_V the number of НШС of each category begun in the week
//	VSEGO      their number
//	PRODOLZH   their total duration, "Ч,ММ" (the open ones so far)
//	OTKRYTO    how many are not closed (NSHS.Closed)
var SummaryTable = report.Table{
	Number: 4,
	Sheet:  "Сводка",
	Title:  "Сводка нештатных ситуаций за неделю по таможенным органам",
	Columns: []report.Column{
		{Name: "TAM_ORGAN", Kind: report.Text, Width: 12},
		{Name: "KAT_I", Kind: report.Number, Width: 7},
		{Name: "KAT_II", Kind: report.Number, Width: 7},
		{Name: "KAT_III", Kind: report.Number, Width: 8},
		{Name: "KAT_IV", Kind: report.Number, Width: 7},
		{Name: "KAT_V", Kind: report.Number, Width: 7},
		{Name: "VSEGO", Kind: report.Number, Width: 7},
		{Name: "PRODOLZH", Kind: report.Duration, Width: 11},
		{Name: "OTKRYTO", Kind: report.Number, Width: 9},
	},
}

// formSummaryTitles are SummaryTable's titles on the printed page.
var formSummaryTitles = [9]string{"Таможенный орган", "I", "II", "III", "IV", "V", "Всего", "Продолжительность (часов, минут)", "Не закрыты"}

// The kinds of Document.
const (
	FormKindOne  = "one"  // a single НШС
	FormKindDay  = "day"  // the duty shift's day
	FormKindWeek = "week" // the weekly summary
	FormKindSpan = "span" // any other period (Form)
)

// SummaryRow is one customs body's line of the weekly summary.
type SummaryRow struct {
	KodTO    string        // "" for the total
	Count    [5]int        // by category, I to V
	Total    int           // all categories
	Duration time.Duration // their total; the open ones so far
	Open     int           // not closed
}

// Document is the form, built: what WriteXLSX and WriteHTML write.
type Document struct {
	Kind     string
	KodTO    string    // the customs body it is limited to, "" for all
	From, To time.Time // the period [From, To); zero for a single НШС
	Built    time.Time // now, when it was built: open НШС are measured to it
	Location *time.Location
	// NSHS are the category I НШС of the form, by start, customs body and
	// ID; Rows are their FormTable rows, in the same order.
	NSHS []NSHS
	Rows []report.Row
	// All are the period's НШС of every category (the summary's input).
	All []NSHS
	// Summary is the weekly summary, by customs body (FormKindWeek only).
	Summary []SummaryRow
}

// Form builds the form of the category I НШС that began in [from, to)
// (at customs body kodTO, or at every one for ""), their dates written in
// loc and the open ones measured to now.
func Form(l Lister, from, to time.Time, loc *time.Location, now time.Time, kodTO string) (*Document, error) {
	if loc == nil {
		loc = time.UTC
	}
	if !from.Before(to) {
		return nil, fmt.Errorf("nshs: form: empty period %s - %s", from.Format(time.RFC3339), to.Format(time.RFC3339))
	}
	ns, err := l.Between(from, to)
	if err != nil {
		return nil, fmt.Errorf("nshs: form: %w", err)
	}
	d := &Document{Kind: FormKindSpan, KodTO: kodTO, From: from, To: to, Built: now, Location: loc}
	for _, n := range ns {
		if n.Start.Before(from) || !n.Start.Before(to) || (kodTO != "" && n.KodTO != kodTO) {
			continue
		}
		d.All = append(d.All, n)
	}
	slices.SortFunc(d.All, func(a, b NSHS) int {
		return cmp.Or(a.Start.Compare(b.Start), strings.Compare(a.KodTO, b.KodTO), strings.Compare(a.ID, b.ID))
	})
	d.All = slices.CompactFunc(d.All, func(a, b NSHS) bool { return a.ID == b.ID && a.ID != "" })
	for _, n := range d.All {
		if n.Category == CategoryI {
			d.NSHS = append(d.NSHS, n)
			d.Rows = append(d.Rows, FormRow(n, loc, now))
		}
	}
	return d, nil
}

// FormOne builds the form of the single НШС id, which must be of
// category I (ErrNotCategoryI); ErrFormNotFound if there is none.
func FormOne(l Lister, id string, loc *time.Location, now time.Time) (*Document, error) {
	if loc == nil {
		loc = time.UTC
	}
	n, ok, err := formFind(l, id, now)
	if errors.Is(err, ErrNoNSHS) {
		return nil, fmt.Errorf("%w: %w", ErrFormNotFound, err)
	}
	if err != nil {
		return nil, fmt.Errorf("nshs: form: %w", err)
	}
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrFormNotFound, id)
	}
	if n.Category != CategoryI {
		return nil, fmt.Errorf("%w: НШС %s is of category %s", ErrNotCategoryI, id, formCategory(n.Category))
	}
	return &Document{Kind: FormKindOne, KodTO: n.KodTO, Built: now, Location: loc,
		NSHS: []NSHS{n}, Rows: []report.Row{FormRow(n, loc, now)}, All: []NSHS{n}}, nil
}

// formFind finds the НШС id: by the Lister's Find if it has one, else
// among every НШС up to now.
func formFind(l Lister, id string, now time.Time) (NSHS, bool, error) {
	if f, ok := l.(Finder); ok {
		n, err := f.Find(id)
		return n, err == nil, err
	}
	ns, err := l.Between(time.Time{}, now.Add(time.Nanosecond))
	if err != nil {
		return NSHS{}, false, err
	}
	for _, n := range ns {
		if n.ID == id {
			return n, true, nil
		}
	}
	return NSHS{}, false, nil
}

// DutyDay is the duty shift's day of date day (5.17): from shiftStart
// after midnight of day's calendar date in loc to the same time of the
// next date. An НШС at 07:59 of 28.11 with an 08:00 shift is of the day
// of 27.11.
func DutyDay(day time.Time, shiftStart time.Duration, loc *time.Location) (from, to time.Time) {
	if loc == nil {
		loc = time.UTC
	}
	y, m, dd := day.In(loc).Date()
	h, min := int(shiftStart/time.Hour), int(shiftStart%time.Hour/time.Minute)
	sec := int(shiftStart % time.Minute / time.Second)
	from = time.Date(y, m, dd, h, min, sec, 0, loc)
	to = time.Date(y, m, dd+1, h, min, sec, 0, loc)
	return from, to
}

// DayForm builds the form of the duty shift's day of date day (DutyDay).
// shiftStart must be in [0, 24h).
func DayForm(l Lister, day time.Time, shiftStart time.Duration, loc *time.Location, now time.Time, kodTO string) (*Document, error) {
	if shiftStart < 0 || shiftStart >= 24*time.Hour {
		return nil, fmt.Errorf("nshs: form: shift start %v: want 0 to 23:59", shiftStart)
	}
	from, to := DutyDay(day, shiftStart, loc)
	d, err := Form(l, from, to, loc, now, kodTO)
	if err != nil {
		return nil, err
	}
	d.Kind = FormKindDay
	return d, nil
}

// Week is the calendar week, Monday 00:00 to the next Monday 00:00 in
// loc, that holds day.
func Week(day time.Time, loc *time.Location) (from, to time.Time) {
	if loc == nil {
		loc = time.UTC
	}
	day = day.In(loc)
	y, m, dd := day.Date()
	back := (int(day.Weekday()) + 6) % 7 // days since Monday
	from = time.Date(y, m, dd-back, 0, 0, 0, 0, loc)
	return from, from.AddDate(0, 0, 7)
}

// WeekForm builds the weekly summary (2.1.4) of the week, Monday to
// Sunday, that holds day: the form of the week's category I НШС and the
// summary by customs body of the week's НШС of every category.
func WeekForm(l Lister, day time.Time, loc *time.Location, now time.Time, kodTO string) (*Document, error) {
	from, to := Week(day, loc)
	d, err := Form(l, from, to, loc, now, kodTO)
	if err != nil {
		return nil, err
	}
	d.Kind = FormKindWeek
	d.Summary = SummarizeWeek(d.All, now)
	return d, nil
}

// SummarizeWeek counts ns by customs body: a row per body, ordered by KOD_TO,
// and a total row (KodTO "") when there are several bodies.
func SummarizeWeek(ns []NSHS, now time.Time) []SummaryRow {
	byKod := map[string]*SummaryRow{}
	var total SummaryRow
	for _, n := range ns {
		r := byKod[n.KodTO]
		if r == nil {
			r = &SummaryRow{KodTO: n.KodTO}
			byKod[n.KodTO] = r
		}
		for _, s := range []*SummaryRow{r, &total} {
			if n.Category.Valid() {
				s.Count[n.Category-1]++
			}
			s.Total++
			s.Duration += max(n.Duration(now), 0)
			if !n.Closed() {
				s.Open++
			}
		}
	}
	out := make([]SummaryRow, 0, len(byKod)+1)
	for _, r := range byKod {
		out = append(out, *r)
	}
	slices.SortFunc(out, func(a, b SummaryRow) int { return strings.Compare(a.KodTO, b.KodTO) })
	if len(out) > 1 {
		out = append(out, total)
	}
	return out
}

// Row is the summary row as SummaryTable's values.
func (s SummaryRow) Row() report.Row {
	kod := s.KodTO
	if kod == "" {
		kod = "ВСЕГО"
	}
	r := report.Row{kod}
	for _, c := range s.Count {
		r = append(r, strconv.Itoa(c))
	}
	return append(r, strconv.Itoa(s.Total), FormHM(s.Duration), strconv.Itoa(s.Open))
}

// FormRow is n's row of the form (FormTable), its times in loc; an open
// НШС is measured to now.
func FormRow(n NSHS, loc *time.Location, now time.Time) report.Row {
	var end, dur string
	switch {
	case n.End.IsZero():
		dur = FormHM(max(now.Sub(n.Start), 0)) + " (продолжается)"
	case !n.Confirmed:
		// 5.11: not closed until monitoring confirms the restoration.
		end = FormDateTime(n.End.In(loc))
		dur = FormHM(max(n.End.Sub(n.Start), 0)) + " (не подтверждено мониторингом)"
	default:
		end = FormDateTime(n.End.In(loc))
		dur = FormHM(max(n.End.Sub(n.Start), 0))
	}
	informed := "Проинформированы: не указано"
	if len(n.Informed) > 0 {
		informed = "Проинформированы: " + strings.Join(n.Informed, ", ")
	}
	cause := "Причина не установлена"
	if n.Cause.Valid() {
		cause = formCapitalize(n.Cause.Name())
	}
	return report.Row{
		n.KodTO,
		formSentences(n.Systems, n.Description, informed),
		formCategory(n.Category),
		FormDateTime(n.Start.In(loc)),
		end,
		dur,
		formSentences(cause, n.Works),
	}
}

// FormDateTime writes t as the form does: ДД.ММ.ГГГГ ЧЧ:ММ.
func FormDateTime(t time.Time) string { return t.Format("02.01.2006 15:04") }

// FormHM writes d as the form's duration: hours, a comma, two digits of
// minutes ("27,05"), the seconds dropped.
func FormHM(d time.Duration) string {
	m := int(d / time.Minute)
	return fmt.Sprintf("%d,%02d", m/60, m%60)
}

// formCategory is c's Roman numeral, or the number for an invalid one.
func formCategory(c Category) string {
	if c.Valid() {
		return c.String()
	}
	return strconv.Itoa(int(c))
}

// formSentences joins the non-empty parts, each ended with a full stop unless
// it ends with punctuation already.
func formSentences(parts ...string) string {
	var out []string
	for _, p := range parts {
		p = strings.Join(strings.Fields(p), " ")
		if p == "" {
			continue
		}
		if r, _ := utf8.DecodeLastRuneInString(p); !strings.ContainsRune(".!?…", r) {
			p += "."
		}
		out = append(out, p)
	}
	return strings.Join(out, " ")
}

// formCapitalize upper-cases s's first letter.
func formCapitalize(s string) string {
	r, n := utf8.DecodeRuneInString(s)
	if n == 0 {
		return s
	}
	return string(unicode.ToUpper(r)) + s[n:]
}

// Title is the document's title.
func (d *Document) Title() string {
	var b strings.Builder
	b.WriteString("Сведения о НШС I категории")
	if d.KodTO != "" {
		b.WriteString(" " + d.KodTO)
	}
	b.WriteString(" " + d.Period())
	return b.String()
}

// Period says what the document covers, as its heading's second line.
func (d *Document) Period() string {
	loc := d.loc()
	switch d.Kind {
	case FormKindOne:
		if len(d.NSHS) == 1 {
			return "(НШС " + d.NSHS[0].ID + ")"
		}
		return ""
	case FormKindDay:
		return fmt.Sprintf("за сутки дежурной смены %s (с %s по %s)", report.FormatDate(d.From.In(loc)),
			FormDateTime(d.From.In(loc)), FormDateTime(d.To.In(loc)))
	case FormKindWeek:
		return fmt.Sprintf("за неделю с %s по %s", report.FormatDate(d.From.In(loc)), report.FormatDate(d.To.In(loc).AddDate(0, 0, -1)))
	}
	return fmt.Sprintf("с %s по %s", FormDateTime(d.From.In(loc)), FormDateTime(d.To.In(loc)))
}

func (d *Document) loc() *time.Location {
	if d.Location == nil {
		return time.UTC
	}
	return d.Location
}

// Sheets are the document's workbook sheets: the form, and for the
// weekly summary the summary.
func (d *Document) Sheets() []report.Sheet {
	sheets := []report.Sheet{{Table: &FormTable, Rows: formRowsOf(d.Rows)}}
	if d.Kind == FormKindWeek {
		rows := make([]report.Row, len(d.Summary))
		for i, s := range d.Summary {
			rows[i] = s.Row()
		}
		sheets = append(sheets, report.Sheet{Table: &SummaryTable, Rows: formRowsOf(rows)})
	}
	return sheets
}

func formRowsOf(rows []report.Row) func(func(report.Row) error) error {
	return func(emit func(report.Row) error) error {
		for _, r := range rows {
			if err := emit(r); err != nil {
				return err
			}
		}
		return nil
	}
}

// WriteXLSX writes the document as an .xlsx workbook.
func (d *Document) WriteXLSX(w io.Writer) error {
	return report.WriteWorkbook(w, d.Sheets(), report.WorkbookOptions{Title: d.Title(), Created: d.Built})
}

// WriteHTML writes the document as a printable page (A4, landscape, for
// the form's long columns): the form with the Russian column titles and
// their numbers, the weekly summary's table for a week, and the signature
// line of the ICT specialist responsible.
func (d *Document) WriteHTML(w io.Writer) error {
	type summary struct {
		Kod   string
		Row   report.Row
		Total bool
	}
	var sum []summary
	for _, s := range d.Summary {
		r := s.Row()
		sum = append(sum, summary{Kod: r[0], Row: r[1:], Total: s.KodTO == ""})
	}
	data := struct {
		D        *Document
		Titles   [7]string
		SumTitle [9]string
		Summary  []summary
		Week     bool
		Built    string
	}{d, FormTitles, formSummaryTitles, sum, d.Kind == FormKindWeek, FormDateTime(d.Built.In(d.loc()))}
	if err := formHTML.Execute(w, data); err != nil {
		return fmt.Errorf("nshs: form page: %w", err)
	}
	return nil
}

var formHTML = template.Must(template.New("form").Funcs(template.FuncMap{"inc": func(i int) int { return i + 1 }}).Parse(`<!DOCTYPE html>
<html lang="ru">
<head>
<meta charset="utf-8">
<title>{{.D.Title}}</title>
<style>
@page { size: A4 landscape; margin: 12mm 10mm; }
body { font-family: "Times New Roman", serif; font-size: 10pt; color: #000; }
h1 { font-size: 13pt; text-align: center; margin: 0 0 2mm; }
p.period { text-align: center; margin: 0 0 4mm; }
h2 { font-size: 11pt; margin: 6mm 0 2mm; }
table { border-collapse: collapse; width: 100%; table-layout: auto; }
th, td { border: 0.5pt solid #000; padding: 1mm; vertical-align: top; word-break: break-word; }
th { font-size: 8pt; background: #eee; }
th.n { font-weight: normal; }
thead { display: table-header-group; }
tr { page-break-inside: avoid; break-inside: avoid; }
tr.open td { font-weight: bold; }
tr.total td { font-weight: bold; }
td.c { text-align: center; }
.sign { margin-top: 12mm; page-break-inside: avoid; break-inside: avoid; }
.sign .line { display: inline-block; width: 160mm; border-bottom: 0.5pt solid #000; height: 6mm; }
.sign .cap { font-size: 8pt; }
.note { font-size: 8pt; }
@media screen { body { max-width: 287mm; margin: 5mm auto; } }
</style>
</head>
<body>
<h1>Сведения о нештатных ситуациях I категории</h1>
<p class="period">{{if .D.KodTO}}Таможенный орган: {{.D.KodTO}}. {{end}}{{.D.Period}}</p>
<table>
<thead>
<tr>{{range .Titles}}<th>{{.}}</th>{{end}}</tr>
<tr>{{range $i, $t := .Titles}}<th class="n">{{inc $i}}</th>{{end}}</tr>
</thead>
<tbody>
{{range $i, $r := .D.Rows}}<tr{{if not (index $.D.NSHS $i).Closed}} class="open"{{end}}>{{range $r}}<td>{{.}}</td>{{end}}</tr>
{{else}}<tr><td colspan="7">Нештатных ситуаций I категории не было.</td></tr>
{{end}}</tbody>
</table>
{{if .Week}}<h2>Сводка нештатных ситуаций за неделю по таможенным органам (все категории)</h2>
<table>
<thead><tr><th rowspan="2">{{index .SumTitle 0}}</th><th colspan="5">Количество НШС по категориям</th>{{range $i, $t := .SumTitle}}{{if gt $i 5}}<th rowspan="2">{{$t}}</th>{{end}}{{end}}</tr>
<tr>{{range $i, $t := .SumTitle}}{{if and (gt $i 0) (lt $i 6)}}<th>{{$t}}</th>{{end}}{{end}}</tr></thead>
<tbody>
{{range .Summary}}<tr{{if .Total}} class="total"{{end}}><td>{{.Kod}}</td>{{range .Row}}<td class="c">{{.}}</td>{{end}}</tr>
{{else}}<tr><td colspan="9">Нештатных ситуаций не было.</td></tr>
{{end}}</tbody>
</table>
{{end}}<div class="sign">
<div class="line"></div>
<div class="cap">Должность, И.О. Фамилия, телефон специалиста ИКТ</div>
<p>«____» ______________ 20___ г.</p>
<p class="note">Сформировано {{.Built}}. Продолжительность НШС, которая продолжается, указана на это время.</p>
</div>
</body>
</html>
`))
