package availability

import (
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metricsCollector computes the tracker's series at scrape time, from the
// changes and the injected clock, so they are never stale and need no
// ticker.
type metricsCollector struct {
	t *Tracker
	// withPosition adds the coordinates series: off unless the
	// administrator asks, since /metrics is often readable more widely
	// than the console.
	withPosition bool

	state, today, lat, lon, open, unacked, unreported *prometheus.Desc
}

func newMetricsCollector(t *Tracker) *metricsCollector {
	return &metricsCollector{
		t: t,
		state: prometheus.NewDesc("idk_collector_device_state",
			"1 for the state each ИДК is in now, 0 for the others.", []string{"num_idk", "state"}, nil),
		today: prometheus.NewDesc("idk_collector_device_state_today_seconds",
			"Time each ИДК spent in each state since local midnight.", []string{"num_idk", "state"}, nil),
		lat: prometheus.NewDesc("idk_collector_device_position_latitude_degrees",
			"Latitude of the site each ИДК stands at now (only when the site has coordinates).", []string{"num_idk"}, nil),
		lon: prometheus.NewDesc("idk_collector_device_position_longitude_degrees",
			"Longitude of the site each ИДК stands at now (only when the site has coordinates).", []string{"num_idk"}, nil),
		open: prometheus.NewDesc("idk_collector_incidents_open",
			"Inoperability incidents of each ИДК that are still open.", []string{"num_idk"}, nil),
		unacked: prometheus.NewDesc("idk_collector_incident_unacknowledged_seconds",
			"Age of the oldest open incident nobody has acknowledged, 0 if none.", []string{"num_idk"}, nil),
		unreported: prometheus.NewDesc("idk_collector_incident_unreported_seconds",
			"Age of the oldest open incident lacking the reporting step (request, head, its_ods); absent if none.", []string{"num_idk", "step"}, nil),
	}
}

// ExposePosition adds the coordinates series to the tracker's collector.
// Call it before the collector is registered.
func (t *Tracker) ExposePosition() { t.collector.withPosition = true }

// Collector returns the tracker's Prometheus collector, to register once:
//
//   - idk_collector_device_state{num_idk,state}: 1 for the current state, 0 for the others
//   - idk_collector_device_state_today_seconds{num_idk,state}: time per state since local midnight
//   - idk_collector_device_position_latitude_degrees{num_idk} and
//     idk_collector_device_position_longitude_degrees{num_idk}: the current site's
//     coordinates, only after ExposePosition
//   - idk_collector_incidents_open{num_idk}
//   - idk_collector_incident_unacknowledged_seconds{num_idk}: age of the oldest open
//     unacknowledged incident, 0 if none
//   - idk_collector_incident_unreported_seconds{num_idk,step}: age of the oldest open
//     incident lacking the reporting step (ReportSteps: request, head, its_ods);
//     absent while every open incident has it. Every open incident counts as
//     category I for its_ods (see ReportSteps).
//
// State labels are lower case: working, waiting, operations, maintenance,
// inoperable, relocation, idle, unknown.
func (t *Tracker) Collector() prometheus.Collector { return t.collector }

// Describe implements prometheus.Collector.
func (c *metricsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.state, c.today, c.lat, c.lon, c.open, c.unacked, c.unreported} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *metricsCollector) Collect(ch chan<- prometheus.Metric) {
	t := c.t
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.clock.Now()
	from, to := dayBounds(now, t.loc)
	for num, l := range t.devices {
		spans := timeline(l.dev, l.changes, now)

		current := "UNKNOWN"
		if len(spans) > 0 {
			last := spans[len(spans)-1]
			current = stateName(last.state)
			if last.site.hasPos && c.withPosition {
				ch <- prometheus.MustNewConstMetric(c.lat, prometheus.GaugeValue, last.site.lat, num)
				ch <- prometheus.MustNewConstMetric(c.lon, prometheus.GaugeValue, last.site.lon, num)
			}
		}
		today := map[string]time.Duration{}
		for _, sp := range spans {
			if s, e := maxTime(sp.start, from), minTime(sp.end, to); e.After(s) {
				today[stateName(sp.state)] += e.Sub(s)
			}
		}
		for _, name := range stateNames {
			v := 0.0
			if name == current {
				v = 1
			}
			label := strings.ToLower(name)
			ch <- prometheus.MustNewConstMetric(c.state, prometheus.GaugeValue, v, num, label)
			ch <- prometheus.MustNewConstMetric(c.today, prometheus.GaugeValue, today[name].Seconds(), num, label)
		}

		open, unacked := 0, time.Duration(0)
		incs := t.incidentsLocked(num, now)
		for _, inc := range incs {
			if !inc.Open() {
				continue
			}
			open++
			if age := now.Sub(inc.Start); !inc.Acked && age > unacked {
				unacked = age
			}
		}
		ch <- prometheus.MustNewConstMetric(c.open, prometheus.GaugeValue, float64(open), num)
		ch <- prometheus.MustNewConstMetric(c.unacked, prometheus.GaugeValue, unacked.Seconds(), num)
		for step, age := range oldestUnreported(incs, now) {
			ch <- prometheus.MustNewConstMetric(c.unreported, prometheus.GaugeValue, age.Seconds(), num, step)
		}
	}
}
