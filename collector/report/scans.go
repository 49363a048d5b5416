package report

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"idk/collector/cases"
	"idk/collector/ingest"
	"idk/protocol/idkpb"
)

// The scan journal's buckets in the collector's index. A scan's key sorts
// by customs body, day, ИДК, scan time and image number: table 1's order,
// so a month of one customs body is one range scan.
const (
	// KOD_TO "/" YYYYMMDD "/" NUM_IDK "/" scan time (8 bytes) "/" NUM_SNIM -> scanValue (JSON)
	bucketScans = "report.scans"
	// NUM_IDK "/" NUM_SNIM -> the scan's key in bucketScans: a form revision
	// arriving later finds its scan.
	bucketScanSnim = "report.scans.snim"
	// NUM_SNIM "/" NUM_IDK -> "": LookupScan of an image number without its
	// ИДК reads one short range instead of every scan.
	bucketScanAny = "report.scans.any"
	// NUM_IDK "/" time (8 bytes, collector clock, as availability's keys)
	// -> scanSite (JSON): each StateChange that says where the ИДК stands,
	// so a scan takes the site in force at its own time, however late its
	// event comes.
	bucketScanSites = "report.scans.sites"
)

// ScanJournal keeps, per scan, what table 1 needs from the agent's events:
// it is the ingest.Consumer "report.scans", so its state is committed with
// the event log and filled once from the log when it is new.
//
// It is also the report.ScanLookup that officers' entries (tables 2 and 6)
// check scan numbers against. That reads the index outside of any event,
// so give it the index first with Use.
type ScanJournal struct {
	loc *time.Location
	v   atomic.Pointer[ingest.Viewer] // for LookupScan; see Use
}

// NewScanJournal returns a journal that dates scans (DATE_SYS, the key's
// day) in loc, or UTC if loc is nil.
func NewScanJournal(loc *time.Location) *ScanJournal {
	if loc == nil {
		loc = time.UTC
	}
	return &ScanJournal{loc: loc}
}

// Use gives the journal the index LookupScan reads. Call it before the
// journal serves lookups; until then LookupScan fails.
func (j *ScanJournal) Use(v ingest.Viewer) { j.v.Store(&v) }

// scanValue is what the journal stores of a scan. KOD_TO, NUM_IDK, the
// scan time and NUM_SNIM are its key. Small on purpose: a region makes
// hundreds of thousands of scans a month. NAIM_TO, NAIM_ZTK and DISL_IDK
// are those of the site the ИДК stood at when it made the scan (see
// identity).
type scanValue struct {
	NaimTO  string `json:"nt,omitempty"`
	NaimZTK string `json:"nz,omitempty"`
	TypeIDK uint32 `json:"ti,omitempty"`
	DislIDK uint32 `json:"di,omitempty"`
	// Seen: the time is the ScanSeen's. A row a form made first is moved
	// to the ScanSeen's time when that comes.
	Seen bool `json:"s,omitempty"`
	// Rev is the revision the form fields come from; 0 while no parsed
	// form came.
	Rev  uint32   `json:"r,omitempty"`
	Form scanForm `json:"f,omitzero"`
}

// scanSite is what the journal keeps of a StateChange's site.
type scanSite struct {
	KodTO   string `json:"kt,omitempty"`
	NaimTO  string `json:"nt,omitempty"`
	NaimZTK string `json:"nz,omitempty"`
	Disl    uint32 `json:"di,omitempty"`
}

// siteKey is the first possible key of numIDK's sites at or after at.
func siteKey(numIDK string, at time.Time) []byte {
	// The offset keeps times before 1970 in order as unsigned numbers.
	return binary.BigEndian.AppendUint64([]byte(numIDK+"/"), uint64(at.UnixNano())^(1<<63))
}

