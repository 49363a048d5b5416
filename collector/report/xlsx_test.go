package report

import (
	"archive/zip"
	"bytes"
	"errors"
	"io"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"
)

// sampleValue is the value row k (from 0) of a test table holds in column
// c, as the report's producers format it. Text is mostly lower case, so
// that the writer's upper-casing shows; every third Number is empty.
func sampleValue(c Column, k int) string {
	switch c.Kind {
	case Number:
		switch {
		case k%3 == 2:
			return ""
		case c.Name == "KOD_TO" || c.Name == "TIME_AN_SNIM":
			return strconv.Itoa(10216100 + k)
		default:
			return strconv.Itoa(k + 1)
		}
	case Date:
		return []string{"27.11.2026", "01.11.2026", "30.11.2026"}[k%3]
	case Duration:
		return []string{"1,05", "0,00", "23,59"}[k%3]
	case Decimal:
		return []string{"6500,45", "0,5", "12000"}[k%3]
	}
	switch c.Name {
	case "KOD_TEH":
		return "01" // a code with a leading zero: text, not 1
	case "LNP", "LNP_OPER":
		return "056"
	case "KOD_TO", "KOD_TO_PR", "KOD_M_D":
		return "10216100"
	case "NUM_SNIM":
		return "10216100/271126/" + strconv.Itoa(1000+k)
	case "PRIM", "OPISANIE":
		if k%3 == 1 {
			return "" // an empty text field
		}
		return "груз соответствует заявленному, k=" + strconv.Itoa(k)
	}
	return "пост «Южный» " + strings.ToLower(c.Name) + " " + strconv.Itoa(k)
}

// sampleSheets are the six tables with n rows each, and what each sheet
// must read back as: the header, then the rows, Text upper case.
func sampleSheets(n int) ([]Sheet, map[string][][]string) {
	var sheets []Sheet
	want := make(map[string][][]string)
	for _, t := range Tables {
		var rows []Row
		var header []string
		for _, c := range t.Columns {
			header = append(header, c.Name)
		}
		shown := [][]string{header}
		for k := range n {
			r := make(Row, len(t.Columns))
			s := make([]string, len(t.Columns))
			for i, c := range t.Columns {
				r[i] = sampleValue(c, k)
				s[i] = r[i]
				if c.Kind == Text {
					s[i] = strings.ToUpper(r[i])
				}
			}
			rows = append(rows, r)
			shown = append(shown, s)
		}
		sheets = append(sheets, Sheet{Table: t, Rows: rowsOf(rows)})
		want[t.Sheet] = shown
	}
	return sheets, want
}

func rowsOf(rows []Row) func(emit func(Row) error) error {
	return func(emit func(Row) error) error {
		for _, r := range rows {
			if err := emit(r); err != nil {
				return err
			}
		}
		return nil
	}
}

var testOptions = WorkbookOptions{
	Title:   "Ежедневный отчет ИДК 10216100 за 27.11.2026",
	Created: time.Date(2026, 11, 28, 6, 30, 0, 0, time.FixedZone("MSK", 3*3600)),
}

func writeTestWorkbook(t *testing.T, sheets []Sheet) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := WriteWorkbook(&buf, sheets, testOptions); err != nil {
		t.Fatalf("WriteWorkbook: %v", err)
	}
	return buf.Bytes()
}

