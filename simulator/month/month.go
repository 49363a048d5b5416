// Package month generates a simulated calendar month at the ИДК of two
// customs offices — device states, scans and their registration forms,
// the steps of each inspection, officers' entries for tables 2, 5 and 6,
// the post's object counts — together with the month's ground truth: the
// content each daily report (Appendix 4, cumulative from the 1st, A4 rule
// 3) must have, cell by cell.
//
// The truth is computed here from the plan by the rules of the domain
// reference (../shared/domain/reference.md §3, §7, §8) and the product's
// written decisions (docs/cases.md, the table 3 accounting), never by
// calling collector code: a report that agrees with it agrees with an
// independent reading of the rules. Only the column lists of
// collector/report's tables are shared, so that both sides name and order
// the columns alike.
//
// The month is moderate so that a test can play it through the collector
// in seconds: five ИДК (three of office 10216100, one of them mobile; two
// of 10216200, one mobile), each operated most days with 6-10 objects
// spread over a shift, breaks, maintenance, faults and, for the mobile
// ones, relocations between their two sites; some days not operated at
// all. About one inspection in seven breaches a limit of item 35, some
// exactly at a limit (no breach), and one scan kind is declared only
// after its TIME_2 deadline passed (a breach recorded, then withdrawn).
//
// Everything is drawn from one seed: the same seed gives the same month,
// event for event.
package month

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	"idk/protocol"
	"idk/protocol/idkpb"
)

// Office is a customs office (KOD_TO, NAIM_TO).
type Office struct {
	KodTO  string
	NaimTO string
}

// Site is where an ИДК stands: the location fields of tables 1-4.
type Site struct {
	KodTO   string
	NaimTO  string
	NaimZTK string
	Disl    uint32
}

// Device is one simulated ИДК.
type Device struct {
	// Hello is the identity its agent is configured with: its home site.
	Hello  *idkpb.Device
	Mobile bool
	// Sites are the places it works at: the first is home; a mobile ИДК
	// moves between them on its relocation days.
	Sites []Site
	Epoch uint64 // its spool epoch
}

// NumIDK is the device's NUM_IDK.
func (d *Device) NumIDK() string { return d.Hello.NumIdk }

// Officer is a person in the roster: an operator (form logins), a shift
// lead or an officer who enters report rows.
type Officer struct {
	Login string
	FIO   string // Ф.И.О., upper case
	LNP   string // with its leading zeros
}

// Risk is the risk profile (ПР) a risk_detected carries: table 1's risk
// section.
type Risk struct {
	KodTeh, VidPr, KodToPr, DateReg, NumPr string
	DocType                                uint32 // DOC_TYPE, 0 unknown
}

// CaseEvent is an inspection step reported to the collector's case
// engine by staff through its API (not through an agent).
type CaseEvent struct {
	Kind    string // docs_handed, carrier_informed, docs_returned, act_handed, scan
	NumIDK  string
	NumSnim string
	Docs    []string
	VerScan int   // on a scan: the staff-declared kind (VER_SCAN)
	Risk    *Risk // on a risk_detected: the profile
	By      string
}

// Entry is a row an officer enters into table 2, 5 or 6: values keyed by
// the regulation's field names, upper case, dates DD.MM.YYYY.
type Entry struct {
	Table int
	Row   map[string]string
	By    string
}

// Counts are the post's object counts of one ИДК and day (table 3, notes
// 15 and 16): OKO_* and KOVR_* by field name, a missing field is 0.
type Counts struct {
	NumIDK string
	Day    time.Time // midnight
	Fields map[string]int
	By     string
}

// Reason is a PRICH_NAR an officer gives for a breached inspection after
// the month (item 36): the test finds the table 4 row by its scan.
type Reason struct {
	NumIDK, NumSnim string
	Reason          string
	By              string
}

// Action is one thing that happens at At. Exactly one of the pointers is
// set: an agent event of Device (Seq and TimeUnixNano already set), a
// staff event for the case engine, an officer's entry, or counts.
type Action struct {
	At     time.Time
	Device *Device
	Event  *idkpb.Event
	Case   *CaseEvent
	Entry  *Entry
	Counts *Counts
}

// Month is a generated month: what happens, in time order, and its truth.
type Month struct {
	Seed    int64
	Loc     *time.Location
	Start   time.Time // midnight of the 1st
	Days    int
	Offices []Office
	Devices []*Device
	Roster  []Officer
	Actions []Action
	Reasons []Reason
	// End is when everything of the month has happened: the reports are
	// built after it.
	End time.Time
	// Deadlines are the moments, in time order, at which a clock of item
	// 35 passes its limit with no end reported yet. The collector checks
	// its clocks every second (cases.Engine.Tick), so it records such a
	// breach the second after; a harness that does not tick every second
	// ticks then, so that what the collector records is what it would.
	Deadlines []time.Time

	scans   []*scan
	devs    []*devPlan
	entries []*Entry           // in the order they are entered
	counts  map[string]*Counts // by NUM_IDK "/" YYYYMMDD
	// What the truth selects from, computed once by prepareTruth: the
	// month does not change once generated.
	rows1  []scanRow                      // table 1, every office, in the table's order
	rows3  map[string][]map[string]string // table 3 rows by NUM_IDK "/" YYYYMMDD
	bySnim map[string]*scan
	// lateKindDone: the month's one scan kind declared after its TIME_2
	// deadline has been planned.
	lateKindDone bool
}

// The two customs offices. Their names are the regulation's style: upper
// case short names.
var offices = []Office{{"10216100", "ПСКОВСКАЯ"}, {"10216200", "СЕБЕЖСКАЯ"}}

