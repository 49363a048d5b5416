package console

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/text/encoding/charmap"

	"idk/collector/auth"
	"idk/collector/availability"
	"idk/collector/report"
	"idk/collector/store"
	"idk/protocol"
	"idk/protocol/idkpb"
)

// parseDay reads a date parameter (2026-11-27 or 27.11.2026); empty is
// today.
func (c *console) parseDay(s string) (time.Time, error) {
	if strings.TrimSpace(s) == "" {
		return c.today(), nil
	}
	d, err := report.ParseDay(strings.TrimSpace(s), c.loc)
	if err != nil {
		return time.Time{}, fmt.Errorf("дата %q: ожидается ГГГГ-ММ-ДД или ДД.ММ.ГГГГ", s)
	}
	return d, nil
}

// --- table 4 of a day -------------------------------------------------------

func (c *console) serveTable4(w http.ResponseWriter, r *http.Request, p auth.Person) {
	day, err := c.parseDay(r.URL.Query().Get("date"))
	if err != nil {
		c.fail(w, r, p, http.StatusBadRequest, err.Error())
		return
	}
	numCol := report.Table4.Field("NUM_IDK")
	var rows []report.Row
	// Every office, filtered by the ИДК: a row's KOD_TO is where the ИДК
	// stood, and who sees it is decided by where it is enrolled.
	for _, kod := range c.cfg.Offices() {
		rs, err := report.Table4Rows(c.cfg.Cases, kod, day, report.NextDay(day))
		if err != nil {
			c.internal(w, r, p, err)
			return
		}
		for _, row := range rs {
			if c.sees(p, row[numCol]) {
				rows = append(rows, row)
			}
		}
	}
	cols := make([]string, len(report.Table4.Columns))
	for i, col := range report.Table4.Columns {
		cols[i] = col.Name
	}
	c.render(w, r, http.StatusOK, "table4", page{Title: "Таблица 4", Nav: "breaches", Person: p, Data: struct {
		Day        time.Time
		Prev, Next time.Time
		Title      string
		Columns    []string
		Rows       []report.Row
	}{day, day.AddDate(0, 0, -1), day.AddDate(0, 0, 1), report.Table4.Title, cols, rows}})
}

// --- day timeline (table 3) -------------------------------------------------

type legendItem struct {
	State    stateInfo
	Duration time.Duration
}

func (c *console) serveDay(w http.ResponseWriter, r *http.Request, p auth.Person) {
	q := r.URL.Query()
	num := strings.ToUpper(strings.TrimSpace(q.Get("num_idk")))
	day, err := c.parseDay(q.Get("date"))
	if err != nil {
		c.fail(w, r, p, http.StatusBadRequest, err.Error())
		return
	}
	var devices []string
	for _, n := range c.cfg.Live.Devices() {
		if c.sees(p, n) {
			devices = append(devices, n)
		}
	}
	data := struct {
		NumIDK     string
		Devices    []string
		Day        time.Time
		Prev, Next time.Time
		Timeline   timeline
		Runs       []availability.Run
		Legend     []legendItem
		Rows       []availability.Row
	}{NumIDK: num, Devices: devices, Day: day, Prev: day.AddDate(0, 0, -1), Next: day.AddDate(0, 0, 1)}
	if num != "" {
		if !c.sees(p, num) {
			c.fail(w, r, p, http.StatusForbidden, "Этот ИДК не относится к вашему посту.")
			return
		}
		runs, err := c.cfg.History.Runs(num, day)
		if err != nil {
			c.internal(w, r, p, err)
			return
		}
		drs, err := c.cfg.History.DayRows(day)
		if err != nil {
			c.internal(w, r, p, err)
			return
		}
		for _, dr := range drs {
			if dr.Row.NUM_IDK == num {
				data.Rows = append(data.Rows, dr.Row)
			}
		}
		total := map[string]time.Duration{}
		for _, run := range runs {
			total[run.State] += run.End.Sub(run.Start)
		}
		for _, s := range states {
			data.Legend = append(data.Legend, legendItem{State: s, Duration: total[s.Name]})
		}
		data.Runs = runs
		data.Timeline = buildTimeline(runs, day, day.AddDate(0, 0, 1), c.now())
	}
	c.render(w, r, http.StatusOK, "day", page{Title: "Сутки ИДК " + num, Nav: "day", Person: p, Data: data})
}

// --- reports --------------------------------------------------------------

type reportDay struct {
	Day       time.Time
	Version   int // latest published, 0: not published (a draft is built)
	Published time.Time
}

type reportOffice struct {
	KodTO string
	Days  []reportDay
}

// reportDays is how many days back the reports page lists per post; any
// other day is one date field away.
const reportDays = 10