func openTestWorkbook(t *testing.T, b []byte) *excelize.File {
	t.Helper()
	f, err := excelize.OpenReader(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("excelize.OpenReader: %v", err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func sheetNames() []string {
	var names []string
	for _, t := range Tables {
		names = append(names, t.Sheet)
	}
	return names
}

func TestWorkbookRoundTrip(t *testing.T) {
	sheets, want := sampleSheets(4)
	b := writeTestWorkbook(t, sheets)

	got, err := ReadWorkbook(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("ReadWorkbook: %v", err)
	}
	if len(got) != len(want) {
		t.Errorf("read %d sheets, want %d", len(got), len(want))
	}
	for name, wrows := range want {
		grows, ok := got[name]
		if !ok {
			t.Errorf("sheet %q missing", name)
			continue
		}
		if len(grows) != len(wrows) {
			t.Errorf("sheet %q: %d rows, want %d", name, len(grows), len(wrows))
			continue
		}
		for i := range wrows {
			if len(grows[i]) != len(wrows[i]) {
				t.Errorf("sheet %q row %d: %d cells, want %d: %q", name, i+1, len(grows[i]), len(wrows[i]), grows[i])
				continue
			}
			for j := range wrows[i] {
				if grows[i][j] != wrows[i][j] {
					t.Errorf("sheet %q row %d column %d: %q, want %q", name, i+1, j+1, grows[i][j], wrows[i][j])
				}
			}
		}
	}
}

func TestWorkbookSheets(t *testing.T) {
	sheets, _ := sampleSheets(1)
	f := openTestWorkbook(t, writeTestWorkbook(t, sheets))
	// In order, and the new file's "Sheet1" is gone.
	if got, want := f.GetSheetList(), sheetNames(); !slices.Equal(got, want) {
		t.Errorf("sheets %q, want %q", got, want)
	}
	if got := f.GetActiveSheetIndex(); got != 0 {
		t.Errorf("active sheet %d, want 0", got)
	}
}

func TestWorkbookLayout(t *testing.T) {
	sheets, _ := sampleSheets(2)
	f := openTestWorkbook(t, writeTestWorkbook(t, sheets))
	for _, tb := range Tables {
		panes, err := f.GetPanes(tb.Sheet)
		if err != nil {
			t.Fatal(err)
		}
		if !panes.Freeze || panes.YSplit != 1 || panes.XSplit != 0 || panes.TopLeftCell != "A2" {
			t.Errorf("sheet %q: panes %+v, want the header row frozen", tb.Sheet, panes)
		}
		for i, c := range tb.Columns {
			col, _ := excelize.ColumnNumberToName(i + 1)
			w, err := f.GetColWidth(tb.Sheet, col)
			if err != nil {
				t.Fatal(err)
			}
			if w != c.Width {
				t.Errorf("sheet %q column %s: width %v, want %v", tb.Sheet, c.Name, w, c.Width)
			}
			hdr := col + "1"
			if !cellBold(t, f, tb.Sheet, hdr) {
				t.Errorf("sheet %q header %s (%s) is not bold", tb.Sheet, hdr, c.Name)
			}
			if cellBold(t, f, tb.Sheet, col+"2") {
				t.Errorf("sheet %q cell %s2 is bold", tb.Sheet, col)
			}
		}
	}
}

func cellBold(t *testing.T, f *excelize.File, sheet, cell string) bool {
	t.Helper()
	id, err := f.GetCellStyle(sheet, cell)
	if err != nil {
		t.Fatal(err)
	}
	st, err := f.GetStyle(id)
	if err != nil {
		t.Fatal(err)
	}
	return st.Font != nil && st.Font.Bold
}

func cellNumFmt(t *testing.T, f *excelize.File, sheet, cell string) int {
	t.Helper()
	id, err := f.GetCellStyle(sheet, cell)
	if err != nil {
		t.Fatal(err)
	}
	st, err := f.GetStyle(id)
	if err != nil {
		t.Fatal(err)
	}
	return st.NumFmt
}

// TestWorkbookCellTypes checks what a spreadsheet will take each value
// for: Number values are numeric cells, everything else strings, and an
// empty value no cell at all.
func TestWorkbookCellTypes(t *testing.T) {
	sheets, _ := sampleSheets(3)
	f := openTestWorkbook(t, writeTestWorkbook(t, sheets))
	for _, tb := range Tables {
		for k := range 3 {
			row := k + 2
			for i, c := range tb.Columns {
				ref, _ := excelize.CoordinatesToCellName(i+1, row)
				typ, err := f.GetCellType(tb.Sheet, ref)
				if err != nil {
					t.Fatal(err)
				}
				raw, err := f.GetCellValue(tb.Sheet, ref, excelize.Options{RawCellValue: true})
				if err != nil {
					t.Fatal(err)
				}
				in := sampleValue(c, k)
				// Numbers show all their digits ("0"); the rest is Text ("@"),
				// so that Calc or Excel keeps what is typed there as text.
				wantFmt := 49
				if c.Kind == Number {
					wantFmt = 1
				}
				if in != "" {
					if got := cellNumFmt(t, f, tb.Sheet, ref); got != wantFmt {
						t.Errorf("sheet %q %s (%s): number format %d, want %d", tb.Sheet, ref, c.Name, got, wantFmt)
					}
				}
				switch {
				case in == "":
					if typ != excelize.CellTypeUnset || raw != "" {
						t.Errorf("sheet %q %s (%s): type %v value %q, want no cell", tb.Sheet, ref, c.Name, typ, raw)
					}
				case c.Kind == Number:
					// A numeric cell has no type attribute, or "n".
					if typ != excelize.CellTypeUnset && typ != excelize.CellTypeNumber || raw != in {
						t.Errorf("sheet %q %s (%s): type %v value %q, want number %s", tb.Sheet, ref, c.Name, typ, raw, in)
					}
				default:
					want := in
					if c.Kind == Text {
						want = strings.ToUpper(in)
					}
					if typ != excelize.CellTypeInlineString && typ != excelize.CellTypeSharedString || raw != want {
						t.Errorf("sheet %q %s (%s): type %v value %q, want string %q", tb.Sheet, ref, c.Name, typ, raw, want)
					}
				}
			}
		}
	}
}

// TestWorkbookTextStaysText picks out the values a spreadsheet is most
// tempted to convert.
func TestWorkbookTextStaysText(t *testing.T) {
	row := make(Row, len(Table1.Columns))
	set := func(name, v string) { row[Table1.Field(name)] = v }
	set("KOD_TEH", "01")
	set("LNP_OPER", "056")
	set("DATE_SYS", "27.11.2026")
	set("VES_TP", "6500,45")
	set("FIO_OPER", "иванов иван иванович")
	set("NAIM_TOV", "Запчасти, mixed Case")
	set("TIME_AN_SNIM", "125")
	t4 := make(Row, len(Table4.Columns))
	t4[Table4.Field("TIME_1")] = "1,05"
	b := writeTestWorkbook(t, []Sheet{
		{Table: &Table1, Rows: rowsOf([]Row{row})},
		{Table: &Table4, Rows: rowsOf([]Row{t4})},
	})
	got, err := ReadWorkbook(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	f := openTestWorkbook(t, b)
	for _, c := range []struct {
		sheet *Table
		field string
		want  string
		typ   excelize.CellType
	}{
		{&Table1, "KOD_TEH", "01", excelize.CellTypeInlineString},
		{&Table1, "LNP_OPER", "056", excelize.CellTypeInlineString},
		{&Table1, "DATE_SYS", "27.11.2026", excelize.CellTypeInlineString},
		{&Table1, "VES_TP", "6500,45", excelize.CellTypeInlineString},
		{&Table1, "FIO_OPER", "ИВАНОВ ИВАН ИВАНОВИЧ", excelize.CellTypeInlineString},
		{&Table1, "NAIM_TOV", "ЗАПЧАСТИ, MIXED CASE", excelize.CellTypeInlineString},
		{&Table1, "TIME_AN_SNIM", "125", excelize.CellTypeUnset},
		{&Table4, "TIME_1", "1,05", excelize.CellTypeInlineString},
	} {
		i := c.sheet.Field(c.field)
		if v := got[c.sheet.Sheet][1][i]; v != c.want {
			t.Errorf("%s %s: read %q, want %q", c.sheet.Sheet, c.field, v, c.want)
		}
		ref, _ := excelize.CoordinatesToCellName(i+1, 2)
		if typ, _ := f.GetCellType(c.sheet.Sheet, ref); typ != c.typ {
			t.Errorf("%s %s: cell type %v, want %v", c.sheet.Sheet, c.field, typ, c.typ)
		}
	}
}

func TestWorkbookDeterministic(t *testing.T) {
	sheets, _ := sampleSheets(20)
	first := writeTestWorkbook(t, sheets)
	// excelize writes its streamed sheets in map order: several runs give
	// that order every chance to differ.
	for range 5 {
		if b := writeTestWorkbook(t, sheets); !bytes.Equal(b, first) {
			t.Fatalf("two writes of the same workbook differ (%d and %d bytes)", len(first), len(b))
		}
	}

	zr, err := zip.NewReader(bytes.NewReader(first), int64(len(first)))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, zf := range zr.File {
		names = append(names, zf.Name)
		// No time at all: MS-DOS date and time 0, no extended timestamp.
		if zf.ModifiedDate != 0 || zf.ModifiedTime != 0 || len(zf.Extra) != 0 {
			t.Errorf("zip entry %s has a time: %v", zf.Name, zf.Modified)
		}
	}
	if !slices.IsSorted(names) {
		t.Errorf("zip entries not in name order: %q", names)
	}
	core := readZipEntry(t, zr, "docProps/core.xml")
	for _, want := range []string{
		"<dcterms:created xsi:type=\"dcterms:W3CDTF\">2026-11-28T03:30:00Z</dcterms:created>",
		"<dcterms:modified xsi:type=\"dcterms:W3CDTF\">2026-11-28T03:30:00Z</dcterms:modified>",
		"<dc:title>" + testOptions.Title + "</dc:title>",
	} {
		if !strings.Contains(core, want) {
			t.Errorf("docProps/core.xml lacks %s:\n%s", want, core)
		}
	}

	// Another time gives other bytes: the time is really written.
	var other bytes.Buffer
	opt := testOptions
	opt.Created = opt.Created.Add(time.Second)
	if err := WriteWorkbook(&other, sheets, opt); err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(other.Bytes(), first) {
		t.Error("a different Created time gave the same bytes")
	}
}

func readZipEntry(t *testing.T, zr *zip.Reader, name string) string {
	t.Helper()
	rc, err := zr.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestWorkbookBadNumber(t *testing.T) {
	good := make(Row, len(Table1.Columns))
	for _, bad := range []string{"12x", "007", "+5", "-0", "1,5", " 5", "-", "99999999999999999999"} {
		row := slices.Clone(good)
		row[Table1.Field("TIME_AN_SNIM")] = bad
		sheets := []Sheet{
			{Table: &Table5},
			{Table: &Table1, Rows: rowsOf([]Row{good, row, good})},
		}
		err := WriteWorkbook(io.Discard, sheets, testOptions)
		if err == nil {
			t.Errorf("TIME_AN_SNIM %q: no error", bad)
			continue
		}
		// The second data row is the sheet's row 3; TIME_AN_SNIM is H.
		for _, want := range []string{`"Таблица 1"`, "row 3", "TIME_AN_SNIM", "H3", strconv.Quote(bad)} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("TIME_AN_SNIM %q: error %q does not name %s", bad, err, want)
			}
		}
	}
}

func TestWorkbookGoodNumbers(t *testing.T) {
	for _, v := range []string{"0", "-5", "7", "10216100", "123456789012345678"} {
		row := make(Row, len(Table5.Columns))
		row[Table5.Field("KOL_VO_NAR")] = v
		b := writeTestWorkbook(t, []Sheet{{Table: &Table5, Rows: rowsOf([]Row{row})}})
		got, err := ReadWorkbook(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		f := openTestWorkbook(t, b)
		ref, _ := excelize.CoordinatesToCellName(Table5.Field("KOL_VO_NAR")+1, 2)
		raw, _ := f.GetCellValue(Table5.Sheet, ref, excelize.Options{RawCellValue: true})
		if raw != v {
			t.Errorf("%s: stored %q", v, raw)
		}
		// A spreadsheet shows long integers in exponent form; the value
		// itself is checked above.
		if len(v) <= 11 && got[Table5.Sheet][1][Table5.Field("KOL_VO_NAR")] != v {
			t.Errorf("%s: read %q", v, got[Table5.Sheet][1][Table5.Field("KOL_VO_NAR")])
		}
	}
}

func TestWorkbookErrors(t *testing.T) {
	short := Sheet{Table: &Table6, Rows: rowsOf([]Row{make(Row, len(Table6.Columns)-1)})}
	for _, c := range []struct {
		name   string
		sheets []Sheet
		want   string
	}{
		{"no sheets", nil, "no sheets"},
		{"no table", []Sheet{{}}, "no table"},
		{"twice", []Sheet{{Table: &Table5}, {Table: &Table5}}, "twice"},
		{"short row", []Sheet{short}, `"Таблица 6" row 2: 7 values for 8 columns`},
	} {
		err := WriteWorkbook(io.Discard, c.sheets, testOptions)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one with %q", c.name, err, c.want)
		}
	}

	// The rows' own error comes back, wrapped.
	stop := io.ErrUnexpectedEOF
	err := WriteWorkbook(io.Discard, []Sheet{{Table: &Table5, Rows: func(func(Row) error) error { return stop }}}, testOptions)
	if !errors.Is(err, stop) {
		t.Errorf("rows error: got %v, want %v", err, stop)
	}
}

func TestWorkbookEmptySheet(t *testing.T) {
	b := writeTestWorkbook(t, []Sheet{{Table: &Table6}})
	got, err := ReadWorkbook(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][][]string{Table6.Sheet: {{"KOD_TO", "DATE_SYS_V", "NUM_SNIM", "OPISANIE", "REZ", "DATE_SYS_R", "FIO", "LNP"}}}
	if len(got) != 1 || !slices.Equal(got[Table6.Sheet][0], want[Table6.Sheet][0]) || len(got[Table6.Sheet]) != 1 {
		t.Errorf("read %q, want %q", got, want)
	}
}

func TestReadWorkbookNotXLSX(t *testing.T) {
	if _, err := ReadWorkbook(strings.NewReader("KOD_TO;NAIM_TO\n")); err == nil {
		t.Error("ReadWorkbook of a CSV: no error")
	}
}

func TestUpper(t *testing.T) {
	for _, s := range []string{
		"", "ABC 123", "abc", "ПОСТ «ЮЖНЫЙ» №5", "пост", "ПОСТ южный", "ЁЛКА", "ёлка", "ЕЛКА Ё",
		"ԱՐԱ", "ẞ", "ß", "straße", "ВАН ЛИ ЧЖАН", "Ѐ", "ѐ", "İ", "\xff\xd0", "\xd0",
	} {
		if got, want := upper(s), strings.ToUpper(s); got != want {
			t.Errorf("upper(%q) = %q, want %q", s, got, want)
		}
	}
}

// Text that XML must escape, and characters it cannot carry, come back as
// a spreadsheet shows them.
func TestWorkbookEscapes(t *testing.T) {
	row := make(Row, len(Table6.Columns))
	row[Table6.Field("KOD_TO")] = "10216100"
	row[Table6.Field("OPISANIE")] = "ООО «А&Б» <ЗАО> \"КАВЫЧКИ\"\x01\x1f КОНЕЦ"
	row[Table6.Field("FIO")] = " ИВАНОВ "
	var buf bytes.Buffer
	if err := WriteWorkbook(&buf, []Sheet{{Table: &Table6, Rows: rowsOf([]Row{row})}}, testOptions); err != nil {
		t.Fatal(err)
	}
	wb, err := ReadWorkbook(&buf)
	if err != nil {
		t.Fatal(err)
	}
	got := wb[Table6.Sheet][1]
	if want := "ООО «А&Б» <ЗАО> \"КАВЫЧКИ\" КОНЕЦ"; got[Table6.Field("OPISANIE")] != want {
		t.Errorf("OPISANIE = %q, want %q", got[Table6.Field("OPISANIE")], want)
	}
	if got[Table6.Field("FIO")] != " ИВАНОВ " {
		t.Errorf("FIO = %q: spaces at the ends lost", got[Table6.Field("FIO")])
	}
}
