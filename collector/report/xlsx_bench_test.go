package report

import (
	"io"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"
)

// benchRows is the number of table 1 rows of a month at a busy post.
const benchRows = 450_000

// benchTable1Rows are distinct realistic table 1 rows; the benchmark
// cycles through them, so that making rows costs next to nothing beside
// writing them.
func benchTable1Rows(n int) []Row {
	rows := make([]Row, n)
	for k := range rows {
		day := 1 + k%30
		date := strconv.Itoa(100 + day)[1:] + ".11.2026"
		num := strconv.Itoa(1000000 + k)[1:]
		r := make(Row, len(Table1.Columns))
		set := func(name, v string) { r[Table1.Field(name)] = v }
		set("KOD_TO", "10216100")
		set("NAIM_TO", "ТАМОЖЕННЫЙ ПОСТ МАПП ЗАБАЙКАЛЬСК")
		set("NAIM_ZTK", "ЗТК МАПП ЗАБАЙКАЛЬСК")
		set("TYPE_IDK", "2")
		set("NUM_IDK", "ИДК-"+strconv.Itoa(1+k%3))
		set("DISL_IDK", "1")
		set("DATE_SYS", date)
		set("TIME_AN_SNIM", strconv.Itoa(60+k%900))
		set("VER_SCAN", "1")
		set("KOD_TEH", "0"+strconv.Itoa(1+k%4))
		set("VID_PR", strconv.Itoa(1+k%2))
		set("KOD_TO_PR", "10216100")
		set("DATE_REG", date)
		set("NUM_PR", "5"+num[3:])
		set("NAPR", strconv.Itoa(1+k%2))
		set("DOC_TYPE", "3")
		set("DOC_NUM", "10216100/"+date[:2]+"1126/"+num)
		set("STRANA_OTP", "КИТАЙ")
		set("STRANA_NAZ", "РОССИЯ")
		set("KOD_TNVED", "8708"+num[:6])
		set("NAIM_TOV", "ЧАСТИ И ПРИНАДЛЕЖНОСТИ МОТОРНЫХ ТРАНСПОРТНЫХ СРЕДСТВ")
		set("VES_TP", strconv.Itoa(18000+k%5000)+","+num[4:])
		set("VES_TOV", strconv.Itoa(16000+k%5000)+","+num[4:])
		set("NAIM_PER", "ООО «ТРАНСЛОГИСТИК»")
		set("INN_PER", "7701"+num)
		set("FIO_VODIT", "ВАН ЛИ ЧЖАН")
		set("NAIM_OTP_POL", "ООО «АВТОДЕТАЛЬ-ИМПОРТ»")
		set("INN_OTP_POL", "5406"+num)
		set("VID_TS", "1")
		set("NUM_TS", "А"+num[3:]+"ВС75")
		set("NUM_P_TS", "АК"+num[2:]+"75")
		set("NUM_CONT", "") // a lorry, no container
		set("NUM_OB", "1")
		set("NUM_SNIM", "10216100/"+date[:2]+"1126/"+num)
		set("OS_OTM", strconv.Itoa(k%2))
		if k%10 == 0 {
			set("PRIM", "ПОДОЗРЕНИЕ НА НЕЗАДЕКЛАРИРОВАННЫЕ ТОВАРЫ В ЗАДНЕЙ ЧАСТИ")
		}
		set("REZ", strconv.Itoa(1+k%3))
		set("FIO_OPER", "ПЕТРОВ ПЕТР ПЕТРОВИЧ")
		set("LNP_OPER", "0"+strconv.Itoa(10+k%80))
		rows[k] = r
	}
	return rows
}

// peakHeap samples HeapInuse until stop is called, which returns the
// highest sample in bytes.
func peakHeap() (stop func() uint64) {
	return peakOf(20*time.Millisecond, func() uint64 {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapInuse
	})
}

// peakOf calls read every period until stop is called, which returns the
// highest value read.
func peakOf(period time.Duration, read func() uint64) (stop func() uint64) {
	var peak atomic.Uint64
	done := make(chan struct{})
	var wg sync.WaitGroup
	sample := func() {
		if v := read(); v > peak.Load() {
			peak.Store(v)
		}
	}
	wg.Go(func() {
		t := time.NewTicker(period)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				sample()
			}
		}
	})
	return func() uint64 {
		close(done)
		wg.Wait()
		sample()
		return peak.Load()
	}
}

