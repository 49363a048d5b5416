package report

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"idk/collector/auth"
	"idk/internal/httpjson"
	"idk/protocol"
)

// XLSXType is the media type of an .xlsx workbook.
const XLSXType = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

// DailyHandler serves the daily report. The collector puts it behind its
// API token.
//
//	GET  /api/v1/reports/daily?date=2026-11-27&kod_to=10216100[&version=N][&fresh=1]
//	     the day's report as .xlsx: the latest published version (or
//	     version N) byte for byte; a day not published yet, or fresh=1,
//	     is built now and marked X-Report-Version: draft. date may also
//	     be written 27.11.2026; kod_to may be left out when the collector
//	     serves one customs body.
//	GET  /api/v1/reports/daily/versions?date=...&kod_to=...
//	     the day's published versions (JSON)
//	GET  /api/v1/reports/daily/incomplete?date=...&kod_to=...
//	     the month's table 1 rows so far that lack a field, with the fields
//	POST /api/v1/reports/daily/publish?date=...&kod_to=...&by=NAME[&reason=TEXT]
//	     publish now: a new version if the content changed since the last
//
// The workbook carries X-Report-Version, X-Report-SHA256 (of the file)
// and X-Report-Incomplete (table 1 rows lacking a field) headers.
type DailyHandler struct {
	Archive *Archive
	Builder *Builder
	Offices func() []string // the customs bodies the collector serves
	TempDir string          // where a draft is built before it is sent; "" is os.TempDir
	routes  routes
}

func (h *DailyHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.routes.serve(w, r, func(mux *http.ServeMux) {
		mux.HandleFunc("GET /api/v1/reports/daily", h.serveDaily)
		mux.HandleFunc("GET /api/v1/reports/daily/versions", h.serveVersions)
		mux.HandleFunc("GET /api/v1/reports/daily/incomplete", h.serveIncomplete)
		mux.HandleFunc("POST /api/v1/reports/daily/publish", h.servePublish)
	})
}

// routes is a handler's ServeMux, built on its first request: the
// patterns are parsed once, not on every request.
type routes struct {
	once sync.Once
	mux  *http.ServeMux
}

func (rs *routes) serve(w http.ResponseWriter, r *http.Request, build func(*http.ServeMux)) {
	rs.once.Do(func() {
		rs.mux = http.NewServeMux()
		build(rs.mux)
	})
	rs.mux.ServeHTTP(w, r)
}

// ParseDay reads a report date: 2026-11-27 or 27.11.2026, as midnight in
// loc.
func ParseDay(s string, loc *time.Location) (time.Time, error) {
	if s == "" {
		return time.Time{}, errors.New("date is required (2026-11-27 or 27.11.2026)")
	}
	if t, err := time.ParseInLocation("2006-01-02", s, loc); err == nil {
		return t, nil
	}
	t, err := ParseDate(s, loc)
	if err != nil {
		return time.Time{}, fmt.Errorf("date %q: want 2026-11-27 or 27.11.2026", s)
	}
	return t, nil
}

// target reads the query, which may have date, kod_to and the parameters
// in more, and the report it names; on failure it has answered 400 or 404.
func (h *DailyHandler) target(w http.ResponseWriter, r *http.Request, more ...string) (kod string, day time.Time, q url.Values, ok bool) {
	q, ok = httpjson.Query(w, r, append([]string{"date", "kod_to"}, more...)...)
	if !ok {
		return "", time.Time{}, nil, false
	}
	day, err := ParseDay(q.Get("date"), h.Builder.Location())
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return "", time.Time{}, nil, false
	}
	kod = q.Get("kod_to")
	if kod == "" {
		offices := h.Offices()
		if len(offices) != 1 {
			http.Error(w, fmt.Sprintf("kod_to is required: this collector serves %s", strings.Join(offices, ", ")), http.StatusBadRequest)
			return "", time.Time{}, nil, false
		}
		kod = offices[0]
	}
	if err := protocol.CheckKodTO(kod); err != nil {
		http.Error(w, fmt.Sprintf("kod_to: %v", err), http.StatusBadRequest)
		return "", time.Time{}, nil, false
	}
	if !slices.Contains(h.Offices(), kod) {
		http.Error(w, fmt.Sprintf("kod_to %s: no ИДК of this collector belongs to it", kod), http.StatusNotFound)
		return "", time.Time{}, nil, false
	}
	return kod, day, q, true
}

func (h *DailyHandler) serveDaily(w http.ResponseWriter, r *http.Request) {
	kod, day, q, ok := h.target(w, r, "version", "fresh")
	if !ok {
		return
	}
	version, ok := versionParam(w, q.Get("version"))
	if !ok {
		return
	}
	name := fmt.Sprintf("idk-daily-%s-%s", kod, day.Format("2006-01-02"))
	if q.Get("fresh") != "1" && servePublished(w, r, name, version, func() (*os.File, Version, error) { return h.Archive.Open(kod, day, version) }) {
		return
	}
	d, err := h.Builder.Daily(kod, day)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	serveDraft(w, r, h.TempDir, name, d.Built, func(w io.Writer) (int, error) {
		err := d.WriteXLSX(w)
		return len(d.Incomplete), err
	})
}

