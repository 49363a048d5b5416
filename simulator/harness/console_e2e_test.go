package harness

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"idk/drivers/modbus"
	"idk/internal/testenv"
	"idk/simulator/plc"
)

// The console's two posts: agents 0 and 2 stand at post A, agent 1 at B.
const (
	consolePostA = "10216100"
	consolePostB = "10216200"
)

// consolePeople are the accounts the browser signs in as, one per role.
var consolePeople = []struct {
	login, name, role, posts string
}{
	{"lead.a", "ПЕТРОВ ПЁТР ПЕТРОВИЧ", "shift_lead", consolePostA},
	{"head.a", "СИДОРОВ СИДОР СИДОРОВИЧ", "head_of_post", consolePostA},
	{"analyst", "ИВАНОВА ИРИНА ИВАНОВНА", "analyst", ""},
	{"admin", "АДМИНОВ АДМИН АДМИНОВИЧ", "admin", ""},
}

const consolePassword = "пароль-для-проверки-1"

// The people's console in a real browser (Debian chromium, driven by
// chromedp) against the real collector with a simulated fleet: three ИДК
// at two posts, a controller whose vehicle arrives (an inspection with a
// live TIME_2 countdown), a controller with a generator fault (an
// incident), a breach of TIME_2 and an inspection at the other post. Each
// role signs in with its own account and sees only what it may: the
// shift lead of post A does not see post B's ИДК or inspection and is
// refused B's scan; they post 22д from the inspection page and the
// countdown stops; they give the breach's cause; a form without the CSRF
// token is refused; the head of post records the deputy's decision; the
// analyst sees the region and cannot post; the administrator reads the
// audit log with the shift lead's name. With IDK_SCREENSHOTS=DIR each
// page is saved there as PNG (docs/screenshots holds such a run).
func TestEndToEndConsoleInBrowser(t *testing.T) {
	chromium := testenv.RequireTool(t, "chromium", "chromium")
	env, err := NewEnv(t.TempDir(), bin, Options{Agents: 3, Posts: []string{consolePostA, consolePostB}})
	if err != nil {
		t.Fatal(err)
	}
	DumpLogsOnFailure(t, env)
	idkA, idkB, idkA2 := env.Agents[0].NumIDK, env.Agents[1].NumIDK, env.Agents[2].NumIDK

	// Controllers: agent 0 waits for a vehicle, agent 2's generator fails.
	plcs := map[int]*plc.Controller{}
	for _, i := range []int{0, 2} {
		m := harnessPLCMap()
		m.GeneratorFault = modbus.Point{Source: modbus.Coil, Address: 2}
		plcs[i] = servePLC(t, env, i, m)
	}
	if err := plcs[2].SetSignal(modbus.GeneratorFault, true); err != nil {
		t.Fatal(err)
	}

	// The accounts, made as the administrator would: idk-collector user add.
	config := filepath.Join(env.Dir, "collector.toml")
	for _, p := range consolePeople {
		args := []string{"user", "add", "-config", config, "-login", p.login, "-name", p.name, "-role", p.role}
		if p.posts != "" {
			args = append(args, "-posts", p.posts)
		}
		cmd := exec.Command(filepath.Join(env.Bin, "idk-collector"), args...)
		cmd.Stdin = strings.NewReader(consolePassword + "\n")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("user add %s: %v: %s", p.login, err, out)
		}
	}

	coll, err := env.StartCollector()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { coll.Stop() })
	for i := range env.Agents {
		a, err := env.StartAgent(i)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { a.Stop() })
	}
	waitDeviceState(t, env, "waiting")
	if err := plcs[0].SetSignal(modbus.VehicleInZone, true); err != nil {
		t.Fatal(err)
	}
	waitDeviceState(t, env, "working")
	waitFor(t, 20*time.Second, "ИДК "+idkA2+" inoperable", func() bool {
		v, err := Metric(env.HTTPAddr, `idk_collector_device_state{num_idk="`+idkA2+`",state="inoperable"}`)
		if err != nil || v != 1 {
			time.Sleep(50 * time.Millisecond)
			return false
		}
		return true
	})
	// Other systems' events, as before accounts (the shared token): an
	// object that arrived at A2 twenty minutes ago (TIME_2 breached) and
	// one at post B five minutes ago.
	now := time.Now()
	breach := postT4Event(t, env, map[string]any{"kind": "arrival", "num_idk": idkA2, "by": "ОПЕРАТОР",
		"time": now.Add(-20 * time.Minute).Format(time.RFC3339)})
	caseB := postT4Event(t, env, map[string]any{"kind": "arrival", "num_idk": idkB, "by": "ОПЕРАТОР",
		"time": now.Add(-5 * time.Minute).Format(time.RFC3339)})
	waitFor(t, 10*time.Second, "the breach recorded", func() bool {
		status, b := apiDo(t, env, "GET", "/api/v1/breaches?without_reason=1", nil)
		if status != 200 || !strings.Contains(string(b), breach) {
			time.Sleep(100 * time.Millisecond)
			return false
		}
		return true
	})

	shots := os.Getenv("IDK_SCREENSHOTS")
	base := "http://" + env.HTTPAddr
	b := &browser{t: t, chromium: chromium, base: base, shots: shots}

	// The shift lead of post A.
	lead := b.signIn("lead.a")
	fleet := lead.html("/", "#fleet")
	for _, want := range []string{idkA, idkA2} {
		if !strings.Contains(fleet, want) {
			t.Errorf("shift lead's fleet board lacks %s", want)
		}
	}
	if who := lead.text("#who"); !strings.Contains(who, consolePeople[0].name) || !strings.Contains(who, "Старший смены") {
		t.Errorf("the header names %q, want the shift lead's name and role", who)
	}
	if strings.Contains(fleet, idkB) {
		t.Errorf("shift lead of post A sees ИДК %s of post B on the fleet board", idkB)
	}
	lead.shot("fleet")
	insp := lead.html("/inspections", "#cases")
	caseA := regexp.MustCompile(`data-case-id="([^"]+)" data-num-idk="` + idkA + `"`).FindStringSubmatch(insp)
	if caseA == nil {
		t.Fatalf("no inspection of %s (the controller's arrival) on /inspections:\n%s", idkA, insp)
	}
	if strings.Contains(insp, caseB) || strings.Contains(insp, `data-num-idk="`+idkB+`"`) {
		t.Errorf("shift lead of post A sees post B's inspection %s", caseB)
	}
	countdown := `#case-` + caseA[1] + ` .countdown`
	if n := lead.count(countdown); n == 0 {
		t.Fatalf("inspection %s has no running countdown", caseA[1])
	}
	lead.shot("inspections")
	lead.click(`button[data-kind="docs_returned"][data-case-id="` + caseA[1] + `"]`)
	if flash := lead.text("#flash"); !strings.Contains(flash, "22д") {
		t.Errorf("after 22д the flash says %q", flash)
	}
	if n := lead.count(countdown); n != 0 {
		t.Errorf("the countdown of %s still runs after 22д", caseA[1])
	}
	if status := lead.status("/scan?num_idk=" + idkB + "&num_snim=1"); status != 403 {
		t.Errorf("shift lead of post A opens a scan of post B: %d, want 403", status)
	}
	if status := lead.status("/day?num_idk=" + idkB); status != 403 {
		t.Errorf("shift lead of post A opens post B's day: %d, want 403", status)
	}
	lead.html("/day?num_idk="+idkA, "#timeline")
	lead.shot("day")

	// A form without the session's CSRF token, and one with a forged
	// token, are refused and change nothing.
	lead.html("/breaches", "#breaches")
	for _, form := range []string{"id=" + breach + "&reason=" + "ПОДДЕЛКА", "id=" + breach + "&reason=ПОДДЕЛКА&csrf=forged"} {
		if status := lead.post("/breaches/reason", form); status != 403 {
			t.Errorf("POST /breaches/reason %q: %d, want 403", form, status)
		}
	}
	row := `tr[data-case-id="` + breach + `"]`
	lead.fill(row+` input[name="reason"]`, "СБОРНЫЙ ГРУЗ, ДОСМОТР ЗАТЯНУЛСЯ")
	lead.click(row + ` button[data-action="reason"]`)
	if r := lead.text(row + " .reason"); r != "СБОРНЫЙ ГРУЗ, ДОСМОТР ЗАТЯНУЛСЯ" {
		t.Errorf("breach cause shown as %q", r)
	}
	if lead.count(row+` button[data-action="decision"]`) != 0 {
		t.Error("the shift lead is offered the deputy's decision")
	}
	lead.shot("breaches")
	lead.html("/incidents", "main")
	if inc := lead.text("main"); !strings.Contains(inc, idkA2) {
		t.Errorf("/incidents lacks the generator fault of %s", idkA2)
	}
	lead.shot("incidents")

	// The head of post decides on the breach.
	head := b.signIn("head.a")
	head.html("/breaches", "#breaches")
	head.click(row + ` input[name="objective"][value="0"]`)
	head.fill(row+` input[name="note"]`, "ПРИЗНАТЬ НЕОБЪЕКТИВНЫМИ")
	head.click(row + ` button[data-action="decision"]`)
	if d := head.text(row + " .decision"); !strings.Contains(d, "НЕОБЪЕКТИВНАЯ") || !strings.Contains(d, consolePeople[1].name) {
		t.Errorf("decision shown as %q, want НЕОБЪЕКТИВНАЯ by %s", d, consolePeople[1].name)
	}

	// The analyst sees the region and may not post an event.
	analyst := b.signIn("analyst")
	fleet = analyst.html("/", "#fleet")
	for _, n := range []string{idkA, idkB, idkA2} {
		if !strings.Contains(fleet, n) {
			t.Errorf("analyst's fleet board lacks %s", n)
		}
	}
	if insp := analyst.html("/inspections", "main"); !strings.Contains(insp, caseB) || strings.Contains(insp, `data-kind=`) {
		t.Errorf("analyst's inspections: want post B's case %s and no event buttons", caseB)
	}
	if status := analyst.post("/inspections/event", "case_id="+caseB+"&kind=docs_returned&csrf="+analyst.csrf()); status != 403 {
		t.Errorf("analyst posts an inspection event: %d, want 403", status)
	}
	analyst.html("/reports", "main")
	analyst.shot("reports")

	// The administrator reads who did what.
	admin := b.signIn("admin")
	audit := admin.html("/audit", "main")
	for _, want := range []string{consolePeople[0].name, "/breaches/reason", consolePeople[1].name, "/breaches/decision"} {
		if !strings.Contains(audit, want) {
			t.Errorf("audit log lacks %q", want)
		}
	}
	admin.shot("audit")

	// And what the API says agrees: the cause and the event are the
	// signed-in people's, whatever a form could have said.
	c := t4CaseOf(t, env, caseA[1])
	if ev := c.events("docs_returned"); len(ev) != 1 || !strings.Contains(ev[0].By, "lead.a") {
		t.Errorf("22д recorded as %+v, want one by lead.a", ev)
	}
}

