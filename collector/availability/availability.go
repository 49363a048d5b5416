// Package availability accounts for each ИДК's time: it turns the agents'
// StateChange events into the availability part of table 3 of the daily
// report (TIME_JOB, TIME_WAIT, TIME_OPER, TIME_TEH, TIME_NEPAB,
// TIME_PEREDISL), keeps the inoperable intervals as incidents staff must
// acknowledge, and exposes both over Prometheus and HTTP.
//
// A StateChange says "from this (collector-corrected) time on, the ИДК is in
// this state, until the next change". Rows is the pure computation, usable
// for any day from stored events; Tracker is its live, in-memory side.
package availability

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"idk/collector/registry"
	"idk/protocol/idkpb"
)

// Device is an ИДК's identity from the agent's hello (registry.Device).
// Its site fields are the defaults for a change that carries no Site.
type Device = registry.Device

// Change is one StateChange: from Time on, the ИДК is in State until the
// next change. Time is the event's time already corrected by the
// collector's measured clock offset.
type Change struct {
	Time   time.Time
	State  idkpb.DeviceState
	Cause  idkpb.InoperableCause // for INOPERABLE
	Note   string                // a note staff gave with a declared state
	Source string                // controller, staff, gps, agent
	// Site is where the ИДК stands from Time on. Nil means "where it stood
	// before": the last Site given, or the Device's identity if none was.
	Site *idkpb.Site
}

// ChangeFromProto converts a StateChange event whose corrected time is at.
func ChangeFromProto(at time.Time, sc *idkpb.StateChange) Change {
	return Change{
		Time:   at,
		State:  sc.GetState(),
		Cause:  sc.GetCause(),
		Note:   sc.GetNote(),
		Source: sc.GetSource(),
		Site:   sc.GetSite(),
	}
}

// Row is one row of table 3: its location section and its availability
// time section. The object-count sections are filled elsewhere.
type Row struct {
	DATE          string `json:"DATE"`          // DD.MM.YYYY
	PRIZ_PEREDISL int    `json:"PRIZ_PEREDISL"` // 1: the ИДК was relocated that day
	TYPE_IDK      uint32 `json:"TYPE_IDK"`
	NUM_IDK       string `json:"NUM_IDK"`
	KOD_M_D       string `json:"KOD_M_D"`
	NAIM_M_D      string `json:"NAIM_M_D"`
	NAIM_ZTK_M_D  string `json:"NAIM_ZTK_M_D"`
	DISL_P        uint32 `json:"DISL_P"`
	TIME_JOB      string `json:"TIME_JOB"` // "H,MM"; WORKING + WAITING
	TIME_WAIT     string `json:"TIME_WAIT"`
	TIME_OPER     string `json:"TIME_OPER"`
	TIME_TEH      string `json:"TIME_TEH"`
	TIME_NEPAB    string `json:"TIME_NEPAB"`
	TIME_PEREDISL string `json:"TIME_PEREDISL"`
	// Seconds holds the row's exact time per state, keyed by the state's
	// name (WORKING, WAITING, OPERATIONS, MAINTENANCE, INOPERABLE,
	// RELOCATION, IDLE, UNKNOWN), so that a check can add them up and a
	// reader can see the IDLE and UNKNOWN time no table field shows.
	Seconds map[string]int64 `json:"seconds"`
}

// FormatHM writes d as table 3 writes durations: hours, a comma, two digits
// of minutes ("13,50" is 13 h 50 min). It rounds to the nearest minute,
// half a minute up, so that a day of rows adds up to within a minute of the
// exact seconds instead of drifting down by truncation.
func FormatHM(d time.Duration) string {
	m := int64(d.Round(time.Minute) / time.Minute) // Round: halves away from zero
	sign := ""
	if m < 0 {
		sign, m = "-", -m
	}
	return fmt.Sprintf("%s%d,%02d", sign, m/60, m%60)
}

// stateNames are the keys of Row.Seconds, in table order.
var stateNames = []string{"WORKING", "WAITING", "OPERATIONS", "MAINTENANCE", "INOPERABLE", "RELOCATION", "IDLE", "UNKNOWN"}

// stateName names s for Row.Seconds and, lower-cased, for metric labels.
// UNSPECIFIED and any state newer than this code are UNKNOWN: the
// collector cannot tell what that time was, so it counts nowhere.
func stateName(s idkpb.DeviceState) string {
	switch s {
	case idkpb.DeviceState_DEVICE_STATE_WORKING:
		return "WORKING"
	case idkpb.DeviceState_DEVICE_STATE_WAITING:
		return "WAITING"
	case idkpb.DeviceState_DEVICE_STATE_OPERATIONS:
		return "OPERATIONS"
	case idkpb.DeviceState_DEVICE_STATE_MAINTENANCE:
		return "MAINTENANCE"
	case idkpb.DeviceState_DEVICE_STATE_INOPERABLE:
		return "INOPERABLE"
	case idkpb.DeviceState_DEVICE_STATE_RELOCATION:
		return "RELOCATION"
	case idkpb.DeviceState_DEVICE_STATE_IDLE:
		return "IDLE"
	}
	return "UNKNOWN"
}

