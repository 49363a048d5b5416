package gpssim

import (
	"bytes"
	"context"
	"math"
	"strings"
	"testing"
	"time"

	nmea "github.com/adrianmo/go-nmea"

	"idk/simulator/simclock"
)

var start = time.Date(2024, 3, 1, 23, 59, 58, 0, time.UTC)

func TestCoord(t *testing.T) {
	tests := []struct {
		deg    float64
		digits int
		want   string
		hemi   string
	}{
		{55.75, 2, "5545.0000", "N"},
		{-33.5, 2, "3330.0000", "S"},
		{37.6173, 3, "03737.0380", "E"},
		{-0.5, 3, "00030.0000", "W"},
		{10.9999999999, 2, "1100.0000", "N"}, // rounds up to the next degree
	}
	for _, tc := range tests {
		got, hemi := coord(tc.deg, tc.digits, "N", "S")
		if tc.digits == 3 {
			got, hemi = coord(tc.deg, tc.digits, "E", "W")
		}
		if got != tc.want || hemi != tc.hemi {
			t.Errorf("coord(%v) = %s %s, want %s %s", tc.deg, got, hemi, tc.want, tc.hemi)
		}
	}
}

// An independent NMEA library must accept every sentence and read back the
// state that was written.
func TestSentencesParse(t *testing.T) {
	var buf bytes.Buffer
	s, err := New(&buf, Config{Talker: "GN", VTG: true, Satellites: 11})
	if err != nil {
		t.Fatal(err)
	}
	st := State{Pos: Point{55.7558, 37.6173}, SpeedKmh: 42, Course: 271.5, Fix: true}
	if err := s.WriteEpoch(start, st); err != nil {
		t.Fatal(err)
	}
	if err := s.WriteEpoch(start.Add(time.Second), State{Fix: false}); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\r\n"), "\r\n")
	if len(lines) != 6 {
		t.Fatalf("%d lines, want 6:\n%s", len(lines), buf.String())
	}
	for i, l := range lines {
		sen, err := nmea.Parse(l)
		if err != nil {
			t.Fatalf("line %d %q: %v", i, l, err)
		}
		switch v := sen.(type) {
		case nmea.RMC:
			if i == 0 {
				if v.Validity != "A" || math.Abs(v.Latitude-55.7558) > 1e-5 || math.Abs(v.Longitude-37.6173) > 1e-5 ||
					math.Abs(v.Speed*1.852-42) > 0.01 || v.Course != 271.5 || v.Date.DD != 1 || v.Date.MM != 3 || v.Date.YY != 24 {
					t.Errorf("RMC = %+v", v)
				}
			} else if v.Validity != "V" {
				t.Errorf("no-fix RMC = %+v", v)
			}
		case nmea.GGA:
			if i == 2 && (v.FixQuality != "1" || v.NumSatellites != 11 || v.Talker != "GN") {
				t.Errorf("GGA = %+v", v)
			}
			if i == 5 && v.FixQuality != "0" {
				t.Errorf("no-fix GGA = %+v", v)
			}
		case nmea.VTG:
			if i == 1 && math.Abs(v.GroundSpeedKPH-42) > 0.01 {
				t.Errorf("VTG = %+v", v)
			}
		default:
			t.Errorf("line %d: unexpected %T", i, sen)
		}
	}
}

func TestRouteStates(t *testing.T) {
	a := Point{55.0, 37.0}
	// 0.009 degrees of latitude is about 1000.8 m; at 36 km/h, about 100 s.
	b := Point{55.009, 37.0}
	s, err := New(nil, Config{Start: a, Route: []Leg{Stay(10 * time.Second), Drive(b, 36), NoFix(5 * time.Second)}})
	if err != nil {
		t.Fatal(err)
	}
	if d := s.Duration(); d < 114*time.Second || d > 116*time.Second {
		t.Errorf("route takes %v, want about 115s", d)
	}
	if st := s.At(5 * time.Second); st.Pos != a || !st.Fix || st.SpeedKmh != 0 {
		t.Errorf("during stay: %+v", st)
	}
	mid := s.At(10*time.Second + s.legs[1].dur/2)
	if math.Abs(mid.Pos.Lat-55.0045) > 1e-6 || mid.SpeedKmh != 36 || math.Abs(mid.Course) > 1e-6 {
		t.Errorf("mid-drive: %+v", mid)
	}
	if st := s.At(s.Duration() - time.Second); st.Fix || st.Pos != b {
		t.Errorf("during no-fix: %+v", st)
	}
	if st := s.At(s.Duration()); !st.Done || !st.Fix || st.Pos != b {
		t.Errorf("at the end: %+v", st)
	}
}

func TestRunWritesEveryEpochAndCorrupts(t *testing.T) {
	var buf bytes.Buffer
	clock := simclock.New(start).Pacer() // the generator's waits move the time
	s, err := New(&buf, Config{Route: []Leg{Stay(4 * time.Second)}, CorruptEvery: 3, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := s.Run(ctx); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\r\n")
	if len(lines) != 10 { // epochs at 0..4 s, RMC and GGA each
		t.Fatalf("%d lines, want 10", len(lines))
	}
	bad := 0
	for _, l := range lines {
		if _, err := nmea.Parse(l); err != nil {
			if !strings.Contains(err.Error(), "checksum") {
				t.Errorf("%q: %v", l, err)
			}
			bad++
		}
	}
	if bad != 3 {
		t.Errorf("%d corrupt sentences, want 3 (every third of 10)", bad)
	}
	// The route crossed midnight: the date must follow the clock.
	if !strings.Contains(lines[len(lines)-2], ",020324,") {
		t.Errorf("last RMC %q does not carry 02.03.24", lines[len(lines)-2])
	}
}

func TestBadRoute(t *testing.T) {
	if _, err := New(nil, Config{Route: []Leg{Drive(Point{1, 1}, 0)}}); err == nil {
		t.Error("a drive at 0 km/h was accepted")
	}
	if _, err := New(nil, Config{Route: []Leg{Stay(0)}}); err == nil {
		t.Error("a stay of 0s was accepted")
	}
}