// measure runs write once and reports its time, the peak heap in use
// and the bytes allocated.
func measure(b *testing.B, write func() error) (d, cpu time.Duration, peak, alloc uint64) {
	b.Helper()
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	stop := peakHeap()
	cpu0 := cpuTime()
	start := time.Now()
	if err := write(); err != nil {
		b.Fatal(err)
	}
	d = time.Since(start)
	cpu = cpuTime() - cpu0
	peak = stop()
	runtime.ReadMemStats(&after)
	return d, cpu, peak, after.TotalAlloc - before.TotalAlloc
}

// cpuTime is the CPU time the process has used, on every thread: unlike
// the time a run takes, it hardly depends on what else the machine does.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkWorkbook writes a month of table 1 (450,000 rows of 39
// columns) with WriteWorkbook and, as its peer, the same cells with a bare
// excelize StreamWriter and no formatting logic, and reports both side by
// side:
//
//	go test -run '^$' -bench BenchmarkWorkbook -benchtime 1x ./collector/report/
func BenchmarkWorkbook(b *testing.B) {
	pool := benchTable1Rows(1000)
	sheets := []Sheet{{Table: &Table1, Rows: func(emit func(Row) error) error {
		for k := range benchRows {
			if err := emit(pool[k%len(pool)]); err != nil {
				return err
			}
		}
		return nil
	}}}
	// The peer's cells, typed beforehand: the work WriteWorkbook does on
	// top of this is what the comparison shows.
	peerPool := make([][]any, len(pool))
	for k, r := range pool {
		peerPool[k] = make([]any, len(r))
		for i, v := range r {
			switch {
			case v == "":
			case Table1.Columns[i].Kind == Number:
				n, _ := strconv.ParseInt(v, 10, 64)
				peerPool[k][i] = n
			default:
				peerPool[k][i] = v
			}
		}
	}
	peer := func() error {
		f := excelize.NewFile()
		defer f.Close()
		sw, err := f.NewStreamWriter("Sheet1")
		if err != nil {
			return err
		}
		header := make([]any, len(Table1.Columns))
		for i, c := range Table1.Columns {
			header[i] = c.Name
		}
		if err := sw.SetRow("A1", header); err != nil {
			return err
		}
		for k := range benchRows {
			if err := sw.SetRow("A"+strconv.Itoa(k+2), peerPool[k%len(peerPool)]); err != nil {
				return err
			}
		}
		if err := sw.Flush(); err != nil {
			return err
		}
		return f.Write(io.Discard)
	}

	var ours, theirs, oursCPU, theirsCPU time.Duration
	var oursPeak, theirsPeak, oursAlloc, theirsAlloc uint64
	runs := 0
	for b.Loop() {
		runs++
		d, c, p, a := measure(b, func() error { return WriteWorkbook(io.Discard, sheets, WorkbookOptions{Title: "bench"}) })
		ours, oursCPU, oursPeak, oursAlloc = ours+d, oursCPU+c, max(oursPeak, p), oursAlloc+a
		d, c, p, a = measure(b, peer)
		theirs, theirsCPU, theirsPeak, theirsAlloc = theirs+d, theirsCPU+c, max(theirsPeak, p), theirsAlloc+a
	}
	n := float64(runs)
	const mb = 1 << 20
	b.ReportMetric(ours.Seconds()/n, "ours-s/op")
	b.ReportMetric(theirs.Seconds()/n, "peer-s/op")
	b.ReportMetric(ours.Seconds()/theirs.Seconds(), "time-ours/peer")
	b.ReportMetric(oursCPU.Seconds()/n, "ours-cpu-s/op")
	b.ReportMetric(theirsCPU.Seconds()/n, "peer-cpu-s/op")
	b.ReportMetric(oursCPU.Seconds()/theirsCPU.Seconds(), "cpu-ours/peer")
	b.ReportMetric(float64(oursPeak)/mb, "ours-peak-heap-MB")
	b.ReportMetric(float64(theirsPeak)/mb, "peer-peak-heap-MB")
	b.ReportMetric(float64(oursPeak)/float64(theirsPeak), "heap-ours/peer")
	b.ReportMetric(float64(oursAlloc)/n/mb, "ours-alloc-MB/op")
	b.ReportMetric(float64(theirsAlloc)/n/mb, "peer-alloc-MB/op")
	b.ReportMetric(float64(oursAlloc)/float64(theirsAlloc), "alloc-ours/peer")
}
