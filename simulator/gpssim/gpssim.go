// Package gpssim plays a GPS receiver: it writes the NMEA 0183 sentences a
// receiver would send along a scripted route, so that the GPS driver and
// the agent's relocation logic can be tested without a receiver or a drive.
package gpssim

import (
	"context"
	"fmt"
	"io"
	"math"
	"strings"
	"time"

	"idk/internal/clock"
)

// Point is a position in degrees, WGS 84, north and east positive.
type Point struct{ Lat, Lon float64 }

type legKind int

const (
	legStay legKind = iota
	legDrive
	legNoFix
)

// Leg is one part of a route; make it with Stay, Drive or NoFix.
type Leg struct {
	kind     legKind
	to       Point
	speedKmh float64
	dur      time.Duration
}

// Stay keeps the receiver where it is, with a fix, for d.
func Stay(d time.Duration) Leg { return Leg{kind: legStay, dur: d} }

// Drive moves the receiver in a straight line to to at speedKmh.
func Drive(to Point, speedKmh float64) Leg { return Leg{kind: legDrive, to: to, speedKmh: speedKmh} }

// NoFix makes the receiver lose its fix for d, standing where it is: what a
// scanner parked in a steel hangar or under a canopy sees.
func NoFix(d time.Duration) Leg { return Leg{kind: legNoFix, dur: d} }

// Config describes the simulated receiver and its route.
type Config struct {
	Start Point
	Route []Leg
	// Period between epochs; default 1s, as most receivers.
	Period time.Duration
	// Talker is the sentence prefix; default "GP" (GPS only), "GN" for a
	// multi-constellation receiver.
	Talker string
	// VTG adds a VTG sentence to every epoch, after RMC and before GGA.
	VTG bool
	// Satellites in use reported with a fix; default 8.
	Satellites int
	// CorruptEvery gives every n-th sentence a wrong checksum, as a noisy
	// line would; 0 for none.
	CorruptEvery int
	// Clock drives the epochs and stamps the sentences; nil means
	// clock.Real.
	Clock clock.Clock
}

// State is the receiver's situation at one moment of the route.
type State struct {
	Pos      Point
	SpeedKmh float64
	Course   float64 // degrees from true north
	Fix      bool
	Done     bool // the route is over; the receiver stands at its end
}

// Sim writes a route's sentences to a writer.
type Sim struct {
	w     io.Writer
	cfg   Config
	legs  []plannedLeg
	total time.Duration
	n     int // sentences written, for CorruptEvery
}

type plannedLeg struct {
	Leg
	from   Point
	dur    time.Duration
	course float64
}

// New checks the route and returns a simulator writing to w.
func New(w io.Writer, cfg Config) (*Sim, error) {
	if cfg.Period == 0 {
		cfg.Period = time.Second
	}
	if cfg.Period < 0 {
		return nil, fmt.Errorf("gpssim: period %v is negative", cfg.Period)
	}
	if cfg.Talker == "" {
		cfg.Talker = "GP"
	}
	if cfg.Satellites == 0 {
		cfg.Satellites = 8
	}
	cfg.Clock = clock.Or(cfg.Clock)
	s := &Sim{w: w, cfg: cfg}
	pos := cfg.Start
	for i, l := range cfg.Route {
		pl := plannedLeg{Leg: l, from: pos, dur: l.dur}
		switch l.kind {
		case legDrive:
			if l.speedKmh <= 0 {
				return nil, fmt.Errorf("gpssim: leg %d: speed %v km/h, want > 0", i, l.speedKmh)
			}
			metres := haversine(pos, l.to)
			pl.dur = time.Duration(metres / (l.speedKmh / 3.6) * float64(time.Second))
			pl.course = bearing(pos, l.to)
			pos = l.to
		default:
			if l.dur <= 0 {
				return nil, fmt.Errorf("gpssim: leg %d: duration %v, want > 0", i, l.dur)
			}
		}
		s.legs = append(s.legs, pl)
		s.total += pl.dur
	}
	return s, nil
}

// Duration is how long the route takes.
func (s *Sim) Duration() time.Duration { return s.total }

// At returns the state after elapsed time on the route.
func (s *Sim) At(elapsed time.Duration) State {
	pos := s.cfg.Start
	for _, l := range s.legs {
		if elapsed < l.dur {
			switch l.kind {
			case legDrive:
				f := float64(elapsed) / float64(l.dur)
				// Straight in latitude and longitude: for the few kilometres
				// of a relocation this is the great circle to within metres.
				p := Point{l.from.Lat + (l.to.Lat-l.from.Lat)*f, l.from.Lon + (l.to.Lon-l.from.Lon)*f}
				return State{Pos: p, SpeedKmh: l.speedKmh, Course: l.course, Fix: true}
			case legNoFix:
				return State{Pos: pos}
			}
			return State{Pos: pos, Fix: true}
		}
		elapsed -= l.dur
		if l.kind == legDrive {
			pos = l.to
		}
	}
	return State{Pos: pos, Fix: true, Done: true}
}

