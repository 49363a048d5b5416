package console

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"idk/collector/auth"
	"idk/collector/availability"
	"idk/collector/cases"
)

// pagesOf are the pages every signed-in person may open, with what ИДК A
// shows on each.
var pagesOf = []struct{ path, wantA, wantB string }{
	{"/", `data-num-idk="` + idkA + `"`, `data-num-idk="` + idkB + `"`},
	{"/inspections", `data-num-idk="` + idkA + `"`, `data-num-idk="` + idkB + `"`},
	{"/breaches", `data-num-idk="` + idkA + `"`, `data-num-idk="` + idkB + `"`},
	{"/table4?date=2026-11-27", "<td>" + idkA + "</td>", "<td>" + idkB + "</td>"},
	{"/incidents", `data-num-idk="` + idkA + `"`, `data-num-idk="` + idkB + `"`},
	{"/day", `<option value="` + idkA + `"`, `<option value="` + idkB + `"`},
	{"/reports", `data-kod-to="` + postA + `"`, `data-kod-to="` + postB + `"`},
}

// breachBoth makes a breach of TIME_2 at each ИДК: an object that
// arrived 20 minutes ago and is still being inspected.
func (f *fixture) breachBoth() (a, b string) {
	f.t.Helper()
	at := f.clk.Now().Add(-20 * time.Minute)
	a = f.add(cases.Event{Kind: cases.Arrival, Time: at, NumIDK: idkA, By: "collector", Source: "agent"})
	f.add(cases.Event{Kind: cases.Scan, Time: at.Add(time.Minute), NumIDK: idkA, NumSnim: "201711270003", By: "collector", Source: "agent"})
	b = f.add(cases.Event{Kind: cases.Arrival, Time: at, NumIDK: idkB, By: "collector", Source: "agent"})
	f.add(cases.Event{Kind: cases.Scan, Time: at.Add(time.Minute), NumIDK: idkB, NumSnim: "201711270004", By: "collector", Source: "agent"})
	if err := f.engine.Tick(); err != nil {
		f.t.Fatal(err)
	}
	return a, b
}

func TestPagesShowRegionToRegionalPerson(t *testing.T) {
	f := newFixture(t)
	f.breachBoth()
	for _, pg := range pagesOf {
		body := f.get(regional, pg.path)
		for _, want := range []string{pg.wantA, pg.wantB, "Аналитик Тестовый", "Аналитик РТУ", `action="/logout"`, testCSRF} {
			if !strings.Contains(body, want) {
				t.Errorf("%s as a regional analyst: no %q", pg.path, want)
			}
		}
	}
}

func TestShiftLeadSeesOnlyOwnPost(t *testing.T) {
	f := newFixture(t)
	f.breachBoth()
	for _, pg := range pagesOf {
		body := f.get(leadA, pg.path)
		if !strings.Contains(body, pg.wantA) {
			t.Errorf("%s as the shift lead of post A: own ИДК missing (%q)", pg.path, pg.wantA)
		}
		if strings.Contains(body, pg.wantB) || strings.Contains(body, idkB) {
			t.Errorf("%s as the shift lead of post A: shows post B's ИДК %s", pg.path, idkB)
		}
	}
	// Pages about one ИДК or one post of B are refused outright.
	for _, target := range []string{
		"/day?num_idk=" + idkB,
		"/scan?num_idk=" + idkB + "&num_snim=" + snimB,
		"/reports/daily?kod_to=" + postB + "&date=2026-11-27",
		"/reports/monthly?month=2026-11",
	} {
		if w := f.do(leadA, http.MethodGet, target, nil); w.Code != http.StatusForbidden {
			t.Errorf("GET %s as the shift lead of post A: %d, want 403", target, w.Code)
		}
	}
	if len(f.daily.urls) != 0 {
		t.Errorf("the report handler was reached for post B: %v", f.daily.urls)
	}
}