// recordSite keeps the site a StateChange of numIDK's at at says the ИДК
// stands at. A change without a site (the ИДК stands where it stood)
// keeps nothing: the site before it stays in force.
func (j *ScanJournal) recordSite(tx ingest.Tx, numIDK string, at time.Time, site *idkpb.Site) error {
	if numIDK == "" || site == nil {
		return nil
	}
	data, err := json.Marshal(scanSite{KodTO: site.GetKodTo(), NaimTO: site.GetNaimTo(), NaimZTK: site.GetNaimZtk(), Disl: site.GetDisl()})
	if err != nil {
		return fmt.Errorf("encode site: %w", err)
	}
	return tx.Put(bucketScanSites, siteKey(numIDK, at), data)
}

// siteAt is the latest site numIDK's changes gave at or before at (one
// reverse seek); ok is false when none did.
func (j *ScanJournal) siteAt(tx ingest.Tx, numIDK string, at time.Time) (site scanSite, ok bool, err error) {
	prefix := []byte(numIDK + "/")
	err = tx.Scan(bucketScanSites, prefix, siteKey(numIDK, at.Add(1)), true, func(k, v []byte) error {
		if err := json.Unmarshal(v, &site); err != nil {
			return fmt.Errorf("site %q: %w", k, err)
		}
		ok = true
		return errScanEnough
	})
	if errors.Is(err, errScanEnough) {
		err = nil
	}
	return site, ok, err
}

// identity sets v's NAIM_TO, NAIM_ZTK, TYPE_IDK and DISL_IDK for a scan of
// dev's at at: those of the site in force at at (siteAt), each field the
// site leaves empty taken from the hello.
//
// KOD_TO is always the hello's: the registry binds it to the agent's
// credentials, while a site is only what the agent reports, and a hostile
// agent must never put rows into another customs office's report. A site
// that names another KOD_TO is therefore not taken at all: its names
// would show another office's site under this office's KOD_TO. The scan
// keeps the hello's NAIM_TO, NAIM_ZTK and DISL_IDK then, as it does when
// no change gave a site yet.
func (j *ScanJournal) identity(tx ingest.Tx, dev *idkpb.Device, at time.Time, v *scanValue) error {
	v.NaimTO, v.NaimZTK, v.TypeIDK, v.DislIDK = dev.GetNaimTo(), dev.GetNaimZtk(), dev.GetTypeIdk(), dev.GetDislIdk()
	site, ok, err := j.siteAt(tx, scanNorm(dev.GetNumIdk()), at)
	if err != nil || !ok {
		return err
	}
	if k := scanNorm(site.KodTO); k != "" && k != scanNorm(dev.GetKodTo()) {
		return nil
	}
	if strings.TrimSpace(site.NaimTO) != "" {
		v.NaimTO = site.NaimTO
	}
	if strings.TrimSpace(site.NaimZTK) != "" {
		v.NaimZTK = site.NaimZTK
	}
	if site.Disl != 0 {
		v.DislIDK = site.Disl
	}
	return nil
}

// scanRow is a stored scan with its key's parts.
type scanRow struct {
	KodTO, NumIDK, NumSnim string
	At                     time.Time // the scan time, collector clock
	scanValue
}

func (j *ScanJournal) scanKey(kodTO, numIDK string, at time.Time, numSnim string) []byte {
	k := make([]byte, 0, len(kodTO)+len(numIDK)+len(numSnim)+20)
	k = append(k, kodTO...)
	k = append(k, '/')
	k = at.In(j.loc).AppendFormat(k, "20060102")
	k = append(k, '/')
	k = append(k, numIDK...)
	k = append(k, '/')
	// The offset keeps times before 1970 in order as unsigned numbers.
	k = binary.BigEndian.AppendUint64(k, uint64(at.UnixNano())^(1<<63))
	k = append(k, '/')
	return append(k, numSnim...)
}

