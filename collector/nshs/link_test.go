package nshs

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"idk/collector/ingest"
	"idk/collector/store"
	"idk/protocol/idkpb"
	"idk/simulator/simclock"
)

// putRecorder is a fake book: it keeps what is Put, by ID, as the book
// does.
type putRecorder struct {
	byID map[string]NSHS
	puts int
	err  error
}

func (p *putRecorder) Put(_ ingest.Tx, n NSHS) error {
	if p.err != nil {
		return p.err
	}
	if p.byID == nil {
		p.byID = map[string]NSHS{}
	}
	p.byID[n.ID] = n
	p.puts++
	return nil
}

var linkDev = &idkpb.Device{NumIdk: "850591", KodTo: "10216100", NaimZtk: "т/п МАПП Забайкальск"}

var linkT0 = time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC)

// linkEvent is a LinkOutage reported at drained, from start to end
// (minutes after linkT0), the agent's clock off by offset.
func linkEvent(start, end, drained time.Duration, offset time.Duration) *idkpb.Event {
	ns := func(d time.Duration) int64 {
		if d < 0 {
			return 0
		}
		return linkT0.Add(d).UnixNano()
	}
	return &idkpb.Event{Seq: 7, TimeUnixNano: ns(drained), CollectorTimeUnixNano: ns(drained) + int64(offset),
		Body: &idkpb.Event_LinkOutage{LinkOutage: &idkpb.LinkOutage{
			StartUnixNano: ns(start), EndUnixNano: ns(end), DrainedUnixNano: ns(drained), Reason: "timeout:\n no recent network activity"}}}
}

func TestLinkJournalStoresTheOutage(t *testing.T) {
	p := &putRecorder{}
	j := NewLinkJournal(p)
	ev := linkEvent(0, 45*time.Minute, 50*time.Minute, 0)
	if err := j.Apply(nil, linkDev, 1, ev); err != nil {
		t.Fatal(err)
	}
	if err := j.Apply(nil, linkDev, 1, ev); err != nil { // the same event again
		t.Fatal(err)
	}
	if len(p.byID) != 1 {
		t.Fatalf("%d НШС for one outage reported twice, want 1", len(p.byID))
	}
	id := "link-850591-" + strconv.FormatInt(linkT0.Unix(), 10)
	n, ok := p.byID[id]
	if !ok {
		t.Fatalf("no НШС %s: %v", id, p.byID)
	}
	want := NSHS{ID: id, Source: SourceLink, KodTO: "10216100", NumIDK: "850591",
		Systems:  "канал связи поста т/п МАПП Забайкальск с коллектором",
		Category: CategoryI, Cause: CauseExternalChannel,
		Start: linkT0, End: linkT0.Add(45 * time.Minute), Confirmed: true}
	if n.ID != want.ID || n.Source != want.Source || n.KodTO != want.KodTO || n.NumIDK != want.NumIDK || n.Systems != want.Systems ||
		n.Category != want.Category || n.Cause != want.Cause || !n.Start.Equal(want.Start) || !n.End.Equal(want.End) || n.Confirmed != want.Confirmed {
		t.Fatalf("НШС =\n%+v\nwant\n%+v", n, want)
	}
	if !n.Closed() {
		t.Fatal("a drained outage is not closed")
	}
	if n.Description == "" || strings.Contains(n.Description, "\n") {
		t.Fatalf("description %q: want one line", n.Description)
	}
}

