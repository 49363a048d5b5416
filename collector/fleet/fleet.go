// Package fleet keeps what the collector knows of each agent's link: when
// it was last heard from, its clock offset, the backlog its spool still
// holds, its certificate's expiry and the transport it uses. The console's
// fleet board and the idk_collector_agent_* metrics read it.
//
// The collector's server (collector/server) records into it: Connected at
// an accepted hello, Seen on every message, SetClockOffset with the offset
// it measured, SetBacklog with the status the agent reports, Disconnected
// when the connection ends. Everything is kept in memory: after a restart
// of the collector an agent appears again at its next hello.
package fleet

import (
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"idk/internal/clock"
)

// Status is one agent's link as last seen.
type Status struct {
	NumIDK       string
	KodTO        string // from the registry at the hello
	AgentVersion string
	Connected    bool
	Remote       string    // the agent's address
	Transport    string    // "quic" (or "tcp" once there is a fallback)
	LastSeen     time.Time // last message from the agent
	ClockOffset  time.Duration
	// The agent's spool as it last reported it: scan files waiting and
	// their bytes, and when the oldest item waiting (event or file) was
	// queued, on the collector's clock.
	BacklogFiles int64
	BacklogBytes int64
	OldestUnsent time.Time // zero: nothing waiting
	CertNotAfter time.Time // the agent's certificate's expiry
}

// Fleet holds every agent's Status. Safe for concurrent use.
type Fleet struct {
	clk clock.Clock

	mu     sync.Mutex
	agents map[string]*agent // by NUM_IDK
}

// agent is one agent's Status and its live connections.
type agent struct {
	st Status
	// conns counts the agent's connections past their hello: a
	// reconnecting agent has two for a moment (the server closes the old
	// one after the new one's hello), and the old one's end must not mark
	// the agent disconnected.
	conns int
}

// New returns an empty fleet on clk (nil: clock.Real).
func New(clk clock.Clock) *Fleet {
	return &Fleet{clk: clock.Or(clk), agents: map[string]*agent{}}
}

// get returns numIDK's entry, creating it. f.mu must be held.
func (f *Fleet) get(numIDK string) *agent {
	a := f.agents[numIDK]
	if a == nil {
		a = &agent{st: Status{NumIDK: numIDK}}
		f.agents[numIDK] = a
	}
	return a
}

// Connected records an accepted hello: the agent is connected from remote
// over transport, with a certificate valid until certNotAfter, and seen
// now.
func (f *Fleet) Connected(numIDK, kodTO, version, remote, transport string, certNotAfter time.Time) {
	now := f.clk.Now()
	f.mu.Lock()
	defer f.mu.Unlock()
	a := f.get(numIDK)
	a.conns++
	a.st.Connected = true
	a.st.KodTO, a.st.AgentVersion, a.st.Remote, a.st.Transport = kodTO, version, remote, transport
	a.st.CertNotAfter = certNotAfter
	a.st.LastSeen = now
}

// Disconnected records the end of one of numIDK's connections. The agent
// stays in the fleet, with what was last known of it.
func (f *Fleet) Disconnected(numIDK string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	a := f.agents[numIDK]
	if a == nil {
		return
	}
	a.conns = max(a.conns-1, 0)
	a.st.Connected = a.conns > 0
}

// Seen records that numIDK was heard from now.
func (f *Fleet) Seen(numIDK string) {
	now := f.clk.Now()
	f.mu.Lock()
	defer f.mu.Unlock()
	f.get(numIDK).st.LastSeen = now
}

// SetClockOffset records the clock offset measured at numIDK's hello
// (collector clock minus agent clock). It is for the console only: the
// server exports it as idk_collector_device_clock_offset_seconds.
func (f *Fleet) SetClockOffset(numIDK string, d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.get(numIDK).st.ClockOffset = d
}

