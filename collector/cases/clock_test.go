package cases

import (
	"strings"
	"testing"
	"time"

	"idk/protocol/idkpb"
)

// TestClockSuspectRows: the rows made from the events of an agent whose
// clock was off by more than the limit at its hello are flagged with the
// offset, in the API and in the history; an agent within the limit's
// are not, and an API event carries no flag of its own.
func TestClockSuspectRows(t *testing.T) {
	loc := moscow(t)
	f := newFeedFixture(t, at(loc, 5, 9, 0, 0))
	f.e.SetClockOffset(idkX, -7*time.Minute)
	f.e.SetClockOffset(idkY, 30*time.Second)
	f.send(at(loc, 5, 10, 0, 0), scanEv("S1"))
	f.dev = &idkpb.Device{NumIdk: idkY}
	f.send(at(loc, 5, 10, 0, 0), scanEv("S2"))
	f.add(Event{Kind: Arrival, Time: at(loc, 5, 10, 1, 0), NumIDK: "850593", By: "оператор"})
	f.tick(at(loc, 5, 10, 17, 0))

	rows := f.rows(at(loc, 5, 0, 0, 0))
	if r := rowOf(t, rows, "S1"); !r.ClockSuspect || r.ClockOffset != -7*time.Minute {
		t.Errorf("S1 row, agent 7 min slow: %+v", r)
	}
	if r := rowOf(t, rows, "S2"); r.ClockSuspect || r.ClockOffset != 0 {
		t.Errorf("S2 row, agent 30 s fast: %+v", r)
	}
	if r := rowOf(t, rows, ""); r.ClockSuspect {
		t.Errorf("API arrival's row: %+v", r)
	}
	w := get(f.e.Handler(), "/api/v1/breaches?from=2024-03-05&to=2024-03-05")
	if body := w.Body.String(); strings.Count(body, `"clock_suspect":true`) != 1 || !strings.Contains(body, `"clock_offset_seconds":-420`) {
		t.Errorf("breaches answer: %s", body)
	}
	var hist []History
	decodeBody(t, get(f.e.Handler(), "/api/v1/breaches?from=2024-03-05&to=2024-03-05&history=1"), &hist)
	flagged := 0
	for _, h := range hist {
		if h.ClockSuspect && len(h.Versions) > 0 && h.Versions[0].ClockSuspect && h.Versions[0].ClockOffset == -420 {
			flagged++
		}
	}
	if flagged != 1 {
		t.Errorf("history: %d flagged, want 1: %+v", flagged, hist)
	}

	// A wider limit flags no more events; the limit must be positive.
	if err := f.e.SetClockOffsetLimit(10 * time.Minute); err != nil {
		t.Fatal(err)
	}
	f.dev = &idkpb.Device{NumIdk: idkX}
	f.send(at(loc, 5, 11, 0, 0), scanEv("S3"))
	f.tick(at(loc, 5, 11, 16, 0))
	if r := rowOf(t, f.rows(at(loc, 5, 0, 0, 0)), "S3"); r.ClockSuspect {
		t.Errorf("S3 row within a 10 min limit: %+v", r)
	}
	if err := f.e.SetClockOffsetLimit(0); err == nil || !strings.Contains(err.Error(), "limit") {
		t.Errorf("zero limit: %v", err)
	}
}
