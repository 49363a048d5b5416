package watch

import (
	"math/rand/v2"
	"testing"
)

// The compact set answers as a map does, through puts, overwrites and
// deletes across merges.
func TestEmittedSetMatchesAMap(t *testing.T) {
	var e emittedSet
	want := map[uint64]uint64{}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 40_000 {
		k := rng.Uint64N(20_000) + 1
		switch rng.IntN(10) {
		case 0:
			e.delete(k)
			delete(want, k)
		default:
			st := rng.Uint64() | 1 // never 0, the mark of a deleted entry
			e.put(k, st)
			want[k] = st
		}
		if i%997 == 0 {
			for k := uint64(1); k <= 20_000; k += 13 {
				got, ok := e.get(k)
				w, wok := want[k]
				if ok != wok || got != w {
					t.Fatalf("step %d key %d: got %d %v, want %d %v", i, k, got, ok, w, wok)
				}
			}
		}
	}
	if e.len() != len(want) {
		t.Fatalf("len %d, want %d", e.len(), len(want))
	}
}