// SetBacklog records the spool backlog numIDK reported: files and bytes
// waiting, and when the oldest waiting item was queued, on the collector's
// clock (zero: nothing waits). Negative counts, which no honest agent
// sends, are taken as 0.
func (f *Fleet) SetBacklog(numIDK string, files, bytes int64, oldest time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	a := f.get(numIDK)
	a.st.BacklogFiles, a.st.BacklogBytes, a.st.OldestUnsent = max(files, 0), max(bytes, 0), oldest
}

// All returns every agent's status, by NUM_IDK.
func (f *Fleet) All() []Status {
	f.mu.Lock()
	out := make([]Status, 0, len(f.agents))
	for _, a := range f.agents {
		out = append(out, a.st)
	}
	f.mu.Unlock()
	slices.SortFunc(out, func(a, b Status) int { return strings.Compare(a.NumIDK, b.NumIDK) })
	return out
}

// Get returns one agent's status.
func (f *Fleet) Get(numIDK string) (Status, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	a := f.agents[numIDK]
	if a == nil {
		return Status{}, false
	}
	return a.st, true
}

// Collector exports the idk_collector_agent_* metrics.
//
// The last-seen time is not among them: the server already exports it as
// idk_collector_device_last_seen_timestamp_seconds, and so the clock
// offset, as idk_collector_device_clock_offset_seconds.
func (f *Fleet) Collector() prometheus.Collector { return collector{f} }

var labels = []string{"num_idk", "kod_to"}

var (
	descConnected = prometheus.NewDesc("idk_collector_agent_connected",
		"1 while the agent has a connection past its hello, 0 after it ended.", labels, nil)
	descBacklogFiles = prometheus.NewDesc("idk_collector_agent_backlog_files",
		"Scan files waiting in the agent's spool, as it last reported.", labels, nil)
	descBacklogBytes = prometheus.NewDesc("idk_collector_agent_backlog_bytes",
		"Bytes of the scan files waiting in the agent's spool, as it last reported.", labels, nil)
	descOldestAge = prometheus.NewDesc("idk_collector_agent_oldest_unsent_age_seconds",
		"Age of the oldest item waiting in the agent's spool, as it last reported; 0 when nothing waits.", labels, nil)
	descCertExpiry = prometheus.NewDesc("idk_collector_agent_certificate_expiry_timestamp_seconds",
		"When the certificate the agent last connected with expires.", labels, nil)
)

// collector reads the fleet at scrape time, so that an agent's series
// carry its current KOD_TO and ages are as of the scrape.
type collector struct{ f *Fleet }

func (collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descConnected
	ch <- descBacklogFiles
	ch <- descBacklogBytes
	ch <- descOldestAge
	ch <- descCertExpiry
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	now := c.f.clk.Now()
	for _, st := range c.f.All() {
		lv := []string{st.NumIDK, st.KodTO}
		connected := 0.0
		if st.Connected {
			connected = 1
		}
		ch <- prometheus.MustNewConstMetric(descConnected, prometheus.GaugeValue, connected, lv...)
		ch <- prometheus.MustNewConstMetric(descBacklogFiles, prometheus.GaugeValue, float64(st.BacklogFiles), lv...)
		ch <- prometheus.MustNewConstMetric(descBacklogBytes, prometheus.GaugeValue, float64(st.BacklogBytes), lv...)
		age := 0.0
		if !st.OldestUnsent.IsZero() {
			// An agent's clock corrected by a measured offset can put the
			// item a moment in the future: an age is never negative.
			age = max(now.Sub(st.OldestUnsent).Seconds(), 0)
		}
		ch <- prometheus.MustNewConstMetric(descOldestAge, prometheus.GaugeValue, age, lv...)
		if !st.CertNotAfter.IsZero() {
			ch <- prometheus.MustNewConstMetric(descCertExpiry, prometheus.GaugeValue, float64(st.CertNotAfter.UnixNano())/1e9, lv...)
		}
	}
}
