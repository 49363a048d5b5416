package reanalysis

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"idk/collector/ingest"
	"idk/collector/report"
	"idk/internal/clock"
	"idk/protocol"
	"idk/protocol/codes"
)

const (
	bucketSessions = "reanalysis.sessions"
	bucketSeq      = "reanalysis.seq"
)

// Bounds of one request: a day's work of one analyst, not an archive.
const (
	maxScans      = 5000
	maxViolations = 1000
	maxTextRunes  = 2000 // as the entries' longest value
)

// Recorder selects scans and records re-analysis sessions. It is safe for
// concurrent use.
type Recorder struct {
	cfg Config
	loc *time.Location
	clk clock.Clock
	log *slog.Logger
	// link makes a hard link: os.Link, replaced in tests to see the copy.
	link func(oldname, newname string) error

	// mu lets one session lay out its files at a time: two sessions of
	// one day then never race for a name in the day's folder (the layout
	// would survive the race, as it never replaces a file, but the second
	// session would see a name taken that it could have shared).
	mu sync.Mutex
}

// New returns a Recorder. Root, StoreRoot, Files, Scans, Entries and DB
// are required.
func New(cfg Config) (*Recorder, error) {
	switch {
	case cfg.Root == "":
		return nil, errors.New("reanalysis: no root folder for the re-analysis tree")
	case cfg.StoreRoot == "":
		return nil, errors.New("reanalysis: no store root")
	case cfg.Files == nil || cfg.Scans == nil || cfg.Entries == nil || cfg.DB == nil:
		return nil, errors.New("reanalysis: Files, Scans, Entries and DB are required")
	}
	r := &Recorder{cfg: cfg, loc: cfg.Location, clk: clock.Or(cfg.Clock), log: cfg.Log, link: os.Link}
	if r.loc == nil {
		r.loc = time.Local
	}
	if r.log == nil {
		r.log = slog.Default()
	}
	return r, nil
}

// Query selects scans. KodTO (where the scans were made) and the days are
// required; the other fields narrow the selection when given.
type Query struct {
	KodTO    string
	From, To time.Time // [From, To)
	NumIDK   string
	Rez      string // table 1 REZ: "1" or "2"
	NumPR    string
	Limit    int // at most this many scans (0: maxScans)
}

// Select returns the scans q selects, in table 1's order; truncated is
// set when there were more than the limit.
func (r *Recorder) Select(q Query) (scans []Scan, truncated bool, err error) {
	if err := protocol.CheckKodTO(q.KodTO); err != nil {
		return nil, false, FieldErrors{{Field: "kod_to", Msg: err.Error()}}
	}
	limit := q.Limit
	if limit <= 0 || limit > maxScans {
		limit = maxScans
	}
	errEnough := errors.New("enough")
	err = r.cfg.Scans.Scans(q.KodTO, q.From, q.To, func(s Scan) error {
		if q.NumIDK != "" && s.NumIDK != q.NumIDK || q.Rez != "" && s.Rez != q.Rez || q.NumPR != "" && s.NumPR != q.NumPR {
			return nil
		}
		if len(scans) == limit {
			truncated = true
			return errEnough
		}
		scans = append(scans, s)
		return nil
	})
	if err != nil && !errors.Is(err, errEnough) {
		return nil, false, fmt.Errorf("reanalysis: select scans: %w", err)
	}
	return scans, truncated, nil
}

var (
	digitsRE = regexp.MustCompile(`^[0-9]+$`)
	kodRE    = regexp.MustCompile(`^[0-9]{8}$`)
)

// checked is a request after validation: the scans resolved to their ИДК.
type checked struct {
	req  Request
	day  time.Time // the re-analysis's date, midnight in loc
	scan map[string]ScanRef
}