// versionParam reads a version parameter: "" is 0, the latest. On
// failure it has answered 400.
func versionParam(w http.ResponseWriter, s string) (int, bool) {
	if s == "" {
		return 0, true
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		http.Error(w, fmt.Sprintf("version %q: want a version number from 1", s), http.StatusBadRequest)
		return 0, false
	}
	return n, true
}

// servePublished answers with the published file open finds, named name
// and marked with its version, SHA-256 and incomplete rows. It reports
// whether it answered: it has when it sent the file, or an error for a
// version asked for that is not there or a failure. A report not
// published yet, with no version asked for, is left to the caller.
func servePublished(w http.ResponseWriter, r *http.Request, name string, version int, open func() (*os.File, Version, error)) bool {
	f, v, err := open()
	switch {
	case err == nil:
		defer f.Close()
		w.Header().Set("Content-Type", XLSXType)
		w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="%s-v%d.xlsx"`, name, v.Version))
		w.Header().Set("X-Report-Version", strconv.Itoa(v.Version))
		w.Header().Set("X-Report-SHA256", v.SHA256)
		w.Header().Set("X-Report-Incomplete", strconv.Itoa(v.Incomplete))
		http.ServeContent(w, r, "", v.Published, f)
		return true
	case version > 0 || !errors.Is(err, ErrNotPublished):
		status := http.StatusInternalServerError
		if errors.Is(err, ErrNotPublished) {
			status = http.StatusNotFound
		}
		http.Error(w, err.Error(), status)
		return true
	}
	return false
}

// serveDraft answers with a workbook built now by write, which returns
// the number of incomplete rows, marked as a draft. It is written to a
// temporary file in tempDir first, so that a failure half-way is an error
// answer, not a truncated workbook sent as a success.
func serveDraft(w http.ResponseWriter, r *http.Request, tempDir, name string, built time.Time, write func(io.Writer) (int, error)) {
	tmp, err := os.CreateTemp(tempDir, "idk-report-*.xlsx")
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	incomplete, err := write(tmp)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", XLSXType)
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="%s-draft.xlsx"`, name))
	w.Header().Set("X-Report-Version", "draft")
	w.Header().Set("X-Report-Incomplete", strconv.Itoa(incomplete))
	http.ServeContent(w, r, "", built, tmp)
}

func (h *DailyHandler) serveVersions(w http.ResponseWriter, r *http.Request) {
	kod, day, _, ok := h.target(w, r)
	if !ok {
		return
	}
	writeVersions(w)(h.Archive.Versions(kod, day))
}

// writeVersions answers with a report's versions, or the error reading
// them.
func writeVersions(w http.ResponseWriter) func([]Version, error) {
	return func(vs []Version, err error) {
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		if vs == nil {
			vs = []Version{}
		}
		httpjson.Write(w, vs)
	}
}

// Incomplete is the answer of /api/v1/reports/daily/incomplete.
type Incomplete struct {
	KodTO string         `json:"kod_to"`
	Date  string         `json:"date"`
	Rows  int            `json:"rows"` // table 1 rows of the month so far
	Count int            `json:"incomplete"`
	ByDay map[string]int `json:"by_day"` // incomplete rows by DATE_SYS
	List  []Missing      `json:"list"`
}

func (h *DailyHandler) serveIncomplete(w http.ResponseWriter, r *http.Request) {
	kod, day, _, ok := h.target(w, r)
	if !ok {
		return
	}
	d, err := h.Builder.Daily(kod, day)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	rows := 0
	if err := d.Sheets[0].Rows(func(Row) error { rows++; return nil }); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	list := d.Incomplete
	if list == nil {
		list = []Missing{}
	}
	byDay := map[string]int{}
	for _, m := range list {
		byDay[m.Date]++
	}
	httpjson.Write(w, Incomplete{KodTO: kod, Date: FormatDate(day), Rows: rows, Count: len(list), ByDay: byDay, List: list})
}

func (h *DailyHandler) servePublish(w http.ResponseWriter, r *http.Request) {
	kod, day, q, ok := h.target(w, r, "by", "reason")
	if !ok {
		return
	}
	by := auth.By(r, strings.TrimSpace(q.Get("by")))
	if by == "" {
		http.Error(w, "by is required: who publishes", http.StatusBadRequest)
		return
	}
	v, created, err := h.Archive.Publish(kod, day, by, q.Get("reason"))
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	httpjson.Write(w, struct {
		Created bool `json:"created"`
		Version
	}{created, v})
}
