package cases

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

var metricNames = []string{
	"idk_collector_timers_running",
	"idk_collector_deadline_seconds",
	"idk_collector_breaches_total",
	"idk_collector_breaches_without_reason",
}

const metricHelp = `# HELP idk_collector_breaches_total Item 35 deadlines recorded as breached, by ИДК and rule.
# TYPE idk_collector_breaches_total counter
%s# HELP idk_collector_breaches_without_reason Table 4 rows still lacking the reason (PRICH_NAR) that item 36 requires.
# TYPE idk_collector_breaches_without_reason gauge
idk_collector_breaches_without_reason %s
# HELP idk_collector_timers_running Running timers of each item 35 rule (time_1, time_2, time_3).
# TYPE idk_collector_timers_running gauge
idk_collector_timers_running{rule="time_1"} %s
idk_collector_timers_running{rule="time_2"} %s
idk_collector_timers_running{rule="time_3"} %s
%s`

const deadlineHelp = `# HELP idk_collector_deadline_seconds Seconds left to the nearest deadline of a running timer of the rule at the ИДК; negative once it is breached and still running.
# TYPE idk_collector_deadline_seconds gauge
`

func expect(total, without, open1, open2, open3, deadlines string) string {
	if deadlines != "" {
		deadlines = deadlineHelp + deadlines
	}
	return fmt.Sprintf(metricHelp, total, without, open1, open2, open3, deadlines)
}

func TestMetrics(t *testing.T) {
	loc := moscow(t)
	f := newFixture(t, at(loc, 5, 10, 0, 0))
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(f.e.Collector()); err != nil {
		t.Fatal(err)
	}
	check := func(step, want string) {
		t.Helper()
		if err := testutil.GatherAndCompare(reg, strings.NewReader(want), metricNames...); err != nil {
			t.Errorf("%s: %v", step, err)
		}
	}
	check("empty", expect("", "0", "0", "0", "0", ""))

	// Two arrivals at X, the nearest deadline counts; a risk at Y.
	a := f.add(Event{Kind: Arrival, Time: at(loc, 5, 10, 0, 0), NumIDK: idkX})
	f.add(Event{Kind: Scan, Time: at(loc, 5, 10, 1, 0), NumIDK: idkX, NumSnim: "S1"})
	b := f.add(Event{Kind: Arrival, Time: at(loc, 5, 10, 3, 0), NumIDK: idkX})
	f.add(Event{Kind: RiskDetected, Time: at(loc, 5, 10, 4, 0), NumIDK: idkY})
	f.set(at(loc, 5, 10, 5, 0))
	check("running", expect("", "0", "1", "2", "0",
		`idk_collector_deadline_seconds{num_idk="850591",rule="time_2"} 600
idk_collector_deadline_seconds{num_idk="850592",rule="time_1"} 840
`))

	// Past the first deadline: negative, counted, lacking a reason.
	f.tick(at(loc, 5, 10, 16, 0))
	check("breached", expect(`idk_collector_breaches_total{num_idk="850591",rule="time_2"} 1
`, "1", "1", "2", "0",
		`idk_collector_deadline_seconds{num_idk="850591",rule="time_2"} -60
idk_collector_deadline_seconds{num_idk="850592",rule="time_1"} 180
`))

	// The breached timer ends; the other arrival's deadline is the
	// nearest now, and passes too.
	f.add(Event{Kind: DocsReturned, Time: at(loc, 5, 10, 17, 0), NumIDK: idkX, CaseID: a})
	f.tick(at(loc, 5, 10, 20, 0))
	check("next", expect(`idk_collector_breaches_total{num_idk="850591",rule="time_2"} 2
idk_collector_breaches_total{num_idk="850592",rule="time_1"} 1
`, "3", "1", "1", "0",
		`idk_collector_deadline_seconds{num_idk="850591",rule="time_2"} -120
idk_collector_deadline_seconds{num_idk="850592",rule="time_1"} -60
`))

	// Ended and reasoned: no deadline, counters stay, across a restart.
	f.add(Event{Kind: DocsReturned, Time: at(loc, 5, 10, 21, 0), NumIDK: idkX, CaseID: b})
	if err := f.e.SetReason(a, "сборный груз", "Иванов"); err != nil {
		t.Fatal(err)
	}
	f.restart(at(loc, 5, 10, 22, 0))
	reg = prometheus.NewPedanticRegistry()
	if err := reg.Register(f.e.Collector()); err != nil {
		t.Fatal(err)
	}
	check("restarted", expect(`idk_collector_breaches_total{num_idk="850591",rule="time_2"} 2
idk_collector_breaches_total{num_idk="850592",rule="time_1"} 1
`, "2", "1", "0", "0",
		`idk_collector_deadline_seconds{num_idk="850592",rule="time_1"} -180
`))
}

