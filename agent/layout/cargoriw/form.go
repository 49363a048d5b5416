package cargoriw

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/text/encoding/charmap"

	"idk/agent/layout"
	"idk/protocol/codes"
)

// FormVersion is the only value of the root's version attribute this
// package reads and writes.
const FormVersion = "1"

// MaxField is the longest text a form field may hold, in characters. The
// program's fields are short; the limit stops a corrupt or hostile file
// from turning into megabytes of report text.
const MaxField = 4096

// MaxFormSize is the largest form file accepted, in bytes. A form with
// every field at MaxField, written as character references, still fits.
const MaxFormSize = 1 << 20

// ErrIncomplete is wrapped by ParseForm's error when the data ends before
// the form does: the program truncates form.xml and rewrites it in place,
// so a reader can catch it empty or half-written. The agent should read the
// file again later rather than report it as malformed. It is the layout
// package's sentinel, so the agent can test for it through the interface.
var ErrIncomplete = layout.ErrIncomplete

// FieldError is a form field that is missing or has a bad value.
type FieldError struct {
	File  string // name as passed to ParseForm
	Field string // path of the element, e.g. "Container[2]/Direction"
	Err   error
}

func (e *FieldError) Error() string {
	return fmt.Sprintf("%s: field %s: %v", e.File, e.Field, e.Err)
}

func (e *FieldError) Unwrap() error { return e.Err }

// The exact strings of the form, Appendix 3 and item 22в.
const (
	decisionSuspected     = "Объект под подозрением"
	decisionNotSuspected  = "Объект без подозрения"
	decisionNotSuspected2 = "Объект без подозрений" // the source spells it both ways
	directionImport       = "Импорт"
	directionExport       = "Экспорт"
	directionTransit      = "Транзит"
)

// xmlForm is the on-disk schema; docs/cargoriw-layout.md maps every
// element to its Russian label. Values are kept as strings so that a bad
// value is reported by field name rather than as an opaque decode error.
type xmlForm struct {
	XMLName         xml.Name       `xml:"CargoRIWForm"`
	Version         string         `xml:"version,attr"`
	NumSnim         string         `xml:"NumSnim"`
	Created         string         `xml:"Created"`
	Saved           string         `xml:"Saved"`
	Vehicle         xmlVehicle     `xml:"Vehicle"`
	Containers      []xmlContainer `xml:"Container"`
	Comments        xmlComments    `xml:"Comments"`
	Decision        string         `xml:"Decision"`
	SuspicionReason string         `xml:"SuspicionReason"`
	Marks           xmlMarks       `xml:"Marks"`
	Operator        string         `xml:"Operator"`
}

type xmlVehicle struct {
	TruckID        string `xml:"TruckID"`
	TrailerID      string `xml:"TrailerID"`
	Country        string `xml:"Country"`
	CustomsInfo1   string `xml:"CustomsInfo1"`
	CustomsInfo2   string `xml:"CustomsInfo2"`
	CustomsInfo3   string `xml:"CustomsInfo3"`
	InspectionDate string `xml:"InspectionDate"`
	VidTS          string `xml:"VidTS"`
}

type xmlContainer struct {
	Index     string `xml:"index,attr"`
	Number    string `xml:"Number"`
	From      string `xml:"From"`
	To        string `xml:"To"`
	Cargo     string `xml:"Cargo"`
	Direction string `xml:"Direction"`
}

type xmlComments struct {
	Upper string `xml:"Upper"`
	Lower string `xml:"Lower"`
}

type xmlMarks struct {
	Count string `xml:"count,attr"`
}

// ParseForm implements layout.Layout; see the package function ParseForm.
func (Layout) ParseForm(name string, data []byte) (*layout.Form, error) {
	return ParseForm(name, data)
}

