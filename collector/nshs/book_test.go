package nshs

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"idk/collector/availability"
	"idk/collector/ingest"
	"idk/collector/store"
	"idk/protocol/idkpb"
	"idk/simulator/simclock"
)

var bookMSK = time.FixedZone("MSK", 3*60*60)

// bookAt is a wall-clock time in MSK on day d of November 2026.
func bookAt(d, h, m int) time.Time { return time.Date(2026, time.November, d, h, m, 0, 0, bookMSK) }

// bookFixture is the collector's real path: the bbolt index, ingest with
// the availability journal and a tracker following, and the book over
// the same index.
type bookFixture struct {
	t       *testing.T
	clock   *simclock.Clock
	log     ingest.Log
	in      *ingest.Ingest
	tracker *availability.Tracker
	book    *Book
	seq     map[string]uint64
}

func newBookFixture(t *testing.T) *bookFixture {
	t.Helper()
	clk := simclock.New(bookAt(27, 12, 0))
	st, err := store.Open(t.TempDir(), store.Options{Location: bookMSK, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	f := &bookFixture{t: t, clock: clk, log: ingest.FromStore(st), tracker: availability.NewTracker(bookMSK, clk), seq: map[string]uint64{}}
	j := availability.NewJournal(f.tracker)
	f.in = ingest.New(ingest.Config{Log: f.log, Consumers: map[string]ingest.Consumer{"availability": j}, Followers: []ingest.Follower{j}})
	if err := f.in.Load(); err != nil {
		t.Fatal(err)
	}
	f.book = NewBook(f.log, bookMSK, clk)
	f.book.UseSteps(f.tracker)
	return f
}

type change struct {
	at    time.Time
	state idkpb.DeviceState
	cause idkpb.InoperableCause
	note  string
}

// send ingests state changes of dev as one batch.
func (f *bookFixture) send(dev *idkpb.Device, cs ...change) {
	f.t.Helper()
	var evs []*idkpb.Event
	for _, c := range cs {
		f.seq[dev.NumIdk]++
		evs = append(evs, &idkpb.Event{Seq: f.seq[dev.NumIdk], TimeUnixNano: c.at.UnixNano(), Body: &idkpb.Event_State{State: &idkpb.StateChange{
			State: c.state, Cause: c.cause, Note: c.note, Source: "controller",
		}}})
	}
	if _, err := f.in.Ingest(dev, 1, evs, func(n int64) time.Time { return time.Unix(0, n) }); err != nil {
		f.t.Fatal(err)
	}
}

func (f *bookFixture) put(n NSHS) {
	f.t.Helper()
	if err := f.log.Update(func(tx ingest.Tx) error { return f.book.Put(tx, n) }); err != nil {
		f.t.Fatal(err)
	}
}

func (f *bookFixture) between(from, to time.Time) []NSHS {
	f.t.Helper()
	ns, err := f.book.Between(from, to)
	if err != nil {
		f.t.Fatal(err)
	}
	return ns
}

const (
	working    = idkpb.DeviceState_DEVICE_STATE_WORKING
	inoperable = idkpb.DeviceState_DEVICE_STATE_INOPERABLE
)

var (
	pkt  = &idkpb.Device{NumIdk: "850591", TypeIdk: 2, KodTo: "10101010", NaimTo: "Балтийская", NaimZtk: "ПКТ", DislIdk: 2}
	mapp = &idkpb.Device{NumIdk: "850700", TypeIdk: 2, KodTo: "10101020", NaimZtk: "МАПП"}
)

func incID(dev *idkpb.Device, start time.Time) string {
	return "idk-" + dev.NumIdk + "-" + start.UTC().Format("20060102T150405.999999999Z")
}

// TestBetweenIDK: the ИДК НШС come from the availability journal with
// the default mapping: a short outage is IV, a long one I, weather a
// disaster, the generator engineering; the open one is not confirmed;
// who was informed comes from the reporting steps.
func TestBetweenIDK(t *testing.T) {
	f := newBookFixture(t)
	f.send(pkt,
		change{at: bookAt(27, 8, 0), state: working},
		change{at: bookAt(27, 9, 0), state: inoperable, cause: idkpb.InoperableCause_INOPERABLE_CAUSE_SOFTWARE},
		change{at: bookAt(27, 9, 20), state: working},
		change{at: bookAt(27, 10, 0), state: inoperable, cause: idkpb.InoperableCause_INOPERABLE_CAUSE_GENERATOR, note: "ДГУ не запускается"},
		change{at: bookAt(27, 11, 0), state: working},
	)
	f.send(mapp,
		change{at: bookAt(27, 7, 0), state: working},
		change{at: bookAt(27, 11, 30), state: inoperable, cause: idkpb.InoperableCause_INOPERABLE_CAUSE_WEATHER},
	)
	long := incID(pkt, bookAt(27, 10, 0))
	if _, _, err := f.tracker.Report("850591", long[len("idk-"):], availability.StepHead, "Иванов"); err != nil {
		t.Fatal(err)
	}
	got := f.between(bookAt(27, 0, 0), bookAt(28, 0, 0))
	want := []NSHS{
		{
			ID: incID(pkt, bookAt(27, 9, 0)), Source: SourceIDK, KodTO: "10101010", NumIDK: "850591", Systems: "ИДК 850591 (ПКТ)",
			Description: "неработоспособность ИДК: неисправность программного обеспечения", Category: CategoryIV, Cause: CauseInternalICT,
			Start: bookAt(27, 9, 0), End: bookAt(27, 9, 20), Confirmed: true,
		},
		{
			ID: long, Source: SourceIDK, KodTO: "10101010", NumIDK: "850591", Systems: "ИДК 850591 (ПКТ)",
			Description: "неработоспособность ИДК: поломка дизель-генератора; ДГУ не запускается", Category: CategoryI, Cause: CauseInternalEngineer,
			Start: bookAt(27, 10, 0), End: bookAt(27, 11, 0), Confirmed: true,
			Informed: []string{"начальник структурного подразделения: Иванов, 27.11.2026 12:00"},
		},
		{
			ID: incID(mapp, bookAt(27, 11, 30)), Source: SourceIDK, KodTO: "10101020", NumIDK: "850700", Systems: "ИДК 850700 (МАПП)",
			Description: "неработоспособность ИДК: погодные условия", Category: CategoryI, Cause: CauseExternalDisaster,
			Start: bookAt(27, 11, 30),
		},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got\n%+v\nwant\n%+v", got, want)
	}
	// Another window: only what overlaps it.
	if got := f.between(bookAt(27, 9, 30), bookAt(27, 10, 30)); len(got) != 1 || got[0].ID != long {
		t.Errorf("9:30-10:30: %+v", got)
	}

	// A mapping change applies to the НШС already there.
	if _, err := f.book.SetRule(idkpb.InoperableCause_INOPERABLE_CAUSE_GENERATOR, Rule{CategoryII, CauseExternalPower}, "Сидоров"); err != nil {
		t.Fatal(err)
	}
	// An hour is within the 60 minutes of a category II system: local.
	n, err := f.book.Find(long)
	if err != nil || n.Category != CategoryIV || n.Cause != CauseExternalPower {
		t.Errorf("after the mapping change: %+v, %v", n, err)
	}
}

// TestCorrect: a correction replaces the fields it gives and is kept
// with who, when and why; the next one builds on it; the history lists
// both; an unknown НШС and bad values are refused.
func TestCorrect(t *testing.T) {
	f := newBookFixture(t)
	f.send(pkt, change{at: bookAt(27, 8, 0), state: working}, change{at: bookAt(27, 9, 0), state: inoperable}, change{at: bookAt(27, 11, 0), state: working})
	id := incID(pkt, bookAt(27, 9, 0))
	works := "перезагружен АРМ оператора"
	n, err := f.book.Correct(id, Correction{Category: CategoryIII, Works: &works, By: "Сидоров", Reason: "ошибка оператора"})
	if err != nil {
		t.Fatal(err)
	}
	if n.Category != CategoryIII || n.Cause != CauseInternalICT || n.Works != works {
		t.Errorf("corrected: %+v", n)
	}
	f.clock.Advance(time.Hour)
	informed := []string{"начальник ОТОиТК Петров"}
	if _, err := f.book.Correct(id, Correction{Cause: CauseInternalUser, Informed: &informed, By: "Петров", Reason: "уточнено"}); err != nil {
		t.Fatal(err)
	}
	got := f.between(bookAt(27, 0, 0), bookAt(28, 0, 0))
	if len(got) != 1 || got[0].Category != CategoryIII || got[0].Cause != CauseInternalUser || got[0].Works != works ||
		!reflect.DeepEqual(got[0].Informed, informed) {
		t.Errorf("after two corrections: %+v", got)
	}
	cs, err := f.book.Corrections(id)
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 2 || cs[0].Version != 1 || cs[1].Version != 2 || cs[0].By != "Сидоров" || cs[1].Reason != "уточнено" ||
		!cs[1].At.Equal(bookAt(27, 13, 0)) || cs[1].Category != 0 {
		t.Errorf("history %+v", cs)
	}

	if _, err := f.book.Correct(incID(pkt, bookAt(27, 9, 1)), Correction{Category: CategoryI, By: "x", Reason: "y"}); !errors.Is(err, ErrNoNSHS) {
		t.Errorf("unknown НШС: %v", err)
	}
	for _, c := range []struct {
		c     Correction
		field string
	}{
		{Correction{Category: CategoryI, Reason: "y"}, "by"},
		{Correction{Category: CategoryI, By: "x"}, "reason"},
		{Correction{By: "x", Reason: "y"}, "category"},
		{Correction{Category: 9, By: "x", Reason: "y"}, "category"},
		{Correction{Cause: "external.bad", By: "x", Reason: "y"}, "cause"},
		{Correction{Informed: &[]string{""}, By: "x", Reason: "y"}, "informed"},
	} {
		var fe *FieldError
		if _, err := f.book.Correct(id, c.c); !errors.As(err, &fe) || fe.Field != c.field {
			t.Errorf("%+v: %v, want a refusal of %s", c.c, err, c.field)
		}
	}
}

// TestPutGet: stored НШС are listed in the periods they overlap,
// however long ago they began; an update in place replaces the record,
// also when its start moves; defaults fill what the source left zero.
func TestPutGet(t *testing.T) {
	f := newBookFixture(t)
	link := NSHS{ID: "link-850591-1", Source: SourceLink, KodTO: "10101010", NumIDK: "850591", Systems: "канал связи поста с коллектором",
		Start: bookAt(20, 10, 0)}
	f.put(link)
	coll := NSHS{ID: "collector-1", Source: SourceCollector, KodTO: "10101000", Systems: "коллектор РТУ", Category: CategoryII, Cause: CauseInternalPlanned,
		Start: bookAt(27, 3, 0), End: bookAt(27, 3, 10), Confirmed: true}
	f.put(coll)

	// Open since the 20th: listed on the 27th, category I by default.
	got := f.between(bookAt(27, 0, 0), bookAt(28, 0, 0))
	if len(got) != 2 || got[0].ID != "link-850591-1" || got[0].Category != CategoryI || got[0].Cause != CauseExternalChannel ||
		got[1].ID != "collector-1" || got[1].Category != CategoryII || got[1].Cause != CauseInternalPlanned {
		t.Fatalf("27th: %+v", got)
	}
	// The link returned, reporting the outage's real start: the record
	// moves, and, closed after a week, it is found from its end's day.
	link.Start, link.End, link.Confirmed = bookAt(20, 9, 45), bookAt(27, 12, 0), true
	f.put(link)
	var stored NSHS
	err := f.log.View(func(tx ingest.Tx) error {
		var ok bool
		var err error
		if stored, ok, err = f.book.Get(tx, link.ID); !ok && err == nil {
			t.Error("Get: not found")
		}
		if _, ok, err := f.book.Get(tx, "nothing"); ok || err != nil {
			t.Errorf("Get of nothing: %v, %v", ok, err)
		}
		return err
	})
	if err != nil || !stored.Start.Equal(link.Start) || !stored.End.Equal(link.End) || stored.Category != 0 {
		t.Errorf("Get: %+v, %v", stored, err)
	}
	for _, w := range []struct {
		from, to time.Time
		n        int
	}{
		{bookAt(20, 0, 0), bookAt(21, 0, 0), 1},
		{bookAt(24, 0, 0), bookAt(25, 0, 0), 1},
		{bookAt(27, 12, 0), bookAt(28, 0, 0), 0}, // ended as the window begins
		{bookAt(19, 0, 0), bookAt(20, 9, 45), 0},
	} {
		if got := f.between(w.from, w.to); len(got) != w.n || (w.n == 1 && (got[0].ID != link.ID || !got[0].Confirmed || got[0].Category != CategoryI)) {
			t.Errorf("%s to %s: %+v", w.from, w.to, got)
		}
	}
	// A short link outage is local by default.
	short := NSHS{ID: "link-850591-2", Source: SourceLink, Start: bookAt(27, 13, 0), End: bookAt(27, 13, 20), Confirmed: true}
	f.put(short)
	if n, err := f.book.Find(short.ID); err != nil || n.Category != CategoryIV || n.Cause != CauseExternalChannel {
		t.Errorf("short: %+v, %v", n, err)
	}

	for _, c := range []struct {
		n     NSHS
		field string
	}{
		{NSHS{Source: SourceLink, Start: bookAt(27, 1, 0)}, "id"},
		{NSHS{ID: "x", Source: SourceIDK, Start: bookAt(27, 1, 0)}, "source"},
		{NSHS{ID: "x", Source: "y", Start: bookAt(27, 1, 0)}, "source"},
		{NSHS{ID: "x", Source: SourceLink}, "start"},
		{NSHS{ID: "x", Source: SourceLink, Start: bookAt(27, 1, 0), End: bookAt(27, 0, 0)}, "end"},
		{NSHS{ID: "x", Source: SourceLink, Start: bookAt(27, 1, 0), Category: 6}, "category"},
	} {
		var fe *FieldError
		err := f.log.Update(func(tx ingest.Tx) error { return f.book.Put(tx, c.n) })
		if !errors.As(err, &fe) || fe.Field != c.field {
			t.Errorf("%+v: %v, want a refusal of %s", c.n, err, c.field)
		}
	}
}

// TestBetweenSorted: the sources together, by start, then ID.
func TestBetweenSorted(t *testing.T) {
	f := newBookFixture(t)
	f.send(pkt, change{at: bookAt(27, 8, 0), state: working}, change{at: bookAt(27, 9, 0), state: inoperable}, change{at: bookAt(27, 10, 0), state: working})
	f.put(NSHS{ID: "link-b", Source: SourceLink, Start: bookAt(27, 9, 0)})
	f.put(NSHS{ID: "collector-a", Source: SourceCollector, Start: bookAt(27, 9, 0)})
	f.put(NSHS{ID: "collector-0", Source: SourceCollector, Start: bookAt(27, 7, 0), End: bookAt(27, 8, 0), Confirmed: true})
	var ids []string
	for _, n := range f.between(bookAt(27, 0, 0), bookAt(28, 0, 0)) {
		ids = append(ids, n.ID)
	}
	if want := []string{"collector-0", "collector-a", incID(pkt, bookAt(27, 9, 0)), "link-b"}; !reflect.DeepEqual(ids, want) {
		t.Errorf("%v, want %v", ids, want)
	}
	if _, err := f.book.Between(bookAt(28, 0, 0), bookAt(27, 0, 0)); !errors.Is(err, ErrRefused) {
		t.Errorf("an empty period: %v", err)
	}
}
