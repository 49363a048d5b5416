package nshs

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"idk/collector/availability"
	"idk/collector/ingest"
	"idk/internal/clock"
)

// DB is where the НШС live: the collector's index (ingest.Log satisfies
// it), where the availability journal keeps the ИДК state changes they
// are derived from.
type DB interface {
	View(fn func(ingest.Tx) error) error
	Update(fn func(ingest.Tx) error) error
}

// Steps adds to incidents read from the index the reporting steps done
// for them (who filed the request, informed the head, the ИТС and the
// ОДС). The availability Tracker is one: it holds every step ever saved.
type Steps interface {
	Annotate(incs []availability.Incident)
}

// ErrNoNSHS is returned (wrapped) for an НШС ID that names none.
var ErrNoNSHS = errors.New("no such НШС")

// Book is the НШС of the collector: those of the ИДК, derived when read
// from the availability journal, so that they always agree with the
// incidents staff see and report on; those of the links and the collector
// itself, which their sources store with Put; and the ICT specialist's
// corrections of any of them, and of the default mapping, kept versioned
// beside them.
//
// The buckets, besides the mapping's (mapping.go):
//
//	nshs.records       start (8 bytes) ID → NSHS (JSON)
//	nshs.records.id    ID → its nshs.records key
//	nshs.records.open  ID → its nshs.records key, while it has no End
//	nshs.records.meta  "longest" → the longest End-Start stored (8 bytes, ns)
//	nshs.corrections   ID 0x00 version (4 bytes) → Correction (JSON)
//
// A record's key begins with its start, so that the НШС of a period are
// one range scan: from the period's start less the longest НШС ever
// stored (one that began before the period and ended in it), to the
// period's end; the open ones, which may be older still, are few and
// have an index of their own.
//
// Book is safe for concurrent use: the index serialises its writers.
type Book struct {
	db    DB
	loc   *time.Location
	clock clock.Clock
	steps Steps
}

const (
	bucketRecords     = "nshs.records"
	bucketRecordIDs   = "nshs.records.id"
	bucketRecordsOpen = "nshs.records.open"
	bucketRecordsMeta = "nshs.records.meta"
	bucketCorrections = "nshs.corrections"
)

var keyLongest = []byte("longest")

// NewBook returns the book kept in db. loc is the time zone of the
// forms (time.Local if nil); clk (clock.Real if nil) says what is still
// open and stamps every change.
func NewBook(db DB, loc *time.Location, clk clock.Clock) *Book {
	if loc == nil {
		loc = time.Local
	}
	return &Book{db: db, loc: loc, clock: clock.Or(clk)}
}

// UseSteps makes the ИДК НШС list who was informed, from the reporting
// steps s holds. Call it once, before serving; without it they list no
// one.
func (b *Book) UseSteps(s Steps) { b.steps = s }

func recordKey(start time.Time, id string) []byte {
	// The offset keeps times before 1970 in order as unsigned numbers.
	return append(timeKey(start), id...)
}

func timeKey(t time.Time) []byte {
	return binary.BigEndian.AppendUint64(nil, uint64(t.UnixNano())^(1<<63))
}

// Put stores n, an НШС of the link or the collector, in tx, replacing the
// one with its ID if there is one: a source updates its НШС in place as
// it learns more (its end, that monitoring confirmed it, its real start).
// A Category or Cause left zero gets the source's default (LinkRule,
// CollectorRule) when read, with the category for its duration then.
func (b *Book) Put(tx ingest.Tx, n NSHS) error {
	if err := checkRecord(n); err != nil {
		return err
	}
	v, err := json.Marshal(n)
	if err != nil {
		return fmt.Errorf("nshs: encode %s: %w", n.ID, err)
	}
	id, key := []byte(n.ID), recordKey(n.Start, n.ID)
	old, err := tx.Get(bucketRecordIDs, id)
	if err != nil {
		return fmt.Errorf("nshs: put %s: %w", n.ID, err)
	}
	if old != nil && !bytes.Equal(old, key) {
		// Its start moved: the record moves to its new place.
		if err := tx.Delete(bucketRecords, old); err != nil {
			return fmt.Errorf("nshs: put %s: %w", n.ID, err)
		}
	}
	if err := tx.Put(bucketRecords, key, v); err != nil {
		return fmt.Errorf("nshs: put %s: %w", n.ID, err)
	}
	if err := tx.Put(bucketRecordIDs, id, key); err != nil {
		return fmt.Errorf("nshs: put %s: %w", n.ID, err)
	}
	if n.End.IsZero() {
		err = tx.Put(bucketRecordsOpen, id, key)
	} else if err = tx.Delete(bucketRecordsOpen, id); err == nil {
		err = raiseLongest(tx, n.End.Sub(n.Start))
	}
	if err != nil {
		return fmt.Errorf("nshs: put %s: %w", n.ID, err)
	}
	return nil
}

