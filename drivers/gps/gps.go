// Package gps reads position fixes from an NMEA 0183 receiver, so that the
// agent can tell where the scanner stands and when it was relocated.
package gps

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"strings"
	"sync/atomic"
	"time"

	nmea "github.com/adrianmo/go-nmea"
	"go.bug.st/serial"
)

// Quality is the GGA fix quality indicator.
type Quality int

const (
	QualityInvalid   Quality = 0 // no fix
	QualityGPS       Quality = 1 // autonomous fix
	QualityDGPS      Quality = 2 // differential
	QualityPPS       Quality = 3 // precise positioning service
	QualityRTK       Quality = 4 // real-time kinematic, fixed integers
	QualityFloatRTK  Quality = 5 // real-time kinematic, float
	QualityEstimated Quality = 6 // dead reckoning
)

func (q Quality) String() string {
	switch q {
	case QualityInvalid:
		return "invalid"
	case QualityGPS:
		return "gps"
	case QualityDGPS:
		return "dgps"
	case QualityPPS:
		return "pps"
	case QualityRTK:
		return "rtk"
	case QualityFloatRTK:
		return "float-rtk"
	case QualityEstimated:
		return "estimated"
	}
	return fmt.Sprintf("quality(%d)", int(q))
}

// Fix is what the receiver said about one moment (one NMEA epoch).
//
// When Valid is false the receiver has no fix, and Lat, Lon, SpeedKmh and
// Course are zero: they mean nothing and must not be read as a position in
// the Gulf of Guinea.
type Fix struct {
	// Time is the receiver's UTC time of the fix. It is zero while the
	// receiver has not sent a date (an RMC sentence) yet.
	Time       time.Time
	Lat, Lon   float64 // degrees, WGS 84, north and east positive
	SpeedKmh   float64 // speed over ground
	Course     float64 // degrees from true north
	Quality    Quality
	Satellites int     // satellites in use, from GGA; 0 if not reported
	HDOP       float64 // horizontal dilution of precision, from GGA
	Valid      bool
}

// Stats counts the sentences a Reader has seen.
type Stats struct {
	Used    int64 // RMC, GGA and VTG sentences that went into fixes
	Ignored int64 // well-formed sentences of other types (GSV, GSA, ...)
	Bad     int64 // checksum errors, garbled or over-long lines: skipped
}

// Kinds of timed sentence in an epoch, as bits.
const (
	kindRMC = 1 << iota
	kindGGA
)

// epoch gathers the sentences a receiver sends for one moment.
type epoch struct {
	time    nmea.Time
	kinds   int // kinds seen for this time, late ones included
	rmc     *nmea.RMC
	gga     *nmea.GGA
	vtg     *nmea.VTG
	emitted bool
}

var errIgnored = errors.New("sentence type not used")

// maxLine bounds a line; NMEA allows 82 characters, and anything much
// longer is line noise, not a sentence.
const maxLine = 1024

// Reader turns a stream of NMEA sentences into fixes. Bad sentences are
// counted and skipped; only an error of the underlying reader ends it.
//
// A receiver sends several sentences per fix (RMC, GGA, VTG, in an order
// of its own), all stamped with the same time. The Reader learns which of
// them the receiver sends from the first complete epoch and then returns a
// fix as soon as an epoch's RMC and GGA are in; before that, or when a
// sentence is lost, it returns the epoch when the next one begins. Speed and
// course come from RMC; from VTG only for receivers that send no RMC, and
// then they may lag one epoch, since VTG carries no time.
type Reader struct {
	br     *bufio.Reader
	parser nmea.SentenceParser
	log    *slog.Logger

	cur     *epoch
	expect  int       // kinds the receiver sent in its last epoch
	pending *nmea.VTG // a VTG that came before its epoch's timed sentences
	date    nmea.Date // last date from RMC, for epochs without RMC
	queue   []Fix
	err     error

	used, ignored, bad atomic.Int64
}

