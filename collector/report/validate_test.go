package report

import (
	"errors"
	"maps"
	"strings"
	"testing"

	"idk/protocol/codes"
)

// valCase is one row of one table and what Add must say of it: "" for
// accepted, else a substring of the error.
type valCase struct {
	name  string
	table int
	set   map[string]string // over the table's valid row; "" removes a field
	want  string
}

func valRow(table int, set map[string]string) map[string]string {
	var r map[string]string
	switch table {
	case 2:
		r = entRow2()
	case 5:
		r = entRow5("27.11.2026")
	case 6:
		r = entRow6("20.11.2026")
	}
	for k, v := range set {
		if v == "" {
			delete(r, k)
		} else {
			r[k] = v
		}
	}
	return r
}

func runValCases(t *testing.T, cases []valCase) {
	t.Helper()
	f := newEntFixture(t)
	for _, c := range cases {
		out, err := f.e.Add(c.table, []map[string]string{valRow(c.table, c.set)}, "ПЕТРОВ")
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: refused: %v", c.name, err)
		case c.want != "" && err == nil:
			t.Errorf("%s: accepted %v, want %q", c.name, out[0].Fields, c.want)
		case c.want != "" && !strings.Contains(err.Error(), c.want):
			t.Errorf("%s: %v\n\twant %q", c.name, err, c.want)
		case c.want != "" && !errors.Is(err, ErrEntryRefused):
			t.Errorf("%s: %v is not a refusal", c.name, err)
		}
	}
}

func TestValidateErrorNamesTableRowField(t *testing.T) {
	f := newEntFixture(t)
	rows := []map[string]string{entRow2(), entRow2(), valRow(2, map[string]string{"REZ": "9"})}
	_, err := f.e.Add(2, rows, "ПЕТРОВ")
	if err == nil || err.Error() != `table 2, row 3, field REZ: "9" is not a code of REZ (table 2): want 1-8` {
		t.Fatalf("got %v", err)
	}
	var es EntryErrors
	if !errors.As(err, &es) || len(es) != 1 || es[0].Table != 2 || es[0].Row != 3 || es[0].Field != "REZ" {
		t.Fatalf("structure: %#v", es)
	}
	// Many errors: all are kept, the message is bounded.
	var many []map[string]string
	for range 15 {
		many = append(many, valRow(5, map[string]string{"LNP": "A"}))
	}
	_, err = f.e.Add(5, many, "ПЕТРОВ")
	if !errors.As(err, &es) || len(es) != 15 || !strings.HasSuffix(err.Error(), "; and 5 more") {
		t.Fatalf("many: %d %v", len(es), err)
	}
}

