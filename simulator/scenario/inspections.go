package scenario

import (
	"fmt"
	"time"
)

// Who reports an inspection event: the agent (from the controller and the
// operator's form, on the agent's clock) or an officer through the API (on
// the collector's clock).
const (
	ByAgent = "agent"
	ByAPI   = "api"
	// ByPost is the shift lead at the scanner PC (idk-agent case): the
	// report travels in the agent's spool and QUIC connection, timed by
	// the agent's clock when it was made.
	ByPost = "post"
)

// Kinds of agent steps beyond the inspection events: the controller link
// lost past its grace (UNKNOWN) and back (the state it showed before), and
// the agent's connection to the collector down and back. An ИДК with a
// controller shows its zone idle (WAITING) from the start of the day.
const (
	LinkLost   = "link_lost"
	LinkBack   = "link_back"
	Outage     = "outage"
	OutageOver = "outage_over"
)

// InspectionStep is one event of a planted inspection.
type InspectionStep struct {
	At        time.Duration // from the scenario's start, on the collector's clock
	Kind      string        // arrival, scan, decision, risk_detected, docs_handed, carrier_informed, docs_returned, act_handed
	Via       string        // ByAgent or ByAPI
	NumSnim   string
	Docs      []string
	Suspected bool

	// The fields below are used by PlantedDay only.
	NumIDK  string // the ИДК; "" is the scenario's first
	VerScan int    // a staff declaration of the scan's kind (API scan)
	Reason  string // why an API event older than the backdating window comes late
	// Refused: the API event is older than the backdating window and
	// carries no reason; the collector must refuse it (400 naming reason).
	Refused bool
	// Late: reported after the rest of the day was played, with its real
	// time: a correction of a row already published.
	Late bool
}

// PlantedBreach is a table 4 row the scenario must produce.
type PlantedBreach struct {
	NumSnim, Doc string // how to find the case: its scan, or its ДТ number
	Rule         string // time_1, time_2, time_3
	Value        string // TIME_x as the report writes it
}

// Inspections is a day of planted inspections at one ИДК: for each of the
// three rules, one case just under the limit, one exactly at it and one a
// minute over. Only the last of each is a breach.
type Inspections struct {
	Steps    []InspectionStep
	Breaches []PlantedBreach
}

// PlantedInspections builds the plan; numIDK numbers the scans.
func PlantedInspections(numIDK string) Inspections {
	var in Inspections
	at := time.Duration(0)
	n := 0
	snim := func() string { n++; return fmt.Sprintf("20261120%s%04d", numIDK, n) }
	durations := []time.Duration{14*time.Minute + 59*time.Second, 15 * time.Minute, 15*time.Minute + time.Second}
	// TIME_1: risk detected → the later of documents handed (20в) and
	// carrier informed (20г), through the API. Then the object arrives and
	// is inspected well within TIME_2; its form names the ДТ, which is how
	// the scan joins the risk's case.
	for i, d := range durations {
		doc := fmt.Sprintf("10702070/201126/%07d", 100+i)
		s := snim()
		in.Steps = append(in.Steps,
			InspectionStep{At: at, Kind: "risk_detected", Via: ByAPI, Docs: []string{doc}},
			InspectionStep{At: at + d - 2*time.Minute, Kind: "docs_handed", Via: ByAPI, Docs: []string{doc}},
			InspectionStep{At: at + d, Kind: "carrier_informed", Via: ByAPI, Docs: []string{doc}},
			InspectionStep{At: at + d + 2*time.Minute, Kind: "arrival", Via: ByAgent},
			InspectionStep{At: at + d + 3*time.Minute, Kind: "scan", Via: ByAgent, NumSnim: s},
			InspectionStep{At: at + d + 6*time.Minute, Kind: "decision", Via: ByAgent, NumSnim: s, Docs: []string{doc}},
			InspectionStep{At: at + d + 9*time.Minute, Kind: "docs_returned", Via: ByAPI, NumSnim: s},
		)
		if d > 15*time.Minute {
			in.Breaches = append(in.Breaches, PlantedBreach{NumSnim: s, Doc: doc, Rule: "time_1", Value: "0,16"})
		}
		at += 40 * time.Minute
	}
	// TIME_2: arrival (the agent, from the controller) → documents handed
	// back with the marks (22д, API). The decision comes from the form.
	for _, d := range durations {
		s := snim()
		in.Steps = append(in.Steps,
			InspectionStep{At: at, Kind: "arrival", Via: ByAgent},
			InspectionStep{At: at + time.Minute, Kind: "scan", Via: ByAgent, NumSnim: s},
			InspectionStep{At: at + 5*time.Minute, Kind: "decision", Via: ByAgent, NumSnim: s},
			InspectionStep{At: at + d, Kind: "docs_returned", Via: ByAPI, NumSnim: s},
		)
		if d > 15*time.Minute {
			in.Breaches = append(in.Breaches, PlantedBreach{NumSnim: s, Rule: "time_2", Value: "0,16"})
		}
		at += 30 * time.Minute
	}
	// TIME_3: «Объект под подозрением» (the agent, from the form) → act
	// handed over (24б, API). TIME_2 ends well within its limit.
	for _, d := range []time.Duration{29*time.Minute + 59*time.Second, 30 * time.Minute, 30*time.Minute + time.Second} {
		s := snim()
		in.Steps = append(in.Steps,
			InspectionStep{At: at, Kind: "arrival", Via: ByAgent},
			InspectionStep{At: at + time.Minute, Kind: "scan", Via: ByAgent, NumSnim: s},
			InspectionStep{At: at + 4*time.Minute, Kind: "decision", Via: ByAgent, NumSnim: s, Suspected: true},
			InspectionStep{At: at + 8*time.Minute, Kind: "docs_returned", Via: ByAPI, NumSnim: s},
			InspectionStep{At: at + 4*time.Minute + d, Kind: "act_handed", Via: ByAPI, NumSnim: s},
		)
		if d > 30*time.Minute {
			in.Breaches = append(in.Breaches, PlantedBreach{NumSnim: s, Rule: "time_3", Value: "0,31"})
		}
		at += time.Hour
	}
	return in
}

