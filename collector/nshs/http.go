package nshs

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"idk/collector/auth"
	"idk/collector/availability"
	"idk/internal/httpjson"
	"idk/protocol/idkpb"
)

// maxBody bounds a request body: a correction is a form's cell or two.
const maxBody = 64 << 10

// maxDays bounds the period of one list: a year of НШС, not the history.
const maxDays = 366

// Handler serves the book as JSON. The collector puts it behind its API
// token, mounted at /api/v1/nshs and /api/v1/nshs/ (the form has its own
// handler at /api/v1/nshs/form).
//
//	GET  /api/v1/nshs?from=YYYY-MM-DD&to=YYYY-MM-DD
//	     the НШС overlapping the days from to to, both included, in the
//	     book's location; to defaults to from, from to today
//	GET  /api/v1/nshs/{id}
//	     one НШС with its corrections
//	GET  /api/v1/nshs/mapping
//	     the default rule per availability cause in force, those of the
//	     link and the collector, and the history of changes
//	PUT  /api/v1/nshs/mapping   {"cause": 7 or "SOFTWARE", "category": "III" or 3, "nshs_cause": "internal.ict", "by": "..."}
//	     changes the rule of one availability cause; category or
//	     nshs_cause left out keeps the one in force
//	POST /api/v1/nshs/{id}/correct   {"category", "cause", "works", "informed", "by", "reason"}
//	     corrects one НШС: the fields given replace its own
//
// A bad request is answered 400 with a message that begins with the name
// of the parameter or field at fault; an unknown НШС 404.
func (b *Book) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/nshs", b.serveList)
	mux.HandleFunc("GET /api/v1/nshs/mapping", b.serveMapping)
	mux.HandleFunc("PUT /api/v1/nshs/mapping", b.servePutMapping)
	mux.HandleFunc("GET /api/v1/nshs/{id}", b.serveOne)
	mux.HandleFunc("POST /api/v1/nshs/{id}/correct", b.serveCorrect)
	return mux
}

// item is an НШС as the API lists it: with the names and the duration a
// reader would otherwise look up or compute.
type item struct {
	NSHS
	CategoryNumeral string `json:"category_numeral"` // "I" to "V"
	CategoryName    string `json:"category_name"`
	CauseName       string `json:"cause_name"`
	Closed          bool   `json:"closed"`
	DurationSeconds int64  `json:"duration_seconds"` // to now while open
	Duration        string `json:"duration"`         // "H,MM"
}

func itemOf(n NSHS, now time.Time) item {
	d := n.Duration(now)
	return item{
		NSHS:            n,
		CategoryNumeral: n.Category.String(),
		CategoryName:    n.Category.Name(),
		CauseName:       n.Cause.Name(),
		Closed:          n.Closed(),
		DurationSeconds: int64(d.Round(time.Second) / time.Second),
		Duration:        availability.FormatHM(d),
	}
}

func (b *Book) serveList(w http.ResponseWriter, r *http.Request) {
	q, ok := httpjson.Query(w, r, "from", "to")
	if !ok {
		return
	}
	now := b.clock.Now().In(b.loc)
	from := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, b.loc)
	if s := q.Get("from"); s != "" {
		d, err := time.ParseInLocation("2006-01-02", s, b.loc)
		if err != nil {
			http.Error(w, fmt.Sprintf("from: %q: want YYYY-MM-DD", s), http.StatusBadRequest)
			return
		}
		from = d
	}
	last := from
	if s := q.Get("to"); s != "" {
		d, err := time.ParseInLocation("2006-01-02", s, b.loc)
		if err != nil {
			http.Error(w, fmt.Sprintf("to: %q: want YYYY-MM-DD", s), http.StatusBadRequest)
			return
		}
		last = d
	}
	// to is the last day listed: the period ends at the next midnight.
	// AddDate keeps to midnight across a change of the zone's offset.
	to := last.AddDate(0, 0, 1)
	switch {
	case to.Before(from) || to.Equal(from):
		http.Error(w, fmt.Sprintf("to: %s is before from %s", last.Format("2006-01-02"), from.Format("2006-01-02")), http.StatusBadRequest)
		return
	case to.After(from.AddDate(0, 0, maxDays)):
		http.Error(w, fmt.Sprintf("to: the period from %s to %s is longer than %d days", from.Format("2006-01-02"), last.Format("2006-01-02"), maxDays), http.StatusBadRequest)
		return
	}
	ns, err := b.Between(from, to)
	if err != nil {
		writeError(w, err)
		return
	}
	out := make([]item, len(ns))
	for i, n := range ns {
		out[i] = itemOf(n, now)
	}
	httpjson.Write(w, out)
}

