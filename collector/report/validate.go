package report

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"idk/protocol"
	"idk/protocol/codes"
)

// EntryError is one refused value of an officer's entry. It names the
// table, the row and the field, so that the officer can find the cell.
type EntryError struct {
	Table int
	Row   int    // 1-based position in the request's rows; 0 when the value is not from a list of rows
	Where string // what names the value when Row is 0: "entry T2-000001", "NUM_IDK 850591, 27.11.2026"
	Field string // the field, or several joined by ", " (the missing ones)
	Msg   string
}

func (e *EntryError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "table %d", e.Table)
	if e.Row > 0 {
		fmt.Fprintf(&b, ", row %d", e.Row)
	}
	if e.Where != "" {
		b.WriteString(", " + e.Where)
	}
	if strings.Contains(e.Field, ", ") {
		b.WriteString(", fields ")
	} else {
		b.WriteString(", field ")
	}
	b.WriteString(e.Field + ": " + e.Msg)
	return b.String()
}

// EntryErrors are every refused value of one request: an officer with
// twenty rows to fix should learn of all of them at once, not one per
// attempt.
type EntryErrors []*EntryError

// shownEntryErrors bounds the message; the list keeps them all.
const shownEntryErrors = 10

// Is makes an EntryError match ErrEntryRefused.
func (e *EntryError) Is(target error) bool { return target == ErrEntryRefused }

// Is makes EntryErrors match ErrEntryRefused.
func (es EntryErrors) Is(target error) bool { return target == ErrEntryRefused }

func (es EntryErrors) Error() string {
	msgs := make([]string, 0, min(len(es), shownEntryErrors)+1)
	for i, e := range es {
		if i == shownEntryErrors {
			msgs = append(msgs, fmt.Sprintf("and %d more", len(es)-i))
			break
		}
		msgs = append(msgs, e.Error())
	}
	return strings.Join(msgs, "; ")
}

// rowCheck collects the problems of one row.
type rowCheck struct {
	table int
	row   int
	where string
	errs  EntryErrors
	bad   map[string]bool // fields already refused
}

// missing reports whether the row has no value for field n and none was
// refused: a refused value is reported once, not again as missing.
func (c *rowCheck) missing(f map[string]string, n string) bool { return f[n] == "" && !c.bad[n] }

func (c *rowCheck) fail(field, format string, args ...any) {
	if c.bad == nil {
		c.bad = map[string]bool{}
	}
	for _, n := range strings.Split(field, ", ") {
		c.bad[n] = true
	}
	c.errs = append(c.errs, &EntryError{Table: c.table, Row: c.row, Where: c.where, Field: field, Msg: fmt.Sprintf(format, args...)})
}

// maxValueRunes bounds one value: the longest regulation field (OPISANIE,
// a sentence) fits many times over, and a pasted document does not.
const maxValueRunes = 2000

var (
	digitsRE  = regexp.MustCompile(`^[0-9]+$`)
	decimalRE = regexp.MustCompile(`^[0-9]+([.,][0-9]+)?$`)
)

// entryTable is the table of officers' entries numbered n: 2, 5 or 6.
func entryTable(n int) (*Table, error) {
	switch n {
	case 2:
		return &Table2, nil
	case 5:
		return &Table5, nil
	case 6:
		return &Table6, nil
	}
	return nil, fmt.Errorf("table %d: officers enter tables 2, 5 and 6 only", n)
}

// entryDateField is the field that dates a row of table n: what Rows
// selects and orders by.
func entryDateField(n int) string {
	if n == 6 {
		return "DATE_SYS_V"
	}
	return "DATE_SYS"
}

// checkFields checks each value of in against its column and returns the
// values as they are stored: trimmed, decimals with a comma. An empty
// value is no value: it is left out.
func checkFields(t *Table, in map[string]string, c *rowCheck) map[string]string {
	names := make([]string, 0, len(in))
	for name := range in {
		names = append(names, name)
	}
	// In column order, unknown names last, so that the errors read in the
	// order of the sheet.
	slices.SortFunc(names, func(a, b string) int {
		ia, ib := t.Index(a), t.Index(b)
		if ia < 0 {
			ia = len(t.Columns)
		}
		if ib < 0 {
			ib = len(t.Columns)
		}
		if ia != ib {
			return ia - ib
		}
		return strings.Compare(a, b)
	})
	out := make(map[string]string, len(in))
	for _, name := range names {
		i := t.Index(name)
		if i < 0 {
			if up := strings.ToUpper(strings.TrimSpace(name)); t.Index(up) >= 0 {
				c.fail(name, "not a field of table %d: field names are upper case (%s)", t.Number, up)
			} else {
				c.fail(name, "not a field of table %d", t.Number)
			}
			continue
		}
		// Surrounding blanks are what copying from a spreadsheet leaves; the
		// regulation's values never start or end with one.
		v := strings.TrimSpace(in[name])
		if v == "" {
			continue
		}
		if v, ok := checkValue(t.Number, t.Columns[i], v, c); ok {
			out[name] = v
		}
	}
	return out
}