// TestConcurrent exercises the locking under the race detector: writers,
// ticks, scrapes and reports at once.
func TestConcurrent(t *testing.T) {
	loc := moscow(t)
	f := newFixture(t, at(loc, 5, 10, 0, 0))
	reg := prometheus.NewRegistry()
	reg.MustRegister(f.e.Collector())
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 20 {
				num := fmt.Sprintf("85059%d", g)
				if _, err := f.e.Add(Event{Kind: Arrival, Time: at(loc, 5, 9, i, 0), NumIDK: num, By: "t"}); err != nil {
					t.Error(err)
				}
				if _, err := f.e.Add(Event{Kind: Scan, Time: at(loc, 5, 9, i, 30), NumIDK: num, NumSnim: fmt.Sprint(i), By: "t"}); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for range 20 {
			if err := f.e.Tick(); err != nil {
				t.Error(err)
			}
			if _, err := reg.Gather(); err != nil {
				t.Error(err)
			}
			if _, err := f.e.Breaches(at(loc, 5, 0, 0, 0), at(loc, 5, 0, 0, 0)); err != nil {
				t.Error(err)
			}
			f.e.OpenCases()
			f.e.Unmatched()
		}
	}()
	wg.Wait()
	if n := len(f.e.Cases()); n != 80 {
		t.Errorf("%d cases, want 80", n)
	}
	if rows := f.rows(at(loc, 5, 0, 0, 0)); len(rows) != 80 {
		t.Errorf("%d rows, want 80 (every arrival is unanswered for an hour)", len(rows))
	}
}

// Today's scans and suspicions per ИДК count only today's events (in the
// engine's location), and an ИДК that scanned has its suspects series
// at 0.
func TestDayCountsMetrics(t *testing.T) {
	loc := moscow(t)
	f := newFixture(t, at(loc, 5, 10, 0, 0))
	f.add(Event{Kind: Scan, Time: at(loc, 4, 23, 50, 0), NumIDK: idkX, NumSnim: "S0"}) // yesterday
	f.add(Event{Kind: Scan, Time: at(loc, 5, 0, 10, 0), NumIDK: idkX, NumSnim: "S1"})
	f.add(Event{Kind: Decision, Time: at(loc, 5, 0, 12, 0), NumIDK: idkX, NumSnim: "S1", Suspected: true})
	f.add(Event{Kind: Scan, Time: at(loc, 5, 9, 0, 0), NumIDK: idkY, NumSnim: "S2"})
	scans, suspects := f.e.DayCounts(at(loc, 5, 12, 0, 0))
	if scans[idkX] != 1 || scans[idkY] != 1 || suspects[idkX] != 1 || suspects[idkY] != 0 {
		t.Fatalf("day counts: scans %v, suspects %v", scans, suspects)
	}
	want := fmt.Sprintf(`# HELP idk_collector_scans_today Scans of the ИДК today (the collector's time zone), from the inspection cases.
# TYPE idk_collector_scans_today gauge
idk_collector_scans_today{num_idk=%q} 1
idk_collector_scans_today{num_idk=%q} 1
# HELP idk_collector_suspects_today Decisions «Объект под подозрением» at the ИДК today (the collector's time zone).
# TYPE idk_collector_suspects_today gauge
idk_collector_suspects_today{num_idk=%q} 1
idk_collector_suspects_today{num_idk=%q} 0
`, idkX, idkY, idkX, idkY)
	if err := testutil.CollectAndCompare(f.e.Collector(), strings.NewReader(want), "idk_collector_scans_today", "idk_collector_suspects_today"); err != nil {
		t.Error(err)
	}
}
