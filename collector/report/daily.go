package report

import (
	"crypto/sha256"
	"fmt"
	"hash"
	"io"
	"time"

	"idk/collector/cases"
	"idk/collector/ingest"
	"idk/internal/clock"
)

// Sources are what the daily report is built from.
type Sources struct {
	Index    ingest.Viewer  // the collector's index: the scan and availability journals, the entries
	Scans    *ScanJournal   // table 1
	Entries  *Entries       // tables 2, 5 and 6, and table 3's object counts
	Cases    *cases.Engine  // table 4, and what tables 1 and 3 take from the inspections
	Roster   Roster         // operators' names and seal numbers for table 1
	Location *time.Location // the calendar the days and the month are counted in
	Clock    clock.Clock    // clock.Real if nil
}

// Builder builds daily reports. It is safe for concurrent use: every
// build reads its sources afresh.
type Builder struct{ s Sources }

// NewBuilder returns a builder reading s.
func NewBuilder(s Sources) *Builder {
	s.Clock = clock.Or(s.Clock)
	if s.Location == nil {
		s.Location = time.UTC
	}
	return &Builder{s: s}
}

// Location is the calendar the builder counts days in.
func (b *Builder) Location() *time.Location { return b.s.Location }

// Daily is one day's report for one customs body: the six tables, each
// cumulative from the first of the month to the day (A4 rule 3). Table 1
// streams from the index when the report is written, so a month of a
// large region is never held in memory.
type Daily struct {
	KodTO  string
	Day    time.Time // midnight of the report's day
	Built  time.Time // when it was built: the workbook's created time
	Sheets []Sheet
	// Incomplete lists table 1's rows that lack a field nobody supplied;
	// filled as table 1 is written.
	Incomplete []Missing
	// Digest is the SHA-256 of every cell of every sheet, set once the
	// report is written: two builds with equal digests have equal content
	// whatever the workbook's bytes.
	Digest []byte
}

// Daily builds the report of customs body kodTO for the calendar day that
// holds day.
func (b *Builder) Daily(kodTO string, day time.Time) (*Daily, error) {
	loc := b.s.Location
	y, m, dd := day.In(loc).Date()
	start := time.Date(y, m, dd, 0, 0, 0, 0, loc)
	from, to := MonthStart(start), NextDay(start)
	now := b.s.Clock.Now()
	d := &Daily{KodTO: kodTO, Day: start, Built: now}

	t3, err := Table3Rows(b.s.Index, b.s.Cases, b.s.Entries, kodTO, from, to, loc, now)
	if err != nil {
		return nil, fmt.Errorf("report: table 3: %w", err)
	}
	t4, err := Table4Rows(b.s.Cases, kodTO, from, to)
	if err != nil {
		return nil, fmt.Errorf("report: table 4: %w", err)
	}
	entries := func(table int) func(func(Row) error) error {
		return func(emit func(Row) error) error { return b.s.Entries.Rows(table, kodTO, from, to, emit) }
	}
	d.Sheets = []Sheet{
		{Table: &Table1, Rows: func(emit func(Row) error) error {
			d.Incomplete = d.Incomplete[:0]
			return b.s.Scans.Table1(b.s.Index, kodTO, from, to, b.s.Cases, b.s.Roster, func(r Row, miss *Missing) error {
				if miss != nil {
					d.Incomplete = append(d.Incomplete, *miss)
				}
				return emit(r)
			})
		}},
		{Table: &Table2, Rows: entries(2)},
		{Table: &Table3, Rows: rowsFrom(t3)},
		{Table: &Table4, Rows: rowsFrom(t4)},
		{Table: &Table5, Rows: entries(5)},
		{Table: &Table6, Rows: entries(6)},
	}
	return d, nil
}

func rowsFrom(rows []Row) func(func(Row) error) error {
	return func(emit func(Row) error) error {
		for _, r := range rows {
			if err := emit(r); err != nil {
				return err
			}
		}
		return nil
	}
}

// Title is the workbook's document title.
func (d *Daily) Title() string {
	return fmt.Sprintf("Ежедневный отчет ИДК %s за %s", d.KodTO, FormatDate(d.Day))
}

// WriteXLSX writes the report as an Excel workbook, one sheet per table,
// and sets Digest and Incomplete.
func (d *Daily) WriteXLSX(w io.Writer) error {
	h := sha256.New()
	sheets := make([]Sheet, len(d.Sheets))
	for i, s := range d.Sheets {
		sheets[i] = Sheet{Table: s.Table, Rows: digesting(h, s)}
	}
	if err := WriteWorkbook(w, sheets, WorkbookOptions{Title: d.Title(), Created: d.Built}); err != nil {
		return err
	}
	d.Digest = h.Sum(nil)
	return nil
}

// ContentDigest reads every row of the report, as WriteXLSX would write
// it, and returns the digest of the cells alone.
func (d *Daily) ContentDigest() ([]byte, error) {
	h := sha256.New()
	for _, s := range d.Sheets {
		if err := digesting(h, s)(func(Row) error { return nil }); err != nil {
			return nil, err
		}
	}
	return h.Sum(nil), nil
}

// digesting streams s's rows and adds each cell to h, with separators
// that keep "AB","C" apart from "A","BC" and the sheets apart.
func digesting(h hash.Hash, s Sheet) func(func(Row) error) error {
	return func(emit func(Row) error) error {
		fmt.Fprintf(h, "\x1d%d\x1e", s.Table.Number)
		return s.Rows(func(r Row) error {
			for _, c := range r {
				io.WriteString(h, c)
				h.Write([]byte{0x1f})
			}
			h.Write([]byte{0x1e})
			return emit(r)
		})
	}
}
