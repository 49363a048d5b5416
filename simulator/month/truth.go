package month

import (
	"cmp"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"idk/collector/report"
	"idk/protocol/idkpb"
)

// This file is the month's ground truth: what each table of the daily
// report must hold, derived from the plan by the rules as the domain
// reference states them (§8 field by field) and the product's decisions
// where the source is silent. Only the column lists of collector/report
// are used, for the names and order of the columns.

// prepareTruth computes what Expected selects from, once: the month does
// not change after Generate, so Expected only reads and is safe for
// concurrent use.
func (m *Month) prepareTruth() {
	m.bySnim = map[string]*scan{}
	for _, s := range m.scans {
		m.bySnim[s.numSnim] = s
	}
	ss := slices.Clone(m.scans)
	key := func(s *scan) string { return s.scanAt.Format("20060102") }
	slices.SortStableFunc(ss, func(a, b *scan) int {
		return cmp.Or(strings.Compare(key(a), key(b)), strings.Compare(a.dev.dev.NumIDK(), b.dev.dev.NumIDK()), a.scanAt.Compare(b.scanAt))
	})
	m.rows1 = make([]scanRow, len(ss))
	for i, s := range ss {
		m.rows1[i] = scanRow{s, ordered(1, m.scanRow(s))}
	}
	m.rows3 = map[string][]map[string]string{}
	for _, d := range m.devs {
		for i := range m.Days {
			day := m.Start.AddDate(0, 0, i)
			m.rows3[d.dev.NumIDK()+"/"+day.Format("20060102")] = m.dayRows(d, day)
		}
	}
}

// Expected is the content of the daily report of customs office kodTO for
// the day that starts at day: per table number 1-6, its rows below the
// header, cumulative from the 1st of the month to day (A4 rule 3), each
// row in the column order of the table in collector/report. It is safe
// for concurrent use.
func (m *Month) Expected(kodTO string, day time.Time) map[int][][]string {
	day = midnight(day)
	next := day.AddDate(0, 0, 1)
	return map[int][][]string{
		1: m.table1(kodTO, next),
		2: m.table2(kodTO, next),
		3: m.table3(kodTO, day),
		4: m.table4(kodTO, next),
		5: m.entryRows(5, kodTO, next),
		6: m.entryRows(6, kodTO, next),
	}
}

// Header is the header row of table n: its field names.
func Header(n int) []string {
	t := report.Tables[n-1]
	h := make([]string, len(t.Columns))
	for i, c := range t.Columns {
		h[i] = c.Name
	}
	return h
}

// Column is the position of field name in table n, or -1.
func Column(n int, name string) int { return report.Tables[n-1].Index(name) }

func midnight(t time.Time) time.Time {
	y, mo, d := t.Date()
	return time.Date(y, mo, d, 0, 0, 0, 0, t.Location())
}

// ordered writes a row given by field name in table n's column order;
// a field not given is empty.
func ordered(n int, f map[string]string) []string {
	t := report.Tables[n-1]
	row := make([]string, len(t.Columns))
	for i, c := range t.Columns {
		row[i] = f[c.Name]
	}
	for k := range f {
		if t.Index(k) < 0 {
			panic(fmt.Sprintf("month: table %d has no field %s", n, k))
		}
	}
	return row
}

// upper is A4 rule 4: text in upper case, without surrounding blanks.
func upper(s string) string { return strings.ToUpper(strings.TrimSpace(s)) }

// date is the regulation's DD.MM.YYYY.
func date(t time.Time) string { return t.Format("02.01.2006") }

// hm writes a table 3 duration: the total's whole minutes, rounded to the
// nearest (a half minute up), as hours, a comma and two digits of
// minutes ("13,50").
func hm(d time.Duration) string {
	m := (int64(d/time.Second) + 30) / 60
	return fmt.Sprintf("%d,%02d", m/60, m%60)
}

