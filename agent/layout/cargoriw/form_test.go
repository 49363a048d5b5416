package cargoriw

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"idk/agent/layout"
)

var msk = time.FixedZone("MSK", 3*60*60)

func fullForm() *layout.Form {
	created := time.Date(2017, 1, 4, 10, 15, 0, 0, msk)
	return &layout.Form{
		NumSnim:        "201701040006080003",
		Created:        created,
		Saved:          created.Add(25*time.Minute + 500*time.Millisecond),
		TruckID:        "201701040006080003",
		TrailerID:      "А654АА777/АВ123477",
		Country:        "КАЗАХСТАН",
		CustomsInfo1:   "10702070/170717/0012345/XZ12345678",
		CustomsInfo2:   "ТОО «СТЕПНОЙ ЭКСПРЕСС» & Ко <тест>",
		CustomsInfo3:   "СФ 000123 от 04.01.2017",
		InspectionDate: created,
		VidTS:          2,
		Containers: [2]layout.Container{
			{Number: "MSKU1234567", From: "КИТАЙ", To: "РОССИЯ", Cargo: "8471300000", Direction: layout.DirectionImport},
			{Number: "TGHU7654321", From: "КИТАЙ", To: "КАЗАХСТАН", Cargo: "6403", Direction: layout.DirectionTransit},
		},
		CommentUpper:    "ЗАПАСНЫЕ ЧАСТИ ДЛЯ АВТОМОБИЛЕЙ",
		CommentLower:    "В передней части полуприцепа плотные вложения;\nпроведён внешний осмотр ТС, получены письменные объяснения",
		Decision:        layout.DecisionSuspected,
		SuspicionReason: "НЕСООТВЕТСТВИЕ ЗАЯВЛЕННОМУ ТОВАРУ",
		Marks:           3,
		Operator:        "idk_oper02",
	}
}

// sameForm compares forms with time.Equal for the times: a parsed time has
// the offset but not the zone name of the original.
func sameForm(a, b *layout.Form) bool {
	if !a.Created.Equal(b.Created) || !a.Saved.Equal(b.Saved) || !a.InspectionDate.Equal(b.InspectionDate) {
		return false
	}
	x, y := *a, *b
	x.Created, y.Created = time.Time{}, time.Time{}
	x.Saved, y.Saved = time.Time{}, time.Time{}
	x.InspectionDate, y.InspectionDate = time.Time{}, time.Time{}
	return reflect.DeepEqual(x, y)
}

func mustEncode(t testing.TB, f *layout.Form) []byte {
	t.Helper()
	data, err := EncodeForm(f)
	if err != nil {
		t.Fatalf("EncodeForm: %v", err)
	}
	return data
}

func TestRoundTrip(t *testing.T) {
	created := time.Date(2017, 1, 4, 10, 15, 0, 0, msk)
	tests := map[string]*layout.Form{
		"full": fullForm(),
		// What the program writes at scan time.
		"created": {NumSnim: "70001DJ01201701020002", Created: created, TruckID: "70001DJ01201701020002", InspectionDate: created},
		"not suspected": func() *layout.Form {
			f := fullForm()
			f.Decision, f.SuspicionReason, f.Marks = layout.DecisionNotSuspected, "", 0
			f.Containers[1] = layout.Container{}
			return f
		}(),
		"outside windows-1251": func() *layout.Form {
			f := fullForm()
			f.CustomsInfo2 = "浙江物流有限公司 \U0001F69A ‰ №"
			f.TrailerID = "RD5689 / D689"
			return f
		}(),
		"white space kept": func() *layout.Form {
			f := fullForm()
			f.CommentLower = "  строка 1\r\nстрока 2\tконец  "
			f.Operator = " "
			return f
		}(),
		"utc and nanoseconds": func() *layout.Form {
			f := fullForm()
			f.Created = time.Date(2017, 1, 4, 7, 15, 0, 123456789, time.UTC)
			f.Saved = time.Time{}
			return f
		}(),
		"field at limit": func() *layout.Form {
			f := fullForm()
			f.CommentLower = strings.Repeat("Ж", MaxField)
			return f
		}(),
	}
	for name, f := range tests {
		t.Run(name, func(t *testing.T) {
			data := mustEncode(t, f)
			got, err := ParseForm("form.xml", data)
			if err != nil {
				t.Fatalf("ParseForm: %v\n%s", err, data)
			}
			if !sameForm(got, f) {
				t.Errorf("round trip changed the form\n got %+v\nwant %+v", got, f)
			}
		})
	}
}

