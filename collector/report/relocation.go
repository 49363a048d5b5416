package report

import (
	"fmt"
	"strconv"
	"time"

	"idk/collector/availability"
)

// RelocationTable is the monthly return of relocations of mobile ИДК
// (items 28-29): the place and period of each relocation, which the РТУ
// and the customs offices send by the 10th of the next month. The
// regulation prescribes no form for it, so the columns are this
// collector's own, named in the style of table 3:
//
//	REGION          the РТУ (or customs office under the FTS) of the place left, availability.RegionOf
//	NUM_IDK         the ИДК's number
//	TYPE_IDK        its type (1 mobile)
//	KOD_M_D_OT      place left: the customs body's code (KOD_M_D)
//	NAIM_M_D_OT     place left: the customs body (NAIM_M_D)
//	NAIM_ZTK_M_D_OT place left: the ПП/ЗТК (NAIM_ZTK_M_D)
//	KOD_M_D_DO      place reached: code, empty while the relocation goes on
//	NAIM_M_D_DO     place reached: customs body
//	NAIM_ZTK_M_D_DO place reached: ПП/ЗТК
//	DATE_START      start, DD.MM.YYYY HH:MM
//	DATE_END        end, DD.MM.YYYY HH:MM; empty while it goes on
//	TIME_PEREDISL   duration, hours,minutes as table 3 writes it
//	KOL_DN          calendar days it touched (item 31: more than 3 takes an order)
//	PUNKT           the item that says who decides: 28 (one customs office), 29 (one РТУ), 30 (between РТУ); empty while it goes on
var RelocationTable = Table{Sheet: "Передислокация", Title: "Передислокация мобильных ИДК", Columns: []Column{
	col("REGION", Text, 11), col("NUM_IDK", Text, 10), col("TYPE_IDK", Number, 9),
	col("KOD_M_D_OT", Text, 11), col("NAIM_M_D_OT", Text, 22), col("NAIM_ZTK_M_D_OT", Text, 22),
	col("KOD_M_D_DO", Text, 11), col("NAIM_M_D_DO", Text, 22), col("NAIM_ZTK_M_D_DO", Text, 22),
	col("DATE_START", Text, 17), col("DATE_END", Text, 17), col("TIME_PEREDISL", Duration, 14),
	col("KOL_DN", Number, 7), col("PUNKT", Number, 7),
}}

// RelocationRows turns relocations, as availability.Relocations lists
// them (by region, ИДК and start), into rows of RelocationTable, times in
// loc.
func RelocationRows(rels []availability.Relocation, loc *time.Location) []Row {
	if loc == nil {
		loc = time.Local
	}
	stamp := func(t time.Time) string { return t.In(loc).Format("02.01.2006 15:04") }
	rows := make([]Row, 0, len(rels))
	for _, r := range rels {
		row := Row{
			r.Region, r.NumIDK, strconv.FormatUint(uint64(r.TypeIDK), 10),
			r.From.KodTO, r.From.NaimTO, r.From.NaimZTK,
			"", "", "",
			stamp(r.Start), "", "",
			"", "",
		}
		if !r.Ongoing {
			row[6], row[7], row[8] = r.To.KodTO, r.To.NaimTO, r.To.NaimZTK
			row[10] = stamp(r.End)
			row[11] = availability.FormatHM(r.Duration())
			row[12] = strconv.Itoa(r.CalendarDays())
			row[13] = strconv.Itoa(r.Scope)
		}
		rows = append(rows, row)
	}
	return rows
}

// RelocationSheet is the relocations as a worksheet for WriteWorkbook.
func RelocationSheet(rels []availability.Relocation, loc *time.Location) Sheet {
	rows := RelocationRows(rels, loc)
	return Sheet{Table: &RelocationTable, Rows: func(emit func(Row) error) error {
		for i, r := range rows {
			if err := emit(r); err != nil {
				return fmt.Errorf("relocation row %d: %w", i+1, err)
			}
		}
		return nil
	}}
}
