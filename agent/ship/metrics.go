package ship

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"idk/agent/spool"
	"idk/internal/clock"
)

// Metrics are the shipping side's Prometheus series.
type Metrics struct {
	Connected     prometheus.Gauge
	Reconnects    prometheus.Counter
	SentBytes     prometheus.Counter
	FilesShipped  prometheus.Counter
	FilesRejected prometheus.Counter
	EventsShipped prometheus.Counter
	FileRestarts  prometheus.Counter
	ClockOffset   prometheus.Gauge
	// The window's occupation: files in flight and their sizes together.
	FilesInFlight prometheus.Gauge
	BytesInFlight prometheus.Gauge
	// Transport is 1 for the transport of the connection up (quic or
	// tcp), 0 for the other; both 0 while not connected.
	Transport *prometheus.GaugeVec
	// Collector is 1 for the collector (addr, as configured) the
	// connection is up to, 0 for the region's others; all 0 while not
	// connected. The shipper creates each collector's series.
	Collector *prometheus.GaugeVec
	// Lanes counts the extra connections open for stripes (lanes.go).
	Lanes prometheus.Gauge
}

// NewMetrics creates the series and registers them, with the spool's
// backlog read at scrape time, on reg. clk is the clock the backlog's age
// is measured on, the shipper's.
func NewMetrics(reg prometheus.Registerer, sp *spool.Spool, clk clock.Clock) *Metrics {
	m := &Metrics{
		Connected: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "idk_agent_connected", Help: "1 while a connection to the collector is up.",
		}),
		Reconnects: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "idk_agent_reconnects_total", Help: "Connections to the collector lost or failed and retried.",
		}),
		SentBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "idk_agent_sent_bytes_total", Help: "File bytes sent to the collector.",
		}),
		FilesShipped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "idk_agent_files_shipped_total", Help: "Files the collector acknowledged as stored.",
		}),
		FilesRejected: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "idk_agent_files_rejected_total", Help: "Files the collector refused for good: set aside with an Integrity event, never offered again.",
		}),
		EventsShipped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "idk_agent_events_shipped_total", Help: "Events the collector acknowledged as stored.",
		}),
		FileRestarts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "idk_agent_file_restarts_total", Help: "Transfers restarted from zero because the collector's copy failed its checksum.",
		}),
		ClockOffset: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "idk_agent_clock_offset_seconds", Help: "Collector clock minus this agent's clock, measured at the last hello.",
		}),
		FilesInFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "idk_agent_files_in_flight", Help: "Files being sent to the collector at once (the window's occupation).",
		}),
		BytesInFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "idk_agent_file_bytes_in_flight", Help: "Sizes of the files being sent to the collector, together.",
		}),
		Transport: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "idk_agent_transport", Help: "1 for the transport the connection to the collector runs on (quic, or tcp where UDP is blocked), 0 for the other; both 0 while not connected.",
		}, []string{"transport"}),
		Collector: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "idk_agent_collector", Help: "1 for the collector (collector.addrs) the connection is up to, 0 for the others of the region; all 0 while not connected.",
		}, []string{"addr"}),
		Lanes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "idk_agent_lanes", Help: "Extra connections to the collector open now, carrying stripes of large files so that random loss costs less.",
		}),
	}
	for _, t := range []string{TransportQUIC, TransportTCP} {
		m.Transport.WithLabelValues(t).Set(0) // both series from the start
	}
	reg.MustRegister(m.Connected, m.Reconnects, m.SentBytes, m.FilesShipped, m.FilesRejected, m.EventsShipped, m.FileRestarts, m.ClockOffset,
		m.FilesInFlight, m.BytesInFlight, m.Transport, m.Collector, m.Lanes,
		&backlog{sp: sp, clk: clock.Or(clk)})
	return m
}

// backlog reports the spool's pending items when scraped.
type backlog struct {
	sp  *spool.Spool
	clk clock.Clock
}

var (
	descItems  = prometheus.NewDesc("idk_agent_spool_items", "Items waiting in the spool for the collector's acknowledgement.", []string{"kind"}, nil)
	descBytes  = prometheus.NewDesc("idk_agent_spool_bytes", "Bytes waiting in the spool (file sizes, encoded events).", []string{"kind"}, nil)
	descOldest = prometheus.NewDesc("idk_agent_spool_oldest_item_age_seconds", "Age of the oldest item not yet acknowledged; 0 when none.", nil, nil)
	descRecov  = prometheus.NewDesc("idk_agent_spool_recovered", "1 if the spool file was damaged at start, moved aside and rebuilt.", nil, nil)
)

func (b *backlog) Describe(ch chan<- *prometheus.Desc) {
	ch <- descItems
	ch <- descBytes
	ch <- descOldest
	ch <- descRecov
}

func (b *backlog) Collect(ch chan<- prometheus.Metric) {
	st, err := b.sp.Stats()
	if err != nil {
		ch <- prometheus.NewInvalidMetric(descItems, err)
		return
	}
	ch <- prometheus.MustNewConstMetric(descItems, prometheus.GaugeValue, float64(st.Events), "event")
	ch <- prometheus.MustNewConstMetric(descItems, prometheus.GaugeValue, float64(st.Files), "file")
	ch <- prometheus.MustNewConstMetric(descBytes, prometheus.GaugeValue, float64(st.EventBytes), "event")
	ch <- prometheus.MustNewConstMetric(descBytes, prometheus.GaugeValue, float64(st.FileBytes), "file")
	oldest := 0.0
	for _, t := range []time.Time{st.OldestEvent, st.OldestFile} {
		if !t.IsZero() {
			oldest = max(oldest, b.clk.Now().Sub(t).Seconds())
		}
	}
	ch <- prometheus.MustNewConstMetric(descOldest, prometheus.GaugeValue, oldest)
	recovered := 0.0
	if b.sp.Recovered != nil {
		recovered = 1
	}
	ch <- prometheus.MustNewConstMetric(descRecov, prometheus.GaugeValue, recovered)
}