func TestShiftLeadCannotActOnOtherPost(t *testing.T) {
	f := newFixture(t)
	_, breachB := f.breachBoth()
	incB := f.tracker.Incidents(idkB)
	if len(incB) == 0 {
		t.Fatal("fixture: no incident at ИДК B")
	}
	for _, post := range []struct {
		path string
		form url.Values
	}{
		{"/inspections/event", url.Values{"case_id": {f.caseB}, "kind": {string(cases.DocsReturned)}}},
		{"/breaches/reason", url.Values{"id": {breachB}, "reason": {"СБОРНЫЙ ГРУЗ"}}},
		{"/breaches/decision", url.Values{"id": {breachB}, "objective": {"1"}}},
		{"/incidents/ack", url.Values{"num_idk": {idkB}, "id": {incB[0].ID}}},
	} {
		p := leadA
		if post.path == "/breaches/decision" {
			p = headA // a shift lead may not decide at all; the head of A may, but not for B
		}
		if w := f.do(p, http.MethodPost, post.path, post.form); w.Code != http.StatusForbidden {
			t.Errorf("POST %s for post B as %s: %d, want 403", post.path, p.Login, w.Code)
		}
	}
	// Nothing changed at B.
	if c, _ := f.engine.Case(f.caseB); !c.Open {
		t.Error("case of B closed by a refused event")
	}
	if c, _ := f.engine.Case(breachB); c.Reason != "" {
		t.Errorf("breach of B got a reason from a refused form: %q", c.Reason)
	}
	if d, _ := f.engine.Decisions(breachB); len(d) != 0 {
		t.Errorf("breach of B got a decision from a refused form: %v", d)
	}
	if f.tracker.Incidents(idkB)[0].Acked {
		t.Error("incident of B acknowledged by a refused form")
	}
}

func TestRoleLackingActionIsRefused(t *testing.T) {
	f := newFixture(t)
	a, _ := f.breachBoth()
	for _, tc := range []struct {
		p    auth.Person
		path string
		form url.Values
	}{
		{regional, "/inspections/event", url.Values{"case_id": {f.caseA}, "kind": {string(cases.DocsReturned)}}},
		{regional, "/breaches/reason", url.Values{"id": {a}, "reason": {"СБОРНЫЙ ГРУЗ"}}},
		{leadA, "/breaches/decision", url.Values{"id": {a}, "objective": {"1"}}},
		{regional, "/incidents/ack", url.Values{"num_idk": {idkA}, "id": {"x"}}},
	} {
		if w := f.do(tc.p, http.MethodPost, tc.path, tc.form); w.Code != http.StatusForbidden {
			t.Errorf("POST %s as %s: %d, want 403", tc.path, tc.p.Role, w.Code)
		}
	}
	if w := f.do(leadA, http.MethodGet, "/audit", nil); w.Code != http.StatusForbidden {
		t.Errorf("GET /audit as a shift lead: %d, want 403", w.Code)
	}
	if body := f.get(admin, "/audit"); !strings.Contains(body, "sign_in") {
		t.Error("GET /audit as the admin: the entry is missing")
	}
	// The pages do not offer what the person may not do.
	if body := f.get(regional, "/inspections"); strings.Contains(body, `data-kind=`) {
		t.Error("/inspections offers event buttons to an analyst")
	}
	if body := f.get(leadA, "/breaches"); strings.Contains(body, `action="/breaches/decision"`) {
		t.Error("/breaches offers the deputy's decision to a shift lead")
	}
	if body := f.get(headA, "/breaches"); !strings.Contains(body, `action="/breaches/decision"`) {
		t.Error("/breaches does not offer the decision to the head of post")
	}
}

var countdownRE = regexp.MustCompile(`class="countdown[^"]*" data-start="[^"]+" data-deadline="([^"]+)" data-limit-ms="900000"`)

