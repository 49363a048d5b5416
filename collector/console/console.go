// Package console is the collector's web console: the pages the people of
// the region work with (shift leads, heads of post, РТУ analysts,
// administrators), in Russian, rendered on the server with html/template.
//
// Everything it needs is embedded (templates and static files), so it
// works on a control-room network without internet, and it has no build
// step. The only script is static/console.js: live countdowns of the
// 15/15/30-minute limits (item 35) and a gentle refresh of the boards.
// The collector's Content-Security-Policy forbids inline scripts and
// styles, so the pages use classes only; SVG presentation attributes are
// allowed and the day timeline is inline SVG.
//
// Who is asking comes from the request's context (the gate puts it there,
// auth.FromContext); the gate also checks the session and the CSRF token.
// Every page shows only what auth.Person.Sees, judged by the post an ИДК
// is enrolled at in the collector's registry (Config.Post), never by what
// a request says; every POST checks the person's action (auth.Person.May)
// and the scope of its target again, answering 403 otherwise.
//
// The console talks to the collector's parts through small interfaces
// declared here, so that tests can build it on real parts and so that a
// part it only reads is not handed over whole.
package console

import (
	"context"
	"embed"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"idk/collector/auth"
	"idk/collector/availability"
	"idk/collector/cases"
	"idk/collector/fleet"
	"idk/collector/ingest"
	"idk/collector/nshs"
	"idk/collector/report"
	"idk/collector/store"
	"idk/internal/clock"
	"idk/protocol/idkpb"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Sessions signs people in and out: *auth.Gate.
type Sessions interface {
	SignIn(w http.ResponseWriter, r *http.Request, login, password string) (auth.Person, error)
	SignOut(w http.ResponseWriter, r *http.Request)
	// LoginCSRF is the sign-in form's own CSRF token (there is no
	// session yet), which SignIn checks.
	LoginCSRF(w http.ResponseWriter, r *http.Request) string
}

// AuditLog is the gate's audit log (*auth.Audit), read by the admin's page.
type AuditLog interface {
	Recent(n int) ([]auth.Entry, error)
}

// Fleet is what the collector knows of each agent's link (*fleet.Fleet).
type Fleet interface {
	All() []fleet.Status
}

// Live is the availability tracker's live side (*availability.Tracker):
// the ИДК it knows, their state now, today's table 3 rows, the incidents
// and their acknowledgement.
type Live interface {
	Devices() []string
	CurrentStates() map[string]string
	Rows(numIDK string, day time.Time) []availability.Row
	Incidents(numIDK string) []availability.Incident
	Ack(numIDK, id, by string) error
}

// History is table 3 of any day, from the stored state changes: the
// day's rows and each ИДК's runs of one state, for the timeline.
// StoreHistory implements it over the collector's index.
type History interface {
	DayRows(day time.Time) ([]availability.DayRow, error)
	Runs(numIDK string, day time.Time) ([]availability.Run, error)
}

// StoreHistory reads History from the availability journal in the
// collector's index (availability.DayRows, DayRuns): any past day, also
// one the tracker no longer keeps.
type StoreHistory struct {
	Index    ingest.Viewer // ingest.FromStore(st)
	Location *time.Location
	Clock    clock.Clock
}

// DayRows implements History.
func (h StoreHistory) DayRows(day time.Time) ([]availability.DayRow, error) {
	return availability.DayRows(h.Index, day, h.Location, h.Clock.Now())
}

// Runs implements History.
func (h StoreHistory) Runs(numIDK string, day time.Time) ([]availability.Run, error) {
	return availability.DayRuns(h.Index, numIDK, day, h.Location, h.Clock.Now())
}

// Cases is the inspection engine (*cases.Engine).
type Cases interface {
	Cases() []cases.Case
	OpenCases() []cases.Case
	DayCounts(day time.Time) (scans, suspects map[string]int)
	Case(id string) (cases.Case, bool)
	Add(ev cases.Event) (string, error)
	WithoutReason() ([]cases.Row, error)
	SetReason(id, reason, by string) error
	Decide(caseID string, objective bool, by, note string) error
	Decisions(ids ...string) (map[string][]cases.BreachDecision, error)
	BreachHistory(from, to time.Time) ([]cases.History, error)
}

// Book is the НШС book (*nshs.Book).
type Book interface {
	Between(from, to time.Time) ([]nshs.NSHS, error)
}

// Scans is the collector's store (*store.Store): a scan's files, their
// content (OpenFile: from the scan folders or the bucket, wherever the
// store keeps them), and the events (integrity reports) of its ИДК.
type Scans interface {
	Files(numIDK string) ([]store.FileEntry, error)
	OpenFile(ctx context.Context, storedAs string) (io.ReadCloser, int64, error)
	EachEvent(numIDK string, fn func(epoch uint64, ev *idkpb.Event) error) error
}

// Versions lists the published versions of a day's report
// (*report.Archive).
type Versions interface {
	Versions(kodTO string, day time.Time) ([]report.Version, error)
}

// Config holds the parts the console works with. Every field but Log,
// CSRF, Record and Secure is required.
type Config struct {
	Sessions Sessions // *auth.Gate
	Audit    AuditLog // gate.Audit
	// CSRF returns the CSRF token of the request's session (or of the
	// sign-in form) for the forms; nil is auth.CSRFToken.
	CSRF func(ctx context.Context) string
	// Record, if set, writes an entry of the audit log for each change
	// made through the console (Gate.Record).
	Record func(r *http.Request, action, target, detail string)

	Fleet    Fleet
	Live     Live // *availability.Tracker
	History  History
	Cases    Cases
	NSHS     Book
	Scans    Scans
	Versions Versions     // *report.Archive
	Daily    http.Handler // *report.DailyHandler, serving /api/v1/reports/daily
	Monthly  http.Handler // *report.MonthlyHandler, serving /api/v1/reports/monthly

	// Post names the customs body (KOD_TO) an ИДК is enrolled at, from
	// the registry: what decides who sees it.
	Post func(numIDK string) (kodTO string, ok bool)
	// Offices lists the customs bodies the collector serves.
	Offices func() []string

	Location *time.Location
	Clock    clock.Clock
	Log      *slog.Logger
	// Secure marks the flash cookie Secure (the console is on HTTPS).
	Secure bool
}

// console serves the pages.
type console struct {
	cfg   Config
	loc   *time.Location
	clk   clock.Clock
	log   *slog.Logger
	pages map[string]*template.Template
	mux   *http.ServeMux
}

// pageNames are the templates under templates/, each rendered inside
// layout.html.
var pageNames = []string{"login", "fleet", "inspections", "breaches", "table4", "incidents", "day", "reports", "scan", "audit", "error"}

// New checks cfg, parses every template (a broken one fails here, at
// start, not at a request) and returns the console's handler. It serves
// everything but /api/, /metrics and /healthz; the collector puts it
// behind Gate.Console.
func New(cfg Config) (http.Handler, error) {
	var missing []string
	for name, set := range map[string]bool{
		"Sessions": cfg.Sessions != nil, "Audit": cfg.Audit != nil, "Fleet": cfg.Fleet != nil, "Live": cfg.Live != nil,
		"History": cfg.History != nil, "Cases": cfg.Cases != nil, "NSHS": cfg.NSHS != nil,
		"Scans": cfg.Scans != nil, "Versions": cfg.Versions != nil, "Daily": cfg.Daily != nil, "Monthly": cfg.Monthly != nil,
		"Post": cfg.Post != nil, "Offices": cfg.Offices != nil, "Location": cfg.Location != nil, "Clock": cfg.Clock != nil,
	} {
		if !set {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		slices.Sort(missing)
		return nil, fmt.Errorf("console: config lacks %s", strings.Join(missing, ", "))
	}
	c := &console{cfg: cfg, loc: cfg.Location, clk: cfg.Clock, log: cfg.Log}
	if c.log == nil {
		c.log = slog.Default()
	}
	if c.cfg.CSRF == nil {
		c.cfg.CSRF = auth.CSRFToken
	}
	pages, err := parsePages(templateFS, c.funcs())
	if err != nil {
		return nil, err
	}
	c.pages = pages
	c.routes()
	return c, nil
}

// parsePages parses templates/layout.html of fsys with each page's
// template.
func parsePages(fsys fs.FS, funcs template.FuncMap) (map[string]*template.Template, error) {
	pages := map[string]*template.Template{}
	for _, name := range pageNames {
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(fsys, "templates/layout.html", "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("console: template %s: %w", name, err)
		}
		// A page whose content is not defined would render an empty
		// body: an error at start as well.
		if t.Lookup("content") == nil {
			return nil, fmt.Errorf("console: template %s defines no content", name)
		}
		pages[name] = t
	}
	return pages, nil
}

func (c *console) routes() {
	mux := http.NewServeMux()
	static, _ := fs.Sub(staticFS, "static") // the embedded folder is there: a compile-time fact
	mux.Handle("GET /static/", http.StripPrefix("/static/", staticHandler(static)))
	mux.HandleFunc("GET /login", c.serveLogin)
	mux.HandleFunc("POST /login", c.serveSignIn)
	mux.HandleFunc("POST /logout", c.signedIn(c.serveLogout))
	mux.HandleFunc("GET /{$}", c.signedIn(c.serveFleet))
	mux.HandleFunc("GET /inspections", c.signedIn(c.serveInspections))
	mux.HandleFunc("POST /inspections/event", c.signedIn(c.servePostEvent))
	mux.HandleFunc("GET /breaches", c.signedIn(c.serveBreaches))
	mux.HandleFunc("POST /breaches/reason", c.signedIn(c.servePostReason))
	mux.HandleFunc("POST /breaches/decision", c.signedIn(c.servePostDecision))
	mux.HandleFunc("GET /table4", c.signedIn(c.serveTable4))
	mux.HandleFunc("GET /incidents", c.signedIn(c.serveIncidents))
	mux.HandleFunc("POST /incidents/ack", c.signedIn(c.servePostAck))
	mux.HandleFunc("GET /day", c.signedIn(c.serveDay))
	mux.HandleFunc("GET /reports", c.signedIn(c.serveReports))
	mux.HandleFunc("GET /reports/daily", c.signedIn(c.serveDailyReport))
	mux.HandleFunc("GET /reports/monthly", c.signedIn(c.serveMonthlyReport))
	mux.HandleFunc("GET /scan", c.signedIn(c.serveScan))
	mux.HandleFunc("GET /audit", c.signedIn(c.serveAudit))
	mux.HandleFunc("/", c.signedIn(func(w http.ResponseWriter, r *http.Request, p auth.Person) {
		c.fail(w, r, p, http.StatusNotFound, "Страница не найдена.")
	}))
	c.mux = mux
}

// staticHandler serves the embedded files with a short cache lifetime:
// a new collector version brings new files under the same names.
func staticHandler(files fs.FS) http.Handler {
	fsrv := http.FileServerFS(files)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=300")
		fsrv.ServeHTTP(w, r)
	})
}

