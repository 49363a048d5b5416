package report

import (
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"

	"idk/collector/cases"
	"idk/protocol/codes"
	"idk/protocol/idkpb"
)

// Table 1 «Сведения об осмотре ИДК»: one row per scan, from three sources:
// the agent's events (ScanSeen, FormRevision: the scan journal), the
// inspection case of the scan (cases.ScanFacts: the kind of scan and the
// risk profile) and the roster (the operator's Ф.И.О. and ЛНП).
//
//	#  field         source
//	1  KOD_TO        the ИДК's hello (registry-checked) when the scan was seen
//	2  NAIM_TO       the site in force at the scan's time (below); else the hello
//	3  NAIM_ZTK      the site; else the hello
//	4  TYPE_IDK      the hello
//	5  NUM_IDK       the hello
//	6  DISL_IDK      the site; else the hello
//	7  DATE_SYS      the scan's date in the report's zone: the collector time of
//	                 ScanSeen, or of the form (its Created, corrected by the
//	                 agent's clock offset) when no ScanSeen came
//	8  TIME_AN_SNIM  whole minutes from the form's Created to its Saved (latest
//	                 revision), rounded to the nearest minute, at least 0;
//	                 empty while the form is not saved
//	9  VER_SCAN      the case's kind of scan (staff said it, cases.ScanKind); else
//	                 1 (СКАНИРОВАНИЕ) when the form has a decision; else empty
//	10 KOD_TEH       the case's risk profile (risk_detected), as reported
//	11 VID_PR        the risk profile
//	12 KOD_TO_PR     the risk profile
//	13 DATE_REG      the risk profile
//	14 NUM_PR        the risk profile
//	15 NAPR          the first container tab's tick: Импорт 1, Экспорт 2;
//	                 Транзит or none: empty (NAPR has no transit code)
//	16 DOC_TYPE      the risk profile (DOC_TYPE code, 1-10)
//	17 DOC_NUM       «Доп Там Инфо1»: the first ДТ-shaped number (8/6/7 digits,
//	                 as transit declarations are numbered too; cases.ParseDocs
//	                 keeps them whole); else empty: a waybill, CMR or TIR
//	                 carnet number is not a DOC_TYPE document. Not required
//	18 STRANA_OTP    the first container tab's «Из»
//	19 STRANA_NAZ    the first container tab's «В»
//	20 KOD_TNVED     the first container tab's «Груз», without spaces
//	21 NAIM_TOV      the upper comment (A3 §5: the goods' name)
//	22 VES_TP        no source in this system: empty
//	23 VES_TOV       no source: empty
//	24 NAIM_PER      empty: «Доп Там Инфо2» names the carrier, the sender or the
//	                 recipient (A3 §2) without saying which, so it could fill
//	                 NAIM_PER or NAIM_OTP_POL only by a guess
//	25 INN_PER       no source: empty
//	26 FIO_VODIT     no source: empty
//	27 NAIM_OTP_POL  empty (see NAIM_PER)
//	28 INN_OTP_POL   no source: empty
//	29 VID_TS        the form's «Вид ТС» (our site's field, docs/cargoriw-layout.md)
//	30 NUM_TS        «Ид. номер прицепа», first number: the tractor's plate
//	31 NUM_P_TS      «Ид. номер прицепа», second number: the trailer's plate
//	32 NUM_CONT      the first container tab's «N контейнера» when it is a
//	                 container number (ISO 6346: 4 letters, 7 digits); else empty,
//	                 as the tab then holds the vehicle's plate (A3 §3)
//	33 NUM_OB        no source: empty
//	34 NUM_SNIM      the scan
//	35 OS_OTM        1 when the form has «Пометка» marks, else 0; empty without a form
//	36 PRIM          the lower comment
//	37 REZ           the form's decision: 1 без подозрений, 2 под подозрением
//	38 FIO_OPER      the roster's officer for the form's operator login
//	39 LNP_OPER      the roster's officer
//
// The row is the ИДК where it made the scan: the site is that of the
// agent's latest StateChange with a site at or before the scan's time (a
// change without one leaves the ИДК where it stood), so a mobile ИДК's
// scans before and after a move show the two sites, whenever their events
// arrive. A site field left empty falls back to the hello's. KOD_TO is
// never the site's: the registry binds the hello's KOD_TO to the agent,
// and a site naming another KOD_TO is not taken at all (the hello's names
// stay), so that no agent can put rows into another customs office's
// report.
//
// «Ид. номер прицепа» is split on "/", "," or ";"; without any of them, on
// white space only when that gives exactly two numbers (a plate typed with
// spaces, "А 654 АА 777", stays one number). Plates, container and goods
// codes are written without spaces or dashes. All text is upper case (A4
// rule 4), and free text (comments, names) is one line: runs of white
// space, line breaks included, become one space.
//
// A row is incomplete (Missing) when a field it needs is empty. Every row
// needs the identity, DATE_SYS, NUM_SNIM and VER_SCAN. A scan of an object
// (VER_SCAN 1, 3, 4, or not known) also needs TIME_AN_SNIM, NAPR, VID_TS,
// REZ, FIO_OPER, LNP_OPER, and NUM_TS or NUM_CONT (both are listed when
// both are empty: either one completes the row). A radiation control (2)
// or test scan (5) inspects no object and needs nothing more. The risk
// fields (KOD_TEH, VID_PR, KOD_TO_PR, DATE_REG, NUM_PR, DOC_TYPE) are all
// or none: a profile reported in part lists the rest. DOC_NUM is never
// required: an object may travel without a ДТ or transit declaration.

