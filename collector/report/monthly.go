package report

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"idk/internal/clock"
	"idk/protocol"
)

// The monthly ИДК report (item 37): the РТУ builds it from the daily
// reports of every customs office of its region and publishes it by the
// 5th of the next month. The source gives no layout, so it is the six
// daily tables of the month's last day, every office's rows office by
// office, and two summary sheets, one row per customs office and one per
// ИДК, whose columns are named in the style of the regulation's fields.

// The columns the two summary sheets share, after their identity
// columns. Every value is a sum over the rows of the month's daily
// tables, so that an official can check it against them:
//
//	KOL_VO_SNIM        table 1 rows (every kind of scan, A4 rule 5)
//	KOL_VO_PODOZR      table 1 rows with REZ 2 («под подозрением»)
//	KOL_VO_NAR         table 4 rows (breached inspections)
//	KOL_VO_NAR_TIME_1  table 4 rows with TIME_1 filled: breaches of TIME_1
//	KOL_VO_NAR_TIME_2  the same for TIME_2
//	KOL_VO_NAR_TIME_3  the same for TIME_3
//	KOL_VO_BEZ_PRICH   table 4 rows with PRICH_NAR empty (item 36 wants one)
//	TIME_JOB ... TIME_PEREDISL  table 3's durations summed, "H,MM"
//	KOL_VO_DN_NEPAB    table 3 rows with TIME_NEPAB above 0,00
//
// KOL_VO_DN_NEPAB counts days, not INOPERABLE intervals: the daily tables,
// which the monthly report is built from (item 37), hold the inoperable
// time per ИДК, day and place, not the intervals; an interval over
// midnight counts on each of its days. A breach withdrawn later stays in
// table 4 (A4 rule 5), with PRICH_NAR saying so, and so in the counts.
var summaryCounts = []Column{
	col("KOL_VO_SNIM", Number, 12), col("KOL_VO_PODOZR", Number, 14), col("KOL_VO_NAR", Number, 11),
	col("KOL_VO_NAR_TIME_1", Number, 18), col("KOL_VO_NAR_TIME_2", Number, 18), col("KOL_VO_NAR_TIME_3", Number, 18),
	col("KOL_VO_BEZ_PRICH", Number, 17),
	col("TIME_JOB", Duration, 10), col("TIME_WAIT", Duration, 10), col("TIME_OPER", Duration, 10),
	col("TIME_TEH", Duration, 10), col("TIME_NEPAB", Duration, 11), col("TIME_PEREDISL", Duration, 14),
	col("KOL_VO_DN_NEPAB", Number, 16),
}

// hoursFields are table 3's duration fields the summaries add up, in
// their order.
var hoursFields = []string{"TIME_JOB", "TIME_WAIT", "TIME_OPER", "TIME_TEH", "TIME_NEPAB", "TIME_PEREDISL"}

var (
	// SummaryOffices is the sheet «Сводка по таможням»: one row per
	// customs office (KOD_TO) in the order the report was asked for.
	// NAIM_TO is the office's name as its tables give it (table 1, else
	// table 3's NAIM_M_D, else table 4); KOL_VO_IDK the ИДК that have a
	// row in any of its tables 1, 3 and 4. Number 7 only tells it apart
	// from the six tables in a digest; the regulation has no such table.
	SummaryOffices = Table{Number: 7, Sheet: "Сводка по таможням", Title: "Сводка по таможням",
		Columns: append([]Column{col("KOD_TO", Text, 11), col("NAIM_TO", Text, 22), col("KOL_VO_IDK", Number, 11)}, summaryCounts...)}

	// SummaryIDK is the sheet «Сводка по ИДК»: one row per ИДК and office
	// whose daily report holds its rows, by office (in the order asked)
	// and NUM_IDK, so that an office's ИДК rows add up to its row of
	// SummaryOffices. TYPE_IDK is the first code its rows give (a rule 18
	// zero row gives none).
	SummaryIDK = Table{Number: 8, Sheet: "Сводка по ИДК", Title: "Сводка по ИДК",
		Columns: append([]Column{col("KOD_TO", Text, 11), col("NUM_IDK", Text, 10), col("TYPE_IDK", Number, 9)}, summaryCounts...)}
)