// browser starts one headless chromium per person, so that each has
// cookies of their own.
type browser struct {
	t        *testing.T
	chromium string
	base     string
	shots    string
}

// tab is one person's browser.
type tab struct {
	b   *browser
	ctx context.Context
}

func (b *browser) signIn(login string) *tab {
	b.t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(b.chromium), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.UserDataDir(b.t.TempDir()), chromedp.WindowSize(1440, 1000))
	alloc, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	b.t.Cleanup(cancel)
	ctx, cancel := chromedp.NewContext(alloc)
	b.t.Cleanup(cancel)
	ctx, cancel = context.WithTimeout(ctx, 2*time.Minute)
	b.t.Cleanup(cancel)
	tb := &tab{b: b, ctx: ctx}
	tb.do(chromedp.Navigate(b.base + "/"))
	if loc, _ := chromedp.Run(ctx, chromedp.Location()); !strings.Contains(loc, "/login") {
		b.t.Fatalf("%s: a stranger at / is at %s, want the sign-in page", login, loc)
	}
	tb.do(chromedp.SendKeys(chromedp.ID("login-name"), login), chromedp.SendKeys(chromedp.ID("login-password"), consolePassword))
	if _, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.ID("login-submit"))); err != nil {
		b.t.Fatalf("%s: sign in: %v", login, err)
	}
	if n := tb.count("#who"); n != 1 {
		b.t.Fatalf("%s: not signed in: %s", login, tb.text("main"))
	}
	return tb
}

