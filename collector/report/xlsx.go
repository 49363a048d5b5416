package report

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"math"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/xuri/excelize/v2"
)

// WorkbookOptions are the document properties of a workbook.
type WorkbookOptions struct {
	Title   string    // document title, e.g. "Ежедневный отчет ИДК 10216100 за 27.11.2026"
	Created time.Time // written as both created and modified time, so the same input gives the same bytes
}

// textFormat is the built-in number format "@" (Text). The columns that
// hold text carry it so that a spreadsheet keeps what an officer types
// there as text too, instead of turning "27.11.2026" into a date.
const textFormat = 49

// WriteWorkbook writes sheets as one .xlsx to w: one worksheet per Sheet,
// in order, named Sheet.Table.Sheet.
//
// Row 1 of each worksheet holds the table's column names, bold and frozen.
// Number values are written as integer cells ("" as no cell at all); a
// Number value that is not an integer is a programming error, reported
// naming the sheet, row and column. Every other kind is written as a
// string cell exactly as given, Text upper case, so that no spreadsheet
// reads a date, a duration or a decimal comma as a number of its own.
//
// The same sheets and options give the same bytes.
func WriteWorkbook(w io.Writer, sheets []Sheet, opt WorkbookOptions) (err error) {
	if len(sheets) == 0 {
		return errors.New("report: workbook with no sheets")
	}
	f := excelize.NewFile()
	// Close removes the stream writers' temporary files.
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("report: workbook: %w", cerr)
		}
	}()
	// excelize writes the streamed worksheets in the order of a map, and
	// so differently from run to run; orderedZip puts the parts in name
	// order. It writes to w itself, not to the buffer excelize hands it,
	// in which excelize would hold the whole archive once more.
	z := newOrderedZip(w)
	f.SetZipWriter(func(io.Writer) excelize.ZipWriter { return z })

	props := &excelize.DocProperties{Title: opt.Title}
	if !opt.Created.IsZero() {
		// Without a time excelize keeps its template's fixed one.
		props.Created = opt.Created.UTC().Format(time.RFC3339)
		props.Modified = props.Created
	}
	if err := f.SetDocProps(props); err != nil {
		return fmt.Errorf("report: workbook properties: %w", err)
	}
	st, err := newStyles(f)
	if err != nil {
		return err
	}

	// The new file's "Sheet1" becomes the first sheet, so none is left over.
	first := f.GetSheetName(0)
	seen := make(map[string]bool, len(sheets))
	for i, s := range sheets {
		if s.Table == nil {
			return fmt.Errorf("report: sheet %d has no table", i+1)
		}
		name := s.Table.Sheet
		if seen[name] {
			return fmt.Errorf("report: sheet %q appears twice", name)
		}
		seen[name] = true
		if i == 0 {
			err = f.SetSheetName(first, name)
		} else {
			_, err = f.NewSheet(name)
		}
		if err != nil {
			return fmt.Errorf("report: sheet %q: %w", name, err)
		}
	}
	f.SetActiveSheet(0)

	for _, s := range sheets {
		colStyles, err := layoutSheet(f, s.Table, st)
		if err != nil {
			return err
		}
		part, err := sheetPart(f, s.Table.Sheet)
		if err != nil {
			return err
		}
		z.rows[part] = newSheetRows(s, colStyles)
	}
	rest, err := f.WriteToBuffer()
	if err != nil {
		return fmt.Errorf("report: workbook: %w", err)
	}
	// excelize adds to its buffer only for a password or a part above
	// 4 GiB, which orderedZip deals with itself.
	if rest.Len() != 0 {
		return fmt.Errorf("report: workbook: excelize wrote %d bytes outside the archive", rest.Len())
	}
	return nil
}

// styles are the cell style IDs of a workbook.
type styles struct {
	header int // bold column names
	number int // integers, all digits
	text   int // the Text format, for every column written as a string
}

