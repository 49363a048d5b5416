// Package codes holds the regulation's code tables in one place, shared by
// the agent and the collector: the agent may import protocol/ but nothing
// under collector/, so the tables live here. Each table lists its codes in
// the regulation's order with their Russian names (and short names where
// the regulation gives them) exactly as the domain reference
// (../shared/domain/reference.md) gives them; where the reference gives
// only an English gloss, the Russian text is the regulation's own
// (../shared/seeds/001_79024c249e09554c.txt, Appendix 4).
package codes

import (
	"fmt"
	"strconv"
)

// Entry is one code of a table.
type Entry struct {
	Code  int
	Name  string // the regulation's name of the code
	Short string // its short name, where the regulation gives one
}

// Table is one code table.
type Table struct {
	// Field names the report fields that hold the code, as the reference
	// heads the table ("DISL_IDK / DISL_P").
	Field string
	// Width is the number of digits a code is written with, with leading
	// zeros (KOD_TEH: 2, "01"); 0 writes it as is.
	Width   int
	Entries []Entry
}

func (t Table) entry(code int) (Entry, bool) {
	for _, e := range t.Entries {
		if e.Code == code {
			return e, true
		}
	}
	return Entry{}, false
}

// Valid reports whether code is one of t's codes.
func (t Table) Valid(code int) bool {
	_, ok := t.entry(code)
	return ok
}

// Name is the name of code, or "" if t has no such code.
func (t Table) Name(code int) string {
	e, _ := t.entry(code)
	return e.Name
}

// Short is the short name of code, or "" if t has no such code or gives
// it no short name.
func (t Table) Short(code int) string {
	e, _ := t.entry(code)
	return e.Short
}

// Codes are t's codes in the regulation's order.
func (t Table) Codes() []int {
	cs := make([]int, len(t.Entries))
	for i, e := range t.Entries {
		cs[i] = e.Code
	}
	return cs
}

// Format writes code as the report does: with Width digits ("01").
func (t Table) Format(code int) string {
	if t.Width > 0 {
		return fmt.Sprintf("%0*d", t.Width, code)
	}
	return strconv.Itoa(code)
}

// Texts are t's codes as Format writes them, in the regulation's order.
func (t Table) Texts() []string {
	ts := make([]string, len(t.Entries))
	for i, e := range t.Entries {
		ts[i] = t.Format(e.Code)
	}
	return ts
}

// Parse returns the code s writes, accepting only the exact text Format
// gives ("01" for KOD_TEH, not "1" nor " 01").
func (t Table) Parse(s string) (int, bool) {
	for _, e := range t.Entries {
		if t.Format(e.Code) == s {
			return e.Code, true
		}
	}
	return 0, false
}

// ValidText reports whether s is one of t's codes written as Format
// writes it.
func (t Table) ValidText(s string) bool {
	_, ok := t.Parse(s)
	return ok
}

// TypeIDK: kind of ИДК (reference §8, "Shared code tables", TYPE_IDK;
// tables 1-4).
var TypeIDK = Table{Field: "TYPE_IDK", Entries: []Entry{
	{Code: 1, Name: "Мобильный"},
	{Code: 2, Name: "Стационарный"},
}}

// Disl: kind of deployment location, вид МД (reference §8, "Shared code
// tables", DISL_IDK / DISL_P; tables 1, 2, 4 as DISL_IDK, table 3 as
// DISL_P).
var Disl = Table{Field: "DISL_IDK / DISL_P", Entries: []Entry{
	{Code: 1, Name: "Автомобильный пункт пропуска", Short: "АПП"},
	{Code: 2, Name: "Морской пункт пропуска", Short: "МПП"},
	{Code: 3, Name: "Железнодорожный пункт пропуска", Short: "ЖДПП"},
	{Code: 4, Name: "Воздушный пункт пропуска", Short: "ВПП"},
	{Code: 5, Name: "Вне пункта пропуска", Short: "ВНЕ ПП"},
}}

// DislOutside is the Disl code of a place outside any checkpoint (ВНЕ ПП).
const DislOutside = 5