// The state names used in plans.
const (
	working     = idkpb.DeviceState_DEVICE_STATE_WORKING
	waiting     = idkpb.DeviceState_DEVICE_STATE_WAITING
	operations  = idkpb.DeviceState_DEVICE_STATE_OPERATIONS
	maintenance = idkpb.DeviceState_DEVICE_STATE_MAINTENANCE
	inoperable  = idkpb.DeviceState_DEVICE_STATE_INOPERABLE
	relocation  = idkpb.DeviceState_DEVICE_STATE_RELOCATION
	idle        = idkpb.DeviceState_DEVICE_STATE_IDLE
)

// change is a planned StateChange.
type change struct {
	at     time.Time
	state  idkpb.DeviceState
	cause  idkpb.InoperableCause
	source string
	note   string
	site   *Site // set when the change says where the ИДК stands
}

// devPlan is a device's plan: its state timeline, where it stood when,
// and when objects occupied its working zone.
type devPlan struct {
	dev     *Device
	changes []change
	// sites: site i holds from siteAt[i] on.
	siteAt []time.Time
	sites  []Site
	// occupied are the zone's [arrival, decision) intervals, in order.
	occupied [][2]time.Time
	// firstArrival is the first arrival of each day, by date key.
	firstArrival map[string]time.Time
	lastArrival  time.Time
	scanNo       map[string]int // per day, for NUM_SNIM
}

func (d *devPlan) siteOf(t time.Time) Site {
	i, _ := slices.BinarySearchFunc(d.siteAt, t, func(a, b time.Time) int {
		if a.After(b) {
			return 1
		}
		return -1
	})
	// i is the first change after t.
	return d.sites[max(i-1, 0)]
}

// scan is one planned scan and the inspection around it.
type scan struct {
	dev     *devPlan
	site    Site
	numSnim string
	dt      string // its ДТ number, "" when the form names none
	// arrival is the object's arrival in the working zone as the
	// collector sees it: the change into WORKING, or the VehicleEntered
	// edge of an object that entered while the previous one was analysed.
	arrival  time.Time
	ahead    bool
	scanAt   time.Time // ScanSeen
	forms    []*idkpb.Form
	formAt   []time.Time
	decision time.Time // the first form revision with a decision
	verScan  int       // staff-declared kind, 0 none
	verAt    time.Time
	verBy    string // who declared it
	risk     *riskPlan
	returned time.Time // docs_returned (22д), zero if not reported
	act      time.Time // act_handed (24б), zero if not reported
	reason   string    // PRICH_NAR given after the month, if any
}

type riskPlan struct {
	at, handed, informed time.Time
	profile              Risk
	viaPost              bool // reported by the shift lead from the agent (CaseReport), else through the API
}

// pending is an action before sorting; agent events get their Seq once
// every device's events are in time order.
type pending struct {
	at  time.Time
	n   int // creation order: ties keep it
	act Action
}

type planner struct {
	m   *Month
	rng *rand.Rand
	out []pending
	dtN int
}

// Generate plans the month that contains month (in loc) from seed.
func Generate(seed int64, month time.Time, loc *time.Location) *Month {
	if loc == nil {
		loc = time.Local
	}
	y, mo, _ := month.In(loc).Date()
	start := time.Date(y, mo, 1, 0, 0, 0, 0, loc)
	m := &Month{Seed: seed, Loc: loc, Start: start, Offices: offices, counts: map[string]*Counts{}}
	m.Days = time.Date(y, mo+1, 1, 0, 0, 0, 0, loc).AddDate(0, 0, -1).Day()
	p := &planner{m: m, rng: rand.New(rand.NewPCG(uint64(seed), 0x6d6f6e7468))}
	p.setup()
	for _, d := range m.devs {
		// The month starts with the ИДК switched off where it stands; the
		// change says where that is.
		p.state(d, start, idle, 0, "controller", "", &d.dev.Sites[0])
	}
	for i := range m.Days {
		day := start.AddDate(0, 0, i)
		for _, d := range m.devs {
			p.day(d, day)
		}
		p.officers(day)
	}
	m.End = start.AddDate(0, 0, m.Days).Add(2 * time.Hour)
	p.reasons()
	p.finish()
	m.Deadlines = m.deadlines()
	m.prepareTruth()
	return m
}

// setup creates the offices' ИДК and the roster.
func (p *planner) setup() {
	m := p.m
	type devSpec struct {
		num    string
		office int
		mobile bool
		sites  []Site
	}
	site := func(office int, ztk string, disl uint32) Site {
		return Site{KodTO: offices[office].KodTO, NaimTO: offices[office].NaimTO, NaimZTK: ztk, Disl: disl}
	}
	specs := []devSpec{
		{"850591", 0, false, []Site{site(0, "МАПП УБЫЛИНКА", 1)}},
		{"850592", 0, false, []Site{site(0, "МАПП БУРАЧКИ", 1)}},
		{"850593", 0, true, []Site{site(0, "ЗТК ПСКОВ", 5), site(0, "МАПП КУНИЧИНА ГОРА", 1)}},
		{"850601", 1, false, []Site{site(1, "МАПП ЛУДОНКА", 1)}},
		{"850602", 1, true, []Site{site(1, "ЖДПП СЕБЕЖ", 3), site(1, "ЗТК СЕБЕЖ", 5)}},
	}
	for i, s := range specs {
		typ := uint32(2)
		if s.mobile {
			typ = 1
		}
		home := s.sites[0]
		for _, st := range s.sites {
			// A mobile ИДК moves only between places of its own customs
			// office: a move to another office is an administrator's
			// change of the registry (its KOD_TO), not something its
			// agent can declare.
			if st.KodTO != home.KodTO {
				panic(fmt.Sprintf("month: ИДК %s: site %s is not of its office %s", s.num, st.NaimZTK, home.KodTO))
			}
		}
		dev := &Device{
			Hello:  &idkpb.Device{NumIdk: s.num, TypeIdk: typ, KodTo: home.KodTO, NaimTo: home.NaimTO, NaimZtk: home.NaimZTK, DislIdk: home.Disl},
			Mobile: s.mobile, Sites: s.sites, Epoch: uint64(1000 + i),
		}
		m.Devices = append(m.Devices, dev)
		m.devs = append(m.devs, &devPlan{dev: dev, firstArrival: map[string]time.Time{}, scanNo: map[string]int{}})
	}
	m.Roster = []Officer{
		{"ivanov_ii", "ИВАНОВ ИВАН ИВАНОВИЧ", "283"},
		{"petrov_pp", "ПЕТРОВ ПЕТР ПЕТРОВИЧ", "056"},
		{"sidorova_aa", "СИДОРОВА АННА АЛЕКСЕЕВНА", "117"},
		{"kuznetsov_vs", "КУЗНЕЦОВ ВИКТОР СЕРГЕЕВИЧ", "009"},
		{"orlova_ev", "ОРЛОВА ЕЛЕНА ВИКТОРОВНА", "340"},
		{"smirnov_da", "СМИРНОВ ДМИТРИЙ АНДРЕЕВИЧ", "071"},
		{"volkova_tn", "ВОЛКОВА ТАТЬЯНА НИКОЛАЕВНА", "502"},
		{"morozov_ak", "МОРОЗОВ АЛЕКСЕЙ КОНСТАНТИНОВИЧ", "0815"},
	}
}