// Summary is one row of a summary sheet.
type Summary struct {
	KodTO   string
	NaimTO  string // office rows only
	NumIDK  string // ИДК rows only
	TypeIDK string // ИДК rows only
	IDK     int    // office rows only: KOL_VO_IDK

	Scans, Suspected, Breaches int    // KOL_VO_SNIM, KOL_VO_PODOZR, KOL_VO_NAR
	ByRule                     [3]int // KOL_VO_NAR_TIME_1..3
	WithoutReason              int    // KOL_VO_BEZ_PRICH
	Minutes                    [6]int // the durations of hoursFields, in minutes
	InoperableDays             int    // KOL_VO_DN_NEPAB
}

// add adds o's counts to s.
func (s *Summary) add(o *Summary) {
	s.Scans += o.Scans
	s.Suspected += o.Suspected
	s.Breaches += o.Breaches
	s.WithoutReason += o.WithoutReason
	s.InoperableDays += o.InoperableDays
	for i := range s.ByRule {
		s.ByRule[i] += o.ByRule[i]
	}
	for i := range s.Minutes {
		s.Minutes[i] += o.Minutes[i]
	}
}

func (s *Summary) counts() []string {
	r := []string{strconv.Itoa(s.Scans), strconv.Itoa(s.Suspected), strconv.Itoa(s.Breaches),
		strconv.Itoa(s.ByRule[0]), strconv.Itoa(s.ByRule[1]), strconv.Itoa(s.ByRule[2]), strconv.Itoa(s.WithoutReason)}
	for _, m := range s.Minutes {
		r = append(r, FormatHM(m))
	}
	return append(r, strconv.Itoa(s.InoperableDays))
}

// OfficeRow is s as a row of SummaryOffices.
func (s *Summary) OfficeRow() Row {
	return append(Row{s.KodTO, s.NaimTO, strconv.Itoa(s.IDK)}, s.counts()...)
}

// IDKRow is s as a row of SummaryIDK.
func (s *Summary) IDKRow() Row {
	return append(Row{s.KodTO, s.NumIDK, s.TypeIDK}, s.counts()...)
}

// FormatHM writes minutes as table 3 and 4 write durations: hours, a
// comma and two digits of minutes ("13,50"); hours may pass 24.
func FormatHM(minutes int) string { return fmt.Sprintf("%d,%02d", minutes/60, minutes%60) }

// ParseHM reads an "H,MM" duration as minutes; "" is 0.
func ParseHM(s string) (int, error) {
	if s == "" {
		return 0, nil
	}
	h, m, ok := strings.Cut(s, ",")
	hours, err1 := strconv.Atoi(h)
	mins, err2 := strconv.Atoi(m)
	if !ok || err1 != nil || err2 != nil || hours < 0 || len(m) != 2 || mins < 0 || mins > 59 {
		return 0, fmt.Errorf("duration %q: want H,MM", s)
	}
	return hours*60 + mins, nil
}

// summarizer adds up one office's daily tables into its summaries.
type summarizer struct {
	office Summary
	idk    map[string]*Summary
}

func newSummarizer(kodTO string) *summarizer {
	return &summarizer{office: Summary{KodTO: kodTO}, idk: map[string]*Summary{}}
}

func (z *summarizer) of(numIDK, typeIDK string) *Summary {
	s := z.idk[numIDK]
	if s == nil {
		s = &Summary{KodTO: z.office.KodTO, NumIDK: numIDK}
		z.idk[numIDK] = s
	}
	if s.TypeIDK == "" && typeIDK != "0" {
		s.TypeIDK = typeIDK
	}
	return s
}

func (z *summarizer) name(n string) {
	if z.office.NaimTO == "" {
		z.office.NaimTO = n
	}
}

