package devstate

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"idk/drivers/gps"
	"idk/drivers/modbus"
	"idk/protocol/idkpb"
)

// day is the date of every scripted test; tm gives a time of that day.
var day = time.Date(2025, 3, 14, 0, 0, 0, 0, time.UTC)

func tm(hms string) time.Time {
	d, err := time.Parse("15:04:05", hms)
	if err != nil {
		panic(err)
	}
	return day.Add(time.Duration(d.Hour())*time.Hour + time.Duration(d.Minute())*time.Minute + time.Duration(d.Second())*time.Second)
}

// Shorter names for the states and causes.
const (
	working     = idkpb.DeviceState_DEVICE_STATE_WORKING
	waiting     = idkpb.DeviceState_DEVICE_STATE_WAITING
	operations  = idkpb.DeviceState_DEVICE_STATE_OPERATIONS
	maintenance = idkpb.DeviceState_DEVICE_STATE_MAINTENANCE
	inoperable  = idkpb.DeviceState_DEVICE_STATE_INOPERABLE
	relocation  = idkpb.DeviceState_DEVICE_STATE_RELOCATION
	idle        = idkpb.DeviceState_DEVICE_STATE_IDLE
	unknown     = idkpb.DeviceState_DEVICE_STATE_UNKNOWN
	clear       = idkpb.DeviceState_DEVICE_STATE_UNSPECIFIED

	weather = idkpb.InoperableCause_INOPERABLE_CAUSE_WEATHER
	reboot  = idkpb.InoperableCause_INOPERABLE_CAUSE_REBOOT
)

// Sites of the tests: siteB is 11 km north of home, nowhere is 50 km from
// both and from every known site.
var (
	home    = Site{Name: "МАПП ТЕСТОВЫЙ", KodTO: "10012010", NaimTO: "КАЛИНИНГРАДСКАЯ ОБЛАСТНАЯ", Disl: 1, Lat: 54.70, Lon: 20.50}
	siteB   = Site{Name: "ПКТ", KodTO: "10012020", NaimTO: "БАЛТИЙСКАЯ", Disl: 2, Lat: 54.80, Lon: 20.50, Radius: 300}
	siteC   = Site{Name: "ЖДПП ЮЖНЫЙ", KodTO: "10012030", NaimTO: "КАЛИНИНГРАДСКАЯ ОБЛАСТНАЯ", Disl: 3, Lat: 54.40, Lon: 20.10}
	nowhere = struct{ Lat, Lon float64 }{55.10, 20.90}
)

func stationary() Config { return Config{Home: home} }
func mobile() Config     { return Config{Mobile: true, Home: home, Sites: []Site{siteB, siteC}} }

func newEngine(t *testing.T, cfg Config) *Engine {
	t.Helper()
	e, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// input is one call into the Engine, labelled for failure messages.
type input struct {
	label string
	apply func(*Engine) []Change
}

// step is an input and the changes it must cause, in show's notation.
type step struct {
	in   input
	want []string
}

func run(t *testing.T, e *Engine, steps []step) {
	t.Helper()
	for i, s := range steps {
		got := show(s.in.apply(e))
		if !slices.Equal(got, s.want) {
			t.Fatalf("step %d (%s):\ngot  %q\nwant %q", i, s.in.label, got, s.want)
		}
	}
}

// runAll applies the inputs and returns every change they caused.
func runAll(e *Engine, ins ...input) []string {
	var out []Change
	for _, in := range ins {
		out = append(out, in.apply(e)...)
	}
	return show(out)
}

func ctl(hms string, on ...modbus.Signal) input {
	flags := map[modbus.Signal]bool{modbus.Powered: false, modbus.Ready: false, modbus.Scanning: false}
	for _, s := range on {
		flags[s] = true
	}
	return input{fmt.Sprintf("controller %s %v", hms, on), func(e *Engine) []Change {
		return e.Controller(modbus.Sample{Time: tm(hms), Link: modbus.LinkUp, Flags: flags})
	}}
}

func lost(hms string) input {
	return input{"link down " + hms, func(e *Engine) []Change {
		return e.Controller(modbus.Sample{Time: tm(hms), Link: modbus.LinkDown, Err: errors.New("i/o timeout")})
	}}
}

func arrival(hms string) input {
	return input{"arrival " + hms, func(e *Engine) []Change { return e.Arrival(tm(hms)) }}
}

func decision(hms string) input {
	return input{"decision " + hms, func(e *Engine) []Change { return e.Decision(tm(hms)) }}
}

func declare(hms string, st idkpb.DeviceState, cause idkpb.InoperableCause, note string) input {
	return input{fmt.Sprintf("declare %s %s", hms, st), func(e *Engine) []Change {
		out, err := e.Declare(tm(hms), Declaration{State: st, Cause: cause, Note: note})
		if err != nil {
			panic(err)
		}
		return out
	}}
}

func fix(hms string, lat, lon, kmh float64) input {
	return input{fmt.Sprintf("fix %s %.4f,%.4f %v km/h", hms, lat, lon, kmh), func(e *Engine) []Change {
		return e.GPS(gps.Fix{Time: tm(hms), Lat: lat, Lon: lon, SpeedKmh: kmh, Quality: gps.QualityGPS, Satellites: 8, Valid: true})
	}}
}

func noFix(hms string) input {
	// What a receiver without a fix gives: zeros, as drivers/gps promises.
	return input{"no fix " + hms, func(e *Engine) []Change {
		return e.GPS(gps.Fix{Time: tm(hms)})
	}}
}

// show renders changes as "15:04:05 STATE[/CAUSE] source [«note»] @site".
func show(cs []Change) []string {
	out := []string{}
	for _, c := range cs {
		s := c.Time.Format("15:04:05") + " " + strings.TrimPrefix(c.State.String(), "DEVICE_STATE_")
		if c.Cause != 0 {
			s += "/" + strings.TrimPrefix(c.Cause.String(), "INOPERABLE_CAUSE_")
		}
		s += " " + c.Source
		if c.Note != "" {
			s += " «" + c.Note + "»"
		}
		out = append(out, s+" @"+c.Site.Name)
	}
	return out
}

// none is the want of a step that changes nothing.
var none = []string{}