// Staff of each office: operators fill in forms; the lead reports steps
// and gives reasons; the analyst re-analyses images (tables 5, 6); the
// clerk enters table 2 and the counts.
func (p *planner) operators(office string) []string {
	if office == offices[0].KodTO {
		return []string{"ivanov_ii", "petrov_pp", "sidorova_aa"}
	}
	return []string{"kuznetsov_vs", "orlova_ev"}
}

func (p *planner) lead(office string) string {
	if office == offices[0].KodTO {
		return "smirnov_da"
	}
	return "volkova_tn"
}

func (p *planner) analyst(office string) Officer {
	login := "sidorova_aa"
	if office != offices[0].KodTO {
		login = "morozov_ak"
	}
	for _, o := range p.m.Roster {
		if o.Login == login {
			return o
		}
	}
	panic("month: analyst not in roster")
}

// Random helpers: durations in whole seconds, so that every boundary the
// rules compare (a limit, a half minute) is hit or missed exactly.
func (p *planner) secs(lo, hi time.Duration) time.Duration {
	l, h := int64(lo/time.Second), int64(hi/time.Second)
	return time.Duration(l+p.rng.Int64N(h-l+1)) * time.Second
}

func (p *planner) chance(f float64) bool { return p.rng.Float64() < f }

func (p *planner) pick(s []string) string { return s[p.rng.IntN(len(s))] }

func (p *planner) add(at time.Time, a Action) {
	a.At = at
	p.out = append(p.out, pending{at: at, n: len(p.out), act: a})
}

func (p *planner) agent(d *devPlan, at time.Time, ev *idkpb.Event) {
	ev.TimeUnixNano = at.UnixNano()
	p.add(at, Action{Device: d.dev, Event: ev})
}

func (p *planner) state(d *devPlan, at time.Time, s idkpb.DeviceState, cause idkpb.InoperableCause, source, note string, site *Site) {
	c := change{at: at, state: s, cause: cause, source: source, note: note, site: site}
	d.changes = append(d.changes, c)
	if site != nil {
		d.siteAt = append(d.siteAt, at)
		d.sites = append(d.sites, *site)
	}
	// Like the agent (agent/devstate), every change says where the ИДК
	// stands: while relocating, the site it left.
	cur := d.siteOf(at)
	sc := &idkpb.StateChange{State: s, Cause: cause, Source: source, Note: note,
		Site: &idkpb.Site{NaimZtk: cur.NaimZTK, KodTo: cur.KodTO, NaimTo: cur.NaimTO, Disl: cur.Disl}}
	p.agent(d, at, &idkpb.Event{Body: &idkpb.Event_State{State: sc}})
}

func (p *planner) api(at time.Time, ev CaseEvent) {
	p.add(at, Action{Case: &ev})
}

// block is a spell of the day out of inspection: a break, maintenance, a
// fault, a relocation.
type block struct {
	due  time.Time
	kind string // lunch, maintenance, fault, relocation
}

