package watch

import (
	"slices"
	"sort"
)

// emittedSet maps a file's path hash to the hash of its state when last
// emitted. It holds an entry for every file in the output folder, which
// keeps every scan ever made, so it is kept compact: a sorted slice of
// pairs, 16 bytes an entry (a Go map of the same costs 30 to 50), with the
// latest entries in a small map merged into it now and then.
type emittedSet struct {
	sorted []emittedPair // by key; st 0 marks an entry deleted
	recent map[uint64]uint64
}

type emittedPair struct{ key, st uint64 }

// mergeAt is how many recent entries are kept before a merge: a merge
// copies the sorted slice once, so this many inserts share each copy.
const mergeAt = 4096

func (e *emittedSet) get(key uint64) (uint64, bool) {
	if st, ok := e.recent[key]; ok {
		return st, true
	}
	i, ok := slices.BinarySearchFunc(e.sorted, key, func(p emittedPair, k uint64) int {
		switch {
		case p.key < k:
			return -1
		case p.key > k:
			return 1
		}
		return 0
	})
	if !ok || e.sorted[i].st == 0 {
		return 0, false
	}
	return e.sorted[i].st, true
}

func (e *emittedSet) put(key, st uint64) {
	if e.recent == nil {
		e.recent = map[uint64]uint64{}
	}
	e.recent[key] = st
	if len(e.recent) >= mergeAt {
		e.merge()
	}
}

func (e *emittedSet) delete(key uint64) {
	delete(e.recent, key)
	i := sort.Search(len(e.sorted), func(i int) bool { return e.sorted[i].key >= key })
	if i < len(e.sorted) && e.sorted[i].key == key {
		e.sorted[i].st = 0
	}
}

// merge moves the recent entries into the sorted slice, dropping the
// deleted ones; the recent map is made anew, so its size goes too.
func (e *emittedSet) merge() {
	add := make([]emittedPair, 0, len(e.recent))
	for k, st := range e.recent {
		add = append(add, emittedPair{k, st})
	}
	slices.SortFunc(add, func(a, b emittedPair) int {
		switch {
		case a.key < b.key:
			return -1
		case a.key > b.key:
			return 1
		}
		return 0
	})
	n := 0
	for _, p := range e.sorted {
		if p.st != 0 {
			n++
		}
	}
	out := make([]emittedPair, 0, n+len(add))
	i, j := 0, 0
	for i < len(e.sorted) || j < len(add) {
		switch {
		case j == len(add) || (i < len(e.sorted) && e.sorted[i].key < add[j].key):
			if e.sorted[i].st != 0 {
				out = append(out, e.sorted[i])
			}
			i++
		case i == len(e.sorted) || add[j].key < e.sorted[i].key:
			out = append(out, add[j])
			j++
		default: // the same key: the recent state wins
			out = append(out, add[j])
			i++
			j++
		}
	}
	e.sorted, e.recent = out, map[uint64]uint64{}
}

func (e *emittedSet) len() int {
	n := len(e.recent)
	for _, p := range e.sorted {
		if p.st != 0 {
			if _, dup := e.recent[p.key]; !dup {
				n++
			}
		}
	}
	return n
}
