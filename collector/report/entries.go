package report

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"idk/collector/ingest"
	"idk/internal/clock"
	"idk/protocol"
)

// DB is where entries live: the collector's index (ingest.Log satisfies
// it), so that they are backed up and kept with the scans they name.
type DB interface {
	View(fn func(ingest.Tx) error) error
	Update(fn func(ingest.Tx) error) error
}

// Entry is one row of table 2, 5 or 6 as an officer entered it: one
// version of it. A correction is a new version; the old ones are kept,
// since nothing may be deleted from the report (A4 rule 5).
type Entry struct {
	ID      string            `json:"id"` // "T2-000001": the table and a number in the order of entry
	Table   int               `json:"table"`
	Version int               `json:"version"` // 1, then one more per correction
	Fields  map[string]string `json:"fields"`  // the non-empty values, as the report writes them
	By      string            `json:"by"`      // who entered this version
	At      time.Time         `json:"at"`
	Reason  string            `json:"reason,omitempty"` // why this version corrects the previous one
}

// Errors of entry IDs, for callers to tell apart (an HTTP handler: 404,
// 409). Refused values are EntryErrors.
var (
	ErrNoEntry      = errors.New("no such entry")
	ErrEntryChanged = errors.New("the entry was corrected meanwhile")
)

// ErrEntryRefused matches (errors.Is) every error that refuses a request
// as it was given, for the caller to fix (an HTTP handler: 400): an
// EntryError or EntryErrors, or a request without "by", a reason, rows,
// or with a table or ID that does not exist. Other errors are failures of
// the index.
var ErrEntryRefused = errors.New("refused")

// entryRefusal marks err as a refusal while keeping its message.
type entryRefusal struct{ err error }

func (r entryRefusal) Error() string        { return r.err.Error() }
func (r entryRefusal) Unwrap() error        { return r.err }
func (r entryRefusal) Is(target error) bool { return target == ErrEntryRefused }

func refuse(format string, args ...any) error {
	return entryRefusal{fmt.Errorf(format, args...)}
}

// Entries keeps officers' entries of tables 2, 5 and 6 and the post's
// object counts of table 3 in the collector's index. Every write is a new
// key: a version, once stored, is never overwritten, and nothing is
// deleted.
//
// The buckets:
//
//	report.entries        ID "/" version (4 bytes) → Entry (JSON)
//	report.entries.index  table "/" KOD_TO "/" YYYYMMDD "/" number (8 bytes) version (4 bytes) → ID
//	report.entries.seq    "T2", "T5", "T6" → the last number given (8 bytes)
//	report.counts         NUM_IDK "/" YYYYMMDD "/" version (4 bytes) → StoredCounts (JSON)
//
// The index has a key for each version; Rows skips those that are no
// longer the latest, so that a correction that moves an entry to another
// day or post needs no delete.
//
// Entries is safe for concurrent use: the index serialises its writers.
type Entries struct {
	db    DB
	scans ScanLookup
	loc   *time.Location
	clock clock.Clock
}

const (
	bucketEntries      = "report.entries"
	bucketEntriesIndex = "report.entries.index"
	bucketEntriesSeq   = "report.entries.seq"
	bucketCounts       = "report.counts"
)

// maxRowsPerAdd bounds one Add: a day's or a month's rows, not a database.
const maxRowsPerAdd = 1000

// NewEntries returns the entries kept in db. scans finds the scan a
// table 2 row names; loc is the report's time zone (time.Local if nil);
// clk (clock.Real if nil) stamps each version.
func NewEntries(db DB, scans ScanLookup, loc *time.Location, clk clock.Clock) *Entries {
	if loc == nil {
		loc = time.Local
	}
	return &Entries{db: db, scans: scans, loc: loc, clock: clock.Or(clk)}
}

// checkBy checks who enters something: the operators share the API's
// credentials, so the name given is the only record of who did it.
func checkBy(by string) (string, error) {
	by = strings.TrimSpace(by)
	if by == "" {
		return "", errors.New(`"by" is required: who enters it`)
	}
	if n := len([]rune(by)); n > 200 || strings.IndexFunc(by, func(r rune) bool { return r < ' ' }) >= 0 {
		return "", fmt.Errorf(`"by" %q: want a name of at most 200 characters on one line`, by)
	}
	return by, nil
}