// day plans one device's day that starts at midnight day.
//
// A day is: switched off (IDLE) until the shift; preparation
// (OPERATIONS) then ready (WAITING); objects, each WORKING from its
// arrival to the operator's decision and WAITING after it; the day's
// breaks, maintenance, faults and, for a mobile ИДК, a relocation between
// objects; closing operations and off. Some days the ИДК is not operated
// at all (table 3 rule 18).
func (p *planner) day(d *devPlan, day time.Time) {
	notOperated := 0.06
	if d.dev.Mobile {
		notOperated = 0.2
	}
	if p.chance(notOperated) {
		return // stays IDLE from the day before
	}
	relocates := d.dev.Mobile && p.chance(0.2)
	start := day.Add(6*time.Hour + p.secs(30*time.Minute, 2*time.Hour))
	end := day.Add(20*time.Hour + p.secs(0, 100*time.Minute))
	p.state(d, start, operations, 0, "controller", "", nil) // power on, warm-up
	t := start.Add(p.secs(15*time.Minute, 40*time.Minute))
	p.state(d, t, waiting, 0, "controller", "", nil)

	var blocks []block
	if relocates {
		blocks = append(blocks, block{day.Add(11*time.Hour + p.secs(0, time.Hour)), "relocation"})
	} else {
		blocks = append(blocks, block{day.Add(12*time.Hour + p.secs(0, time.Hour)), "lunch"})
	}
	if p.chance(0.2) {
		blocks = append(blocks, block{day.Add(15*time.Hour + p.secs(0, time.Hour)), "maintenance"})
	}
	if p.chance(0.25) {
		blocks = append(blocks, block{day.Add(9*time.Hour + p.secs(0, 8*time.Hour)), "fault"})
	}
	slices.SortFunc(blocks, func(a, b block) int { return a.due.Compare(b.due) })

	objects := 6 + p.rng.IntN(5)
	// Objects come all shift long: the mean gap spreads them over it.
	gap := max((end.Sub(start)-3*time.Hour)/time.Duration(objects)-8*time.Minute, 4*time.Minute)
	var aheadAt time.Time // a vehicle that entered during the last analysis
	for n := 0; n < objects; n++ {
		if aheadAt.IsZero() {
			if t.After(end.Add(-40 * time.Minute)) {
				break
			}
			for len(blocks) > 0 && !blocks[0].due.After(t.Add(10*time.Minute)) {
				t = p.block(d, blocks[0], t)
				blocks = blocks[1:]
			}
		}
		// A further vehicle may enter while this one is analysed, unless
		// a block is due: the zone must be empty for it.
		mayAhead := n+1 < objects && (len(blocks) == 0 || blocks[0].due.After(t.Add(time.Hour))) && t.Before(end.Add(-80*time.Minute))
		t, aheadAt = p.object(d, day, t, aheadAt, gap, mayAhead)
	}
	for _, b := range blocks {
		if b.kind == "relocation" {
			// It must move today: after the last object if not before.
			t = p.block(d, b, t)
		}
	}
	closing := maxTime(t.Add(p.secs(2*time.Minute, 20*time.Minute)), end)
	p.state(d, closing, operations, 0, "staff", "ЗАКРЫТИЕ СМЕНЫ", nil)
	p.state(d, closing.Add(p.secs(15*time.Minute, 30*time.Minute)), idle, 0, "controller", "", nil)
	if !relocates {
		p.counts(d, day)
	}
}

