package availability

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// The reporting steps of an incident, with the deadlines of the ICT
// incident rules (FTS order N 1129): the request (заявка) filed within 5
// minutes of the НШС and the head of the unit informed within 7 (5.3); a
// category I НШС reported to the customs office's ИТС/ИТП and the ОДС
// duty shift within 10 (appendix 5, 1.1).
const (
	StepRequest = "request"
	StepHead    = "head"
	StepITSODS  = "its_ods"
)

// ReportStep is one reporting step and how long after the incident's
// start it is due.
type ReportStep struct {
	Name     string
	Deadline time.Duration
}

// ReportSteps are the reporting steps of every incident, in the order
// they fall due.
//
// Every ИДК incident is treated as category I for its_ods: an ИДК is a
// means of a regulated procedure at the post, and such a system down at
// the post is category I (appendix 2). This is the default until
// incidents get categories of their own; then its_ods applies to the
// category I ones only.
var ReportSteps = []ReportStep{
	{StepRequest, 5 * time.Minute},
	{StepHead, 7 * time.Minute},
	{StepITSODS, 10 * time.Minute},
}

// ErrUnknownStep is returned (wrapped) by Report for a step not in
// ReportSteps.
var ErrUnknownStep = errors.New("unknown reporting step")

// StepReport records that a reporting step of an incident was done: who
// did it and when.
type StepReport struct {
	NumIDK string    `json:"num_idk"`
	ID     string    `json:"id"`
	Step   string    `json:"step"`
	By     string    `json:"by"`
	At     time.Time `json:"at"`
}

type stepKey struct{ numIDK, id, step string }

func stepNames() string {
	names := make([]string, len(ReportSteps))
	for i, s := range ReportSteps {
		names[i] = s.Name
	}
	return strings.Join(names, ", ")
}

func knownStep(step string) bool {
	return slices.ContainsFunc(ReportSteps, func(s ReportStep) bool { return s.Name == step })
}

// stepsJSON writes an incident's steps for the HTTP API: every step by
// name, with when it is due and, once reported, who reported it and when.
func stepsJSON(i Incident) map[string]any {
	type step struct {
		Due      time.Time  `json:"due"`
		Reported bool       `json:"reported"`
		By       string     `json:"by,omitempty"`
		At       *time.Time `json:"at"`
	}
	out := make(map[string]any, len(ReportSteps))
	for _, s := range ReportSteps {
		r, ok := i.Reports[s.Name]
		out[s.Name] = step{Due: i.Start.Add(s.Deadline), Reported: ok, By: r.By, At: timePtr(r.At)}
	}
	return out
}

// Report records that by did reporting step of incident id of ИДК numIDK.
// It is saved in the AckStore, if there is one, before it shows. A step
// reported again changes nothing: the first report stands, and Report
// returns it with recorded false. An unknown step is an error wrapping
// ErrUnknownStep, an unknown incident one wrapping ErrUnknownIncident.
func (t *Tracker) Report(numIDK, id, step, by string) (r StepReport, recorded bool, err error) {
	by = strings.TrimSpace(by)
	if !knownStep(step) {
		return StepReport{}, false, fmt.Errorf("step %q of incident %q: %w (want %s)", step, id, ErrUnknownStep, stepNames())
	}
	if by == "" {
		return StepReport{}, false, fmt.Errorf("step %s of incident %q of ИДК %q: who reported it is not given", step, id, numIDK)
	}
	k := stepKey{numIDK, id, step}
	t.mu.Lock()
	found := slices.ContainsFunc(t.incidentsLocked(numIDK, t.clock.Now()), func(i Incident) bool { return i.ID == id })
	prev, done := t.steps[k]
	store := t.store
	t.mu.Unlock()
	if !found {
		return StepReport{}, false, fmt.Errorf("step %s of incident %q of ИДК %q: %w", step, id, numIDK, ErrUnknownIncident)
	}
	if done {
		return prev, false, nil
	}
	r = StepReport{NumIDK: numIDK, ID: id, Step: step, By: by, At: t.clock.Now()}
	// Saved outside the lock: a synced write must not stall Apply and the
	// metrics scrape.
	if store != nil {
		if err := store.SaveStep(numIDK, id, step, by, r.At); err != nil {
			return StepReport{}, false, fmt.Errorf("step %s of incident %q of ИДК %q: save: %w", step, id, numIDK, err)
		}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if prev, ok := t.steps[k]; ok {
		return prev, false, nil // reported by someone else meanwhile
	}
	t.steps[k] = r
	return r, true, nil
}

// oldestUnreported is, for each reporting step, the age of the oldest
// open incident in incs that lacks it; a step every open incident has is
// missing from the map.
func oldestUnreported(incs []Incident, now time.Time) map[string]time.Duration {
	out := map[string]time.Duration{}
	for _, inc := range incs {
		if !inc.Open() {
			continue
		}
		for _, s := range ReportSteps {
			if _, ok := inc.Reports[s.Name]; ok {
				continue
			}
			if age, seen := out[s.Name]; !seen || now.Sub(inc.Start) > age {
				out[s.Name] = now.Sub(inc.Start)
			}
		}
	}
	return out
}
