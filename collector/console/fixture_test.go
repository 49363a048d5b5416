package console

import (
	"context"
	"crypto/sha256"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"idk/collector/auth"
	"idk/collector/availability"
	"idk/collector/cases"
	"idk/collector/fleet"
	"idk/collector/ingest"
	"idk/collector/nshs"
	"idk/collector/report"
	"idk/collector/store"
	"idk/protocol/idkpb"
	"idk/simulator/simclock"
)

// The fixture's region: two posts, one ИДК each.
const (
	postA, postB = "10101010", "10202020"
	idkA, idkB   = "850591", "850592"
	snimA, snimB = "201711270001", "201711270002"
	testCSRF     = "csrf-token-of-the-test-session"
)

var (
	msk = time.FixedZone("MSK", 3*3600)
	// start is "now" when a fixture is built: 10:00 on 27.11.2026.
	start = time.Date(2026, 11, 27, 10, 0, 0, 0, msk)

	devA = &idkpb.Device{NumIdk: idkA, TypeIdk: 2, KodTo: postA, NaimTo: "Балтийская", NaimZtk: "ПКТ", DislIdk: 2}
	devB = &idkpb.Device{NumIdk: idkB, TypeIdk: 1, KodTo: postB, NaimTo: "Псковская", NaimZtk: "МАПП", DislIdk: 1}

	regional  = auth.Person{Login: "analyst", Name: "Аналитик Тестовый", Role: auth.Analyst}
	admin     = auth.Person{Login: "admin", Name: "Админ Тестовый", Role: auth.Admin}
	leadA     = auth.Person{Login: "lead-a", Name: "Старший А", Role: auth.ShiftLead, Posts: []string{postA}}
	headA     = auth.Person{Login: "head-a", Name: "Начальник А", Role: auth.HeadOfPost, Posts: []string{postA}}
	registry_ = map[string]string{idkA: postA, idkB: postB}
)