// parseScanKey splits a key of bucketScans. KOD_TO and NUM_IDK hold no
// "/" (the registry and protocol.CheckNumIDK see to it); the time is
// read by its length, as its bytes may be anything.
func parseScanKey(k []byte) (r scanRow, err error) {
	bad := fmt.Errorf("malformed scan key %q", k)
	i := bytes.IndexByte(k, '/')
	if i < 0 || len(k) < i+10 || k[i+9] != '/' {
		return r, bad
	}
	r.KodTO, k = string(k[:i]), k[i+10:]
	i = bytes.IndexByte(k, '/')
	if i < 0 || len(k) < i+10 || k[i+9] != '/' {
		return r, bad
	}
	r.NumIDK = string(k[:i])
	r.At = time.Unix(0, int64(binary.BigEndian.Uint64(k[i+1:i+9])^(1<<63)))
	r.NumSnim = string(k[i+10:])
	return r, nil
}

func snimRef(numIDK, numSnim string) []byte { return []byte(numIDK + "/" + numSnim) }

// scanNorm is an identifier as the agent and the case engine write it: upper
// case, no spaces.
func scanNorm(s string) string { return strings.ToUpper(strings.Join(strings.Fields(s), "")) }

// Apply records a ScanSeen, a FormRevision or a StateChange's site of
// dev's.
//
// A StateChange that has a site is kept, by its collector time: the ИДК
// stands there from then on. A ScanSeen makes the scan's row, dated by
// its collector time, with KOD_TO and TYPE_IDK of the hello it came with
// and the site in force at that time (see identity). A FormRevision fills the form's
// fields when its revision is higher than the one the row has; a revision
// the agent could not parse (parse_error) changes nothing. A form whose
// scan was never seen makes the row itself, dated by the form's Created
// corrected by the agent's clock offset (or, without Created, by the
// event's time); a later ScanSeen moves it to its own time.
func (j *ScanJournal) Apply(tx ingest.Tx, dev *idkpb.Device, _ uint64, ev *idkpb.Event) error {
	var err error
	switch b := ev.Body.(type) {
	case *idkpb.Event_ScanSeen:
		err = j.seen(tx, dev, scanNorm(b.ScanSeen.GetNumSnim()), time.Unix(0, ev.CollectorTimeUnixNano))
	case *idkpb.Event_Form:
		err = j.form(tx, dev, ev, b.Form)
	case *idkpb.Event_State:
		err = j.recordSite(tx, scanNorm(dev.GetNumIdk()), time.Unix(0, ev.CollectorTimeUnixNano), b.State.GetSite())
	}
	if err != nil {
		return fmt.Errorf("report: scan journal: %w", err)
	}
	return nil
}

// row returns numSnim of numIDK's key and value, or a nil key.
func (j *ScanJournal) row(tx ingest.Tx, numIDK, numSnim string) ([]byte, *scanValue, error) {
	key, err := tx.Get(bucketScanSnim, snimRef(numIDK, numSnim))
	if err != nil || key == nil {
		return nil, nil, err
	}
	key = bytes.Clone(key)
	data, err := tx.Get(bucketScans, key)
	if err != nil {
		return nil, nil, err
	}
	if data == nil {
		return nil, nil, fmt.Errorf("scan %s of ИДК %s: listed under %q, which is not stored", numSnim, numIDK, key)
	}
	var v scanValue
	if err := json.Unmarshal(data, &v); err != nil {
		return nil, nil, fmt.Errorf("scan %s of ИДК %s: %w", numSnim, numIDK, err)
	}
	return key, &v, nil
}

func (j *ScanJournal) put(tx ingest.Tx, key []byte, v *scanValue) error {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode scan: %w", err)
	}
	return tx.Put(bucketScans, key, data)
}