// counted are the states some table 3 field counts.
var counted = []string{"WORKING", "WAITING", "OPERATIONS", "MAINTENANCE", "INOPERABLE", "RELOCATION"}

// site is where the ИДК stands: the location fields of a row.
type site struct {
	naimZTK, kodTO, naimTO string
	disl                   uint32
	lat, lon               float64
	hasPos                 bool
}

// key groups rows (rule 17): one row per ПП/ЗТК of one customs body.
func (s site) key() string { return s.naimZTK + "\x00" + s.kodTO }

func deviceSite(dev Device) site {
	return site{
		naimZTK: norm(dev.NaimZTK),
		kodTO:   norm(dev.KodTO),
		naimTO:  norm(dev.NaimTO),
		disl:    dev.DislIDK,
	}
}

// siteOf resolves a change's Site. Empty fields fall back to the device's
// identity, so that a Site carrying only coordinates does not produce a
// row without a name.
func siteOf(dev Device, s *idkpb.Site) site {
	r := deviceSite(dev)
	if v := norm(s.GetNaimZtk()); v != "" {
		r.naimZTK = v
	}
	if v := norm(s.GetKodTo()); v != "" {
		r.kodTO = v
	}
	if v := norm(s.GetNaimTo()); v != "" {
		r.naimTO = v
	}
	if s.GetDisl() != 0 {
		r.disl = s.GetDisl()
	}
	if s.GetLat() != 0 || s.GetLon() != 0 {
		r.lat, r.lon, r.hasPos = s.GetLat(), s.GetLon(), true
	}
	return r
}

// norm applies A4 rule 4 (text in upper case) and drops stray spaces, so
// that "пкт " and "ПКТ" are one site.
func norm(s string) string { return strings.ToUpper(strings.TrimSpace(s)) }

// span is one interval of the timeline: [start, end) in one state.
type span struct {
	start, end time.Time
	state      idkpb.DeviceState
	cause      idkpb.InoperableCause
	note       string
	site       site
}

// sortChanges returns changes in time order. The sort is stable: two
// changes with the same time keep their arrival order, and the later one
// wins (the first makes a zero-length interval).
func sortChanges(changes []Change) []Change {
	s := slices.Clone(changes)
	slices.SortStableFunc(s, func(a, b Change) int { return a.Time.Compare(b.Time) })
	return s
}

// timeline turns sorted changes into intervals, the last one open until
// now. Changes at or after now have not happened yet and are left out, so
// every interval ends by now.
func timeline(dev Device, sorted []Change, now time.Time) []span {
	cur := deviceSite(dev)
	var out []span
	for i, c := range sorted {
		if !c.Time.Before(now) {
			break
		}
		if c.Site != nil {
			cur = siteOf(dev, c.Site)
		}
		end := now
		if i+1 < len(sorted) && sorted[i+1].Time.Before(now) {
			end = sorted[i+1].Time
		}
		out = append(out, span{start: c.Time, end: end, state: c.State, cause: c.Cause, note: c.Note, site: cur})
	}
	return out
}

// dayBounds is the local calendar day of day in loc: [00:00, next 00:00).
// The next midnight comes from the calendar, not from adding 24 hours, so
// a day with a clock change is 23 or 25 hours long.
func dayBounds(day time.Time, loc *time.Location) (time.Time, time.Time) {
	y, m, d := day.In(loc).Date()
	return time.Date(y, m, d, 0, 0, 0, 0, loc), time.Date(y, m, d+1, 0, 0, 0, 0, loc)
}

// group collects one site's time within the day.
type group struct {
	site    site
	dur     map[string]time.Duration
	working []Span // WORKING or WAITING, in time order, adjacent ones joined
}

// Rows computes table 3's availability rows of one ИДК for the local
// calendar day (in loc) that contains day. changes may be in any order;
// they should include the last change before the day, which says what
// state the day began in. The interval of the last change runs until now.
//
// One row per site (NAIM_ZTK_M_D and KOD_M_D) in order of first
// appearance that day (rule 17); an interval counts in the row of the site
// it started at, so relocation time counts where the ИДК left from. Sites
// where the ИДК had only IDLE or UNKNOWN time get no row: it was not
// operated there. A day without any counted time gives the rule 18 row.
func Rows(dev Device, changes []Change, day time.Time, loc *time.Location, now time.Time) []Row {
	drs := dayRows(dev, changes, day, loc, now)
	rows := make([]Row, len(drs))
	for i, d := range drs {
		rows[i] = d.Row
	}
	return rows
}

