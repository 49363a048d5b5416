package report

import (
	"cmp"
	"fmt"
	"html/template"
	"io"
	"slices"
	"strings"
	"time"

	"idk/collector/cases"
)

// Item 36 of the Instruction: each month, no later than the 10th of the
// next, the head of a customs post reports in writing to the first
// deputy head of the customs office the cases and causes of exceeding
// the item 35 time limits; the first deputy decides, as a resolution,
// whether the causes were objective (reference §3.3). The cases are the
// month's table 4 rows and the causes their PRICH_NAR (docs/cases.md);
// the decision is recorded in the case engine (cases.Engine.Decide).

// DecisionSource is what the item 36 report reads: table 4's histories
// and the first deputy's decisions (*cases.Engine implements it).
type DecisionSource interface {
	BreachSource
	Decisions(ids ...string) (map[string][]cases.BreachDecision, error)
}

// The values of RESHENIE: whether the causes of the breach were found
// objective (item 36).
const (
	Objective    = "ОБЪЕКТИВНАЯ"
	NotObjective = "НЕОБЪЕКТИВНАЯ"
)

// Item36Table is the item 36 report's one sheet: table 4's twelve
// columns, then the first deputy's decision on the row:
//
//   - RESHENIE: ОБЪЕКТИВНАЯ or НЕОБЪЕКТИВНАЯ (the causes were, or were
//     not, objective), empty while no decision is recorded;
//   - KTO_RESHIL: who decided, upper case (A4 rule 4 as for every text);
//   - DATA_RESHENIYA: the day the decision was recorded, DD.MM.YYYY.
//
// A later decision on the same breach replaces the earlier one here; the
// case engine keeps every version (cases.Engine.Decisions). The field
// names are ours, in the regulation's style: the Instruction gives no
// form for the item 36 report.
var Item36Table = Table{
	Number: 36,
	Sheet:  "Пункт 36",
	Title:  "Случаи и причины превышения сроков таможенного осмотра с использованием ИДК (пункт 36)",
	Columns: append(slices.Clone(Table4.Columns),
		col("RESHENIE", Text, 16), col("KTO_RESHIL", Text, 28), col("DATA_RESHENIYA", Date, 15)),
}

// Item36Row is one breach of the report.
type Item36Row struct {
	CaseID string `json:"case_id"` // the case engine's ID: what Decide takes
	Row    Row    `json:"row"`     // Item36Table's columns
	// NoCause is set for a standing breach still without PRICH_NAR: the
	// head of post must give one before signing (they come first).
	NoCause bool `json:"no_cause,omitempty"`
	// Withdrawn is set for a breach recorded and later withdrawn: it stays
	// in the report as it stays in table 4 (A4 rule 5), PRICH_NAR saying
	// what withdrew it, and needs neither a cause nor a decision.
	Withdrawn bool `json:"withdrawn,omitempty"`
	// Decision is the first deputy's decision in force, nil while none.
	Decision *cases.BreachDecision `json:"decision,omitempty"`
}

// Item36 is the item 36 report of one customs office (KOD_TO) for one
// month.
type Item36 struct {
	KodTO  string
	NaimTO string    // from the rows; "" when there are none
	Month  time.Time // midnight of the month's 1st, in the report's zone
	Built  time.Time // when it was built: the workbook's time
	// Rows are ordered by NAIM_ZTK (the post whose head signs them), then
	// the breaches still without a cause first, then as table 4 orders
	// them: DATE_NAR, NUM_IDK, NUM_SNIM, case ID.
	Rows []Item36Row
}