// block plays b from no earlier than t, the zone empty, and returns when
// the ИДК is WAITING again.
func (p *planner) block(d *devPlan, b block, t time.Time) time.Time {
	at := maxTime(b.due, t.Add(p.secs(30*time.Second, 3*time.Minute)))
	switch b.kind {
	case "lunch":
		p.state(d, at, operations, 0, "staff", "ОБЕД", nil)
		at = at.Add(p.secs(30*time.Minute, 60*time.Minute))
	case "maintenance":
		p.state(d, at, maintenance, 0, "staff", "ЕЖЕДНЕВНОЕ ТО", nil)
		at = at.Add(p.secs(45*time.Minute, 2*time.Hour))
	case "fault":
		causes := []idkpb.InoperableCause{
			idkpb.InoperableCause_INOPERABLE_CAUSE_REBOOT, idkpb.InoperableCause_INOPERABLE_CAUSE_WEATHER,
			idkpb.InoperableCause_INOPERABLE_CAUSE_GENERATOR, idkpb.InoperableCause_INOPERABLE_CAUSE_ACCELERATOR,
			idkpb.InoperableCause_INOPERABLE_CAUSE_SOFTWARE, idkpb.InoperableCause_INOPERABLE_CAUSE_OTHER,
		}
		p.state(d, at, inoperable, causes[p.rng.IntN(len(causes))], "controller", "", nil)
		at = at.Add(p.secs(10*time.Minute, 90*time.Minute))
	case "relocation":
		// Folding up (OPERATIONS), driving (RELOCATION), deploying at the
		// other site (OPERATIONS, the change that says where it now is).
		p.state(d, at, operations, 0, "staff", "СВЕРТЫВАНИЕ", nil)
		at = at.Add(p.secs(15*time.Minute, 30*time.Minute))
		p.state(d, at, relocation, 0, "gps", "", nil)
		at = at.Add(p.secs(25*time.Minute, 70*time.Minute))
		cur := d.siteOf(at)
		next := d.dev.Sites[0]
		if cur == next {
			next = d.dev.Sites[1]
		}
		p.state(d, at, operations, 0, "staff", "РАЗВЕРТЫВАНИЕ", &next)
		at = at.Add(p.secs(15*time.Minute, 40*time.Minute))
	}
	p.state(d, at, waiting, 0, "controller", "", nil)
	return at
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// Texts the forms draw from. Some are written in mixed case on purpose:
// the report writes text in upper case (A4 rule 4).
var (
	goods     = []string{"Бумага", "ХИМИЯ", "трубы", "ЗАПЧАСТИ", "Мебель", "ОБУВЬ", "фрукты свежие", "ТКАНИ"}
	lowerText = []string{"", "", "возможно наличие вложения", "ВОЗМОЖНО НАЛИЧИЕ ТОВАРОВ, НЕ УКАЗАННЫХ В ДТ", "Неоднородность груза в выделенной области", "проведен визуальный осмотр"}
	carriers  = []string{"ООО ТРАНСПОРТ", "Seyto Logistics", "ЗАО АВТОТРАНС", "ИП Сидоров", ""}
	countries = []string{"Германия", "КИТАЙ", "БЕЛАРУСЬ", "Латвия", "ЭСТОНИЯ", "РОССИЯ", "Польша"}
	reasons   = []string{"ПОЛОМКА ИДК", "сборный груз", "ДЕТАЛЬНЫЙ АНАЛИЗ СНИМКА", "УДАЛЕННОСТЬ МЕСТА ПРИМЕНЕНИЯ ИДК ОТ ТАМОЖЕННОГО ПОСТА"}
	cyrLetter = []rune("АВЕКМНОРСТУХ")
	latLetter = []rune("ABCDEFHKMPRTX")
)

func (p *planner) letters(set []rune, n int) string {
	var b strings.Builder
	for range n {
		b.WriteRune(set[p.rng.IntN(len(set))])
	}
	return b.String()
}

func (p *planner) digits(n int) string {
	var b strings.Builder
	for range n {
		b.WriteByte(byte('0' + p.rng.IntN(10)))
	}
	return b.String()
}

// trailer is «Ид. номер прицепа»: tractor and trailer plates separated by
// "/", in the ways operators type them (spaces, dashes, no trailer).
func (p *planner) trailer() string {
	var tractor, trail string
	if p.chance(0.7) {
		tractor = p.letters(cyrLetter, 1) + p.digits(3) + p.letters(cyrLetter, 2) + p.pick([]string{"777", "60", "39", "178"})
		trail = p.letters(cyrLetter, 2) + p.digits(4) + p.pick([]string{"60", "23", "47"})
	} else {
		tractor = p.letters(latLetter, 2) + p.digits(4)
		trail = p.letters(latLetter, 1) + p.digits(3)
	}
	switch r := p.rng.IntN(10); {
	case r == 0:
		return tractor // no trailer
	case r == 1:
		// Spaced and dashed as typed: "А 654 АА-777 / 5654 АА23".
		rs := []rune(tractor)
		return string(rs[:1]) + " " + string(rs[1:4]) + " " + string(rs[4:6]) + "-" + string(rs[6:]) + " / " + trail
	}
	return tractor + "/" + trail
}

// container is «N контейнера»: an ISO 6346 number, as typed, or the
// plate of the vehicle whose compartment carries the goods (A3 §3).
func (p *planner) container() string {
	owner := p.letters([]rune("ABCDEFGHJKLMNPRSTUWXYZ"), 3) + "U"
	switch r := p.rng.IntN(10); {
	case r < 5:
		return owner + p.digits(7)
	case r < 7:
		return owner + " " + p.digits(6) + "-" + p.digits(1)
	}
	return p.letters(cyrLetter, 1) + p.digits(3) + p.letters(cyrLetter, 2) + "60"
}

// info1 is «Доп Там Инфо1»: the ДТ and other numbers separated by "/"
// (A3 §2). dt is "" when the form names no ДТ.
func (p *planner) info1(office string, day time.Time) (field, dt string) {
	p.dtN++
	dt = fmt.Sprintf("%s/%s/%07d", office, day.Format("020106"), p.dtN)
	switch r := p.rng.IntN(10); {
	case r < 5:
		return dt, dt
	case r < 7:
		return dt + "/МДП " + p.letters(latLetter, 2) + p.digits(8), dt
	case r < 8:
		// Spaces around the slashes, as typed.
		return strings.ReplaceAll(dt, "/", " / ") + " / CMR" + p.digits(6), dt
	}
	return "CMR" + p.digits(6), ""
}

// object plans one object at d from t, when the zone became idle. If
// aheadAt is set the object already entered the zone (VehicleEntered)
// during the previous analysis; otherwise it arrives within twice gap.
// It returns when the zone is idle again and, if the next vehicle entered
// during this analysis, when.
func (p *planner) object(d *devPlan, day, t, aheadAt time.Time, gap time.Duration, mayAhead bool) (time.Time, time.Time) {
	m := p.m
	s := &scan{dev: d}
	office := d.siteOf(t).KodTO
	lead := p.lead(office)
	var field1 string
	field1, s.dt = p.info1(office, day)
	if !aheadAt.IsZero() {
		// Entered while the previous object was analysed: the change into
		// WORKING when its scan starts is no arrival (docs/cases.md,
		// "Arrivals").
		s.arrival, s.ahead = aheadAt, true
		work := t.Add(p.secs(30*time.Second, 2*time.Minute))
		p.state(d, work, working, 0, "controller", "", nil)
		s.scanAt = work.Add(p.secs(20*time.Second, time.Minute))
	} else {
		arrival := t.Add(p.secs(10*time.Second, 2*gap))
		if s.dt != "" && p.chance(0.15) {
			// A risk (item 12) directs this object to the ИДК: detected
			// after the previous object arrived, so that this arrival is
			// the one that joins it (docs/cases.md, matching rule 4).
			r := &riskPlan{viaPost: p.chance(0.5)}
			r.at = maxTime(d.lastArrival.Add(30*time.Second), t.Add(-p.secs(0, 4*time.Minute)))
			a, b := p.secs(2*time.Minute, 14*time.Minute), p.secs(2*time.Minute, 14*time.Minute)
			switch x := p.rng.IntN(10); {
			case x < 3: // late: the later of 20в and 20г past 15 minutes
				b = p.secs(15*time.Minute+time.Second, 25*time.Minute)
			case x == 3: // exactly the limit: no breach
				b = 15 * time.Minute
			}
			if p.chance(0.5) {
				a, b = b, a
			}
			r.handed, r.informed = r.at.Add(a), r.at.Add(b)
			r.profile = Risk{KodTeh: p.pick([]string{"01", "05", "07", "10"}), VidPr: p.pick([]string{"11", "12", "13", "20", "55"}),
				KodToPr: p.pick([]string{"10000000", "10216000", office}), DateReg: "12.12.2025", NumPr: p.digits(5), DocType: 4}
			s.risk = r
			arrival = maxTime(arrival, maxTime(r.handed, r.informed).Add(p.secs(time.Minute, 4*time.Minute)))
			docs := []string{s.dt}
			if r.viaPost {
				p.agent(d, r.at, &idkpb.Event{Body: &idkpb.Event_CaseReport{CaseReport: &idkpb.CaseReport{
					Kind: "risk_detected", Docs: docs, By: lead,
					Risk: &idkpb.RiskProfile{KodTeh: r.profile.KodTeh, VidPr: r.profile.VidPr, KodToPr: r.profile.KodToPr,
						DateReg: r.profile.DateReg, NumPr: r.profile.NumPr, DocType: r.profile.DocType}}}})
			} else {
				prof := r.profile
				p.api(r.at, CaseEvent{Kind: "risk_detected", NumIDK: d.dev.NumIDK(), Docs: docs, Risk: &prof, By: lead})
			}
			p.api(r.handed, CaseEvent{Kind: "docs_handed", NumIDK: d.dev.NumIDK(), Docs: docs, By: lead})
			p.api(r.informed, CaseEvent{Kind: "carrier_informed", NumIDK: d.dev.NumIDK(), Docs: docs, By: lead})
		}
		s.arrival = arrival
		p.state(d, arrival, working, 0, "controller", "", nil)
		s.scanAt = arrival.Add(p.secs(40*time.Second, 3*time.Minute))
	}
	d.lastArrival = s.arrival
	key := s.scanAt.Format("20060102")
	if _, ok := d.firstArrival[key]; !ok {
		d.firstArrival[key] = s.arrival
	}
	d.scanNo[key]++
	s.numSnim = fmt.Sprintf("%s%s%04d", key, d.dev.NumIDK(), d.scanNo[key])
	s.site = d.siteOf(s.scanAt)
	p.agent(d, s.scanAt, &idkpb.Event{Body: &idkpb.Event_ScanSeen{ScanSeen: &idkpb.ScanSeen{NumSnim: s.numSnim}}})

	// The kind of scan, declared by staff for a few (cases: VER_SCAN).
	if s.risk == nil && p.chance(0.05) {
		s.verScan = []int{2, 3, 5}[p.rng.IntN(3)]
		s.verAt = s.scanAt.Add(p.secs(time.Minute, 3*time.Minute))
	}

	// The form: created when the operator opens it, saved when done.
	created := s.scanAt.Add(p.secs(15*time.Second, 50*time.Second))
	saved := created.Add(p.secs(2*time.Minute, 9*time.Minute))
	if s.ahead && saved.Sub(s.scanAt) > 8*time.Minute {
		saved = created.Add(p.secs(2*time.Minute, 6*time.Minute))
	}
	suspected := s.verScan == 0 && p.chance(0.12)
	f := &idkpb.Form{
		NumSnim: s.numSnim, CreatedUnixNano: created.UnixNano(), SavedUnixNano: saved.UnixNano(),
		TruckId: s.numSnim, TrailerId: p.trailer(), Country: p.pick(countries),
		CustomsInfo1: field1, CustomsInfo2: p.pick(carriers), CustomsInfo3: "INV-" + p.digits(6),
		InspectionDateUnixNano: s.scanAt.UnixNano(),
		CommentUpper:           p.pick(goods), CommentLower: p.pick(lowerText),
		Decision: idkpb.Decision_DECISION_NOT_SUSPECTED, Operator: p.pick(p.operators(office)),
		VidTs: uint32(1 + p.rng.IntN(6)),
	}
	if p.chance(0.3) {
		f.Marks = uint32(1 + p.rng.IntN(3))
	}
	if suspected {
		f.Decision = idkpb.Decision_DECISION_SUSPECTED
		f.SuspicionReason = "НЕДОСТОВЕРНОЕ ДЕКЛАРИРОВАНИЕ"
		f.Marks = uint32(1 + p.rng.IntN(4))
		f.CommentLower = "Возможно наличие вложения в выделенной области"
	}
	dirs := []idkpb.Direction{idkpb.Direction_DIRECTION_IMPORT, idkpb.Direction_DIRECTION_EXPORT, idkpb.Direction_DIRECTION_TRANSIT}
	nc := 1 + p.rng.IntN(2)
	dir := dirs[p.rng.IntN(3)]
	for range nc {
		f.Containers = append(f.Containers, &idkpb.Container{Number: p.container(), From: p.pick(countries), To: p.pick(countries),
			Cargo: p.digits(6), Direction: dir})
	}
	if p.chance(0.05) {
		f.Containers = nil // goods loose in a van: nothing on the container tabs
	}
	formAt := saved.Add(5 * time.Second)
	if p.chance(0.08) {
		// A draft saved before the decision: revision 1 has none.
		draft := cloneForm(f)
		draft.Decision, draft.SuspicionReason, draft.CommentLower = idkpb.Decision_DECISION_NONE, "", ""
		draftSaved := created.Add((saved.Sub(created) / 2).Truncate(time.Second))
		draft.SavedUnixNano = draftSaved.UnixNano()
		p.form(d, s, draft, draftSaved.Add(5*time.Second))
	}
	p.form(d, s, f, formAt)
	d.occupied = append(d.occupied, [2]time.Time{s.arrival, s.decision})

	// The next vehicle may enter while this one is analysed: the
	// controller's edge, VehicleEntered, marks its arrival.
	var next time.Time
	if mayAhead && p.chance(0.12) && s.decision.Sub(s.scanAt) > 3*time.Minute {
		next = s.scanAt.Add(time.Minute + p.secs(0, s.decision.Sub(s.scanAt)-3*time.Minute))
		p.agent(d, next, &idkpb.Event{Body: &idkpb.Event_VehicleEntered{VehicleEntered: &idkpb.VehicleEntered{}}})
	}
	p.state(d, s.decision, waiting, 0, "controller", "", nil)

	if s.verScan != 0 {
		if !m.lateKindDone && s.verScan == 2 {
			// Declared only after TIME_2's deadline passed: the breach is
			// recorded, then withdrawn (docs/cases.md, "Scan kinds").
			m.lateKindDone = true
			s.verAt = s.arrival.Add(p.secs(16*time.Minute, 20*time.Minute))
		}
		s.verBy = lead
		p.api(s.verAt, CaseEvent{Kind: "scan", NumIDK: d.dev.NumIDK(), NumSnim: s.numSnim, VerScan: s.verScan, By: lead})
	} else {
		// 22д: the documents with the marks handed back.
		ret := s.decision.Add(p.secs(20*time.Second, 3*time.Minute))
		switch x := p.rng.IntN(100); {
		case x < 7:
			ret = maxTime(ret, s.arrival.Add(p.secs(15*time.Minute+time.Second, 25*time.Minute)))
		case x < 9:
			if e := s.arrival.Add(15 * time.Minute); e.After(s.decision) {
				ret = e // exactly the limit: no breach
			}
		}
		s.returned = ret
		p.api(ret, CaseEvent{Kind: "docs_returned", NumIDK: d.dev.NumIDK(), NumSnim: s.numSnim, By: lead})
		if suspected {
			// 24б: the act handed over.
			act := s.decision.Add(p.secs(8*time.Minute, 29*time.Minute))
			switch x := p.rng.IntN(10); {
			case x < 3:
				act = s.decision.Add(p.secs(30*time.Minute+time.Second, 45*time.Minute))
			case x == 3:
				act = s.decision.Add(30 * time.Minute)
			}
			s.act = act
			p.api(act, CaseEvent{Kind: "act_handed", NumIDK: d.dev.NumIDK(), NumSnim: s.numSnim, By: lead})
		}
	}
	if p.chance(0.06) {
		// A correction after the decision: the lower comment and marks
		// change, the decision stays.
		fix := cloneForm(f)
		at := formAt.Add(p.secs(2*time.Minute, 10*time.Minute))
		fix.SavedUnixNano = at.Add(-5 * time.Second).UnixNano()
		fix.CommentLower = "Дополнено: проведен визуальный осмотр"
		fix.Marks = f.Marks + 1
		p.form(d, s, fix, at)
	}
	m.scans = append(m.scans, s)
	return s.decision, next
}

func cloneForm(f *idkpb.Form) *idkpb.Form { return proto.Clone(f).(*idkpb.Form) }

// form sends a FormRevision of s at at.
func (p *planner) form(d *devPlan, s *scan, f *idkpb.Form, at time.Time) {
	content := formXML(f)
	sum := sha256.Sum256(content)
	s.forms = append(s.forms, f)
	s.formAt = append(s.formAt, at)
	if s.decision.IsZero() && f.Decision != idkpb.Decision_DECISION_NONE {
		s.decision = at
	}
	p.agent(d, at, &idkpb.Event{Body: &idkpb.Event_Form{Form: &idkpb.FormRevision{
		NumSnim: s.numSnim, Revision: uint32(len(s.forms)), Content: content, Sha256: sum[:], Form: f}}})
}

// formXML is a stand-in for the CargoRIW file: the store keeps it as it
// came; the report reads the parsed form.
func formXML(f *idkpb.Form) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "<?xml version=\"1.0\"?>\n<form num=%q saved=\"%d\" decision=\"%d\" operator=%q>%s</form>\n",
		f.NumSnim, f.SavedUnixNano, f.Decision, f.Operator, f.CommentLower)
	return b.Bytes()
}

