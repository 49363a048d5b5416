package report

import (
	"errors"
	"fmt"
	"time"
)

// Row is one row of a table: a value per column of the table, in column
// order, already formatted as the column's Kind says ("" is an empty
// cell). Text is upper case.
type Row []string

// Sheet is a table with its rows, streamed: Rows calls emit once per row
// in the table's order and stops at emit's first error, which it returns.
type Sheet struct {
	Table *Table
	Rows  func(emit func(Row) error) error
}

// Counts are the object counts of one table 3 row, by field name
// ("OKO_GRU_IM": 12, "KOVR_GRU_IM": 10). A field not in the map is 0.
type Counts map[string]int

// CountSource gives the object counts the post entered for ИДК numIDK on
// the calendar day that starts at day (midnight in the report's time
// zone). ok is false when nothing was entered for that day.
type CountSource interface {
	Counts(numIDK string, day time.Time) (c Counts, ok bool, err error)
}

// Officer is an operator or official as table 1 (FIO_OPER, LNP_OPER) and
// tables 5 and 6 (FIO, LNP) name them.
type Officer struct {
	FIO string // Ф.И.О., upper case
	LNP string // the number of the personal seal (ЛНП), as text: "056"
}

// Roster maps the login a CargoRIW form names as its operator to the
// officer. ok is false for a login the roster does not list.
type Roster interface {
	Officer(login string) (o Officer, ok bool)
}

// Missing lists the fields of one table 1 row that nobody supplied: the
// row is published with them empty and listed as incomplete.
type Missing struct {
	NumIDK  string   `json:"NUM_IDK"`
	NumSnim string   `json:"NUM_SNIM"`
	Date    string   `json:"DATE_SYS"`
	Fields  []string `json:"fields"`
}

// FormatDate writes t's calendar date as the report does: DD.MM.YYYY.
func FormatDate(t time.Time) string { return t.Format("02.01.2006") }

// ParseDate reads a DD.MM.YYYY date as midnight in loc.
func ParseDate(s string, loc *time.Location) (time.Time, error) {
	return time.ParseInLocation("02.01.2006", s, loc)
}

// ParseMonth reads a report month, 2026-11 or 11.2026, as midnight of its
// 1st in loc.
func ParseMonth(s string, loc *time.Location) (time.Time, error) {
	if s == "" {
		return time.Time{}, errors.New("month is required (2026-11 or 11.2026)")
	}
	for _, layout := range []string{"2006-01", "01.2006"} {
		if t, err := time.ParseInLocation(layout, s, loc); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("month %q: want 2026-11 or 11.2026", s)
}

// MonthStart is midnight of the first day of day's month in day's zone:
// the daily report is cumulative from there (A4 rule 3).
func MonthStart(day time.Time) time.Time {
	y, m, _ := day.Date()
	return time.Date(y, m, 1, 0, 0, 0, 0, day.Location())
}

// NextDay is midnight of the day after day, taken from the calendar.
func NextDay(day time.Time) time.Time {
	y, m, d := day.Date()
	return time.Date(y, m, d+1, 0, 0, 0, 0, day.Location())
}

// ScanIdentity is what the collector recorded of a scan: the identity
// fields that tables 2 and 6 copy from the scan an entry names.
type ScanIdentity struct {
	KodTO   string
	NaimTO  string
	NaimZTK string
	TypeIDK int
	NumIDK  string
	DislIDK int
	Date    time.Time // DATE_SYS: the scan's calendar day, midnight in the report's zone
}

// ScanLookup finds a recorded scan by its image number. numIDK may be ""
// to search every ИДК; ok is false when no scan (or, with numIDK "",
// more than one) has that number.
type ScanLookup interface {
	LookupScan(numIDK, numSnim string) (s ScanIdentity, ok bool, err error)
}
