package nshs_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"idk/collector/availability"
	"idk/collector/ingest"
	"idk/collector/nshs"
	"idk/collector/report"
	"idk/collector/store"
	"idk/protocol/idkpb"
	"idk/simulator/simclock"
)

// A day at two posts on a virtual clock, through the collector's real
// parts (the index, ingest with the availability journal and the link
// journal, the book): a power cut at an ИДК, a short and a long outage of
// a post's link, and a collector crash. The НШС, the appendix 4 form of
// the duty shift's day and the week's summary are checked against the
// scenario's own account of what happened, written below by hand from
// the ICT rules (categories of appendix 2, causes of 4.1), not by the
// package's code.
func TestScenarioDayOfIncidents(t *testing.T) {
	msk := time.FixedZone("MSK", 3*3600)
	at := func(h, m int) time.Time { return time.Date(2026, 11, 25, h, m, 0, 0, msk) }
	clk := simclock.New(at(7, 0))
	advanceTo := func(t time.Time) { clk.Advance(t.Sub(clk.Now())) }
	dir := t.TempDir()
	st, err := store.Open(filepath.Join(dir, "data"), store.Options{Location: msk, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	index := ingest.FromStore(st)
	book := nshs.NewBook(index, msk, clk)
	journal := availability.NewJournal(availability.NewTracker(msk, clk))
	in := ingest.New(ingest.Config{Log: index,
		Consumers: map[string]ingest.Consumer{"availability": journal, "nshs.link": nshs.NewLinkJournal(book)},
		Followers: []ingest.Follower{journal}})
	if err := in.Load(); err != nil {
		t.Fatal(err)
	}
	siteA := &idkpb.Site{NaimZtk: "МАПП А", KodTo: "10216100", NaimTo: "БАЛТИЙСКАЯ", Disl: 1}
	devA := &idkpb.Device{NumIdk: "850591", TypeIdk: 2, KodTo: "10216100", NaimTo: "БАЛТИЙСКАЯ", NaimZtk: "МАПП А", DislIdk: 1}
	devB := &idkpb.Device{NumIdk: "850601", TypeIdk: 2, KodTo: "10216200", NaimTo: "ПСКОВСКАЯ", NaimZtk: "МАПП Б", DislIdk: 1}
	seq := map[string]uint64{}
	send := func(dev *idkpb.Device, when time.Time, ev *idkpb.Event) {
		t.Helper()
		seq[dev.NumIdk]++
		ev.Seq, ev.TimeUnixNano = seq[dev.NumIdk], when.UnixNano()
		if _, err := in.Ingest(dev, 1, []*idkpb.Event{ev}, func(n int64) time.Time { return time.Unix(0, n) }); err != nil {
			t.Fatal(err)
		}
	}
	state := func(dev *idkpb.Device, when time.Time, s idkpb.DeviceState, cause idkpb.InoperableCause) {
		send(dev, when, &idkpb.Event{Body: &idkpb.Event_State{State: &idkpb.StateChange{State: s, Cause: cause, Source: "controller", Site: siteA}}})
	}
	outage := func(dev *idkpb.Device, start, end time.Time) {
		send(dev, end.Add(2*time.Minute), &idkpb.Event{Body: &idkpb.Event_LinkOutage{LinkOutage: &idkpb.LinkOutage{
			StartUnixNano: start.UnixNano(), EndUnixNano: end.UnixNano(), DrainedUnixNano: end.Add(time.Minute).UnixNano(), Reason: "timeout"}}})
	}

	// 08:00 the ИДК works; 10:00 the post loses power: the ИДК is
	// inoperable (its power supply) until 11:10.
	advanceTo(at(8, 0))
	state(devA, at(8, 0), idkpb.DeviceState_DEVICE_STATE_WORKING, 0)
	advanceTo(at(10, 0))
	state(devA, at(10, 0), idkpb.DeviceState_DEVICE_STATE_INOPERABLE, idkpb.InoperableCause_INOPERABLE_CAUSE_GENERATOR)
	advanceTo(at(11, 10))
	state(devA, at(11, 10), idkpb.DeviceState_DEVICE_STATE_WORKING, 0)
	// Post Б's link: down 12:00-12:20 (restored within 30 minutes), then
	// 14:00-15:30; each reported when it returns.
	advanceTo(at(12, 22))
	outage(devB, at(12, 0), at(12, 20))
	advanceTo(at(15, 32))
	outage(devB, at(14, 0), at(15, 30))
	// The collector crashes at 16:00 (last heartbeat) and is back at 16:45.
	heartbeat := filepath.Join(dir, "nshs.heartbeat")
	beat, _ := json.Marshal(nshs.Beat{Time: at(16, 0)})
	if err := os.WriteFile(heartbeat, beat, 0o640); err != nil {
		t.Fatal(err)
	}
	advanceTo(at(16, 45))
	if _, err := nshs.RecordOutage(index, book, heartbeat, true, clk.Now(), []string{"10216100", "10216200"}); err != nil {
		t.Fatal(err)
	}
	// The ICT specialist finds the ИДК's outage was the supplier's power,
	// not the ИДК's own: a correction of the default cause.
	got, err := book.Between(at(0, 0), at(24, 0))
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range got {
		if n.Source == nshs.SourceIDK {
			works := "ДИЗЕЛЬ-ГЕНЕРАТОР ЗАПУЩЕН, ИДК ПЕРЕЗАПУЩЕН"
			if _, err := book.Correct(n.ID, nshs.Correction{Cause: nshs.CauseExternalPower, Works: &works, By: "ИВАНОВ", Reason: "ОТКЛЮЧЕНИЕ СЕТИ"}); err != nil {
				t.Fatal(err)
			}
		}
	}
	advanceTo(at(18, 0))
	if got, err = book.Between(at(0, 0), at(24, 0)); err != nil {
		t.Fatal(err)
	}

	// The scenario's account: source, body, category, cause, start, end.
	type want struct {
		source   nshs.Source
		kodTO    string
		category nshs.Category
		cause    nshs.Cause
		start    time.Time
		end      time.Time
	}
	wants := []want{
		// 70 minutes without the ИДК, a regulated-procedure means: I.
		{nshs.SourceIDK, "10216100", nshs.CategoryI, nshs.CauseExternalPower, at(10, 0), at(11, 10)},
		// Restored within 30 minutes: IV (локальная).
		{nshs.SourceLink, "10216200", nshs.CategoryIV, nshs.CauseExternalChannel, at(12, 0), at(12, 20)},
		// 90 minutes without exchange with the customs office: I.
		{nshs.SourceLink, "10216200", nshs.CategoryI, nshs.CauseExternalChannel, at(14, 0), at(15, 30)},
		// 45 minutes of the collector down, for each body it serves: I.
		{nshs.SourceCollector, "10216100", nshs.CategoryI, nshs.CauseInternalICT, at(16, 0), at(16, 45)},
		{nshs.SourceCollector, "10216200", nshs.CategoryI, nshs.CauseInternalICT, at(16, 0), at(16, 45)},
	}
	if len(got) != len(wants) {
		t.Fatalf("%d НШС, want %d: %+v", len(got), len(wants), got)
	}
	for i, w := range wants {
		n := got[i]
		if n.Source != w.source || n.KodTO != w.kodTO || n.Category != w.category || n.Cause != w.cause ||
			!n.Start.Equal(w.start) || !n.End.Equal(w.end) || !n.Closed() {
			t.Errorf("НШС %d: %s %s %s %s %v-%v closed %v, want %s %s %s %s %v-%v closed",
				i+1, n.Source, n.KodTO, n.Category, n.Cause, n.Start, n.End, n.Closed(),
				w.source, w.kodTO, w.category, w.cause, w.start, w.end)
		}
	}

	// The appendix 4 form of the duty day (08:00 to 08:00): the category
	// I НШС of body 10216200, read back from the workbook.
	doc, err := nshs.DayForm(book, at(0, 0), 8*time.Hour, msk, clk.Now(), "10216200")
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := doc.WriteXLSX(&buf); err != nil {
		t.Fatal(err)
	}
	wb, err := report.ReadWorkbook(&buf)
	if err != nil {
		t.Fatal(err)
	}
	rows := wb[nshs.FormTable.Sheet]
	if len(rows) != 3 {
		t.Fatalf("form of 10216200: %d rows with the header, want 3: %v", len(rows), rows)
	}
	col := func(name string) int { return nshs.FormTable.Field(name) }
	for i, w := range []struct{ start, end, dur string }{
		{"25.11.2026 14:00", "25.11.2026 15:30", "1,30"},
		{"25.11.2026 16:00", "25.11.2026 16:45", "0,45"},
	} {
		r := rows[i+1]
		if r[col("TAM_ORGAN")] != "10216200" || r[col("KATEGORIYA")] != "I" || r[col("DATA_VOZN")] != w.start ||
			r[col("DATA_USTR")] != w.end || r[col("PRODOLZH")] != w.dur {
			t.Errorf("form row %d: %v, want %s-%s %s", i+1, r, w.start, w.end, w.dur)
		}
	}

	// The week's summary: per body, counts by category and the total time.
	week, err := nshs.WeekForm(book, at(12, 0), msk, clk.Now(), "")
	if err != nil {
		t.Fatal(err)
	}
	sum := nshs.SummarizeWeek(week.All, clk.Now())
	byBody := map[string]nshs.SummaryRow{}
	for _, r := range sum {
		byBody[r.KodTO] = r
	}
	if r := byBody["10216100"]; r.Count != [5]int{2, 0, 0, 0, 0} || r.Duration != 115*time.Minute || r.Open != 0 {
		t.Errorf("week of 10216100: %+v, want 2 of category I, 1 h 55 min", r)
	}
	if r := byBody["10216200"]; r.Count != [5]int{2, 0, 0, 1, 0} || r.Duration != 155*time.Minute || r.Open != 0 {
		t.Errorf("week of 10216200: %+v, want 2 of category I and 1 of IV, 2 h 35 min", r)
	}
	if !slices.ContainsFunc(sum, func(r nshs.SummaryRow) bool { return r.KodTO == "" && r.Total == 5 }) {
		t.Errorf("week: no total row of 5 НШС: %+v", sum)
	}
}
