// Package casereport checks an inspection step that staff at the post
// report on the scanner PC (`idk-agent case`) and records it in the spool
// as a CaseReport event. The spool is the only way such a report takes to
// the collector: it then survives a link outage and an agent restart, and
// it carries the agent's clock, which the collector corrects with the
// offset it measured at the hello.
//
// The agent imports nothing under collector/, so the kinds the collector's
// case engine knows are listed here again (Kinds); docs/cases.md is the
// reference for both.
package casereport

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"idk/agent/spool"
	"idk/protocol"
	"idk/protocol/idkpb"
)

// Kinds are the case engine's event kinds (docs/cases.md), in the order of
// the Instruction's steps.
var Kinds = []string{"risk_detected", "docs_handed", "carrier_informed", "arrival", "scan", "decision", "docs_returned", "act_handed", "risk_withdrawn"}

// endKinds are the kinds the engine refuses when it cannot find their
// case: the post is told at once rather than the collector logging a
// refusal nobody at the post reads.
var endKinds = []string{"docs_handed", "carrier_informed", "docs_returned", "act_handed"}

var (
	// A case ID is the collector's (20240305-000042); only its alphabet
	// is checked, so that a change of its shape needs no new agent.
	caseIDRE = regexp.MustCompile(`^[0-9A-Za-z-]{1,40}$`)
)

// Limits on free text, so one report cannot fill the spool or an event
// batch.
const (
	maxBy      = 100
	maxDoc     = 100
	maxDocs    = 20
	maxNote    = 1000
	dateLayout = "02.01.2006"
)

// RiskProfile identifies the risk profile (ПР) that triggered an
// inspection: the risk section of table 1. Empty fields are unknown.
type RiskProfile struct {
	KodTeh  string `json:"kod_teh,omitempty"`   // KOD_TEH
	VidPr   string `json:"vid_pr,omitempty"`    // VID_PR
	KodToPr string `json:"kod_to_pr,omitempty"` // KOD_TO_PR
	DateReg string `json:"date_reg,omitempty"`  // DATE_REG, DD.MM.YYYY
	NumPr   string `json:"num_pr,omitempty"`    // NUM_PR
	DocType int    `json:"doc_type,omitempty"`  // DOC_TYPE: the kind of document the ПР was identified for (1-10); 0 unknown
}

// Report is one step as the post reports it. It is also the body the
// command sends to the running agent's local listener.
type Report struct {
	Kind      string      `json:"kind"`
	NumSnim   string      `json:"num_snim,omitempty"`
	Docs      []string    `json:"docs,omitempty"`
	CaseID    string      `json:"case_id,omitempty"`
	By        string      `json:"by"`
	Suspected bool        `json:"suspected,omitempty"`
	Risk      RiskProfile `json:"risk,omitzero"`
	Note      string      `json:"note,omitempty"`
}

