// Package reanalysis records the re-analysis of ИДК images by a risk
// management unit (items 8-11 of the Instruction): it selects scans for an
// analyst, lays out the re-analysed scans' source RAW files in the item 11
// tree, and writes the session's rows of tables 5 and 6 of the daily
// report.
//
// The item 11 tree is
//
//	<root>/Повторный анализ информации с ИДК/<KOD_TO of the body>/<YYYYMMDD>/<NUM_SNIM>/<file>
//
// where the date is the re-analysis's. Each file is a hard link to the
// collector's stored file, so the tree costs no space and the scan archive
// stays exactly as it is; where a link is impossible (another file system)
// the file is copied. Nothing is ever moved, replaced or deleted: a second
// session of the same body and day adds to the day's folder, a file
// already there is recognised by its content, and a different file under
// a name already taken gets a new name beside it.
//
// Sessions are kept in the collector's index (the ingest.Tx buckets below),
// so that they are backed up with the scans and the report entries they
// name:
//
//	reanalysis.sessions   ID ("RA-000001") → Session (JSON), written once
//	reanalysis.seq        "RA" → the last number given (8 bytes)
//
// The agents' integrity evidence (files changed or missing, chain breaks)
// is shown to the analyst as leads only (Leads): it is what the agent
// noticed, not what the analyst established, so it never counts in table
// 5 or 6.
package reanalysis

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"idk/collector/report"
	"idk/collector/store"
	"idk/internal/clock"
	"idk/protocol/idkpb"
)

// Section is the name of the section of the РТУ (ТНП) information
// resource that item 11а prescribes.
const Section = "Повторный анализ информации с ИДК"

// Scan is one scan as the selection shows it: table 1's identity of the
// scan with the fields an analyst selects by.
type Scan struct {
	KodTO   string `json:"kod_to"`   // where the scan was made
	NumIDK  string `json:"num_idk"`  //
	NumSnim string `json:"num_snim"` //
	DateSys string `json:"date_sys"` // DD.MM.YYYY
	Rez     string `json:"rez"`      // the operator's decision, table 1 REZ: 1 без подозрений, 2 под подозрением; "" without a form
	NumPR   string `json:"num_pr"`   // the risk profile's number, "" when none was reported
}

// Scans is what the package reads of the scan journal: the scans of one
// customs body in a time range, and one scan by its number (to check a
// session's scans). JournalScans implements it over report.ScanJournal.
type Scans interface {
	report.ScanLookup
	// Scans calls emit for each scan made at customs body kodTO in
	// [from, to), in table 1's order, and stops at emit's first error.
	Scans(kodTO string, from, to time.Time, emit func(Scan) error) error
}

// Files lists the stored files of one ИДК and reads them (*store.Store
// implements it).
type Files interface {
	Files(numIDK string) ([]store.FileEntry, error)
	// LocalFiles reports whether the files are under StoreRoot, where
	// they can be hard-linked; otherwise (a bucket) OpenFile reads them
	// and they are copied.
	LocalFiles() bool
	OpenFile(ctx context.Context, storedAs string) (io.ReadCloser, int64, error)
}

// Events reads the stored events of one ИДК in log order (*store.Store
// implements it): where the leads come from.
type Events interface {
	EachEvent(numIDK string, fn func(epoch uint64, ev *idkpb.Event) error) error
}

// EntrySink stores rows of tables 5 and 6 (*report.Entries implements
// it): validation and versioning of the rows are the entries'.
type EntrySink interface {
	Add(table int, rows []map[string]string, by string) ([]report.Entry, error)
}

// Config wires a Recorder.
type Config struct {
	// Root is the folder of the РТУ (ТНП) information resource under which
	// the Section is made. Hard links need it on the file system of
	// StoreRoot; elsewhere files are copied.
	Root string
	// StoreRoot is the scan store's root (store.Store.Root): FileEntry
	// StoredAs paths are under it, unless Files keeps them elsewhere
	// (LocalFiles false).
	StoreRoot string
	Files     Files
	Scans     Scans
	Entries   EntrySink
	DB        report.DB // the collector's index (ingest.FromStore)
	Events    Events    // nil: no leads
	Location  *time.Location
	Clock     clock.Clock
	Log       *slog.Logger
}

// ScanRef names one scan. NumIDK may be left empty in a request when the
// image number is unique; the stored session always has it.
type ScanRef struct {
	NumIDK  string `json:"num_idk,omitempty"`
	NumSnim string `json:"num_snim"`
}