// BuildItem36 builds the item 36 report of customs office kodTO for the
// month that contains month (in month's zone, which must be the case
// engine's): the table 4 rows whose DATE_NAR is in that month, exactly as
// the daily report's table 4 shows them (withdrawn ones too), each with
// the first deputy's decision in force. now is the build time.
func BuildItem36(src DecisionSource, kodTO string, month, now time.Time) (*Item36, error) {
	from := MonthStart(month)
	to := from.AddDate(0, 1, 0)
	rep := &Item36{KodTO: kodTO, Month: from, Built: now}
	bs, err := tableBreaches(src, kodTO, from, to)
	if err != nil {
		return nil, fmt.Errorf("report: item 36: %w", err)
	}
	type keyed struct {
		date time.Time
		r    Item36Row
	}
	picked := make([]keyed, len(bs))
	ids := make([]string, len(bs))
	for i, b := range bs {
		h := b.history
		picked[i] = keyed{b.date, Item36Row{
			CaseID:    h.ID,
			Row:       append(table4Row(b.row), "", "", ""),
			Withdrawn: h.Current == nil,
			NoCause:   h.Current != nil && strings.TrimSpace(h.Current.PRICH_NAR) == "",
		}}
		ids[i] = h.ID
	}
	decisions, err := src.Decisions(ids...)
	if err != nil {
		return nil, fmt.Errorf("report: item 36: %w", err)
	}
	ztk, idk, snim := Table4.Field("NAIM_ZTK"), Table4.Field("NUM_IDK"), Table4.Field("NUM_SNIM")
	slices.SortFunc(picked, func(a, b keyed) int {
		return cmp.Or(strings.Compare(a.r.Row[ztk], b.r.Row[ztk]), noCauseFirst(a.r.NoCause, b.r.NoCause),
			a.date.Compare(b.date), strings.Compare(a.r.Row[idk], b.r.Row[idk]),
			strings.Compare(a.r.Row[snim], b.r.Row[snim]), strings.Compare(a.r.CaseID, b.r.CaseID))
	})
	rep.Rows = make([]Item36Row, len(picked))
	for i, p := range picked {
		r := p.r
		if ds := decisions[r.CaseID]; len(ds) > 0 {
			d := ds[len(ds)-1]
			r.Decision = &d
			setDecision(r.Row, d, from.Location())
		}
		rep.Rows[i] = r
		if rep.NaimTO == "" {
			rep.NaimTO = r.Row[Table4.Field("NAIM_TO")]
		}
	}
	return rep, nil
}

// noCauseFirst orders true before false: the rows without a cause first.
func noCauseFirst(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return -1
	}
	return 1
}

// setDecision fills row's decision columns from d.
func setDecision(row Row, d cases.BreachDecision, loc *time.Location) {
	v := NotObjective
	if d.Objective {
		v = Objective
	}
	row[Item36Table.Field("RESHENIE")] = v
	row[Item36Table.Field("KTO_RESHIL")] = strings.ToUpper(strings.Join(strings.Fields(d.By), " "))
	row[Item36Table.Field("DATA_RESHENIYA")] = FormatDate(d.At.In(loc))
}

// Sheet is the report as a workbook sheet.
func (r *Item36) Sheet() Sheet {
	return Sheet{Table: &Item36Table, Rows: func(emit func(Row) error) error {
		for _, row := range r.Rows {
			if err := emit(row.Row); err != nil {
				return err
			}
		}
		return nil
	}}
}

// Title is the document's title.
func (r *Item36) Title() string {
	return fmt.Sprintf("Пункт 36: нарушения сроков ИДК %s за %s", r.KodTO, r.Month.Format("01.2006"))
}

// WriteXLSX writes the report as an .xlsx workbook of one sheet.
func (r *Item36) WriteXLSX(w io.Writer) error {
	return WriteWorkbook(w, []Sheet{r.Sheet()}, WorkbookOptions{Title: r.Title(), Created: r.Built})
}

// item36MonthNames are the months in the nominative, for "за ноябрь 2026 г.".
var item36MonthNames = [...]string{"январь", "февраль", "март", "апрель", "май", "июнь", "июль", "август",
	"сентябрь", "октябрь", "ноябрь", "декабрь"}

// item36Post is one customs post's part of the printed report: its head
// signs it.
type item36Post struct {
	NaimZTK string
	Rows    []Item36Row
	NoCause int
}