// hmUp writes a table 4 duration: partial minutes rounded up, so that a
// breach of 15 minutes by a second reads 0,16 (docs/cases.md).
func hmUp(d time.Duration) string {
	m := (int64(d/time.Second) + 59) / 60
	return fmt.Sprintf("%d,%02d", m/60, m%60)
}

// ---- Table 1: one row per scan ----

// table1 lists the office's scans made before until, ordered by DATE_SYS,
// NUM_IDK and scan time: the scans of the ИДК whose KOD_TO is the
// office's (see scanRow).
func (m *Month) table1(kodTO string, until time.Time) [][]string {
	var rows [][]string
	for _, r := range m.rows1 {
		if r.s.dev.dev.Hello.KodTo == kodTO && r.s.scanAt.Before(until) {
			rows = append(rows, r.row)
		}
	}
	return rows
}

// scanRow is a scan's table 1 row, computed once.
type scanRow struct {
	s   *scan
	row []string
}

var (
	iso6346 = regexp.MustCompile(`^[A-Z]{4}[0-9]{7}$`)
	dtShape = regexp.MustCompile(`^[0-9]{8}/[0-9]{6}/[0-9]{7}$`)
)

// stripped removes spaces and dashes: plates and container numbers are
// written without them (T1.30-32).
func stripped(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) || r == '-' {
			return -1
		}
		return unicode.ToUpper(r)
	}, s)
}

// dtOf finds the ДТ number in «Доп Там Инфо1»: three "/"-separated parts
// of 8, 6 and 7 digits, spaces removed.
func dtOf(info1 string) string {
	parts := strings.Split(strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) {
			return -1
		}
		return r
	}, info1), "/")
	for i := 0; i+2 < len(parts); i++ {
		if dt := strings.Join(parts[i:i+3], "/"); dtShape.MatchString(dt) {
			return dt
		}
	}
	return ""
}

func (m *Month) officer(login string) (Officer, bool) {
	for _, o := range m.Roster {
		if o.Login == login {
			return o, true
		}
	}
	return Officer{}, false
}

