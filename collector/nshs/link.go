package nshs

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"idk/collector/ingest"
	"idk/protocol/idkpb"
)

// Putter stores an НШС of the link or the collector in a transaction:
// (*Book).Put.
type Putter interface {
	Put(tx ingest.Tx, n NSHS) error
}

// LinkJournal is the ingest consumer ("nshs.link") that keeps the НШС of
// the links from the posts to the collector: each idkpb.LinkOutage an
// agent reports, once its link is back and its spool drained, becomes an
// НШС of source link, stored in the transaction that stores the event.
//
// The agent measures the outage on its own clock; the times are corrected
// by the offset the collector applied to the event (collector time less
// agent time), as every event time is. The ID is "link-", the ИДК's
// NUM_IDK and the start in Unix seconds by the agent's clock, so the same
// outage reported twice is one НШС.
//
// An event that cannot be an НШС (no start, an end before it) is passed
// over: refusing it would refuse its batch, and the agent would send it
// again forever.
type LinkJournal struct {
	Book Putter
}

// NewLinkJournal returns the consumer storing into book.
func NewLinkJournal(book Putter) *LinkJournal { return &LinkJournal{Book: book} }

// LinkID is the ID of the НШС of dev's link outage that began at start
// (Unix nanoseconds by the agent's clock).
func LinkID(numIDK string, startUnixNano int64) string {
	return fmt.Sprintf("link-%s-%d", numIDK, startUnixNano/int64(time.Second))
}

// Apply implements ingest.Consumer.
func (j *LinkJournal) Apply(tx ingest.Tx, dev *idkpb.Device, _ uint64, ev *idkpb.Event) error {
	lo := ev.GetLinkOutage()
	if lo == nil {
		return nil
	}
	n, ok := LinkNSHS(dev, ev, lo)
	if !ok {
		return nil
	}
	err := j.Book.Put(tx, n)
	if errors.Is(err, ErrRefused) {
		return nil // a value the book will never take: see above
	}
	return err
}

// LinkNSHS is the НШС of link outage lo, reported by dev in ev; ok is
// false when lo cannot be one.
func LinkNSHS(dev *idkpb.Device, ev *idkpb.Event, lo *idkpb.LinkOutage) (n NSHS, ok bool) {
	if lo.StartUnixNano <= 0 || lo.EndUnixNano < lo.StartUnixNano {
		return NSHS{}, false
	}
	var offset int64
	if ev.CollectorTimeUnixNano != 0 {
		offset = ev.CollectorTimeUnixNano - ev.TimeUnixNano
	}
	at := func(ns int64) time.Time { return time.Unix(0, ns+offset) }
	n = NSHS{
		ID:        LinkID(dev.GetNumIdk(), lo.StartUnixNano),
		Source:    SourceLink,
		KodTO:     dev.GetKodTo(),
		NumIDK:    dev.GetNumIdk(),
		Systems:   linkSystems(dev.GetNaimZtk()),
		Start:     at(lo.StartUnixNano),
		Confirmed: lo.DrainedUnixNano != 0,
	}
	if lo.EndUnixNano != 0 {
		n.End = at(lo.EndUnixNano)
	}
	n.Cause = LinkRule.Cause
	n.Category = LinkRule.Classify(n.Start, n.End)
	d := "потеря связи ИДК " + dev.GetNumIdk() + " с коллектором"
	if r := strings.TrimSpace(lo.Reason); r != "" {
		d += " (" + oneLine(r, 300) + ")"
	}
	if n.Confirmed {
		d += "; после восстановления связи данные поста переданы полностью"
	}
	n.Description = d
	return n, true
}

func linkSystems(naimZTK string) string {
	if naimZTK = strings.TrimSpace(naimZTK); naimZTK == "" {
		return "канал связи поста с коллектором"
	}
	return "канал связи поста " + naimZTK + " с коллектором"
}

// oneLine is s on one line, cut to limit runes.
func oneLine(s string, limit int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > limit {
		s = string(r[:limit]) + "…"
	}
	return s
}