// WriteHTML writes the report as a printable HTML page (A4, landscape,
// for its 15 columns): a part per customs post (NAIM_ZTK), each with its
// breaches, those without a cause first and marked, and a signature line
// for the head of the post.
func (r *Item36) WriteHTML(w io.Writer) error {
	var posts []item36Post
	ztk := Table4.Field("NAIM_ZTK")
	for _, row := range r.Rows {
		if len(posts) == 0 || posts[len(posts)-1].NaimZTK != row.Row[ztk] {
			posts = append(posts, item36Post{NaimZTK: row.Row[ztk]})
		}
		p := &posts[len(posts)-1]
		p.Rows = append(p.Rows, row)
		if row.NoCause {
			p.NoCause++
		}
	}
	if len(posts) == 0 {
		posts = []item36Post{{}} // still a document to sign: no breaches
	}
	header := make([]string, len(Item36Table.Columns))
	for i, c := range Item36Table.Columns {
		header[i] = c.Name
	}
	data := struct {
		R      *Item36
		Month  string
		Header []string
		Posts  []item36Post
		Built  string
		Prich  int // PRICH_NAR's column
	}{r, fmt.Sprintf("%s %d", item36MonthNames[r.Month.Month()-1], r.Month.Year()), header, posts, r.Built.Format("02.01.2006 15:04"),
		Item36Table.Field("PRICH_NAR")}
	if err := item36HTML.Execute(w, data); err != nil {
		return fmt.Errorf("report: item 36 page: %w", err)
	}
	return nil
}

var item36HTML = template.Must(template.New("item36").Funcs(template.FuncMap{"inc": func(i int) int { return i + 1 }}).Parse(`<!DOCTYPE html>
<html lang="ru">
<head>
<meta charset="utf-8">
<title>{{.R.Title}}</title>
<style>
@page { size: A4 landscape; margin: 12mm 10mm; }
body { font-family: "Times New Roman", serif; font-size: 10pt; color: #000; }
h1 { font-size: 13pt; text-align: center; margin: 0 0 4mm; }
h2 { font-size: 11pt; margin: 6mm 0 2mm; }
p.to { text-align: right; margin: 0 0 4mm; }
table { border-collapse: collapse; width: 100%; table-layout: auto; }
th, td { border: 0.5pt solid #000; padding: 1mm; vertical-align: top; word-break: break-word; }
th { font-size: 7.5pt; background: #eee; }
thead { display: table-header-group; }
tr { page-break-inside: avoid; break-inside: avoid; }
tr.nocause td { background: #fde8e8; font-weight: bold; }
tr.withdrawn td { color: #555; }
.post { page-break-after: always; break-after: page; }
.post:last-child { page-break-after: auto; break-after: auto; }
.sign { margin-top: 10mm; page-break-inside: avoid; break-inside: avoid; }
.sign span.line { display: inline-block; width: 50mm; border-bottom: 0.5pt solid #000; }
.note { font-size: 8pt; }
@media screen { body { max-width: 287mm; margin: 5mm auto; } }
</style>
</head>
<body>
{{range .Posts}}<div class="post">
<p class="to">Первому заместителю начальника таможни<br>{{$.R.NaimTO}}</p>
<h1>Доклад о случаях и причинах превышения сроков,<br>установленных пунктом 35 Инструкции (пункт 36), за {{$.Month}} г.</h1>
<h2>Таможня: {{$.R.KodTO}} {{$.R.NaimTO}}{{if .NaimZTK}}; таможенный пост (ЗТК): {{.NaimZTK}}{{end}}</h2>
{{if .Rows}}{{if .NoCause}}<p class="note">Причина не указана: {{.NoCause}} (выделены, в начале списка).</p>{{end}}
<table>
<thead><tr><th>№</th>{{range $.Header}}<th>{{.}}</th>{{end}}</tr></thead>
<tbody>
{{range $i, $r := .Rows}}<tr{{if $r.NoCause}} class="nocause"{{else if $r.Withdrawn}} class="withdrawn"{{end}}><td>{{inc $i}}</td>{{range $j, $v := $r.Row}}<td>{{if and $r.NoCause (eq $j $.Prich)}}ПРИЧИНА НЕ УКАЗАНА{{else}}{{$v}}{{end}}</td>{{end}}</tr>
{{end}}</tbody>
</table>
{{else}}<p>Нарушений сроков, установленных пунктом 35 Инструкции, за месяц не допущено.</p>
{{end}}<div class="sign">
<p>Начальник таможенного поста <span class="line"></span> / <span class="line"></span> /</p>
<p>«____» ______________ 20___ г.</p>
<p class="note">Сформировано {{$.Built}}. RESHENIE, KTO_RESHIL, DATA_RESHENIYA: решение первого заместителя начальника таможни об объективности причин.</p>
</div>
</div>
{{end}}</body>
</html>
`))