func TestValidateFieldsAndFormats(t *testing.T) {
	runValCases(t, []valCase{
		{"valid table 2", 2, nil, ""},
		{"valid table 5", 5, nil, ""},
		{"valid table 6", 6, nil, ""},
		{"unknown field", 5, map[string]string{"KOL_VO_X": "1"}, "table 5, row 1, field KOL_VO_X: not a field of table 5"},
		{"field of another table", 5, map[string]string{"REZ": "1"}, "field REZ: not a field of table 5"},
		{"lower-case field name", 5, map[string]string{"fio": "ИВАНОВ"}, "field fio: not a field of table 5: field names are upper case (FIO)"},
		{"lower-case text refused", 6, map[string]string{"OPISANIE": "Груз не заявлен"}, `field OPISANIE: "Груз не заявлен" has lower-case letters`},
		{"lower-case latin refused", 2, map[string]string{"NAIM_ORG": "OOO Elka"}, "field NAIM_ORG"},
		{"NUM_STAT lower case as the examples", 2, map[string]string{"NUM_STAT": "ч. 3 ст. 16.1 КОАП РФ"}, "field NUM_STAT"},
		{"blanks trimmed", 5, map[string]string{"FIO": "  ИВАНОВ ИВАН  "}, ""},
		{"control character", 6, map[string]string{"OPISANIE": "СТРОКА\nВТОРАЯ"}, "field OPISANIE: \"СТРОКА\\nВТОРАЯ\" has the control character U+000A"},
		{"too long", 6, map[string]string{"OPISANIE": strings.Repeat("А", maxValueRunes+1)}, "at most 2000"},
		{"KOD_TO 7 digits", 5, map[string]string{"KOD_TO": "1021610"}, `field KOD_TO: "1021610" is not a customs body code: want 8 digits`},
		{"KOD_TO 9 digits", 5, map[string]string{"KOD_TO": "102161000"}, "field KOD_TO"},
		{"KOD_TO letters", 5, map[string]string{"KOD_TO": "1021610A"}, "field KOD_TO"},
		{"date 31 November", 5, map[string]string{"DATE_SYS": "31.11.2026"}, `field DATE_SYS: "31.11.2026" is not a date: want DD.MM.YYYY`},
		{"date 29 February, not leap", 5, map[string]string{"DATE_SYS": "29.02.2027"}, "field DATE_SYS"},
		{"date 29 February, leap", 5, map[string]string{"DATE_SYS": "29.02.2028"}, ""},
		{"date ISO", 5, map[string]string{"DATE_SYS": "2026-11-27"}, "field DATE_SYS"},
		{"date one digit", 5, map[string]string{"DATE_SYS": "7.11.2026"}, "field DATE_SYS"},
		{"date year out of range", 5, map[string]string{"DATE_SYS": "27.11.0226"}, "the year 226 is out of range"},
		{"count negative", 5, map[string]string{"KOL_VO_NAR": "-1"}, `field KOL_VO_NAR: "-1" is not a non-negative integer`},
		{"count fraction", 5, map[string]string{"KOL_VO_PR_SNIM": "1,5"}, "field KOL_VO_PR_SNIM"},
		{"count too big", 5, map[string]string{"KOL_VO_PR_SNIM": "1234567890"}, "field KOL_VO_PR_SNIM"},
		{"count zero", 5, map[string]string{"KOL_VO_EPR": "0"}, ""},
		{"LNP letters", 5, map[string]string{"LNP": "28A"}, `field LNP: "28A" is not an ЛНП number`},
		{"LNP leading zero kept", 5, map[string]string{"LNP": "056"}, ""},
		{"KOD_TEH one digit", 2, map[string]string{"KOD_TEH": "1"}, `field KOD_TEH: "1" is not a code of KOD_TEH: want 01-05, 07, 09-11, 19-21, 99`},
		{"KOD_TEH 06 does not exist", 2, map[string]string{"KOD_TEH": "06"}, "field KOD_TEH"},
		{"KOD_TEH 99", 2, map[string]string{"KOD_TEH": "99"}, ""},
		{"NAIM_DOK 11", 2, map[string]string{"NAIM_DOK": "11"}, `field NAIM_DOK: "11" is not a code of DOC_TYPE / NAIM_DOK: want 1-10`},
		{"NAIM_DOK a name", 2, map[string]string{"NAIM_DOK": "ДТ"}, "field NAIM_DOK"},
		{"NAIM_DOK 10", 2, map[string]string{"NAIM_DOK": "10"}, ""},
		{"NAPR 3", 2, map[string]string{"NAPR": "3"}, `field NAPR: "3" is not a code of NAPR: want 1-2`},
		{"TYPE_IDK 3", 2, map[string]string{"TYPE_IDK": "3"}, "field TYPE_IDK"},
		{"DISL_IDK 6", 2, map[string]string{"DISL_IDK": "6"}, "field DISL_IDK"},
		{"REZ table 2 is 1-8", 2, map[string]string{"REZ": "0"}, `field REZ: "0" is not a code of REZ (table 2): want 1-8`},
		{"REZ table 6 is 0-14", 6, map[string]string{"REZ": "15"}, `field REZ: "15" is not a code of REZ (table 6): want 0-14`},
		{"REZ table 6 14", 6, map[string]string{"REZ": "14", "DATE_SYS_R": "20.11.2026"}, ""},
		{"NUM_PR 4 digits", 2, map[string]string{"NUM_PR": "1236"}, `field NUM_PR: "1236" is not a risk profile number: want 5 digits`},
		{"NUM_PR 6 digits", 2, map[string]string{"NUM_PR": "123612"}, "field NUM_PR"},
		{"KOD_TNVED 10 digits", 2, map[string]string{"KOD_TNVED": "0101010000"}, `field KOD_TNVED: "0101010000" is not a ТН ВЭД code: want 6 digits`},
		{"KOD_TNVED spaces", 2, map[string]string{"KOD_TNVED": "0101 01"}, "field KOD_TNVED"},
		{"decimal comma", 2, map[string]string{"KONF": "5225,52"}, ""},
		{"decimal currency", 2, map[string]string{"STOIM": "96532,3 РУБ"}, `field STOIM: "96532,3 РУБ" is not a number: want digits with an optional decimal comma`},
		{"decimal thousands", 2, map[string]string{"STOIM": "96 532,3"}, "field STOIM"},
		{"decimal two commas", 2, map[string]string{"SUMM_PLAT": "1,2,3"}, "field SUMM_PLAT"},
		{"decimal negative", 2, map[string]string{"SUMM_SHT": "-5"}, "field SUMM_SHT"},
		{"NUM_SNIM dashes", 6, map[string]string{"NUM_SNIM": "2017-0104"}, `field NUM_SNIM: "2017-0104": want 1-40 letters and digits`},
		{"NUM_SNIM 21 characters", 6, map[string]string{"NUM_SNIM": "70001DJ01201701020002"}, ""},
	})
}