// scanRow is table 1's row of s, field by field (reference §8.1, with the
// product's decisions where the form is the source):
func (m *Month) scanRow(s *scan) map[string]string {
	f := s.forms[len(s.forms)-1] // the form as last saved
	dev := s.dev.dev
	r := map[string]string{
		// Основные данные: KOD_TO is always the ИДК's own customs body,
		// as its registry entry (the agent's hello) has it: an ИДК moves
		// only between places of its own office, a move to another office
		// being an administrator's change of the registry, not something
		// an agent declares. NAIM_TO, NAIM_ZTK and DISL_IDK are the site
		// the ИДК stood at when it made the scan; DATE_SYS the scan's date.
		"KOD_TO": dev.Hello.KodTo, "NAIM_TO": upper(s.site.NaimTO), "NAIM_ZTK": upper(s.site.NaimZTK),
		"TYPE_IDK": strconv.Itoa(int(dev.Hello.TypeIdk)), "NUM_IDK": dev.NumIDK(),
		"DISL_IDK": strconv.Itoa(int(s.site.Disl)), "DATE_SYS": date(s.scanAt),
		// TIME_AN_SNIM: minutes from the form's creation to its saving,
		// rounded to the nearest.
		"TIME_AN_SNIM": strconv.FormatInt((int64(time.Unix(0, f.SavedUnixNano).Sub(time.Unix(0, f.CreatedUnixNano))/time.Second)+30)/60, 10),
		"NUM_SNIM":     s.numSnim,
		// DOC_NUM: the ДТ in «Доп Там Инфо1».
		"DOC_NUM": dtOf(f.CustomsInfo1),
		// NAIM_TOV: the goods, the upper comment; PRIM: the operator's
		// comment, the lower one. NAIM_PER stays empty: «Доп Там Инфо2»
		// does not say whether it names the carrier, the sender or the
		// recipient (product decision).
		"NAIM_TOV": upper(f.CommentUpper), "PRIM": upper(f.CommentLower),
		// OS_OTM: 1 when the operator marked the image (A3 §6).
		"OS_OTM": "0",
	}
	if f.Marks > 0 {
		r["OS_OTM"] = "1"
	}
	// VER_SCAN: the kind staff declared, or 1 (a scan of a control
	// object) once the form has a decision.
	switch {
	case s.verScan != 0:
		r["VER_SCAN"] = strconv.Itoa(s.verScan)
	case f.Decision != idkpb.Decision_DECISION_NONE:
		r["VER_SCAN"] = "1"
	}
	// REZ: 1 «без подозрений», 2 «под подозрением».
	switch f.Decision {
	case idkpb.Decision_DECISION_NOT_SUSPECTED:
		r["REZ"] = "1"
	case idkpb.Decision_DECISION_SUSPECTED:
		r["REZ"] = "2"
	}
	// Сведения о рисках: the profile of the risk that directed the object
	// to the ИДК, when there was one.
	if s.risk != nil {
		p := s.risk.profile
		r["KOD_TEH"], r["VID_PR"], r["KOD_TO_PR"], r["DATE_REG"], r["NUM_PR"] = p.KodTeh, p.VidPr, p.KodToPr, p.DateReg, p.NumPr
		if p.DocType != 0 {
			r["DOC_TYPE"] = strconv.Itoa(int(p.DocType))
		}
	}
	// The first container tab: direction (1 import, 2 export, transit
	// none), countries, goods code, and the container number when it is
	// one (ISO 6346: 4 letters, 7 digits) rather than a vehicle's plate.
	if len(f.Containers) > 0 {
		c := f.Containers[0]
		switch c.Direction {
		case idkpb.Direction_DIRECTION_IMPORT:
			r["NAPR"] = "1"
		case idkpb.Direction_DIRECTION_EXPORT:
			r["NAPR"] = "2"
		}
		r["STRANA_OTP"], r["STRANA_NAZ"], r["KOD_TNVED"] = upper(c.From), upper(c.To), strings.TrimSpace(c.Cargo)
		if n := stripped(c.Number); iso6346.MatchString(n) {
			r["NUM_CONT"] = n
		}
	}
	// VID_TS: the form's «Вид ТС».
	if f.VidTs != 0 {
		r["VID_TS"] = strconv.Itoa(int(f.VidTs))
	}
	// NUM_TS / NUM_P_TS: tractor and trailer plates of «Ид. номер
	// прицепа», split on "/", without spaces or dashes.
	parts := strings.SplitN(f.TrailerId, "/", 2)
	r["NUM_TS"] = stripped(parts[0])
	if len(parts) == 2 {
		r["NUM_P_TS"] = stripped(parts[1])
	}
	// FIO_OPER / LNP_OPER: the operator who saved the form, from the
	// roster.
	if o, ok := m.officer(strings.TrimSpace(f.Operator)); ok {
		r["FIO_OPER"], r["LNP_OPER"] = o.FIO, o.LNP
	}
	// NAIM_PER, VES_TP, VES_TOV, INN_PER, FIO_VODIT, NAIM_OTP_POL,
	// INN_OTP_POL and NUM_OB have no source: empty.
	return r
}

// ---- Tables 2, 5, 6: officers' entries ----

// table2 is the office's table 2 entries dated before until, by DATE_SYS
// then in the order entered; the identity fields are the scan's, as in
// table 1 (KOD_TO the ИДК's own).
func (m *Month) table2(kodTO string, until time.Time) [][]string {
	type row struct {
		date time.Time
		f    map[string]string
	}
	var rows []row
	for _, e := range m.entries {
		if e.Table != 2 {
			continue
		}
		s := m.scanBySnim(e.Row["NUM_SNIM"])
		if s == nil || s.dev.dev.Hello.KodTo != kodTO {
			continue
		}
		d := m.parseDate(e.Row["DATE_SYS"])
		if !d.Before(until) {
			continue
		}
		f := map[string]string{}
		for k, v := range e.Row {
			f[k] = v
		}
		f["KOD_TO"], f["NAIM_TO"], f["NAIM_ZTK"] = s.dev.dev.Hello.KodTo, upper(s.site.NaimTO), upper(s.site.NaimZTK)
		f["TYPE_IDK"], f["NUM_IDK"], f["DISL_IDK"] = strconv.Itoa(int(s.dev.dev.Hello.TypeIdk)), s.dev.dev.NumIDK(), strconv.Itoa(int(s.site.Disl))
		f["DATE_SYS"] = date(s.scanAt)
		rows = append(rows, row{d, f})
	}
	slices.SortStableFunc(rows, func(a, b row) int { return a.date.Compare(b.date) })
	out := make([][]string, len(rows))
	for i, r := range rows {
		out[i] = ordered(2, r.f)
	}
	return out
}