func newStyles(f *excelize.File) (styles, error) {
	var st styles
	var err error
	if st.header, err = f.NewStyle(&excelize.Style{Font: &excelize.Font{Bold: true}, NumFmt: textFormat}); err != nil {
		return st, fmt.Errorf("report: header style: %w", err)
	}
	// Format "0" rather than General, under which a spreadsheet shows a
	// code of twelve digits or more in exponent form.
	if st.number, err = f.NewStyle(&excelize.Style{NumFmt: 1}); err != nil {
		return st, fmt.Errorf("report: number style: %w", err)
	}
	if st.text, err = f.NewStyle(&excelize.Style{NumFmt: textFormat}); err != nil {
		return st, fmt.Errorf("report: text style: %w", err)
	}
	return st, nil
}

// layoutSheet sets one sheet's column widths and styles, its header row
// and its frozen pane in excelize's model of the workbook, and returns
// the style of each column's cells.
func layoutSheet(f *excelize.File, t *Table, st styles) ([]int, error) {
	colStyles := make([]int, len(t.Columns))
	for i, c := range t.Columns {
		name, err := excelize.ColumnNumberToName(i + 1)
		if err != nil {
			return nil, err
		}
		if err := f.SetColWidth(t.Sheet, name, name, c.Width); err != nil {
			return nil, fmt.Errorf("report: sheet %q column %s: width: %w", t.Sheet, c.Name, err)
		}
		colStyles[i] = st.text
		if c.Kind == Number {
			colStyles[i] = st.number
		}
		// The column has the style too, for cells an officer adds by hand.
		if err := f.SetColStyle(t.Sheet, name, colStyles[i]); err != nil {
			return nil, fmt.Errorf("report: sheet %q column %s: style: %w", t.Sheet, c.Name, err)
		}
		if err := f.SetCellStr(t.Sheet, name+"1", c.Name); err != nil {
			return nil, fmt.Errorf("report: sheet %q header: %w", t.Sheet, err)
		}
	}
	last, err := excelize.ColumnNumberToName(len(t.Columns))
	if err != nil {
		return nil, err
	}
	if err := f.SetCellStyle(t.Sheet, "A1", last+"1", st.header); err != nil {
		return nil, fmt.Errorf("report: sheet %q header: %w", t.Sheet, err)
	}
	err = f.SetPanes(t.Sheet, &excelize.Panes{
		Freeze:      true,
		YSplit:      1,
		TopLeftCell: "A2",
		ActivePane:  "bottomLeft",
		Selection:   []excelize.Selection{{SQRef: "A2", ActiveCell: "A2", Pane: "bottomLeft"}},
	})
	if err != nil {
		return nil, fmt.Errorf("report: sheet %q: panes: %w", t.Sheet, err)
	}
	return colStyles, nil
}

// sheetRows writes the data rows of a sheet as SpreadsheetML, from row 2
// on, into the sheet's part while the archive is written. excelize's
// StreamWriter does the same job, but at about 1 µs a cell: a month of a
// region's table 1 (17 million cells) took it 19 s on the development
// machine, twice the 10 s the report may take (BenchmarkMonthReport).
type sheetRows struct {
	sheet     Sheet
	colStyles []int
	cols      [][]byte // the column letters: "A", "B", ..., "AM"
	styles    [][]byte // ` s="N"` of each column
}

func newSheetRows(s Sheet, colStyles []int) *sheetRows {
	g := &sheetRows{sheet: s, colStyles: colStyles}
	for i := range s.Table.Columns {
		name, _ := excelize.ColumnNumberToName(i + 1) // i+1 is a valid column
		g.cols = append(g.cols, []byte(name))
		g.styles = append(g.styles, []byte(` s="`+strconv.Itoa(colStyles[i])+`"`))
	}
	return g
}

