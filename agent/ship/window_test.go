package ship

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"idk/protocol/idkpb"
)

func TestWindowAdmission(t *testing.T) {
	w := newWindow(8, 1000) // one slot kept for fresh files
	for i := range 7 {
		if !w.fits(classBacklog, 100, false) {
			t.Fatalf("backlog file %d refused with %d in flight", i+1, w.count())
		}
		w.add(fmt.Sprintf("old%d", i), classBacklog, 100)
	}
	if w.fits(classBacklog, 1, false) {
		t.Fatal("the backlog took the slot kept for fresh files")
	}
	if !w.fits(classFresh, 100, false) {
		t.Fatal("a fresh file found no slot")
	}
	w.add("new0", classFresh, 100)
	if w.fits(classFresh, 1, false) {
		t.Fatal("a ninth file admitted to a window of 8")
	}

	// Bytes: the budget holds while a class has a file in flight; the
	// first file of a class goes whatever its size.
	w = newWindow(8, 1000)
	if !w.fits(classBacklog, 5000, false) {
		t.Fatal("a file larger than the budget can never go")
	}
	w.add("huge", classBacklog, 5000)
	if w.fits(classBacklog, 1, false) {
		t.Fatal("the backlog went past the byte budget")
	}
	if !w.fits(classFresh, 600, false) {
		t.Fatal("a large backlog file in flight shut fresh files out")
	}
	w.add("new", classFresh, 600)
	if w.fits(classFresh, 1, false) {
		t.Fatal("fresh files went past the byte budget")
	}
	w.remove("huge")
	if !w.fits(classFresh, 400, false) || w.fits(classFresh, 401, false) {
		t.Fatalf("with 600 bytes in flight: budget of 1000 not applied exactly (size %d)", w.size)
	}
	// Probing a full collector: one file at a time.
	if w.fits(classFresh, 1, true) {
		t.Fatal("a second file while probing")
	}
	w.remove("new")
	if !w.fits(classBacklog, 1, true) || w.count() != 0 || w.size != 0 {
		t.Fatalf("empty window: count %d, size %d", w.count(), w.size)
	}
}

// occupancy counts the file streams between their offer and their end at
// the fake collector, in all and by name prefix.
type occupancy struct {
	mu        sync.Mutex
	n, max    int
	size, top int64 // bytes offered in flight, and the most at once
	over      []string
	budget    int64
	prefix    map[string]int
}

func newOccupancy(budget int64) *occupancy {
	return &occupancy{budget: budget, prefix: map[string]int{}}
}

func (o *occupancy) offer(f *idkpb.FileOffer) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.n++
	o.max = max(o.max, o.n)
	o.size += int64(f.Size)
	o.top = max(o.top, o.size)
	if o.budget > 0 && o.n > 1 && o.size > o.budget {
		o.over = append(o.over, fmt.Sprintf("%d files of %d bytes in flight", o.n, o.size))
	}
	o.prefix[f.Name[:3]]++
}

func (o *occupancy) end(f *idkpb.FileOffer) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.n--
	o.size -= int64(f.Size)
	o.prefix[f.Name[:3]]--
}

func (o *occupancy) of(prefix string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.prefix[prefix]
}

func sendAll(string, int) (idkpb.FileOfferReply_Status, string, string) {
	return idkpb.FileOfferReply_STATUS_SEND, "", ""
}

// The window keeps its number of files in flight, and uses all of it.
func TestWindowBoundsFilesInFlight(t *testing.T) {
	c := startCollector(t, sendAll)
	occ := newOccupancy(0)
	c.onOffer = func(o *idkpb.FileOffer) {
		occ.offer(o)
		time.Sleep(20 * time.Millisecond) // a round trip and a commit
	}
	c.onEnd = occ.end
	a := newAgent(t, c, func(cfg *Config) { cfg.WindowFiles = 4 })
	var names []string
	for i := range 40 {
		names = append(names, fmt.Sprintf("doc_%03d.jpg", i))
		a.queue(t, names[i])
	}
	a.run(t)
	eventually(t, "every file", func() bool { return len(c.storedNames()) == len(names) })
	if got := slices.Sorted(slices.Values(c.storedNames())); !slices.Equal(got, names) {
		t.Fatalf("stored %v", got)
	}
	eventually(t, "an empty queue", func() bool { return len(a.files(t)) == 0 })
	occ.mu.Lock()
	defer occ.mu.Unlock()
	if occ.max != 4 {
		t.Fatalf("at most %d files in flight, want the window's 4", occ.max)
	}
}

