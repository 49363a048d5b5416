package integrity

import (
	"testing"

	"idk/collector/ingest"
	"idk/collector/store"
	"idk/protocol"
	"idk/protocol/idkpb"
)

// checker is a Checker on a real index in a temporary folder, with Apply
// and Counts that fail the test on an error.
type checker struct {
	t  *testing.T
	db ingest.Log
	c  *Checker
}

func newChecker(t *testing.T) *checker {
	st, err := store.Open(t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	db := ingest.FromStore(st)
	return &checker{t: t, db: db, c: New(nil, db)}
}

func (c *checker) Apply(numIDK string, epoch uint64, ev *idkpb.Event) {
	c.t.Helper()
	err := c.db.Update(func(tx ingest.Tx) error { return c.c.Apply(tx, &idkpb.Device{NumIdk: numIDK}, epoch, ev) })
	if err != nil {
		c.t.Fatal(err)
	}
}

func (c *checker) Counts(numIDK string) (breaks, changed, missing int) {
	c.t.Helper()
	breaks, changed, missing, err := c.c.Counts(numIDK)
	if err != nil {
		c.t.Fatal(err)
	}
	return breaks, changed, missing
}

func chained(names ...string) []*idkpb.Event {
	var prev []byte
	var out []*idkpb.Event
	for i, n := range names {
		c := protocol.ChainNext(prev, uint64(i+1), n)
		out = append(out, &idkpb.Event{Seq: uint64(i + 1), Body: &idkpb.Event_ScanSeen{ScanSeen: &idkpb.ScanSeen{NumSnim: n, Index: uint64(i + 1), Chain: c}}})
		prev = c
	}
	return out
}

func TestIntactChainHasNoBreaks(t *testing.T) {
	c := newChecker(t)
	for _, ev := range chained("A", "B", "C") {
		c.Apply("850591", 1, ev)
	}
	// Redelivery of an old event changes nothing.
	c.Apply("850591", 1, chained("A")[0])
	if b, _, _ := c.Counts("850591"); b != 0 {
		t.Fatalf("breaks = %d, want 0", b)
	}
}

func TestDroppedScanBreaksTheChainOnce(t *testing.T) {
	c := newChecker(t)
	evs := chained("A", "B", "C", "D")
	for _, i := range []int{0, 2, 3} { // B never arrives
		c.Apply("850591", 1, evs[i])
	}
	if b, _, _ := c.Counts("850591"); b != 1 {
		t.Fatalf("breaks = %d, want 1", b)
	}
}

func TestAlteredScanNumberBreaksTheChain(t *testing.T) {
	c := newChecker(t)
	evs := chained("A", "B")
	evs[1].GetScanSeen().NumSnim = "B2"
	for _, ev := range evs {
		c.Apply("850591", 1, ev)
	}
	if b, _, _ := c.Counts("850591"); b != 1 {
		t.Fatalf("breaks = %d, want 1", b)
	}
}

func TestNewSpoolEpochStartsANewChain(t *testing.T) {
	c := newChecker(t)
	for _, ev := range chained("A", "B") {
		c.Apply("850591", 1, ev)
	}
	for _, ev := range chained("C") {
		c.Apply("850591", 2, ev)
	}
	if b, _, _ := c.Counts("850591"); b != 0 {
		t.Fatalf("breaks = %d, want 0", b)
	}
}

func TestIntegrityEventsAreCountedByKind(t *testing.T) {
	c := newChecker(t)
	c.Apply("850591", 1, &idkpb.Event{Body: &idkpb.Event_Integrity{Integrity: &idkpb.Integrity{Kind: idkpb.Integrity_KIND_CHANGED}}})
	c.Apply("850591", 1, &idkpb.Event{Body: &idkpb.Event_Integrity{Integrity: &idkpb.Integrity{Kind: idkpb.Integrity_KIND_MISSING}}})
	c.Apply("850591", 1, &idkpb.Event{Body: &idkpb.Event_Integrity{Integrity: &idkpb.Integrity{Kind: idkpb.Integrity_KIND_MISSING}}})
	if _, ch, mi := c.Counts("850591"); ch != 1 || mi != 2 {
		t.Fatalf("changed %d missing %d, want 1 and 2", ch, mi)
	}
}