// create stores a new row made at at, with the identity of that time,
// and its references.
func (j *ScanJournal) create(tx ingest.Tx, dev *idkpb.Device, numSnim string, at time.Time, v *scanValue) error {
	numIDK := scanNorm(dev.GetNumIdk())
	if err := j.identity(tx, dev, at, v); err != nil {
		return err
	}
	key := j.scanKey(scanNorm(dev.GetKodTo()), numIDK, at, numSnim)
	if err := j.put(tx, key, v); err != nil {
		return err
	}
	if err := tx.Put(bucketScanSnim, snimRef(numIDK, numSnim), key); err != nil {
		return err
	}
	return tx.Put(bucketScanAny, []byte(numSnim+"/"+numIDK), []byte{})
}

func (j *ScanJournal) seen(tx ingest.Tx, dev *idkpb.Device, numSnim string, at time.Time) error {
	numIDK := scanNorm(dev.GetNumIdk())
	if numSnim == "" || numIDK == "" {
		return nil
	}
	key, v, err := j.row(tx, numIDK, numSnim)
	if err != nil {
		return err
	}
	if v == nil {
		return j.create(tx, dev, numSnim, at, &scanValue{Seen: true})
	}
	if v.Seen {
		// The same folder seen again (the agent restarted on a new spool):
		// the scan was made when it was first seen.
		return nil
	}
	// The row a form made first: the scan's own time replaces the form's.
	if err := tx.Delete(bucketScans, key); err != nil {
		return err
	}
	v.Seen = true
	return j.create(tx, dev, numSnim, at, v)
}

func (j *ScanJournal) form(tx ingest.Tx, dev *idkpb.Device, ev *idkpb.Event, fr *idkpb.FormRevision) error {
	numIDK, numSnim := scanNorm(dev.GetNumIdk()), scanNorm(fr.GetNumSnim())
	if numSnim == "" || numIDK == "" {
		return nil
	}
	key, v, err := j.row(tx, numIDK, numSnim)
	if err != nil {
		return err
	}
	f := fr.GetForm()
	if fr.GetParseError() != "" {
		f = nil
	}
	if v == nil {
		at := time.Unix(0, ev.CollectorTimeUnixNano)
		if c := f.GetCreatedUnixNano(); c != 0 {
			// Created is by the scanner PC's clock; the event's two times
			// tell how far off the agent's clock is from the collector's.
			at = time.Unix(0, c+ev.CollectorTimeUnixNano-ev.TimeUnixNano)
		}
		v = &scanValue{}
		if f != nil {
			v.Rev, v.Form = fr.GetRevision(), t1FormFields(f)
		}
		return j.create(tx, dev, numSnim, at, v)
	}
	if f == nil || fr.GetRevision() <= v.Rev {
		return nil
	}
	v.Rev, v.Form = fr.GetRevision(), t1FormFields(f)
	return j.put(tx, key, v)
}

// LookupScan finds a recorded scan by its image number (report.ScanLookup).
// numIDK may be "" to search every ИДК; ok is then false when more than
// one ИДК made an image of that number. The identity is the row's, as
// table 1 has it: KOD_TO and TYPE_IDK of the hello, NAIM_TO, NAIM_ZTK and
// DISL_IDK of the site the ИДК stood at when it made the scan.
func (j *ScanJournal) LookupScan(numIDK, numSnim string) (ScanIdentity, bool, error) {
	vp := j.v.Load()
	if vp == nil {
		return ScanIdentity{}, false, errors.New("report: scan journal: lookup before Use gave it the index")
	}
	numIDK, numSnim = scanNorm(numIDK), scanNorm(numSnim)
	if numSnim == "" {
		return ScanIdentity{}, false, nil
	}
	var s ScanIdentity
	var ok bool
	err := (*vp).View(func(tx ingest.Tx) error {
		idk := numIDK
		if idk == "" {
			var idks []string
			prefix := []byte(numSnim + "/")
			err := tx.Scan(bucketScanAny, prefix, ingest.PrefixEnd(prefix), false, func(k, _ []byte) error {
				idks = append(idks, string(k[len(prefix):]))
				if len(idks) > 1 {
					return errScanEnough
				}
				return nil
			})
			if err != nil && !errors.Is(err, errScanEnough) {
				return err
			}
			if len(idks) != 1 {
				return nil
			}
			idk = idks[0]
		}
		key, v, err := j.row(tx, idk, numSnim)
		if err != nil || key == nil {
			return err
		}
		r, err := parseScanKey(key)
		if err != nil {
			return err
		}
		y, m, d := r.At.In(j.loc).Date()
		s = ScanIdentity{
			KodTO:   r.KodTO,
			NaimTO:  t1Text(v.NaimTO),
			NaimZTK: t1Text(v.NaimZTK),
			TypeIDK: int(v.TypeIDK),
			NumIDK:  r.NumIDK,
			DislIDK: int(v.DislIDK),
			Date:    time.Date(y, m, d, 0, 0, 0, 0, j.loc),
		}
		ok = true
		return nil
	})
	if err != nil {
		return ScanIdentity{}, false, fmt.Errorf("report: look up scan %s: %w", numSnim, err)
	}
	return s, ok, nil
}