// NewReader reads sentences from r. logger may be nil.
func NewReader(r io.Reader, logger *slog.Logger) *Reader {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	rd := &Reader{br: bufio.NewReaderSize(r, maxLine), log: logger}
	rd.parser.OnBaseSentence = func(s *nmea.BaseSentence) error {
		// Checked after the checksum, so a corrupt GSV still counts as bad;
		// skipping the full parse of sentences nobody uses keeps their
		// vendor quirks from counting as bad.
		switch s.Type {
		case nmea.TypeRMC, nmea.TypeGGA, nmea.TypeVTG:
			return nil
		}
		return errIgnored
	}
	return rd
}

// Stats returns the counters so far. It may be called from any goroutine.
func (r *Reader) Stats() Stats {
	return Stats{Used: r.used.Load(), Ignored: r.ignored.Load(), Bad: r.bad.Load()}
}

// Next returns the next fix. At the end of the stream it returns the last,
// incomplete epoch if there is one, then io.EOF. Other errors come from the
// underlying reader, wrapped. To stop a Reader blocked on a serial port,
// close the port.
func (r *Reader) Next() (Fix, error) {
	for len(r.queue) == 0 {
		if r.err != nil {
			return Fix{}, r.err
		}
		line, err := r.readLine()
		if err != nil {
			if r.cur != nil && !r.cur.emitted {
				r.emit(r.cur)
			}
			r.cur = nil
			if errors.Is(err, io.EOF) {
				r.err = io.EOF
			} else {
				r.err = fmt.Errorf("gps: read: %w", err)
			}
			continue
		}
		r.handle(line)
	}
	f := r.queue[0]
	r.queue = r.queue[1:]
	return f, nil
}

// readLine returns the next non-empty line without its line ending.
func (r *Reader) readLine() (string, error) {
	for {
		b, err := r.br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			r.bad.Add(1)
			for errors.Is(err, bufio.ErrBufferFull) {
				_, err = r.br.ReadSlice('\n')
			}
			if err != nil {
				return "", err
			}
			continue
		}
		line := strings.TrimSpace(string(b))
		if line != "" {
			return line, nil // a last line without '\n' still counts
		}
		if err != nil {
			return "", err
		}
	}
}

func (r *Reader) handle(line string) {
	s, err := r.parser.Parse(line)
	switch {
	case errors.Is(err, errIgnored):
		r.ignored.Add(1)
		return
	case err != nil:
		r.bad.Add(1)
		r.log.Debug("bad nmea sentence", "line", line, "err", err)
		return
	}
	r.used.Add(1)
	switch s := s.(type) {
	case nmea.RMC:
		r.timed(kindRMC, s.Time, func(e *epoch) { e.rmc = &s })
	case nmea.GGA:
		r.timed(kindGGA, s.Time, func(e *epoch) { e.gga = &s })
	case nmea.VTG:
		// VTG carries no time: it belongs to the epoch being gathered, or to
		// the next one if this one is already out or has its VTG.
		if r.cur != nil && !r.cur.emitted && r.cur.vtg == nil {
			r.cur.vtg = &s
		} else {
			r.pending = &s
		}
	}
}

// timed adds an RMC or GGA sentence stamped t to the epoch of t.
func (r *Reader) timed(kind int, t nmea.Time, set func(*epoch)) {
	// A new time, or a kind seen twice (receivers without a clock repeat an
	// empty time), starts a new epoch.
	if r.cur != nil && (r.cur.time != t || r.cur.kinds&kind != 0) {
		if !r.cur.emitted {
			r.emit(r.cur)
		}
		r.expect = r.cur.kinds
		r.cur = nil
	}
	if r.cur == nil {
		r.cur = &epoch{time: t, vtg: r.pending}
		r.pending = nil
	}
	r.cur.kinds |= kind
	if r.cur.emitted {
		// Too late for its fix, but the next epoch will wait for it.
		return
	}
	set(r.cur)
	if r.expect != 0 && r.cur.kinds&r.expect == r.expect {
		r.emit(r.cur)
	}
}