func TestValidateDecimalDotStoredAsComma(t *testing.T) {
	f := newEntFixture(t)
	out, err := f.e.Add(2, []map[string]string{valRow(2, map[string]string{"STOIM": "6500.45", "KONF": "5225"})}, "ПЕТРОВ")
	if err != nil {
		t.Fatal(err)
	}
	if out[0].Fields["STOIM"] != "6500,45" || out[0].Fields["KONF"] != "5225" {
		t.Fatalf("fields: %v", out[0].Fields)
	}
}

func TestValidateTable2Rules(t *testing.T) {
	runValCases(t, []valCase{
		{"NUM_SNIM required", 2, map[string]string{"NUM_SNIM": ""}, "table 2, row 1, field NUM_SNIM: required"},
		{"REZ required", 2, map[string]string{"REZ": ""}, "field REZ: required"},
		{"DATE_VOZB required for 1", 2, map[string]string{"REZ": "1", "DATE_VOZB": ""}, "field DATE_VOZB: required for REZ 1 (АП)"},
		{"DATE_VOZB required for 2", 2, map[string]string{"REZ": "2", "DATE_VOZB": ""}, "field DATE_VOZB: required for REZ 2 (УД)"},
		{"DATE_VOZB required for 3", 2, map[string]string{"REZ": "3", "DATE_VOZB": "", "NUM_DELA": ""}, "field DATE_VOZB: required for REZ 3"},
		{"DATE_VOZB required for 6", 2, map[string]string{"REZ": "6", "DATE_VOZB": "", "NUM_DELA": ""}, "field DATE_VOZB: required for REZ 6"},
		{"DATE_VOZB required for 8", 2, map[string]string{"REZ": "8", "DATE_VOZB": "", "NUM_DELA": ""}, "field DATE_VOZB: required for REZ 8 (Д)"},
		{"DATE_VOZB empty for 4", 2, map[string]string{"REZ": "4", "NUM_DELA": ""}, "field DATE_VOZB: must be empty for REZ 4 (НС)"},
		{"DATE_VOZB absent for 4", 2, map[string]string{"REZ": "4", "NUM_DELA": "", "DATE_VOZB": ""}, ""},
		{"DATE_VOZB given for 5", 2, map[string]string{"REZ": "5", "NUM_DELA": ""}, ""},
		{"DATE_VOZB absent for 5", 2, map[string]string{"REZ": "5", "NUM_DELA": "", "DATE_VOZB": ""}, ""},
		{"bad DATE_VOZB not also missing", 2, map[string]string{"DATE_VOZB": "32.11.2026"}, `field DATE_VOZB: "32.11.2026" is not a date`},
		{"NUM_DELA for 2", 2, map[string]string{"REZ": "2"}, ""},
		{"NUM_DELA empty for 3", 2, map[string]string{"REZ": "3"}, "field NUM_DELA: must be empty for REZ 3 (З)"},
		{"NUM_DELA empty for 7", 2, map[string]string{"REZ": "7"}, "field NUM_DELA: must be empty for REZ 7 (П)"},
		{"identity agrees", 2, map[string]string{"KOD_TO": "10216100", "NAIM_TO": "БЕЛГОРОДСКАЯ", "DATE_SYS": "27.11.2026"}, ""},
		{"KOD_TO disagrees", 2, map[string]string{"KOD_TO": "10216200"}, `field KOD_TO: "10216200" disagrees with scan 201701040006080003, recorded with KOD_TO "10216100"`},
		{"DATE_SYS disagrees", 2, map[string]string{"DATE_SYS": "26.11.2026"}, "field DATE_SYS: \"26.11.2026\" disagrees"},
		{"TYPE_IDK disagrees", 2, map[string]string{"TYPE_IDK": "1"}, "field TYPE_IDK"},
		{"NUM_IDK of another ИДК", 2, map[string]string{"NUM_IDK": "850592"}, "fields KOD_TO, NAIM_TO, NAIM_ZTK, TYPE_IDK, DISL_IDK, DATE_SYS: required: scan 201701040006080003 is not recorded by ИДК 850592"},
		{"unknown scan", 2, map[string]string{"NUM_SNIM": "201701040006080099", "KOD_TO": "10216100"}, "table 2, row 1, fields NAIM_TO, NAIM_ZTK, TYPE_IDK, NUM_IDK, DISL_IDK, DATE_SYS: required: scan 201701040006080099 is not recorded by any ИДК"},
		{"unknown scan, all given", 2, map[string]string{"NUM_SNIM": "201701040006080099", "KOD_TO": "10216100", "NAIM_TO": "БЕЛГОРОДСКАЯ",
			"NAIM_ZTK": "МАПП НЕХОТЕЕВКА", "TYPE_IDK": "2", "NUM_IDK": "850591", "DISL_IDK": "1", "DATE_SYS": "20.11.2026"}, ""},
	})
}

