package national

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"idk/collector/report"
)

// The national summary adds up the regions' monthly summaries (the sheet
// report.SummaryOffices of each region's monthly report, pulled as
// summary.json): a row per region, the sum of its office rows, and a
// total row; and every region's office rows as the region gave them.
// The counted columns are those of report.SummaryOffices from KOL_VO_IDK
// on, by their names and in their order, so that they read as the
// regions' own. KOL_VO_IDK of a region is the sum of its offices': an
// ИДК moved between two offices in the month counts in each, as in the
// regions' own rows.

// RegionColumn names the region in the national sheets.
const RegionColumn = "RTU"

// counted are the columns summed: report.SummaryOffices's from KOL_VO_IDK.
var counted = report.SummaryOffices.Columns[report.SummaryOffices.Field("KOL_VO_IDK"):]

func init() {
	// Only counts and durations can be added up; another kind there is a
	// change in package report this package must follow.
	for _, c := range counted {
		if c.Kind != report.Number && c.Kind != report.Duration {
			panic(fmt.Sprintf("national: summary column %s is neither a count nor a duration", c.Name))
		}
	}
}

var (
	// RegionsTable is the sheet of the regions: one row per region and
	// the total, ИТОГО.
	RegionsTable = report.Table{Sheet: "Сводка по РТУ", Title: "Сводка по РТУ",
		Columns: append([]report.Column{{Name: RegionColumn, Kind: report.Text, Width: 16}}, counted...)}
	// OfficesTable is the sheet of every region's office rows, each
	// named by its region.
	OfficesTable = report.Table{Sheet: "Сводка по таможням", Title: "Сводка по таможням",
		Columns: append([]report.Column{{Name: RegionColumn, Kind: report.Text, Width: 16}}, report.SummaryOffices.Columns...)}
)

// TotalName is the RTU of the total row.
const TotalName = "ИТОГО"

// Summary is the national summary of a month.
type Summary struct {
	Month   string          `json:"month"`   // 2026-11
	Columns []string        `json:"columns"` // the summed columns, in order
	Regions []RegionSummary `json:"regions"`
	// Total is the sum of the regions' rows.
	Total map[string]string `json:"total"`
	// Missing are the regions asked for that have no summary of the
	// month pulled: the total lacks them.
	Missing []string `json:"missing,omitempty"`
}

// RegionSummary is one region's part.
type RegionSummary struct {
	Region string `json:"region"`
	// Pulled and SHA256 identify the summary.json summed.
	Pulled time.Time           `json:"pulled,omitzero"`
	SHA256 string              `json:"sha256,omitempty"`
	Total  map[string]string   `json:"total"`   // its office rows summed
	Rows   []map[string]string `json:"offices"` // its office rows as pulled
}

// sums are a row's counted values: counts, and durations in minutes.
type sums []int

func (s sums) add(o sums) {
	for i := range s {
		s[i] += o[i]
	}
}

func (s sums) row() map[string]string {
	out := make(map[string]string, len(counted))
	for i, c := range counted {
		if c.Kind == report.Duration {
			out[c.Name] = report.FormatHM(s[i])
		} else {
			out[c.Name] = strconv.Itoa(s[i])
		}
	}
	return out
}

// parseRow reads a region's office row's counted values, each exactly as
// the region writes it: an integer count, an "H,MM" duration.
func parseRow(row map[string]string) (sums, error) {
	s := make(sums, len(counted))
	for i, c := range counted {
		v, ok := row[c.Name]
		if !ok {
			return nil, fmt.Errorf("column %s: missing", c.Name)
		}
		var n int
		var err error
		var back string
		if c.Kind == report.Duration {
			n, err = report.ParseHM(v)
			back = report.FormatHM(n)
		} else {
			n, err = strconv.Atoi(v)
			back = strconv.Itoa(n)
		}
		// Written back the same way or refused: a value that does not
		// read back the same (a sign, leading zeros, "") is not one the
		// region's collector writes.
		if err == nil && (back != v || n < 0) {
			err = fmt.Errorf("%q is not written as the region's report writes it", v)
		}
		if err != nil {
			return nil, fmt.Errorf("column %s: %w", c.Name, err)
		}
		s[i] = n
	}
	return s, nil
}