// Normalise checks r and returns it with its fields trimmed, the kind in
// lower case and NUM_SNIM without spaces. The error names every bad field.
func (r Report) Normalise() (Report, error) {
	r.Kind = strings.ToLower(strings.TrimSpace(r.Kind))
	r.NumSnim = strings.Map(dropSpace, r.NumSnim)
	r.CaseID = strings.TrimSpace(r.CaseID)
	r.By = strings.TrimSpace(r.By)
	r.Note = strings.TrimSpace(r.Note)
	docs := r.Docs[:0:0]
	for _, d := range r.Docs {
		if d = strings.TrimSpace(d); d != "" {
			docs = append(docs, d)
		}
	}
	r.Docs = docs
	p := &r.Risk
	for _, f := range []*string{&p.KodTeh, &p.VidPr, &p.KodToPr, &p.DateReg, &p.NumPr} {
		*f = strings.TrimSpace(*f)
	}

	var errs []error
	bad := func(field, format string, a ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, a...)))
	}
	if !slices.Contains(Kinds, r.Kind) {
		bad("kind", "%q is not one of %s", r.Kind, strings.Join(Kinds, ", "))
	}
	switch {
	case r.By == "":
		bad("by", "empty: say who reported it")
	case !printable(r.By, maxBy):
		bad("by", "want at most %d printable characters", maxBy)
	}
	if r.NumSnim != "" {
		if err := protocol.CheckNumSnim(r.NumSnim); err != nil {
			errs = append(errs, fmt.Errorf("num_snim: %w", err))
		}
	}
	if r.CaseID != "" && !caseIDRE.MatchString(r.CaseID) {
		bad("case_id", "%q: want a case ID such as 20240305-000042", r.CaseID)
	}
	if len(r.Docs) > maxDocs {
		bad("docs", "%d numbers: want at most %d", len(r.Docs), maxDocs)
	}
	for _, d := range r.Docs {
		if !printable(d, maxDoc) {
			bad("docs", "%q: want at most %d printable characters", d, maxDoc)
		}
	}
	if !printable(r.Note, maxNote) {
		bad("note", "want at most %d printable characters", maxNote)
	}
	// The engine places these only by what they name: without it, the
	// collector could only log the refusal.
	switch {
	case r.Kind == "scan" && r.NumSnim == "":
		bad("num_snim", "required for a scan")
	case r.Kind == "decision" && r.NumSnim == "" && r.CaseID == "":
		bad("num_snim", "required for a decision, unless case_id is given")
	case slices.Contains(endKinds, r.Kind) && r.NumSnim == "" && r.CaseID == "" && len(r.Docs) == 0:
		bad("num_snim", "required for %s, unless case_id or docs name the inspection", r.Kind)
	}
	if r.Suspected && r.Kind != "decision" {
		bad("suspected", "set on %s: only a decision carries it", r.Kind)
	}
	if r.Risk != (RiskProfile{}) {
		if r.Kind != "risk_detected" {
			bad("risk", "given with %s: only risk_detected carries a risk profile", r.Kind)
		}
		if err := protocol.CheckRiskProfile(p.proto()); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return r, fmt.Errorf("case report: %w", errors.Join(errs...))
	}
	return r, nil
}

func (p RiskProfile) proto() *idkpb.RiskProfile {
	return &idkpb.RiskProfile{KodTeh: p.KodTeh, VidPr: p.VidPr, KodToPr: p.KodToPr, DateReg: p.DateReg, NumPr: p.NumPr, DocType: uint32(p.DocType)}
}

// Proto is r as the event body. Call it on a normalised report.
func (r Report) Proto() *idkpb.CaseReport {
	m := &idkpb.CaseReport{
		Kind:      r.Kind,
		NumSnim:   r.NumSnim,
		Docs:      r.Docs,
		CaseId:    r.CaseID,
		By:        r.By,
		Suspected: r.Suspected,
		Note:      r.Note,
	}
	if p := r.Risk; p != (RiskProfile{}) {
		m.Risk = r.Risk.proto()
	}
	return m
}

// Record checks r and appends it to sp as a CaseReport event of time at
// (when it was reported, by the agent's clock), in one durable
// transaction: once it returns without error the report reaches the
// collector, whatever happens to the link or the agent. It returns the
// normalised report and the event's sequence number.
func Record(sp *spool.Spool, at time.Time, r Report) (Report, uint64, error) {
	r, err := r.Normalise()
	if err != nil {
		return r, 0, err
	}
	var seq uint64
	err = sp.Update(func(tx *spool.Tx) error {
		var err error
		seq, err = tx.AppendEvent(&idkpb.Event{TimeUnixNano: at.UnixNano(), Body: &idkpb.Event_CaseReport{CaseReport: r.Proto()}})
		return err
	})
	if err != nil {
		return r, 0, fmt.Errorf("case report: record in the spool: %w", err)
	}
	return r, seq, nil
}

func dropSpace(r rune) rune {
	if unicode.IsSpace(r) {
		return -1
	}
	return r
}

// printable reports whether s has at most max runes, all valid UTF-8 and
// none a control character: the text ends up in logs and reports.
func printable(s string, max int) bool {
	if !utf8.ValidString(s) || utf8.RuneCountInString(s) > max {
		return false
	}
	return !strings.ContainsFunc(s, unicode.IsControl)
}
