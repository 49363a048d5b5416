package modbus

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"math"
	"slices"
)

// Protocol limits on one read request.
const (
	maxBitsPerRead = 2000
	maxRegsPerRead = 125
)

// block is one read request: count coils or registers from start.
type block struct {
	src   Source
	start uint16
	count uint16
}

func (b block) String() string { return fmt.Sprintf("%s %d+%d", b.src, b.start, b.count) }

// slot says where a signal's data sits in the read results.
type slot struct {
	sig   Signal
	p     Point
	block int // index into plan.blocks
	off   int // coils or registers from the block's start
}

// plan is the list of requests one poll makes, built once from the map.
// Adjacent and overlapping points of one table share a request, because on
// a 9600-baud line every request costs tens of milliseconds; gaps are not
// bridged, since many controllers answer "illegal data address" for
// addresses they do not implement.
type plan struct {
	blocks []block
	slots  []slot
}

func newPlan(m *Map) plan {
	var pl plan
	type span struct{ start, end int } // end is exclusive
	for _, src := range []Source{Coil, DiscreteInput, HoldingRegister, InputRegister} {
		limit := maxRegsPerRead
		if src.isBit() {
			limit = maxBitsPerRead
		}
		var spans []span
		for _, p := range m.All() {
			if p.Source == src {
				spans = append(spans, span{int(p.Address), int(p.Address) + p.Width()})
			}
		}
		slices.SortFunc(spans, func(a, b span) int {
			return cmp.Or(cmp.Compare(a.start, b.start), cmp.Compare(a.end, b.end))
		})
		var merged []span
		for _, s := range spans {
			if n := len(merged); n > 0 && s.start <= merged[n-1].end && max(s.end, merged[n-1].end)-merged[n-1].start <= limit {
				merged[n-1].end = max(s.end, merged[n-1].end)
				continue
			}
			merged = append(merged, s)
		}
		for _, s := range merged {
			pl.blocks = append(pl.blocks, block{src: src, start: uint16(s.start), count: uint16(s.end - s.start)})
		}
	}
	for sig, p := range m.All() {
		for i, b := range pl.blocks {
			if b.src == p.Source && p.Address >= b.start && int(p.Address)+p.Width() <= int(b.start)+int(b.count) {
				pl.slots = append(pl.slots, slot{sig: sig, p: p, block: i, off: int(p.Address - b.start)})
				break
			}
		}
	}
	return pl
}

// decode turns the raw responses, one per block, into signals.
func (pl *plan) decode(data [][]byte) (flags map[Signal]bool, values map[Signal]float64, err error) {
	for i, b := range pl.blocks {
		want := int(b.count) * 2
		if b.src.isBit() {
			want = (int(b.count) + 7) / 8
		}
		if len(data[i]) < want {
			return nil, nil, fmt.Errorf("read %s: got %d bytes, want %d", b, len(data[i]), want)
		}
	}
	flags = make(map[Signal]bool)
	values = make(map[Signal]float64)
	for _, s := range pl.slots {
		d := data[s.block]
		if s.p.Source.isBit() {
			on := (d[s.off/8]>>(s.off%8))&1 == 1
			flags[s.sig] = on != s.p.Invert
			continue
		}
		raw := registerBits(d[s.off*2:], s.p)
		if s.sig.IsValue() {
			values[s.sig] = registerValue(raw, s.p.typ())*s.p.scale() + s.p.Offset
			continue
		}
		on := raw != 0
		if s.p.Bit != nil {
			on = (raw>>*s.p.Bit)&1 == 1
		}
		flags[s.sig] = on != s.p.Invert
	}
	return flags, values, nil
}

// registerBits assembles the one or two registers of p from wire bytes d
// into an unsigned integer, applying the point's byte and word order.
func registerBits(d []byte, p Point) uint32 {
	word := func(i int) uint32 {
		w := binary.BigEndian.Uint16(d[i*2:])
		if p.ByteOrder == LittleEndian {
			w = w<<8 | w>>8
		}
		return uint32(w)
	}
	if p.typ().Words() == 1 {
		return word(0)
	}
	if p.WordOrder == LowWordFirst {
		return word(1)<<16 | word(0)
	}
	return word(0)<<16 | word(1)
}

func registerValue(raw uint32, t Type) float64 {
	switch t {
	case Int16:
		return float64(int16(raw))
	case Uint32:
		return float64(raw)
	case Int32:
		return float64(int32(raw))
	case Float32:
		return float64(math.Float32frombits(raw))
	}
	return float64(uint16(raw))
}
