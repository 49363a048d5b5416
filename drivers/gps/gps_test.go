package gps_test

import (
	"context"
	"errors"
	"io"
	"math"
	"os"
	"strings"
	"testing"
	"time"

	nmea "github.com/adrianmo/go-nmea"
	"github.com/creack/pty"
	"golang.org/x/sys/unix"

	"idk/drivers/gps"
	"idk/simulator/gpssim"
	"idk/simulator/simclock"
)

// sentence adds a correct checksum to a body written between '$' and '*'.
func sentence(body string) string {
	return "$" + body + "*" + nmea.Checksum(body) + "\r\n"
}

func readAll(t *testing.T, r *gps.Reader) []gps.Fix {
	t.Helper()
	var fixes []gps.Fix
	for {
		f, err := r.Next()
		if errors.Is(err, io.EOF) {
			return fixes
		}
		if err != nil {
			t.Fatal(err)
		}
		fixes = append(fixes, f)
	}
}

func TestFixFromRMCAndGGA(t *testing.T) {
	in := sentence("GPRMC,101530.00,A,5545.3480,N,03737.0380,E,10.80,90.0,150324,,,A") +
		sentence("GPVTG,90.0,T,,M,10.80,N,20.00,K,A") +
		sentence("GPGGA,101530.00,5545.3480,N,03737.0380,E,2,09,0.8,150.0,M,14.0,M,,")
	fixes := readAll(t, gps.NewReader(strings.NewReader(in), nil))
	if len(fixes) != 1 {
		t.Fatalf("%d fixes, want 1: %+v", len(fixes), fixes)
	}
	f := fixes[0]
	want := gps.Fix{
		Time: time.Date(2024, 3, 15, 10, 15, 30, 0, time.UTC),
		Lat:  55.7558, Lon: 37.6173, SpeedKmh: 10.8 * 1.852, Course: 90,
		Quality: gps.QualityDGPS, Satellites: 9, HDOP: 0.8, Valid: true,
	}
	if !f.Time.Equal(want.Time) || math.Abs(f.Lat-want.Lat) > 1e-6 || math.Abs(f.Lon-want.Lon) > 1e-6 ||
		math.Abs(f.SpeedKmh-want.SpeedKmh) > 1e-9 || f.Course != want.Course || f.Quality != want.Quality ||
		f.Satellites != want.Satellites || f.HDOP != want.HDOP || !f.Valid {
		t.Errorf("fix = %+v\nwant  %+v", f, want)
	}
}

func TestNoFixIsNotZeroZero(t *testing.T) {
	// A receiver that lost its fix often repeats the last position with a
	// void status; that must not come out as a position.
	in := sentence("GPRMC,101531.00,V,5545.3480,N,03737.0380,E,,,150324,,,N") +
		sentence("GPGGA,101531.00,,,,,0,03,,,M,,M,,")
	fixes := readAll(t, gps.NewReader(strings.NewReader(in), nil))
	if len(fixes) != 1 {
		t.Fatalf("%d fixes, want 1", len(fixes))
	}
	f := fixes[0]
	if f.Valid || f.Lat != 0 || f.Lon != 0 || f.Quality != gps.QualityInvalid {
		t.Errorf("no-fix epoch = %+v", f)
	}
	if f.Satellites != 3 || f.Time.IsZero() {
		t.Errorf("no-fix epoch lost its diagnostics: %+v", f)
	}
}

func TestBadSentencesAreCountedAndSkipped(t *testing.T) {
	good := sentence("GPRMC,101530.00,A,5545.3480,N,03737.0380,E,0.00,,150324,,,A")
	corrupt := strings.Replace(sentence("GPRMC,101531.00,A,5545.3480,N,03737.0380,E,0.00,,150324,,,A"), "*", "*0", 1)
	flipped := sentence("GPGGA,101532.00,5545.3480,N,03737.0380,E,1,08,0.9,150.0,M,14.0,M,,")
	flipped = strings.Replace(flipped, "5545", "5546", 1) // payload changed, checksum not
	in := good +
		"$GPRMC,garbage\r\n" + // no checksum at all
		corrupt +
		strings.Repeat("x", 5000) + "\r\n" + // line noise
		flipped +
		sentence("GPGSV,1,1,01,05,40,083,46") + // valid, not used
		"\r\n" +
		sentence("GPRMC,101533.00,A,5545.3480,N,03737.0380,E,0.00,,150324,,,A")
	r := gps.NewReader(strings.NewReader(in), nil)
	fixes := readAll(t, r)
	if len(fixes) != 2 || !fixes[0].Valid || !fixes[1].Valid {
		t.Fatalf("fixes = %+v, want the two good ones", fixes)
	}
	if fixes[1].Time.Second() != 33 {
		t.Errorf("second fix at %v, want :33", fixes[1].Time)
	}
	st := r.Stats()
	if st.Bad != 4 || st.Ignored != 1 || st.Used != 2 {
		t.Errorf("stats = %+v, want 4 bad, 1 ignored, 2 used", st)
	}
}

