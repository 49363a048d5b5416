package report

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"

	"idk/collector/availability"
	"idk/collector/cases"
	"idk/collector/ingest"
	"idk/collector/store"
	"idk/protocol/idkpb"
	"idk/simulator/simclock"
)

// The region of the month benchmark: 50 ИДК in 5 customs offices, 300
// scans a day each, November 2026.
const (
	benchOffices     = 5
	benchIDKPerOff   = 10
	benchScansPerDay = 300
	benchDays        = 30
)

// BenchmarkMonthReport builds the report of the last day of a month, the
// largest of the month (cumulative, A4 rule 3), for every customs office
// of a region of 50 ИДК with 300 scans a day each (450,000 table 1 rows),
// from a real index filled by the real journals; and, as its
// peer in the same run, writes the same number of table 1 cells with a
// bare excelize StreamWriter. It reports the time and the peak memory of
// the build (the Go heap, and the process's anonymous resident memory,
// which leaves out the index's file pages the kernel may drop at will):
//
//	go test -run '^$' -bench '^BenchmarkMonthReport$' -benchtime 1x ./collector/report/
func BenchmarkMonthReport(b *testing.B) {
	loc, err := time.LoadLocation("Europe/Moscow")
	if err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	last := time.Date(2026, 11, benchDays, 0, 0, 0, 0, loc)
	clk := simclock.New(last.Add(25 * time.Hour))
	st, err := store.Open(filepath.Join(dir, "data"), store.Options{Location: loc, Clock: clk})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	index := ingest.FromStore(st)
	scans := NewScanJournal(loc)
	journal := availability.NewJournal(availability.NewTracker(loc, clk))
	scans.Use(index)
	engine, err := cases.Open(filepath.Join(dir, "cases.db"), loc, clk)
	if err != nil {
		b.Fatal(err)
	}
	defer engine.Close()

	began := time.Now()
	var offices []string
	for o := range benchOffices {
		kod := fmt.Sprintf("1021%d100", o+1)
		offices = append(offices, kod)
		for i := range benchIDKPerOff {
			dev := &idkpb.Device{NumIdk: fmt.Sprintf("85%d%03d", o+1, i), TypeIdk: 2, KodTo: kod,
				NaimTo: "ТАМОЖЕННЫЙ ПОСТ " + kod, NaimZtk: "МАПП " + strconv.Itoa(i), DislIdk: 1}
			if err := feedMonth(index, []ingest.Consumer{journal, scans}, dev, time.Date(2026, 11, 1, 0, 0, 0, 0, loc)); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Logf("index filled with %d scans in %.1f s", benchOffices*benchIDKPerOff*benchScansPerDay*benchDays, time.Since(began).Seconds())

	entries := NewEntries(index, scans, loc, clk)
	builder := NewBuilder(Sources{Index: index, Scans: scans, Entries: entries, Cases: engine,
		Roster: benchRoster{}, Location: loc, Clock: clk})

	// Ours: every office's report of the 30th, two at a time (the
	// machine's two cores), as the nightly publication runs them.
	ours := func() error {
		work := make(chan string)
		errs := make(chan error, len(offices))
		var wg sync.WaitGroup
		for range 2 {
			wg.Go(func() {
				for kod := range work {
					d, err := builder.Daily(kod, last)
					if err == nil {
						err = d.WriteXLSX(io.Discard)
					}
					if err != nil {
						errs <- err
					}
				}
			})
		}
		for _, kod := range offices {
			work <- kod
		}
		close(work)
		wg.Wait()
		close(errs)
		return <-errs
	}
	// The peer: the same table 1 cells, typed beforehand, through a bare
	// StreamWriter, with the same two-at-a-time split.
	pool := benchTable1Rows(1000)
	peerPool := make([][]any, len(pool))
	for k, r := range pool {
		peerPool[k] = make([]any, len(r))
		for i, v := range r {
			if v != "" {
				peerPool[k][i] = v
			}
		}
	}
	perOffice := benchIDKPerOff * benchScansPerDay * benchDays
	peer := func() error {
		var wg sync.WaitGroup
		errs := make(chan error, benchOffices)
		work := make(chan struct{})
		for range 2 {
			wg.Go(func() {
				for range work {
					f := excelize.NewFile()
					sw, err := f.NewStreamWriter("Sheet1")
					for k := 0; err == nil && k < perOffice; k++ {
						err = sw.SetRow("A"+strconv.Itoa(k+2), peerPool[k%len(peerPool)])
					}
					if err == nil {
						err = sw.Flush()
					}
					if err == nil {
						err = f.Write(io.Discard)
					}
					f.Close()
					if err != nil {
						errs <- err
					}
				}
			})
		}
		for range benchOffices {
			work <- struct{}{}
		}
		close(work)
		wg.Wait()
		close(errs)
		return <-errs
	}

	for b.Loop() {
		stopAnon := peakAnon()
		oursTime, oursCPU, oursHeap, _ := measure(b, ours)
		oursAnon := stopAnon()
		peerTime, peerCPU, peerHeap, _ := measure(b, peer)
		b.ReportMetric(oursTime.Seconds(), "month-s")
		b.ReportMetric(oursCPU.Seconds(), "month-cpu-s")
		b.ReportMetric(float64(oursHeap)/1e6, "month-peak-heap-MB")
		b.ReportMetric(float64(oursAnon)/1e6, "month-peak-anon-rss-MB")
		b.ReportMetric(peerTime.Seconds(), "peer-s")
		b.ReportMetric(float64(peerHeap)/1e6, "peer-peak-heap-MB")
		b.ReportMetric(oursTime.Seconds()/peerTime.Seconds(), "time-ours/peer")
		b.ReportMetric(oursCPU.Seconds()/peerCPU.Seconds(), "cpu-ours/peer")
		b.Logf("month of %d table 1 rows in %d workbooks: %.1f s (peer %.1f s, ratio %.2f), peak heap %.0f MB, peak anonymous RSS %.0f MB",
			benchOffices*perOffice, benchOffices, oursTime.Seconds(), peerTime.Seconds(), oursTime.Seconds()/peerTime.Seconds(),
			float64(oursHeap)/1e6, float64(oursAnon)/1e6)
	}
}

// feedMonth gives the report's consumers a month of one ИДК: its device
// states and, each day, benchScansPerDay scans with their final forms, in
// the index's transactions as ingest would. The event log itself and the
// forms' files, which the report never reads, are left out: written with
// a sync each, they would make filling the month take most of an hour.
func feedMonth(index ingest.Log, consumers []ingest.Consumer, dev *idkpb.Device, first time.Time) error {
	var seq uint64
	var batch []*idkpb.Event
	flush := func() error {
		err := index.Update(func(tx ingest.Tx) error {
			for _, ev := range batch {
				for _, c := range consumers {
					if err := c.Apply(tx, dev, 1, ev); err != nil {
						return err
					}
				}
			}
			return nil
		})
		batch = batch[:0]
		return err
	}
	add := func(at time.Time, ev *idkpb.Event) error {
		seq++
		ev.Seq, ev.TimeUnixNano, ev.CollectorTimeUnixNano = seq, at.UnixNano(), at.UnixNano()
		batch = append(batch, ev)
		if len(batch) == 5000 {
			return flush()
		}
		return nil
	}
	state := func(at time.Time, s idkpb.DeviceState) error {
		return add(at, &idkpb.Event{Body: &idkpb.Event_State{State: &idkpb.StateChange{State: s, Source: "controller"}}})
	}
	for d := range benchDays {
		day := first.AddDate(0, 0, d)
		if err := state(day.Add(7*time.Hour), idkpb.DeviceState_DEVICE_STATE_WAITING); err != nil {
			return err
		}
		step := 16 * time.Hour / benchScansPerDay
		for i := range benchScansPerDay {
			at := day.Add(7*time.Hour + time.Duration(i)*step)
			snim := fmt.Sprintf("%s%s%04d", day.Format("20060102"), dev.NumIdk, i+1)
			if err := add(at, &idkpb.Event{Body: &idkpb.Event_ScanSeen{ScanSeen: &idkpb.ScanSeen{NumSnim: snim, Index: seq + 1}}}); err != nil {
				return err
			}
			fr := formRev(1, benchForm(snim, at, i))
			if err := add(at.Add(2*time.Minute), &idkpb.Event{Body: &idkpb.Event_Form{Form: fr}}); err != nil {
				return err
			}
		}
		if err := state(day.Add(23*time.Hour), idkpb.DeviceState_DEVICE_STATE_IDLE); err != nil {
			return err
		}
	}
	return flush()
}

// benchForm is a realistic final form: a lorry or a container, a ДТ, the
// goods, a decision, an operator.
func benchForm(snim string, created time.Time, i int) *idkpb.Form {
	dir := idkpb.Direction_DIRECTION_IMPORT
	if i%3 == 0 {
		dir = idkpb.Direction_DIRECTION_EXPORT
	}
	cont := fmt.Sprintf("MSKU%07d", i)
	vid := uint32(2)
	if i%2 == 0 {
		cont, vid = fmt.Sprintf("А%03dАА77", i%1000), 1
	}
	decision := idkpb.Decision_DECISION_NOT_SUSPECTED
	if i%10 == 0 {
		decision = idkpb.Decision_DECISION_SUSPECTED
	}
	return &idkpb.Form{
		NumSnim:         snim,
		CreatedUnixNano: created.UnixNano(),
		SavedUnixNano:   created.Add(time.Duration(3+i%15) * time.Minute).UnixNano(),
		TrailerId:       fmt.Sprintf("А%03dАА77/%04dАВ23", i%1000, i),
		CustomsInfo1:    fmt.Sprintf("10216100/%s/%07d", created.Format("020106"), i),
		Containers:      []*idkpb.Container{{Number: cont, From: "КИТАЙ", To: "РОССИЯ", Cargo: "870829", Direction: dir}},
		CommentUpper:    "ЧАСТИ И ПРИНАДЛЕЖНОСТИ МОТОРНЫХ ТРАНСПОРТНЫХ СРЕДСТВ",
		CommentLower:    "ВЛОЖЕНИЙ НЕ ОБНАРУЖЕНО, ДОКУМЕНТЫ ПРОВЕРЕНЫ",
		Decision:        decision,
		Marks:           uint32(i % 2),
		Operator:        "oper" + strconv.Itoa(i%8),
		VidTs:           vid,
	}
}

type benchRoster struct{}

func (benchRoster) Officer(login string) (Officer, bool) {
	return Officer{FIO: "ПЕТРОВ ПЕТР " + strings.ToUpper(login), LNP: "0" + strconv.Itoa(len(login)*7)}, true
}

// peakAnon samples the process's anonymous resident memory (RssAnon:
// heap, stacks, buffers; not the index's memory-mapped file pages) until
// stop is called, which returns the highest sample in bytes.
func peakAnon() (stop func() uint64) { return peakOf(10*time.Millisecond, rssAnon) }

func rssAnon() uint64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "RssAnon:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}