func TestValidateTable2ScanWithoutSomeIdentity(t *testing.T) {
	f := newEntFixture(t)
	f.scans.add("5555", ScanIdentity{NumIDK: "850591", KodTO: "10216100", Date: entDay(27)})
	_, err := f.e.Add(2, []map[string]string{valRow(2, map[string]string{"NUM_SNIM": "5555", "NAIM_TO": "БЕЛГОРОДСКАЯ"})}, "ПЕТРОВ")
	if err == nil || err.Error() != "table 2, row 1, fields NAIM_ZTK, TYPE_IDK, DISL_IDK: required: scan 5555 was recorded without them" {
		t.Fatalf("got %v", err)
	}
	// Two ИДК with one image number: NUM_IDK tells them apart.
	other := entScan
	other.NumIDK = "850592"
	f.scans.add("201701040006080003", other)
	if _, err := f.e.Add(2, []map[string]string{entRow2()}, "ПЕТРОВ"); err == nil || !strings.Contains(err.Error(), "or by more than one: give NUM_IDK") {
		t.Fatalf("ambiguous: %v", err)
	}
	out, err := f.e.Add(2, []map[string]string{valRow(2, map[string]string{"NUM_IDK": "850592"})}, "ПЕТРОВ")
	if err != nil || out[0].Fields["NUM_IDK"] != "850592" {
		t.Fatalf("with NUM_IDK: %v", err)
	}
}

func TestValidateTable5Rules(t *testing.T) {
	runValCases(t, []valCase{
		{"KOD_TO required", 5, map[string]string{"KOD_TO": ""}, "table 5, row 1, field KOD_TO: required"},
		{"DATE_SYS required", 5, map[string]string{"DATE_SYS": ""}, "field DATE_SYS: required"},
		{"FIO required", 5, map[string]string{"FIO": ""}, "field FIO: required"},
		{"LNP required", 5, map[string]string{"LNP": " "}, "field LNP: required"},
		{"counts optional", 5, map[string]string{"KOL_VO_PR_SNIM": "", "KOL_VO_NAR": ""}, ""},
		{"KOL_VO_PROV optional", 5, map[string]string{"KOL_VO_PROV": "3"}, ""},
		{"KOL_VO_PROV an integer", 5, map[string]string{"KOL_VO_PROV": "ТРИ"}, "field KOL_VO_PROV"},
	})
}

func TestValidateTable6Rules(t *testing.T) {
	cases := []valCase{
		{"DATE_SYS_R empty for REZ 0", 6, map[string]string{"DATE_SYS_R": "21.11.2026"}, "field DATE_SYS_R: must be empty for REZ 0"},
		{"DATE_SYS_R required for 1", 6, map[string]string{"REZ": "1"}, "table 6, row 1, field DATE_SYS_R: required for REZ 1"},
		{"DATE_SYS_R same day", 6, map[string]string{"REZ": "8", "DATE_SYS_R": "20.11.2026"}, ""},
		{"DATE_SYS_R before DATE_SYS_V", 6, map[string]string{"REZ": "9", "DATE_SYS_R": "19.11.2026"}, "field DATE_SYS_R: 19.11.2026 is before DATE_SYS_V 20.11.2026"},
		{"DATE_SYS_R before, across years", 6, map[string]string{"REZ": "9", "DATE_SYS_V": "02.01.2027", "DATE_SYS_R": "31.12.2026"}, "is before DATE_SYS_V"},
	}
	for _, n := range []string{"KOD_TO", "DATE_SYS_V", "NUM_SNIM", "OPISANIE", "REZ", "FIO", "LNP"} {
		cases = append(cases, valCase{n + " required", 6, map[string]string{n: ""}, "field " + n + ": required"})
	}
	runValCases(t, cases)
}

func TestValidateCodeRanges(t *testing.T) {
	for _, c := range []struct {
		t    *codes.Table
		want string
	}{{&codes.Rez2, "1-8"}, {&codes.Rez6, "0-14"}, {&codes.KodTeh, "01-05, 07, 09-11, 19-21, 99"}, {&codes.Napr, "1-2"}} {
		if got := codeRanges(c.t); got != c.want {
			t.Errorf("%s: %q, want %q", c.t.Field, got, c.want)
		}
	}
}

func TestValidateCountsFieldsAreTable3s(t *testing.T) {
	if len(countFields) != 24 {
		t.Fatalf("%d count fields", len(countFields))
	}
	all := map[string]bool{}
	for _, c := range Table3.Columns {
		if strings.HasPrefix(c.Name, "OKO_") || strings.HasPrefix(c.Name, "KOVR_") {
			all[c.Name] = true
		}
	}
	if !maps.Equal(all, countFields) {
		t.Fatalf("count fields %v, table 3 %v", countFields, all)
	}
}