func (r *Reader) emit(e *epoch) {
	e.emitted = true
	var f Fix
	valid := e.rmc != nil || e.gga != nil
	if e.rmc != nil {
		if e.rmc.Date.Valid {
			r.date = e.rmc.Date
		}
		valid = valid && e.rmc.Validity == nmea.ValidRMC && e.rmc.FFAMode != nmea.FAAModeDataNotValid
		f.Lat, f.Lon = e.rmc.Latitude, e.rmc.Longitude
		f.SpeedKmh = e.rmc.Speed * knotKmh
		f.Course = e.rmc.Course
		f.Quality = qualityFromMode(e.rmc.FFAMode)
	}
	if e.gga != nil {
		valid = valid && e.gga.FixQuality != "" && e.gga.FixQuality != nmea.Invalid
		f.Lat, f.Lon = e.gga.Latitude, e.gga.Longitude
		f.Quality = Quality(e.gga.FixQuality[0] - '0')
		f.Satellites = int(e.gga.NumSatellites)
		f.HDOP = e.gga.HDOP
	}
	// RMC and VTG both carry speed and course. RMC shares the epoch's time
	// stamp, so it is preferred; VTG has none and may belong to a
	// neighbouring epoch.
	if e.rmc == nil && e.vtg != nil && e.vtg.FFAMode != nmea.FAAModeDataNotValid {
		f.SpeedKmh = e.vtg.GroundSpeedKPH
		if e.vtg.GroundSpeedKPH == 0 {
			f.SpeedKmh = e.vtg.GroundSpeedKnots * knotKmh
		}
		f.Course = e.vtg.TrueTrack
	}
	// Two-digit years are read as 20YY.
	f.Time = nmea.DateTime(2000, r.date, e.time)
	f.Valid = valid
	if !valid {
		// Receivers often repeat the last position with a "void" status;
		// it is not where the scanner is now.
		f.Lat, f.Lon, f.SpeedKmh, f.Course, f.Quality = 0, 0, 0, 0, QualityInvalid
	}
	r.queue = append(r.queue, f)
}

const knotKmh = 1.852

// qualityFromMode guesses the fix quality from RMC's FAA mode indicator,
// for receivers that send no GGA.
func qualityFromMode(mode string) Quality {
	switch mode {
	case nmea.FAAModeDifferential:
		return QualityDGPS
	case nmea.FAAModeRTKInteger:
		return QualityRTK
	case nmea.FAAModeRTKFloat:
		return QualityFloatRTK
	case nmea.FAAModeEstimated:
		return QualityEstimated
	}
	return QualityGPS
}

// Open opens a receiver on a serial port. baud 0 means 4800, the NMEA 0183
// rate; many USB receivers use 9600.
func Open(path string, baud int) (io.ReadCloser, error) {
	if baud == 0 {
		baud = 4800
	}
	p, err := serial.Open(path, &serial.Mode{BaudRate: baud})
	if err != nil {
		return nil, fmt.Errorf("gps: open %s at %d baud: %w", path, baud, err)
	}
	return p, nil
}

// earthRadius is the mean radius of the WGS 84 ellipsoid, in metres.
const earthRadius = 6371008.8

// Distance is the great-circle distance between two fixes in metres, by the
// haversine formula (within 0.5% of the ellipsoidal distance). It looks
// only at Lat and Lon: check Valid first.
func Distance(a, b Fix) float64 {
	rad := math.Pi / 180
	dLat := (b.Lat - a.Lat) * rad
	dLon := (b.Lon - a.Lon) * rad
	h := math.Sin(dLat/2)*math.Sin(dLat/2) +
		math.Cos(a.Lat*rad)*math.Cos(b.Lat*rad)*math.Sin(dLon/2)*math.Sin(dLon/2)
	return 2 * earthRadius * math.Asin(math.Sqrt(min(h, 1)))
}