// FactSource is what table 1 takes from the case engine (*cases.Engine
// implements it).
type FactSource interface {
	ScanFacts(numIDK, numSnim string) (cases.ScanFacts, bool, error)
}

// scanForm is the table 1 fields a form revision gives, already in
// their cell form, and the operator's login (the roster is read when the
// report is built, so that a correction of the roster applies to every
// day). It is what the scan journal stores of a form: a few hundred bytes,
// not the XML.
type scanForm struct {
	TimeAn   string `json:"ta,omitempty"` // TIME_AN_SNIM
	Napr     string `json:"na,omitempty"`
	DocNum   string `json:"dn,omitempty"`
	From     string `json:"so,omitempty"` // STRANA_OTP
	To       string `json:"sn,omitempty"` // STRANA_NAZ
	TNVED    string `json:"tn,omitempty"` // KOD_TNVED
	Goods    string `json:"nt,omitempty"` // NAIM_TOV
	VidTS    string `json:"vt,omitempty"`
	NumTS    string `json:"ts,omitempty"`
	NumPTS   string `json:"pt,omitempty"`
	NumCont  string `json:"nc,omitempty"`
	OsOtm    string `json:"oo,omitempty"`
	Prim     string `json:"pr,omitempty"`
	Rez      string `json:"rz,omitempty"`
	Operator string `json:"op,omitempty"` // the login, for the roster
}

// t1ContainerRE is an ISO 6346 container number: owner code, category,
// serial number and check digit.
var t1ContainerRE = regexp.MustCompile(`^[A-Z]{4}[0-9]{7}$`)

// t1FormFields maps a parsed form to its table 1 fields.
func t1FormFields(f *idkpb.Form) scanForm {
	var ff scanForm
	if c, s := f.GetCreatedUnixNano(), f.GetSavedUnixNano(); c != 0 && s != 0 {
		m := max(time.Duration(s-c).Round(time.Minute)/time.Minute, 0)
		ff.TimeAn = strconv.FormatInt(int64(m), 10)
	}
	var c1 *idkpb.Container
	if cs := f.GetContainers(); len(cs) > 0 {
		c1 = cs[0]
	}
	switch c1.GetDirection() {
	case idkpb.Direction_DIRECTION_IMPORT:
		ff.Napr = "1"
	case idkpb.Direction_DIRECTION_EXPORT:
		ff.Napr = "2"
	}
	for _, d := range cases.ParseDocs(f.GetCustomsInfo1()) {
		if strings.Contains(d, "/") { // ParseDocs keeps only ДТ-shaped runs whole
			ff.DocNum = d
			break
		}
	}
	ff.From, ff.To = t1Text(c1.GetFrom()), t1Text(c1.GetTo())
	ff.TNVED = t1Compact(c1.GetCargo())
	ff.Goods = t1Text(f.GetCommentUpper())
	if v := f.GetVidTs(); codes.VidTS.Valid(int(v)) {
		ff.VidTS = strconv.Itoa(int(v))
	}
	ff.NumTS, ff.NumPTS = t1Plates(f.GetTrailerId())
	if n := t1Compact(c1.GetNumber()); t1ContainerRE.MatchString(n) {
		ff.NumCont = n
	}
	ff.OsOtm = "0"
	if f.GetMarks() > 0 {
		ff.OsOtm = "1"
	}
	ff.Prim = t1Text(f.GetCommentLower())
	switch f.GetDecision() {
	case idkpb.Decision_DECISION_NOT_SUSPECTED:
		ff.Rez = "1"
	case idkpb.Decision_DECISION_SUSPECTED:
		ff.Rez = "2"
	}
	ff.Operator = strings.TrimSpace(f.GetOperator())
	return ff
}

// t1Plates splits «Ид. номер прицепа» into the tractor's and the trailer's
// numbers (see the table above).
func t1Plates(s string) (ts, pts string) {
	var parts []string
	if strings.ContainsAny(s, "/,;") {
		parts = strings.FieldsFunc(s, func(r rune) bool { return r == '/' || r == ',' || r == ';' })
	} else if f := strings.Fields(s); len(f) == 2 {
		parts = f
	} else {
		parts = []string{s}
	}
	var nums []string
	for _, p := range parts {
		if p = t1Compact(p); p != "" {
			nums = append(nums, p)
		}
	}
	if len(nums) > 0 {
		ts = nums[0]
	}
	if len(nums) > 1 {
		pts = nums[1]
	}
	return ts, pts
}

// t1Compact writes an identifier as the report does: upper case, without
// spaces or dashes.
func t1Compact(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) || unicode.Is(unicode.Pd, r) {
			return -1
		}
		return unicode.ToUpper(r)
	}, s)
}