// PlantedDevice is one ИДК of a planted day.
type PlantedDevice struct {
	NumIDK     string
	Controller bool // a controller reports its states; without one the scans mark the arrivals
}

// PlantedRow is a table 4 row a planted day must produce, written from
// the rules of item 35 and the table's format, not from the engine.
type PlantedRow struct {
	NumIDK, NumSnim        string
	Deadline               time.Duration // the breached deadline, from the day's start: DATE_NAR is its date
	TIME_1, TIME_2, TIME_3 string
}

// Day is a planted day at a post with several ИДК.
type Day struct {
	Devices []PlantedDevice
	// BackdateWindow is the collector's cases.backdate_window for the day,
	// which is played ending Length after its start.
	BackdateWindow time.Duration
	Length         time.Duration
	Steps          []InspectionStep
	Rows           []PlantedRow
	// Corrected are the scans whose rows were published during the day and
	// withdrawn by a correction: absent from the current table 4, present
	// in its history.
	Corrected []string
}

// PlantedDay is one day at a 2-ИДК post: ИДК a has a controller, ИДК b
// none. It combines a controller link flap while an object is analysed, a
// shift lead's report held by the agent through an outage, scans that
// mark their own arrivals, a test scan, a backdated end event refused
// without a reason and taken with one, and a correction entered after the
// day. The day is played ending 8 h after its start with a 6 h window, so
// only its first two hours are older than the window.
func PlantedDay(a, b string) Day {
	d := Day{Devices: []PlantedDevice{{NumIDK: a, Controller: true}, {NumIDK: b}},
		BackdateWindow: 6 * time.Hour, Length: 8 * time.Hour}
	snim := func(idk string, n int) string { return fmt.Sprintf("20261120%s%04d", idk, n) }
	at := func(hh, mm int) time.Duration { return time.Duration(hh)*time.Hour + time.Duration(mm)*time.Minute }
	add := func(st ...InspectionStep) { d.Steps = append(d.Steps, st...) }
	a1, a2, a3, a4 := snim(a, 1), snim(a, 2), snim(a, 3), snim(a, 4)
	b1, b2, b3 := snim(b, 1), snim(b, 2), snim(b, 3)
	const doc = "10702070/201126/0007001"

	// a1: the controller link drops and comes back while the operator
	// analyses the image; the shift lead reports 22д at 12 minutes while
	// the agent's link to the collector is down. No row: the return to
	// WORKING is not a second arrival, and the report keeps its time.
	add(InspectionStep{At: at(0, 10), Kind: "arrival", Via: ByAgent, NumIDK: a},
		InspectionStep{At: at(0, 12), Kind: "scan", Via: ByAgent, NumIDK: a, NumSnim: a1},
		InspectionStep{At: at(0, 14), Kind: LinkLost, Via: ByAgent, NumIDK: a},
		InspectionStep{At: at(0, 16), Kind: LinkBack, Via: ByAgent, NumIDK: a},
		InspectionStep{At: at(0, 18), Kind: "decision", Via: ByAgent, NumIDK: a, NumSnim: a1},
		InspectionStep{At: at(0, 20), Kind: Outage, Via: ByAgent, NumIDK: a},
		InspectionStep{At: at(0, 22), Kind: "docs_returned", Via: ByPost, NumIDK: a, NumSnim: a1},
		InspectionStep{At: at(0, 35), Kind: OutageOver, Via: ByAgent, NumIDK: a},
	)
	// a2: 22д at 10 minutes, entered through the API more than the window
	// ago: refused without a reason, taken with one. No row.
	add(InspectionStep{At: at(0, 40), Kind: "arrival", Via: ByAgent, NumIDK: a},
		InspectionStep{At: at(0, 41), Kind: "scan", Via: ByAgent, NumIDK: a, NumSnim: a2},
		InspectionStep{At: at(0, 45), Kind: "decision", Via: ByAgent, NumIDK: a, NumSnim: a2},
		InspectionStep{At: at(0, 50), Kind: "docs_returned", Via: ByAPI, NumIDK: a, NumSnim: a2, Refused: true},
		InspectionStep{At: at(0, 50), Kind: "docs_returned", Via: ByAPI, NumIDK: a, NumSnim: a2,
			Reason: "журнал поста введён после восстановления связи"},
	)
	// b1: no controller, so the scan marks the arrival; 22д from the post
	// 15½ minutes later: TIME_2 0,16. Durations here keep half a minute
	// from a minute boundary, since the agent's times carry the measured
	// clock offset, off by a millisecond or so.
	add(InspectionStep{At: at(2, 10), Kind: "scan", Via: ByAgent, NumIDK: b, NumSnim: b1},
		InspectionStep{At: at(2, 14), Kind: "decision", Via: ByAgent, NumIDK: b, NumSnim: b1},
		InspectionStep{At: at(2, 25) + 30*time.Second, Kind: "docs_returned", Via: ByPost, NumIDK: b, NumSnim: b1},
	)
	d.Rows = append(d.Rows, PlantedRow{NumIDK: b, NumSnim: b1, Deadline: at(2, 25), TIME_2: "0,16"})
	// a3: 22д at 12 minutes, entered only after the day, when the row
	// was already published: the correction withdraws it.
	add(InspectionStep{At: at(2, 30), Kind: "arrival", Via: ByAgent, NumIDK: a},
		InspectionStep{At: at(2, 31), Kind: "scan", Via: ByAgent, NumIDK: a, NumSnim: a3},
		InspectionStep{At: at(2, 35), Kind: "decision", Via: ByAgent, NumIDK: a, NumSnim: a3},
		InspectionStep{At: at(2, 42), Kind: "docs_returned", Via: ByAPI, NumIDK: a, NumSnim: a3, Late: true},
	)
	d.Corrected = append(d.Corrected, a3)
	// b2: a test scan by the service organisation, never handed back:
	// declared ТЕСТ, it has no clock. No row.
	add(InspectionStep{At: at(3, 0), Kind: "scan", Via: ByAgent, NumIDK: b, NumSnim: b2},
		InspectionStep{At: at(3, 5), Kind: "scan", Via: ByAPI, NumIDK: b, NumSnim: b2, VerScan: 5},
	)
	// a4: «Объект под подозрением», the act handed over 30½ minutes after
	// the decision: TIME_3 0,31.
	add(InspectionStep{At: at(4, 0), Kind: "arrival", Via: ByAgent, NumIDK: a},
		InspectionStep{At: at(4, 1), Kind: "scan", Via: ByAgent, NumIDK: a, NumSnim: a4},
		InspectionStep{At: at(4, 4), Kind: "decision", Via: ByAgent, NumIDK: a, NumSnim: a4, Suspected: true},
		InspectionStep{At: at(4, 8), Kind: "docs_returned", Via: ByAPI, NumIDK: a, NumSnim: a4},
		InspectionStep{At: at(4, 34) + 30*time.Second, Kind: "act_handed", Via: ByAPI, NumIDK: a, NumSnim: a4},
	)
	d.Rows = append(d.Rows, PlantedRow{NumIDK: a, NumSnim: a4, Deadline: at(4, 34), TIME_3: "0,31"})
	// b3: risk detected, the later of 20в and 20г at 17 minutes: TIME_1
	// 0,17. The scan (its own arrival) joins the risk's case; 22д at 10
	// minutes.
	add(InspectionStep{At: at(5, 0), Kind: "risk_detected", Via: ByAPI, NumIDK: b, Docs: []string{doc}},
		InspectionStep{At: at(5, 10), Kind: "docs_handed", Via: ByAPI, NumIDK: b, Docs: []string{doc}},
		InspectionStep{At: at(5, 17), Kind: "carrier_informed", Via: ByAPI, NumIDK: b, Docs: []string{doc}},
		InspectionStep{At: at(5, 30), Kind: "scan", Via: ByAgent, NumIDK: b, NumSnim: b3},
		InspectionStep{At: at(5, 33), Kind: "decision", Via: ByAgent, NumIDK: b, NumSnim: b3, Docs: []string{doc}},
		InspectionStep{At: at(5, 40), Kind: "docs_returned", Via: ByAPI, NumIDK: b, NumSnim: b3},
	)
	d.Rows = append(d.Rows, PlantedRow{NumIDK: b, NumSnim: b3, Deadline: at(5, 15), TIME_1: "0,17"})
	return d
}