// check validates req and resolves its scans; every refused value is in
// the FieldErrors returned.
func (r *Recorder) check(req Request) (*checked, error) {
	var errs FieldErrors
	text := func(field, v string, required bool) string {
		v = strings.TrimSpace(v)
		switch {
		case v == "":
			if required {
				errs.add(field, "required")
			}
		case !utf8.ValidString(v) || strings.IndexFunc(v, unicode.IsControl) >= 0:
			errs.add(field, "want one line of text")
		case utf8.RuneCountInString(v) > maxTextRunes:
			errs.add(field, "longer than %d characters", maxTextRunes)
		case strings.IndexFunc(v, unicode.IsLower) >= 0:
			// As the entries do (A4 rule 4): refused rather than changed, so
			// that what is published is what the analyst wrote.
			errs.add(field, "%q has lower-case letters: the report is written in upper case: %q", v, strings.ToUpper(v))
		}
		return v
	}
	req.FIO = text("fio", req.FIO, true)
	req.By = strings.TrimSpace(req.By)
	if req.By == "" {
		req.By = req.FIO
	}
	if req.LNP = strings.TrimSpace(req.LNP); !digitsRE.MatchString(req.LNP) {
		errs.add("lnp", "%q is not an ЛНП number: want digits", req.LNP)
	}
	if req.KodTO = strings.TrimSpace(req.KodTO); !kodRE.MatchString(req.KodTO) {
		errs.add("kod_to", "%q is not the re-analysing body's code: want 8 digits", req.KodTO)
	}
	today := dayOf(r.clk.Now(), r.loc)
	c := &checked{day: today, scan: map[string]ScanRef{}}
	if req.Date = strings.TrimSpace(req.Date); req.Date == "" {
		req.Date = report.FormatDate(today)
	} else if d, err := parseDate(req.Date, r.loc); err != nil {
		errs.add("date", "%v", err)
	} else if d.After(today) {
		errs.add("date", "%s is after today", req.Date)
	} else {
		c.day = d
	}
	for _, n := range []struct {
		field string
		v     int
	}{{"kol_vo_ppr", req.DraftProfiles}, {"kol_vo_upr", req.ApprovedProfiles}, {"kol_vo_epr", req.EffectiveProfiles}} {
		if n.v < 0 || n.v > 999999999 {
			errs.add(n.field, "%d is not a count", n.v)
		}
	}

	switch {
	case len(req.Scans) == 0:
		errs.add("scans", "required: the scans re-analysed")
	case len(req.Scans) > maxScans:
		errs.add("scans", "%d scans: at most %d in one session", len(req.Scans), maxScans)
	}
	for i, s := range req.Scans {
		if len(req.Scans) > maxScans {
			break
		}
		field := fmt.Sprintf("scans[%d]", i)
		ref, ok := r.resolve(field, s, &errs)
		if !ok {
			continue
		}
		if _, dup := c.scan[ref.String()]; dup {
			errs.add(field+".num_snim", "scan %s of ИДК %s is listed twice", ref.NumSnim, ref.NumIDK)
			continue
		}
		c.scan[ref.String()] = ref
		req.Scans[i] = ref
	}
	// Missing, substituted and violating scans are some of the scans
	// re-analysed: a finding on a scan nobody re-analysed is a mistake.
	among := func(field string, s ScanRef) (ScanRef, bool) {
		s.NumIDK, s.NumSnim = strings.TrimSpace(s.NumIDK), strings.TrimSpace(s.NumSnim)
		if s.NumSnim == "" {
			errs.add(field+".num_snim", "required")
			return s, false
		}
		var found []ScanRef
		for _, ref := range c.scan {
			if ref.NumSnim == s.NumSnim && (s.NumIDK == "" || s.NumIDK == ref.NumIDK) {
				found = append(found, ref)
			}
		}
		switch len(found) {
		case 1:
			return found[0], true
		case 0:
			errs.add(field+".num_snim", "scan %s is not among the scans re-analysed (\"scans\")", s.NumSnim)
		default:
			errs.add(field+".num_idk", "scan %s: more than one ИДК's scan has this number: give num_idk", s.NumSnim)
		}
		return s, false
	}
	for _, list := range []struct {
		name string
		refs []ScanRef
	}{{"missing", req.Missing}, {"substituted", req.Substituted}} {
		seen := map[string]bool{}
		for i, s := range list.refs {
			field := fmt.Sprintf("%s[%d]", list.name, i)
			ref, ok := among(field, s)
			if !ok {
				continue
			}
			if seen[ref.String()] {
				errs.add(field+".num_snim", "scan %s is listed twice", ref.NumSnim)
			}
			seen[ref.String()] = true
			list.refs[i] = ref
		}
	}
	if len(req.Violations) > maxViolations {
		errs.add("violations", "%d violations: at most %d in one session", len(req.Violations), maxViolations)
		req.Violations = nil
	}
	for i := range req.Violations {
		v := &req.Violations[i]
		field := fmt.Sprintf("violations[%d]", i)
		if ref, ok := among(field, v.ScanRef); ok {
			v.ScanRef = ref
		}
		v.Opisanie = text(field+".opisanie", v.Opisanie, true)
		v.Entry = ""
		v.Rez, v.DateSysR = strings.TrimSpace(v.Rez), strings.TrimSpace(v.DateSysR)
		rez, ok := codes.Rez6.Parse(v.Rez)
		if !ok {
			errs.add(field+".rez", "%q is not a code of REZ (table 6): want 0-14", v.Rez)
			continue
		}
		// Table 6: REZ 0 is measures only ordered, so no result date yet;
		// the date comes later as a correction of the entry.
		switch {
		case rez == 0 && v.DateSysR != "":
			errs.add(field+".date_sys_r", "must be empty for REZ 0 (verification measures only ordered, no results yet)")
		case rez != 0 && v.DateSysR == "":
			errs.add(field+".date_sys_r", "required for REZ %d: the date the results were received", rez)
		case rez != 0:
			if d, err := parseDate(v.DateSysR, r.loc); err != nil {
				errs.add(field+".date_sys_r", "%v", err)
			} else if d.Before(c.day) {
				errs.add(field+".date_sys_r", "%s is before the re-analysis (%s): results come after the violation is found", v.DateSysR, req.Date)
			}
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	c.req = req
	return c, nil
}

// resolve checks one scan of the request and finds its ИДК in the scan
// journal.
func (r *Recorder) resolve(field string, s ScanRef, errs *FieldErrors) (ScanRef, bool) {
	s.NumIDK, s.NumSnim = strings.TrimSpace(s.NumIDK), strings.TrimSpace(s.NumSnim)
	if err := protocol.CheckNumSnim(s.NumSnim); err != nil {
		errs.add(field+".num_snim", "%v", err)
		return s, false
	}
	if s.NumIDK != "" {
		if err := protocol.CheckNumIDK(s.NumIDK); err != nil {
			errs.add(field+".num_idk", "%v", err)
			return s, false
		}
	}
	id, ok, err := r.cfg.Scans.LookupScan(s.NumIDK, s.NumSnim)
	switch {
	case err != nil:
		errs.add(field+".num_snim", "cannot look it up: %v", err)
		return s, false
	case !ok && s.NumIDK == "":
		errs.add(field+".num_snim", "scan %s is not recorded, or more than one ИДК made an image of this number: give num_idk", s.NumSnim)
		return s, false
	case !ok:
		errs.add(field+".num_snim", "scan %s of ИДК %s is not recorded", s.NumSnim, s.NumIDK)
		return s, false
	}
	s.NumIDK = id.NumIDK
	return s, true
}

// Record validates a session, lays out its scans' RAW files in the item
// 11 tree, writes its rows of tables 5 and 6 and stores it.
//
// The order makes a failure safe to retry with the same request: the
// layout comes first and is idempotent (a file already laid out is
// recognised, not laid out again); the entries come next, table 6 before
// table 5, whose rules are all checked here beforehand; the session last.
func (r *Recorder) Record(req Request) (Session, error) {
	c, err := r.check(req)
	if err != nil {
		return Session{}, err
	}
	req = c.req
	day := c.day.Format("20060102")

	r.mu.Lock()
	folder, files, problems, err := r.layout(req.KodTO, day, req.Scans)
	r.mu.Unlock()
	if err != nil {
		return Session{}, err
	}

	s := Session{Request: req, At: r.clk.Now(), Folder: folder, Files: files, Problems: problems}
	fio, lnp := req.FIO, req.LNP
	if len(req.Violations) > 0 {
		rows := make([]map[string]string, len(req.Violations))
		for i, v := range req.Violations {
			rows[i] = map[string]string{
				"KOD_TO": req.KodTO, "DATE_SYS_V": req.Date, "NUM_SNIM": v.NumSnim, "OPISANIE": v.Opisanie,
				"REZ": v.Rez, "DATE_SYS_R": v.DateSysR, "FIO": fio, "LNP": lnp,
			}
		}
		entries, err := r.cfg.Entries.Add(6, rows, req.By)
		if err != nil {
			return Session{}, fmt.Errorf("reanalysis: table 6: %w", err)
		}
		for i := range s.Violations {
			s.Violations[i].Entry = entries[i].ID
		}
	}
	row5 := map[string]string{
		"KOD_TO": req.KodTO, "DATE_SYS": req.Date,
		"KOL_VO_PR_SNIM":  strconv.Itoa(len(req.Scans)),
		"KOL_VO_NAR":      strconv.Itoa(len(req.Violations)),
		"KOL_VO_OT_SNIM":  strconv.Itoa(len(req.Missing)),
		"KOL_VO_POD_SNIM": strconv.Itoa(len(req.Substituted)),
		"KOL_VO_PPR":      strconv.Itoa(req.DraftProfiles),
		"KOL_VO_UPR":      strconv.Itoa(req.ApprovedProfiles),
		"KOL_VO_EPR":      strconv.Itoa(req.EffectiveProfiles),
		"FIO":             fio, "LNP": lnp,
	}
	entries, err := r.cfg.Entries.Add(5, []map[string]string{row5}, req.By)
	if err != nil {
		// Table 6 is written: say which entries, so that nobody enters
		// them twice.
		var ids []string
		for _, v := range s.Violations {
			ids = append(ids, v.Entry)
		}
		r.log.Error("re-analysis: table 6 written, table 5 refused", "table6", ids, "err", err)
		return Session{}, fmt.Errorf("reanalysis: table 5 (table 6 entries %s are stored already): %w", strings.Join(ids, ", "), err)
	}
	s.Table5 = entries[0].ID

	err = r.cfg.DB.Update(func(tx ingest.Tx) error {
		v, err := tx.Get(bucketSeq, []byte("RA"))
		if err != nil {
			return err
		}
		var seq uint64
		if len(v) == 8 {
			seq = binary.BigEndian.Uint64(v)
		}
		seq++
		s.ID = fmt.Sprintf("RA-%06d", seq)
		b, err := json.Marshal(s)
		if err != nil {
			return err
		}
		if err := tx.Put(bucketSessions, []byte(s.ID), b); err != nil {
			return err
		}
		return tx.Put(bucketSeq, []byte("RA"), binary.BigEndian.AppendUint64(nil, seq))
	})
	if err != nil {
		return Session{}, fmt.Errorf("reanalysis: store the session (entries %s stored): %w", s.Table5, err)
	}
	s.At = s.At.In(r.loc)
	r.log.Info("re-analysis recorded", "id", s.ID, "kod_to", req.KodTO, "date", req.Date, "scans", len(req.Scans),
		"files", len(files), "problems", len(problems), "violations", len(req.Violations), "by", req.By)
	return s, nil
}

// Session returns the stored session id.
func (r *Recorder) Session(id string) (Session, error) {
	var s Session
	err := r.cfg.DB.View(func(tx ingest.Tx) error {
		v, err := tx.Get(bucketSessions, []byte(id))
		if err != nil {
			return err
		}
		if v == nil {
			return ErrNoSession
		}
		return json.Unmarshal(v, &s)
	})
	if err != nil {
		return Session{}, fmt.Errorf("reanalysis: session %s: %w", id, err)
	}
	s.At = s.At.In(r.loc)
	return s, nil
}

// Sessions returns the sessions of body kodTO ("" for every body) dated
// in [from, to], both days included, oldest first. Sessions are a few a
// day, so they are read whole rather than indexed.
func (r *Recorder) Sessions(kodTO string, from, to time.Time) ([]Session, error) {
	lo, hi := from.Format("20060102"), to.Format("20060102")
	var out []Session
	err := r.cfg.DB.View(func(tx ingest.Tx) error {
		return tx.Scan(bucketSessions, nil, nil, false, func(k, v []byte) error {
			var s Session
			if err := json.Unmarshal(v, &s); err != nil {
				return fmt.Errorf("session %s: %w", k, err)
			}
			d, err := parseDate(s.Date, r.loc)
			if err != nil {
				return fmt.Errorf("session %s: %w", k, err)
			}
			if key := d.Format("20060102"); (kodTO == "" || s.KodTO == kodTO) && key >= lo && key <= hi {
				s.At = s.At.In(r.loc)
				out = append(out, s)
			}
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("reanalysis: sessions: %w", err)
	}
	// By the day of the re-analysis (the folder's last part), then in the
	// order recorded.
	slices.SortStableFunc(out, func(a, b Session) int { return strings.Compare(path.Base(a.Folder), path.Base(b.Folder)) })
	return out, nil
}

// parseDate reads a DD.MM.YYYY calendar date as midnight in loc.
func parseDate(v string, loc *time.Location) (time.Time, error) {
	t, err := time.ParseInLocation("02.01.2006", v, loc)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is not a date: want DD.MM.YYYY, a real calendar date", v)
	}
	if y := t.Year(); y < 2000 || y > 2099 {
		return time.Time{}, fmt.Errorf("%q: the year %d is out of range 2000-2099", v, y)
	}
	return t, nil
}

func dayOf(t time.Time, loc *time.Location) time.Time {
	y, m, d := t.In(loc).Date()
	return time.Date(y, m, d, 0, 0, 0, 0, loc)
}