// add counts row r of table t (1, 3 or 4; the others add nothing).
func (z *summarizer) add(t *Table, r Row) error {
	get := func(name string) string { return r[t.Field(name)] }
	switch t.Number {
	case 1:
		s := z.of(get("NUM_IDK"), get("TYPE_IDK"))
		z.name(get("NAIM_TO"))
		s.Scans++
		if get("REZ") == "2" {
			s.Suspected++
		}
	case 3:
		s := z.of(get("NUM_IDK"), get("TYPE_IDK"))
		for i, f := range hoursFields {
			m, err := ParseHM(get(f))
			if err != nil {
				return fmt.Errorf("table 3 %s %s %s: %w", get("NUM_IDK"), get("DATE"), f, err)
			}
			s.Minutes[i] += m
			if f == "TIME_NEPAB" && m > 0 {
				s.InoperableDays++
			}
		}
	case 4:
		s := z.of(get("NUM_IDK"), get("TYPE_IDK"))
		s.Breaches++
		for i, f := range []string{"TIME_1", "TIME_2", "TIME_3"} {
			if get(f) != "" {
				s.ByRule[i]++
			}
		}
		if strings.TrimSpace(get("PRICH_NAR")) == "" {
			s.WithoutReason++
		}
	}
	return nil
}

// finish returns the office's row, the sum of its ИДК's, and its ИДК's
// rows by NUM_IDK.
func (z *summarizer) finish() (Summary, []Summary) {
	nums := make([]string, 0, len(z.idk))
	for n := range z.idk {
		nums = append(nums, n)
	}
	slices.Sort(nums)
	o := z.office
	var idk []Summary
	for _, n := range nums {
		s := z.idk[n]
		o.add(s)
		idk = append(idk, *s)
	}
	o.IDK = len(idk)
	return o, idk
}

// Monthly is the monthly ИДК report of a region (item 37): the six daily
// tables of the month for every customs office, and the two summaries.
// Like Daily, table 1 streams from the index when the report is written.
type Monthly struct {
	Month   time.Time // midnight of the month's first day
	Offices []string
	Built   time.Time
	// Summary has a row per office, IDK a row per ИДК and office: the
	// sheets SummaryOffices and SummaryIDK.
	Summary []Summary
	IDK     []Summary
	// Sheets are the summaries, then tables 1-6, each with every office's
	// rows office by office.
	Sheets []Sheet
	// Incomplete counts table 1's rows that lack a field nobody supplied,
	// set as the report is written.
	Incomplete int
	// Digest is the SHA-256 of every cell, set once the report is
	// written (see Daily.Digest).
	Digest []byte

	dailies []*Daily
}

// MonthOf is midnight of the first day of the month that holds t in loc.
func MonthOf(t time.Time, loc *time.Location) time.Time {
	y, m, _ := t.In(loc).Date()
	return time.Date(y, m, 1, 0, 0, 0, 0, loc)
}

// Monthly builds the monthly report of the month that holds month for
// offices, in their order. Each office's tables are those of its daily
// report of the month's last day, which is cumulative from the 1st (A4
// rule 3); a month not over yet gives the rows so far. The summaries are
// counted here, by reading the tables once, and the tables are read again
// when the report is written: a change in between (an entry made at that
// second) can show in the tables and not the summaries, and the next
// publication puts it in both.
func (b *Builder) Monthly(month time.Time, offices []string) (*Monthly, error) {
	if len(offices) == 0 {
		return nil, errors.New("report: monthly: no customs office")
	}
	for i, k := range offices {
		if err := protocol.CheckKodTO(k); err != nil {
			return nil, fmt.Errorf("report: monthly: %w", err)
		}
		if slices.Contains(offices[:i], k) {
			return nil, fmt.Errorf("report: monthly: customs office %s given twice", k)
		}
	}
	start := MonthOf(month, b.s.Location)
	last := start.AddDate(0, 1, -1)
	mo := &Monthly{Month: start, Offices: slices.Clone(offices), Built: b.s.Clock.Now()}
	for _, kod := range offices {
		d, err := b.Daily(kod, last)
		if err != nil {
			return nil, fmt.Errorf("report: monthly %s: %w", kod, err)
		}
		mo.dailies = append(mo.dailies, d)
		z := newSummarizer(kod)
		// Table 1 first, so that the office's name is table 1's when it
		// has one.
		for _, n := range []int{1, 3, 4} {
			s := d.Sheets[n-1]
			err := s.Rows(func(r Row) error {
				if n == 3 && r[Table3.Field("KOD_M_D")] == kod {
					z.name(r[Table3.Field("NAIM_M_D")])
				}
				if n == 4 {
					z.name(r[Table4.Field("NAIM_TO")])
				}
				return z.add(s.Table, r)
			})
			if err != nil {
				return nil, fmt.Errorf("report: monthly %s: table %d: %w", kod, n, err)
			}
		}
		o, idk := z.finish()
		mo.Summary = append(mo.Summary, o)
		mo.IDK = append(mo.IDK, idk...)
	}
	mo.Sheets = []Sheet{
		{Table: &SummaryOffices, Rows: summaryRows(mo.Summary, (*Summary).OfficeRow)},
		{Table: &SummaryIDK, Rows: summaryRows(mo.IDK, (*Summary).IDKRow)},
	}
	for i, t := range Tables {
		mo.Sheets = append(mo.Sheets, Sheet{Table: t, Rows: func(emit func(Row) error) error {
			for _, d := range mo.dailies {
				if err := d.Sheets[i].Rows(emit); err != nil {
					return err
				}
			}
			return nil
		}})
	}
	return mo, nil
}