// errScanEnough stops a range scan early; it is never returned.
var errScanEnough = errors.New("enough")

// table1Chunk is how many scans one read transaction of Table1 takes. The
// rows are written between transactions, so a slow writer (a month of
// rows into a workbook) never holds a read transaction open for long.
const table1Chunk = 1000

// Table1 streams table 1's rows for customs body kodTO: the scans whose
// DATE_SYS is in [from, to), ordered by DATE_SYS, NUM_IDK, scan time and
// NUM_SNIM. For each row it also passes the fields nobody supplied (nil
// when the row is complete). facts (the case engine) and roster may be
// nil: their fields are then empty. It stops at emit's first error and
// returns it.
func (j *ScanJournal) Table1(v ingest.Viewer, kodTO string, from, to time.Time, facts FactSource, roster Roster, emit func(Row, *Missing) error) error {
	if e, ok := facts.(*cases.Engine); ok && e == nil {
		facts = nil // a nil engine in the interface: no cases
	}
	kodTO = scanNorm(kodTO)
	if kodTO == "" || !from.Before(to) {
		return nil
	}
	// Keys hold the day in j.loc; the last day's keys are read whole and
	// the times filtered, as to need not be a midnight.
	start := []byte(kodTO + "/" + from.In(j.loc).Format("20060102"))
	end := ingest.PrefixEnd([]byte(kodTO + "/" + to.In(j.loc).Format("20060102")))
	for {
		var rows []scanRow
		var next []byte
		err := v.View(func(tx ingest.Tx) error {
			err := tx.Scan(bucketScans, start, end, false, func(k, data []byte) error {
				if len(rows) == table1Chunk {
					next = bytes.Clone(k)
					return errScanEnough
				}
				r, err := parseScanKey(k)
				if err != nil {
					return err
				}
				if r.KodTO != kodTO || r.At.Before(from) || !r.At.Before(to) {
					return nil
				}
				if err := json.Unmarshal(data, &r.scanValue); err != nil {
					return fmt.Errorf("scan %q: %w", k, err)
				}
				rows = append(rows, r)
				return nil
			})
			if errors.Is(err, errScanEnough) {
				return nil
			}
			return err
		})
		if err != nil {
			return fmt.Errorf("report: table 1: %w", err)
		}
		for i := range rows {
			r := &rows[i]
			var f cases.ScanFacts
			if facts != nil {
				if f, _, err = facts.ScanFacts(r.NumIDK, r.NumSnim); err != nil {
					return fmt.Errorf("report: table 1: scan %s of ИДК %s: %w", r.NumSnim, r.NumIDK, err)
				}
			}
			row, miss := row1(r, j.loc, f, roster)
			if err := emit(row, miss); err != nil {
				return err
			}
		}
		if next == nil {
			return nil
		}
		start = next
	}
}
