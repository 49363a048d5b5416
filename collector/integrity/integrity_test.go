package integrity

import (
	"testing"

	"idk/protocol"
	"idk/protocol/idkpb"
)

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
	c := New(nil)
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
	c := New(nil)
	evs := chained("A", "B", "C", "D")
	for _, i := range []int{0, 2, 3} { // B never arrives
		c.Apply("850591", 1, evs[i])
	}
	if b, _, _ := c.Counts("850591"); b != 1 {
		t.Fatalf("breaks = %d, want 1", b)
	}
}

func TestAlteredScanNumberBreaksTheChain(t *testing.T) {
	c := New(nil)
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
	c := New(nil)
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
	c := New(nil)
	c.Apply("850591", 1, &idkpb.Event{Body: &idkpb.Event_Integrity{Integrity: &idkpb.Integrity{Kind: idkpb.Integrity_KIND_CHANGED}}})
	c.Apply("850591", 1, &idkpb.Event{Body: &idkpb.Event_Integrity{Integrity: &idkpb.Integrity{Kind: idkpb.Integrity_KIND_MISSING}}})
	c.Apply("850591", 1, &idkpb.Event{Body: &idkpb.Event_Integrity{Integrity: &idkpb.Integrity{Kind: idkpb.Integrity_KIND_MISSING}}})
	if _, ch, mi := c.Counts("850591"); ch != 1 || mi != 2 {
		t.Fatalf("changed %d missing %d, want 1 and 2", ch, mi)
	}
}