// Add validates and stores new rows of one table, all or none. A refused
// row is reported as EntryErrors naming the table, the row (1-based in
// rows) and the field, for every refused value at once.
func (e *Entries) Add(table int, rows []map[string]string, by string) ([]Entry, error) {
	t, err := entryTable(table)
	if err != nil {
		return nil, refuse("report: %w", err)
	}
	if by, err = checkBy(by); err != nil {
		return nil, refuse("report: %w", err)
	}
	switch {
	case len(rows) == 0:
		return nil, refuse("report: table %d: no rows", table)
	case len(rows) > maxRowsPerAdd:
		return nil, refuse("report: table %d: %d rows: at most %d at a time", table, len(rows), maxRowsPerAdd)
	}
	var errs EntryErrors
	fields := make([]map[string]string, len(rows))
	for i, in := range rows {
		c := &rowCheck{table: table, row: i + 1}
		if fields[i], err = checkRow(t, in, e.scans, c); err != nil {
			return nil, fmt.Errorf("report: table %d, row %d: %w", table, i+1, err)
		}
		errs = append(errs, c.errs...)
	}
	if len(errs) > 0 {
		return nil, errs
	}
	at := e.clock.Now()
	out := make([]Entry, len(rows))
	err = e.db.Update(func(tx ingest.Tx) error {
		seqKey := []byte("T" + strconv.Itoa(table))
		v, err := tx.Get(bucketEntriesSeq, seqKey)
		if err != nil {
			return err
		}
		var seq uint64
		if len(v) == 8 {
			seq = binary.BigEndian.Uint64(v)
		}
		for i, f := range fields {
			seq++
			en := Entry{ID: fmt.Sprintf("T%d-%06d", table, seq), Table: table, Version: 1, Fields: f, By: by, At: at}
			if err := putEntry(tx, en, seq); err != nil {
				return err
			}
			out[i] = en
		}
		return tx.Put(bucketEntriesSeq, seqKey, binary.BigEndian.AppendUint64(nil, seq))
	})
	if err != nil {
		return nil, fmt.Errorf("report: store table %d entries: %w", table, err)
	}
	for i := range out {
		out[i].At = out[i].At.In(e.loc)
	}
	return out, nil
}

// Correct stores a new version of entry id; the old one is kept. fields
// change the latest version's values: a field given replaces its value,
// "" clears it, a field not given keeps it. When a table 2 correction
// changes NUM_SNIM or NUM_IDK, the identity fields it does not give are
// taken anew from the scan. The whole row is checked again. reason is
// required: the report must show why a published value changed.
func (e *Entries) Correct(id string, fields map[string]string, by, reason string) (Entry, error) {
	var err error
	if by, err = checkBy(by); err != nil {
		return Entry{}, refuse("report: correct %s: %w", id, err)
	}
	reason = strings.TrimSpace(reason)
	if reason == "" {
		return Entry{}, refuse("report: correct %s: a reason is required", id)
	}
	if len(fields) == 0 {
		return Entry{}, refuse("report: correct %s: no fields to change", id)
	}
	table, seq, err := parseEntryID(id)
	if err != nil {
		return Entry{}, refuse("report: correct: %w", err)
	}
	var old Entry
	err = e.db.View(func(tx ingest.Tx) error {
		var ok bool
		old, ok, err = latestEntry(tx, id)
		if err == nil && !ok {
			err = ErrNoEntry
		}
		return err
	})
	if err != nil {
		return Entry{}, fmt.Errorf("report: correct %s: %w", id, err)
	}
	t, _ := entryTable(table)
	merged := maps.Clone(old.Fields)
	if table == 2 && (changes(old.Fields, fields, "NUM_SNIM") || changes(old.Fields, fields, "NUM_IDK")) {
		for _, n := range identityFields {
			if _, given := fields[n]; !given {
				delete(merged, n)
			}
		}
	}
	maps.Copy(merged, fields)
	c := &rowCheck{table: table, where: "entry " + id}
	f, err := checkRow(t, merged, e.scans, c)
	if err != nil {
		return Entry{}, fmt.Errorf("report: correct %s: %w", id, err)
	}
	if len(c.errs) > 0 {
		return Entry{}, c.errs
	}
	if maps.Equal(f, old.Fields) {
		return Entry{}, &EntryError{Table: table, Where: "entry " + id, Field: strings.Join(slices.Sorted(maps.Keys(fields)), ", "), Msg: fmt.Sprintf("the correction changes nothing: version %d has these values", old.Version)}
	}
	en := Entry{ID: id, Table: table, Version: old.Version + 1, Fields: f, By: by, At: e.clock.Now(), Reason: reason}
	err = e.db.Update(func(tx ingest.Tx) error {
		cur, _, err := latestEntry(tx, id)
		if err != nil {
			return err
		}
		// Checked against the version read above: a correction made
		// meanwhile would otherwise be undone without anyone seeing it.
		if cur.Version != old.Version {
			return fmt.Errorf("%w (now version %d, by %s): read it again and correct that", ErrEntryChanged, cur.Version, cur.By)
		}
		return putEntry(tx, en, seq)
	})
	if err != nil {
		return Entry{}, fmt.Errorf("report: correct %s: %w", id, err)
	}
	en.At = en.At.In(e.loc)
	return en, nil
}