// Receivers send an epoch's sentences in their own order; once the reader
// has seen one whole epoch it returns each fix as soon as it is complete,
// without waiting for the next epoch.
func TestEpochOrderAndPromptness(t *testing.T) {
	pr, pw := io.Pipe()
	defer pr.Close()
	r := gps.NewReader(pr, nil)
	epoch := func(sec int) string {
		ts := "1015" + string(rune('0'+sec/10)) + string(rune('0'+sec%10)) + ".00"
		return sentence("GPGGA,"+ts+",5545.3480,N,03737.0380,E,1,08,0.9,150.0,M,14.0,M,,") +
			sentence("GPVTG,0.0,T,,M,0.00,N,0.00,K,A") +
			sentence("GPRMC,"+ts+",A,5545.3480,N,03737.0380,E,0.00,,150324,,,A")
	}
	write := func(s string) {
		go func() { _, _ = io.WriteString(pw, s) }()
	}
	next := func() gps.Fix {
		t.Helper()
		ch := make(chan gps.Fix, 1)
		go func() {
			f, err := r.Next()
			if err == nil {
				ch <- f
			}
		}()
		select {
		case f := <-ch:
			return f
		case <-time.After(2 * time.Second):
			t.Fatal("no fix")
			return gps.Fix{}
		}
	}
	write(epoch(30) + epoch(31))
	if f := next(); f.Time.Second() != 30 {
		t.Errorf("first fix at %v, want :30", f.Time)
	}
	if f := next(); f.Time.Second() != 31 {
		t.Errorf("second fix at %v, want :31 without waiting for :32", f.Time)
	}
	pw.Close()
}

func TestSpeedFromVTGWithoutRMC(t *testing.T) {
	in := sentence("GPGGA,101530.00,5545.3480,N,03737.0380,E,1,08,0.9,150.0,M,14.0,M,,") +
		sentence("GPVTG,45.0,T,,M,,N,36.00,K,A")
	fixes := readAll(t, gps.NewReader(strings.NewReader(in), nil))
	if len(fixes) != 1 || fixes[0].SpeedKmh != 36 || fixes[0].Course != 45 || !fixes[0].Valid {
		t.Errorf("fixes = %+v", fixes)
	}
	// No RMC, so no date: the time is unknown rather than made up.
	if !fixes[0].Time.IsZero() {
		t.Errorf("time = %v, want zero without a date", fixes[0].Time)
	}
}

func TestDistance(t *testing.T) {
	tests := []struct {
		a, b gps.Fix
		want float64 // metres
		tol  float64
	}{
		{gps.Fix{Lat: 0, Lon: 0}, gps.Fix{Lat: 1, Lon: 0}, 111195, 1},
		{gps.Fix{Lat: 55.7558, Lon: 37.6173}, gps.Fix{Lat: 55.7558, Lon: 37.6173}, 0, 1e-9},
		// Moscow to Saint Petersburg, about 634 km.
		{gps.Fix{Lat: 55.7558, Lon: 37.6173}, gps.Fix{Lat: 59.9343, Lon: 30.3351}, 634000, 2000},
		{gps.Fix{Lat: 0, Lon: 179.9}, gps.Fix{Lat: 0, Lon: -179.9}, 22239, 1}, // across the date line
	}
	for _, tc := range tests {
		if got := gps.Distance(tc.a, tc.b); math.Abs(got-tc.want) > tc.tol {
			t.Errorf("Distance(%v,%v / %v,%v) = %.0f, want %.0f", tc.a.Lat, tc.a.Lon, tc.b.Lat, tc.b.Lon, got, tc.want)
		}
	}
}

var (
	depot = gpssim.Point{Lat: 55.0, Lon: 37.0}
	site  = gpssim.Point{Lat: 55.009, Lon: 37.0} // about 1 km north
)

// route: 3 s parked, 3 s without a fix, a 1 km drive at 36 km/h (100 s),
// 2 s parked at the new site.
func route(w io.Writer, corruptEvery int) *gpssim.Sim {
	s, err := gpssim.New(w, gpssim.Config{
		Start: depot,
		Route: []gpssim.Leg{
			gpssim.Stay(3 * time.Second), gpssim.NoFix(3 * time.Second),
			gpssim.Drive(site, 36), gpssim.Stay(2 * time.Second),
		},
		VTG:          true,
		CorruptEvery: corruptEvery,
		Clock:        simclock.New(time.Date(2024, 3, 15, 10, 0, 0, 0, time.UTC)).Pacer(),
	})
	if err != nil {
		panic(err)
	}
	return s
}