// The sizes of the files in flight stay within the byte budget, except
// that a file larger than the budget goes, alone.
func TestWindowBoundsBytesInFlight(t *testing.T) {
	c := startCollector(t, sendAll)
	occ := newOccupancy(1000)
	c.onOffer = func(o *idkpb.FileOffer) {
		occ.offer(o)
		time.Sleep(20 * time.Millisecond)
	}
	c.onEnd = occ.end
	a := newAgent(t, c, func(cfg *Config) { cfg.WindowFiles, cfg.WindowBytes = 8, 1000 })
	names := []string{"big.raw"}
	a.queueData(t, "big.raw", bytes.Repeat([]byte{'x'}, 5000), a.start)
	for i := range 20 {
		names = append(names, fmt.Sprintf("doc_%03d.jpg", i))
		a.queueData(t, names[i+1], bytes.Repeat([]byte{byte(i)}, 300), a.start)
	}
	a.run(t)
	eventually(t, "every file", func() bool { return len(c.storedNames()) == len(names) })
	eventually(t, "an empty queue", func() bool { return len(a.files(t)) == 0 })
	occ.mu.Lock()
	defer occ.mu.Unlock()
	if len(occ.over) > 0 {
		t.Fatalf("byte budget of 1000 exceeded: %v", occ.over)
	}
	// Three files of 300 bytes fit the budget, a fourth does not.
	if occ.max != 3 || occ.top != 5000 {
		t.Fatalf("at most %d files and %d bytes in flight, want 3 files, and the 5000-byte file alone", occ.max, occ.top)
	}
}

// Fresh files are offered while a backlog fills the window and none of
// its transfers ends: they have slots of their own, and go first.
func TestFreshFilesOvertakeTheBacklog(t *testing.T) {
	c := startCollector(t, sendAll)
	occ := newOccupancy(0)
	release := make(chan struct{})
	c.onOffer = func(o *idkpb.FileOffer) {
		occ.offer(o)
		if strings.HasPrefix(o.Name, "old") {
			<-release // the backlog's transfers hang until the fresh files are in
		}
	}
	c.onEnd = occ.end
	a := newAgent(t, c, func(cfg *Config) { cfg.WindowFiles = 8 })
	week := a.start.Add(-7 * 24 * time.Hour)
	var names []string
	for i := range 30 {
		names = append(names, fmt.Sprintf("old_%03d.raw", i))
		a.queueData(t, names[i], []byte(names[i]), week)
	}
	a.run(t)
	// The backlog takes all of the window but the slot kept for fresh files.
	eventually(t, "the backlog in flight", func() bool { return occ.of("old") == 7 })
	for i := range 3 {
		name := fmt.Sprintf("new_%03d.jpg", i)
		names = append(names, name)
		a.queueData(t, name, []byte(name), a.clk.Now())
	}
	eventually(t, "the fresh files stored while the backlog waits", func() bool { return len(c.storedNames()) == 3 })
	if got := c.storedNames(); !slices.Equal(slices.Sorted(slices.Values(got)), names[30:]) {
		t.Fatalf("stored %v first, want the fresh files", got)
	}
	if n := occ.of("old"); n != 7 {
		t.Fatalf("%d backlog files in flight, want 7", n)
	}
	close(release)
	eventually(t, "every file", func() bool { return len(c.storedNames()) == len(names) })
	eventually(t, "an empty queue", func() bool { return len(a.files(t)) == 0 })
}

// Transfers end in any order; each marks its own file done, with the name
// the collector stored it under, and nothing else.
func TestOutOfOrderCompletionMarksTheRightFiles(t *testing.T) {
	var mu sync.Mutex
	refused := map[string]bool{}
	c := startCollector(t, func(name string, n int) (idkpb.FileOfferReply_Status, string, string) {
		// Every third file is not stored the first time (taken, then a
		// failed commit): it must stay pending, whatever ends around it.
		var i int
		fmt.Sscanf(name, "doc_%d.jpg", &i)
		mu.Lock()
		defer mu.Unlock()
		if i%3 == 0 && !refused[name] {
			refused[name] = true
			return idkpb.FileOfferReply_STATUS_SEND, "", "disk trouble"
		}
		return idkpb.FileOfferReply_STATUS_SEND, "", ""
	})
	// The later a file is queued, the sooner its transfer ends.
	c.onOffer = func(o *idkpb.FileOffer) {
		var i int
		fmt.Sscanf(o.Name, "doc_%d.jpg", &i)
		time.Sleep(time.Duration(16-i%16) * 3 * time.Millisecond)
	}
	a := newAgent(t, c, func(cfg *Config) { cfg.WindowFiles = 16 })
	var names []string
	for i := range 48 {
		names = append(names, fmt.Sprintf("doc_%03d.jpg", i))
		a.queue(t, names[i])
	}
	a.run(t)
	eventually(t, "every file stored", func() bool { return len(c.storedNames()) == len(names) })
	eventually(t, "an empty queue", func() bool { return len(a.files(t)) == 0 })
	if got := c.storedNames(); slices.IsSorted(got) {
		t.Fatalf("stored in queue order %v: the test did not reorder the transfers", got)
	}
	for _, name := range names {
		f := a.record(t, "S1/"+name)
		if !f.Done || f.StoredAs != "850591/S1/"+name {
			t.Errorf("%s: done %v, stored as %q", name, f.Done, f.StoredAs)
		}
	}
	for i := 0; i < 48; i += 3 {
		if n := c.offered(names[i]); n != 2 {
			t.Errorf("%s offered %d times, want 2 (once failed, once stored)", names[i], n)
		}
	}
}
