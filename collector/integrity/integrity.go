// Package integrity checks, on the collector, the evidence that no scan
// was dropped or altered on its way: each agent spool chains its scans
// (idkpb.ScanSeen.chain), and agents report files that changed or vanished
// after they were first seen (idkpb.Integrity). It counts both per ИДК for
// the regional office and for table 5 of the daily report.
package integrity

import (
	"bytes"
	"log/slog"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"idk/protocol"
	"idk/protocol/idkpb"
)

// Checker follows each device's chain. Feed it every stored event in
// order (per device and spool epoch); it is safe for concurrent use.
type Checker struct {
	log *slog.Logger

	mu     sync.Mutex
	chains map[chainKey]link
	counts map[countKey]int
}

type chainKey struct {
	numIDK string
	epoch  uint64
}

type link struct {
	index uint64
	chain []byte
}

type countKey struct {
	numIDK string
	kind   string // chain_break, changed, missing
}

// New returns an empty Checker.
func New(log *slog.Logger) *Checker {
	if log == nil {
		log = slog.Default()
	}
	return &Checker{log: log, chains: map[chainKey]link{}, counts: map[countKey]int{}}
}

// Apply takes one stored event of numIDK's spool epoch.
func (c *Checker) Apply(numIDK string, epoch uint64, ev *idkpb.Event) {
	switch b := ev.Body.(type) {
	case *idkpb.Event_ScanSeen:
		c.scan(numIDK, epoch, b.ScanSeen)
	case *idkpb.Event_Integrity:
		kind := "changed"
		if b.Integrity.Kind == idkpb.Integrity_KIND_MISSING {
			kind = "missing"
		}
		c.mu.Lock()
		c.counts[countKey{numIDK, kind}]++
		c.mu.Unlock()
		c.log.Warn("scan file did not stay as first seen", "num_idk", numIDK, "kind", kind,
			"num_snim", b.Integrity.NumSnim, "name", b.Integrity.Name)
	}
}

func (c *Checker) scan(numIDK string, epoch uint64, s *idkpb.ScanSeen) {
	if s.Index == 0 {
		return // an agent that does not chain (older version): nothing to check
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	k := chainKey{numIDK, epoch}
	prev, seen := c.chains[k]
	want := protocol.ChainNext(prev.chain, s.Index, s.NumSnim)
	ok := bytes.Equal(want, s.Chain) && s.Index == prev.index+1
	if seen && s.Index <= prev.index {
		return // a repeat of what was already checked
	}
	if !ok {
		c.counts[countKey{numIDK, "chain_break"}]++
		c.log.Error("scan chain broken: a scan between two others is missing or was altered",
			"num_idk", numIDK, "spool_epoch", epoch, "after_index", prev.index, "index", s.Index, "num_snim", s.NumSnim)
	}
	// Follow the agent's chain from here, so one break is counted once.
	c.chains[k] = link{index: s.Index, chain: s.Chain}
}

// Counts returns the numbers for one ИДК: chain breaks, changed files,
// missing files.
func (c *Checker) Counts(numIDK string) (breaks, changed, missing int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.counts[countKey{numIDK, "chain_break"}], c.counts[countKey{numIDK, "changed"}], c.counts[countKey{numIDK, "missing"}]
}

var desc = prometheus.NewDesc("idk_collector_integrity_events",
	"Evidence problems seen per ИДК since the collector started, replayed from the stored events: kind chain_break (a scan missing between two others), changed (a file substituted after it was first seen), missing (a file gone before it was shipped).",
	[]string{"num_idk", "kind"}, nil)

// Describe implements prometheus.Collector.
func (c *Checker) Describe(ch chan<- *prometheus.Desc) { ch <- desc }

// Collect implements prometheus.Collector.
func (c *Checker) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, n := range c.counts {
		ch <- prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, float64(n), k.numIDK, k.kind)
	}
}