// t1Text writes free text as the report does: upper case, on one line.
func t1Text(s string) string { return strings.ToUpper(strings.Join(strings.Fields(s), " ")) }

// table1Index is each table 1 field's position: a month's rows look
// fields up by name tens of millions of times.
var table1Index = func() map[string]int {
	m := make(map[string]int, len(Table1.Columns))
	for i, c := range Table1.Columns {
		m[c.Name] = i
	}
	return m
}()

// t1RiskFields are table 1's risk section and DOC_TYPE: all or none.
var t1RiskFields = []string{"KOD_TEH", "VID_PR", "KOD_TO_PR", "DATE_REG", "NUM_PR", "DOC_TYPE"}

// t1ObjectFields are what a scan of an object needs besides the identity.
var t1ObjectFields = []string{"TIME_AN_SNIM", "NAPR", "VID_TS", "REZ", "FIO_OPER", "LNP_OPER"}

// t1RequiredFields are what every row needs.
var t1RequiredFields = []string{"KOD_TO", "NAIM_TO", "NAIM_ZTK", "TYPE_IDK", "NUM_IDK", "DISL_IDK", "DATE_SYS", "VER_SCAN", "NUM_SNIM"}

// row1 builds a table 1 row from what the journal holds of a scan, its
// case's facts (ok false: no case) and the roster, with the fields nobody
// supplied (nil when complete).
func row1(s *scanRow, loc *time.Location, facts cases.ScanFacts, roster Roster) (Row, *Missing) {
	r := make(Row, len(Table1.Columns))
	set := func(name, v string) { r[table1Index[name]] = v }
	get := func(name string) string { return r[table1Index[name]] }
	num := func(n uint32) string {
		if n == 0 {
			return ""
		}
		return strconv.FormatUint(uint64(n), 10)
	}
	set("KOD_TO", t1Compact(s.KodTO))
	set("NAIM_TO", t1Text(s.NaimTO))
	set("NAIM_ZTK", t1Text(s.NaimZTK))
	set("TYPE_IDK", num(s.TypeIDK))
	set("NUM_IDK", s.NumIDK)
	set("DISL_IDK", num(s.DislIDK))
	set("DATE_SYS", FormatDate(s.At.In(loc)))
	set("NUM_SNIM", s.NumSnim)

	f := s.Form
	verScan := int(facts.VerScan)
	if verScan == 0 && f.Rez != "" {
		verScan = int(cases.ScanObject)
	}
	if verScan != 0 {
		set("VER_SCAN", strconv.Itoa(verScan))
	}
	p := facts.Risk
	set("KOD_TEH", strings.TrimSpace(p.KodTeh))
	set("VID_PR", strings.TrimSpace(p.VidPr))
	set("KOD_TO_PR", strings.TrimSpace(p.KodToPr))
	set("DATE_REG", strings.TrimSpace(p.DateReg))
	set("NUM_PR", strings.TrimSpace(p.NumPr))
	if p.DocType != 0 {
		set("DOC_TYPE", strconv.Itoa(p.DocType))
	}

	set("TIME_AN_SNIM", f.TimeAn)
	set("NAPR", f.Napr)
	set("DOC_NUM", f.DocNum)
	set("STRANA_OTP", f.From)
	set("STRANA_NAZ", f.To)
	set("KOD_TNVED", f.TNVED)
	set("NAIM_TOV", f.Goods)
	set("VID_TS", f.VidTS)
	set("NUM_TS", f.NumTS)
	set("NUM_P_TS", f.NumPTS)
	set("NUM_CONT", f.NumCont)
	set("OS_OTM", f.OsOtm)
	set("PRIM", f.Prim)
	set("REZ", f.Rez)
	if roster != nil && f.Operator != "" {
		if o, ok := roster.Officer(f.Operator); ok {
			set("FIO_OPER", t1Text(o.FIO))
			set("LNP_OPER", strings.TrimSpace(o.LNP))
		}
	}

	var missing []string
	need := func(names ...string) {
		for _, n := range names {
			if get(n) == "" {
				missing = append(missing, n)
			}
		}
	}
	need(t1RequiredFields...)
	if k := cases.ScanKind(verScan); k != cases.ScanRadiation && k != cases.ScanTest {
		need(t1ObjectFields...)
		if get("NUM_TS") == "" && get("NUM_CONT") == "" {
			missing = append(missing, "NUM_TS", "NUM_CONT")
		}
	}
	for _, n := range t1RiskFields {
		if get(n) != "" {
			need(t1RiskFields...)
			break
		}
	}
	if len(missing) == 0 {
		return r, nil
	}
	// In the table's order, whatever order the rules found them in.
	ordered := make([]string, 0, len(missing))
	for _, c := range Table1.Columns {
		for _, m := range missing {
			if m == c.Name {
				ordered = append(ordered, m)
				break
			}
		}
	}
	return r, &Missing{NumIDK: s.NumIDK, NumSnim: s.NumSnim, Date: get("DATE_SYS"), Fields: ordered}
}