func TestEndEventClosesInspection(t *testing.T) {
	f := newFixture(t)
	body := f.get(leadA, "/inspections")
	if !strings.Contains(body, `data-case-id="`+f.caseA+`"`) || !countdownRE.MatchString(body) {
		t.Fatalf("/inspections: no countdown for the open case %s\n%s", f.caseA, body)
	}
	deadline := countdownRE.FindStringSubmatch(body)[1]
	if want := start.Add(-5 * time.Minute).Add(15 * time.Minute).UTC().Format(time.RFC3339Nano); deadline != want {
		t.Errorf("TIME_2 deadline %s, want %s", deadline, want)
	}
	if !strings.Contains(body, `data-kind="docs_returned" data-case-id="`+f.caseA+`"`) {
		t.Fatal("/inspections: no 22д button for the case")
	}

	w := f.do(leadA, http.MethodPost, "/inspections/event", url.Values{"case_id": {f.caseA}, "kind": {string(cases.DocsReturned)}})
	if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/inspections" {
		t.Fatalf("POST 22д: %d to %q, want 303 to /inspections\n%s", w.Code, w.Header().Get("Location"), w.Body.String())
	}
	c, _ := f.engine.Case(f.caseA)
	if c.Open {
		t.Fatalf("case %s still open after 22д: %+v", f.caseA, c.Timers)
	}
	last := c.Events[len(c.Events)-1]
	if last.Kind != cases.DocsReturned || last.By != leadA.By() || last.Source != "console" {
		t.Errorf("event recorded as %s by %q from %q, want docs_returned by %q from console", last.Kind, last.By, last.Source, leadA.By())
	}
	// The redirect's page shows the flash once, and the countdown is gone.
	body = f.do(leadA, http.MethodGet, "/inspections", nil, w.Result().Cookies()...).Body.String()
	if !strings.Contains(body, `id="flash" class="flash flash-ok"`) || !strings.Contains(body, "22д") {
		t.Errorf("no flash after the event:\n%s", body)
	}
	if strings.Contains(body, `data-case-id="`+f.caseA+`"`) {
		t.Error("/inspections still shows the closed case")
	}
}

func TestBreachCauseAndDecision(t *testing.T) {
	f := newFixture(t)
	a, _ := f.breachBoth()
	body := f.get(leadA, "/breaches")
	if !strings.Contains(body, `data-case-id="`+a+`"`) || !strings.Contains(body, "ПРИЧИНА НЕ УКАЗАНА") {
		t.Fatalf("/breaches: breach %s without its cause is not listed\n%s", a, body)
	}
	w := f.do(leadA, http.MethodPost, "/breaches/reason", url.Values{"id": {a}, "reason": {"детальный анализ снимка"}})
	if w.Code != http.StatusSeeOther {
		t.Fatalf("POST reason: %d\n%s", w.Code, w.Body.String())
	}
	c, _ := f.engine.Case(a)
	if c.Reason != "ДЕТАЛЬНЫЙ АНАЛИЗ СНИМКА" || c.ReasonBy != leadA.By() {
		t.Errorf("reason stored as %q by %q", c.Reason, c.ReasonBy)
	}
	rows, err := f.engine.WithoutReason()
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		if r.ID == a {
			t.Error("the breach still lacks its reason in the engine")
		}
	}
	w = f.do(headA, http.MethodPost, "/breaches/decision", url.Values{"id": {a}, "objective": {"0"}, "note": {"Резолюция"}})
	if w.Code != http.StatusSeeOther {
		t.Fatalf("POST decision: %d\n%s", w.Code, w.Body.String())
	}
	ds, err := f.engine.Decisions(a)
	if err != nil || len(ds[a]) != 1 || ds[a][0].Objective || ds[a][0].By != headA.By() {
		t.Fatalf("decision stored as %+v (%v)", ds, err)
	}
	body = f.get(headA, "/breaches")
	if !strings.Contains(body, "ДЕТАЛЬНЫЙ АНАЛИЗ СНИМКА") || !strings.Contains(body, "НЕОБЪЕКТИВНАЯ") {
		t.Error("/breaches does not show the cause and the decision")
	}
	// An empty cause is refused with a message, and stores nothing.
	w = f.do(leadA, http.MethodPost, "/breaches/reason", url.Values{"id": {a}, "reason": {"  "}})
	if body := f.do(leadA, http.MethodGet, "/breaches", nil, w.Result().Cookies()...).Body.String(); !strings.Contains(body, "flash-err") {
		t.Error("no error flash for an empty cause")
	}
	if c, _ := f.engine.Case(a); c.Reason != "ДЕТАЛЬНЫЙ АНАЛИЗ СНИМКА" {
		t.Errorf("an empty cause replaced the stored one: %q", c.Reason)
	}
}