// write streams the rows to w, a row at a time.
func (g *sheetRows) write(w io.Writer) error {
	t := g.sheet.Table
	if g.sheet.Rows == nil {
		return nil
	}
	buf := make([]byte, 0, 8<<10)
	row := 1
	return g.sheet.Rows(func(r Row) error {
		row++
		if len(r) != len(t.Columns) {
			return fmt.Errorf("report: sheet %q row %d: %d values for %d columns", t.Sheet, row, len(r), len(t.Columns))
		}
		buf = append(buf[:0], `<row r="`...)
		buf = strconv.AppendInt(buf, int64(row), 10)
		buf = append(buf, `">`...)
		for i, v := range r {
			if v == "" {
				continue // no cell at all
			}
			buf = append(buf, `<c r="`...)
			buf = append(buf, g.cols[i]...)
			buf = strconv.AppendInt(buf, int64(row), 10)
			buf = append(buf, '"')
			buf = append(buf, g.styles[i]...)
			if t.Columns[i].Kind == Number {
				if _, ok := parseInt(v); !ok {
					return fmt.Errorf("report: sheet %q row %d column %s (cell %s): value %q is not an integer", t.Sheet, row, t.Columns[i].Name, cellRef(i+1, row), v)
				}
				buf = append(buf, `><v>`...)
				buf = append(buf, v...)
				buf = append(buf, `</v></c>`...)
				continue
			}
			if t.Columns[i].Kind == Text {
				v = upper(v)
			}
			if v[0] == ' ' || v[len(v)-1] == ' ' {
				buf = append(buf, ` t="inlineStr"><is><t xml:space="preserve">`...)
			} else {
				buf = append(buf, ` t="inlineStr"><is><t>`...)
			}
			buf = appendEscaped(buf, v)
			buf = append(buf, `</t></is></c>`...)
		}
		buf = append(buf, `</row>`...)
		_, err := w.Write(buf)
		return err
	})
}

// maxCellChars is the most a spreadsheet cell holds (Excel's limit, in
// UTF-16 units; counted here in runes, a little stricter for the rare
// characters outside the Basic Multilingual Plane).
const maxCellChars = 32767

// appendEscaped appends v as XML character data: &, < and > escaped, and
// the characters XML 1.0 cannot carry (control characters other than tab,
// line feed and carriage return, and broken UTF-8) left out.
func appendEscaped(buf []byte, v string) []byte {
	n := 0
	for i := 0; i < len(v); {
		c := v[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '&':
				buf = append(buf, "&amp;"...)
			case c == '<':
				buf = append(buf, "&lt;"...)
			case c == '>':
				buf = append(buf, "&gt;"...)
			case c < 0x20 && c != '\t' && c != '\n' && c != '\r':
			default:
				buf = append(buf, c)
			}
			i++
		} else {
			r, size := utf8.DecodeRuneInString(v[i:])
			if r != utf8.RuneError && r != 0xFFFE && r != 0xFFFF {
				buf = append(buf, v[i:i+size]...)
			}
			i += size
		}
		if n++; n == maxCellChars {
			break
		}
	}
	return buf
}

// sheetPart is the name of the archive part that holds sheet name's XML.
// excelize numbers a sheet's part after its sheet ID.
func sheetPart(f *excelize.File, name string) (string, error) {
	for id, n := range f.GetSheetMap() {
		if n == name {
			return "xl/worksheets/sheet" + strconv.Itoa(id) + ".xml", nil
		}
	}
	return "", fmt.Errorf("report: workbook: no sheet %q", name)
}

// upper is strings.ToUpper(s), quicker for what the report's text mostly
// is: upper case already, ASCII and Cyrillic.
func upper(s string) string {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c < utf8.RuneSelf:
			if 'a' <= c && c <= 'z' {
				return strings.ToUpper(s)
			}
		case c == 0xD0 && i+1 < len(s) && 0x80 <= s[i+1] && s[i+1] <= 0xAF:
			i++ // U+0400..U+042F, Cyrillic capitals
		default:
			// Anything else goes by the Unicode tables.
			return strings.ToUpper(s)
		}
	}
	return s
}

// cellRef is the reference of the cell at column col, row row, for messages.
func cellRef(col, row int) string {
	ref, err := excelize.CoordinatesToCellName(col, row)
	if err != nil {
		return "?"
	}
	return ref
}