func checkRecord(n NSHS) error {
	switch {
	case n.ID == "" || strings.IndexByte(n.ID, 0) >= 0:
		return refuse("id", "nshs: put: an ID of text without NUL bytes is required")
	case strings.HasPrefix(n.ID, idkPrefix) || n.Source == SourceIDK:
		return refuse("source", "nshs: put %s: the НШС of the ИДК are derived from their states, not stored", n.ID)
	case n.Source != SourceLink && n.Source != SourceCollector:
		return refuse("source", "nshs: put %s: source %q: want %s or %s", n.ID, n.Source, SourceLink, SourceCollector)
	case n.Start.IsZero():
		return refuse("start", "nshs: put %s: no start", n.ID)
	case !n.End.IsZero() && n.End.Before(n.Start):
		return refuse("end", "nshs: put %s: ends at %s, before its start %s", n.ID, n.End.Format(time.RFC3339), n.Start.Format(time.RFC3339))
	case n.Category != 0 && !n.Category.Valid():
		return refuse("category", "nshs: put %s: category %d: want I to V (1 to 5)", n.ID, n.Category)
	case n.Cause != "" && !n.Cause.Valid():
		return refuse("cause", "nshs: put %s: cause %q: want one of %s", n.ID, n.Cause, causeList())
	}
	return nil
}

func raiseLongest(tx ingest.Tx, d time.Duration) error {
	v, err := tx.Get(bucketRecordsMeta, keyLongest)
	if err != nil {
		return err
	}
	if len(v) == 8 && time.Duration(binary.BigEndian.Uint64(v)) >= d {
		return nil
	}
	return tx.Put(bucketRecordsMeta, keyLongest, binary.BigEndian.AppendUint64(nil, uint64(d)))
}

// Get reads the stored НШС id from tx as its source put it: without the
// defaults and corrections Between applies. ok is false when there is
// none.
func (b *Book) Get(tx ingest.Tx, id string) (n NSHS, ok bool, err error) {
	key, err := tx.Get(bucketRecordIDs, []byte(id))
	if err != nil || key == nil {
		return NSHS{}, false, err
	}
	v, err := tx.Get(bucketRecords, key)
	if err != nil {
		return NSHS{}, false, err
	}
	if v == nil {
		return NSHS{}, false, fmt.Errorf("nshs: %s: the ID index names the missing record %x", id, key)
	}
	if err := json.Unmarshal(v, &n); err != nil {
		return NSHS{}, false, fmt.Errorf("nshs: decode %s: %w", id, err)
	}
	return n, true, nil
}