// Run writes one epoch every Period from the clock's present time, until
// the route is over (the last epoch is the route's end point) or ctx is
// done. It returns nil at the end of the route.
func (s *Sim) Run(ctx context.Context) error {
	start := s.cfg.Clock.Now()
	for {
		now := s.cfg.Clock.Now()
		st := s.At(now.Sub(start))
		if err := s.WriteEpoch(now, st); err != nil {
			return err
		}
		if st.Done {
			return nil
		}
		if err := clock.Sleep(ctx, s.cfg.Clock, s.cfg.Period); err != nil {
			return err
		}
	}
}

// WriteEpoch writes the sentences of one epoch, stamped t, in one Write.
func (s *Sim) WriteEpoch(t time.Time, st State) error {
	var b strings.Builder
	for _, body := range s.sentences(t.UTC(), st) {
		s.n++
		sum := checksum(body)
		if s.cfg.CorruptEvery > 0 && s.n%s.cfg.CorruptEvery == 0 {
			sum ^= 0x5a
		}
		fmt.Fprintf(&b, "$%s*%02X\r\n", body, sum)
	}
	if _, err := io.WriteString(s.w, b.String()); err != nil {
		return fmt.Errorf("gpssim: write: %w", err)
	}
	return nil
}

// sentences returns the epoch's sentence bodies, between '$' and '*'.
func (s *Sim) sentences(t time.Time, st State) []string {
	hms := t.Format("150405") + fmt.Sprintf(".%02d", t.Nanosecond()/1e7)
	date := t.Format("020106")
	tk := s.cfg.Talker
	knots := st.SpeedKmh / 1.852
	var out []string
	if !st.Fix {
		out = append(out, fmt.Sprintf("%sRMC,%s,V,,,,,,,%s,,,N", tk, hms, date))
		if s.cfg.VTG {
			out = append(out, tk+"VTG,,T,,M,,N,,K,N")
		}
		return append(out, fmt.Sprintf("%sGGA,%s,,,,,0,00,99.99,,M,,M,,", tk, hms))
	}
	lat, ns := coord(st.Pos.Lat, 2, "N", "S")
	lon, ew := coord(st.Pos.Lon, 3, "E", "W")
	out = append(out, fmt.Sprintf("%sRMC,%s,A,%s,%s,%s,%s,%.2f,%.1f,%s,,,A",
		tk, hms, lat, ns, lon, ew, knots, st.Course, date))
	if s.cfg.VTG {
		out = append(out, fmt.Sprintf("%sVTG,%.1f,T,,M,%.2f,N,%.2f,K,A", tk, st.Course, knots, st.SpeedKmh))
	}
	return append(out, fmt.Sprintf("%sGGA,%s,%s,%s,%s,%s,1,%02d,0.9,150.0,M,14.0,M,,",
		tk, hms, lat, ns, lon, ew, s.cfg.Satellites))
}

// coord formats degrees as NMEA (d)ddmm.mmmm with its hemisphere letter.
func coord(deg float64, degDigits int, pos, neg string) (string, string) {
	hemi := pos
	if deg < 0 {
		hemi, deg = neg, -deg
	}
	// Round once, in units of 1e-4 minute, so 59.99999' becomes the next
	// degree rather than "60.0000".
	units := int64(math.Round(deg * 60 * 1e4))
	d, rem := units/600000, units%600000
	return fmt.Sprintf("%0*d%02d.%04d", degDigits, d, rem/10000, rem%10000), hemi
}

func checksum(body string) byte {
	var c byte
	for i := 0; i < len(body); i++ {
		c ^= body[i]
	}
	return c
}

const earthRadius = 6371008.8 // metres, mean

func haversine(a, b Point) float64 {
	rad := math.Pi / 180
	dLat, dLon := (b.Lat-a.Lat)*rad, (b.Lon-a.Lon)*rad
	h := math.Sin(dLat/2)*math.Sin(dLat/2) + math.Cos(a.Lat*rad)*math.Cos(b.Lat*rad)*math.Sin(dLon/2)*math.Sin(dLon/2)
	return 2 * earthRadius * math.Asin(math.Sqrt(min(h, 1)))
}

// bearing is the initial course from a to b, degrees from true north.
func bearing(a, b Point) float64 {
	rad := math.Pi / 180
	y := math.Sin((b.Lon-a.Lon)*rad) * math.Cos(b.Lat*rad)
	x := math.Cos(a.Lat*rad)*math.Sin(b.Lat*rad) - math.Sin(a.Lat*rad)*math.Cos(b.Lat*rad)*math.Cos((b.Lon-a.Lon)*rad)
	return math.Mod(math.Atan2(y, x)/rad+360, 360)
}
