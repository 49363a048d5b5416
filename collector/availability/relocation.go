package availability

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"idk/collector/ingest"
	"idk/protocol/idkpb"
)

// Place is where an ИДК stood: the location fields of table 3.
type Place struct {
	KodTO   string // KOD_M_D
	NaimTO  string // NAIM_M_D
	NaimZTK string // NAIM_ZTK_M_D
	Disl    uint32 // DISL_P
	Lat     float64
	Lon     float64
}

func placeOf(s site) Place {
	return Place{KodTO: s.kodTO, NaimTO: s.naimTO, NaimZTK: s.naimZTK, Disl: s.disl, Lat: s.lat, Lon: s.lon}
}

// Relocation is one relocation of an ИДК (items 28-30): a run of
// RELOCATION time between two places.
type Relocation struct {
	NumIDK  string
	TypeIDK uint32
	// From is where the ИДК left: where it stood when the run began.
	From Place
	// To is where it arrived: the place of the first change after the
	// run. Zero while Ongoing.
	To    Place
	Start time.Time // in the zone asked for
	End   time.Time // zero while Ongoing
	// Ongoing marks a relocation with no later change stored yet.
	Ongoing bool
	// Region is the РТУ (or customs office directly under the FTS) of
	// the place left, by RegionOf.
	Region string
	// Scope says who decides the relocation: 28 within one customs
	// office, 29 within one РТУ, 30 between РТУ (the item numbers); 0
	// while Ongoing.
	Scope int
}

// Duration is End - Start, or 0 while the relocation goes on.
func (r Relocation) Duration() time.Duration {
	if r.Ongoing {
		return 0
	}
	return r.End.Sub(r.Start)
}

// CalendarDays is the number of calendar days (in the zone of Start) the
// relocation touches, which decides the form of the decision (item 31):
// more than 3, an order; up to 3, a resolution on a memo. 0 while Ongoing.
func (r Relocation) CalendarDays() int {
	if r.Ongoing {
		return 0
	}
	y1, m1, d1 := r.Start.Date()
	end := r.End.In(r.Start.Location())
	if end.Equal(time.Date(end.Year(), end.Month(), end.Day(), 0, 0, 0, 0, end.Location())) && end.After(r.Start) {
		end = end.Add(-time.Nanosecond) // arriving at midnight does not touch the next day
	}
	y2, m2, d2 := end.Date()
	a := time.Date(y1, m1, d1, 12, 0, 0, 0, time.UTC)
	b := time.Date(y2, m2, d2, 12, 0, 0, 0, time.UTC)
	return int(b.Sub(a)/(24*time.Hour)) + 1
}

// RegionOf is the region a customs body's code (KOD_TO, 8 digits) belongs
// to: the code of its РТУ, the first three digits followed by zeros
// ("10216100" is in "10200000"). Codes beginning "100" belong to bodies
// directly under the FTS (the Калининградская областная таможня,
// "10012000"), which act as their own region (item 28 names it beside the
// РТУ): their first five digits followed by zeros. This reading of the
// codes is inferred from the reference's examples (§5.3), not stated by
// the source. A code that is not 8 digits is its own region.
func RegionOf(kodTO string) string {
	if len(kodTO) != 8 || strings.Trim(kodTO, "0123456789") != "" {
		return kodTO
	}
	if strings.HasPrefix(kodTO, "100") {
		return kodTO[:5] + "000"
	}
	return kodTO[:3] + "00000"
}

// officeOf is the customs office (таможня) of a code: its first five
// digits followed by zeros (inferred, as RegionOf).
func officeOf(kodTO string) string {
	if len(kodTO) != 8 {
		return kodTO
	}
	return kodTO[:5] + "000"
}

// scopeOf is the item that gives who decides a relocation from a to b.
func scopeOf(a, b Place) int {
	switch {
	case officeOf(a.KodTO) == officeOf(b.KodTO):
		return 28
	case RegionOf(a.KodTO) == RegionOf(b.KodTO):
		return 29
	}
	return 30
}

// Relocations lists every relocation of every ИДК the journal knows that
// overlaps [from, to), from the stored changes: a run of consecutive
// RELOCATION changes is one relocation, from the place the ИДК stood at
// when it began to the place of the first change after it. A relocation
// over the period's edge is listed whole, with its real start and end, in
// both periods it touches. The list is in order of region, NUM_IDK and
// start; times are in loc.
//
// It reads, per ИДК, the changes in the period and, at each edge, only
// as far as the run of RELOCATION changes crossing it.
func Relocations(v ingest.Viewer, from, to time.Time, loc *time.Location) ([]Relocation, error) {
	if loc == nil {
		loc = time.Local
	}
	var out []Relocation
	err := eachDevice(v, func(tx ingest.Tx, numIDK string) ([]Change, error) { return relocationChanges(tx, numIDK, from, to) }, func(d Device, changes []Change) {
		for _, r := range relocationsOf(d, changes, loc) {
			if r.Start.Before(to) && (r.Ongoing || r.End.After(from)) {
				out = append(out, r)
			}
		}
	})

	if err != nil {
		return nil, fmt.Errorf("availability: relocations from %s to %s: %w", from.In(loc).Format("02.01.2006"), to.In(loc).Format("02.01.2006"), err)
	}
	slices.SortStableFunc(out, func(a, b Relocation) int {
		if c := strings.Compare(a.Region, b.Region); c != 0 {
			return c
		}
		if c := strings.Compare(a.NumIDK, b.NumIDK); c != 0 {
			return c
		}
		return a.Start.Compare(b.Start)
	})
	return out, nil
}

// relocationChanges reads the changes of numIDK that decide its
// relocations overlapping [from, to): backwards from from, the RELOCATION
// run in force there and the change before it (where the ИДК left from);
// the period's changes; and forwards from to, the run crossing it and the
// change that ends it (where the ИДК arrived).
func relocationChanges(tx ingest.Tx, numIDK string, from, to time.Time) ([]Change, error) {
	return runChanges(tx, numIDK, from, to, func(c Change) bool { return c.State == idkpb.DeviceState_DEVICE_STATE_RELOCATION }, true)
}

// relocationsOf finds the relocations in one ИДК's changes. The place
// left is where the ИДК stood as the run began: the site the first
// RELOCATION change carries (the agent sends the site it leaves), or,
// without one, the last site before. The place reached is the site in
// force at the first change after the run.
func relocationsOf(dev Device, changes []Change, loc *time.Location) []Relocation {
	var out []Relocation
	cur := deviceSite(dev)
	var open *Relocation
	for _, c := range sortChanges(changes) {
		if c.Site != nil {
			cur = siteOf(dev, c.Site)
		}
		isReloc := c.State == idkpb.DeviceState_DEVICE_STATE_RELOCATION
		switch {
		case isReloc && open == nil:
			from := placeOf(cur)
			open = &Relocation{NumIDK: norm(dev.NumIDK), TypeIDK: dev.TypeIDK, From: from, Start: c.Time.In(loc),
				Region: RegionOf(from.KodTO)}
		case !isReloc && open != nil:
			open.To, open.End = placeOf(cur), c.Time.In(loc)
			open.Scope = scopeOf(open.From, open.To)
			out = append(out, *open)
			open = nil
		}
	}
	if open != nil {
		open.Ongoing = true // Scope stays 0: where it goes is not known yet
		out = append(out, *open)
	}
	return out
}