// storedBetween reads the stored НШС overlapping [from, to).
func storedBetween(tx ingest.Tx, from, to time.Time) ([]NSHS, error) {
	var longest time.Duration
	v, err := tx.Get(bucketRecordsMeta, keyLongest)
	if err != nil {
		return nil, err
	}
	if len(v) == 8 {
		longest = time.Duration(binary.BigEndian.Uint64(v))
	}
	var out []NSHS
	seen := map[string]bool{}
	keep := func(k, v []byte) error {
		var n NSHS
		if err := json.Unmarshal(v, &n); err != nil {
			return fmt.Errorf("decode %x: %w", k, err)
		}
		if !seen[n.ID] && n.Start.Before(to) && (n.End.IsZero() || n.End.After(from)) {
			seen[n.ID] = true
			out = append(out, n)
		}
		return nil
	}
	if err := tx.Scan(bucketRecords, timeKey(from.Add(-longest)), timeKey(to), false, keep); err != nil {
		return nil, err
	}
	err = tx.Scan(bucketRecordsOpen, nil, nil, false, func(id, key []byte) error {
		if seen[string(id)] {
			return nil
		}
		v, err := tx.Get(bucketRecords, key)
		if err != nil || v == nil {
			return err
		}
		return keep(key, v)
	})
	return out, err
}

// idkPrefix begins the ID of an ИДК НШС: "idk-" and the incident's ID.
const idkPrefix = "idk-"