func (c *console) serveReports(w http.ResponseWriter, r *http.Request, p auth.Person) {
	today := c.today()
	var offices []reportOffice
	for _, kod := range c.visibleOffices(p) {
		o := reportOffice{KodTO: kod}
		for i := range reportDays {
			d := reportDay{Day: today.AddDate(0, 0, -i)}
			vs, err := c.cfg.Versions.Versions(kod, d.Day)
			if err != nil {
				c.internal(w, r, p, err)
				return
			}
			if n := len(vs); n > 0 {
				d.Version, d.Published = vs[n-1].Version, vs[n-1].Published
			}
			o.Days = append(o.Days, d)
		}
		offices = append(offices, o)
	}
	month := report.MonthOf(today, c.loc)
	c.render(w, r, http.StatusOK, "reports", page{Title: "Отчёты", Nav: "reports", Person: p, Data: struct {
		Offices []reportOffice
		Monthly bool
		Months  []time.Time
		Today   time.Time
	}{offices, c.seesRegion(p), []time.Time{month, month.AddDate(0, -1, 0)}, today}})
}

// seesRegion reports whether p sees every customs body of the collector:
// the monthly report holds them all.
func (c *console) seesRegion(p auth.Person) bool {
	return len(c.visibleOffices(p)) == len(c.cfg.Offices())
}

// delegate serves r with h at path with the query q: the report
// handlers of the API, once the console has checked the scope.
func delegate(h http.Handler, w http.ResponseWriter, r *http.Request, path string, q url.Values) {
	r2 := r.Clone(r.Context())
	r2.URL.Path, r2.URL.RawPath, r2.URL.RawQuery = path, "", q.Encode()
	r2.RequestURI = r2.URL.RequestURI()
	h.ServeHTTP(w, r2)
}

// reportQuery keeps the report parameters the API takes besides the
// date: a version, or a fresh build.
func reportQuery(in url.Values, q url.Values) url.Values {
	if v := in.Get("version"); v != "" {
		q.Set("version", v)
	}
	if in.Get("fresh") == "1" {
		q.Set("fresh", "1")
	}
	return q
}

func (c *console) serveDailyReport(w http.ResponseWriter, r *http.Request, p auth.Person) {
	in := r.URL.Query()
	kod := strings.TrimSpace(in.Get("kod_to"))
	if kod == "" || !p.SeesPost(kod) {
		c.fail(w, r, p, http.StatusForbidden, "Отчёт этого таможенного органа вам недоступен.")
		return
	}
	day, err := c.parseDay(in.Get("date"))
	if err != nil {
		c.fail(w, r, p, http.StatusBadRequest, err.Error())
		return
	}
	delegate(c.cfg.Daily, w, r, "/api/v1/reports/daily", reportQuery(in, url.Values{"kod_to": {kod}, "date": {day.Format("2006-01-02")}}))
}

func (c *console) serveMonthlyReport(w http.ResponseWriter, r *http.Request, p auth.Person) {
	if !c.seesRegion(p) {
		c.fail(w, r, p, http.StatusForbidden, "Ежемесячный отчёт охватывает весь регион и доступен только региональным ролям.")
		return
	}
	in := r.URL.Query()
	m, err := report.ParseMonth(strings.TrimSpace(in.Get("month")), c.loc)
	if err != nil {
		c.fail(w, r, p, http.StatusBadRequest, "Месяц: ожидается ГГГГ-ММ.")
		return
	}
	delegate(c.cfg.Monthly, w, r, "/api/v1/reports/monthly", reportQuery(in, url.Values{"month": {m.Format("2006-01")}}))
}

// --- one scan ----------------------------------------------------------------

type formRevision struct {
	File  store.FileEntry
	Lines int
	Text  string     // the first revision, whole
	Diff  []diffLine // the changes from the revision before
	Error string     // the file could not be read
}

type integrityView struct {
	At                     time.Time
	Kind, Name, Reason     string
	FirstSHA256, NowSHA256 string
	OriginalName           string
}

var integrityKinds = map[idkpb.Integrity_Kind]string{
	idkpb.Integrity_KIND_CHANGED:  "файл изменён после того, как был замечен",
	idkpb.Integrity_KIND_MISSING:  "файл исчез из папки сканера до отправки",
	idkpb.Integrity_KIND_RENAMED:  "имя файла нельзя сохранить как есть",
	idkpb.Integrity_KIND_REJECTED: "файл отвергнут коллектором",
}

