// Package report builds the daily ИДК report of Appendix 4 (six tables,
// cumulative for the calendar month) from what the collector holds and
// what officers enter, writes it as an Excel workbook, and keeps each
// published version of each day's file.
//
// Every table's field names, their order and their formats are those of
// the domain reference (../shared/domain/reference.md §8); Tables lists
// them once, and the workbook writer, the validation of officers' entries
// and the tests all read them from here.
package report

import "fmt"

// Kind is how a column's values are written in the workbook.
type Kind int

const (
	// Text is written as a string, upper case (A4 rule 4). Identifiers
	// with leading zeros (KOD_TEH "01", LNP "056") are Text.
	Text Kind = iota
	// Number is a code or a count, written as an integer cell.
	Number
	// Date is DD.MM.YYYY, written as text exactly as the regulation shows it.
	Date
	// Duration is "H,MM" (hours, a comma, two digits of minutes), as text.
	Duration
	// Decimal is a number with a decimal comma ("6500,45"), as text, so
	// that every spreadsheet shows the comma whatever its locale.
	Decimal
)

// Column is one field of a table.
type Column struct {
	Name  string  // the regulation's field name: KOD_TO, NUM_SNIM, ...
	Kind  Kind    // how its values are written
	Width float64 // column width in characters
}

// Table is one of the six tables of the daily report.
type Table struct {
	Number  int    // 1..6
	Sheet   string // the worksheet's name: "Таблица 1" ...
	Title   string // the regulation's title of the table
	Columns []Column
}

// Index returns the position of the column named name, or -1.
func (t *Table) Index(name string) int {
	for i, c := range t.Columns {
		if c.Name == name {
			return i
		}
	}
	return -1
}

// Field returns the position of the column named name; it panics on a name
// the table does not have, a programming error.
func (t *Table) Field(name string) int {
	i := t.Index(name)
	if i < 0 {
		panic(fmt.Sprintf("report: table %d has no field %s", t.Number, name))
	}
	return i
}

func col(name string, kind Kind, width float64) Column {
	return Column{Name: name, Kind: kind, Width: width}
}

// The widths fit the regulation's examples; long free text wraps at 40.
var (
	// Table1 is «Сведения об осмотре ИДК»: one row per scan (39 fields).
	Table1 = Table{Number: 1, Sheet: "Таблица 1", Title: "Сведения об осмотре ИДК", Columns: []Column{
		// Основные данные
		col("KOD_TO", Text, 11), col("NAIM_TO", Text, 22), col("NAIM_ZTK", Text, 22), col("TYPE_IDK", Number, 9),
		col("NUM_IDK", Text, 10), col("DISL_IDK", Number, 9), col("DATE_SYS", Date, 11), col("TIME_AN_SNIM", Number, 13),
		col("VER_SCAN", Number, 9),
		// Сведения о рисках
		col("KOD_TEH", Text, 9), col("VID_PR", Number, 8), col("KOD_TO_PR", Text, 11), col("DATE_REG", Date, 11),
		col("NUM_PR", Text, 8),
		// Таможенные документы
		col("NAPR", Number, 6), col("DOC_TYPE", Number, 9), col("DOC_NUM", Text, 26), col("STRANA_OTP", Text, 14),
		col("STRANA_NAZ", Text, 14), col("KOD_TNVED", Text, 10), col("NAIM_TOV", Text, 24), col("VES_TP", Decimal, 10),
		col("VES_TOV", Decimal, 10), col("NAIM_PER", Text, 22), col("INN_PER", Text, 13), col("FIO_VODIT", Text, 28),
		col("NAIM_OTP_POL", Text, 22), col("INN_OTP_POL", Text, 13),
		// Сведения о сканируемом объекте
		col("VID_TS", Number, 7), col("NUM_TS", Text, 12), col("NUM_P_TS", Text, 12), col("NUM_CONT", Text, 13),
		col("NUM_OB", Number, 7),
		// Результаты осмотра
		col("NUM_SNIM", Text, 23), col("OS_OTM", Number, 7), col("PRIM", Text, 40), col("REZ", Number, 5),
		col("FIO_OPER", Text, 28), col("LNP_OPER", Text, 9),
	}}

	// Table2 is «Выявленные правонарушения» (28 fields), entered by officers.
	Table2 = Table{Number: 2, Sheet: "Таблица 2", Title: "Выявленные правонарушения", Columns: []Column{
		col("KOD_TO", Text, 11), col("NAIM_TO", Text, 22), col("NAIM_ZTK", Text, 22), col("TYPE_IDK", Number, 9),
		col("NUM_IDK", Text, 10), col("DISL_IDK", Number, 9), col("DATE_SYS", Date, 11), col("KOD_TEH", Text, 9),
		col("NUM_SNIM", Text, 23), col("NAIM_DOK", Number, 9), col("NUM_DOK", Text, 26), col("NUM_PR", Text, 8),
		col("NAPR", Number, 6),
		col("NAIM_ORG", Text, 22), col("INN_ORG", Text, 13), col("NAIM_OTP_POL", Text, 22), col("INN_OTP_POL", Text, 13),
		col("OB_NAR", Text, 30), col("KOD_TNVED", Text, 10), col("KOL_VO_TOV", Text, 12),
		col("REZ", Number, 5), col("DATE_VOZB", Date, 11), col("NUM_DELA", Text, 20), col("NUM_STAT", Text, 26),
		col("STOIM", Decimal, 12), col("KONF", Decimal, 12), col("SUMM_SHT", Decimal, 12), col("SUMM_PLAT", Decimal, 12),
	}}

	// Table3 is «Работоспособность ИДК и объекты контроля»: one row per
	// ИДК, day and place it worked at (38 fields).
	Table3 = Table{Number: 3, Sheet: "Таблица 3", Title: "Работоспособность ИДК и объекты контроля", Columns: table3Columns()}

	// Table4 is «Нарушение сроков проведения таможенного осмотра с
	// использованием ИДК» (12 fields).
	Table4 = Table{Number: 4, Sheet: "Таблица 4", Title: "Нарушение сроков проведения таможенного осмотра с использованием ИДК", Columns: []Column{
		col("KOD_TO", Text, 11), col("NAIM_TO", Text, 22), col("NAIM_ZTK", Text, 22), col("TYPE_IDK", Number, 9),
		col("NUM_IDK", Text, 10), col("DISL_IDK", Number, 9), col("DATE_NAR", Date, 11), col("NUM_SNIM", Text, 23),
		col("TIME_1", Duration, 8), col("TIME_2", Duration, 8), col("TIME_3", Duration, 8), col("PRICH_NAR", Text, 40),
	}}

	// Table5 is «Общие данные о повторном анализе информации, полученной с
	// использованием ИДК» (12 fields), entered by officers.
	Table5 = Table{Number: 5, Sheet: "Таблица 5", Title: "Общие данные о повторном анализе информации, полученной с использованием ИДК", Columns: []Column{
		col("KOD_TO", Text, 11), col("DATE_SYS", Date, 11), col("KOL_VO_PR_SNIM", Number, 15), col("KOL_VO_NAR", Number, 11),
		col("KOL_VO_OT_SNIM", Number, 15), col("KOL_VO_POD_SNIM", Number, 16), col("KOL_VO_PROV", Number, 12),
		col("KOL_VO_PPR", Number, 11), col("KOL_VO_UPR", Number, 11), col("KOL_VO_EPR", Number, 11),
		col("FIO", Text, 28), col("LNP", Text, 7),
	}}

	// Table6 is «Результаты принятых мер по нарушениям, выявленным при
	// повторном анализе информации, полученной с использованием ИДК» (8
	// fields), entered by officers.
	Table6 = Table{Number: 6, Sheet: "Таблица 6", Title: "Результаты принятых мер по нарушениям, выявленным при повторном анализе информации, полученной с использованием ИДК", Columns: []Column{
		col("KOD_TO", Text, 11), col("DATE_SYS_V", Date, 11), col("NUM_SNIM", Text, 23), col("OPISANIE", Text, 40),
		col("REZ", Number, 5), col("DATE_SYS_R", Date, 11), col("FIO", Text, 28), col("LNP", Text, 7),
	}}

	// Tables are the six tables in the report's order.
	Tables = []*Table{&Table1, &Table2, &Table3, &Table4, &Table5, &Table6}
)