// Between lists every НШС overlapping [from, to), sorted by start, then
// ID: those of the ИДК derived from the availability journal, under the
// mapping in force; the stored ones of the links and the collector; each
// with its corrections applied. Times are in the book's location.
func (b *Book) Between(from, to time.Time) ([]NSHS, error) {
	if !from.Before(to) {
		return nil, refuse("to", "nshs: the period %s to %s is empty", from.Format(time.RFC3339), to.Format(time.RFC3339))
	}
	incs, err := availability.IncidentsBetween(b.db, from, to, b.loc, b.clock.Now())
	if err != nil {
		return nil, fmt.Errorf("nshs: %w", err)
	}
	var out []NSHS
	err = b.db.View(func(tx ingest.Tx) error {
		stored, err := storedBetween(tx, from, to)
		if err != nil {
			return err
		}
		out, err = b.finish(tx, incs, stored)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("nshs: from %s to %s: %w", from.Format(time.RFC3339), to.Format(time.RFC3339), err)
	}
	return out, nil
}

// Find returns the НШС id with its corrections, or an error wrapping
// ErrNoNSHS.
func (b *Book) Find(id string) (NSHS, error) {
	var incs []availability.Incident
	if rest, ok := strings.CutPrefix(id, idkPrefix); ok {
		// The incident's ID ends with its start: the one instant to look
		// at.
		i := strings.LastIndexByte(rest, '-')
		start, err := time.Parse("20060102T150405.999999999Z", rest[i+1:])
		if i <= 0 || err != nil {
			return NSHS{}, fmt.Errorf("nshs: %q: %w", id, ErrNoNSHS)
		}
		all, err := availability.IncidentsBetween(b.db, start, start.Add(1), b.loc, b.clock.Now())
		if err != nil {
			return NSHS{}, fmt.Errorf("nshs: %w", err)
		}
		for _, inc := range all {
			if inc.ID == rest {
				incs = append(incs, inc)
			}
		}
	}
	var out []NSHS
	err := b.db.View(func(tx ingest.Tx) error {
		var stored []NSHS
		if incs == nil {
			n, ok, err := b.Get(tx, id)
			if err != nil || !ok {
				return err
			}
			stored = append(stored, n)
		}
		var err error
		out, err = b.finish(tx, incs, stored)
		return err
	})
	if err != nil {
		return NSHS{}, fmt.Errorf("nshs: %s: %w", id, err)
	}
	if len(out) == 0 {
		return NSHS{}, fmt.Errorf("nshs: %q: %w", id, ErrNoNSHS)
	}
	return out[0], nil
}

// finish turns incidents and stored records into НШС: defaults from the
// mapping, then the corrections.
func (b *Book) finish(tx ingest.Tx, incs []availability.Incident, stored []NSHS) ([]NSHS, error) {
	if b.steps != nil && len(incs) > 0 {
		b.steps.Annotate(incs)
	}
	m, err := loadMapping(tx)
	if err != nil {
		return nil, err
	}
	out := make([]NSHS, 0, len(incs)+len(stored))
	for _, inc := range incs {
		out = append(out, fromIncident(inc, m.Rule(inc.Cause), b.loc))
	}
	for _, n := range stored {
		if !n.Category.Valid() || !n.Cause.Valid() {
			r := ruleFor(n.Source)
			if n.Cause.Valid() {
				r.Cause = n.Cause
			}
			n.Cause = r.Cause
			if !n.Category.Valid() {
				n.Category = r.Classify(n.Start, n.End)
			}
		}
		n.Start = n.Start.In(b.loc)
		if !n.End.IsZero() {
			n.End = n.End.In(b.loc)
		}
		out = append(out, n)
	}
	for i := range out {
		cs, err := corrections(tx, out[i].ID)
		if err != nil {
			return nil, err
		}
		for _, c := range cs {
			c.apply(&out[i])
		}
	}
	slices.SortFunc(out, func(x, y NSHS) int {
		return cmp.Or(x.Start.Compare(y.Start), strings.Compare(x.ID, y.ID))
	})
	return out, nil
}

// stepLabels say whom each reporting step informed, as column 2 of the
// form lists them.
var stepLabels = map[string]string{
	availability.StepRequest: "подразделение КТП (заявка)",
	availability.StepHead:    "начальник структурного подразделения",
	availability.StepITSODS:  "ИТС (ИТП) таможни и дежурная смена ОДС",
}

// fromIncident is the НШС of an ИДК incident under rule r. It is
// confirmed once the incident ended: the ИДК itself reported another
// state, which is the monitoring data 5.9 asks for.
func fromIncident(inc availability.Incident, r Rule, loc *time.Location) NSHS {
	n := NSHS{
		ID:          idkPrefix + inc.ID,
		Source:      SourceIDK,
		KodTO:       inc.KodTO,
		NumIDK:      inc.NumIDK,
		Systems:     "ИДК " + inc.NumIDK,
		Description: "неработоспособность ИДК: " + inc.CauseName,
		Category:    r.Classify(inc.Start, inc.End),
		Cause:       r.Cause,
		Start:       inc.Start.In(loc),
		Confirmed:   !inc.Open(),
	}
	if inc.NaimZTK != "" {
		n.Systems += " (" + inc.NaimZTK + ")"
	}
	if inc.Note != "" {
		n.Description += "; " + inc.Note
	}
	if !inc.Open() {
		n.End = inc.End.In(loc)
	}
	for _, s := range availability.ReportSteps {
		if rep, ok := inc.Reports[s.Name]; ok {
			n.Informed = append(n.Informed, fmt.Sprintf("%s: %s, %s", stepLabels[s.Name], rep.By, rep.At.In(loc).Format("02.01.2006 15:04")))
		}
	}
	return n
}

// Correction is one correction of one НШС by the ICT specialist: the
// fields it gives replace the НШС's, and it is kept as a version, never
// overwritten. The category is taken as given: a correction of the cause
// alone does not classify the НШС again.
type Correction struct {
	ID       string    `json:"id"`
	Version  int       `json:"version"`            // 1, 2, ... per НШС
	Category Category  `json:"category,omitempty"` // 0: unchanged
	Cause    Cause     `json:"cause,omitempty"`    // "": unchanged
	Works    *string   `json:"works,omitempty"`    // nil: unchanged
	Informed *[]string `json:"informed,omitempty"` // nil: unchanged; empty: no one
	By       string    `json:"by"`
	At       time.Time `json:"at"`
	Reason   string    `json:"reason"`
}

func (c Correction) apply(n *NSHS) {
	if c.Category != 0 {
		n.Category = c.Category
	}
	if c.Cause != "" {
		n.Cause = c.Cause
	}
	if c.Works != nil {
		n.Works = *c.Works
	}
	if c.Informed != nil {
		n.Informed = slices.Clone(*c.Informed)
	}
}

func correctionKey(id string, version int) []byte {
	return binary.BigEndian.AppendUint32([]byte(id+"\x00"), uint32(version))
}

// corrections reads the corrections of id, oldest first.
func corrections(tx ingest.Tx, id string) ([]Correction, error) {
	var out []Correction
	prefix := []byte(id + "\x00")
	err := tx.Scan(bucketCorrections, prefix, ingest.PrefixEnd(prefix), false, func(k, v []byte) error {
		var c Correction
		if err := json.Unmarshal(v, &c); err != nil {
			return fmt.Errorf("decode correction %x: %w", k, err)
		}
		out = append(out, c)
		return nil
	})
	return out, err
}

// Corrections lists the corrections of НШС id, oldest first.
func (b *Book) Corrections(id string) ([]Correction, error) {
	var out []Correction
	err := b.db.View(func(tx ingest.Tx) error {
		var err error
		out, err = corrections(tx, id)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("nshs: corrections of %s: %w", id, err)
	}
	for i := range out {
		out[i].At = out[i].At.In(b.loc)
	}
	return out, nil
}

// Limits of a correction's text: a form's cell, not a document.
const (
	maxWorks    = 4000
	maxInformed = 50
	maxLine     = 500
)

// Correct stores c as the next version of the corrections of НШС id and
// returns the НШС as corrected. c.By and c.Reason are required, and at
// least one field to change; c's ID, Version and At are set here. An
// unknown id is an error wrapping ErrNoNSHS; a refused value a
// *FieldError.
func (b *Book) Correct(id string, c Correction) (NSHS, error) {
	var err error
	if c.By, err = checkBy(c.By); err != nil {
		return NSHS{}, err
	}
	if err := checkCorrection(&c); err != nil {
		return NSHS{}, err
	}
	if _, err := b.Find(id); err != nil {
		return NSHS{}, err
	}
	c.ID, c.At = id, b.clock.Now()
	err = b.db.Update(func(tx ingest.Tx) error {
		prefix := []byte(id + "\x00")
		err := tx.Scan(bucketCorrections, prefix, ingest.PrefixEnd(prefix), true, func(k, _ []byte) error {
			if len(k) == len(prefix)+4 {
				c.Version = int(binary.BigEndian.Uint32(k[len(prefix):]))
			}
			return errStop
		})
		if err != nil && !errors.Is(err, errStop) {
			return err
		}
		c.Version++
		v, err := json.Marshal(c)
		if err != nil {
			return err
		}
		return tx.Put(bucketCorrections, correctionKey(id, c.Version), v)
	})
	if err != nil {
		return NSHS{}, fmt.Errorf("nshs: correct %s: %w", id, err)
	}
	return b.Find(id)
}

func checkCorrection(c *Correction) error {
	c.Reason = strings.TrimSpace(c.Reason)
	switch {
	case c.Reason == "":
		return refuse("reason", "nshs: a reason is required: the form must show why a value changed")
	case len([]rune(c.Reason)) > maxLine:
		return refuse("reason", "nshs: the reason is longer than %d characters", maxLine)
	case c.Category == 0 && c.Cause == "" && c.Works == nil && c.Informed == nil:
		return refuse("category", "nshs: nothing to correct: give category, cause, works or informed")
	case c.Category != 0 && !c.Category.Valid():
		return refuse("category", "nshs: category %d: want I to V (1 to 5)", c.Category)
	case c.Cause != "" && !c.Cause.Valid():
		return refuse("cause", "nshs: cause %q: want one of %s", c.Cause, causeList())
	}
	if c.Works != nil {
		w := strings.TrimSpace(*c.Works)
		if len([]rune(w)) > maxWorks {
			return refuse("works", "nshs: works: longer than %d characters", maxWorks)
		}
		c.Works = &w
	}
	if c.Informed != nil {
		if len(*c.Informed) > maxInformed {
			return refuse("informed", "nshs: informed: more than %d entries", maxInformed)
		}
		inf := make([]string, 0, len(*c.Informed))
		for i, s := range *c.Informed {
			s = strings.TrimSpace(s)
			if s == "" || len([]rune(s)) > maxLine || strings.IndexFunc(s, func(r rune) bool { return r < ' ' }) >= 0 {
				return refuse("informed", "nshs: informed entry %d: want one line of 1 to %d characters", i+1, maxLine)
			}
			inf = append(inf, s)
		}
		c.Informed = &inf
	}
	return nil
}
