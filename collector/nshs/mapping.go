package nshs

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"idk/collector/availability"
	"idk/collector/ingest"
	"idk/protocol/idkpb"
)

// Rule is the category and cause an НШС gets by default. Category is the
// category of an outage that is not restored quickly: Classify lowers it
// to IV for a short one and sets V for a failure at an external
// operator.
type Rule struct {
	Category Category `json:"category"`
	Cause    Cause    `json:"cause"`
}

// Valid reports whether r has a valid category and cause.
func (r Rule) Valid() bool { return r.Category.Valid() && r.Cause.Valid() }

// localWithin is, per category, how soon an outage must be restored to be
// a local one (appendix 2, category IV): 30 minutes for regulated-procedure
// systems (category I when down), 60 for the main standard-procedure ones
// (II). Category III mixes auxiliary (100), reference (90) and document
// flow (60) systems; it takes the shortest, so that no outage is lowered
// that the regulation would not lower.
var localWithin = map[Category]time.Duration{
	CategoryI:   30 * time.Minute,
	CategoryII:  60 * time.Minute,
	CategoryIII: 60 * time.Minute,
}

// Classify is the category of an НШС under r that began at start and was
// restored at end (zero while it goes on): V for a failure at the
// operator of an external state system, whatever the rule's category (the
// regulation puts those in V at every level); IV once restored within the
// time appendix 2 gives the rule's category; else the rule's category.
// While an НШС is open it has the rule's category: it is not known yet
// to be short.
func (r Rule) Classify(start, end time.Time) Category {
	if r.Cause == CauseExternalOperator {
		return CategoryV
	}
	if d, ok := localWithin[r.Category]; ok && !end.IsZero() && end.Sub(start) <= d {
		return CategoryIV
	}
	return r.Category
}

// The defaults of the two other sources. A link down means no
// information exchange between the post and the customs office's
// computing complex (category I), through the telecom operator's channel
// (external, 4.1 1) б). The collector down is a fault of the customs
// body's own ICT means (internal, 4.1 2) а)) that stops the same exchange.
var (
	LinkRule      = Rule{Category: CategoryI, Cause: CauseExternalChannel}
	CollectorRule = Rule{Category: CategoryI, Cause: CauseInternalICT}
)

// DefaultRule is the default rule for an ИДК inoperable for availability
// cause c. An ИДК is a means of a regulated procedure (customs inspection)
// at the post, so an ИДК down is category I (appendix 2). Weather is a
// natural disaster (external, 4.1 1) г)); the diesel generator is an
// engineering system (internal, 4.1 2) б)); every other cause, and none
// given, is a fault of the ИДК itself, an ICT means of the customs body
// (internal, 4.1 2) а)).
func DefaultRule(c idkpb.InoperableCause) Rule {
	switch c {
	case idkpb.InoperableCause_INOPERABLE_CAUSE_WEATHER:
		return Rule{Category: CategoryI, Cause: CauseExternalDisaster}
	case idkpb.InoperableCause_INOPERABLE_CAUSE_GENERATOR:
		return Rule{Category: CategoryI, Cause: CauseInternalEngineer}
	}
	return Rule{Category: CategoryI, Cause: CauseInternalICT}
}

// ruleFor is the default rule of a source other than an ИДК.
func ruleFor(s Source) Rule {
	if s == SourceLink {
		return LinkRule
	}
	return CollectorRule
}

// AvailabilityCauses are the availability causes the mapping covers, in
// code order: none given (0) and the TIME_NEPAB list (1-8).
var AvailabilityCauses = func() []idkpb.InoperableCause {
	var out []idkpb.InoperableCause
	for c := range idkpb.InoperableCause_name {
		out = append(out, idkpb.InoperableCause(c))
	}
	slices.Sort(out)
	return out
}()

// Mapping is the rule per availability cause in force: the defaults, with
// the ICT specialist's changes.
type Mapping map[idkpb.InoperableCause]Rule

// Rule is the rule for availability cause c. A cause newer than this
// program is the list's catch-all, OTHER, as availability.CauseName names
// it.
func (m Mapping) Rule(c idkpb.InoperableCause) Rule {
	if _, known := idkpb.InoperableCause_name[int32(c)]; !known {
		c = idkpb.InoperableCause_INOPERABLE_CAUSE_OTHER
	}
	if r, ok := m[c]; ok {
		return r
	}
	return DefaultRule(c)
}

// MappingChange is one change of the mapping, as the audit list keeps it.
type MappingChange struct {
	Seq       uint64                `json:"seq"` // 1, 2, ... in the order of the changes
	Cause     idkpb.InoperableCause `json:"cause"`
	CauseName string                `json:"cause_name"`
	Old       Rule                  `json:"old"`
	New       Rule                  `json:"new"`
	By        string                `json:"by"`
	At        time.Time             `json:"at"`
}

// The mapping's bucket. The rules in force are kept beside the log, so
// that reading the mapping does not replay its history; both are written
// in one transaction.
//
//	nshs.mapping  "rule/" cause (4 bytes) → Rule (JSON)
//	              "log/" seq (8 bytes)     → MappingChange (JSON)
const bucketMapping = "nshs.mapping"

var (
	rulePrefix = []byte("rule/")
	logPrefix  = []byte("log/")
)

func ruleKey(c idkpb.InoperableCause) []byte {
	return binary.BigEndian.AppendUint32([]byte("rule/"), uint32(c))
}