// ServeHTTP serves the pages. The headers that keep them out of frames
// and caches (the static files excepted: staticHandler) and limit what
// they may load are the gate's, set on every response (auth.Gate.Console).
func (c *console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.mux.ServeHTTP(w, r)
}

// personHandler is a page for a signed-in person.
type personHandler func(w http.ResponseWriter, r *http.Request, p auth.Person)

// signedIn passes the person the gate found on to h. Without one (the
// gate not in front, a misconfiguration) it sends to the sign-in page
// rather than serve anything. Every page needs View. The gate has already
// checked the session's CSRF token on every POST.
func (c *console) signedIn(h personHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, ok := auth.FromContext(r.Context())
		if !ok {
			http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
			return
		}
		if !p.May(auth.View) {
			c.fail(w, r, p, http.StatusForbidden, "Вашей роли просмотр консоли не разрешён.")
			return
		}
		h(w, r, p)
	}
}

// sees reports whether p may see ИДК numIDK, by the post the registry
// enrolls it at. An ИДК the registry does not know is seen by regional
// roles only.
func (c *console) sees(p auth.Person, numIDK string) bool {
	kod, _ := c.cfg.Post(numIDK)
	return p.Sees(kod, numIDK)
}

// visibleOffices are the customs bodies p sees, in the collector's order.
func (c *console) visibleOffices(p auth.Person) []string {
	var out []string
	for _, k := range c.cfg.Offices() {
		if p.SeesPost(k) {
			out = append(out, k)
		}
	}
	return out
}