func TestAckIncident(t *testing.T) {
	f := newFixture(t)
	inc := f.tracker.Incidents(idkA)
	if len(inc) != 1 {
		t.Fatalf("fixture: %d incidents at A, want 1", len(inc))
	}
	body := f.get(leadA, "/incidents")
	if !strings.Contains(body, `data-action="ack" data-incident-id="`+inc[0].ID+`"`) {
		t.Fatalf("/incidents: no ack button for %s", inc[0].ID)
	}
	w := f.do(leadA, http.MethodPost, "/incidents/ack", url.Values{"num_idk": {idkA}, "id": {inc[0].ID}})
	if w.Code != http.StatusSeeOther {
		t.Fatalf("POST ack: %d\n%s", w.Code, w.Body.String())
	}
	if got := f.tracker.Incidents(idkA)[0]; !got.Acked || got.AckedBy != leadA.By() {
		t.Errorf("incident acked %v by %q", got.Acked, got.AckedBy)
	}
}

// segRE finds the timeline's segments and their state classes.
var segRE = regexp.MustCompile(`<rect class="seg (st-[a-z]+)"`)

func TestDayTimelineHasSegmentPerRun(t *testing.T) {
	f := newFixture(t)
	body := f.get(leadA, "/day?num_idk="+idkA+"&date=2026-11-27")
	var got []string
	for _, m := range segRE.FindAllStringSubmatch(body, -1) {
		got = append(got, m[1])
	}
	want := []string{"st-idle", "st-working", "st-waiting", "st-inoperable", "st-working"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("segments %v, want %v", got, want)
	}
	for _, s := range []string{`id="timeline"`, `class="tick-label"`, ">12<", "TIME_NEPAB", "0,20", `class="now"`} {
		if !strings.Contains(body, s) {
			t.Errorf("day page lacks %q", s)
		}
	}
	// A past day comes from the stored history: yesterday from 20:00 off.
	body = f.get(leadA, "/day?num_idk="+idkA+"&date=26.11.2026")
	if m := segRE.FindAllStringSubmatch(body, -1); len(m) != 1 || m[0][1] != "st-idle" {
		t.Errorf("yesterday's segments %v, want one st-idle", m)
	}
	if strings.Contains(body, `class="now"`) {
		t.Error("yesterday's timeline marks now")
	}
}

func TestTimelineGeometry(t *testing.T) {
	from := time.Date(2026, 11, 27, 0, 0, 0, 0, msk)
	runs := []availability.Run{
		{Start: from.Add(-time.Hour), End: from.Add(6 * time.Hour), State: "IDLE"},
		{Start: from.Add(6 * time.Hour), End: from.Add(18 * time.Hour), State: "WORKING"},
	}
	tl := buildTimeline(runs, from, from.AddDate(0, 0, 1), from.Add(18*time.Hour))
	if len(tl.Segments) != 2 || tl.Segments[0].X != 0 || tl.Segments[0].W != 360 || tl.Segments[1].X != 360 || tl.Segments[1].W != 720 {
		t.Errorf("segments %+v", tl.Segments)
	}
	if len(tl.Ticks) != 25 || tl.Ticks[12].X != 720 || tl.Ticks[12].Label != "12" || tl.NowX != 1080 {
		t.Errorf("%d ticks, noon at %v %q, now at %v", len(tl.Ticks), tl.Ticks[12].X, tl.Ticks[12].Label, tl.NowX)
	}
}

