// Package cases holds each ИДК inspection to the time limits of item 35 of
// the Instruction while it happens, and records each breach as a row of
// table 4 of the daily report («Нарушение сроков проведения таможенного
// осмотра с использованием ИДК»).
//
// # Events and timers
//
// An inspection reaches the collector as separate events (see Kind) from
// different people and systems. The Engine pieces them together into a
// Case. A case has up to three timers:
//
//   - TIME_1 (15 min) runs from the latest risk_detected to the later of
//     docs_handed (item 20в) and carrier_informed (20г). Both are needed
//     to end it.
//   - TIME_2 (15 min) runs from the arrival in the working zone to
//     docs_returned (22д).
//   - TIME_3 (30 min) runs from the first decision «Объект под
//     подозрением» to act_handed (24б).
//
// A timer starts only when its start event is known. A case opened by a
// scan alone has no risk_detected, so its TIME_1 is unknown and has no
// deadline. End events are taken as given. An end that comes before its
// start ends the timer with no breach. A risk_withdrawn cancels the risks
// before it: TIME_1 stops there with no breach, and a TIME_1 breach
// already recorded is withdrawn.
//
// # Matching
//
// Events are tried against the following rules, in this order. The first
// rule that finds a case wins.
//
//  1. case_id names the case outright.
//  2. num_snim joins the case that has that image at that ИДК.
//  3. Document numbers (see ParseDocs) join the oldest case that shares
//     one. A ДТ number identifies a consignment wherever it is scanned,
//     so this rule ignores the ИДК. The risk-phase events (risk_detected,
//     docs_handed, carrier_informed) carry the numbers, and the decision
//     carries the form's «Доп Там Инфо1». When such a decision names an
//     image whose case came from the scan alone, that case is merged into
//     the case of the documents. Its old ID then leads to the merged
//     case.
//  4. The event's kind decides, as listed below.
//
// By kind (rule 4):
//
//   - An arrival first joins a case at that ИДК that has an arrival but no
//     scan, if that arrival is within 15 minutes of this one. The working
//     zone holds one object at a time, so this is the same object reported
//     twice (by the controller and by the operator). Otherwise it joins the
//     oldest case at that ИДК that has a risk but no arrival and no scan.
//     Failing both, it opens a pending arrival: a case of its own whose
//     TIME_2 runs.
//   - A scan, or a decision for an image not seen yet, claims the case at
//     that ИДК with the oldest arrival and no scan. Failing that, it opens
//     a case of its own.
//   - A risk_detected opens a new case.
//   - An end event (docs_handed, carrier_informed, docs_returned,
//     act_handed) that no rule places is an error naming the fields it was
//     looked up by. The person reporting it learns at once that the number
//     was mistyped.
//
// For rule 3, risk_detected, arrival, scan and decision consider only
// cases without an image yet. The end events consider every case, and
// prefer one whose timer they would end. Nothing accepted is dropped. An
// event that joins nothing is kept in a case of its own. Unmatched lists every
// case still without an image an hour after its first event, and so also
// lists such lone events.
//
// # Deadlines and breaches
//
// The limits are "не должен превышать", so a duration equal to the limit
// is not a breach and one that is longer by any amount is. Tick compares
// every running timer with the clock. The moment the clock passes
// start+limit, the breach is recorded. It does not wait for the end
// event. Its date (DATE_NAR) is the deadline's date in the engine's time
// zone. When the end arrives, the row shows the final duration. If a late
// report shows the timer ended within the limit after all, the breach is
// withdrawn: it leaves table 4 but stays in the breaches_total counter,
// which never goes down.
//
// Table 4 has one row per breached case. TIME_x is filled for each
// breached rule and left "" for the others. The source does not say
// whether a row fills all three, and an empty field cannot be misread as
// a breach. DATE_NAR is the date of the case's first breach. The source
// gives no format for TIME_1..TIME_3, so they are written like table 3's
// durations: hours, a comma and two digits of minutes (FormatMinutes).
// Partial minutes are rounded up, so a breach never shows as exactly the
// limit. PRICH_NAR is the reason that item 36 requires. It is given with
// SetReason and stored in upper case (A4 rule 4).
//
// # Durability
//
// The Engine keeps its state in its own bbolt file (Open), or in the
// store given to OpenDB (a kv.DB: a region's PostgreSQL database). Every
// change (event, case, breach, reason, device identity) is committed and
// synced before the call that made it returns, with its entry in the
// append-only audit log (Audit). A restart therefore loses no case and no
// deadline. Open rebuilds the running timers, and records at once any
// deadline that passed while the collector was down, dated by the
// deadline.
//
// docs/cases.md describes the same rules for readers of the project, with
// the HTTP API, the metrics and how the collector feeds the engine.
package cases

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode"

	"idk/collector/registry"
	"idk/protocol/idkpb"
)