func (tb *tab) do(steps ...chromedp.Action[chromedp.Void]) {
	tb.b.t.Helper()
	if err := chromedp.Do(tb.ctx, steps...); err != nil {
		tb.b.t.Fatal(err)
	}
}

// html opens path, waits for sel and returns sel's HTML.
func (tb *tab) html(path, sel string) string {
	tb.b.t.Helper()
	tb.do(chromedp.Navigate(tb.b.base + path))
	s, err := chromedp.Run(tb.ctx, chromedp.OuterHTML(chromedp.CSS(sel)))
	if err != nil {
		tb.b.t.Fatalf("%s: %s: %v", path, sel, err)
	}
	return s
}

// text is the visible text of the first element matching sel.
func (tb *tab) text(sel string) string {
	tb.b.t.Helper()
	s, err := chromedp.Run(tb.ctx, chromedp.Evaluate[string](fmt.Sprintf(`(document.querySelector(%q) || {innerText: ""}).innerText.trim()`, sel)))
	if err != nil {
		tb.b.t.Fatal(err)
	}
	return s
}

// count is the number of elements matching sel now.
func (tb *tab) count(sel string) int {
	tb.b.t.Helper()
	n, err := chromedp.Run(tb.ctx, chromedp.Evaluate[int](fmt.Sprintf(`document.querySelectorAll(%q).length`, sel)))
	if err != nil {
		tb.b.t.Fatal(err)
	}
	return n
}