// parseInt reads s as an integer written the plain way: an optional minus
// and digits, without leading zeros. Anything else ("+5", "007", "1,5") is
// refused, since writing it as a number would change what it shows.
func parseInt(s string) (int64, bool) {
	d := strings.TrimPrefix(s, "-")
	if d == "" || len(d) > 18 || (d[0] == '0' && (len(d) > 1 || len(s) > 1)) {
		return 0, false
	}
	var n int64
	for i := 0; i < len(d); i++ {
		c := d[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	if len(d) < len(s) {
		n = -n
	}
	return n, true
}

// orderedZip is the excelize.ZipWriter of WriteWorkbook. It writes the
// parts in name order, so that the archive does not depend on the order
// excelize chose, and it compresses them on every CPU: excelize hands a
// worksheet over only when it writes the workbook, and compressing a
// month's table 1 (a gigabyte of XML) on one CPU alone takes longer than
// making it.
//
// Each part is cut into chunks of zipChunkSize bytes, compressed apart as
// deflate blocks that end on a byte boundary (a sync flush) and joined;
// the last ends the deflate stream. The cuts depend on the bytes alone,
// so the same part gives the same bytes. The parts are held compressed
// until Close, which writes the archive straight to the workbook's writer
// (excelize's own writer holds the whole archive in memory first).
//
// The data rows of each sheet in rows are streamed into its part (see
// sheetRows) where excelize's XML of the sheet ends its sheetData.
type orderedZip struct {
	w       io.Writer
	parts   []*zipPart
	current *zipPart
	slots   chan struct{}         // a token for each chunk being compressed
	rows    map[string]*sheetRows // by part name
}

const (
	zipChunkSize = 1 << 20
	// zipLevel trades size for speed: for 100,000 rows of table 1,
	// BestSpeed took 3.1 s and gave 27 MB, the default level 4.9 s and
	// 18 MB.
	zipLevel = flate.BestSpeed
)

var (
	scratchPool  = sync.Pool{New: func() any { return new(bytes.Buffer) }}
	zipChunkPool = sync.Pool{New: func() any { b := make([]byte, 0, zipChunkSize); return &b }}
	flateWriters = sync.Pool{New: func() any {
		fw, err := flate.NewWriter(io.Discard, zipLevel)
		if err != nil {
			panic(err) // only for a bad level
		}
		return fw
	}}
)

type zipPart struct {
	z      *orderedZip
	name   string
	hold   *bytes.Buffer // a sheet's XML from excelize, held to splice its rows in
	crc    uint32
	size   uint64
	in     *[]byte // the chunk being filled
	chunks []*zipChunk
}

type zipChunk struct {
	out  []byte // deflated
	done chan struct{}
}

func newOrderedZip(w io.Writer) *orderedZip {
	return &orderedZip{w: w, slots: make(chan struct{}, 2*runtime.GOMAXPROCS(0)), rows: map[string]*sheetRows{}}
}

// Create starts the part name; it ends the one before.
func (z *orderedZip) Create(name string) (io.Writer, error) {
	if err := z.end(); err != nil {
		return nil, err
	}
	p := &zipPart{z: z, name: name, in: zipChunkPool.Get().(*[]byte)}
	if _, ok := z.rows[name]; ok {
		p.hold = new(bytes.Buffer)
	}
	z.current = p
	z.parts = append(z.parts, p)
	return p, nil
}

// AddFS is not used by excelize's writing of a workbook.
func (z *orderedZip) AddFS(fs.FS) error {
	return errors.New("report: workbook zip: AddFS not supported")
}

func (p *zipPart) Write(b []byte) (int, error) {
	if p.hold != nil {
		return p.hold.Write(b)
	}
	return p.add(b)
}

// add puts b into the part's archive entry.
func (p *zipPart) add(b []byte) (int, error) {
	n := len(b)
	p.crc = crc32.Update(p.crc, crc32.IEEETable, b)
	p.size += uint64(n)
	for len(b) > 0 {
		in := *p.in
		k := min(len(b), zipChunkSize-len(in))
		*p.in = append(in, b[:k]...)
		b = b[k:]
		if len(*p.in) == zipChunkSize {
			p.compress(false)
			p.in = zipChunkPool.Get().(*[]byte)
		}
	}
	return n, nil
}

// compress hands the filled chunk to a goroutine, waiting while every
// slot is taken so that the chunks in memory stay few.
func (p *zipPart) compress(last bool) {
	c := &zipChunk{done: make(chan struct{})}
	p.chunks = append(p.chunks, c)
	in := p.in
	p.in = nil
	p.z.slots <- struct{}{}
	go func() {
		defer func() { <-p.z.slots; close(c.done) }()
		// Compressed into a buffer used again and again, then copied to
		// a slice of its size: the chunks are held until Close.
		scratch := scratchPool.Get().(*bytes.Buffer)
		scratch.Reset()
		fw := flateWriters.Get().(*flate.Writer)
		fw.Reset(scratch)
		// Writes to a bytes.Buffer do not fail.
		_, _ = fw.Write(*in)
		if last {
			_ = fw.Close()
		} else {
			_ = fw.Flush()
		}
		flateWriters.Put(fw)
		c.out = bytes.Clone(scratch.Bytes())
		scratchPool.Put(scratch)
		*in = (*in)[:0]
		zipChunkPool.Put(in)
	}()
}

func (z *orderedZip) end() error {
	p := z.current
	if p == nil {
		return nil
	}
	z.current = nil
	if p.hold != nil {
		if err := p.splice(z.rows[p.name]); err != nil {
			return err
		}
	}
	p.compress(true)
	return nil
}

// splice writes the sheet's XML as excelize made it, with the rows that
// g streams where its sheetData ends. The sheet's dimension, which
// excelize gave for the header alone, is left out: it is optional, and a
// reader works it out from the rows.
func (p *zipPart) splice(g *sheetRows) error {
	xml := p.hold.Bytes()
	p.hold = nil
	xml = dimension.ReplaceAll(xml, nil)
	at := bytes.LastIndex(xml, []byte("</sheetData>"))
	if at < 0 {
		return fmt.Errorf("report: workbook: sheet %q: no sheetData in excelize's XML", g.sheet.Table.Sheet)
	}
	p.add(xml[:at])
	if err := g.write(writerFunc(p.add)); err != nil {
		return err
	}
	p.add(xml[at:])
	return nil
}

var dimension = regexp.MustCompile(`<dimension ref="[^"]*"\s*/>`)

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(b []byte) (int, error) { return f(b) }

// Close writes the archive.
func (z *orderedZip) Close() error {
	if err := z.end(); err != nil {
		return err
	}
	slices.SortFunc(z.parts, func(a, b *zipPart) int { return strings.Compare(a.name, b.name) })
	zw := zip.NewWriter(z.w)
	for i, p := range z.parts {
		if i > 0 && p.name == z.parts[i-1].name {
			return fmt.Errorf("report: workbook zip: part %s written twice", p.name)
		}
		var compressed uint64
		for _, c := range p.chunks {
			<-c.done
			compressed += uint64(len(c.out))
		}
		fh := &zip.FileHeader{
			Name:               p.name,
			Method:             zip.Deflate,
			CreatorVersion:     20, // as zip.Writer.Create writes it: version 2.0, MS-DOS
			ReaderVersion:      20,
			CRC32:              p.crc,
			CompressedSize64:   compressed,
			UncompressedSize64: p.size,
		}
		if max(compressed, p.size) >= math.MaxUint32 {
			// ZIP64, in the local header too (which zip.Writer leaves
			// at 2.0, and Excel refuses).
			fh.ReaderVersion = 45
		}
		pw, err := zw.CreateRaw(fh)
		if err != nil {
			return err
		}
		for _, c := range p.chunks {
			if _, err := pw.Write(c.out); err != nil {
				return err
			}
			// Each chunk's memory goes as soon as it is in the archive.
			c.out = nil
		}
	}
	return zw.Close()
}

// ReadWorkbook reads a workbook back: for each worksheet name, its rows of
// cell texts (header row first), as a spreadsheet shows them. For tests
// and for checking a published file.
//
// Each row has at least as many cells as the header row: the empty cells
// at a row's end, which the file does not hold, are read as "".
func ReadWorkbook(r io.Reader) (map[string][][]string, error) {
	f, err := excelize.OpenReader(r)
	if err != nil {
		return nil, fmt.Errorf("report: read workbook: %w", err)
	}
	defer f.Close()
	out := make(map[string][][]string)
	for _, name := range f.GetSheetList() {
		rows, err := f.GetRows(name)
		if err != nil {
			return nil, fmt.Errorf("report: read workbook: sheet %q: %w", name, err)
		}
		if len(rows) > 0 {
			width := len(rows[0])
			for i, row := range rows {
				if len(row) < width {
					rows[i] = append(row, make([]string, width-len(row))...)
				}
			}
		}
		out[name] = rows
	}
	return out, nil
}