// loadMapping reads the rules in force.
func loadMapping(tx ingest.Tx) (Mapping, error) {
	m := Mapping{}
	err := tx.Scan(bucketMapping, rulePrefix, ingest.PrefixEnd(rulePrefix), false, func(k, v []byte) error {
		if len(k) != len(rulePrefix)+4 {
			return fmt.Errorf("mapping key %x: want rule/ and 4 bytes", k)
		}
		var r Rule
		if err := json.Unmarshal(v, &r); err != nil {
			return fmt.Errorf("mapping %x: %w", k, err)
		}
		m[idkpb.InoperableCause(binary.BigEndian.Uint32(k[len(rulePrefix):]))] = r
		return nil
	})
	return m, err
}

// Mapping returns the rules in force for every availability cause and
// the changes made to them, oldest first.
func (b *Book) Mapping() (Mapping, []MappingChange, error) {
	var m Mapping
	var log []MappingChange
	err := b.db.View(func(tx ingest.Tx) error {
		var err error
		if m, err = loadMapping(tx); err != nil {
			return err
		}
		return tx.Scan(bucketMapping, logPrefix, ingest.PrefixEnd(logPrefix), false, func(k, v []byte) error {
			var c MappingChange
			if err := json.Unmarshal(v, &c); err != nil {
				return fmt.Errorf("mapping change %x: %w", k, err)
			}
			c.At = c.At.In(b.loc)
			log = append(log, c)
			return nil
		})
	})
	if err != nil {
		return nil, nil, fmt.Errorf("nshs: read the mapping: %w", err)
	}
	full := make(Mapping, len(AvailabilityCauses))
	for _, c := range AvailabilityCauses {
		full[c] = m.Rule(c)
	}
	return full, log, nil
}

// SetRule makes r the rule for availability cause c from now on, as by
// asked, and logs the change with the rule it replaces. A rule equal to
// the one in force changes nothing and logs nothing: the change returned
// then has Seq 0. It changes the default of every ИДК НШС of that cause,
// past ones too, since those are derived when read; corrections of one
// НШС stand.
func (b *Book) SetRule(c idkpb.InoperableCause, r Rule, by string) (MappingChange, error) {
	if _, known := idkpb.InoperableCause_name[int32(c)]; !known {
		return MappingChange{}, refuse("cause", "nshs: availability cause %d is not one of 0-8", c)
	}
	if !r.Category.Valid() {
		return MappingChange{}, refuse("category", "nshs: category %d: want I to V (1 to 5)", r.Category)
	}
	if !r.Cause.Valid() {
		return MappingChange{}, refuse("nshs_cause", "nshs: cause %q: want one of %s", r.Cause, causeList())
	}
	by, err := checkBy(by)
	if err != nil {
		return MappingChange{}, err
	}
	ch := MappingChange{Cause: c, CauseName: availability.CauseName(c), New: r, By: by, At: b.clock.Now()}
	err = b.db.Update(func(tx ingest.Tx) error {
		m, err := loadMapping(tx)
		if err != nil {
			return err
		}
		if ch.Old = m.Rule(c); ch.Old == r {
			return nil
		}
		// The next number follows the last change logged.
		err = tx.Scan(bucketMapping, logPrefix, ingest.PrefixEnd(logPrefix), true, func(k, _ []byte) error {
			if len(k) == len(logPrefix)+8 {
				ch.Seq = binary.BigEndian.Uint64(k[len(logPrefix):])
			}
			return errStop
		})
		if err != nil && !errors.Is(err, errStop) {
			return err
		}
		ch.Seq++
		rv, err := json.Marshal(r)
		if err != nil {
			return err
		}
		cv, err := json.Marshal(ch)
		if err != nil {
			return err
		}
		if err := tx.Put(bucketMapping, ruleKey(c), rv); err != nil {
			return err
		}
		return tx.Put(bucketMapping, binary.BigEndian.AppendUint64([]byte("log/"), ch.Seq), cv)
	})
	if err != nil {
		return MappingChange{}, fmt.Errorf("nshs: set the rule of %s: %w", availability.CauseName(c), err)
	}
	ch.At = ch.At.In(b.loc)
	return ch, nil
}

var errStop = errors.New("stop")

// ErrRefused matches (errors.Is) every error that refuses a request as it
// was given, for the caller to fix (an HTTP handler: 400); it is a
// *FieldError naming the field. Other errors are failures of the index.
var ErrRefused = errors.New("refused")

// FieldError refuses the value of one field of a request.
type FieldError struct {
	Field string // as the HTTP API names it
	Err   error
}

func (e *FieldError) Error() string        { return e.Err.Error() }
func (e *FieldError) Unwrap() error        { return e.Err }
func (e *FieldError) Is(target error) bool { return target == ErrRefused }

func refuse(field, format string, args ...any) error {
	return &FieldError{Field: field, Err: fmt.Errorf(format, args...)}
}

// checkBy checks who makes a change: the API's users share its token, so
// the name given is the only record of who did it.
func checkBy(by string) (string, error) {
	by = strings.TrimSpace(by)
	if by == "" {
		return "", refuse("by", `nshs: "by" is required: who makes the change`)
	}
	if len([]rune(by)) > 200 || strings.IndexFunc(by, func(r rune) bool { return r < ' ' }) >= 0 {
		return "", refuse("by", `nshs: "by" %q: want a name of at most 200 characters on one line`, by)
	}
	return by, nil
}

func causeList() string {
	var s []string
	for _, c := range allCauses {
		s = append(s, string(c))
	}
	return strings.Join(s, ", ")
}

// allCauses are the causes of 4.1 in the regulation's order.
var allCauses = []Cause{
	CauseExternalPower, CauseExternalChannel, CauseExternalOperator, CauseExternalDisaster,
	CauseInternalICT, CauseInternalEngineer, CauseInternalUser, CauseInternalAccident, CauseInternalPlanned,
}