// changes reports whether patch gives field a value other than old's.
func changes(old, patch map[string]string, field string) bool {
	v, ok := patch[field]
	return ok && strings.TrimSpace(v) != old[field]
}

// History returns every version of entry id, oldest first.
func (e *Entries) History(id string) ([]Entry, error) {
	if _, _, err := parseEntryID(id); err != nil {
		return nil, refuse("report: %w", err)
	}
	var out []Entry
	err := e.db.View(func(tx ingest.Tx) error {
		prefix := []byte(id + "/")
		return tx.Scan(bucketEntries, prefix, ingest.PrefixEnd(prefix), false, func(_, v []byte) error {
			en, err := decodeEntry(v)
			if err != nil {
				return err
			}
			en.At = en.At.In(e.loc)
			out = append(out, en)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("report: entry %s: %w", id, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("report: entry %s: %w", id, ErrNoEntry)
	}
	return out, nil
}

// Latest returns the latest version of each entry of table (2, 5 or 6)
// whose KOD_TO is kodTO and whose date (table 2: DATE_SYS, table 5:
// DATE_SYS, table 6: DATE_SYS_V) is in [from, to), ordered by that date
// then ID.
//
// It reads the range in one transaction, a consistent view, and returns
// it whole: a month of one post's entries is small, and no transaction is
// held while the caller writes a workbook.
func (e *Entries) Latest(table int, kodTO string, from, to time.Time) ([]Entry, error) {
	if _, err := entryTable(table); err != nil {
		return nil, refuse("report: %w", err)
	}
	if err := protocol.CheckKodTO(kodTO); err != nil {
		return nil, refuse("report: table %d: %w", table, err)
	}
	prefix := fmt.Sprintf("%d/%s/", table, kodTO)
	lo, hi := []byte(prefix+e.dayCeil(from)), []byte(prefix+e.dayCeil(to))
	var out []Entry
	err := e.db.View(func(tx ingest.Tx) error {
		return tx.Scan(bucketEntriesIndex, lo, hi, false, func(k, v []byte) error {
			if len(k) < 4 {
				return fmt.Errorf("index key %q: too short", k)
			}
			version := int(binary.BigEndian.Uint32(k[len(k)-4:]))
			en, ok, err := latestEntry(tx, string(v))
			if err != nil {
				return err
			}
			if !ok {
				return fmt.Errorf("index key %q names entry %s, which is not stored", k, v)
			}
			if en.Version != version {
				return nil // an older version's key: the entry is listed where its latest version is
			}
			en.At = en.At.In(e.loc)
			out = append(out, en)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("report: table %d entries of %s: %w", table, kodTO, err)
	}
	return out, nil
}

// Rows streams the latest version of each entry Latest selects as report
// Rows: the values in the table's column order, as the report writes them
// (upper case, dates DD.MM.YYYY, decimals with a comma), "" for a value
// not entered. It stops at emit's first error and returns it.
func (e *Entries) Rows(table int, kodTO string, from, to time.Time, emit func(Row) error) error {
	t, err := entryTable(table)
	if err != nil {
		return refuse("report: %w", err)
	}
	entries, err := e.Latest(table, kodTO, from, to)
	if err != nil {
		return err
	}
	for _, en := range entries {
		row := make(Row, len(t.Columns))
		for i, c := range t.Columns {
			row[i] = en.Fields[c.Name]
		}
		if err := emit(row); err != nil {
			return err
		}
	}
	return nil
}

// dayCeil is the YYYYMMDD of the first calendar day in the report's zone
// that starts at or after t: an entry dated D is in [from, to) when its
// midnight is.
func (e *Entries) dayCeil(t time.Time) string {
	t = t.In(e.loc)
	y, m, d := t.Date()
	day := time.Date(y, m, d, 0, 0, 0, 0, e.loc)
	if day.Before(t) {
		day = NextDay(day)
	}
	return day.Format("20060102")
}

var entryIDRE = regexp.MustCompile(`^T([256])-([0-9]{6,})$`)

// parseEntryID returns the table and number of an entry ID.
func parseEntryID(id string) (table int, seq uint64, err error) {
	m := entryIDRE.FindStringSubmatch(id)
	if m == nil {
		return 0, 0, fmt.Errorf("%q is not an entry ID: want T2-000001, T5-000001 or T6-000001", id)
	}
	table, _ = strconv.Atoi(m[1])
	seq, err = strconv.ParseUint(m[2], 10, 64)
	if err != nil {
		return 0, 0, fmt.Errorf("%q is not an entry ID: %w", id, err)
	}
	return table, seq, nil
}

// putEntry stores a new version en of the entry numbered seq and its
// index key.
func putEntry(tx ingest.Tx, en Entry, seq uint64) error {
	key := entryKey(en.ID, en.Version)
	if v, err := tx.Get(bucketEntries, key); err != nil {
		return err
	} else if v != nil {
		// Never overwrite a version: the sequence or the index is broken.
		return fmt.Errorf("entry %s version %d is already stored", en.ID, en.Version)
	}
	b, err := json.Marshal(en)
	if err != nil {
		return err
	}
	if err := tx.Put(bucketEntries, key, b); err != nil {
		return err
	}
	date := en.Fields[entryDateField(en.Table)]
	idx := fmt.Appendf(nil, "%d/%s/%s/", en.Table, en.Fields["KOD_TO"], dateKey(date))
	idx = binary.BigEndian.AppendUint64(idx, seq)
	idx = binary.BigEndian.AppendUint32(idx, uint32(en.Version))
	return tx.Put(bucketEntriesIndex, idx, []byte(en.ID))
}

func entryKey(id string, version int) []byte {
	return binary.BigEndian.AppendUint32([]byte(id+"/"), uint32(version))
}

// errEntriesFound stops a scan at its first key.
var errEntriesFound = errors.New("found")

// latestEntry reads the latest version of entry id.
func latestEntry(tx ingest.Tx, id string) (Entry, bool, error) {
	prefix := []byte(id + "/")
	var en Entry
	var found bool
	err := tx.Scan(bucketEntries, prefix, ingest.PrefixEnd(prefix), true, func(_, v []byte) error {
		var err error
		if en, err = decodeEntry(v); err != nil {
			return err
		}
		found = true
		return errEntriesFound
	})
	if err != nil && !errors.Is(err, errEntriesFound) {
		return Entry{}, false, err
	}
	return en, found, nil
}

func decodeEntry(v []byte) (Entry, error) {
	var en Entry
	if err := json.Unmarshal(v, &en); err != nil {
		return Entry{}, fmt.Errorf("decode entry: %w", err)
	}
	return en, nil
}

// StoredCounts is one version of a post's object counts for table 3.
type StoredCounts struct {
	NumIDK  string    `json:"num_idk"`
	Date    string    `json:"date"` // DD.MM.YYYY
	Version int       `json:"version"`
	Counts  Counts    `json:"counts"`
	By      string    `json:"by"`
	At      time.Time `json:"at"`
}

// SetCounts stores the post's object counts (table 3's OKO_* and KOVR_*
// fields, see CountField) for ИДК numIDK on the calendar day of day in
// the report's zone. A later call replaces them as a new version; the
// earlier ones are kept. A field not given is 0.
func (e *Entries) SetCounts(numIDK string, day time.Time, c Counts, by string) error {
	_, err := e.setCounts(numIDK, day, c, by)
	return err
}

func (e *Entries) setCounts(numIDK string, day time.Time, c Counts, by string) (StoredCounts, error) {
	var err error
	if by, err = checkBy(by); err != nil {
		return StoredCounts{}, refuse("report: counts: %w", err)
	}
	if err := protocol.CheckNumIDK(numIDK); err != nil {
		return StoredCounts{}, refuse("report: counts: %w", err)
	}
	date := FormatDate(day.In(e.loc))
	if len(c) == 0 {
		return StoredCounts{}, refuse("report: counts of ИДК %s on %s: no counts given", numIDK, date)
	}
	rc := &rowCheck{table: 3, where: fmt.Sprintf("NUM_IDK %s, %s", numIDK, date)}
	checkCounts(c, rc)
	if len(rc.errs) > 0 {
		return StoredCounts{}, rc.errs
	}
	sc := StoredCounts{NumIDK: numIDK, Date: date, Counts: maps.Clone(c), By: by, At: e.clock.Now()}
	prefix := countsPrefix(numIDK, date)
	err = e.db.Update(func(tx ingest.Tx) error {
		last, ok, err := latestCounts(tx, prefix)
		if err != nil {
			return err
		}
		sc.Version = 1
		if ok {
			sc.Version = last.Version + 1
		}
		b, err := json.Marshal(sc)
		if err != nil {
			return err
		}
		return tx.Put(bucketCounts, binary.BigEndian.AppendUint32(prefix, uint32(sc.Version)), b)
	})
	if err != nil {
		return StoredCounts{}, fmt.Errorf("report: store counts of ИДК %s on %s: %w", numIDK, date, err)
	}
	sc.At = sc.At.In(e.loc)
	return sc, nil
}

// Counts returns the latest counts the post entered for ИДК numIDK on the
// calendar day of day; ok is false when none were. It implements
// CountSource.
func (e *Entries) Counts(numIDK string, day time.Time) (Counts, bool, error) {
	sc, ok, err := e.storedCounts(numIDK, day)
	return sc.Counts, ok, err
}

func (e *Entries) storedCounts(numIDK string, day time.Time) (StoredCounts, bool, error) {
	date := FormatDate(day.In(e.loc))
	var sc StoredCounts
	var ok bool
	err := e.db.View(func(tx ingest.Tx) error {
		var err error
		sc, ok, err = latestCounts(tx, countsPrefix(numIDK, date))
		return err
	})
	if err != nil {
		return StoredCounts{}, false, fmt.Errorf("report: counts of ИДК %s on %s: %w", numIDK, date, err)
	}
	sc.At = sc.At.In(e.loc)
	return sc, ok, nil
}

func countsPrefix(numIDK, date string) []byte {
	return []byte(numIDK + "/" + dateKey(date) + "/")
}

func latestCounts(tx ingest.Tx, prefix []byte) (StoredCounts, bool, error) {
	var sc StoredCounts
	var found bool
	err := tx.Scan(bucketCounts, prefix, ingest.PrefixEnd(prefix), true, func(_, v []byte) error {
		if err := json.Unmarshal(v, &sc); err != nil {
			return fmt.Errorf("decode counts: %w", err)
		}
		found = true
		return errEntriesFound
	})
	if err != nil && !errors.Is(err, errEntriesFound) {
		return StoredCounts{}, false, err
	}
	return sc, found, nil
}