// entryRows is table n's (5 or 6) entries of the office dated before
// until, by their date (5: DATE_SYS, 6: DATE_SYS_V) then in the order
// entered.
func (m *Month) entryRows(n int, kodTO string, until time.Time) [][]string {
	field := "DATE_SYS"
	if n == 6 {
		field = "DATE_SYS_V"
	}
	type row struct {
		date time.Time
		f    map[string]string
	}
	var rows []row
	for _, e := range m.entries {
		if e.Table != n || e.Row["KOD_TO"] != kodTO {
			continue
		}
		if d := m.parseDate(e.Row[field]); d.Before(until) {
			rows = append(rows, row{d, e.Row})
		}
	}
	slices.SortStableFunc(rows, func(a, b row) int { return a.date.Compare(b.date) })
	out := make([][]string, len(rows))
	for i, r := range rows {
		out[i] = ordered(n, r.f)
	}
	return out
}

func (m *Month) parseDate(s string) time.Time {
	t, err := time.ParseInLocation("02.01.2006", s, m.Loc)
	if err != nil {
		panic(fmt.Sprintf("month: entry date %q: %v", s, err))
	}
	return t
}

func (m *Month) scanBySnim(numSnim string) *scan { return m.bySnim[numSnim] }

// ---- Table 3: availability and control objects ----

// counted are the states some table 3 time field counts; IDLE (off) is
// none of them.
var counted = []idkpb.DeviceState{working, waiting, operations, maintenance, inoperable, relocation}

// table3 is one row per ИДК, day and site from the 1st to day, by DATE,
// NUM_IDK and the order the ИДК reached its sites that day, keeping the
// office's rows.
func (m *Month) table3(kodTO string, day time.Time) [][]string {
	devs := slices.Clone(m.devs)
	slices.SortFunc(devs, func(a, b *devPlan) int { return strings.Compare(a.dev.NumIDK(), b.dev.NumIDK()) })
	var out [][]string
	for d := m.Start; !d.After(day); d = d.AddDate(0, 0, 1) {
		for _, dv := range devs {
			for _, r := range m.rows3[dv.dev.NumIDK()+"/"+d.Format("20060102")] {
				if r["KOD_M_D"] == kodTO {
					out = append(out, ordered(3, r))
				}
			}
		}
	}
	return out
}

// siteGroup is one site's time within a day.
type siteGroup struct {
	site Site
	dur  map[idkpb.DeviceState]time.Duration
	wait time.Duration
}

