package report_test

import (
	"os"
	"sync"
	"testing"
	"time"

	"idk/collector/cases"
	"idk/collector/ingest"
	"idk/collector/report"
	"idk/simulator/month"
	"idk/simulator/monthplay"
	"idk/simulator/simclock"
)

// playedMonth is the simulated month of monthSeed played
// (simulator/monthplay) through the collector's real parts on a virtual clock (agent events through ingest
// into the index with the availability, case and scan journals; staff
// events to the case engine; officers' entries and counts), with the
// breaches' reasons given after it (item 36). TestMonth, TestMonthlyMonth
// and TestItem36Month read it; it is played once for all of them, since
// playing it is most of their time. Tests may add to it (decisions), not
// change what the others read.
type playedMonth struct {
	m       *month.Month
	loc     *time.Location
	clk     *simclock.Clock
	index   ingest.Log
	engine  *cases.Engine
	scans   *report.ScanJournal
	entries *report.Entries
	builder *report.Builder
	played  time.Duration // how long playing it took
}

var (
	monthOnce   sync.Once
	monthPlayed *playedMonth
	monthErr    error
	monthClose  []func() error
	monthDir    string
)

// theMonth returns the played month, playing it on first use. Under
// -short the tests that need it are skipped.
func theMonth(t *testing.T) *playedMonth {
	t.Helper()
	if testing.Short() {
		t.Skip("a month of five ИДК")
	}
	monthOnce.Do(func() { monthPlayed, monthErr = playMonth() })
	if monthErr != nil {
		t.Fatal(monthErr)
	}
	return monthPlayed
}

func TestMain(m *testing.M) {
	code := m.Run()
	for _, c := range monthClose {
		c()
	}
	if monthDir != "" {
		os.RemoveAll(monthDir)
	}
	os.Exit(code)
}

func playMonth() (*playedMonth, error) {
	// In memory when the machine has /dev/shm: a month is tens of
	// thousands of synced transactions.
	dir, err := os.MkdirTemp("/dev/shm", "idk-month-")
	if err != nil {
		if dir, err = os.MkdirTemp("", "idk-month-"); err != nil {
			return nil, err
		}
	}
	monthDir = dir
	p, err := monthplay.PlaySeed(dir, monthSeed)
	if err != nil {
		return nil, err
	}
	monthClose = append(monthClose, p.Close)
	return &playedMonth{m: p.Month, loc: p.Location, clk: p.Clock, index: p.Index, engine: p.Engine, scans: p.Scans, entries: p.Entries,
		builder: p.Builder, played: p.Took}, nil
}
