package ship

import (
	"errors"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"idk/agent/spool"
	"idk/protocol/idkpb"
	"idk/simulator/simclock"
)

// bookkeeping is a shipper that is never run: the tests call its outage
// bookkeeping as Run and session would.
type bookkeeping struct {
	sp    *spool.Spool
	clk   *simclock.Clock
	sh    *Shipper
	start time.Time
}

func newBookkeeping(t *testing.T) *bookkeeping {
	t.Helper()
	sp, err := spool.Open(filepath.Join(t.TempDir(), "spool.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sp.Close() })
	start := time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC)
	b := &bookkeeping{sp: sp, clk: simclock.New(start), start: start}
	b.restart()
	return b
}

// restart is a new shipper on the same spool, as after a restart of the
// agent.
func (b *bookkeeping) restart() {
	b.sh = New(Config{Spool: b.sp, Clock: b.clk, Device: &idkpb.Device{NumIdk: "850591"}, Log: slog.New(slog.DiscardHandler)})
}

func (b *bookkeeping) at(d time.Duration) {
	b.clk.Advance(b.start.Add(d).Sub(b.clk.Now()))
}

func (b *bookkeeping) meta(t *testing.T) (outage, bool) {
	t.Helper()
	var o outage
	var ok bool
	if err := b.sp.View(func(tx *spool.Tx) error { o, ok = readOutage(tx); return nil }); err != nil {
		t.Fatal(err)
	}
	return o, ok
}

func (b *bookkeeping) outages(t *testing.T) []*idkpb.LinkOutage {
	t.Helper()
	evs, err := b.sp.PendingEvents(1000, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	var out []*idkpb.LinkOutage
	for _, ev := range evs {
		if lo := ev.GetLinkOutage(); lo != nil {
			out = append(out, lo)
		}
	}
	return out
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func (b *bookkeeping) drain(t *testing.T) bool {
	t.Helper()
	done, err := b.sh.drainOutage()
	must(t, err)
	return done
}

func TestLongOutageIsRecordedOnceTheSpoolDrains(t *testing.T) {
	b := newBookkeeping(t)
	lost := errors.New("timeout: no recent network activity")
	must(t, b.sh.linkDown(lost))
	b.at(30 * time.Second)
	must(t, b.sh.linkDown(errors.New("dial: no route"))) // a failed dial during the outage
	b.restart()                                          // the agent restarts during the outage
	b.at(time.Minute)
	must(t, b.sh.linkDown(errors.New("dial: no route")))
	if o, _ := b.meta(t); o.Start != b.start.UnixNano() || o.Reason != lost.Error() {
		t.Fatalf("outage after failed dials and a restart = %+v, want the first failure kept", o)
	}

	// Back after 12 minutes, with a scan file still queued.
	f := spool.File{NumSnim: "S1", Name: "a.jpg", Path: "/nowhere", Size: 1, SHA256: []byte{1}}
	must(t, b.sp.Update(func(tx *spool.Tx) error { return tx.PutFile(f) }))
	b.at(12 * time.Minute)
	must(t, b.sh.linkUp())
	if b.drain(t) {
		t.Fatal("outage recorded while a file is still pending")
	}
	if n := len(b.outages(t)); n != 0 {
		t.Fatalf("%d LinkOutage events before the spool drained", n)
	}

	b.at(15 * time.Minute)
	f.Done = true
	must(t, b.sp.Update(func(tx *spool.Tx) error { return tx.PutFile(f) }))
	if !b.drain(t) {
		t.Fatal("outage not recorded once the spool drained")
	}
	got := b.outages(t)
	if len(got) != 1 {
		t.Fatalf("%d LinkOutage events, want 1", len(got))
	}
	want := &idkpb.LinkOutage{StartUnixNano: b.start.UnixNano(), EndUnixNano: b.start.Add(12 * time.Minute).UnixNano(),
		DrainedUnixNano: b.start.Add(15 * time.Minute).UnixNano(), Reason: lost.Error()}
	if got[0].StartUnixNano != want.StartUnixNano || got[0].EndUnixNano != want.EndUnixNano ||
		got[0].DrainedUnixNano != want.DrainedUnixNano || got[0].Reason != want.Reason {
		t.Fatalf("LinkOutage = %v, want %v", got[0], want)
	}
	if _, ok := b.meta(t); ok {
		t.Fatal("outage still in the spool's meta after its event")
	}
	// The event itself is pending now: nothing more is recorded.
	if !b.drain(t) || len(b.outages(t)) != 1 {
		t.Fatal("outage recorded twice")
	}
}

func TestShortOutageIsForgotten(t *testing.T) {
	b := newBookkeeping(t)
	must(t, b.sh.linkDown(errors.New("lost")))
	b.at(DefaultOutageThreshold)
	must(t, b.sh.linkUp())
	if _, ok := b.meta(t); ok {
		t.Fatal("an outage of exactly the threshold was kept")
	}
	if !b.drain(t) || len(b.outages(t)) != 0 {
		t.Fatal("a short outage was recorded")
	}
}

func TestOutageLostAgainBeforeDrainingGoesOn(t *testing.T) {
	b := newBookkeeping(t)
	f := spool.File{NumSnim: "S1", Name: "a.jpg", Path: "/nowhere", Size: 1, SHA256: []byte{1}}
	must(t, b.sp.Update(func(tx *spool.Tx) error { return tx.PutFile(f) }))
	must(t, b.sh.linkDown(errors.New("first")))
	b.at(10 * time.Minute)
	must(t, b.sh.linkUp())
	b.at(11 * time.Minute)
	must(t, b.sh.linkDown(errors.New("second")))
	if o, _ := b.meta(t); o.Start != b.start.UnixNano() || o.End != 0 {
		t.Fatalf("outage lost again before draining = %+v, want the first start and no end", o)
	}
	b.at(20 * time.Minute)
	must(t, b.sh.linkUp())
	f.Done = true
	must(t, b.sp.Update(func(tx *spool.Tx) error { return tx.PutFile(f) }))
	b.at(21 * time.Minute)
	if !b.drain(t) {
		t.Fatal("not recorded")
	}
	got := b.outages(t)
	if len(got) != 1 || got[0].StartUnixNano != b.start.UnixNano() || got[0].EndUnixNano != b.start.Add(20*time.Minute).UnixNano() {
		t.Fatalf("LinkOutage = %v, want one from the first loss to the last reconnection", got)
	}
}

func TestUnreadableOutageRecordDoesNotStopShipping(t *testing.T) {
	b := newBookkeeping(t)
	must(t, b.sp.Update(func(tx *spool.Tx) error { return tx.PutMeta(metaOutage, []byte("{garbage")) }))
	must(t, b.sh.linkUp())
	if !b.drain(t) {
		t.Fatal("an unreadable record waits for the spool")
	}
	must(t, b.sh.linkDown(errors.New("lost")))
	if o, ok := b.meta(t); !ok || o.Start != b.start.UnixNano() {
		t.Fatalf("outage = %+v %v, want a new one replacing the unreadable record", o, ok)
	}
}

// TestOutageIsShipped runs the shipper against a collector after an
// outage that began before a restart of the agent: the collector gets one
// LinkOutage, after the file queued during the outage.
func TestOutageIsShipped(t *testing.T) {
	c := startCollector(t, func(string, int) (idkpb.FileOfferReply_Status, string, string) {
		return idkpb.FileOfferReply_STATUS_SEND, "", ""
	})
	a := newAgent(t, c)
	start := a.start.Add(-20 * time.Minute)
	must(t, a.sp.Update(func(tx *spool.Tx) error { return putOutage(tx, outage{Start: start.UnixNano(), Reason: "lost"}) }))
	a.queue(t, "during.jpg")
	a.run(t)
	var lo *idkpb.LinkOutage
	eventually(t, "the LinkOutage event", func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		for _, ev := range c.events {
			if ev.GetLinkOutage() != nil {
				lo = ev.GetLinkOutage()
				return true
			}
		}
		return false
	})
	if lo.StartUnixNano != start.UnixNano() || lo.EndUnixNano < a.start.UnixNano() || lo.DrainedUnixNano < lo.EndUnixNano || lo.Reason != "lost" {
		t.Fatalf("LinkOutage = %v", lo)
	}
	if got := c.storedNames(); len(got) != 1 {
		t.Fatalf("stored %v before the outage was recorded, want during.jpg", got)
	}
}