// checkValue checks one non-empty value by its column's kind and, for the
// fields that hold codes or numbers of a fixed form, by its field.
func checkValue(table int, col Column, v string, c *rowCheck) (string, bool) {
	name := col.Name
	if !utf8.ValidString(v) {
		c.fail(name, "not valid UTF-8")
		return "", false
	}
	if n := utf8.RuneCountInString(v); n > maxValueRunes {
		c.fail(name, "%d characters: at most %d", n, maxValueRunes)
		return "", false
	}
	if i := strings.IndexFunc(v, unicode.IsControl); i >= 0 {
		// A line break or tab would split the cell when the sheet is read
		// back as text.
		c.fail(name, "%q has the control character %U", v, []rune(v[i:])[0])
		return "", false
	}
	switch col.Kind {
	case Text:
		// A4 rule 4: text is upper case. Refused rather than changed, so
		// that what is published is what the officer wrote.
		if strings.IndexFunc(v, unicode.IsLower) >= 0 {
			c.fail(name, "%q has lower-case letters: text is written in upper case (A4 rule 4): %q", v, strings.ToUpper(v))
			return "", false
		}
	case Number:
		if !digitsRE.MatchString(v) || len(v) > 9 {
			c.fail(name, "%q is not a non-negative integer of at most 9 digits", v)
			return "", false
		}
	case Date:
		if _, err := parseEntryDate(v); err != nil {
			c.fail(name, "%v", err)
			return "", false
		}
	case Decimal:
		if !decimalRE.MatchString(v) {
			c.fail(name, "%q is not a number: want digits with an optional decimal comma (6500,45), without the currency", v)
			return "", false
		}
		// The report writes a decimal comma (6500,45); a dot is the same
		// number typed on an English keyboard.
		v = strings.Replace(v, ".", ",", 1)
	}
	var tbl *codes.Table
	switch name {
	case "KOD_TO":
		if len(v) != 8 || !digitsRE.MatchString(v) {
			c.fail(name, "%q is not a customs body code: want 8 digits", v)
			return "", false
		}
	case "NUM_IDK":
		if err := protocol.CheckNumIDK(v); err != nil {
			c.fail(name, "%s", strings.TrimPrefix(err.Error(), "NUM_IDK "))
			return "", false
		}
	case "NUM_SNIM":
		if err := protocol.CheckNumSnim(v); err != nil {
			c.fail(name, "%s", strings.TrimPrefix(err.Error(), "NUM_SNIM "))
			return "", false
		}
	case "NUM_PR":
		if len(v) != 5 || !digitsRE.MatchString(v) {
			c.fail(name, "%q is not a risk profile number: want 5 digits", v)
			return "", false
		}
	case "KOD_TNVED":
		if len(v) != 6 || !digitsRE.MatchString(v) {
			c.fail(name, "%q is not a ТН ВЭД code: want 6 digits", v)
			return "", false
		}
	case "LNP":
		// The number of the personal seal, kept as text for its leading
		// zeros ("056").
		if !digitsRE.MatchString(v) {
			c.fail(name, "%q is not an ЛНП number: want digits", v)
			return "", false
		}
	case "TYPE_IDK":
		tbl = &codes.TypeIDK
	case "DISL_IDK":
		tbl = &codes.Disl
	case "KOD_TEH":
		tbl = &codes.KodTeh
	case "NAIM_DOK":
		tbl = &codes.DocType
	case "NAPR":
		tbl = &codes.Napr
	case "REZ":
		if table == 6 {
			tbl = &codes.Rez6
		} else {
			tbl = &codes.Rez2
		}
	}
	if tbl != nil && !tbl.ValidText(v) {
		c.fail(name, "%q is not a code of %s: want %s", v, tbl.Field, codeRanges(tbl))
		return "", false
	}
	return v, true
}