// click clicks sel and waits for the page the click leads to.
func (tb *tab) click(sel string) {
	tb.b.t.Helper()
	if tb.count(sel) == 0 {
		tb.b.t.Fatalf("no %s on the page: %s", sel, tb.text("main"))
	}
	if strings.Contains(sel, `input[name="objective"]`) {
		tb.do(chromedp.Click(chromedp.CSS(sel)))
		return
	}
	if _, err := chromedp.RunResponse(tb.ctx, chromedp.Click(chromedp.CSS(sel))); err != nil {
		tb.b.t.Fatalf("click %s: %v", sel, err)
	}
}

func (tb *tab) fill(sel, value string) {
	tb.b.t.Helper()
	tb.do(chromedp.SendKeys(chromedp.CSS(sel), value))
}

// status is the HTTP status of opening path.
func (tb *tab) status(path string) int {
	tb.b.t.Helper()
	resp, err := chromedp.RunResponse(tb.ctx, chromedp.Navigate(tb.b.base+path))
	if err != nil {
		tb.b.t.Fatal(err)
	}
	return int(resp.Status)
}

// post sends a form from the page's own origin, as a forged or replayed
// form would come, and returns the status.
func (tb *tab) post(path, form string) int {
	tb.b.t.Helper()
	js := fmt.Sprintf(`fetch(%q, {method: "POST", headers: {"Content-Type": "application/x-www-form-urlencoded"}, body: %q, redirect: "manual"}).then(r => r.status)`, path, form)
	n, err := chromedp.Run(tb.ctx, chromedp.Evaluate[int](js, chromedp.EvalAwaitPromise))
	if err != nil {
		tb.b.t.Fatal(err)
	}
	return n
}

// csrf is the session's CSRF token, as the page's forms carry it.
func (tb *tab) csrf() string {
	tb.b.t.Helper()
	s, err := chromedp.Run(tb.ctx, chromedp.Evaluate[string](`document.querySelector('input[name="csrf"]').value`))
	if err != nil {
		tb.b.t.Fatal(err)
	}
	return s
}

// shot saves the page as IDK_SCREENSHOTS/name.png when that is set.
func (tb *tab) shot(name string) {
	tb.b.t.Helper()
	if tb.b.shots == "" {
		return
	}
	png, err := chromedp.Run(tb.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		tb.b.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(tb.b.shots, name+".png"), png, 0o644); err != nil {
		tb.b.t.Fatal(err)
	}
}
