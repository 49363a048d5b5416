// Package integrity checks, on the collector, the evidence that no scan
// was dropped or altered on its way: each agent spool chains its scans
// (idkpb.ScanSeen.chain), and agents report files that changed or vanished
// after they were first seen (idkpb.Integrity). It counts both per ИДК for
// the regional office and for table 5 of the daily report.
package integrity

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"idk/collector/ingest"
	"idk/protocol"
	"idk/protocol/idkpb"
)

// Checker follows each device's chain. It keeps its state in the
// collector's index, in the transaction that stores each event
// (ingest.Consumer): chain heads per ИДК and spool epoch, and counts per
// ИДК and kind. Both are per ИДК, not per event, so nothing is loaded at
// start and queries read them where they are. It is safe for concurrent
// use.
type Checker struct {
	log *slog.Logger
	db  ingest.Viewer
}

// Buckets of the index that the Checker owns.
const (
	bucketChains = "integrity.chains" // NUM_IDK "/" spool epoch (8 bytes) -> index (8) chain
	bucketCounts = "integrity.counts" // NUM_IDK 0x00 kind -> count (8 bytes)
)

// New returns a Checker whose state is read through db.
func New(log *slog.Logger, db ingest.Viewer) *Checker {
	if log == nil {
		log = slog.Default()
	}
	return &Checker{log: log, db: db}
}

// Apply takes one stored event of dev's spool epoch.
func (c *Checker) Apply(tx ingest.Tx, dev *idkpb.Device, epoch uint64, ev *idkpb.Event) error {
	numIDK := dev.NumIdk
	switch b := ev.Body.(type) {
	case *idkpb.Event_ScanSeen:
		return c.scan(tx, numIDK, epoch, b.ScanSeen)
	case *idkpb.Event_Integrity:
		kind := "changed"
		switch b.Integrity.Kind {
		case idkpb.Integrity_KIND_MISSING:
			kind = "missing"
		case idkpb.Integrity_KIND_RENAMED:
			kind = "renamed"
		case idkpb.Integrity_KIND_REJECTED:
			kind = "rejected"
		}
		c.log.Warn("scan file did not stay as first seen", "num_idk", numIDK, "kind", kind,
			"num_snim", b.Integrity.NumSnim, "name", b.Integrity.Name)
		return count(tx, numIDK, kind)
	}
	return nil
}

func count(tx ingest.Tx, numIDK, kind string) error {
	k := []byte(numIDK + "\x00" + kind)
	v, err := tx.Get(bucketCounts, k)
	if err != nil {
		return err
	}
	var n uint64
	if len(v) == 8 {
		n = binary.BigEndian.Uint64(v)
	}
	return tx.Put(bucketCounts, k, binary.BigEndian.AppendUint64(nil, n+1))
}

func (c *Checker) scan(tx ingest.Tx, numIDK string, epoch uint64, s *idkpb.ScanSeen) error {
	if s.Index == 0 {
		return nil // an agent that does not chain (older version): nothing to check
	}
	k := binary.BigEndian.AppendUint64([]byte(numIDK+"/"), epoch)
	v, err := tx.Get(bucketChains, k)
	if err != nil {
		return err
	}
	var prev link
	seen := len(v) >= 8
	if seen {
		prev = link{index: binary.BigEndian.Uint64(v), chain: v[8:]}
	}
	want := protocol.ChainNext(prev.chain, s.Index, s.NumSnim)
	ok := bytes.Equal(want, s.Chain) && s.Index == prev.index+1
	if seen && s.Index <= prev.index {
		return nil // a repeat of what was already checked
	}
	if !ok {
		c.log.Error("scan chain broken: a scan between two others is missing or was altered",
			"num_idk", numIDK, "spool_epoch", epoch, "after_index", prev.index, "index", s.Index, "num_snim", s.NumSnim)
		if err := count(tx, numIDK, "chain_break"); err != nil {
			return err
		}
	}
	// Follow the agent's chain from here, so one break is counted once.
	return tx.Put(bucketChains, k, append(binary.BigEndian.AppendUint64(nil, s.Index), s.Chain...))
}

type link struct {
	index uint64
	chain []byte
}

// Counts returns the numbers for one ИДК: chain breaks, changed files,
// missing files.
func (c *Checker) Counts(numIDK string) (breaks, changed, missing int, err error) {
	n := map[string]int{}
	err = c.each(func(idk, kind string, v int) {
		if idk == numIDK {
			n[kind] = v
		}
	})
	return n["chain_break"], n["changed"], n["missing"], err
}

// each calls fn with every count there is.
func (c *Checker) each(fn func(numIDK, kind string, n int)) error {
	return c.db.View(func(tx ingest.Tx) error {
		return tx.Scan(bucketCounts, nil, nil, false, func(k, v []byte) error {
			i := bytes.IndexByte(k, 0)
			if i < 0 || len(v) != 8 {
				return fmt.Errorf("integrity: count %q: malformed", k)
			}
			fn(string(k[:i]), string(k[i+1:]), int(binary.BigEndian.Uint64(v)))
			return nil
		})
	})
}

var desc = prometheus.NewDesc("idk_collector_integrity_events_total",
	"Evidence problems per ИДК, counted from the stored events: kind chain_break (a scan missing between two others), changed (a file substituted after it was first seen), missing (a file gone before it was shipped), renamed (a name that could not be stored as it was, shipped percent-encoded), rejected (a file the collector refused for good).",
	[]string{"num_idk", "kind"}, nil)

// Describe implements prometheus.Collector.
func (c *Checker) Describe(ch chan<- *prometheus.Desc) { ch <- desc }

// Collect implements prometheus.Collector.
func (c *Checker) Collect(ch chan<- prometheus.Metric) {
	err := c.each(func(numIDK, kind string, n int) {
		ch <- prometheus.MustNewConstMetric(desc, prometheus.CounterValue, float64(n), numIDK, kind)
	})
	if err != nil {
		c.log.Error("integrity counts unreadable", "err", err)
	}
}