func TestEncodeWindows1251OnDisk(t *testing.T) {
	path := filepath.Join(t.TempDir(), "201701040006080003", FormName)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, mustEncode(t, fullForm()), 0o644); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(data, []byte(`<?xml version="1.0" encoding="windows-1251"?>`)) {
		t.Errorf("form does not start with the windows-1251 declaration: %.60q", data)
	}
	// «Объект под подозрением» in windows-1251: О is 0xCE, б 0xE1, ъ 0xFA.
	if !bytes.Contains(data, []byte("<Decision>\xce\xe1\xfa\xe5\xea\xf2 ")) {
		t.Errorf("decision is not in windows-1251 on disk")
	}
	// The same letter О in UTF-8 would be D0 9E.
	if bytes.Contains(data, []byte("\xd0\x9e")) {
		t.Errorf("form holds UTF-8 Cyrillic")
	}
	if _, err := ParseForm("201701040006080003/form.xml", data); err != nil {
		t.Errorf("ParseForm of the file on disk: %v", err)
	}
}

// utf8Form is a form as a UTF-8 writer might produce it, with a spelling
// variant, upper case and white space around the enumerated values.
const utf8Form = `<?xml version="1.0" encoding="UTF-8"?>
<!-- written by hand -->
<CargoRIWForm version="1">
  <NumSnim> 201701040006080003 </NumSnim>
  <Created>2017-01-04T10:15:00+03:00</Created>
  <Saved>2017-01-04T10:40:00+03:00</Saved>
  <Vehicle>
    <TruckID>201701040006080003</TruckID>
    <TrailerID>А654АА777</TrailerID>
    <Country>КИТАЙ</Country>
    <CustomsInfo1>10702070/170717/0012345</CustomsInfo1>
    <CustomsInfo2>ООО «ВОСТОК»</CustomsInfo2>
    <CustomsInfo3>INV-1</CustomsInfo3>
    <InspectionDate>2017-01-04T10:15:00+03:00</InspectionDate>
  </Vehicle>
  <Container index="2">
    <Number>TGHU7654321</Number>
    <Direction> ЭКСПОРТ </Direction>
  </Container>
  <Container index="1">
    <Number>MSKU1234567</Number>
    <From>КИТАЙ</From>
    <To>РОССИЯ</To>
    <Cargo>8471</Cargo>
    <Direction>Импорт</Direction>
  </Container>
  <Comments>
    <Upper>ОДЕЖДА</Upper>
    <Lower>проведён внешний осмотр</Lower>
  </Comments>
  <Decision>
    Объект без подозрений
  </Decision>
  <SuspicionReason></SuspicionReason>
  <Marks count="1"/>
  <Operator>oper1</Operator>
  <FutureElement>ignored</FutureElement>
</CargoRIWForm>
`

func TestParseUTF8(t *testing.T) {
	for name, data := range map[string]string{
		"declared":       utf8Form,
		"no declaration": strings.SplitN(utf8Form, "\n", 2)[1],
		"BOM":            "\uFEFF" + utf8Form,
		"CRLF":           strings.ReplaceAll(utf8Form, "\n", "\r\n"),
		"utf8 label":     strings.Replace(utf8Form, `"UTF-8"`, `"utf8"`, 1),
	} {
		t.Run(name, func(t *testing.T) {
			f, err := ParseForm("201701040006080003/form.xml", []byte(data))
			if err != nil {
				t.Fatal(err)
			}
			if f.NumSnim != "201701040006080003" || f.TrailerID != "А654АА777" || f.CustomsInfo2 != "ООО «ВОСТОК»" {
				t.Errorf("text fields: %+v", f)
			}
			if f.Decision != layout.DecisionNotSuspected {
				t.Errorf("Decision = %v, want not suspected", f.Decision)
			}
			want := [2]layout.Container{
				{Number: "MSKU1234567", From: "КИТАЙ", To: "РОССИЯ", Cargo: "8471", Direction: layout.DirectionImport},
				{Number: "TGHU7654321", Direction: layout.DirectionExport},
			}
			if f.Containers != want {
				t.Errorf("Containers = %+v, want %+v", f.Containers, want)
			}
			if f.Marks != 1 || f.Operator != "oper1" {
				t.Errorf("Marks, Operator = %d, %q", f.Marks, f.Operator)
			}
			if !f.Saved.Equal(time.Date(2017, 1, 4, 10, 40, 0, 0, msk)) {
				t.Errorf("Saved = %v", f.Saved)
			}
		})
	}
}