// codeRanges writes t's codes as the runs an officer reads: "1-8",
// "01-05, 07, 09-11, 19-21, 99".
func codeRanges(t *codes.Table) string {
	cs := t.Codes()
	var parts []string
	for i := 0; i < len(cs); {
		j := i
		for j+1 < len(cs) && cs[j+1] == cs[j]+1 {
			j++
		}
		if j == i {
			parts = append(parts, t.Format(cs[i]))
		} else {
			parts = append(parts, t.Format(cs[i])+"-"+t.Format(cs[j]))
		}
		i = j + 1
	}
	return strings.Join(parts, ", ")
}

// parseEntryDate reads a DD.MM.YYYY calendar date. time.Parse refuses a
// day the month does not have (31.11, 29.02.2027); the years are bounded
// so that a mistyped one (0226) is caught.
func parseEntryDate(v string) (time.Time, error) {
	t, err := time.Parse("02.01.2006", v)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is not a date: want DD.MM.YYYY, a real calendar date", v)
	}
	if y := t.Year(); y < 2000 || y > 2099 {
		return time.Time{}, fmt.Errorf("%q: the year %d is out of range 2000-2099", v, y)
	}
	return t, nil
}

// dateKey writes a checked DD.MM.YYYY date as YYYYMMDD, which sorts.
func dateKey(v string) string { return v[6:10] + v[3:5] + v[0:2] }

// requireFields reports each of names that f lacks.
func requireFields(f map[string]string, c *rowCheck, names ...string) {
	for _, n := range names {
		if c.missing(f, n) {
			c.fail(n, "required")
		}
	}
}

// identityFields are the table 2 fields that name the scan, copied from
// the collector's record of it (ScanLookup) when the row leaves them
// empty.
var identityFields = []string{"KOD_TO", "NAIM_TO", "NAIM_ZTK", "TYPE_IDK", "NUM_IDK", "DISL_IDK", "DATE_SYS"}

// identityOf is what the collector recorded of s, as table 2 writes it;
// a field it did not record is "". Names are upper-cased: the report is
// upper case (A4 rule 4) whatever the ИДК's configuration says.
func identityOf(s ScanIdentity) map[string]string {
	m := map[string]string{
		"KOD_TO":   s.KodTO,
		"NAIM_TO":  strings.ToUpper(strings.TrimSpace(s.NaimTO)),
		"NAIM_ZTK": strings.ToUpper(strings.TrimSpace(s.NaimZTK)),
		"NUM_IDK":  s.NumIDK,
	}
	if s.TypeIDK != 0 {
		m["TYPE_IDK"] = strconv.Itoa(s.TypeIDK)
	}
	if s.DislIDK != 0 {
		m["DISL_IDK"] = strconv.Itoa(s.DislIDK)
	}
	if !s.Date.IsZero() {
		m["DATE_SYS"] = FormatDate(s.Date)
	}
	return m
}

// checkTable2 applies table 2's rules to checked values f, filling the
// identity fields from the scan. The error is a failed lookup, not a
// refused row.
func checkTable2(f map[string]string, scans ScanLookup, c *rowCheck) error {
	requireFields(f, c, "NUM_SNIM", "REZ")
	if rez, err := strconv.Atoi(f["REZ"]); err == nil {
		short := codes.Rez2.Short(rez)
		// Note 22: DATE_VOZB is the date of results 1-3 and 6-8, and is not
		// filled for 4; the note is silent on 5, so either is taken.
		switch {
		case rez == 4 && f["DATE_VOZB"] != "":
			c.fail("DATE_VOZB", "must be empty for REZ 4 (%s)", short)
		case rez != 4 && rez != 5 && c.missing(f, "DATE_VOZB"):
			c.fail("DATE_VOZB", "required for REZ %d (%s)", rez, short)
		}
		// Note 23: no case number for results 3-8.
		if rez >= 3 && f["NUM_DELA"] != "" {
			c.fail("NUM_DELA", "must be empty for REZ %d (%s): a case number is given for REZ 1 (АП) and 2 (УД) only", rez, short)
		}
	}
	snim := f["NUM_SNIM"]
	if snim == "" {
		return nil // refused above; nothing to look up
	}
	s, ok, err := scans.LookupScan(f["NUM_IDK"], snim)
	if err != nil {
		return fmt.Errorf("look up scan %s: %w", snim, err)
	}
	var missing []string
	if !ok {
		for _, n := range identityFields {
			if c.missing(f, n) {
				missing = append(missing, n)
			}
		}
		if len(missing) > 0 {
			where := "by any ИДК, or by more than one: give NUM_IDK"
			if f["NUM_IDK"] != "" {
				where = "by ИДК " + f["NUM_IDK"]
			}
			c.fail(strings.Join(missing, ", "), "required: scan %s is not recorded %s, so the row must give the scan's identity", snim, where)
		}
		return nil
	}
	rec := identityOf(s)
	for _, n := range identityFields {
		switch r, v := rec[n], f[n]; {
		case c.bad[n]:
			// Refused already.
		case v == "":
			if r == "" {
				missing = append(missing, n)
			}
			f[n] = r
		case r != "" && v != r:
			c.fail(n, "%q disagrees with scan %s, recorded with %s %q: leave it empty to take the recorded value", v, snim, n, r)
		}
	}
	if len(missing) > 0 {
		c.fail(strings.Join(missing, ", "), "required: scan %s was recorded without them", snim)
	}
	return nil
}

