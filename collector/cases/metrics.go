package cases

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics computes the engine's series at scrape time from the cases and
// the injected clock. They are never stale and need no updating.
type metrics struct {
	e *Engine

	open, deadline, total, noReason, unwatched, scansToday, suspectsToday *prometheus.Desc
}

func newMetrics(e *Engine) *metrics {
	return &metrics{
		e: e,
		open: prometheus.NewDesc("idk_collector_timers_running",
			"Running timers of each item 35 rule (time_1, time_2, time_3).", []string{"rule"}, nil),
		deadline: prometheus.NewDesc("idk_collector_deadline_seconds",
			"Seconds left to the nearest deadline of a running timer of the rule at the ИДК; negative once it is breached and still running.",
			[]string{"num_idk", "rule"}, nil),
		total: prometheus.NewDesc("idk_collector_breaches_total",
			"Item 35 deadlines recorded as breached, by ИДК and rule.", []string{"num_idk", "rule"}, nil),
		noReason: prometheus.NewDesc("idk_collector_breaches_without_reason",
			"Table 4 rows still lacking the reason (PRICH_NAR) that item 36 requires.", nil, nil),
		unwatched: prometheus.NewDesc("idk_collector_cases_unwatched_total",
			"Cases with a running timer that left memory because the ИДК had more than MaxLivePerIDK open (a flood of scans): their deadlines are not watched.", []string{"num_idk"}, nil),
		scansToday: prometheus.NewDesc("idk_collector_scans_today",
			"Scans of the ИДК today (the collector's time zone), from the inspection cases.", []string{"num_idk"}, nil),
		suspectsToday: prometheus.NewDesc("idk_collector_suspects_today",
			"Decisions «Объект под подозрением» at the ИДК today (the collector's time zone).", []string{"num_idk"}, nil),
	}
}

// Collector returns the engine's Prometheus collector, to register once:
//
//   - idk_collector_timers_running{rule}: running timers per rule, every rule
//     always present
//   - idk_collector_deadline_seconds{num_idk,rule}: seconds to the nearest
//     deadline of a running timer of that rule at that ИДК. It is negative
//     once breached and still running, and absent when no timer runs.
//   - idk_collector_breaches_total{num_idk,rule}: deadlines recorded as
//     breached. It is read from the file, so it carries on across
//     restarts. A breach later withdrawn stays counted, because a counter
//     never goes down.
//   - idk_collector_breaches_without_reason: table 4 rows lacking PRICH_NAR
//   - idk_collector_cases_unwatched_total{num_idk}: running cases evicted
//     from memory by the per-ИДК cap since start
//   - idk_collector_scans_today{num_idk}, idk_collector_suspects_today{num_idk}:
//     today's scans and «Объект под подозрением» decisions (DayCounts)
func (e *Engine) Collector() prometheus.Collector { return e.metrics }

// Describe implements prometheus.Collector.
func (m *metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{m.open, m.deadline, m.total, m.noReason, m.unwatched, m.scansToday, m.suspectsToday} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	e := m.e
	now := e.clock.Now()
	e.mu.RLock()
	defer e.mu.RUnlock()

	open := map[Rule]int{}
	nearest := map[countKey]time.Time{}
	for _, r := range e.cases {
		for i, s := range r.spans() {
			if !s.started || s.ended {
				continue
			}
			rule := rules[i]
			open[rule]++
			k, deadline := countKey{r.NumIDK, rule}, s.start.Add(rule.Limit())
			if d, ok := nearest[k]; !ok || deadline.Before(d) {
				nearest[k] = deadline
			}
		}
	}
	for numIDK, n := range e.unwatched {
		ch <- prometheus.MustNewConstMetric(m.unwatched, prometheus.CounterValue, float64(n), numIDK)
	}
	for _, rule := range rules {
		ch <- prometheus.MustNewConstMetric(m.open, prometheus.GaugeValue, float64(open[rule]), string(rule))
	}
	for k, d := range nearest {
		ch <- prometheus.MustNewConstMetric(m.deadline, prometheus.GaugeValue, d.Sub(now).Seconds(), k.numIDK, string(k.rule))
	}
	for k, n := range e.counts {
		ch <- prometheus.MustNewConstMetric(m.total, prometheus.CounterValue, float64(n), k.numIDK, string(k.rule))
	}
	without := 0
	for _, st := range e.breached {
		if st.Standing && !st.Reasoned {
			without++
		}
	}
	ch <- prometheus.MustNewConstMetric(m.noReason, prometheus.GaugeValue, float64(without))
	scans, suspects := e.dayCountsLocked(now)
	for numIDK, n := range scans {
		ch <- prometheus.MustNewConstMetric(m.scansToday, prometheus.GaugeValue, float64(n), numIDK)
	}
	for numIDK := range scans {
		// Every ИДК that scanned today has the series, 0 included, so a
		// dashboard shows "none under suspicion" rather than no data.
		ch <- prometheus.MustNewConstMetric(m.suspectsToday, prometheus.GaugeValue, float64(suspects[numIDK]), numIDK)
	}
	for numIDK, n := range suspects {
		if _, ok := scans[numIDK]; !ok {
			ch <- prometheus.MustNewConstMetric(m.suspectsToday, prometheus.GaugeValue, float64(n), numIDK)
		}
	}
}