func TestParseFieldErrors(t *testing.T) {
	const name = "201701040006080003/form.xml"
	long := strings.Repeat("Я", MaxField+1)
	tests := []struct {
		old, new string // replacement in utf8Form
		field    string
		msg      string // expected in the error, after the field
	}{
		{"<Direction>Импорт", "<Direction>Импортт", "Container[1]/Direction", `unknown value "Импортт"`},
		{"<Direction> ЭКСПОРТ ", "<Direction>Импортт", "Container[2]/Direction", `unknown value "Импортт"`},
		{"Объект без подозрений", "Объект под вопросом", "Decision", `unknown value "Объект под вопросом"`},
		{"Объект без подозрений", "Объект под подозрением", "SuspicionReason", "required"},
		{"<Created>2017-01-04T10:15:00+03:00</Created>", "", "Created", "missing"},
		{"<Created>2017-01-04T10:15:00+03:00", "<Created>04.01.2017", "Created", "RFC 3339"},
		{"<Saved>2017-01-04T10:40:00+03:00", "<Saved>2017-01-04 10:40", "Saved", "RFC 3339"},
		{"<InspectionDate>2017-01-04T10:15:00+03:00", "<InspectionDate>вчера", "Vehicle/InspectionDate", "RFC 3339"},
		{"<Saved>2017-01-04T10:40:00+03:00", "<Saved>0000-01-04T10:40:00Z", "Saved", "year 0"},
		{`count="1"`, `count="-1"`, "Marks/@count", "negative"},
		{`count="1"`, `count="много"`, "Marks/@count", "not a whole number"},
		{`count="1"`, `count="99999999999999999999"`, "Marks/@count", "not a whole number"},
		{"<NumSnim> 201701040006080003 ", "<NumSnim>2017-01-04", "NumSnim", "not a scan number"},
		{"<NumSnim> 201701040006080003 ", "<NumSnim>201701040006080004", "NumSnim", `does not match the scan folder "201701040006080003"`},
		{"<Country>КИТАЙ", "<Country>" + long, "Vehicle/Country", "too long (4097 characters, limit 4096)"},
		{"<Lower>", "<Lower>" + long, "Comments/Lower", "too long"},
		{"<Cargo>8471", "<Cargo>" + long, "Container[1]/Cargo", "too long"},
		{"<Operator>oper1", "<Operator>" + long, "Operator", "too long"},
		{`<Container index="2">`, `<Container index="3">`, "Container[1]/@index", `want 1 or 2, have "3"`},
		{`<Container index="2">`, `<Container>`, "Container[1]/@index", `have ""`},
		{`<Container index="2">`, `<Container index="1">`, "Container[1]/@index", "twice"},
		{`<CargoRIWForm version="1">`, `<CargoRIWForm>`, "CargoRIWForm/@version", "missing"},
		{`<CargoRIWForm version="1">`, `<CargoRIWForm version="2">`, "CargoRIWForm/@version", "unsupported"},
	}
	for _, tt := range tests {
		data := strings.Replace(utf8Form, tt.old, tt.new, 1)
		if data == utf8Form {
			t.Fatalf("%q not found in the form", tt.old)
		}
		_, err := ParseForm(name, []byte(data))
		if err == nil {
			t.Errorf("%s: no error for %q", tt.field, tt.new)
			continue
		}
		prefix := name + ": field " + tt.field + ": "
		if !strings.HasPrefix(err.Error(), prefix) || !strings.Contains(err.Error(), tt.msg) {
			t.Errorf("error = %q, want %q...%q", err, prefix, tt.msg)
		}
		var fe *FieldError
		if !errors.As(err, &fe) || fe.File != name || fe.Field != tt.field {
			t.Errorf("error %q is not a FieldError for %s", err, tt.field)
		}
		if errors.Is(err, ErrIncomplete) {
			t.Errorf("error %q wraps ErrIncomplete", err)
		}
		if len(err.Error()) > 400 {
			t.Errorf("error is %d bytes long: %.100q...", len(err.Error()), err)
		}
	}
}