// ObjectCategories are the object categories of table 3's count fields
// (note 15), in the regulation's order, with the VID_TS code of each.
var ObjectCategories = []struct {
	Field  string // GRU, KON, ...
	VidTS  int    // the VID_TS code of the category
	NameRU string
}{
	{"GRU", 1, "ГРУЗОВОЙ"}, {"KON", 2, "КОНТЕЙНЕРНЫЙ"}, {"LEG", 3, "ЛЕГКОВОЙ"},
	{"PAS", 4, "ПАССАЖИРСКИЙ"}, {"POR", 5, "ПОРОЖНИЙ"}, {"IN", 6, "ИНОЙ"},
}

// Directions are the suffixes of table 3's count fields: IM entry (NAPR
// 1), EX exit (NAPR 2).
var Directions = []struct {
	Suffix string
	Napr   int
}{{"IM", 1}, {"EX", 2}}

// CountField is the table 3 field that counts objects of VID_TS category
// vidTS in direction napr: prefix "OKO" (all the day's objects) or "KOVR"
// (those during ИДК working time), e.g. CountField("OKO", 1, 1) is
// "OKO_GRU_IM".
func CountField(prefix string, vidTS, napr int) string {
	for _, d := range Directions {
		if d.Napr != napr {
			continue
		}
		for _, c := range ObjectCategories {
			if c.VidTS == vidTS {
				return prefix + "_" + c.Field + "_" + d.Suffix
			}
		}
	}
	return ""
}

func table3Columns() []Column {
	cols := []Column{
		col("DATE", Date, 11), col("PRIZ_PEREDISL", Number, 14), col("TYPE_IDK", Number, 9), col("NUM_IDK", Text, 10),
		col("KOD_M_D", Text, 11), col("NAIM_M_D", Text, 22), col("NAIM_ZTK_M_D", Text, 22), col("DISL_P", Number, 7),
		col("TIME_JOB", Duration, 9), col("TIME_WAIT", Duration, 10), col("TIME_OPER", Duration, 10),
		col("TIME_TEH", Duration, 9), col("TIME_NEPAB", Duration, 11), col("TIME_PEREDISL", Duration, 14),
	}
	for _, prefix := range []string{"OKO", "KOVR"} {
		for _, d := range Directions {
			for _, c := range ObjectCategories {
				cols = append(cols, col(prefix+"_"+c.Field+"_"+d.Suffix, Number, 12))
			}
		}
	}
	return cols
}