func summaryRows(ss []Summary, row func(*Summary) Row) func(func(Row) error) error {
	return func(emit func(Row) error) error {
		for i := range ss {
			if err := emit(row(&ss[i])); err != nil {
				return err
			}
		}
		return nil
	}
}

// Title is the workbook's document title.
func (m *Monthly) Title() string {
	return fmt.Sprintf("Ежемесячный отчет ИДК за %s (%s)", m.Month.Format("01.2006"), strings.Join(m.Offices, ", "))
}

// WriteXLSX writes the report as an Excel workbook, the summaries first,
// and sets Digest and Incomplete.
func (m *Monthly) WriteXLSX(w io.Writer) error {
	h := sha256.New()
	sheets := make([]Sheet, len(m.Sheets))
	for i, s := range m.Sheets {
		sheets[i] = Sheet{Table: s.Table, Rows: digesting(h, s)}
	}
	if err := WriteWorkbook(w, sheets, WorkbookOptions{Title: m.Title(), Created: m.Built}); err != nil {
		return err
	}
	m.Digest = h.Sum(nil)
	m.Incomplete = 0
	for _, d := range m.dailies {
		m.Incomplete += len(d.Incomplete)
	}
	return nil
}

// ---- Publication ----

// The monthly versions are kept beside the daily ones, in the archive's
// folder:
//
//	monthly/<YYYY-MM>.v<N>.xlsx   version N of the month's file
//	monthly/<YYYY-MM>.json        the month's versions (Version list)
//
// with the rules of the daily files: written once, never changed, a new
// version only when the cells changed.

func (a *Archive) monthlyDir() string { return filepath.Join(a.dir, "monthly") }

func (a *Archive) monthlyManifest(month time.Time) string {
	return filepath.Join(a.monthlyDir(), month.Format("2006-01")+".json")
}

// MonthlyVersions lists the published versions of the monthly report of
// the month that holds month, oldest first.
func (a *Archive) MonthlyVersions(month time.Time) ([]Version, error) {
	return readManifest(a.monthlyManifest(MonthOf(month, a.b.Location())))
}

// OpenMonthly opens version n (0: the latest) of the published monthly
// report of the month that holds month. The caller closes the file.
func (a *Archive) OpenMonthly(month time.Time, n int) (*os.File, Version, error) {
	month = MonthOf(month, a.b.Location())
	vs, err := a.MonthlyVersions(month)
	if err != nil {
		return nil, Version{}, err
	}
	return openVersion(a.monthlyDir(), vs, n, "monthly "+month.Format("2006-01"))
}

// PublishMonthly builds the monthly report of the month that holds month
// for offices and keeps it as the month's next version, unless its cells
// equal the latest version's: then the latest is returned with created
// false.
func (a *Archive) PublishMonthly(month time.Time, offices []string, by, reason string) (v Version, created bool, err error) {
	if by == "" {
		return Version{}, false, errors.New("report: publish: who publishes (by) is required")
	}
	month = MonthOf(month, a.b.Location())
	// One lock with the daily files: version numbers are given in order,
	// and two builds of a month at once would only share the machine.
	a.mu.Lock()
	defer a.mu.Unlock()
	vs, err := a.MonthlyVersions(month)
	if err != nil {
		return Version{}, false, err
	}
	m, err := a.b.Monthly(month, offices)
	if err != nil {
		return Version{}, false, err
	}
	write := func(w io.Writer) ([]byte, int, error) {
		err := m.WriteXLSX(w)
		return m.Digest, m.Incomplete, err
	}
	v, created, err = a.keepVersion(a.monthlyDir(), month.Format("2006-01"), vs, write, by, reason)
	if err == nil && created {
		a.log.Info("monthly report published", "month", month.Format("2006-01"), "offices", strings.Join(offices, ","),
			"version", v.Version, "by", by, "bytes", v.Size, "incomplete_rows", v.Incomplete)
	}
	return v, created, err
}