func TestLinkJournalCategoryAndConfirmation(t *testing.T) {
	for _, c := range []struct {
		name          string
		end, drained  time.Duration
		category      Category
		confirmed     bool
		offset        time.Duration
		start, wantTo time.Time
	}{
		{name: "exactly 30 minutes is local", end: 30 * time.Minute, drained: 31 * time.Minute, category: CategoryIV, confirmed: true},
		{name: "30 minutes and a second", end: 30*time.Minute + time.Second, drained: 31 * time.Minute, category: CategoryI, confirmed: true},
		{name: "not drained", end: 40 * time.Minute, drained: -1, category: CategoryI},
		{name: "agent clock 2 minutes slow", end: 40 * time.Minute, drained: 41 * time.Minute, category: CategoryI, confirmed: true, offset: 2 * time.Minute},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := &putRecorder{}
			ev := linkEvent(0, c.end, c.drained, c.offset)
			if c.drained < 0 {
				ev.TimeUnixNano = linkT0.Add(c.end).UnixNano()
				ev.CollectorTimeUnixNano = ev.TimeUnixNano
			}
			if err := NewLinkJournal(p).Apply(nil, linkDev, 1, ev); err != nil {
				t.Fatal(err)
			}
			if len(p.byID) != 1 {
				t.Fatalf("%d НШС", len(p.byID))
			}
			for id, n := range p.byID {
				if id != "link-850591-"+strconv.FormatInt(linkT0.Unix(), 10) {
					t.Errorf("ID %s: the agent's start must name it, whatever the offset", id)
				}
				if n.Category != c.category || n.Confirmed != c.confirmed {
					t.Errorf("category %v confirmed %v, want %v %v", n.Category, n.Confirmed, c.category, c.confirmed)
				}
				if !n.Start.Equal(linkT0.Add(c.offset)) || !n.End.Equal(linkT0.Add(c.end+c.offset)) {
					t.Errorf("%s - %s, want the agent's times corrected by %s", n.Start, n.End, c.offset)
				}
			}
		})
	}
}

func TestLinkJournalPassesOverWhatIsNoOutage(t *testing.T) {
	p := &putRecorder{}
	j := NewLinkJournal(p)
	other := &idkpb.Event{Body: &idkpb.Event_VehicleEntered{VehicleEntered: &idkpb.VehicleEntered{}}}
	backwards := linkEvent(10*time.Minute, 0, 11*time.Minute, 0)
	nostart := linkEvent(0, 10*time.Minute, 11*time.Minute, 0)
	nostart.GetLinkOutage().StartUnixNano = 0
	for _, ev := range []*idkpb.Event{other, backwards, nostart} {
		if err := j.Apply(nil, linkDev, 1, ev); err != nil {
			t.Fatal(err)
		}
	}
	if p.puts != 0 {
		t.Fatalf("%d НШС put, want none", p.puts)
	}
	// A value the book refuses is passed over; a failure of the index
	// refuses the batch.
	p.err = &FieldError{Field: "id", Err: errors.New("no")}
	if err := j.Apply(nil, linkDev, 1, linkEvent(0, time.Hour, time.Hour, 0)); err != nil {
		t.Fatalf("refused value: %v, want it passed over", err)
	}
	p.err = errors.New("disk")
	if err := j.Apply(nil, linkDev, 1, linkEvent(0, time.Hour, time.Hour, 0)); err == nil {
		t.Fatal("an index failure was swallowed")
	}
	if n, _ := LinkNSHS(&idkpb.Device{NumIdk: "1"}, linkEvent(0, time.Hour, time.Hour, 0), linkEvent(0, time.Hour, time.Hour, 0).GetLinkOutage()); n.Systems != "канал связи поста с коллектором" {
		t.Fatalf("systems without NAIM_ZTK: %q", n.Systems)
	}
}

// TestLinkJournalWithTheBook runs the consumer through ingest on a real
// index into the real book.
func TestLinkJournalWithTheBook(t *testing.T) {
	clk := simclock.New(linkT0.Add(2 * time.Hour))
	st, err := store.Open(t.TempDir(), store.Options{Location: time.UTC, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	log := ingest.FromStore(st)
	book := NewBook(log, time.UTC, clk)
	in := ingest.New(ingest.Config{Log: log, Consumers: map[string]ingest.Consumer{"nshs.link": NewLinkJournal(book)}})
	if err := in.Load(); err != nil {
		t.Fatal(err)
	}
	ev := linkEvent(0, 45*time.Minute, 50*time.Minute, 0)
	ev.CollectorTimeUnixNano = 0
	for range 2 {
		if _, err := in.Ingest(linkDev, 1, []*idkpb.Event{ev}, func(ns int64) time.Time { return time.Unix(0, ns) }); err != nil {
			t.Fatal(err)
		}
	}
	ns, err := book.Between(linkT0.Add(-time.Hour), linkT0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	var links []NSHS
	for _, n := range ns {
		if n.Source == SourceLink {
			links = append(links, n)
		}
	}
	if len(links) != 1 || links[0].Category != CategoryI || !links[0].Closed() || links[0].KodTO != "10216100" {
		t.Fatalf("link НШС in the book = %+v, want one closed, category I", links)
	}
}
