package server

import (
	"github.com/prometheus/client_golang/prometheus"

	"idk/protocol/transport"
)

// Metrics are the collector's Prometheus series for the receiving side.
type Metrics struct {
	Connections   prometheus.Gauge
	Lanes         prometheus.Gauge
	UDPGSO        prometheus.Gauge
	UDPReceiveBuf prometheus.Gauge
	Refused       *prometheus.CounterVec
	Handshakes    *prometheus.CounterVec
	DiskFull      prometheus.Counter
	Rejected      prometheus.Counter
	FilesStored   *prometheus.CounterVec
	BytesStored   *prometheus.CounterVec
	BytesReceived prometheus.Counter
	EventsStored  *prometheus.CounterVec
	Duplicates    *prometheus.CounterVec
	StreamErrors  *prometheus.CounterVec
	Resumed       prometheus.Counter
	LastSeen      *prometheus.GaugeVec
	ClockOffset   *prometheus.GaugeVec
}

// NewMetrics creates the series and registers them on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Connections: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "idk_collector_connections", Help: "Agent connections open now.",
		}),
		Lanes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "idk_collector_lanes", Help: "Agents' lanes open now: extra connections carrying stripes of large files.",
		}),
		UDPGSO: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "idk_collector_udp_gso", Help: "1 if quic-go sends on the collector's QUIC socket with GSO (a batch of packets per system call), 0 if not.",
		}),
		UDPReceiveBuf: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "idk_collector_udp_receive_buffer_bytes", Help: "Receive buffer of the collector's QUIC socket as the kernel reports it; quic-go wants 7 MiB.",
		}),
		Refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "idk_collector_connections_refused_total", Help: "Connections refused after the TLS handshake, by reason.",
		}, []string{"reason"}),
		Handshakes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "idk_collector_handshakes_refused_total",
			Help: "TLS handshakes refused, by reason: no_certificate, unknown_ca, expired, revoked, not_an_agent, invalid.",
		}, []string{"reason"}),
		DiskFull: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "idk_collector_disk_full_refusals_total", Help: "File offers refused because the store's disk is full; agents keep the files and retry.",
		}),
		Rejected: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "idk_collector_files_rejected_total", Help: "File offers refused for good (a name or size that can never be stored); the agent sets the file aside.",
		}),
		FilesStored: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "idk_collector_files_stored_total", Help: "Scan files stored durably, by ИДК.",
		}, []string{"num_idk"}),
		BytesStored: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "idk_collector_stored_bytes_total", Help: "Bytes of scan files stored durably, by ИДК.",
		}, []string{"num_idk"}),
		BytesReceived: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "idk_collector_received_bytes_total", Help: "File bytes received, including partial transfers.",
		}),
		EventsStored: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "idk_collector_events_stored_total", Help: "Events stored, by ИДК.",
		}, []string{"num_idk"}),
		Duplicates: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "idk_collector_duplicates_total", Help: "Files and events delivered again and stored once, by kind.",
		}, []string{"kind"}),
		StreamErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "idk_collector_stream_errors_total", Help: "Streams ended with an error, by stream kind.",
		}, []string{"kind"}),
		Resumed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "idk_collector_resumed_uploads_total", Help: "File transfers resumed from a partial copy instead of from the start.",
		}),
		LastSeen: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "idk_collector_device_last_seen_timestamp_seconds", Help: "When each ИДК was last heard from.",
		}, []string{"num_idk"}),
		ClockOffset: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "idk_collector_device_clock_offset_seconds", Help: "Collector clock minus agent clock, measured at the last hello.",
		}, []string{"num_idk"}),
	}
	reg.MustRegister(m.Connections, m.Lanes, m.UDPGSO, m.UDPReceiveBuf, m.Refused, m.Handshakes, m.DiskFull, m.Rejected, m.FilesStored, m.BytesStored, m.BytesReceived,
		m.EventsStored, m.Duplicates, m.StreamErrors, m.Resumed, m.LastSeen, m.ClockOffset)
	return m
}

// SetUDP records how the QUIC socket was set up (Listen).
func (m *Metrics) SetUDP(u transport.UDPInfo) {
	gso := 0.0
	if u.GSO {
		gso = 1
	}
	m.UDPGSO.Set(gso)
	m.UDPReceiveBuf.Set(float64(u.ReceiveBuffer))
}