// dayRows is Rows with, per row, the spans the ИДК was working at the
// row's site: one pass over one timeline gives both, so TIME_JOB and the
// spans TIME_WAIT is measured within cannot disagree.
func dayRows(dev Device, changes []Change, day time.Time, loc *time.Location, now time.Time) []DayRow {
	if loc == nil {
		loc = time.Local
	}
	from, to := dayBounds(day, loc)
	spans := timeline(dev, sortChanges(changes), now)

	var groups []*group
	index := map[string]*group{}
	uncounted := map[string]time.Duration{} // IDLE and UNKNOWN time, for the rule 18 row
	// The rule 18 row names the site of the first interval that touches
	// the day, or else the last one known before the day ended.
	zeroSite, zeroFound := deviceSite(dev), false
	for _, sp := range spans {
		if !zeroFound && sp.start.Before(to) {
			zeroSite, zeroFound = sp.site, sp.end.After(from)
		}
		start, end := maxTime(sp.start, from), minTime(sp.end, to)
		if !end.After(start) {
			continue
		}
		g := index[sp.site.key()]
		if g == nil {
			g = &group{site: sp.site, dur: map[string]time.Duration{}}
			index[sp.site.key()] = g
			groups = append(groups, g)
		}
		name := stateName(sp.state)
		g.dur[name] += end.Sub(start)
		switch name {
		case "IDLE", "UNKNOWN":
			uncounted[name] += end.Sub(start)
		case "WORKING", "WAITING":
			// In loc, as the rows' dates are, for whoever shows them.
			if n := len(g.working); n > 0 && g.working[n-1].End.Equal(start) {
				g.working[n-1].End = end.In(loc)
			} else {
				g.working = append(g.working, Span{Start: start.In(loc), End: end.In(loc)})
			}
		}
	}

	date := from.Format("02.01.2006")
	relocated := 0
	for _, g := range groups {
		if g.dur["RELOCATION"] > 0 {
			relocated = 1
		}
	}
	var rows []DayRow
	for _, g := range groups {
		if !anyCounted(g.dur) {
			continue
		}
		rows = append(rows, DayRow{Row: Row{
			DATE:          date,
			PRIZ_PEREDISL: relocated,
			TYPE_IDK:      dev.TypeIDK,
			NUM_IDK:       norm(dev.NumIDK),
			KOD_M_D:       g.site.kodTO,
			NAIM_M_D:      g.site.naimTO,
			NAIM_ZTK_M_D:  g.site.naimZTK,
			DISL_P:        g.site.disl,
			// Summed before rounding, so TIME_JOB is exact to the minute
			// rather than the sum of two rounded values.
			TIME_JOB:      FormatHM(g.dur["WORKING"] + g.dur["WAITING"]),
			TIME_WAIT:     FormatHM(g.dur["WAITING"]),
			TIME_OPER:     FormatHM(g.dur["OPERATIONS"]),
			TIME_TEH:      FormatHM(g.dur["MAINTENANCE"]),
			TIME_NEPAB:    FormatHM(g.dur["INOPERABLE"]),
			TIME_PEREDISL: FormatHM(g.dur["RELOCATION"]),
			Seconds:       seconds(g.dur),
		}, Working: g.working})
	}
	if len(rows) == 0 {
		rows = []DayRow{{Row: zeroRow(date, norm(dev.NumIDK), zeroSite.kodTO, uncounted), Zero: true}}
	}
	return rows
}

// zeroRow is rule 18's row for a day the ИДК was not operated: only the
// date, the customs body's code and the ИДК's number are filled, and every
// other field is 0 — text fields too, as the rule says "all other fields".
// Seconds still shows the IDLE and UNKNOWN time.
func zeroRow(date, numIDK, kodTO string, uncounted map[string]time.Duration) Row {
	return Row{
		DATE:          date,
		NUM_IDK:       numIDK,
		KOD_M_D:       kodTO,
		NAIM_M_D:      "0",
		NAIM_ZTK_M_D:  "0",
		TIME_JOB:      FormatHM(0),
		TIME_WAIT:     FormatHM(0),
		TIME_OPER:     FormatHM(0),
		TIME_TEH:      FormatHM(0),
		TIME_NEPAB:    FormatHM(0),
		TIME_PEREDISL: FormatHM(0),
		Seconds:       seconds(uncounted),
	}
}

func anyCounted(dur map[string]time.Duration) bool {
	for _, n := range counted {
		if dur[n] > 0 {
			return true
		}
	}
	return false
}

// seconds gives every state a key, zero or not, so that readers see one
// shape.
func seconds(dur map[string]time.Duration) map[string]int64 {
	m := make(map[string]int64, len(stateNames))
	for _, n := range stateNames {
		m[n] = int64(dur[n].Round(time.Second) / time.Second)
	}
	return m
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