func (s ScanRef) String() string { return s.NumIDK + "/" + s.NumSnim }

// Violation is one violation the re-analysis found: one table 6 row.
type Violation struct {
	ScanRef
	Opisanie string `json:"opisanie"`             // OPISANIE, upper case
	Rez      string `json:"rez"`                  // REZ 0-14 (table 6)
	DateSysR string `json:"date_sys_r,omitempty"` // DD.MM.YYYY; empty for REZ 0, which later becomes a correction of the entry
	Entry    string `json:"entry,omitempty"`      // the table 6 entry's ID, in a stored session
}

// Request is the body of a new session.
type Request struct {
	By    string `json:"by,omitempty"` // who records it; the FIO when empty
	FIO   string `json:"fio"`          // Ф.И.О. of the analyst, upper case
	LNP   string `json:"lnp"`          // ЛНП number, digits
	KodTO string `json:"kod_to"`       // the re-analysing body's 8-digit code
	Date  string `json:"date"`         // DD.MM.YYYY of the re-analysis; today when empty
	// Scans are the scans re-analysed (KOL_VO_PR_SNIM).
	Scans []ScanRef `json:"scans"`
	// Missing and Substituted are the scans among Scans whose images were
	// found missing from the information resources (KOL_VO_OT_SNIM) or
	// substituted (KOL_VO_POD_SNIM).
	Missing     []ScanRef   `json:"missing,omitempty"`
	Substituted []ScanRef   `json:"substituted,omitempty"`
	Violations  []Violation `json:"violations,omitempty"` // KOL_VO_NAR, and table 6
	// Risk profiles developed from the re-analysis: drafts, approved,
	// in force (KOL_VO_PPR, KOL_VO_UPR, KOL_VO_EPR).
	DraftProfiles     int `json:"kol_vo_ppr,omitempty"`
	ApprovedProfiles  int `json:"kol_vo_upr,omitempty"`
	EffectiveProfiles int `json:"kol_vo_epr,omitempty"`
}

// Placed is one file laid out in the item 11 tree.
type Placed struct {
	ScanRef
	StoredAs string `json:"stored_as"` // the scan archive's file, under the store's root
	Path     string `json:"path"`      // the laid-out file, under Config.Root, '/'-separated
	SHA256   string `json:"sha256"`
	Size     int64  `json:"size"`
	// How: "link" (a hard link to the archive's file), "copy" (a link was
	// impossible), "present" (the folder had it already, from another
	// session of the day).
	How string `json:"how"`
}

// Problem is a scan or file the layout could not place as it is stored:
// shown to the analyst, never counted.
type Problem struct {
	ScanRef
	StoredAs string `json:"stored_as,omitempty"`
	Msg      string `json:"message"`
}

// Session is a recorded re-analysis.
type Session struct {
	ID string `json:"id"` // "RA-000001"
	Request
	At       time.Time `json:"at"`
	Folder   string    `json:"folder"` // the day's folder under Config.Root, '/'-separated
	Files    []Placed  `json:"files"`
	Problems []Problem `json:"problems,omitempty"`
	Table5   string    `json:"table5"` // the table 5 entry's ID; table 6 IDs are in Violations
}

// ErrRefused matches (errors.Is) every error that refuses a request as
// given, for the caller to fix (HTTP 400): FieldErrors here, and the
// entries' refusals (report.ErrEntryRefused).
var ErrRefused = errors.New("refused")

// ErrNoSession is returned for an unknown session ID.
var ErrNoSession = errors.New("no such re-analysis session")

// FieldError is one refused value of a request, named by its JSON path
// ("scans[2].num_snim").
type FieldError struct {
	Field string `json:"field"`
	Msg   string `json:"message"`
}

func (e FieldError) Error() string { return e.Field + ": " + e.Msg }

// FieldErrors are every refused value of one request.
type FieldErrors []FieldError

func (es FieldErrors) Error() string {
	msgs := make([]string, len(es))
	for i, e := range es {
		msgs[i] = e.Error()
	}
	return "reanalysis: " + strings.Join(msgs, "; ")
}

// Is makes FieldErrors match ErrRefused.
func (es FieldErrors) Is(target error) bool { return target == ErrRefused }

func (es *FieldErrors) add(field, format string, args ...any) {
	*es = append(*es, FieldError{Field: field, Msg: fmt.Sprintf(format, args...)})
}

// IsRefused reports whether err refuses the request as given.
func IsRefused(err error) bool {
	return errors.Is(err, ErrRefused) || errors.Is(err, report.ErrEntryRefused)
}
