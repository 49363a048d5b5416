// Package auth says who is asking the collector's HTTP side and what they
// may do: the accounts of real people (shift leads, heads of post, РТУ
// analysts, administrators) and of other systems, their roles and the
// customs posts each may see, sign-in with a password, sessions in
// cookies, CSRF tokens for the console's forms, per-person API tokens and
// an audit log of every change.
//
// The person is put into the request's context by the gate (Gate.API,
// Gate.Console); handlers ask FromContext or By, never the request body.
package auth

import (
	"context"
	"net/http"
	"slices"
)

// Role is what a person does at customs, and so what the collector lets
// them do.
type Role string

const (
	// ShiftLead is the senior of the shift at a scanner (item 4): sees the
	// ИДК of their post, reports inspection events, gives a breach's cause
	// and acknowledges incidents.
	ShiftLead Role = "shift_lead"
	// HeadOfPost is the head of a customs post or a deputy (item 36): all
	// a shift lead may do for their post, plus the deputy's decision on a
	// breach, corrections of past events, the officers' entries (tables 2,
	// 5, 6 and counts) and publishing a report again.
	HeadOfPost Role = "head_of_post"
	// Analyst works at the РТУ or its ИДК coordination unit (items 33,
	// 37): sees the whole region, records re-analysis, changes nothing
	// else.
	Analyst Role = "analyst"
	// Admin keeps the accounts and the roster; sees the whole region.
	Admin Role = "admin"
	// System is another program (document control, a gateway), signing
	// in with an API token only: reports inspection events region-wide.
	System Role = "system"
)

// Roles lists every role, in the order the console shows them.
var Roles = []Role{ShiftLead, HeadOfPost, Analyst, Admin, System}

// Valid reports whether r is one of Roles.
func (r Role) Valid() bool { return slices.Contains(Roles, r) }

// Regional reports whether the role sees every post of the region.
func (r Role) Regional() bool { return r == Analyst || r == Admin || r == System }

// Title is the role's name in Russian, for the console.
func (r Role) Title() string {
	switch r {
	case ShiftLead:
		return "Старший смены"
	case HeadOfPost:
		return "Начальник поста"
	case Analyst:
		return "Аналитик РТУ"
	case Admin:
		return "Администратор"
	case System:
		return "Внешняя система"
	}
	return string(r)
}

// Action is one kind of thing a person may do.
type Action string

const (
	View            Action = "view"             // see fleet, inspections, breaches, incidents, reports
	InspectionEvent Action = "inspection_event" // report 20в/20г/22д/24б and the agents' kinds by hand
	BreachCause     Action = "breach_cause"     // give a breach's cause (PRICH_NAR)
	Decision        Action = "decision"         // the deputy head's decision on a breach
	Correction      Action = "correction"       // an event further back than cases.backdate_window
	AckIncident     Action = "ack_incident"     // acknowledge an incident, report its steps
	Entries         Action = "entries"          // officers' rows of tables 2, 5, 6 and the post's counts
	Publish         Action = "publish"          // publish a report again, now
	Reanalysis      Action = "reanalysis"       // record a re-analysis (items 8-11)
	NSHS            Action = "nshs"             // classify and correct ICT incidents (НШС)
	ManageAccounts  Action = "accounts"         // add, change and disable accounts; the roster
)

var permissions = map[Role][]Action{
	ShiftLead:  {View, InspectionEvent, BreachCause, AckIncident},
	HeadOfPost: {View, InspectionEvent, BreachCause, Decision, Correction, AckIncident, Entries, Publish, NSHS},
	Analyst:    {View, Reanalysis},
	Admin:      {View, ManageAccounts, Publish, NSHS},
	System:     {View, InspectionEvent},
}

// Person is who signed in: an account as the gate found it.
type Person struct {
	Login string
	Name  string // Ф.И.О., as it goes into "by" and the audit log
	Role  Role
	// Posts are the customs bodies (KOD_TO) a shift lead or a head of
	// post works for; ignored for regional roles.
	Posts []string
	// Devices narrows a shift lead to these ИДК (NUM_IDK) of their posts;
	// empty: every ИДК of their posts.
	Devices []string
	// Shared marks the old shared API token (api.token_file), kept while
	// other systems move to their own tokens: it may do everything, and
	// who did it is what the request says, as before accounts existed.
	Shared bool
}

// By is how the person is recorded as having done something: the name
// and, in brackets, the login, so two namesakes stay apart.
func (p Person) By() string {
	if p.Name == "" {
		return p.Login
	}
	return p.Name + " (" + p.Login + ")"
}

// May reports whether the person's role allows a.
func (p Person) May(a Action) bool { return p.Shared || slices.Contains(permissions[p.Role], a) }

// SeesPost reports whether the person may see the post kodTO at all.
func (p Person) SeesPost(kodTO string) bool {
	return p.Shared || p.Role.Regional() || slices.Contains(p.Posts, kodTO)
}

// Sees reports whether the person may see the ИДК numIDK, enrolled at
// the post kodTO (from the collector's registry, never from a request).
func (p Person) Sees(kodTO, numIDK string) bool {
	if p.Shared || p.Role.Regional() {
		return true
	}
	if !slices.Contains(p.Posts, kodTO) {
		return false
	}
	return len(p.Devices) == 0 || slices.Contains(p.Devices, numIDK)
}

type personKey struct{}

// WithPerson returns ctx carrying p.
func WithPerson(ctx context.Context, p Person) context.Context {
	return context.WithValue(ctx, personKey{}, p)
}

// FromContext returns the person the gate put into ctx.
func FromContext(ctx context.Context) (Person, bool) {
	p, ok := ctx.Value(personKey{}).(Person)
	return p, ok
}

// By returns who is doing what r asks: the signed-in person, whatever
// the request says. A request that passed no gate (a handler tested on
// its own) or came with the old shared token falls back to what it says,
// given as fallback, as before accounts existed.
func By(r *http.Request, fallback string) string {
	if p, ok := FromContext(r.Context()); ok && !p.Shared {
		return p.By()
	}
	return fallback
}