// LastMonthlyPublished is the latest month (midnight of its first day)
// that has a published monthly report; ok is false when none has.
func (a *Archive) LastMonthlyPublished() (month time.Time, ok bool, err error) {
	names, err := filepath.Glob(filepath.Join(a.monthlyDir(), "????-??.json"))
	if err != nil {
		return time.Time{}, false, err
	}
	// The names sort as the months do.
	slices.Sort(names)
	for i := len(names) - 1; i >= 0; i-- {
		vs, err := readManifest(names[i])
		if err != nil {
			return time.Time{}, false, err
		}
		if len(vs) == 0 {
			continue
		}
		t, err := time.ParseInLocation("2006-01", strings.TrimSuffix(filepath.Base(names[i]), ".json"), a.b.Location())
		if err != nil {
			continue // not one of ours
		}
		return t, true, nil
	}
	return time.Time{}, false, nil
}

// MonthlyDue is the deadline of the monthly report of the month that
// holds month: the end of the 5th of the next month (item 37), in loc.
func MonthlyDue(month time.Time, loc *time.Location) time.Time {
	return MonthOf(month, loc).AddDate(0, 1, 5)
}

// MonthlySchedule publishes the monthly report of the month before on
// its own: on the 1st, once the clock passes At after midnight, and again
// each day until the 5th (the deadline, item 37), so that a correction
// made in those days (a breach's reason, a late entry) becomes a new
// version; a month whose content did not change gets none. Run it on a
// goroutine beside Schedule, on the same Archive; it returns when ctx
// ends.
type MonthlySchedule struct {
	Archive *Archive
	At      time.Duration   // after midnight; default 45 minutes, after the daily files of the last day
	Until   int             // the last day of the month it publishes on; default 5
	Offices func() []string // the region's customs bodies (KOD_TO), in the report's order
	Check   time.Duration   // how often the clock is looked at; default a minute
	OnError func(error)     // default: logged
	done    map[string]bool // days already published on by this run
}

// Run publishes until ctx ends; a collector started after the hour
// publishes at the first check.
func (s *MonthlySchedule) Run(ctx context.Context) {
	if s.Check <= 0 {
		s.Check = time.Minute
	}
	s.done = map[string]bool{}
	clock.Every(ctx, s.Archive.clock, s.Check, s.Tick)
}

// Tick publishes if it is time to and this run has not yet today; Run
// calls it every Check.
func (s *MonthlySchedule) Tick() {
	a := s.Archive
	at, until := s.At, s.Until
	if at <= 0 {
		at = 45 * time.Minute
	}
	if until <= 0 {
		until = 5
	}
	if s.done == nil {
		s.done = map[string]bool{}
	}
	now := a.clock.Now().In(a.b.Location())
	today := a.day(now)
	if today.Day() > until || now.Sub(today) < at {
		return
	}
	key := today.Format("2006-01-02")
	if s.done[key] {
		return
	}
	prev := MonthOf(today.AddDate(0, 0, -today.Day()), a.b.Location())
	if _, _, err := a.PublishMonthly(prev, s.Offices(), "schedule", ""); err != nil {
		err = fmt.Errorf("publish monthly %s: %w", prev.Format("2006-01"), err)
		if s.OnError != nil {
			s.OnError(err)
		} else {
			a.log.Error("monthly report not published; retried at the next check", "err", err)
		}
		return
	}
	s.done[key] = true
}

// ---- Metrics ----