// now is the collector's time in its location.
func (c *console) now() time.Time { return c.clk.Now().In(c.loc) }

// today is midnight of the current day in the collector's location.
func (c *console) today() time.Time { return dayStart(c.now()) }

func dayStart(t time.Time) time.Time {
	y, m, d := t.Date()
	return time.Date(y, m, d, 0, 0, 0, 0, t.Location())
}

// page is what layout.html renders around a page's own content.
type page struct {
	Title  string
	Nav    string // the navigation entry to highlight
	Person auth.Person
	CSRF   string
	Flash  *flash
	Now    time.Time
	// Refresh asks console.js to reload the page after this many seconds
	// when nobody is typing into it (0: never).
	Refresh int
	Data    any
}

// render writes page name with status.
func (c *console) render(w http.ResponseWriter, r *http.Request, status int, name string, pg page) {
	t := c.pages[name]
	if t == nil {
		c.log.Error("console: no such page template", "page", name)
		http.Error(w, "внутренняя ошибка консоли", http.StatusInternalServerError)
		return
	}
	pg.Now = c.now()
	if pg.CSRF == "" {
		pg.CSRF = c.cfg.CSRF(r.Context())
	}
	if pg.Flash == nil {
		pg.Flash = c.takeFlash(w, r)
	}
	var buf strings.Builder
	if err := t.ExecuteTemplate(&buf, "layout.html", pg); err != nil {
		c.log.Error("console: render", "page", name, "err", err)
		http.Error(w, "внутренняя ошибка консоли", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(buf.String()))
}

// fail answers with an error page in the layout.
func (c *console) fail(w http.ResponseWriter, r *http.Request, p auth.Person, status int, msg string) {
	c.render(w, r, status, "error", page{Title: http.StatusText(status), Person: p, Data: struct {
		Status  int
		Message string
	}{status, msg}})
}

// internal logs err and answers 500.
func (c *console) internal(w http.ResponseWriter, r *http.Request, p auth.Person, err error) {
	c.log.Error("console: request failed", "path", r.URL.Path, "by", p.By(), "err", err)
	c.fail(w, r, p, http.StatusInternalServerError, "Внутренняя ошибка: "+err.Error())
}

// flash is the message shown once after an action.
type flash struct {
	OK   bool
	Text string
}

const flashCookie = "idk_flash"

// setFlash keeps a message for the next page the browser shows: a short
// cookie, so that the redirect after a POST (303) carries it.
func (c *console) setFlash(w http.ResponseWriter, ok bool, text string) {
	kind := "err"
	if ok {
		kind = "ok"
	}
	http.SetCookie(w, &http.Cookie{
		Name: flashCookie, Value: base64.RawURLEncoding.EncodeToString([]byte(kind + ":" + text)),
		Path: "/", MaxAge: 60, HttpOnly: true, Secure: c.cfg.Secure, SameSite: http.SameSiteLaxMode,
	})
}

// takeFlash reads and clears the flash message, if any.
func (c *console) takeFlash(w http.ResponseWriter, r *http.Request) *flash {
	ck, err := r.Cookie(flashCookie)
	if err != nil {
		return nil
	}
	http.SetCookie(w, &http.Cookie{Name: flashCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: c.cfg.Secure, SameSite: http.SameSiteLaxMode})
	raw, err := base64.RawURLEncoding.DecodeString(ck.Value)
	if err != nil {
		return nil
	}
	kind, text, found := strings.Cut(string(raw), ":")
	if !found || text == "" {
		return nil
	}
	return &flash{OK: kind == "ok", Text: text}
}

// done ends a POST: the flash message, an audit entry when it changed
// something, and a 303 back to where the form was.
func (c *console) done(w http.ResponseWriter, r *http.Request, back string, ok bool, text, action, target string) {
	if ok && c.cfg.Record != nil {
		c.cfg.Record(r, action, target, text)
	}
	c.setFlash(w, ok, text)
	http.Redirect(w, r, auth.SafeNext(back), http.StatusSeeOther)
}

// userError is an error of the engine that the person can fix (a bad
// field): shown as it is.
func userError(err error) bool {
	return errors.Is(err, cases.ErrInvalid) || errors.Is(err, cases.ErrNotFound) || errors.Is(err, availability.ErrUnknownIncident)
}