// counts plans the post's object counts of d's day (table 3 notes 15-16):
// KOVR never exceeds OKO.
func (p *planner) counts(d *devPlan, day time.Time) {
	c := &Counts{NumIDK: d.dev.NumIDK(), Day: day, Fields: map[string]int{}, By: p.lead(d.siteOf(day.Add(23 * time.Hour)).KodTO)}
	for _, cat := range []string{"GRU", "KON", "LEG", "PAS", "POR", "IN"} {
		for _, dir := range []string{"IM", "EX"} {
			if p.chance(0.4) {
				continue
			}
			oko := p.rng.IntN(80)
			c.Fields["OKO_"+cat+"_"+dir] = oko
			if oko > 0 {
				c.Fields["KOVR_"+cat+"_"+dir] = p.rng.IntN(oko + 1)
			}
		}
	}
	p.m.counts[d.dev.NumIDK()+"/"+day.Format("20060102")] = c
	p.add(day.Add(23*time.Hour+40*time.Minute), Action{Counts: c})
}

// officers plans the day's entries: table 2 rows for some suspected scans
// of the day, a table 5 summary and table 6 results of re-analysis for
// some days, per office.
func (p *planner) officers(day time.Time) {
	m := p.m
	date := day.Format("02.01.2006")
	next := day.AddDate(0, 0, 1)
	for _, s := range m.scans {
		if s.scanAt.Before(day) || !s.scanAt.Before(next) || s.forms[len(s.forms)-1].Decision != idkpb.Decision_DECISION_SUSPECTED || !p.chance(0.5) {
			continue
		}
		f := s.forms[len(s.forms)-1]
		row := map[string]string{"NUM_IDK": s.dev.dev.NumIDK(), "NUM_SNIM": s.numSnim, "DATE_SYS": date,
			"NAIM_ORG": p.pick([]string{"ООО ЕЛКА", "ООО КАРА", "ИП ПЕТРОВ П.П."}), "INN_ORG": p.digits(10),
			"NAIM_OTP_POL": "ЗАО ТЕРМИНАЛ", "INN_OTP_POL": p.digits(10),
			"OB_NAR": "1. КЛЕН; 2. БЕРЕЗА", "KOL_VO_TOV": fmt.Sprintf("%d ШТ.", 1+p.rng.IntN(50)),
			"STOIM": fmt.Sprintf("%d,%d", 1000+p.rng.IntN(90000), p.rng.IntN(10))}
		if s.dt != "" {
			row["NAIM_DOK"], row["NUM_DOK"] = "4", s.dt
		}
		if s.risk != nil {
			row["KOD_TEH"], row["NUM_PR"] = s.risk.profile.KodTeh, s.risk.profile.NumPr
		}
		if len(f.Containers) > 0 {
			switch f.Containers[0].Direction {
			case idkpb.Direction_DIRECTION_IMPORT:
				row["NAPR"] = "1"
			case idkpb.Direction_DIRECTION_EXPORT:
				row["NAPR"] = "2"
			}
			row["KOD_TNVED"] = f.Containers[0].Cargo
		}
		rez := 1 + p.rng.IntN(8)
		row["REZ"] = fmt.Sprint(rez)
		if rez != 4 && rez != 5 {
			row["DATE_VOZB"] = date
		}
		if rez <= 2 {
			row["NUM_DELA"] = "10216000-" + p.digits(4) + "/2026"
			row["NUM_STAT"] = "Ч. 3 СТ. 16.1 КОАП РФ"
			if rez == 2 {
				row["NUM_STAT"] = "Ч. 3 СТ. 229.1 УК РФ"
			}
			row["SUMM_SHT"] = fmt.Sprint(1000 + p.rng.IntN(5000))
		}
		if rez == 6 {
			row["SUMM_PLAT"] = fmt.Sprintf("%d,%02d", 1000+p.rng.IntN(5000), p.rng.IntN(100))
		}
		if rez == 7 {
			row["KONF"] = "5225,52"
		}
		p.entry(day.Add(23*time.Hour+30*time.Minute), Entry{Table: 2, Row: row, By: p.lead(s.site.KodTO)})
	}
	for _, o := range offices {
		an := p.analyst(o.KodTO)
		if p.chance(0.35) {
			pr := 5 + p.rng.IntN(30)
			row := map[string]string{"KOD_TO": o.KodTO, "DATE_SYS": date, "KOL_VO_PR_SNIM": fmt.Sprint(pr),
				"KOL_VO_NAR": fmt.Sprint(p.rng.IntN(3)), "KOL_VO_OT_SNIM": fmt.Sprint(p.rng.IntN(2)),
				"KOL_VO_POD_SNIM": fmt.Sprint(p.rng.IntN(2)), "KOL_VO_PPR": fmt.Sprint(p.rng.IntN(3)),
				"KOL_VO_UPR": fmt.Sprint(p.rng.IntN(2)), "KOL_VO_EPR": fmt.Sprint(p.rng.IntN(2)),
				"FIO": an.FIO, "LNP": an.LNP}
			if p.chance(0.3) {
				row["KOL_VO_PROV"] = fmt.Sprint(p.rng.IntN(4))
			}
			p.entry(day.Add(23*time.Hour+31*time.Minute), Entry{Table: 5, Row: row, By: an.Login})
		}
		if day.Day() >= 3 && p.chance(0.25) {
			// A violation found by re-analysis of an earlier scan of this
			// office, dated a few days back (DATE_SYS_V), its result
			// received today: rows reach table 6 out of date order.
			found := day.AddDate(0, 0, -p.rng.IntN(3))
			var cands []*scan
			for _, s := range m.scans {
				if s.site.KodTO == o.KodTO && s.scanAt.Before(found) {
					cands = append(cands, s)
				}
			}
			if len(cands) == 0 {
				continue
			}
			s := cands[p.rng.IntN(len(cands))]
			rez := p.rng.IntN(15)
			row := map[string]string{"KOD_TO": o.KodTO, "DATE_SYS_V": found.Format("02.01.2006"), "NUM_SNIM": s.numSnim,
				"OPISANIE": "В РЕЗУЛЬТАТЕ ПОВТОРНОГО АНАЛИЗА РЕНТГЕНОСКОПИЧЕСКОГО ИЗОБРАЖЕНИЯ УСТАНОВЛЕНО, ЧТО В ГРУЗОВОМ ОТСЕКЕ ПРЕДПОЛОЖИТЕЛЬНО НАХОДИТСЯ БОЛЬШЕ ТОВАРА, ЧЕМ ЗАЯВЛЕНО",
				"REZ":      fmt.Sprint(rez), "FIO": an.FIO, "LNP": an.LNP}
			if rez != 0 {
				row["DATE_SYS_R"] = date
			}
			p.entry(day.Add(23*time.Hour+35*time.Minute), Entry{Table: 6, Row: row, By: an.Login})
		}
	}
}