// monthlyMetrics computes the monthly report's series at scrape time
// from the archive and the clock.
type monthlyMetrics struct {
	a       *Archive
	offices func() []string
	from    time.Time

	published, due, noReason, monthStart *prometheus.Desc
}

// MonthlyCollector returns the Prometheus collector of the monthly
// report's deadlines, to register once:
//
//   - idk_collector_report_monthly_published_timestamp_seconds: the first
//     second of the latest month with a published monthly report; absent
//     while none is
//   - idk_collector_report_monthly_due_timestamp_seconds: the deadline
//     (the end of the 5th of the next month, item 37, in the collector's
//     zone) of the report owed next: that of the month after the latest
//     published, or, while none is, of the month before the current one
//     but not before from's month (the collector's first month: it owes
//     no report of a month it did not see). The alert is time() past it.
//   - idk_collector_report_breaches_without_reason_previous_month: table
//     4 rows of the previous month, every office, lacking PRICH_NAR: the
//     head of the post reports the causes by the 10th (item 36)
//   - idk_collector_report_month_start_timestamp_seconds: the first
//     second of the current month in the collector's zone, so that an
//     alert can tell the day of the month without knowing the zone
func (a *Archive) MonthlyCollector(offices func() []string, from time.Time) prometheus.Collector {
	return &monthlyMetrics{
		a: a, offices: offices, from: from,
		published: prometheus.NewDesc("idk_collector_report_monthly_published_timestamp_seconds",
			"First second of the latest month whose monthly ИДК report (item 37) is published.", nil, nil),
		due: prometheus.NewDesc("idk_collector_report_monthly_due_timestamp_seconds",
			"Deadline (end of the 5th of the next month) of the monthly ИДК report owed next.", nil, nil),
		noReason: prometheus.NewDesc("idk_collector_report_breaches_without_reason_previous_month",
			"Table 4 rows of the previous month lacking the reason (PRICH_NAR) that item 36 wants by the 10th.", nil, nil),
		monthStart: prometheus.NewDesc("idk_collector_report_month_start_timestamp_seconds",
			"First second of the current month in the collector's time zone.", nil, nil),
	}
}

// Describe implements prometheus.Collector.
func (m *monthlyMetrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{m.published, m.due, m.noReason, m.monthStart} {
		ch <- d
	}
}

// Collect implements prometheus.Collector. A series it cannot compute is
// sent as an invalid metric, which fails the scrape loudly rather than
// hiding a late report behind a missing series.
func (m *monthlyMetrics) Collect(ch chan<- prometheus.Metric) {
	loc := m.a.b.Location()
	now := m.a.clock.Now().In(loc)
	current := MonthOf(now, loc)
	ch <- prometheus.MustNewConstMetric(m.monthStart, prometheus.GaugeValue, float64(current.Unix()))

	last, ok, err := m.a.LastMonthlyPublished()
	if err != nil {
		ch <- prometheus.NewInvalidMetric(m.published, err)
	} else {
		owed := current.AddDate(0, -1, 0)
		if !m.from.IsZero() && owed.Before(MonthOf(m.from, loc)) {
			owed = MonthOf(m.from, loc)
		}
		if ok {
			ch <- prometheus.MustNewConstMetric(m.published, prometheus.GaugeValue, float64(last.Unix()))
			owed = last.AddDate(0, 1, 0)
		}
		ch <- prometheus.MustNewConstMetric(m.due, prometheus.GaugeValue, float64(MonthlyDue(owed, loc).Unix()))
	}

	n, err := m.withoutReason(current.AddDate(0, -1, 0), current)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(m.noReason, err)
		return
	}
	ch <- prometheus.MustNewConstMetric(m.noReason, prometheus.GaugeValue, float64(n))
}

// withoutReason counts table 4 rows dated in [from, to) lacking PRICH_NAR.
func (m *monthlyMetrics) withoutReason(from, to time.Time) (int, error) {
	n := 0
	for _, kod := range m.offices() {
		rows, err := Table4Rows(m.a.b.s.Cases, kod, from, to)
		if err != nil {
			return 0, fmt.Errorf("report: table 4 of %s: %w", kod, err)
		}
		for _, r := range rows {
			if strings.TrimSpace(r[Table4.Field("PRICH_NAR")]) == "" {
				n++
			}
		}
	}
	return n, nil
}