// BuildSummary reads the pulled summary.json of month (2026-11) of each
// of regions under dir and adds them up. regions nil is every region
// folder under dir that holds one, by name. A region asked for without a
// pulled summary is listed in Missing; a value that does not parse is an
// error naming the region, the office row and the column.
func BuildSummary(dir, month string, regions []string) (*Summary, error) {
	t, err := MonthTarget(month)
	if err != nil {
		return nil, err
	}
	month = t.Month
	if regions == nil {
		entries, err := os.ReadDir(dir)
		if err != nil {
			return nil, fmt.Errorf("national summary: %w", err)
		}
		for _, e := range entries {
			if _, err := os.Stat(filepath.Join(dir, e.Name(), month, SummaryFile)); e.IsDir() && err == nil {
				regions = append(regions, e.Name())
			}
		}
	}
	out := &Summary{Month: month, Regions: []RegionSummary{}}
	for _, c := range counted {
		out.Columns = append(out.Columns, c.Name)
	}
	total := make(sums, len(counted))
	for _, name := range regions {
		path := filepath.Join(dir, name, month, SummaryFile)
		s, err := readSummary(path, month)
		if errors.Is(err, fs.ErrNotExist) {
			out.Missing = append(out.Missing, name)
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("region %s: %s: %w", name, path, err)
		}
		rs := RegionSummary{Region: name, Rows: s.Offices}
		if rs.Rows == nil {
			rs.Rows = []map[string]string{}
		}
		if m, err := ReadManifest(dir, name, month); err == nil {
			if e, ok := m.file(SummaryFile); ok {
				rs.Pulled, rs.SHA256 = e.Pulled, e.SHA256
			}
		}
		sum := make(sums, len(counted))
		for i, row := range s.Offices {
			v, err := parseRow(row)
			if err != nil {
				return nil, fmt.Errorf("region %s: office row %d (KOD_TO %s): %w", name, i+1, row["KOD_TO"], err)
			}
			sum.add(v)
		}
		rs.Total = sum.row()
		total.add(sum)
		out.Regions = append(out.Regions, rs)
	}
	out.Total = total.row()
	return out, nil
}

// WriteJSON writes s as indented JSON.
func (s *Summary) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(s)
}

// WriteXLSX writes s as a workbook of two sheets: RegionsTable, with the
// total last, and OfficesTable. The same summary gives the same bytes:
// the workbook's time is the latest pull it sums.
func (s *Summary) WriteXLSX(w io.Writer) error {
	var created time.Time
	for _, r := range s.Regions {
		if r.Pulled.After(created) {
			created = r.Pulled
		}
	}
	line := func(t *report.Table, region string, vals map[string]string) report.Row {
		row := report.Row{region}
		for _, c := range t.Columns[1:] {
			row = append(row, vals[c.Name])
		}
		return row
	}
	regions := report.Sheet{Table: &RegionsTable, Rows: func(emit func(report.Row) error) error {
		for _, r := range s.Regions {
			if err := emit(line(&RegionsTable, r.Region, r.Total)); err != nil {
				return err
			}
		}
		return emit(line(&RegionsTable, TotalName, s.Total))
	}}
	offices := report.Sheet{Table: &OfficesTable, Rows: func(emit func(report.Row) error) error {
		for _, r := range s.Regions {
			for _, o := range r.Rows {
				if err := emit(line(&OfficesTable, r.Region, o)); err != nil {
					return err
				}
			}
		}
		return nil
	}}
	title := "Сводка ИДК по РТУ за " + s.Month
	if t, err := time.Parse("2006-01", s.Month); err == nil {
		title = "Сводка ИДК по РТУ за " + t.Format("01.2006")
	}
	if err := report.WriteWorkbook(w, []report.Sheet{regions, offices}, report.WorkbookOptions{Title: title, Created: created}); err != nil {
		return fmt.Errorf("national summary %s: %w", s.Month, err)
	}
	return nil
}

// RegionNames are the names of c's regions, in order.
func (c Config) RegionNames() []string {
	out := make([]string, len(c.Regions))
	for i, r := range c.Regions {
		out[i] = r.Name
	}
	return out
}
