package report

import (
	"testing"
	"time"

	"idk/collector/availability"
	"idk/collector/cases"
)

var msk = time.FixedZone("MSK", 3*3600)

// hm is h:m on day d of March 2024 in msk.
func hm(d, h, m int) time.Time { return time.Date(2024, time.March, d, h, m, 0, 0, msk) }

func TestTimeWait(t *testing.T) {
	from, to := hm(5, 0, 0), hm(6, 0, 0)
	day := []availability.Span{{Start: hm(5, 8, 0), End: hm(5, 20, 0)}}
	zone := func(a, d time.Time) cases.Zone { return cases.Zone{Arrival: a, Decision: d} }
	for _, c := range []struct {
		name    string
		zones   []cases.Zone
		working []availability.Span
		want    time.Duration
	}{
		{"no objects", nil, day, 0},
		{"one object: waiting after the day's last decision until work ends", []cases.Zone{zone(hm(5, 9, 0), hm(5, 9, 10))}, day, 10*time.Hour + 50*time.Minute},
		{"after the last decision only inside the working spans", []cases.Zone{zone(hm(5, 9, 0), hm(5, 9, 10))},
			[]availability.Span{{Start: hm(5, 8, 0), End: hm(5, 12, 0)}, {Start: hm(5, 13, 0), End: hm(5, 17, 0)}}, 6*time.Hour + 50*time.Minute},
		{"an object still in the zone at the day's end: nothing after its arrival", []cases.Zone{
			zone(hm(5, 9, 0), hm(5, 9, 10)), {Arrival: hm(5, 19, 0)},
		}, day, 9*time.Hour + 50*time.Minute},
		{"first object of the day: not from the shift's start", []cases.Zone{
			zone(hm(5, 9, 0), hm(5, 9, 10)), zone(hm(5, 9, 30), hm(5, 9, 40)),
		}, day, 20*time.Minute + 10*time.Hour + 20*time.Minute},
		{"overlapping objects are one busy interval", []cases.Zone{
			zone(hm(5, 9, 0), hm(5, 9, 20)), zone(hm(5, 9, 10), hm(5, 9, 40)), zone(hm(5, 10, 0), hm(5, 10, 10)),
		}, day, 20*time.Minute + 9*time.Hour + 50*time.Minute},
		{"one object inside another's stay", []cases.Zone{
			zone(hm(5, 9, 0), hm(5, 9, 50)), zone(hm(5, 9, 10), hm(5, 9, 20)), zone(hm(5, 10, 0), hm(5, 10, 10)),
		}, day, 10*time.Minute + 9*time.Hour + 50*time.Minute},
		{"gap outside working time", []cases.Zone{
			zone(hm(5, 9, 0), hm(5, 9, 10)), zone(hm(5, 13, 0), hm(5, 13, 10)),
		}, []availability.Span{{Start: hm(5, 8, 0), End: hm(5, 12, 0)}, {Start: hm(5, 12, 30), End: hm(5, 20, 0)}}, 170*time.Minute + 30*time.Minute + 6*time.Hour + 50*time.Minute},
		{"an object with no decision ends the count", []cases.Zone{
			zone(hm(5, 9, 0), hm(5, 9, 10)), {Arrival: hm(5, 9, 30)}, zone(hm(5, 10, 0), hm(5, 10, 5)), zone(hm(5, 10, 30), hm(5, 10, 35)),
		}, day, 20 * time.Minute},
		{"object still in the zone at midnight", []cases.Zone{
			zone(hm(5, 9, 0), hm(5, 9, 10)), zone(hm(5, 23, 0), hm(6, 0, 20)),
		}, []availability.Span{{Start: hm(5, 8, 0), End: hm(6, 0, 0)}}, 13*time.Hour + 50*time.Minute},
		{"the day's last decision: waiting until the day ends", []cases.Zone{
			zone(hm(5, 9, 0), hm(5, 9, 10)),
		}, []availability.Span{{Start: hm(5, 8, 0), End: hm(6, 0, 0)}}, 14*time.Hour + 50*time.Minute},
		{"an object arriving after the day changes nothing", []cases.Zone{
			zone(hm(5, 9, 0), hm(5, 9, 10)), zone(hm(6, 0, 10), hm(6, 0, 20)),
		}, []availability.Span{{Start: hm(5, 8, 0), End: hm(6, 0, 0)}}, 14*time.Hour + 50*time.Minute},
		{"the day before's object keeps the zone busy past midnight", []cases.Zone{
			zone(hm(4, 23, 50), hm(5, 0, 30)), zone(hm(5, 0, 10), hm(5, 0, 15)), zone(hm(5, 1, 0), hm(5, 1, 5)),
		}, []availability.Span{{Start: hm(5, 0, 0), End: hm(5, 2, 0)}}, 30*time.Minute + 55*time.Minute},
		{"the day before's object never decided is gone", []cases.Zone{
			{Arrival: hm(4, 10, 0)}, zone(hm(5, 9, 0), hm(5, 9, 10)), zone(hm(5, 9, 30), hm(5, 9, 40)),
		}, day, 20*time.Minute + 10*time.Hour + 20*time.Minute},
		{"from a decision before the day, only from the first arrival", []cases.Zone{
			zone(hm(4, 23, 0), hm(4, 23, 10)), zone(hm(5, 9, 0), hm(5, 9, 10)),
		}, []availability.Span{{Start: hm(5, 0, 0), End: hm(5, 20, 0)}}, 10*time.Hour + 50*time.Minute},
		{"not working at all", []cases.Zone{
			zone(hm(5, 9, 0), hm(5, 9, 10)), zone(hm(5, 9, 30), hm(5, 9, 40)),
		}, nil, 0},
	} {
		if got := timeWait(c.zones, from, to, c.working); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}