// ParseForm decodes and validates a registration form. name is used in
// errors; when its parent folder (the last element before the base name,
// '/' or '\' separated) is a valid scan number, as in the
// "<NUM_SNIM>/form.xml" paths that Classify accepts, the form's NumSnim
// must equal it. Use ParseFormIn to give the scan number explicitly.
func ParseForm(name string, data []byte) (*layout.Form, error) {
	return ParseFormIn(folderOf(name), name, data)
}

// folderOf returns the parent folder of name if it looks like a scan
// number, and "" otherwise.
func folderOf(name string) string {
	name = strings.ReplaceAll(name, `\`, "/")
	i := strings.LastIndexByte(name, '/')
	if i < 0 {
		return ""
	}
	dir := name[:i]
	dir = dir[strings.LastIndexByte(dir, '/')+1:]
	if !ValidNumSnim(dir) {
		return ""
	}
	return dir
}

// ParseFormIn is ParseForm with the expected scan number given: unless it
// is "", the form's NumSnim must equal it.
//
// Errors name the file and, for a bad value, the field (*FieldError). Data
// that ends before the form does wraps ErrIncomplete; other syntax errors
// mean the file is malformed.
func ParseFormIn(numSnim, name string, data []byte) (*layout.Form, error) {
	if len(data) > MaxFormSize {
		return nil, fmt.Errorf("%s: form is %d bytes, more than the limit of %d", name, len(data), MaxFormSize)
	}
	x, err := decode(data)
	if err != nil {
		if incomplete(err) {
			return nil, fmt.Errorf("%s: %w: %w", name, ErrIncomplete, err)
		}
		return nil, fmt.Errorf("%s: malformed form: %w", name, err)
	}
	f, err := fromXML(x)
	if err != nil {
		return nil, withFile(err, name)
	}
	if numSnim != "" && f.NumSnim != numSnim {
		return nil, &FieldError{name, "NumSnim", fmt.Errorf("%q does not match the scan folder %q", f.NumSnim, numSnim)}
	}
	return f, nil
}

// decode parses data as one CargoRIWForm element followed by nothing but
// white space, comments and processing instructions.
func decode(data []byte) (*xmlForm, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		// Caught right after the truncate: the usual case, not an error in
		// the file.
		return nil, io.ErrUnexpectedEOF
	}
	x, err := decodeOnce(data)
	if err != nil && !incomplete(err) {
		// A UTF-8 form cut inside a multi-byte character fails as invalid
		// UTF-8 before the decoder sees the end. Cut the partial character
		// off and ask again, so that this counts as incomplete too.
		if n := partialRuneTail(data); n > 0 {
			if _, err2 := decodeOnce(data[:len(data)-n]); incomplete(err2) {
				return nil, err2
			}
		}
	}
	return x, err
}

func decodeOnce(data []byte) (*xmlForm, error) {
	d := xml.NewDecoder(bytes.NewReader(data))
	d.CharsetReader = charsetReader
	var x xmlForm
	if err := d.Decode(&x); err != nil {
		return nil, err
	}
	// A program that rewrites in place without truncating leaves the tail
	// of a longer previous revision behind; that must not pass as valid.
	for {
		tok, err := d.Token()
		if err == io.EOF {
			return &x, nil
		}
		if err != nil {
			return nil, fmt.Errorf("after </CargoRIWForm>: %w", err)
		}
		switch t := tok.(type) {
		case xml.Comment, xml.ProcInst:
		case xml.CharData:
			if len(bytes.TrimSpace(t)) != 0 {
				return nil, errors.New("text after </CargoRIWForm>")
			}
		default:
			return nil, errors.New("element after </CargoRIWForm>")
		}
	}
}

// incomplete reports whether a decode error means the data ended early.
func incomplete(err error) bool {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return true
	}
	// encoding/xml reports the end of input inside an element as a
	// SyntaxError with this message; there is no sentinel to match.
	var se *xml.SyntaxError
	return errors.As(err, &se) && se.Msg == "unexpected EOF"
}

// partialRuneTail returns the length of an incomplete UTF-8 sequence at the
// end of data, or 0.
func partialRuneTail(data []byte) int {
	for n := 1; n <= utf8.UTFMax-1 && n <= len(data); n++ {
		tail := data[len(data)-n:]
		if utf8.RuneStart(tail[0]) {
			if tail[0] >= utf8.RuneSelf && !utf8.FullRune(tail) {
				return n
			}
			return 0
		}
	}
	return 0
}

// charsetReader lets the decoder read the encodings a form may declare.
// encoding/xml handles UTF-8 itself and asks only for the others.
func charsetReader(label string, input io.Reader) (io.Reader, error) {
	switch strings.ToLower(label) {
	case "windows-1251", "cp1251", "windows1251", "x-cp1251":
		return charmap.Windows1251.NewDecoder().Reader(input), nil
	case "utf-8", "utf8":
		return input, nil
	}
	return nil, fmt.Errorf("encoding %q not supported (want windows-1251 or UTF-8)", label)
}

// field is one text field of the form with its path for errors.
type field struct {
	path string
	val  *string
}

func textFields(x *xmlForm) []field {
	fs := []field{
		{"Vehicle/TruckID", &x.Vehicle.TruckID},
		{"Vehicle/TrailerID", &x.Vehicle.TrailerID},
		{"Vehicle/Country", &x.Vehicle.Country},
		{"Vehicle/CustomsInfo1", &x.Vehicle.CustomsInfo1},
		{"Vehicle/CustomsInfo2", &x.Vehicle.CustomsInfo2},
		{"Vehicle/CustomsInfo3", &x.Vehicle.CustomsInfo3},
		{"Comments/Upper", &x.Comments.Upper},
		{"Comments/Lower", &x.Comments.Lower},
		{"SuspicionReason", &x.SuspicionReason},
		{"Operator", &x.Operator},
	}
	for i := range x.Containers {
		c := &x.Containers[i]
		p := "Container[" + c.Index + "]/"
		fs = append(fs,
			field{p + "Number", &c.Number},
			field{p + "From", &c.From},
			field{p + "To", &c.To},
			field{p + "Cargo", &c.Cargo},
		)
	}
	return fs
}

// fromXML validates x and converts it. Errors are *FieldError without File.
func fromXML(x *xmlForm) (*layout.Form, error) {
	if v := strings.TrimSpace(x.Version); v != FormVersion {
		if v == "" {
			return nil, &FieldError{Field: "CargoRIWForm/@version", Err: errors.New("missing")}
		}
		return nil, &FieldError{Field: "CargoRIWForm/@version", Err: fmt.Errorf("unsupported version %s (want %s)", quote(v), FormVersion)}
	}
	// Container indexes come first because text field paths use them.
	var seen [2]bool
	for i := range x.Containers {
		c := &x.Containers[i]
		c.Index = strings.TrimSpace(c.Index)
		if c.Index != "1" && c.Index != "2" {
			return nil, &FieldError{Field: fmt.Sprintf("Container[%d]/@index", i+1), Err: fmt.Errorf("want 1 or 2, have %s", quote(c.Index))}
		}
		n := int(c.Index[0] - '1')
		if seen[n] {
			return nil, &FieldError{Field: "Container[" + c.Index + "]/@index", Err: errors.New("tab appears twice")}
		}
		seen[n] = true
	}
	for _, fl := range textFields(x) {
		if err := checkText(*fl.val); err != nil {
			return nil, &FieldError{Field: fl.path, Err: err}
		}
	}

	f := &layout.Form{
		TruckID:         x.Vehicle.TruckID,
		TrailerID:       x.Vehicle.TrailerID,
		Country:         x.Vehicle.Country,
		CustomsInfo1:    x.Vehicle.CustomsInfo1,
		CustomsInfo2:    x.Vehicle.CustomsInfo2,
		CustomsInfo3:    x.Vehicle.CustomsInfo3,
		CommentUpper:    x.Comments.Upper,
		CommentLower:    x.Comments.Lower,
		SuspicionReason: x.SuspicionReason,
		Operator:        x.Operator,
	}
	f.NumSnim = strings.TrimSpace(x.NumSnim)
	if !ValidNumSnim(f.NumSnim) {
		return nil, &FieldError{Field: "NumSnim", Err: fmt.Errorf("%s is not a scan number (1-%d characters of 0-9, A-Z)", quote(f.NumSnim), MaxNumSnim)}
	}
	var err error
	if f.Created, err = parseTime("Created", x.Created, true); err != nil {
		return nil, err
	}
	if f.Saved, err = parseTime("Saved", x.Saved, false); err != nil {
		return nil, err
	}
	if f.InspectionDate, err = parseTime("Vehicle/InspectionDate", x.Vehicle.InspectionDate, false); err != nil {
		return nil, err
	}
	for _, c := range x.Containers {
		dir, ok := parseDirection(c.Direction)
		if !ok {
			return nil, &FieldError{Field: "Container[" + c.Index + "]/Direction", Err: fmt.Errorf("unknown value %s (want %s, %s or %s)", quote(strings.TrimSpace(c.Direction)), directionImport, directionExport, directionTransit)}
		}
		f.Containers[c.Index[0]-'1'] = layout.Container{Number: c.Number, From: c.From, To: c.To, Cargo: c.Cargo, Direction: dir}
	}
	d, ok := parseDecision(x.Decision)
	if !ok {
		return nil, &FieldError{Field: "Decision", Err: fmt.Errorf("unknown value %s (want %q, %q or empty)", quote(strings.TrimSpace(x.Decision)), decisionSuspected, decisionNotSuspected)}
	}
	f.Decision = d
	if f.VidTS, err = parseVidTS(x.Vehicle.VidTS); err != nil {
		return nil, &FieldError{Field: "Vehicle/VidTS", Err: err}
	}
	if f.Marks, err = parseMarks(x.Marks.Count); err != nil {
		return nil, &FieldError{Field: "Marks/@count", Err: err}
	}
	if err := checkForm(f); err != nil {
		return nil, err
	}
	return f, nil
}

// checkForm holds the rules that involve more than one field; EncodeForm
// applies them too so that the simulator cannot write a form that does not
// parse.
func checkForm(f *layout.Form) error {
	if f.Decision == layout.DecisionSuspected && strings.TrimSpace(f.SuspicionReason) == "" {
		return &FieldError{Field: "SuspicionReason", Err: fmt.Errorf("required when Decision is %q", decisionSuspected)}
	}
	return nil
}

// checkText rejects what the form's fields cannot hold: overlong text, and
// characters that XML 1.0 does not allow (the parser would reject them; the
// encoder would silently change them).
func checkText(s string) error {
	if !utf8.ValidString(s) {
		return errors.New("invalid UTF-8")
	}
	if n := utf8.RuneCountInString(s); n > MaxField {
		return fmt.Errorf("too long (%d characters, limit %d)", n, MaxField)
	}
	for _, r := range s {
		if !xmlChar(r) {
			return fmt.Errorf("character %U not allowed in XML", r)
		}
	}
	return nil
}

// xmlChar is the Char production of XML 1.0.
func xmlChar(r rune) bool {
	return r == 0x09 || r == 0x0A || r == 0x0D ||
		r >= 0x20 && r <= 0xD7FF ||
		r >= 0xE000 && r <= 0xFFFD ||
		r >= 0x10000 && r <= 0x10FFFF
}

// quote quotes a value for an error message, shortened so that a huge bad
// value does not flood the log.
func quote(s string) string {
	const max = 64
	if utf8.RuneCountInString(s) <= max {
		return strconv.Quote(s)
	}
	r := []rune(s)
	return strconv.Quote(string(r[:max])) + "…"
}

func parseTime(path, s string, required bool) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		if required {
			return time.Time{}, &FieldError{Field: path, Err: errors.New("missing")}
		}
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, &FieldError{Field: path, Err: fmt.Errorf("%s is not an RFC 3339 time", quote(s))}
	}
	if y := t.Year(); y < 1 || y > 9999 {
		// EncodeForm cannot write these back; refuse them here too.
		return time.Time{}, &FieldError{Field: path, Err: fmt.Errorf("year %d outside 1-9999", y)}
	}
	if required && t.IsZero() {
		return time.Time{}, &FieldError{Field: path, Err: errors.New("zero time")}
	}
	return t, nil
}

func parseDirection(s string) (layout.Direction, bool) {
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		return layout.DirectionNone, true
	case strings.EqualFold(s, directionImport):
		return layout.DirectionImport, true
	case strings.EqualFold(s, directionExport):
		return layout.DirectionExport, true
	case strings.EqualFold(s, directionTransit):
		return layout.DirectionTransit, true
	}
	return 0, false
}

func parseDecision(s string) (layout.Decision, bool) {
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		return layout.DecisionNone, true
	case strings.EqualFold(s, decisionSuspected):
		return layout.DecisionSuspected, true
	case strings.EqualFold(s, decisionNotSuspected), strings.EqualFold(s, decisionNotSuspected2):
		return layout.DecisionNotSuspected, true
	}
	return 0, false
}

// parseVidTS reads «Вид ТС»: a VID_TS code 1-6 or its name
// («Грузовой», any case), empty for 0 (not filled).
func parseVidTS(s string) (int, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, nil
	}
	if n, err := strconv.Atoi(s); err == nil && codes.VidTS.Valid(n) {
		return n, nil
	}
	for _, e := range codes.VidTS.Entries {
		if strings.EqualFold(s, e.Name) {
			return e.Code, nil
		}
	}
	names := make([]string, len(codes.VidTS.Entries))
	for i, e := range codes.VidTS.Entries {
		names[i] = e.Name
	}
	return 0, fmt.Errorf("unknown value %s (want a code 1-6 or one of %s)", quote(s), strings.Join(names, ", "))
}

func parseMarks(s string) (int, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("%s is not a whole number", quote(s))
	}
	if n < 0 {
		return 0, fmt.Errorf("negative count %d", n)
	}
	return n, nil
}

// withFile fills in the file name of a *FieldError.
func withFile(err error, name string) error {
	var fe *FieldError
	if errors.As(err, &fe) {
		fe.File = name
		return fe
	}
	return fmt.Errorf("%s: %w", name, err)
}

// EncodeForm writes f as a version 1 form in windows-1251, as CargoRIW
// does. Characters that windows-1251 lacks are written as XML character
// references, so any text survives. f is validated first, with the same
// rules as ParseForm, and errors name the field (File is empty).
func EncodeForm(f *layout.Form) ([]byte, error) {
	x, err := toXML(f)
	if err != nil {
		return nil, err
	}
	body, err := xml.MarshalIndent(x, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode form: %w", err)
	}
	var b bytes.Buffer
	b.Grow(len(body) + 64)
	b.WriteString(`<?xml version="1.0" encoding="windows-1251"?>` + "\n")
	for _, r := range string(body) {
		if c, ok := charmap.Windows1251.EncodeRune(r); ok {
			b.WriteByte(c)
		} else {
			// Only text and attribute values can hold non-ASCII, and a
			// character reference is valid in both.
			fmt.Fprintf(&b, "&#x%X;", r)
		}
	}
	b.WriteByte('\n')
	return b.Bytes(), nil
}

func toXML(f *layout.Form) (*xmlForm, error) {
	if !ValidNumSnim(f.NumSnim) {
		return nil, &FieldError{Field: "NumSnim", Err: fmt.Errorf("%s is not a scan number (1-%d characters of 0-9, A-Z)", quote(f.NumSnim), MaxNumSnim)}
	}
	if f.Created.IsZero() {
		return nil, &FieldError{Field: "Created", Err: errors.New("missing")}
	}
	if f.VidTS != 0 && !codes.VidTS.Valid(f.VidTS) {
		return nil, &FieldError{Field: "Vehicle/VidTS", Err: fmt.Errorf("%d is not a VID_TS code (1-6)", f.VidTS)}
	}
	if f.Marks < 0 {
		return nil, &FieldError{Field: "Marks/@count", Err: fmt.Errorf("negative count %d", f.Marks)}
	}
	x := &xmlForm{
		Version: FormVersion,
		NumSnim: f.NumSnim,
		Vehicle: xmlVehicle{
			TruckID:      f.TruckID,
			TrailerID:    f.TrailerID,
			Country:      f.Country,
			CustomsInfo1: f.CustomsInfo1,
			CustomsInfo2: f.CustomsInfo2,
			CustomsInfo3: f.CustomsInfo3,
		},
		Comments:        xmlComments{Upper: f.CommentUpper, Lower: f.CommentLower},
		SuspicionReason: f.SuspicionReason,
		Marks:           xmlMarks{Count: strconv.Itoa(f.Marks)},
		Operator:        f.Operator,
	}
	var err error
	if x.Created, err = formatTime("Created", f.Created); err != nil {
		return nil, err
	}
	if x.Saved, err = formatTime("Saved", f.Saved); err != nil {
		return nil, err
	}
	if x.Vehicle.InspectionDate, err = formatTime("Vehicle/InspectionDate", f.InspectionDate); err != nil {
		return nil, err
	}
	if f.VidTS != 0 {
		// The program writes the code; an empty element is not filled.
		x.Vehicle.VidTS = strconv.Itoa(f.VidTS)
	}
	for i, c := range f.Containers {
		xc := xmlContainer{Index: strconv.Itoa(i + 1), Number: c.Number, From: c.From, To: c.To, Cargo: c.Cargo}
		switch c.Direction {
		case layout.DirectionNone:
		case layout.DirectionImport:
			xc.Direction = directionImport
		case layout.DirectionExport:
			xc.Direction = directionExport
		case layout.DirectionTransit:
			xc.Direction = directionTransit
		default:
			return nil, &FieldError{Field: "Container[" + xc.Index + "]/Direction", Err: fmt.Errorf("unknown direction %d", c.Direction)}
		}
		// Both tabs are always written, as the program shows both.
		x.Containers = append(x.Containers, xc)
	}
	switch f.Decision {
	case layout.DecisionNone:
	case layout.DecisionNotSuspected:
		x.Decision = decisionNotSuspected
	case layout.DecisionSuspected:
		x.Decision = decisionSuspected
	default:
		return nil, &FieldError{Field: "Decision", Err: fmt.Errorf("unknown decision %d", f.Decision)}
	}
	for _, fl := range textFields(x) {
		if err := checkText(*fl.val); err != nil {
			return nil, &FieldError{Field: fl.path, Err: err}
		}
	}
	if err := checkForm(f); err != nil {
		return nil, err
	}
	return x, nil
}

// formatTime writes t so that ParseForm gets the same instant back; the
// zero time (never set) is written as an empty element.
func formatTime(path string, t time.Time) (string, error) {
	if t.IsZero() {
		return "", nil
	}
	if _, off := t.Zone(); off%60 != 0 {
		// RFC 3339 offsets have no seconds (historical zones do); UTC
		// keeps the instant exact.
		t = t.UTC()
	}
	if y := t.Year(); y < 1 || y > 9999 {
		return "", &FieldError{Field: path, Err: fmt.Errorf("year %d outside 1-9999", y)}
	}
	return t.Format(time.RFC3339Nano), nil
}