// «Вид ТС» takes a VID_TS code or its name; the program writes the code.
func TestVidTS(t *testing.T) {
	const name = "201701040006080003/form.xml"
	for in, want := range map[string]int{
		"": 0, " ": 0, "1": 1, " 6 ": 6, "Грузовой": 1, "КОНТЕЙНЕРНЫЙ": 2, " легковой ": 3, "Иной": 6,
	} {
		data := strings.Replace(utf8Form, "</Country>", "</Country><VidTS>"+in+"</VidTS>", 1)
		f, err := ParseForm(name, []byte(data))
		if err != nil {
			t.Errorf("VidTS %q: %v", in, err)
			continue
		}
		if f.VidTS != want {
			t.Errorf("VidTS %q = %d, want %d", in, f.VidTS, want)
		}
	}
	for _, in := range []string{"0", "7", "-1", "Грузовик", "1.0"} {
		data := strings.Replace(utf8Form, "</Country>", "</Country><VidTS>"+in+"</VidTS>", 1)
		_, err := ParseForm(name, []byte(data))
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != "Vehicle/VidTS" {
			t.Errorf("VidTS %q: error %v, want a FieldError for Vehicle/VidTS", in, err)
		}
	}
	f := fullForm()
	if data := mustEncode(t, f); !bytes.Contains(data, []byte("<VidTS>2</VidTS>")) {
		t.Errorf("encoded form lacks <VidTS>2</VidTS>:\n%s", data)
	}
	f.VidTS = 0
	if data := mustEncode(t, f); !bytes.Contains(data, []byte("<VidTS></VidTS>")) {
		t.Errorf("an unfilled VidTS is not an empty element:\n%s", data)
	}
	f.VidTS = 9
	var fe *FieldError
	if _, err := EncodeForm(f); !errors.As(err, &fe) || fe.Field != "Vehicle/VidTS" {
		t.Errorf("EncodeForm of VidTS 9: %v, want a FieldError for Vehicle/VidTS", err)
	}
}

func TestParseFormExample(t *testing.T) {
	f := fullForm()
	data := mustEncode(t, f)
	data = bytes.Replace(data, []byte("\xd2\xf0\xe0\xed\xe7\xe8\xf2"), []byte("\xc8\xec\xef\xee\xf0\xf2\xf2"), 1) // Транзит -> Импортт
	_, err := ParseForm("form.xml", data)
	const want = `form.xml: field Container[2]/Direction: unknown value "Импортт"`
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("error = %v, want %s...", err, want)
	}
}

func TestParseFormFolder(t *testing.T) {
	data := mustEncode(t, fullForm()) // NumSnim 201701040006080003
	var l Layout
	for name, wantErr := range map[string]bool{
		"form.xml":                                     false,
		"201701040006080003/form.xml":                  false,
		"201701040006080004/form.xml":                  true,
		"/srv/idk/out/201701040006080004/form.xml":     true,
		`D:\CargoRIW\out\201701040006080004\form.xml`:  true,
		`D:\CargoRIW\out\201701040006080003\form.xml`:  false,
		"testdata/form.xml":                            false, // not a scan folder: no check
		"/srv/idk/out/201701040006080003/form.xml.bak": false,
	} {
		_, err := l.ParseForm(name, data)
		if (err != nil) != wantErr {
			t.Errorf("ParseForm(%q): err = %v, want error %v", name, err, wantErr)
		}
	}
	if _, err := ParseFormIn("201701040006080004", "form.xml", data); err == nil {
		t.Error("ParseFormIn with another scan number: no error")
	}
	if _, err := ParseFormIn("", "201701040006080004/form.xml", data); err != nil {
		t.Errorf("ParseFormIn without a scan number: %v", err)
	}
}

func TestParseMalformed(t *testing.T) {
	valid := mustEncode(t, fullForm())
	for name, data := range map[string][]byte{
		"wrong root":     []byte(`<?xml version="1.0"?><Form version="1"></Form>`),
		"encoding":       bytes.Replace(valid, []byte("windows-1251"), []byte("koi8-r"), 1),
		"cp1251 as utf8": bytes.Replace(valid, []byte("windows-1251"), []byte("utf-8"), 1),
		"stale tail":     append(append([]byte{}, valid...), "Form>\n"...),
		"second root":    append(append([]byte{}, valid...), "<CargoRIWForm/>"...),
		"bad entity":     bytes.Replace(valid, []byte("&amp;"), []byte("&nbsp;"), 1),
		"too large":      append(bytes.Repeat([]byte(" "), MaxFormSize), valid...),
		"nul":            bytes.Replace(valid, []byte("idk_oper02"), []byte("idk\x00oper"), 1),
	} {
		_, err := ParseForm("form.xml", data)
		if err == nil {
			t.Errorf("%s: no error", name)
			continue
		}
		if !strings.HasPrefix(err.Error(), "form.xml: ") {
			t.Errorf("%s: error %q does not name the file", name, err)
		}
		if errors.Is(err, ErrIncomplete) {
			t.Errorf("%s: error %q wraps ErrIncomplete", name, err)
		}
	}
}

