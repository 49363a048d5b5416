// Package monthplay plays a simulated month (simulator/month) through the
// collector's real parts on a virtual clock: agent events through ingest
// into the store's index with the availability, case and scan journals;
// staff events to the case engine; officers' entries and counts; and,
// once the month is over, the reasons of its breaches (item 36). What it
// leaves is what a collector that lived through the month keeps (a store
// root with index.db, cases.db and the forms' files), with the parts open
// on it and a report builder over them, for tests of the reports and of
// what moves that history (idk-collector migrate).
package monthplay

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
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

// Seed is the month Play plays: the same seed, the same month.
const Seed = 20261101

// Played is a month played, with the collector's parts still open on it.
type Played struct {
	Month    *month.Month
	Location *time.Location
	Clock    *simclock.Clock // at the month's end
	// Root is the store's root, as a collector's store.root: index.db,
	// cases.db (the engine's) and the stored files.
	Root string
	// RosterFile is the officers' roster the reports read.
	RosterFile string
	Store      *store.Store
	Index      ingest.Log
	Engine     *cases.Engine
	Scans      *report.ScanJournal
	Entries    *report.Entries
	Roster     *report.FileRoster
	Builder    *report.Builder
	Took       time.Duration // how long playing it took

	closers []func() error
}

// Close closes the engine and the store (and so their files).
func (p *Played) Close() error {
	var errs []error
	for _, c := range p.closers {
		errs = append(errs, c())
	}
	p.closers = nil
	return errors.Join(errs...)
}

// Play plays the month of Seed into dir (which must exist): the store
// root dir/store and the roster dir/roster.toml. Playing is a month of
// synced transactions: dir on a memory file system (/dev/shm) is quicker.
func Play(dir string) (*Played, error) { return PlaySeed(dir, Seed) }

// PlaySeed is Play of the month of seed.
func PlaySeed(dir string, seed int64) (_ *Played, err error) {
	began := time.Now()
	loc := time.FixedZone("MSK", 3*3600)
	m := month.Generate(seed, time.Date(2026, time.November, 1, 0, 0, 0, 0, loc), loc)
	clk := simclock.New(m.Start.Add(-time.Hour))
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	p := &Played{Month: m, Location: loc, Clock: clk, Root: filepath.Join(dir, "store")}
	defer func() {
		if err != nil {
			p.Close()
		}
	}()

	st, err := store.Open(p.Root, store.Options{Location: loc, Clock: clk, Log: quiet})
	if err != nil {
		return nil, err
	}
	p.closers = append(p.closers, st.Close)
	index := ingest.FromStore(st)
	// Where a collector keeps it: beside the index, under store.root.
	engine, err := cases.Open(filepath.Join(p.Root, "cases.db"), loc, clk)
	if err != nil {
		return nil, err
	}
	// The engine first: it is closed before the store.
	p.closers = append([]func() error{engine.Close}, p.closers...)
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
	if p.RosterFile, err = writeRoster(dir, m.Roster); err != nil {
		return nil, err
	}
	roster, err := report.OpenRoster(p.RosterFile, clk)
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
	p.Store, p.Index, p.Engine, p.Scans, p.Entries, p.Roster = st, index, engine, scans, entries, roster
	p.Builder = report.NewBuilder(report.Sources{Index: index, Scans: scans, Entries: entries, Cases: engine, Roster: roster, Location: loc, Clock: clk})
	p.Took = time.Since(began)
	return p, nil
}

// writeRoster writes the month's officers as a roster file in dir.
func writeRoster(dir string, officers []month.Officer) (string, error) {
	var b strings.Builder
	for _, o := range officers {
		fmt.Fprintf(&b, "[[officer]]\nlogin = %q\nfio = %q\nlnp = %q\n\n", o.Login, o.FIO, o.LNP)
	}
	path := filepath.Join(dir, "roster.toml")
	return path, os.WriteFile(path, []byte(b.String()), 0o600)
}