// KodTeh: technological operation at which the ПР is applied (reference
// §8, "Shared code tables", KOD_TEH; tables 1, 2). Two digits with a
// leading zero; there are no codes 06, 08 or 12-18.
var KodTeh = Table{Field: "KOD_TEH", Width: 2, Entries: []Entry{
	{Code: 1, Name: "Прибытие товаров на таможенную территорию Евразийского экономического союза"},
	{Code: 2, Name: "Помещение товаров под таможенную процедуру таможенного транзита"},
	{Code: 3, Name: "Завершение таможенной процедуры таможенного транзита"},
	{Code: 4, Name: "Временное хранение товаров"},
	{Code: 5, Name: "Таможенное декларирование товаров с подачей декларации на товары"},
	{Code: 7, Name: "Убытие товаров с таможенной территории Евразийского экономического союза"},
	{Code: 9, Name: "Таможенное декларирование товаров с подачей письменного заявления или перечня товаров"},
	{Code: 10, Name: "Перемещение транспортных средств международной перевозки"},
	{Code: 11, Name: "Перемещение товаров физическими лицами для личного пользования"},
	{Code: 19, Name: "Перемещение товаров под таможенной процедурой таможенного транзита"},
	{Code: 20, Name: "Таможенное декларирование товаров для личного пользования, доставляемых экспресс-перевозчиками, с использованием реестра"},
	{Code: 21, Name: "Перемещение товаров через границу особой экономической зоны"},
	{Code: 99, Name: "Любая"},
}}

// VidPr: kind of ПР (reference §8, "Shared code tables", VID_PR; table 1).
var VidPr = Table{Field: "VID_PR", Entries: []Entry{
	{Code: 11, Name: "Общероссийский профиль риска"},
	{Code: 12, Name: "Региональный профиль риска"},
	{Code: 13, Name: "Зональный профиль риска"},
	{Code: 20, Name: "Целевой профиль риска"},
	{Code: 21, Name: "Целевой правоохранительный профиль риска"},
	{Code: 55, Name: "Профиль риска, обязательный к применению"},
}}

// Napr: direction of movement (reference §8, "Shared code tables", NAPR;
// tables 1, 2).
var Napr = Table{Field: "NAPR", Entries: []Entry{
	{Code: 1, Name: "Ввоз"},
	{Code: 2, Name: "Вывоз"},
}}

// DocType: kind of document for which the ПР was identified (reference
// §8, "Shared code tables", DOC_TYPE / NAIM_DOK; table 1 DOC_TYPE, table 2
// NAIM_DOK, which holds the code, not a name).
var DocType = Table{Field: "DOC_TYPE / NAIM_DOK", Entries: []Entry{
	{Code: 1, Name: "Сообщение о прибытии"},
	{Code: 2, Name: "Транзитная декларация"},
	{Code: 3, Name: "Отчет по форме ДО-1"},
	{Code: 4, Name: "Декларация на товары"},
	{Code: 5, Name: "Документ, используемый в качестве ДТ"},
	{Code: 6, Name: "Декларация на транспортное средство"},
	{Code: 7, Name: "Паспорт гражданина"},
	{Code: 8, Name: "Коносамент"},
	{Code: 9, Name: "Обязательство о подаче ДТ"},
	{Code: 10, Name: "Сообщение об убытии"},
}}

// VerScan: kind of scan (reference §8.1, table 1 field 9, VER_SCAN).
var VerScan = Table{Field: "VER_SCAN", Entries: []Entry{
	{Code: 1, Name: "Сканирование объекта контроля", Short: "СКАНИРОВАНИЕ"},
	{Code: 2, Name: "Радиационный контроль ИДК", Short: "РК"},
	{Code: 3, Name: "Повторное сканирование", Short: "ПОВТОР"},
	{Code: 4, Name: "При проведении сканирования произошел сбой", Short: "СБОЙ"},
	{Code: 5, Name: "Тестовое сканирование сервисной организацией", Short: "ТЕСТ"},
}}

// VidTS: kind of vehicle (reference §8.1, table 1 field 29, VID_TS; the
// categories are defined in table 3 note 15, reference §8.3).
var VidTS = Table{Field: "VID_TS", Entries: []Entry{
	{Code: 1, Name: "Грузовой"},
	{Code: 2, Name: "Контейнерный"},
	{Code: 3, Name: "Легковой"},
	{Code: 4, Name: "Пассажирский"},
	{Code: 5, Name: "Порожний"},
	{Code: 6, Name: "Иной"},
}}

// Rez1: the оператор АИ's conclusion on the control object (reference
// §8.1, table 1 field 37, REZ; §2.4).
var Rez1 = Table{Field: "REZ (table 1)", Entries: []Entry{
	{Code: 1, Name: "Без подозрений"},
	{Code: 2, Name: "Под подозрением"},
}}