// checkTable5 applies table 5's rules. KOL_VO_PROV is optional: the
// regulation lists it without saying what it counts.
func checkTable5(f map[string]string, c *rowCheck) {
	requireFields(f, c, "KOD_TO", "DATE_SYS", "FIO", "LNP")
}

// checkTable6 applies table 6's rules: REZ 0 means measures were only
// ordered, so no result date yet; every other result has one, on or after
// the day the violation was found.
func checkTable6(f map[string]string, c *rowCheck) {
	requireFields(f, c, "KOD_TO", "DATE_SYS_V", "NUM_SNIM", "OPISANIE", "REZ", "FIO", "LNP")
	rez, err := strconv.Atoi(f["REZ"])
	if err != nil {
		return
	}
	r := f["DATE_SYS_R"]
	switch {
	case rez == 0 && r != "":
		c.fail("DATE_SYS_R", "must be empty for REZ 0 (verification measures only ordered, no results yet)")
	case rez != 0 && c.missing(f, "DATE_SYS_R"):
		c.fail("DATE_SYS_R", "required for REZ %d: the date the results were received", rez)
	case rez != 0 && r != "" && f["DATE_SYS_V"] != "" && dateKey(r) < dateKey(f["DATE_SYS_V"]):
		c.fail("DATE_SYS_R", "%s is before DATE_SYS_V %s: results come after the violation is found", r, f["DATE_SYS_V"])
	}
}

// checkRow checks one row of table t as entered and returns it as stored.
func checkRow(t *Table, in map[string]string, scans ScanLookup, c *rowCheck) (map[string]string, error) {
	f := checkFields(t, in, c)
	switch t.Number {
	case 2:
		if err := checkTable2(f, scans, c); err != nil {
			return nil, err
		}
	case 5:
		checkTable5(f, c)
	case 6:
		checkTable6(f, c)
	}
	return f, nil
}

// countFields are the 24 OKO_*/KOVR_* fields of table 3 the post enters.
var countFields = func() map[string]bool {
	m := map[string]bool{}
	for _, p := range []string{"OKO", "KOVR"} {
		for _, d := range Directions {
			for _, cat := range ObjectCategories {
				m[CountField(p, cat.VidTS, d.Napr)] = true
			}
		}
	}
	return m
}()

// checkCounts checks the post's object counts for one table 3 row. Each
// KOVR_x counts the objects of OKO_x that passed while the ИДК worked
// (note 16), so it cannot exceed it.
func checkCounts(counts Counts, c *rowCheck) {
	names := make([]string, 0, len(counts))
	for n := range counts {
		names = append(names, n)
	}
	slices.SortFunc(names, func(a, b string) int { return Table3.Index(a) - Table3.Index(b) })
	for _, n := range names {
		v := counts[n]
		switch {
		case !countFields[n]:
			c.fail(n, "not an object count of table 3: want one of OKO_* and KOVR_* (OKO_GRU_IM ... KOVR_IN_EX)")
		case v < 0:
			c.fail(n, "%d is negative", v)
		}
	}
	for _, n := range Table3.Columns {
		oko, ok := strings.CutPrefix(n.Name, "KOVR_")
		if !ok {
			continue
		}
		oko = "OKO_" + oko
		if kovr, all := counts[n.Name], counts[oko]; kovr > all {
			c.fail(n.Name, "%d is more than %s %d: the objects during ИДК working time are part of the day's objects", kovr, oko, all)
		}
	}
}