// dayRows computes d's table 3 rows for the day that starts at day:
//
//   - a row per site the ИДК had counted time at that day, in the order it
//     got there (rule 17); a state's interval counts at the site where it
//     started, so relocation time counts where the ИДК left from;
//   - TIME_JOB: WORKING and WAITING time; TIME_OPER, TIME_TEH,
//     TIME_NEPAB, TIME_PEREDISL: OPERATIONS, MAINTENANCE, INOPERABLE,
//     RELOCATION time; each the total's whole minutes, rounded to the
//     nearest;
//   - TIME_WAIT: WORKING or WAITING time from the operator's decision
//     until the next object's arrival: not before the day's first
//     arrival, and not while an object is in the zone (from its arrival
//     to the decision on it: the first form revision that carries one,
//     which is when the ИДК stops WORKING; a later revision that keeps
//     the decision is an edit of the form, not a new decision). After
//     the day's last decision the ИДК waits for the next object until it
//     stops working (the end of its WORKING and WAITING time that day),
//     so that time counts too: the regulation measures the wait from the
//     last decision, whether or not another object comes that day;
//   - PRIZ_PEREDISL: 1 on every row of a day with relocation time;
//   - OKO_*/KOVR_*: the post's counts for the ИДК and day;
//   - a day without counted time is rule 18's row: DATE, KOD_M_D (the
//     office where the ИДК stands) and NUM_IDK, every other field 0
//     (durations "0,00").
func (m *Month) dayRows(d *devPlan, day time.Time) []map[string]string {
	from, to := day, day.AddDate(0, 0, 1)
	var groups []*siteGroup
	waitFrom, arrived := d.firstArrival[day.Format("20060102")]
	for i, c := range d.changes {
		end := to
		if i+1 < len(d.changes) {
			end = d.changes[i+1].at
		}
		a, b := maxTime(c.at, from), minTime(end, to)
		if !b.After(a) {
			continue
		}
		site := d.siteOf(c.at)
		var g *siteGroup
		for _, x := range groups {
			if x.site.NaimZTK == site.NaimZTK && x.site.KodTO == site.KodTO {
				g = x
			}
		}
		if g == nil {
			g = &siteGroup{site: site, dur: map[idkpb.DeviceState]time.Duration{}}
			groups = append(groups, g)
		}
		g.dur[c.state] += b.Sub(a)
		if (c.state == working || c.state == waiting) && arrived {
			g.wait += d.free(maxTime(a, waitFrom), b)
		}
	}
	relocated := "0"
	for _, g := range groups {
		if g.dur[relocation] > 0 {
			relocated = "1"
		}
	}
	var rows []map[string]string
	for _, g := range groups {
		operated := false
		for _, s := range counted {
			operated = operated || g.dur[s] > 0
		}
		if !operated {
			continue
		}
		r := map[string]string{
			"DATE": date(day), "PRIZ_PEREDISL": relocated, "TYPE_IDK": strconv.Itoa(int(d.dev.Hello.TypeIdk)),
			"NUM_IDK": d.dev.NumIDK(), "KOD_M_D": g.site.KodTO, "NAIM_M_D": upper(g.site.NaimTO),
			"NAIM_ZTK_M_D": upper(g.site.NaimZTK), "DISL_P": strconv.Itoa(int(g.site.Disl)),
			"TIME_JOB": hm(g.dur[working] + g.dur[waiting]), "TIME_WAIT": hm(g.wait),
			"TIME_OPER": hm(g.dur[operations]), "TIME_TEH": hm(g.dur[maintenance]),
			"TIME_NEPAB": hm(g.dur[inoperable]), "TIME_PEREDISL": hm(g.dur[relocation]),
		}
		rows = append(rows, r)
	}
	if len(rows) == 0 {
		r := map[string]string{"DATE": date(day), "KOD_M_D": d.siteOf(from).KodTO, "NUM_IDK": d.dev.NumIDK()}
		for _, c := range report.Table3.Columns {
			if _, ok := r[c.Name]; !ok {
				r[c.Name] = "0"
				if c.Kind == report.Duration {
					r[c.Name] = "0,00"
				}
			}
		}
		return []map[string]string{r}
	}
	// The counts are the post's for the ИДК and day; a day with several
	// rows gets none in this plan, so no rule has to split them.
	c := m.counts[d.dev.NumIDK()+"/"+day.Format("20060102")]
	for _, r := range rows {
		for _, col := range report.Table3.Columns {
			if strings.HasPrefix(col.Name, "OKO_") || strings.HasPrefix(col.Name, "KOVR_") {
				n := 0
				if c != nil && len(rows) == 1 {
					n = c.Fields[col.Name]
				}
				r[col.Name] = strconv.Itoa(n)
			}
		}
	}
	return rows
}