// Kind is what an event reports.
type Kind string

// The kinds of event, in the order of the Instruction's steps.
const (
	// RiskDetected: a risk requiring an ИДК inspection was detected, or
	// other grounds were established (item 12). Starts TIME_1. Reported by
	// the documentary-control officers or another system, through the API.
	RiskDetected Kind = "risk_detected"
	// DocsHanded: the documents were handed to the ИДК coordination unit
	// (item 20в). One of the two TIME_1 end events.
	DocsHanded Kind = "docs_handed"
	// CarrierInformed: the carrier was told to bring the object to the
	// ИДК (item 20г). One of the two TIME_1 end events.
	CarrierInformed Kind = "carrier_informed"
	// Arrival: the object arrived in the ИДК working zone (items 17, 35
	// ¶2). Starts TIME_2. Fed by the collector when the device state goes
	// to WORKING, or reported by the operator through the API.
	Arrival Kind = "arrival"
	// Scan: the ИДК made image NumSnim (item 21в). Fed by the collector on
	// ScanSeen.
	Scan Kind = "scan"
	// Decision: the form recorded the decision (item 22в). Suspected means
	// «Объект под подозрением», which starts TIME_3. Fed by the collector
	// from the first FormRevision that carries a decision (DecisionEvent).
	Decision Kind = "decision"
	// DocsReturned: the documents bearing the «Осмотрено с использованием
	// ИДК» mark were handed back (item 22д). Ends TIME_2.
	DocsReturned Kind = "docs_returned"
	// ActHanded: copy 1 of the act was handed over (item 24б). Ends TIME_3.
	ActHanded Kind = "act_handed"
	// RiskWithdrawn: the risk that started TIME_1 was cancelled (a wrong
	// profile, entered in error). It is a correction, not a step: it
	// cancels every risk_detected of the case up to its time, so TIME_1
	// stops there without a breach, and a breach of TIME_1 already
	// recorded is withdrawn as a new version of the row. It needs the
	// case (case_id, num_snim or docs), by and reason.
	RiskWithdrawn Kind = "risk_withdrawn"
)

// kinds lists every Kind, for validation and messages. The agent keeps a
// copy (agent/casereport.Kinds) in the same order.
var kinds = []Kind{RiskDetected, DocsHanded, CarrierInformed, Arrival, Scan, Decision, DocsReturned, ActHanded, RiskWithdrawn}

// Rule is one of the three limits of item 35. Its value is the metric
// label.
type Rule string

// The three rules of item 35 (table 4 fields TIME_1, TIME_2, TIME_3).
const (
	Time1 Rule = "time_1" // documenting the decision to use the ИДК: 15 min
	Time2 Rule = "time_2" // the customs control with the ИДК: 15 min
	Time3 Rule = "time_3" // documenting signs of a violation: 30 min
)

// rules lists the rules in table order. The index of a rule in it is the
// index of its timer.
var rules = []Rule{Time1, Time2, Time3}

// Limit is the rule's limit. A duration equal to it is within the rule.
func (r Rule) Limit() time.Duration {
	if r == Time3 {
		return 30 * time.Minute
	}
	return 15 * time.Minute
}

// Device is an ИДК's identity from the agent's hello (registry.Device). It
// supplies the identity fields of table 4.
type Device = registry.Device