// TestTruncated checks every prefix of valid forms, as a reader racing the
// in-place rewrite sees them: each is ErrIncomplete until the root element
// is closed, and then the whole form.
func TestTruncated(t *testing.T) {
	f := fullForm()
	f.CustomsInfo2 = "浙江 \U0001F69A &<>"
	forms := map[string][]byte{
		"windows-1251": mustEncode(t, f),
		"utf-8":        []byte(utf8Form),
		"utf-8 BOM":    []byte("\uFEFF" + utf8Form),
	}
	for name, data := range forms {
		end := bytes.LastIndex(data, []byte("</CargoRIWForm>")) + len("</CargoRIWForm>")
		for i := 0; i <= len(data); i++ {
			got, err := ParseForm("form.xml", data[:i])
			if i < end {
				if !errors.Is(err, ErrIncomplete) {
					t.Fatalf("%s: %d of %d bytes: err = %v, want ErrIncomplete", name, i, len(data), err)
				}
				if !strings.HasPrefix(err.Error(), "form.xml: ") {
					t.Fatalf("%s: error %q does not name the file", name, err)
				}
				continue
			}
			if err != nil || got == nil {
				t.Fatalf("%s: %d of %d bytes: %v", name, i, len(data), err)
			}
		}
	}
}

func TestEncodeErrors(t *testing.T) {
	tests := []struct {
		edit  func(*layout.Form)
		field string
	}{
		{func(f *layout.Form) { f.NumSnim = "" }, "NumSnim"},
		{func(f *layout.Form) { f.Created = time.Time{} }, "Created"},
		{func(f *layout.Form) { f.Saved = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) }, "Saved"},
		{func(f *layout.Form) { f.Marks = -1 }, "Marks/@count"},
		{func(f *layout.Form) { f.SuspicionReason = " " }, "SuspicionReason"},
		{func(f *layout.Form) { f.Decision = 7 }, "Decision"},
		{func(f *layout.Form) { f.Containers[1].Direction = 9 }, "Container[2]/Direction"},
		{func(f *layout.Form) { f.Country = "\x01" }, "Vehicle/Country"},
		{func(f *layout.Form) { f.Country = "\xff" }, "Vehicle/Country"},
		{func(f *layout.Form) { f.CustomsInfo3 = strings.Repeat("x", MaxField+1) }, "Vehicle/CustomsInfo3"},
	}
	for _, tt := range tests {
		f := fullForm()
		tt.edit(f)
		_, err := EncodeForm(f)
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != tt.field {
			t.Errorf("EncodeForm: err = %v, want a FieldError for %s", err, tt.field)
		}
	}
}

func TestEncodeOddZone(t *testing.T) {
	// Local mean time offsets have seconds, which RFC 3339 cannot write.
	f := fullForm()
	f.Saved = time.Date(1880, 1, 1, 12, 0, 0, 0, time.FixedZone("LMT", 2*3600+30*60+17))
	got, err := ParseForm("form.xml", mustEncode(t, f))
	if err != nil {
		t.Fatal(err)
	}
	if !got.Saved.Equal(f.Saved) {
		t.Errorf("Saved = %v, want %v", got.Saved, f.Saved)
	}
}

func FuzzParseForm(f *testing.F) {
	f.Add(mustEncode(f, fullForm()))
	f.Add([]byte(utf8Form))
	f.Add([]byte(utf8Form[:len(utf8Form)/2]))
	f.Add([]byte(`<?xml version="1.0" encoding="windows-1251"?><CargoRIWForm version="1"><NumSnim>1</NumSnim><Created>2017-01-04T10:15:00Z</Created></CargoRIWForm>`))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		form, err := ParseForm("form.xml", data)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "form.xml: ") {
				t.Fatalf("error %q does not name the file", err)
			}
			return
		}
		// Whatever parses must survive a round trip unchanged.
		again, err := EncodeForm(form)
		if err != nil {
			t.Fatalf("EncodeForm of a parsed form: %v", err)
		}
		back, err := ParseForm("form.xml", again)
		if err != nil {
			t.Fatalf("ParseForm of the re-encoded form: %v\n%s", err, again)
		}
		if !sameForm(back, form) {
			t.Fatalf("round trip changed the form\n got %+v\nwant %+v", back, form)
		}
	})
}