func (p *planner) entry(at time.Time, e Entry) {
	p.m.entries = append(p.m.entries, &e)
	p.add(at, Action{Entry: &e})
}

// reasons plans the PRICH_NAR given after the month for most breached
// inspections; the rest stay without one (item 36 wants them by the 10th).
func (p *planner) reasons() {
	for _, s := range p.m.scans {
		// A withdrawn breach has no row to give a reason for.
		if b, ok := s.breach(); !ok || b.withdrawn != "" || !p.chance(0.7) {
			continue
		}
		s.reason = p.pick(reasons)
		p.m.Reasons = append(p.m.Reasons, Reason{NumIDK: s.dev.dev.NumIDK(), NumSnim: s.numSnim, Reason: s.reason, By: p.lead(s.site.KodTO)})
	}
}

// finish puts the actions in time order and numbers each device's
// events as its agent's spool does: Seq from 1, and the scan chain.
func (p *planner) finish() {
	slices.SortStableFunc(p.out, func(a, b pending) int {
		if c := a.at.Compare(b.at); c != 0 {
			return c
		}
		return a.n - b.n
	})
	seq := map[*Device]uint64{}
	idx := map[*Device]uint64{}
	chain := map[*Device][]byte{}
	for _, pe := range p.out {
		a := pe.act
		if a.Event != nil {
			seq[a.Device]++
			a.Event.Seq = seq[a.Device]
			if ss := a.Event.GetScanSeen(); ss != nil {
				idx[a.Device]++
				ss.Index = idx[a.Device]
				ss.Chain = protocol.ChainNext(chain[a.Device], ss.Index, ss.NumSnim)
				chain[a.Device] = ss.Chain
			}
		}
		p.m.Actions = append(p.m.Actions, a)
	}
}