func (b *Book) serveOne(w http.ResponseWriter, r *http.Request) {
	if _, ok := httpjson.Query(w, r); !ok {
		return
	}
	id := r.PathValue("id")
	n, err := b.Find(id)
	if err != nil {
		writeError(w, err)
		return
	}
	cs, err := b.Corrections(id)
	if err != nil {
		writeError(w, err)
		return
	}
	if cs == nil {
		cs = []Correction{}
	}
	httpjson.Write(w, struct {
		NSHS        item         `json:"nshs"`
		Corrections []Correction `json:"corrections"`
	}{itemOf(n, b.clock.Now()), cs})
}

// ruleView is a rule as the API shows it: with names.
type ruleView struct {
	Cause           int32  `json:"cause,omitempty"`      // the availability cause, in rules only
	CauseKey        string `json:"cause_key,omitempty"`  // its enum name: "SOFTWARE"
	CauseName       string `json:"cause_name,omitempty"` // its Russian name
	Category        int    `json:"category"`
	CategoryNumeral string `json:"category_numeral"`
	NSHSCause       Cause  `json:"nshs_cause"`
	NSHSCauseName   string `json:"nshs_cause_name"`
	Default         bool   `json:"default"` // the rule is the program's default
}

func viewRule(r, def Rule) ruleView {
	return ruleView{Category: int(r.Category), CategoryNumeral: r.Category.String(), NSHSCause: r.Cause, NSHSCauseName: r.Cause.Name(), Default: r == def}
}

func viewCauseRule(c idkpb.InoperableCause, r Rule) ruleView {
	v := viewRule(r, DefaultRule(c))
	v.Cause, v.CauseKey, v.CauseName = int32(c), causeKey(c), availability.CauseName(c)
	return v
}

// causeKey is the short enum name of c: "SOFTWARE", "UNSPECIFIED".
func causeKey(c idkpb.InoperableCause) string {
	return strings.TrimPrefix(c.String(), "INOPERABLE_CAUSE_")
}

func (b *Book) serveMapping(w http.ResponseWriter, r *http.Request) {
	if _, ok := httpjson.Query(w, r); !ok {
		return
	}
	m, history, err := b.Mapping()
	if err != nil {
		writeError(w, err)
		return
	}
	rules := make([]ruleView, 0, len(AvailabilityCauses))
	for _, c := range AvailabilityCauses {
		rules = append(rules, viewCauseRule(c, m[c]))
	}
	if history == nil {
		history = []MappingChange{}
	}
	httpjson.Write(w, struct {
		Rules     []ruleView      `json:"rules"`
		Link      ruleView        `json:"link"`
		Collector ruleView        `json:"collector"`
		History   []MappingChange `json:"history"`
	}{rules, viewRule(LinkRule, LinkRule), viewRule(CollectorRule, CollectorRule), history})
}

// mappingRequest is the body of PUT /api/v1/nshs/mapping.
type mappingRequest struct {
	Cause     json.RawMessage `json:"cause"`
	Category  json.RawMessage `json:"category"`
	NSHSCause string          `json:"nshs_cause"`
	By        string          `json:"by"`
}

func (b *Book) servePutMapping(w http.ResponseWriter, r *http.Request) {
	var req mappingRequest
	if !httpjson.Decode(w, r, &req, maxBody, `{"cause", "category", "nshs_cause", "by"}`) {
		return
	}
	req.By = auth.By(r, req.By)
	c, err := parseAvailabilityCause(req.Cause)
	if err != nil {
		badField(w, "cause", err)
		return
	}
	m, _, err := b.Mapping()
	if err != nil {
		writeError(w, err)
		return
	}
	rule := m.Rule(c)
	if len(req.Category) == 0 && req.NSHSCause == "" {
		badField(w, "category", errors.New("give category, nshs_cause or both"))
		return
	}
	if len(req.Category) > 0 {
		if rule.Category, err = parseCategory(req.Category); err != nil {
			badField(w, "category", err)
			return
		}
	}
	if req.NSHSCause != "" {
		rule.Cause = Cause(strings.TrimSpace(req.NSHSCause))
	}
	// Two changes at once may both read the rule in force; SetRule logs
	// what each replaced, so the audit list stays true.
	ch, err := b.SetRule(c, rule, req.By)
	if err != nil {
		writeError(w, err)
		return
	}
	httpjson.Write(w, struct {
		Changed bool          `json:"changed"` // false: the rule was in force already
		Rule    ruleView      `json:"rule"`
		Change  MappingChange `json:"change"`
	}{ch.Seq != 0, viewCauseRule(c, rule), ch})
}