// Event is one step of an inspection. Time is already in the collector's
// clock: agent times are corrected by the offset measured at the hello.
type Event struct {
	Kind    Kind      `json:"kind"`
	Time    time.Time `json:"time"`
	NumIDK  string    `json:"num_idk"`            // the ИДК it happened at or, for the risk phase, is directed to
	NumSnim string    `json:"num_snim,omitempty"` // the image it concerns, if known
	// Docs are document numbers (ДТ, МДП, transit declaration, waybill).
	// Each element may hold several, written as in «Доп Там Инфо1».
	// Add stores them split and normalised by ParseDocs.
	Docs      []string `json:"docs,omitempty"`
	Suspected bool     `json:"suspected,omitempty"` // decision only: «Объект под подозрением»
	CaseID    string   `json:"case_id,omitempty"`   // the case it belongs to, when the reporter knows it
	By        string   `json:"by"`                  // who reported it
	Source    string   `json:"source,omitempty"`    // how it came: agent, api, ...
	// VerScan is the kind of scan (table 1 VER_SCAN, see ScanKind), on a
	// scan or decision event. 0 means not said. The CargoRIW form has no
	// such field, so it comes from staff, through the API.
	VerScan ScanKind `json:"ver_scan,omitempty"`
	// Reason says why an event is reported late: it is required once the
	// event's time is more than the engine's backdating window ago.
	Reason string `json:"reason,omitempty"`
	// Risk is the risk profile that triggered the inspection, when the
	// post reported it with a risk_detected. Zero, it is left out of the
	// JSON, so the identity of older events does not change.
	Risk RiskProfile `json:"risk,omitzero"`
	// ClockOffset is set by the feed on an agent's event when the agent's
	// clock was off by more than the engine's limit
	// (SetClockOffsetLimit): the collector corrected Time by this much,
	// collector clock minus agent clock. Zero, it is left out of the
	// JSON, so the identity of the other events does not change.
	ClockOffset time.Duration `json:"clock_offset_ns,omitempty"`
}

// RiskProfile identifies a risk profile (ПР): the risk section of table 1.
// Empty fields are unknown.
type RiskProfile struct {
	KodTeh  string `json:"KOD_TEH,omitempty"`
	VidPr   string `json:"VID_PR,omitempty"`
	KodToPr string `json:"KOD_TO_PR,omitempty"`
	DateReg string `json:"DATE_REG,omitempty"` // DD.MM.YYYY
	NumPr   string `json:"NUM_PR,omitempty"`
	// DocType is the kind of document the ПР was identified for (table 1
	// DOC_TYPE, codes.DocType); 0 is unknown.
	DocType int `json:"DOC_TYPE,omitempty"`
}

func (p RiskProfile) proto() *idkpb.RiskProfile {
	return &idkpb.RiskProfile{KodTeh: p.KodTeh, VidPr: p.VidPr, KodToPr: p.KodToPr, DateReg: p.DateReg, NumPr: p.NumPr, DocType: uint32(p.DocType)}
}

// DecisionEvent turns a stored FormRevision of ИДК numIDK into a decision
// event at time at (its collector time). ok is false when the revision
// carries no decision or could not be parsed. Feed only the first
// revision with a decision. A later one joins the case as well, and if
// it is the case's first suspected decision it starts TIME_3 there.
func DecisionEvent(numIDK string, at time.Time, fr *idkpb.FormRevision) (ev Event, ok bool) {
	f := fr.GetForm()
	if fr.GetParseError() != "" || f.GetDecision() == idkpb.Decision_DECISION_NONE {
		return Event{}, false
	}
	by := strings.TrimSpace(f.GetOperator())
	if by == "" {
		by = "CargoRIW" // the form names no operator: the form itself reported it
	}
	var docs []string
	if s := f.GetCustomsInfo1(); s != "" {
		docs = []string{s}
	}
	return Event{
		Kind:      Decision,
		Time:      at,
		NumIDK:    numIDK,
		NumSnim:   fr.GetNumSnim(),
		Docs:      docs,
		Suspected: f.GetDecision() == idkpb.Decision_DECISION_SUSPECTED,
		By:        by,
		Source:    "agent",
	}, true
}

// dtShape is a ДТ (goods declaration) number: customs body code, date
// DDMMYY, serial number. It holds two slashes itself, so a ДТ must be
// recognised before the rest of «Доп Там Инфо1» is split on "/".
var dtShape = regexp.MustCompile(`^[0-9]{8}/[0-9]{6}/[0-9]{7}$`)

// ParseDocs splits «Доп Там Инфо1» (numbers separated by "/": ДТ, TIR
// carnet, transit declaration, waybill) into normalised document numbers.
// Each number is trimmed, upper-cased and stripped of spaces. ДТ-shaped
// runs of three parts (8, 6 and 7 digits) are kept whole. Longer digit
// runs do not count, so "110702070/170717/0012345" is three numbers.
// Empty parts and repeats are dropped, and order is kept.
func ParseDocs(customsInfo1 string) []string {
	s := strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) {
			return -1
		}
		return r
	}, strings.ToUpper(customsInfo1))
	parts := strings.Split(s, "/")
	var out []string
	add := func(d string) {
		if d != "" && !slices.Contains(out, d) {
			out = append(out, d)
		}
	}
	for i := 0; i < len(parts); i++ {
		if i+2 < len(parts) {
			if dt := parts[i] + "/" + parts[i+1] + "/" + parts[i+2]; dtShape.MatchString(dt) {
				add(dt)
				i += 2
				continue
			}
		}
		add(parts[i])
	}
	return out
}