func (c *console) serveScan(w http.ResponseWriter, r *http.Request, p auth.Person) {
	q := r.URL.Query()
	num, snim := strings.ToUpper(strings.TrimSpace(q.Get("num_idk"))), strings.TrimSpace(q.Get("num_snim"))
	if num == "" || snim == "" {
		c.fail(w, r, p, http.StatusBadRequest, "Укажите ИДК (num_idk) и снимок (num_snim).")
		return
	}
	if !c.sees(p, num) {
		c.fail(w, r, p, http.StatusForbidden, "Этот ИДК не относится к вашему посту.")
		return
	}
	all, err := c.cfg.Scans.Files(num)
	if err != nil {
		c.internal(w, r, p, err)
		return
	}
	var files []store.FileEntry
	var forms []formRevision
	for _, f := range all {
		if f.NumSnim != snim {
			continue
		}
		files = append(files, f)
		if f.Kind == "form" {
			forms = append(forms, formRevision{File: f})
		}
	}
	slices.SortFunc(files, func(a, b store.FileEntry) int { return strings.Compare(a.Name, b.Name) })
	// form-r001.xml, form-r002.xml, ...: the collector numbers them in
	// order of arrival, so the names sort as the revisions came.
	slices.SortFunc(forms, func(a, b formRevision) int { return strings.Compare(a.File.Name, b.File.Name) })
	prev := ""
	for i := range forms {
		text, err := c.readForm(r.Context(), forms[i].File)
		if err != nil {
			forms[i].Error = err.Error()
			continue
		}
		forms[i].Lines = len(splitLines(text))
		if i == 0 || prev == "" {
			forms[i].Text = text
		} else {
			forms[i].Diff = changed(lineDiff(prev, text), 2)
		}
		prev = text
	}
	var evidence []integrityView
	err = c.cfg.Scans.EachEvent(num, func(_ uint64, ev *idkpb.Event) error {
		in := ev.GetIntegrity()
		if in == nil || in.GetNumSnim() != snim {
			return nil
		}
		evidence = append(evidence, integrityView{
			At: time.Unix(0, ev.CollectorTimeUnixNano), Kind: orString(integrityKinds[in.GetKind()], in.GetKind().String()),
			Name: in.GetName(), Reason: in.GetReason(), OriginalName: in.GetOriginalName(),
			FirstSHA256: fmt.Sprintf("%x", in.GetFirstSha256()), NowSHA256: fmt.Sprintf("%x", in.GetNowSha256()),
		})
		return nil
	})
	if err != nil {
		c.internal(w, r, p, err)
		return
	}
	c.render(w, r, http.StatusOK, "scan", page{Title: "Снимок " + snim, Nav: "", Person: p, Data: struct {
		NumIDK, NumSnim string
		Files           []store.FileEntry
		Forms           []formRevision
		Integrity       []integrityView
	}{num, snim, files, forms, evidence}})
}

// readForm reads a stored form revision as text. CargoRIW writes its
// forms in Windows-1251; one that is valid UTF-8 is taken as it is.
func (c *console) readForm(ctx context.Context, f store.FileEntry) (string, error) {
	if !filepath.IsLocal(filepath.FromSlash(f.StoredAs)) {
		return "", fmt.Errorf("путь %q вне хранилища", f.StoredAs)
	}
	// From the scan folders or the bucket, wherever the store keeps it.
	fh, _, err := c.cfg.Scans.OpenFile(ctx, f.StoredAs)
	if err != nil {
		return "", fmt.Errorf("console: form %s: %w", f.StoredAs, err)
	}
	defer fh.Close()
	b, err := io.ReadAll(io.LimitReader(fh, protocol.MaxFormSize+1))
	if err != nil {
		return "", fmt.Errorf("console: form %s: %w", f.StoredAs, err)
	}
	if len(b) > protocol.MaxFormSize {
		return "", fmt.Errorf("форма больше %d байт", protocol.MaxFormSize)
	}
	if utf8.Valid(b) {
		return string(b), nil
	}
	u, err := charmap.Windows1251.NewDecoder().Bytes(b)
	if err != nil {
		return "", fmt.Errorf("console: form %s: decode Windows-1251: %w", f.StoredAs, err)
	}
	return string(bytes.ToValidUTF8(u, []byte("\uFFFD"))), nil
}

// --- audit ----------------------------------------------------------------

// auditShown is how many of the latest audit entries the page shows.
const auditShown = 200

func (c *console) serveAudit(w http.ResponseWriter, r *http.Request, p auth.Person) {
	if !p.May(auth.ManageAccounts) {
		c.fail(w, r, p, http.StatusForbidden, "Журнал аудита доступен только администратору.")
		return
	}
	entries, err := c.cfg.Audit.Recent(auditShown)
	if err != nil {
		c.internal(w, r, p, err)
		return
	}
	c.render(w, r, http.StatusOK, "audit", page{Title: "Журнал аудита", Nav: "audit", Person: p, Data: entries})
}