// correctRequest is the body of POST /api/v1/nshs/{id}/correct.
type correctRequest struct {
	Category json.RawMessage `json:"category"`
	Cause    string          `json:"cause"`
	Works    *string         `json:"works"`
	Informed json.RawMessage `json:"informed"`
	By       string          `json:"by"`
	Reason   string          `json:"reason"`
}

func (b *Book) serveCorrect(w http.ResponseWriter, r *http.Request) {
	var req correctRequest
	if !httpjson.Decode(w, r, &req, maxBody, `{"category", "cause", "works", "informed", "by", "reason"}`) {
		return
	}
	req.By = auth.By(r, req.By)
	c := Correction{Cause: Cause(strings.TrimSpace(req.Cause)), Works: req.Works, By: req.By, Reason: req.Reason}
	var err error
	if len(req.Category) > 0 && string(req.Category) != "null" {
		if c.Category, err = parseCategory(req.Category); err != nil {
			badField(w, "category", err)
			return
		}
	}
	if len(req.Informed) > 0 && string(req.Informed) != "null" {
		inf, err := parseInformed(req.Informed)
		if err != nil {
			badField(w, "informed", err)
			return
		}
		c.Informed = &inf
	}
	n, err := b.Correct(r.PathValue("id"), c)
	if err != nil {
		writeError(w, err)
		return
	}
	httpjson.Write(w, itemOf(n, b.clock.Now()))
}

// parseCategory reads a category given as "I" to "V" (either case) or as
// 1 to 5, a number or a string.
func parseCategory(raw json.RawMessage) (Category, error) {
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		var n int
		if err := json.Unmarshal(raw, &n); err != nil {
			return 0, fmt.Errorf(`%s: want "I" to "V" or 1 to 5`, raw)
		}
		s = strconv.Itoa(n)
	}
	s = strings.ToUpper(strings.TrimSpace(s))
	for c := CategoryI; c <= CategoryV; c++ {
		if s == c.String() || s == strconv.Itoa(int(c)) {
			return c, nil
		}
	}
	return 0, fmt.Errorf(`%q: want "I" to "V" or 1 to 5`, s)
}

// parseAvailabilityCause reads an availability cause given as its code
// (0 to 8, a number or a string), its enum name with or without the
// INOPERABLE_CAUSE_ prefix ("SOFTWARE"), or its Russian name.
func parseAvailabilityCause(raw json.RawMessage) (idkpb.InoperableCause, error) {
	const want = "want a code 0 to 8, a name such as SOFTWARE, or the cause's Russian name"
	if len(raw) == 0 {
		return 0, errors.New("missing: " + want)
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		var n int
		if err := json.Unmarshal(raw, &n); err != nil {
			return 0, fmt.Errorf("%s: %s", raw, want)
		}
		s = strconv.Itoa(n)
	}
	s = strings.TrimSpace(s)
	for _, c := range AvailabilityCauses {
		if s == strconv.Itoa(int(c)) || strings.EqualFold(s, causeKey(c)) || strings.EqualFold(s, c.String()) ||
			(c != 0 && strings.EqualFold(s, availability.CauseName(c))) {
			return c, nil
		}
	}
	return 0, fmt.Errorf("%q: %s", s, want)
}

// parseInformed reads who was informed: a list of lines, or one text
// with a line each.
func parseInformed(raw json.RawMessage) ([]string, error) {
	var list []string
	if err := json.Unmarshal(raw, &list); err == nil {
		return list, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, errors.New("want a list of strings or one string with a line each")
	}
	list = []string{}
	for l := range strings.SplitSeq(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			list = append(list, l)
		}
	}
	return list, nil
}

func badField(w http.ResponseWriter, field string, err error) {
	http.Error(w, field+": "+err.Error(), http.StatusBadRequest)
}

// writeError answers err: 400 naming the field for a refusal, 404 for an
// unknown НШС, else 500.
func writeError(w http.ResponseWriter, err error) {
	var fe *FieldError
	switch {
	case errors.As(err, &fe):
		http.Error(w, fe.Field+": "+strings.TrimPrefix(fe.Err.Error(), "nshs: "), http.StatusBadRequest)
	case errors.Is(err, ErrNoNSHS):
		http.Error(w, err.Error(), http.StatusNotFound)
	default:
		http.Error(w, err.Error(), http.StatusInternalServerError)
	}
}
