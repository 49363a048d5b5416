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
)

// InspectionStep is one event of a planted inspection.
type InspectionStep struct {
	At        time.Duration // from the scenario's start, on the collector's clock
	Kind      string        // arrival, scan, decision, risk_detected, docs_handed, carrier_informed, docs_returned, act_handed
	Via       string        // ByAgent or ByAPI
	NumSnim   string
	Docs      []string
	Suspected bool
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