// free is the part of [a, b) when no object is in d's working zone.
func (d *devPlan) free(a, b time.Time) time.Duration {
	if !b.After(a) {
		return 0
	}
	total := b.Sub(a)
	// The occupied intervals are in arrival order; an object that entered
	// during the previous analysis overlaps it, so merge as we go.
	// Start from the last interval that arrived at least a day before a;
	// objects are in the zone for minutes.
	i, _ := slices.BinarySearchFunc(d.occupied, a.Add(-24*time.Hour), func(o [2]time.Time, t time.Time) int { return o[0].Compare(t) })
	var cur [2]time.Time
	flush := func() {
		if !cur[1].IsZero() {
			x, y := maxTime(cur[0], a), minTime(cur[1], b)
			if y.After(x) {
				total -= y.Sub(x)
			}
		}
	}
	for _, o := range d.occupied[i:] {
		if o[0].After(b) {
			break
		}
		if !cur[1].IsZero() && !o[0].After(cur[1]) {
			cur[1] = maxTime(cur[1], o[1])
			continue
		}
		flush()
		cur = o
	}
	flush()
	return total
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// ---- Table 4: time-limit breaches ----

// breach is a scan's table 4 row by the rules of item 35 as
// collector/cases defines them (docs/cases.md): one row per breached
// inspection, TIME_x filled for each breached limit and empty for the
// others.
type breach struct {
	first time.Time // the earliest breached deadline: DATE_NAR, the site
	times [3]string
	// withdrawn is PRICH_NAR of a breach recorded, then withdrawn; ""
	// for one that stands.
	withdrawn string
}

// verScanShort are the short names of the VER_SCAN codes (reference
// §8.1, table 1 field 9).
var verScanShort = map[int]string{1: "СКАНИРОВАНИЕ", 2: "РК", 3: "ПОВТОР", 4: "СБОЙ", 5: "ТЕСТ"}

// breach computes s's timers:
//
//   - TIME_1 (15 min): from the risk_detected to the later of
//     docs_handed and carrier_informed;
//   - TIME_2 (15 min): from the arrival to docs_returned;
//   - TIME_3 (30 min): from the suspected decision to act_handed.
//
// A duration equal to its limit is no breach ("не должен превышать").
// A scan declared РК, ПОВТОР or ТЕСТ inspects no object: no TIME_2 or
// TIME_3.
//
// A breach later withdrawn stays in the report (A4 rule 5: nothing is
// deleted from it), with the times it had when it last stood and
// PRICH_NAR saying what withdrew it. In this month that is a scan kind
// without clocks declared only after TIME_2's deadline passed with no
// end reported: the collector checks every second and recorded the
// breach the second after the deadline, when it read the limit and a
// minute (partial minutes rounded up: 0,16), and the declaration then
// withdrew it. The product's PRICH_NAR for it is
//
//	ОТМЕНЕНО <DD.MM.YYYY> <WHO>: СКАНИРОВАНИЕ <DD.MM.YYYY HH:MM>, ВИД СНИМКА <code> (<short name>)
//
// the day it was withdrawn (the declaration's, reported at once here),
// who declared it, then what withdrew it: the scan event with its time
// and the kind it declared (the VER_SCAN code and its short name), all
// upper case.
func (s *scan) breach() (breach, bool) {
	ts := s.timers()
	if ts[1] == nil && s.risk == nil && s.verScan != 0 {
		if dl := s.arrival.Add(15 * time.Minute); s.verAt.After(dl) {
			return breach{first: dl, times: [3]string{1: hmUp(15*time.Minute + time.Second)},
				withdrawn: fmt.Sprintf("ОТМЕНЕНО %s %s: СКАНИРОВАНИЕ %s, ВИД СНИМКА %d (%s)",
					date(s.verAt), upper(s.verBy), s.verAt.Format("02.01.2006 15:04"), s.verScan, verScanShort[s.verScan])}, true
		}
	}
	var b breach
	ok := false
	for i, t := range ts {
		if t == nil {
			continue
		}
		if t.end.IsZero() {
			panic(fmt.Sprintf("month: scan %s: timer %d never ends", s.numSnim, i+1))
		}
		if d := t.end.Sub(t.start); d > t.limit {
			b.times[i] = hmUp(d)
			if dl := t.start.Add(t.limit); !ok || dl.Before(b.first) {
				b.first = dl
			}
			ok = true
		}
	}
	return b, ok
}

// timer is one of item 35's clocks of a scan.
type timer struct {
	start, end time.Time
	limit      time.Duration
}

// timers are s's TIME_1, TIME_2 and TIME_3 clocks, nil for one it does
// not have (see breach).
func (s *scan) timers() [3]*timer {
	var ts [3]*timer
	if r := s.risk; r != nil {
		ts[0] = &timer{r.at, maxTime(r.handed, r.informed), 15 * time.Minute}
	}
	if inspects := s.verScan != 2 && s.verScan != 3 && s.verScan != 5; inspects {
		ts[1] = &timer{s.arrival, s.returned, 15 * time.Minute}
		if s.forms[len(s.forms)-1].Decision == idkpb.Decision_DECISION_SUSPECTED {
			ts[2] = &timer{s.decision, s.act, 30 * time.Minute}
		}
	}
	return ts
}

// deadlines are the moments some clock of an inspection passes its limit
// with no end reported yet, in time order: where the collector's
// every-second Tick records a breach (Month.Deadlines).
func (m *Month) deadlines() []time.Time {
	var out []time.Time
	for _, s := range m.scans {
		for _, t := range s.timers() {
			if t != nil && t.end.Sub(t.start) > t.limit {
				out = append(out, t.start.Add(t.limit))
			}
		}
		if b, ok := s.breach(); ok && b.withdrawn != "" {
			out = append(out, b.first)
		}
	}
	slices.SortFunc(out, func(a, b time.Time) int { return a.Compare(b) })
	return out
}

// table4 is one row per breached inspection of the office whose first
// deadline passed before until, withdrawn ones included, ordered by
// DATE_NAR, NUM_IDK and NUM_SNIM (as table 1 orders its scans: date, ИДК,
// then the scan, which the image number counts). The identity is the
// site where the ИДК stood at that deadline; PRICH_NAR the reason given,
// upper case, or for a withdrawn breach what withdrew it (see breach).
func (m *Month) table4(kodTO string, until time.Time) [][]string {
	type row struct {
		s *scan
		b breach
	}
	var rows []row
	for _, s := range m.scans {
		b, ok := s.breach()
		if !ok || !b.first.Before(until) || s.dev.siteOf(b.first).KodTO != kodTO {
			continue
		}
		rows = append(rows, row{s, b})
	}
	slices.SortFunc(rows, func(a, b row) int {
		return cmp.Or(strings.Compare(a.b.first.Format("20060102"), b.b.first.Format("20060102")),
			strings.Compare(a.s.dev.dev.NumIDK(), b.s.dev.dev.NumIDK()), strings.Compare(a.s.numSnim, b.s.numSnim))
	})
	out := make([][]string, len(rows))
	for i, r := range rows {
		site := r.s.dev.siteOf(r.b.first)
		prich := upper(r.s.reason)
		if r.b.withdrawn != "" {
			prich = r.b.withdrawn
		}
		out[i] = ordered(4, map[string]string{
			"KOD_TO": site.KodTO, "NAIM_TO": upper(site.NaimTO), "NAIM_ZTK": upper(site.NaimZTK),
			"TYPE_IDK": strconv.Itoa(int(r.s.dev.dev.Hello.TypeIdk)), "NUM_IDK": r.s.dev.dev.NumIDK(),
			"DISL_IDK": strconv.Itoa(int(site.Disl)), "DATE_NAR": date(r.b.first), "NUM_SNIM": r.s.numSnim,
			"TIME_1": r.b.times[0], "TIME_2": r.b.times[1], "TIME_3": r.b.times[2], "PRICH_NAR": prich,
		})
	}
	return out
}
