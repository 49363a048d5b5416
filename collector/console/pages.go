package console

import (
	"cmp"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"idk/collector/auth"
	"idk/collector/availability"
	"idk/collector/cases"
	"idk/collector/fleet"
)

// --- sign-in -------------------------------------------------------------

type loginData struct {
	Login, Next, Error string
}

// signInNext is where to go after signing in: a local path, and not the
// sign-in or sign-out page itself.
func signInNext(s string) string {
	next := auth.SafeNext(s)
	if strings.HasPrefix(next, "/login") || strings.HasPrefix(next, "/logout") {
		return "/"
	}
	return next
}

func (c *console) serveLogin(w http.ResponseWriter, r *http.Request) {
	c.render(w, r, http.StatusOK, "login", page{Title: "Вход", CSRF: c.cfg.Sessions.LoginCSRF(w, r), Data: loginData{Next: signInNext(r.URL.Query().Get("next"))}})
}

func (c *console) serveSignIn(w http.ResponseWriter, r *http.Request) {
	login := strings.TrimSpace(r.PostFormValue("login"))
	password := r.PostFormValue("password")
	data := loginData{Login: login, Next: signInNext(r.PostFormValue("next"))}
	if login == "" || password == "" {
		data.Error = "Введите логин и пароль."
		c.render(w, r, http.StatusUnauthorized, "login", page{Title: "Вход", CSRF: c.cfg.Sessions.LoginCSRF(w, r), Data: data})
		return
	}
	if _, err := c.cfg.Sessions.SignIn(w, r, login, password); err != nil {
		switch {
		case errors.Is(err, auth.ErrBadCredentials), errors.Is(err, auth.ErrLocked), errors.Is(err, auth.ErrDisabled), errors.Is(err, auth.ErrLoginCSRF):
			data.Error = capitalize(err.Error()) + "."
		default:
			c.log.Error("console: sign-in failed", "login", login, "err", err)
			data.Error = "Вход сейчас невозможен. Сообщите администратору."
		}
		c.render(w, r, http.StatusUnauthorized, "login", page{Title: "Вход", CSRF: c.cfg.Sessions.LoginCSRF(w, r), Data: data})
		return
	}
	http.Redirect(w, r, data.Next, http.StatusSeeOther)
}