func TestFleetBoard(t *testing.T) {
	f := newFixture(t)
	body := f.get(regional, "/")
	rowA := between(body, `data-num-idk="`+idkA+`"`, "</tr>")
	rowB := between(body, `data-num-idk="`+idkB+`"`, "</tr>")
	for _, want := range []string{`data-state="WORKING"`, "на связи", "3 мин", "4 файлов, 5,0 МиБ", "10 мин", `class="cert-warn"`, "(12 дн.)", `<td class="count">1</td>`} {
		if !strings.Contains(rowA, want) {
			t.Errorf("fleet row of A lacks %q:\n%s", want, rowA)
		}
	}
	for _, want := range []string{`data-state="INOPERABLE"`, "нет связи", "1 открыт."} {
		if !strings.Contains(rowB, want) {
			t.Errorf("fleet row of B lacks %q:\n%s", want, rowB)
		}
	}
	if strings.Contains(rowB, "cert-warn\"") {
		t.Error("B's certificate, a year away, is highlighted")
	}
}

func between(s, from, to string) string {
	i := strings.Index(s, from)
	if i < 0 {
		return ""
	}
	s = s[i:]
	if j := strings.Index(s, to); j >= 0 {
		return s[:j]
	}
	return s
}

func TestScanPage(t *testing.T) {
	f := newFixture(t)
	body := f.get(leadA, "/scan?num_idk="+idkA+"&num_snim="+snimA)
	for _, want := range []string{"form-r001.xml", "form-r002.xml", `<span class="d d-del">- &lt;b&gt;старое&lt;/b&gt;</span>`,
		`<span class="d d-add">&#43; &lt;b&gt;новое&lt;/b&gt;</span>`, "image.raw", "файл изменён", "0102"} {
		if !strings.Contains(body, want) {
			t.Errorf("scan page lacks %q\n%s", want, between(body, `<pre class="diff">`, "</pre>"))
		}
	}
	files, _ := f.st.Files(idkA)
	if len(files) == 0 || !strings.Contains(body, files[0].SHA256) {
		t.Error("scan page lacks the stored file's SHA-256")
	}
}

func TestLineDiff(t *testing.T) {
	d := lineDiff("a\nb\nc\nd\n", "a\nc\nx\nd\n")
	var got []string
	for _, l := range d {
		got = append(got, l.Op+l.Text)
	}
	if want := " a -b  c +x  d"; strings.Join(got, " ") != want {
		t.Errorf("diff %q, want %q", strings.Join(got, " "), want)
	}
	if c := changed(lineDiff("1\n2\n3\n4\n5\n6\n7\n8\n", "1\n2\n3\n4\n5\n6\n7\nX\n"), 1); len(c) != 4 || c[0].Op != "…" {
		t.Errorf("context of a change at the end: %+v", c)
	}
}

func TestReportsDownloadThroughArchive(t *testing.T) {
	f := newFixture(t)
	body := f.get(leadA, "/reports")
	if !strings.Contains(body, "/reports/daily?kod_to="+postA+"&amp;date=2026-11-27") || strings.Contains(body, `id="monthly"`) {
		t.Errorf("reports page for the shift lead of A: wrong links\n%s", body)
	}
	w := f.do(leadA, http.MethodGet, "/reports/daily?kod_to="+postA+"&date=27.11.2026", nil)
	if w.Code != http.StatusOK || w.Header().Get("X-Report-Version") != "draft" {
		t.Fatalf("daily report of A: %d, version %q\n%s", w.Code, w.Header().Get("X-Report-Version"), w.Body.String())
	}
	if got := f.daily.urls; len(got) != 1 || got[0] != "/api/v1/reports/daily?date=2026-11-27&kod_to="+postA {
		t.Errorf("report handler asked %v", got)
	}
	if body := f.get(regional, "/reports"); !strings.Contains(body, `id="monthly"`) {
		t.Error("no monthly report for the regional analyst")
	}
}

