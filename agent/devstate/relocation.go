package devstate

import (
	"time"

	"idk/drivers/gps"
)

// GPS takes one fix of a mobile ИДК's receiver; a stationary ИДК ignores
// fixes. A fix without a valid position, or without a time, changes nothing:
// a relocation is never started or ended on bad data.
//
// Relocation is rule 1 of the package comment. In short: settled at a
// site, a fast fix starts RELOCATION, and a slow one beyond the site's
// radius makes the unit away (changes held). Away, moving on confirms a
// relocation since the unit was first seen away, and coming back cancels
// it. Relocating, a slow fix starts a dwell, and a fast one, or one farther
// than RelocationRadius from where the dwell started, ends it. A dwell of
// ArrivalDwell is an arrival, dated at its start.
func (e *Engine) GPS(f gps.Fix) []Change {
	if !e.cfg.Mobile || !f.Valid || f.Time.IsZero() {
		return nil
	}
	t := f.Time
	e.seen(t)
	e.advance(t) // first, so that Pending holds every change up to t
	s := &e.s
	fast := f.SpeedKmh > e.cfg.RelocationSpeed
	var out []Change
	switch {
	case s.Relocating || s.Away:
		s.FixLat, s.FixLon = f.Lat, f.Lon
		strayed := s.DwellStart.IsZero() || distance(s.DwellLat, s.DwellLon, f.Lat, f.Lon) > e.cfg.RelocationRadius
		switch {
		case s.Away && !fast && distance(s.Site.Lat, s.Site.Lon, f.Lat, f.Lon) <= e.radius(s.Site):
			// Back at the site without having been seen moving: a jump of
			// the receiver, or a short stroll. Nothing happened.
			out = e.flush()
		case fast:
			s.Away, s.Relocating = false, true
			s.DwellStart = time.Time{}
			s.Pending = trim(s.Pending, t)
		case strayed:
			// Slow, but not where it stopped: it drove on (a receiver that
			// reports no speed looks like this), and stops again here.
			s.Away, s.Relocating = false, true
			s.startDwell(f)
			s.Pending = trim(s.Pending, t)
		}
	case fast:
		s.Relocating, s.RelocationStart = true, t
		s.FixLat, s.FixLon = f.Lat, f.Lon
		s.Pending = []Change{s.Shadow}
	case distance(s.Site.Lat, s.Site.Lon, f.Lat, f.Lon) > e.radius(s.Site):
		s.Away, s.RelocationStart = true, t
		s.FixLat, s.FixLon = f.Lat, f.Lon
		s.startDwell(f)
		s.Pending = []Change{s.Shadow}
	}
	return append(out, e.settle(t)...)
}

func (s *Snapshot) startDwell(f gps.Fix) {
	s.DwellStart, s.DwellLat, s.DwellLon = f.Time, f.Lat, f.Lon
}

// stopMoving forgets a relocation or an absence, and what was held.
func (s *Snapshot) stopMoving() {
	s.Relocating, s.Away, s.Pending = false, false, nil
	s.RelocationStart, s.DwellStart = time.Time{}, time.Time{}
	s.DwellLat, s.DwellLon, s.FixLat, s.FixLon = 0, 0, 0, 0
}

// trim folds the held changes up to t into one: a dwell starting after t
// needs only the state at t and what follows.
func trim(p []Change, t time.Time) []Change {
	i := 0
	for j := range p {
		if p[j].Time.After(t) {
			break
		}
		i = j
	}
	return append(p[:0], p[i:]...)
}

// flush emits the held changes with the site the unit was last settled at
// and settles it there again.
func (e *Engine) flush() []Change {
	s := &e.s
	held := s.Pending
	s.stopMoving()
	var out []Change
	for _, c := range held {
		c.Site = s.Site
		out = append(out, e.emit(c)...)
	}
	return out
}

// arrive ends a relocation or an absence whose dwell has lasted: the unit
// stands at the site picked by its last position since the dwell started,
// and the held changes are replayed with that site, the one in force at the
// dwell's start dated at it.
func (e *Engine) arrive() []Change {
	s := &e.s
	at := s.DwellStart
	s.Site = e.pick(s.FixLat, s.FixLon)
	held := s.Pending
	s.stopMoving()
	held = trim(held, at)
	var out []Change
	for i, c := range held {
		if i == 0 {
			c.Time = at
		}
		c.Site = s.Site
		out = append(out, e.emit(c)...)
	}
	return out
}

// pick returns the site at lat, lon: the nearest of the known sites, home
// and the site left that lies within its radius, or else a place outside
// any checkpoint, run by the customs office of the site left.
func (e *Engine) pick(lat, lon float64) Site {
	best, bestDist := Site{}, -1.0
	candidates := append([]Site{e.s.Site, e.cfg.Home}, e.cfg.Sites...)
	for _, c := range candidates {
		d := distance(c.Lat, c.Lon, lat, lon)
		if d <= e.radius(c) && (bestDist < 0 || d < bestDist) {
			best, bestDist = c, d
		}
	}
	if bestDist >= 0 {
		return best
	}
	return Site{Name: OutsideName, KodTO: e.s.Site.KodTO, NaimTO: e.s.Site.NaimTO, Disl: OutsideDisl, Lat: lat, Lon: lon}
}

func (e *Engine) radius(s Site) float64 {
	if s.Radius > 0 {
		return s.Radius
	}
	return e.cfg.RelocationRadius
}

func distance(lat1, lon1, lat2, lon2 float64) float64 {
	return gps.Distance(gps.Fix{Lat: lat1, Lon: lon1}, gps.Fix{Lat: lat2, Lon: lon2})
}