// fixture is the console on the collector's real parts: the store and its
// index, ingest with the availability journal, the tracker, the case
// engine on its own bbolt file, the НШС book and the report archive, on
// a virtual clock. Only what has no implementation yet (the gate's
// sessions and audit log, the fleet) is a stand-in.
type fixture struct {
	t       *testing.T
	clk     *simclock.Clock
	st      *store.Store
	in      *ingest.Ingest
	tracker *availability.Tracker
	engine  *cases.Engine
	h       http.Handler
	seq     map[string]uint64
	signIns *fakeSessions
	daily   *recorder
	caseA   string // an open inspection at ИДК A: arrival and scan
	caseB   string // the same at ИДК B
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	dir := t.TempDir()
	clk := simclock.New(start.Add(-14 * time.Hour)) // 20:00 the day before: the history starts there
	st, err := store.Open(filepath.Join(dir, "store"), store.Options{Location: msk, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	index := ingest.FromStore(st)
	tracker := availability.NewTracker(msk, clk)
	journal := availability.NewJournal(tracker)
	scans := report.NewScanJournal(msk)
	scans.Use(index)
	in := ingest.New(ingest.Config{Log: index,
		Consumers: map[string]ingest.Consumer{"availability": journal, "report.scans": scans},
		Followers: []ingest.Follower{journal}})
	if err := in.Load(); err != nil {
		t.Fatal(err)
	}
	engine, err := cases.Open(filepath.Join(dir, "cases.db"), msk, clk)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { engine.Close() })
	for _, d := range []*idkpb.Device{devA, devB} {
		if err := engine.SetDevice(availability.Device{NumIDK: d.NumIdk, TypeIDK: d.TypeIdk, KodTO: d.KodTo, NaimTO: d.NaimTo, NaimZTK: d.NaimZtk, DislIDK: d.DislIdk}); err != nil {
			t.Fatal(err)
		}
	}
	book := nshs.NewBook(index, msk, clk)
	book.UseSteps(tracker)
	roster, err := report.OpenRoster(filepath.Join(dir, "roster.toml"), clk)
	if err != nil {
		t.Fatal(err)
	}
	entries := report.NewEntries(index, scans, msk, clk)
	builder := report.NewBuilder(report.Sources{Index: index, Scans: scans, Entries: entries, Cases: engine, Roster: roster, Location: msk, Clock: clk})
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	archive, err := report.OpenArchive(filepath.Join(dir, "reports"), builder, clk, log)
	if err != nil {
		t.Fatal(err)
	}
	offices := func() []string { return []string{postA, postB} }

	f := &fixture{t: t, clk: clk, st: st, in: in, tracker: tracker, engine: engine, seq: map[string]uint64{}, signIns: &fakeSessions{}}
	f.daily = &recorder{next: &report.DailyHandler{Archive: archive, Builder: builder, Offices: offices, TempDir: dir}}

	// Yesterday evening both ИДК were switched off; the day's states.
	f.state(devA, start.Add(-14*time.Hour), idkpb.DeviceState_DEVICE_STATE_IDLE, 0)
	f.state(devB, start.Add(-14*time.Hour), idkpb.DeviceState_DEVICE_STATE_IDLE, 0)
	f.advance(start.Add(-2 * time.Hour)) // 08:00
	f.state(devA, f.clk.Now(), idkpb.DeviceState_DEVICE_STATE_WORKING, 0)
	f.state(devB, f.clk.Now(), idkpb.DeviceState_DEVICE_STATE_WORKING, 0)
	f.advance(start.Add(-90 * time.Minute)) // 08:30
	f.state(devA, f.clk.Now(), idkpb.DeviceState_DEVICE_STATE_WAITING, 0)
	f.advance(start.Add(-time.Hour)) // 09:00
	f.state(devA, f.clk.Now(), idkpb.DeviceState_DEVICE_STATE_INOPERABLE, idkpb.InoperableCause(1))
	f.state(devB, f.clk.Now(), idkpb.DeviceState_DEVICE_STATE_INOPERABLE, idkpb.InoperableCause(1))
	f.advance(start.Add(-40 * time.Minute)) // 09:20: A works again, B stays down
	f.state(devA, f.clk.Now(), idkpb.DeviceState_DEVICE_STATE_WORKING, 0)

	// A scan at each ИДК with its form in two revisions, and a file of A's
	// scan that changed after it was seen.
	f.advance(start.Add(-5 * time.Minute)) // 09:55
	f.events(devA, &idkpb.Event{Body: &idkpb.Event_ScanSeen{ScanSeen: &idkpb.ScanSeen{NumSnim: snimA}}})
	f.events(devA, form(snimA, 1, "<form>\n<a>1</a>\n<b>старое</b>\n<c>3</c>\n</form>\n"))
	f.events(devA, form(snimA, 2, "<form>\n<a>1</a>\n<b>новое</b>\n<c>3</c>\n</form>\n"))
	f.events(devA, &idkpb.Event{Body: &idkpb.Event_Integrity{Integrity: &idkpb.Integrity{Kind: idkpb.Integrity_KIND_CHANGED, NumSnim: snimA, Name: "image.raw",
		FirstSha256: []byte{1, 2}, NowSha256: []byte{3, 4}}}})
	f.events(devB, &idkpb.Event{Body: &idkpb.Event_ScanSeen{ScanSeen: &idkpb.ScanSeen{NumSnim: snimB}}})

	// One open inspection at each ИДК: the object arrived, was scanned.
	f.caseA = f.add(cases.Event{Kind: cases.Arrival, Time: f.clk.Now(), NumIDK: idkA, By: "collector", Source: "agent"})
	f.add(cases.Event{Kind: cases.Scan, Time: f.clk.Now(), NumIDK: idkA, NumSnim: snimA, By: "collector", Source: "agent"})
	f.caseB = f.add(cases.Event{Kind: cases.Arrival, Time: f.clk.Now(), NumIDK: idkB, By: "collector", Source: "agent"})
	f.add(cases.Event{Kind: cases.Scan, Time: f.clk.Now(), NumIDK: idkB, NumSnim: snimB, By: "collector", Source: "agent"})
	f.advance(start)

	h, err := New(Config{
		Sessions: f.signIns,
		Audit:    fakeAudit{{Time: start, By: "admin (admin)", Action: "sign_in"}},
		CSRF:     func(context.Context) string { return testCSRF },
		Fleet: fakeFleet{
			{NumIDK: idkA, KodTO: postA, Connected: true, LastSeen: start.Add(-2 * time.Second), ClockOffset: 3 * time.Minute,
				BacklogFiles: 4, BacklogBytes: 5 << 20, OldestUnsent: start.Add(-10 * time.Minute), CertNotAfter: start.AddDate(0, 0, 12)},
			{NumIDK: idkB, KodTO: postB, Connected: false, LastSeen: start.Add(-time.Hour), CertNotAfter: start.AddDate(1, 0, 0)},
		},
		Live:     tracker,
		History:  StoreHistory{Index: index, Location: msk, Clock: clk},
		Cases:    engine,
		NSHS:     book,
		Scans:    st,
		Versions: archive,
		Daily:    f.daily,
		Monthly:  &report.MonthlyHandler{Archive: archive, Builder: builder, Offices: offices, TempDir: dir},
		Post: func(n string) (string, bool) {
			k, ok := registry_[n]
			return k, ok
		},
		Offices:  offices,
		Location: msk,
		Clock:    clk,
		Log:      log,
	})
	if err != nil {
		t.Fatal(err)
	}
	f.h = h
	return f
}

func form(snim string, rev uint32, content string) *idkpb.Event {
	sum := sha256.Sum256([]byte(content))
	return &idkpb.Event{Body: &idkpb.Event_Form{Form: &idkpb.FormRevision{NumSnim: snim, Revision: rev, Content: []byte(content), Sha256: sum[:]}}}
}

// advance moves the virtual clock to t.
func (f *fixture) advance(t time.Time) {
	f.t.Helper()
	if t.Before(f.clk.Now()) {
		f.t.Fatalf("clock would go back from %v to %v", f.clk.Now(), t)
	}
	f.clk.Advance(t.Sub(f.clk.Now()))
}

// events ingests events of dev, timed now by the collector's clock.
func (f *fixture) events(dev *idkpb.Device, evs ...*idkpb.Event) {
	f.t.Helper()
	for _, ev := range evs {
		f.seq[dev.NumIdk]++
		ev.Seq = f.seq[dev.NumIdk]
		if ev.TimeUnixNano == 0 {
			ev.TimeUnixNano = f.clk.Now().UnixNano()
		}
	}
	if _, err := f.in.Ingest(dev, 1, evs, func(n int64) time.Time { return time.Unix(0, n) }); err != nil {
		f.t.Fatal(err)
	}
}

// state ingests a state change of dev at.
func (f *fixture) state(dev *idkpb.Device, at time.Time, s idkpb.DeviceState, cause idkpb.InoperableCause) {
	f.t.Helper()
	f.events(dev, &idkpb.Event{TimeUnixNano: at.UnixNano(), Body: &idkpb.Event_State{State: &idkpb.StateChange{State: s, Cause: cause, Source: "controller",
		Site: &idkpb.Site{KodTo: dev.KodTo, NaimTo: dev.NaimTo, NaimZtk: dev.NaimZtk, Disl: dev.DislIdk}}}})
}

func (f *fixture) add(ev cases.Event) string {
	f.t.Helper()
	id, err := f.engine.Add(ev)
	if err != nil {
		f.t.Fatal(err)
	}
	return id
}

// do sends a request as p (nobody when p.Login is empty), as the gate
// would pass it on: the person in the context. A POST carries form and
// the CSRF token unless form already has one.
func (f *fixture) do(p auth.Person, method, target string, form url.Values, cookies ...*http.Cookie) *httptest.ResponseRecorder {
	f.t.Helper()
	var body io.Reader
	if method == http.MethodPost {
		if form == nil {
			form = url.Values{}
		}
		if _, ok := form[auth.CSRFField]; !ok {
			form.Set(auth.CSRFField, testCSRF)
		}
		body = strings.NewReader(form.Encode())
	}
	r := httptest.NewRequest(method, target, body)
	if method == http.MethodPost {
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for _, c := range cookies {
		r.AddCookie(c)
	}
	if p.Login != "" {
		r = r.WithContext(auth.WithPerson(r.Context(), p))
	}
	w := httptest.NewRecorder()
	f.h.ServeHTTP(w, r)
	return w
}

// get fetches a page as p and fails unless it is 200.
func (f *fixture) get(p auth.Person, target string) string {
	f.t.Helper()
	w := f.do(p, http.MethodGet, target, nil)
	if w.Code != http.StatusOK {
		f.t.Fatalf("GET %s as %s: %d\n%s", target, p.Login, w.Code, w.Body.String())
	}
	return w.Body.String()
}

type fakeSessions struct {
	mu      sync.Mutex
	outs    int
	persons map[string]auth.Person // login → person; the password is "secret"
}

func (s *fakeSessions) SignIn(w http.ResponseWriter, _ *http.Request, login, password string) (auth.Person, error) {
	p, ok := s.persons[login]
	if !ok || password != "secret" {
		return auth.Person{}, auth.ErrBadCredentials
	}
	http.SetCookie(w, &http.Cookie{Name: "session", Value: "s-" + login})
	return p, nil
}

func (s *fakeSessions) LoginCSRF(http.ResponseWriter, *http.Request) string { return testCSRF }

func (s *fakeSessions) SignOut(http.ResponseWriter, *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.outs++
}

type fakeAudit []auth.Entry

func (a fakeAudit) Recent(n int) ([]auth.Entry, error) { return a[:min(n, len(a))], nil }

type fakeFleet []fleet.Status

func (f fakeFleet) All() []fleet.Status { return f }

// recorder passes requests on to next and remembers their URLs.
type recorder struct {
	mu   sync.Mutex
	urls []string
	next http.Handler
}

func (r *recorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	r.urls = append(r.urls, req.URL.String())
	r.mu.Unlock()
	r.next.ServeHTTP(w, req)
}