func TestLogin(t *testing.T) {
	f := newFixture(t)
	f.signIns.persons = map[string]auth.Person{"lead-a": leadA}
	body := f.get(auth.Person{}, "/login?next=/breaches")
	for _, want := range []string{`id="login"`, `name="login"`, `name="password"`, `value="` + testCSRF + `"`, `value="/breaches"`} {
		if !strings.Contains(body, want) {
			t.Errorf("login page lacks %q", want)
		}
	}
	w := f.do(auth.Person{}, http.MethodPost, "/login", url.Values{"login": {"lead-a"}, "password": {"wrong"}, "next": {"/breaches"}})
	if w.Code != http.StatusUnauthorized || !strings.Contains(w.Body.String(), "Неверный логин или пароль") {
		t.Errorf("bad password: %d\n%s", w.Code, w.Body.String())
	}
	for next, want := range map[string]string{"/breaches": "/breaches", "https://evil.example/": "/", "//evil.example/x": "/", "/login": "/", `/\evil`: "/"} {
		w := f.do(auth.Person{}, http.MethodPost, "/login", url.Values{"login": {"lead-a"}, "password": {"secret"}, "next": {next}})
		if w.Code != http.StatusSeeOther || w.Header().Get("Location") != want {
			t.Errorf("sign-in with next %q: %d to %q, want 303 to %q", next, w.Code, w.Header().Get("Location"), want)
		}
	}
	w = f.do(leadA, http.MethodPost, "/logout", nil)
	if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/login" || f.signIns.outs != 1 {
		t.Errorf("sign-out: %d to %q, %d sign-outs", w.Code, w.Header().Get("Location"), f.signIns.outs)
	}
	// Without a person (no gate in front) nothing is served.
	if w := f.do(auth.Person{}, http.MethodGet, "/breaches", nil); w.Code != http.StatusSeeOther || !strings.HasPrefix(w.Header().Get("Location"), "/login?next=") {
		t.Errorf("anonymous page: %d to %q", w.Code, w.Header().Get("Location"))
	}
}

func TestStaticFiles(t *testing.T) {
	f := newFixture(t)
	for _, p := range []string{"/static/console.css", "/static/console.js"} {
		if w := f.do(auth.Person{}, http.MethodGet, p, nil); w.Code != http.StatusOK || w.Body.Len() < 100 {
			t.Errorf("%s: %d, %d bytes", p, w.Code, w.Body.Len())
		}
	}
}

// TestNoInlineScriptOrStyle: the collector's CSP forbids both; a page with
// either would be broken in the browser.
func TestNoInlineScriptOrStyle(t *testing.T) {
	f := newFixture(t)
	f.breachBoth()
	inline := regexp.MustCompile(`(?i)<script(?:\s[^>]*)?>\s*[^<\s]|\sstyle=|<style|\son[a-z]+=`)
	for _, pg := range append(pagesOf, struct{ path, wantA, wantB string }{"/day?num_idk=" + idkA, "", ""},
		struct{ path, wantA, wantB string }{"/scan?num_idk=" + idkA + "&num_snim=" + snimA, "", ""}) {
		if m := inline.FindString(f.get(headA, pg.path)); m != "" {
			t.Errorf("%s has inline script or style: %q", pg.path, m)
		}
	}
}

func TestTemplatesParseAtNew(t *testing.T) {
	c := &console{loc: msk}
	pages, err := parsePages(templateFS, c.funcs())
	if err != nil {
		t.Fatal(err)
	}
	if len(pages) != len(pageNames) {
		t.Errorf("%d pages parsed, want %d", len(pages), len(pageNames))
	}
	broken := fstest.MapFS{
		"templates/layout.html": {Data: []byte(`{{template "content" .}}`)},
	}
	for _, name := range pageNames {
		broken["templates/"+name+".html"] = &fstest.MapFile{Data: []byte(`{{define "content"}}ok{{end}}`)}
	}
	broken["templates/fleet.html"] = &fstest.MapFile{Data: []byte(`{{define "content"}}{{range .}}{{end}`)}
	if _, err := parsePages(broken, c.funcs()); err == nil || !strings.Contains(err.Error(), "fleet") {
		t.Errorf("a broken template parsed: %v", err)
	}
	if _, err := New(Config{CSRF: func(context.Context) string { return "" }}); err == nil || !strings.Contains(err.Error(), "Cases") {
		t.Errorf("New without parts: %v", err)
	}

}