// Rez2: result of ИДК use (reference §8.2, table 2 field 21, REZ). The
// reference gives the short names, and the Russian names of codes 1-3
// and 5; the names of codes 4, 6, 7 and 8, which it gives in English,
// are the regulation's (table 2 note 21).
var Rez2 = Table{Field: "REZ (table 2)", Entries: []Entry{
	{Code: 1, Short: "АП", Name: "Возбуждение дела об административном правонарушении"},
	{Code: 2, Short: "УД", Name: "Возбуждение уголовного дела"},
	{Code: 3, Short: "З", Name: "Принято решение о запрете ввоза/вывоза товаров на/с таможенную(ой) территорию(и) ЕАЭС"},
	{Code: 4, Short: "НС", Name: rez4},
	{Code: 5, Short: "О", Name: "Принято решение об отказе в выпуске товаров"},
	{Code: 6, Short: "КТС", Name: rez6},
	{Code: 7, Short: "П", Name: rez7},
	{Code: 8, Short: "Д", Name: "Таможенный осмотр с ИДК признан эффективным по результатам таможенного досмотра, приведшего к результатам с кодами 1 — 7, проведенного в соответствии с целевым профилем риска, разработанным отделом применения системы управления рисками — центром оперативного мониторинга и управления рисками регионального таможенного управления, таможни или подразделением таможни, непосредственно подчиненной ФТС России, обеспечивающим координацию и (или) применение системы управления рисками"},
}}

// Rez6: result of the verification measures for a violation found by
// re-analysis (reference §8.6, table 6 field 5, REZ). No short names.
// Codes 4, 6 and 7 have the same text as table 2 (the reference gives it
// in English; the Russian is the regulation's, table 6 note 5).
var Rez6 = Table{Field: "REZ (table 6)", Entries: []Entry{
	{Code: 0, Name: "Назначено проведение проверочных мероприятий"},
	{Code: 1, Name: "Возбуждено дело об административном правонарушении"},
	{Code: 2, Name: "Возбуждено уголовное дело"},
	{Code: 3, Name: "Принято решение о запрете ввоза/вывоза товаров на/с таможенную(ой) территорию(и) ЕАЭС"},
	{Code: 4, Name: rez4},
	{Code: 5, Name: "Принято решение об отказе в выпуске товаров"},
	{Code: 6, Name: rez6},
	{Code: 7, Name: rez7},
	{Code: 8, Name: "Издан профиль риска"},
	{Code: 9, Name: "Должностному лицу, допустившему нарушение, объявлено замечание"},
	{Code: 10, Name: "Должностному лицу, допустившему нарушение, объявлен выговор"},
	{Code: 11, Name: "Должностному лицу, допустившему нарушение, объявлен строгий выговор (только для сотрудников таможенных органов)"},
	{Code: 12, Name: "Должностному лицу, допустившему нарушение, объявлено о неполном служебном соответствии"},
	{Code: 13, Name: "Должностное лицо, допустившее нарушение, уволено"},
	{Code: 14, Name: "К должностному лицу, допустившему нарушение, применено материальное взыскание"},
}}

// The long texts tables 2 and 6 share (codes 4, 6, 7).
const (
	rez4 = "Установлен факт непредставления таможенному органу сведений о перемещаемых товарах и транспортных средствах (далее — сведения) либо представления недостоверных сведений при прибытии на таможенную территорию ЕАЭС и (или) получении разрешения на помещение товаров под таможенную процедуру таможенного транзита, и (или) размещении товаров на временное хранение, не повлекший возбуждение дела об административном правонарушении в связи с отсутствием субъективной стороны правонарушения"
	rez6 = "Принято решение о классификации товаров либо решение о внесении изменений в сведения о происхождении товаров, либо решение о внесении изменений (дополнений) в сведения, заявленные в декларации на товары, после выпуска товаров в таможенной стоимости товаров, либо направлено требование о внесении изменений (дополнений) в сведения, заявленные в таможенной декларации, до выпуска товаров в отношении таможенной стоимости товаров, в результате которых доначислены подлежащие уплате таможенные платежи"
	rez7 = "Принято решение о приостановлении выпуска товаров (с последующим принятием решения об изъятии товаров, наложении на них ареста или принятием решения об их конфискации)"
)

// TimeNepab: causes of inoperability counted in TIME_NEPAB (reference
// §8.3, table 3 note 13). The regulation lists them without codes; the
// codes are the protocol's (idkpb.InoperableCause, 1-8, in the
// regulation's order). The reference gives them in English only; the
// names are the regulation's wording put in the nominative («вызванное:
// перезагрузкой системы» → «перезагрузка системы»).
var TimeNepab = Table{Field: "TIME_NEPAB", Entries: []Entry{
	{Code: 1, Name: "перезагрузка системы"},
	{Code: 2, Name: "погодные условия"},
	{Code: 3, Name: "поломка дизель-генератора"},
	{Code: 4, Name: "неисправность стрелы"},
	{Code: 5, Name: "неисправность ускорителя"},
	{Code: 6, Name: "неисправность мобильного шасси"},
	{Code: 7, Name: "неисправность программного обеспечения"},
	{Code: 8, Name: "иная неисправность, причину которой на момент составления отчета невозможно однозначно определить"},
}}

// All are the tables, in the order of the reference.
var All = []*Table{&TypeIDK, &Disl, &KodTeh, &VidPr, &Napr, &DocType, &VerScan, &VidTS, &Rez1, &Rez2, &TimeNepab, &Rez6}