func (c *console) serveLogout(w http.ResponseWriter, r *http.Request, _ auth.Person) {
	c.cfg.Sessions.SignOut(w, r)
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

func capitalize(s string) string {
	for i, r := range s {
		return strings.ToUpper(string(r)) + s[i+len(string(r)):]
	}
	return s
}

// --- fleet board ---------------------------------------------------------

// certWarnDays: a certificate expiring sooner than this is highlighted,
// leaving time to issue a new one (idk-collector pki agent) and install it.
const certWarnDays = 30

// offsetWarn: a clock further off than this makes the ИДК's times the
// collector's correction (docs/cases.md, "Clock honesty").
const offsetWarn = 2 * time.Minute

type fleetRow struct {
	NumIDK, KodTO, Site string
	State               stateInfo
	Known               bool // the agent said hello since the collector started
	St                  fleet.Status
	OffsetWarn          bool
	OldestAge           time.Duration
	Scans, Suspects     int
	CertDays            int
	CertWarn            bool
	OpenIncidents       int
	TimeJob             string
}

func (c *console) serveFleet(w http.ResponseWriter, r *http.Request, p auth.Person) {
	now := c.now()
	today := c.today()
	statuses := map[string]fleet.Status{}
	for _, s := range c.cfg.Fleet.All() {
		statuses[s.NumIDK] = s
	}
	nums := c.cfg.Live.Devices()
	for n := range statuses {
		if !slices.Contains(nums, n) {
			nums = append(nums, n)
		}
	}
	current := c.cfg.Live.CurrentStates()
	scans, suspects := c.cfg.Cases.DayCounts(today)
	var rows []fleetRow
	for _, n := range nums {
		if !c.sees(p, n) {
			continue
		}
		kod, _ := c.cfg.Post(n)
		row := fleetRow{NumIDK: n, KodTO: kod, State: stateOf(orString(current[n], "UNKNOWN")), Scans: scans[n], Suspects: suspects[n]}
		if st, ok := statuses[n]; ok {
			row.Known, row.St = true, st
			row.OffsetWarn = st.ClockOffset > offsetWarn || st.ClockOffset < -offsetWarn
			if !st.OldestUnsent.IsZero() {
				row.OldestAge = now.Sub(st.OldestUnsent)
			}
			if !st.CertNotAfter.IsZero() {
				row.CertDays = int(st.CertNotAfter.Sub(now).Hours() / 24)
				row.CertWarn = row.CertDays < certWarnDays
			}
		}
		if rs := c.cfg.Live.Rows(n, today); len(rs) > 0 {
			last := rs[len(rs)-1]
			row.Site = strings.TrimSpace(last.NAIM_ZTK_M_D + " " + last.NAIM_M_D)
			var job int64
			for _, x := range rs {
				job += x.Seconds["WORKING"] + x.Seconds["WAITING"]
			}
			row.TimeJob = formatHM(time.Duration(job) * time.Second)
		}
		for _, inc := range c.cfg.Live.Incidents(n) {
			if inc.Open() {
				row.OpenIncidents++
			}
		}
		rows = append(rows, row)
	}
	slices.SortFunc(rows, func(a, b fleetRow) int { return cmp.Or(cmp.Compare(a.KodTO, b.KodTO), cmp.Compare(a.NumIDK, b.NumIDK)) })
	c.render(w, r, http.StatusOK, "fleet", page{Title: "Парк ИДК", Nav: "fleet", Person: p, Refresh: 30, Data: rows})
}

// --- inspections -----------------------------------------------------------

type timerView struct {
	cases.Timer
	Limit time.Duration
	// Class is the timer's colour: t-ok, t-warn (80 % of the limit
	// used), t-breach (past the limit), t-done (ended in time).
	Class string
	Spent time.Duration // so far, or to its end
}

type caseView struct {
	cases.Case
	KodTO  string
	Timers []timerView
	Kinds  []kindInfo // the buttons: events not reported yet
	Last   *cases.Event
}

// warnShare is the part of a limit after which a running timer turns
// amber: 12 of 15 minutes, 24 of 30.
const warnShare = 0.8

func timerClass(t cases.Timer, now time.Time) (string, time.Duration) {
	limit := t.Rule.Limit()
	end := now
	if !t.Running && !t.End.IsZero() {
		end = t.End
	}
	spent := end.Sub(t.Start)
	switch {
	case t.Breached || spent > limit:
		return "t-breach", spent
	case t.Withdrawn || !t.Running:
		return "t-done", spent
	case float64(spent) >= warnShare*float64(limit):
		return "t-warn", spent
	}
	return "t-ok", spent
}

func (c *console) viewCase(cs cases.Case, now time.Time) caseView {
	kod, _ := c.cfg.Post(cs.NumIDK)
	v := caseView{Case: cs, KodTO: kod}
	for _, t := range cs.Timers {
		class, spent := timerClass(t, now)
		v.Timers = append(v.Timers, timerView{Timer: t, Limit: t.Rule.Limit(), Class: class, Spent: spent})
	}
	for _, k := range consoleKinds {
		if k.Kind == cases.ActHanded && !cs.Suspected {
			continue // no act without «Объект под подозрением» (item 25)
		}
		if slices.ContainsFunc(cs.Events, func(ev cases.Event) bool { return ev.Kind == k.Kind }) {
			continue // the first report stands: a second changes nothing
		}
		v.Kinds = append(v.Kinds, k)
	}
	if n := len(cs.Events); n > 0 {
		v.Last = &cs.Events[n-1]
	}
	return v
}

func (c *console) serveInspections(w http.ResponseWriter, r *http.Request, p auth.Person) {
	now := c.now()
	var views []caseView
	for _, cs := range c.cfg.Cases.OpenCases() {
		if c.sees(p, cs.NumIDK) {
			views = append(views, c.viewCase(cs, now))
		}
	}
	c.render(w, r, http.StatusOK, "inspections", page{Title: "Осмотры", Nav: "inspections", Person: p, Refresh: 30, Data: struct {
		Cases   []caseView
		CanPost bool
	}{views, p.May(auth.InspectionEvent)}})
}

func (c *console) servePostEvent(w http.ResponseWriter, r *http.Request, p auth.Person) {
	if !p.May(auth.InspectionEvent) {
		c.fail(w, r, p, http.StatusForbidden, "Вашей роли не разрешено сообщать о событиях осмотра.")
		return
	}
	k, ok := consoleKind(r.PostFormValue("kind"))
	if !ok {
		c.fail(w, r, p, http.StatusBadRequest, fmt.Sprintf("Неизвестное событие %q.", r.PostFormValue("kind")))
		return
	}
	cs, ok := c.cfg.Cases.Case(r.PostFormValue("case_id"))
	if !ok {
		c.fail(w, r, p, http.StatusNotFound, "Осмотр не найден.")
		return
	}
	if !c.sees(p, cs.NumIDK) {
		c.fail(w, r, p, http.StatusForbidden, "Этот ИДК не относится к вашему посту.")
		return
	}
	_, err := c.cfg.Cases.Add(cases.Event{Kind: k.Kind, Time: c.clk.Now(), NumIDK: cs.NumIDK, CaseID: cs.ID, By: auth.By(r, ""), Source: "console"})
	switch {
	case err == nil:
		c.done(w, r, "/inspections", true, fmt.Sprintf("Записано: п. %s «%s», ИДК %s%s.", k.Item, k.Title, cs.NumIDK, snimSuffix(cs.NumSnim)), "inspection_event", cs.ID)
	case userError(err):
		c.done(w, r, "/inspections", false, "Не записано: "+err.Error(), "", "")
	default:
		c.log.Error("console: inspection event", "case", cs.ID, "kind", k.Kind, "err", err)
		c.done(w, r, "/inspections", false, "Не записано из-за внутренней ошибки: "+err.Error(), "", "")
	}
}

func snimSuffix(s string) string {
	if s == "" {
		return ""
	}
	return ", снимок " + s
}

// --- breaches (table 4, item 36) ------------------------------------------

type breachView struct {
	Row      cases.Row
	Decision *cases.BreachDecision // in force, if any
}

// breachWindow is the first day whose breaches the page lists: the
// month's, and until the 10th the month before too, since the item 36
// report on it is due by the 10th.
func breachWindow(today time.Time) time.Time {
	first := time.Date(today.Year(), today.Month(), 1, 0, 0, 0, 0, today.Location())
	if today.Day() <= 10 {
		return first.AddDate(0, -1, 0)
	}
	return first
}

func (c *console) serveBreaches(w http.ResponseWriter, r *http.Request, p auth.Person) {
	today := c.today()
	from := breachWindow(today)
	hs, err := c.cfg.Cases.BreachHistory(from, today)
	if err != nil {
		c.internal(w, r, p, err)
		return
	}
	without, err := c.cfg.Cases.WithoutReason()
	if err != nil {
		c.internal(w, r, p, err)
		return
	}
	var rows []cases.Row
	seen := map[string]bool{}
	// Those still lacking PRICH_NAR first, of any date: item 36 needs each.
	for _, row := range without {
		if c.sees(p, row.NUM_IDK) && !seen[row.ID] {
			rows, seen[row.ID] = append(rows, row), true
		}
	}
	for _, h := range hs {
		if h.Current != nil && c.sees(p, h.Current.NUM_IDK) && !seen[h.ID] {
			rows, seen[h.ID] = append(rows, *h.Current), true
		}
	}
	ids := make([]string, len(rows))
	for i, row := range rows {
		ids[i] = row.ID
	}
	decisions := map[string][]cases.BreachDecision{}
	if len(ids) > 0 {
		if decisions, err = c.cfg.Cases.Decisions(ids...); err != nil {
			c.internal(w, r, p, err)
			return
		}
	}
	views := make([]breachView, len(rows))
	for i, row := range rows {
		views[i] = breachView{Row: row}
		if ds := decisions[row.ID]; len(ds) > 0 {
			views[i].Decision = &ds[len(ds)-1]
		}
	}
	c.render(w, r, http.StatusOK, "breaches", page{Title: "Нарушения сроков", Nav: "breaches", Person: p, Data: struct {
		Breaches            []breachView
		From                time.Time
		CanCause, CanDecide bool
	}{views, from, p.May(auth.BreachCause), p.May(auth.Decision)}})
}

// breachCase finds the case of a breach form and checks p may act on it;
// on failure it has answered.
func (c *console) breachCase(w http.ResponseWriter, r *http.Request, p auth.Person, action auth.Action, what string) (cases.Case, bool) {
	if !p.May(action) {
		c.fail(w, r, p, http.StatusForbidden, "Вашей роли не разрешено "+what+".")
		return cases.Case{}, false
	}
	cs, ok := c.cfg.Cases.Case(r.PostFormValue("id"))
	if !ok {
		c.fail(w, r, p, http.StatusNotFound, "Нарушение не найдено.")
		return cases.Case{}, false
	}
	if !c.sees(p, cs.NumIDK) {
		c.fail(w, r, p, http.StatusForbidden, "Этот ИДК не относится к вашему посту.")
		return cases.Case{}, false
	}
	return cs, true
}

func (c *console) servePostReason(w http.ResponseWriter, r *http.Request, p auth.Person) {
	cs, ok := c.breachCase(w, r, p, auth.BreachCause, "указывать причину нарушения")
	if !ok {
		return
	}
	reason := strings.TrimSpace(r.PostFormValue("reason"))
	if reason == "" {
		c.done(w, r, "/breaches", false, "Причина (PRICH_NAR) не указана: п. 36 требует конкретную причину.", "", "")
		return
	}
	if err := c.cfg.Cases.SetReason(cs.ID, reason, auth.By(r, "")); err != nil {
		if !userError(err) {
			c.log.Error("console: breach reason", "case", cs.ID, "err", err)
		}
		c.done(w, r, "/breaches", false, "Причина не сохранена: "+err.Error(), "", "")
		return
	}
	c.done(w, r, "/breaches", true, fmt.Sprintf("Причина нарушения (PRICH_NAR) сохранена: ИДК %s%s.", cs.NumIDK, snimSuffix(cs.NumSnim)), "breach_cause", cs.ID)
}

func (c *console) servePostDecision(w http.ResponseWriter, r *http.Request, p auth.Person) {
	cs, ok := c.breachCase(w, r, p, auth.Decision, "принимать решение по нарушению")
	if !ok {
		return
	}
	var objective bool
	switch r.PostFormValue("objective") {
	case "1":
		objective = true
	case "0":
	default:
		c.done(w, r, "/breaches", false, "Выберите решение: причины объективные или необъективные.", "", "")
		return
	}
	if err := c.cfg.Cases.Decide(cs.ID, objective, auth.By(r, ""), r.PostFormValue("note")); err != nil {
		if !userError(err) {
			c.log.Error("console: breach decision", "case", cs.ID, "err", err)
		}
		c.done(w, r, "/breaches", false, "Решение не сохранено: "+err.Error(), "", "")
		return
	}
	c.done(w, r, "/breaches", true, fmt.Sprintf("Решение по нарушению сохранено: ИДК %s%s.", cs.NumIDK, snimSuffix(cs.NumSnim)), "breach_decision", cs.ID)
}

// --- incidents and НШС ----------------------------------------------------

type incidentView struct {
	availability.Incident
}

type nshsView struct {
	ID, Systems, KodTO, NumIDK, Description string
	Category, CauseName                     string
	Start, End                              time.Time
	Duration                                time.Duration
	Closed                                  bool
	// IncidentID is the tracker's incident behind an ИДК НШС, which the
	// ack acknowledges; empty for a link's or the collector's.
	IncidentID string
	Acked      bool
	AckedBy    string
}

// nshsWindow is how far back the incidents page lists НШС: a week, the
// period of the weekly summary (2.1.4).
const nshsWindow = 7 * 24 * time.Hour

func (c *console) serveIncidents(w http.ResponseWriter, r *http.Request, p auth.Person) {
	now := c.now()
	var incs []incidentView
	byID := map[string]availability.Incident{}
	for _, n := range c.cfg.Live.Devices() {
		if !c.sees(p, n) {
			continue
		}
		for _, inc := range c.cfg.Live.Incidents(n) {
			incs = append(incs, incidentView{inc})
			byID[inc.ID] = inc
		}
	}
	// What needs someone first: open, then not acknowledged, then newest.
	slices.SortFunc(incs, func(a, b incidentView) int {
		return cmp.Or(boolFirst(a.Open(), b.Open()), boolFirst(!a.Acked, !b.Acked), b.Start.Compare(a.Start))
	})
	ns, err := c.cfg.NSHS.Between(now.Add(-nshsWindow), now.Add(time.Second))
	if err != nil {
		c.internal(w, r, p, err)
		return
	}
	var nviews []nshsView
	for _, n := range ns {
		// An ИДК's or a link's НШС by the ИДК; the collector's own by post.
		if (n.NumIDK != "" && !c.sees(p, n.NumIDK)) || (n.NumIDK == "" && !p.SeesPost(n.KodTO)) {
			continue
		}
		v := nshsView{ID: n.ID, Systems: n.Systems, KodTO: n.KodTO, NumIDK: n.NumIDK, Description: n.Description,
			Category: n.Category.String() + " (" + n.Category.Name() + ")", CauseName: n.Cause.Name(),
			Start: n.Start, End: n.End, Duration: n.Duration(now), Closed: n.Closed()}
		if id, ok := strings.CutPrefix(n.ID, "idk-"); ok {
			if inc, ok := byID[id]; ok {
				v.IncidentID, v.Acked, v.AckedBy = id, inc.Acked, inc.AckedBy
			}
		}
		nviews = append(nviews, v)
	}
	slices.Reverse(nviews) // newest first
	c.render(w, r, http.StatusOK, "incidents", page{Title: "Инциденты и НШС", Nav: "incidents", Person: p, Refresh: 60, Data: struct {
		Incidents []incidentView
		NSHS      []nshsView
		CanAck    bool
	}{incs, nviews, p.May(auth.AckIncident)}})
}

// boolFirst orders true before false.
func boolFirst(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return -1
	}
	return 1
}

func (c *console) servePostAck(w http.ResponseWriter, r *http.Request, p auth.Person) {
	if !p.May(auth.AckIncident) {
		c.fail(w, r, p, http.StatusForbidden, "Вашей роли не разрешено подтверждать инциденты.")
		return
	}
	num, id := strings.TrimSpace(r.PostFormValue("num_idk")), strings.TrimSpace(r.PostFormValue("id"))
	if !c.sees(p, num) {
		c.fail(w, r, p, http.StatusForbidden, "Этот ИДК не относится к вашему посту.")
		return
	}
	if err := c.cfg.Live.Ack(num, id, auth.By(r, "")); err != nil {
		if !userError(err) {
			c.log.Error("console: ack incident", "num_idk", num, "id", id, "err", err)
		}
		c.done(w, r, "/incidents", false, "Не подтверждено: "+err.Error(), "", "")
		return
	}
	c.done(w, r, "/incidents", true, fmt.Sprintf("Инцидент ИДК %s подтверждён.", num), "ack_incident", num+"/"+id)
}
