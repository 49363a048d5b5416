package report_test

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"idk/collector/availability"
	"idk/collector/cases"
	"idk/collector/ingest"
	"idk/collector/registry"
	"idk/collector/report"
	"idk/collector/store"
	"idk/protocol/idkpb"
	"idk/simulator/month"
	"idk/simulator/simclock"
)

// playedMonth is the simulated month of monthSeed played through the
// collector's real parts on a virtual clock (agent events through ingest
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
	began := time.Now()
	loc := time.FixedZone("MSK", 3*3600)
	m := month.Generate(monthSeed, time.Date(2026, time.November, 1, 0, 0, 0, 0, loc), loc)
	clk := simclock.New(m.Start.Add(-time.Hour))
	// In memory when the machine has /dev/shm: a month is tens of
	// thousands of synced transactions.
	dir, err := os.MkdirTemp("/dev/shm", "idk-month-")
	if err != nil {
		if dir, err = os.MkdirTemp("", "idk-month-"); err != nil {
			return nil, err
		}
	}
	monthDir = dir
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))

	st, err := store.Open(filepath.Join(dir, "store"), store.Options{Location: loc, Clock: clk, Log: quiet})
	if err != nil {
		return nil, err
	}
	monthClose = append(monthClose, st.Close)
	index := ingest.FromStore(st)
	engine, err := cases.Open(filepath.Join(dir, "cases.db"), loc, clk)
	if err != nil {
		return nil, err
	}
	monthClose = append([]func() error{engine.Close}, monthClose...)
	journal := availability.NewJournal(availability.NewTracker(loc, clk))
	feed := cases.NewFeed(engine, quiet)
	scans := report.NewScanJournal(loc)
	scans.Use(index)
	events := ingest.New(ingest.Config{Log: index, Logger: quiet,
		Consumers: map[string]ingest.Consumer{"availability": journal, "cases": feed, "report.scans": scans},
		Followers: []ingest.Follower{journal, feed}})
	if err := events.Load(); err != nil {
		return nil, err
	}
	rosterPath, err := writeRoster(dir, m.Roster)
	if err != nil {
		return nil, err
	}
	roster, err := report.OpenRoster(rosterPath, clk)
	if err != nil {
		return nil, err
	}
	entries := report.NewEntries(index, scans, loc, clk)

	// The agents' hellos.
	for _, d := range m.Devices {
		if err := st.PutDevice(d.Hello); err != nil {
			return nil, err
		}
		if err := engine.SetDevice(registry.DeviceFromProto(d.Hello)); err != nil {
			return nil, err
		}
	}
	// The agents' clocks are right: the collector's correction is none.
	correct := func(ns int64) time.Time { return time.Unix(0, ns).In(loc) }
	lastTick := clk.Now()
	deadlines := m.Deadlines
	for _, a := range m.Actions {
		// The collector ticks every second: a breach is recorded the
		// second after its deadline, and a breach withdrawn while it
		// runs keeps the time it had then. Tick there.
		for len(deadlines) > 0 && !deadlines[0].Add(time.Second).After(a.At) {
			if d := deadlines[0].Add(time.Second).Sub(clk.Now()); d > 0 {
				clk.Advance(d)
			}
			if err := engine.Tick(); err != nil {
				return nil, err
			}
			deadlines = deadlines[1:]
		}
		if d := a.At.Sub(clk.Now()); d > 0 {
			clk.Advance(d)
		}
		// Between deadlines every quarter of an hour is as good (and a
		// month of seconds too slow): a breach is dated by its deadline
		// whenever it is seen, and its row shows the final duration once
		// the end is reported.
		if clk.Now().Sub(lastTick) >= 15*time.Minute {
			if err := engine.Tick(); err != nil {
				return nil, err
			}
			lastTick = clk.Now()
		}
		switch {
		case a.Event != nil:
			if _, err := events.Ingest(a.Device.Hello, a.Device.Epoch, []*idkpb.Event{a.Event}, correct); err != nil {
				return nil, fmt.Errorf("%v: ИДК %s event %d: %w", a.At, a.Device.NumIDK(), a.Event.Seq, err)
			}
		case a.Case != nil:
			c := a.Case
			ev := cases.Event{Kind: cases.Kind(c.Kind), Time: a.At, NumIDK: c.NumIDK, NumSnim: c.NumSnim, Docs: c.Docs,
				VerScan: cases.ScanKind(c.VerScan), By: c.By, Source: "api"}
			if r := c.Risk; r != nil {
				ev.Risk = cases.RiskProfile{KodTeh: r.KodTeh, VidPr: r.VidPr, KodToPr: r.KodToPr, DateReg: r.DateReg, NumPr: r.NumPr, DocType: int(r.DocType)}
			}
			if _, err := engine.Add(ev); err != nil {
				return nil, fmt.Errorf("%v: %s: %w", a.At, c.Kind, err)
			}
		case a.Entry != nil:
			if _, err := entries.Add(a.Entry.Table, []map[string]string{a.Entry.Row}, a.Entry.By); err != nil {
				return nil, fmt.Errorf("%v: table %d entry %v: %w", a.At, a.Entry.Table, a.Entry.Row, err)
			}
		case a.Counts != nil:
			c := report.Counts{}
			for k, v := range a.Counts.Fields {
				c[k] = v
			}
			if err := entries.SetCounts(a.Counts.NumIDK, a.Counts.Day, c, a.Counts.By); err != nil {
				return nil, fmt.Errorf("%v: counts of %s: %w", a.At, a.Counts.NumIDK, err)
			}
		}
	}
	clk.Advance(m.End.Sub(clk.Now()))
	if err := engine.Tick(); err != nil {
		return nil, err
	}

	// Item 36: the post gives reasons for the month's breaches.
	breaches, err := engine.Breaches(m.Start, m.Start.AddDate(0, 0, m.Days-1))
	if err != nil {
		return nil, err
	}
	ids := map[string]string{}
	for _, r := range breaches {
		ids[r.NUM_IDK+"/"+r.NUM_SNIM] = r.ID
	}
	for _, r := range m.Reasons {
		id, ok := ids[r.NumIDK+"/"+r.NumSnim]
		if !ok {
			return nil, fmt.Errorf("no table 4 row for scan %s of ИДК %s, which the truth says breached", r.NumSnim, r.NumIDK)
		}
		if err := engine.SetReason(id, r.Reason, r.By); err != nil {
			return nil, err
		}
	}
	b := report.NewBuilder(report.Sources{Index: index, Scans: scans, Entries: entries, Cases: engine, Roster: roster, Location: loc, Clock: clk})
	return &playedMonth{m: m, loc: loc, clk: clk, index: index, engine: engine, scans: scans, entries: entries,
		builder: b, played: time.Since(began)}, nil
}

func writeRoster(dir string, officers []month.Officer) (string, error) {
	var b strings.Builder
	for _, o := range officers {
		fmt.Fprintf(&b, "[[officer]]\nlogin = %q\nfio = %q\nlnp = %q\n\n", o.Login, o.FIO, o.LNP)
	}
	path := filepath.Join(dir, "roster.toml")
	return path, os.WriteFile(path, []byte(b.String()), 0o600)
}