// FormatMinutes writes d as table 4's TIME_1..TIME_3: hours, a comma and
// two digits of minutes, the way table 3 writes durations (17 minutes is
// "0,17"). A partial minute is rounded up. A breach of the 15-minute limit
// by one second therefore reads "0,16", never "0,15", which would look
// like no breach. Zero and negative durations are "0,00".
func FormatMinutes(d time.Duration) string {
	if d <= 0 {
		return "0,00"
	}
	m := int64((d + time.Minute - 1) / time.Minute)
	return fmt.Sprintf("%d,%02d", m/60, m%60)
}

// norm normalises an identifier (NUM_IDK, NUM_SNIM): no spaces anywhere
// and upper case (A4 rule 4). A number typed with a stray space then
// still matches.
func norm(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) {
			return -1
		}
		return unicode.ToUpper(r)
	}, s)
}

// Timer is one rule's timer of a case.
type Timer struct {
	Rule     Rule      `json:"rule"`
	Start    time.Time `json:"start"`
	End      time.Time `json:"end,omitzero"` // zero while running
	Deadline time.Time `json:"deadline"`     // Start plus the limit. Only a later moment is a breach
	Running  bool      `json:"running"`
	Breached bool      `json:"breached"`
	// Withdrawn: its risk was withdrawn (risk_withdrawn). The timer
	// stopped at the withdrawal, or at its end if that came first, and
	// is no breach.
	Withdrawn bool `json:"withdrawn,omitempty"`
}

// Case is one inspection as pieced together from its events.
type Case struct {
	ID        string    `json:"id"`
	NumIDK    string    `json:"num_idk"`            // where it is scanned or, before that, directed to
	NumSnim   string    `json:"num_snim,omitempty"` // its image, once known
	Docs      []string  `json:"docs,omitempty"`     // every document number its events carried
	Suspected bool      `json:"suspected"`          // a decision «Объект под подозрением» was made
	VerScan   ScanKind  `json:"ver_scan,omitempty"` // the kind of its scan, once said
	Open      bool      `json:"open"`               // a timer is running or the object has not been scanned yet
	Timers    []Timer   `json:"timers"`             // the timers whose start is known, in rule order
	Events    []Event   `json:"events"`             // in time order
	Reason    string    `json:"reason,omitempty"`   // PRICH_NAR, once given
	ReasonBy  string    `json:"reason_by,omitempty"`
	ReasonAt  time.Time `json:"reason_at,omitzero"`
}

// Row is one row of table 4. Its JSON has exactly the table's field
// names. ID and Running are not table fields and are left out of it.
type Row struct {
	ID      string `json:"-"` // the breached case's ID: it names the row for SetReason
	Running bool   `json:"-"` // a breached timer is still running, so its TIME_x still grows
	// ClockSuspect: some event of the case came from an agent whose clock
	// was off by more than the limit, so its times are the collector's
	// correction of a wrong clock. ClockOffset is the largest such
	// offset (see Event.ClockOffset).
	ClockSuspect bool          `json:"-"`
	ClockOffset  time.Duration `json:"-"`
	KOD_TO       string        `json:"KOD_TO"`
	NAIM_TO      string        `json:"NAIM_TO"`
	NAIM_ZTK     string        `json:"NAIM_ZTK"`
	TYPE_IDK     uint32        `json:"TYPE_IDK"`
	NUM_IDK      string        `json:"NUM_IDK"`
	DISL_IDK     uint32        `json:"DISL_IDK"`
	DATE_NAR     string        `json:"DATE_NAR"` // DD.MM.YYYY
	NUM_SNIM     string        `json:"NUM_SNIM"`
	TIME_1       string        `json:"TIME_1"` // "H,MM" when TIME_1 was breached, else ""
	TIME_2       string        `json:"TIME_2"`
	TIME_3       string        `json:"TIME_3"`
	PRICH_NAR    string        `json:"PRICH_NAR"`
}