// checkRoute checks the fixes read for route: no-fix epochs are invalid,
// the drive is at 36 km/h and ends at the site.
func checkRoute(t *testing.T, fixes []gps.Fix) {
	t.Helper()
	if len(fixes) < 100 {
		t.Fatalf("only %d fixes", len(fixes))
	}
	first, last := fixes[0], fixes[len(fixes)-1]
	if !first.Valid || gps.Distance(first, gps.Fix{Lat: depot.Lat, Lon: depot.Lon}) > 0.5 {
		t.Errorf("first fix %+v, want valid at the depot", first)
	}
	if !last.Valid || gps.Distance(last, gps.Fix{Lat: site.Lat, Lon: site.Lon}) > 0.5 {
		t.Errorf("last fix %+v, want valid at the site", last)
	}
	if d := gps.Distance(first, last); math.Abs(d-1000.8) > 2 {
		t.Errorf("relocated %.1f m, want about 1000.8", d)
	}
	invalid, moving := 0, 0
	for _, f := range fixes {
		if !f.Valid {
			invalid++
			if f.Lat != 0 || f.Lon != 0 {
				t.Errorf("invalid fix carries a position: %+v", f)
			}
		}
		if f.Valid && f.SpeedKmh > 0 {
			moving++
			if math.Abs(f.SpeedKmh-36) > 0.02 {
				t.Errorf("speed %.3f km/h, want 36", f.SpeedKmh)
			}
		}
	}
	if invalid != 3 {
		t.Errorf("%d invalid fixes, want the 3 of the no-fix period", invalid)
	}
	if moving < 90 {
		t.Errorf("%d moving fixes, want about 100", moving)
	}
}

func TestSimulatorOverPipe(t *testing.T) {
	pr, pw := io.Pipe()
	sim := route(pw, 25)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
	defer cancel()
	go func() { pw.CloseWithError(sim.Run(ctx)) }()

	r := gps.NewReader(pr, nil)
	fixes := readAll(t, r)
	checkRoute(t, fixes)
	st := r.Stats()
	total := st.Used + st.Bad + st.Ignored
	// 110 epochs of RMC, VTG and GGA; every 25th sentence corrupted.
	if total != 330 || st.Bad != 330/25 {
		t.Errorf("stats = %+v, want 330 sentences of which %d bad", st, 330/25)
	}
}

func TestSimulatorOverPTY(t *testing.T) {
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	if ptmx, err = pollable(ptmx); err != nil {
		t.Fatal(err)
	}
	defer ptmx.Close()
	defer tty.Close() // held so the line stays up between opens

	port, err := gps.Open(tty.Name(), 9600)
	if err != nil {
		t.Fatal(err)
	}
	// Open sets raw mode; only then may the simulator write, or the line
	// discipline would echo and translate.
	sim := route(ptmx, 25)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
	defer cancel()
	simDone := make(chan error, 1)
	go func() { simDone <- sim.Run(ctx) }()

	r := gps.NewReader(port, nil)
	type result struct {
		fixes []gps.Fix
		err   error
	}
	out := make(chan result, 1)
	go func() {
		// A serial port has no end: read until the route's last fix.
		var fixes []gps.Fix
		for {
			f, err := r.Next()
			if err != nil {
				out <- result{fixes, err}
				return
			}
			fixes = append(fixes, f)
			if f.Valid && gps.Distance(f, gps.Fix{Lat: site.Lat, Lon: site.Lon}) < 0.5 && f.SpeedKmh == 0 &&
				f.Time.Equal(time.Date(2024, 3, 15, 10, 1, 49, 0, time.UTC)) {
				out <- result{fixes, nil}
				return
			}
		}
	}()
	var res result
	select {
	case res = <-out:
	case <-ctx.Done():
		port.Close()
		t.Fatal("route not read in time")
	}
	if res.err != nil {
		t.Fatalf("after %d fixes: %v", len(res.fixes), res.err)
	}
	if err := <-simDone; err != nil {
		t.Fatal(err)
	}
	checkRoute(t, res.fixes)
	if bad := r.Stats().Bad; bad != 330/25 {
		t.Errorf("%d bad sentences, want %d", bad, 330/25)
	}

	// Closing the port ends a blocked Next with an error, not a hang.
	go func() { time.Sleep(20 * time.Millisecond); port.Close() }()
	if _, err := r.Next(); err == nil {
		t.Error("Next after Close returned a fix")
	}
}

// pollable returns f reopened in non-blocking mode, closing f. The pty
// package leaves the master blocking, where Close cannot end a write stuck
// on a full line; through the runtime poller it can, so a failing test
// does not leave the simulator hanging.
func pollable(f *os.File) (*os.File, error) {
	defer f.Close()
	rc, err := f.SyscallConn()
	if err != nil {
		return nil, err
	}
	nfd := -1
	var opErr error
	err = rc.Control(func(fd uintptr) {
		if nfd, opErr = unix.Dup(int(fd)); opErr == nil {
			opErr = unix.SetNonblock(nfd, true)
		}
	})
	if err = errors.Join(err, opErr); err != nil {
		if nfd >= 0 {
			unix.Close(nfd)
		}
		return nil, err
	}
	return os.NewFile(uintptr(nfd), f.Name()), nil
}
