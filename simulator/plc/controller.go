// Package plc plays a scanner's controller for tests and bench runs: it
// serves, over Modbus TCP and Modbus RTU, the registers that a
// drivers/modbus Map describes, holding the values a scenario sets.
//
// The encoding of signals into registers is written here again rather than
// borrowed from drivers/modbus, and the servers use other Modbus code than
// the driver's client, so that a test of the two against each other checks
// both.
package plc

import (
	"errors"
	"fmt"
	"math"
	"sync"

	"idk/drivers/modbus"
)

// Controller is the memory of a simulated controller: the coils, discrete
// inputs and registers its map wires. Every address the map wires answers;
// any other address gets an "illegal data address" exception, as on many
// real controllers, so that a client reading more than the map asks for is
// caught.
type Controller struct {
	m modbus.Map

	mu   sync.Mutex
	bits map[modbus.Source]map[uint16]bool
	regs map[modbus.Source]map[uint16]uint16
}

// New returns a controller with every signal off and every value zero.
func New(m modbus.Map) (*Controller, error) {
	if err := m.Validate(); err != nil {
		return nil, fmt.Errorf("plc simulator: %w", err)
	}
	c := &Controller{
		m: m,
		bits: map[modbus.Source]map[uint16]bool{
			modbus.Coil: {}, modbus.DiscreteInput: {},
		},
		regs: map[modbus.Source]map[uint16]uint16{
			modbus.HoldingRegister: {}, modbus.InputRegister: {},
		},
	}
	for _, p := range m.All() {
		if p.Source == modbus.Coil || p.Source == modbus.DiscreteInput {
			c.bits[p.Source][p.Address] = false
			continue
		}
		for i := range width(p) {
			c.regs[p.Source][p.Address+uint16(i)] = 0
		}
	}
	// Start from "off" and "zero" in engineering terms, which is not raw
	// zero for inverted signals or values with an offset.
	for sig := range m.All() {
		var err error
		if sig.IsValue() {
			err = c.SetValue(sig, 0)
		} else {
			err = c.SetSignal(sig, false)
		}
		if err != nil {
			return nil, err
		}
	}
	return c, nil
}

// Map returns the register map the controller serves.
func (c *Controller) Map() modbus.Map { return c.m }

// SetSignal sets an on/off signal as the client should read it, applying
// the map's inversion and bit placement.
func (c *Controller) SetSignal(name modbus.Signal, on bool) error {
	p, ok := c.m.Point(name)
	if !ok {
		return fmt.Errorf("plc simulator: signal %q is not wired in the map", name)
	}
	if name.IsValue() {
		return fmt.Errorf("plc simulator: %q is an analog value; use SetValue", name)
	}
	raw := on != p.Invert
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case p.Source == modbus.Coil || p.Source == modbus.DiscreteInput:
		c.bits[p.Source][p.Address] = raw
	case p.Bit != nil:
		u := c.getRegs(p)
		if raw {
			u |= 1 << *p.Bit
		} else {
			u &^= 1 << *p.Bit
		}
		c.putRegs(p, u)
	default:
		var u uint32
		if raw {
			u = 1
		}
		c.putRegs(p, u)
	}
	return nil
}

// SetValue sets an analog value in engineering units; the controller stores
// (v-offset)/scale in the map's type, rounded for integer types.
func (c *Controller) SetValue(name modbus.Signal, v float64) error {
	p, ok := c.m.Point(name)
	if !ok {
		return fmt.Errorf("plc simulator: value %q is not wired in the map", name)
	}
	if !name.IsValue() {
		return fmt.Errorf("plc simulator: %q is an on/off signal; use SetSignal", name)
	}
	scale := p.Scale
	if scale == 0 {
		scale = 1
	}
	raw := (v - p.Offset) / scale
	r := math.Round(raw)
	var lo, hi float64
	switch p.Type {
	case "", modbus.Uint16:
		lo, hi = 0, math.MaxUint16
	case modbus.Int16:
		lo, hi = math.MinInt16, math.MaxInt16
	case modbus.Uint32:
		lo, hi = 0, math.MaxUint32
	case modbus.Int32:
		lo, hi = math.MinInt32, math.MaxInt32
	case modbus.Float32:
		lo, hi, r = -math.MaxFloat32, math.MaxFloat32, raw
	}
	if math.IsNaN(r) || r < lo || r > hi {
		return fmt.Errorf("plc simulator: %q = %v gives raw %v, outside %s", name, v, raw, p.Type)
	}
	var u uint32
	switch p.Type {
	case modbus.Int16:
		u = uint32(uint16(int16(r)))
	case modbus.Int32:
		u = uint32(int32(r))
	case modbus.Float32:
		u = math.Float32bits(float32(r))
	default:
		u = uint32(r)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.putRegs(p, u)
	return nil
}

func width(p modbus.Point) int {
	switch p.Type {
	case modbus.Uint32, modbus.Int32, modbus.Float32:
		return 2
	}
	return 1
}

// putRegs stores a one- or two-register value as the point's word and byte
// order lay it out on the wire. Caller holds c.mu.
func (c *Controller) putRegs(p modbus.Point, u uint32) {
	words := []uint16{uint16(u)}
	if width(p) == 2 {
		words = []uint16{uint16(u >> 16), uint16(u)}
		if p.WordOrder == modbus.LowWordFirst {
			words[0], words[1] = words[1], words[0]
		}
	}
	for i, w := range words {
		if p.ByteOrder == modbus.LittleEndian {
			w = w<<8 | w>>8
		}
		c.regs[p.Source][p.Address+uint16(i)] = w
	}
}

// getRegs is the inverse of putRegs. Caller holds c.mu.
func (c *Controller) getRegs(p modbus.Point) uint32 {
	words := make([]uint16, width(p))
	for i := range words {
		w := c.regs[p.Source][p.Address+uint16(i)]
		if p.ByteOrder == modbus.LittleEndian {
			w = w<<8 | w>>8
		}
		words[i] = w
	}
	if len(words) == 1 {
		return uint32(words[0])
	}
	if p.WordOrder == modbus.LowWordFirst {
		words[0], words[1] = words[1], words[0]
	}
	return uint32(words[0])<<16 | uint32(words[1])
}

// errIllegalAddress is answered with exception code 2.
var errIllegalAddress = errors.New("illegal data address")

func (c *Controller) readBits(src modbus.Source, addr, n uint16) ([]bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]bool, n)
	for i := range out {
		v, ok := c.bits[src][addr+uint16(i)]
		if !ok {
			return nil, fmt.Errorf("%w: %s %d", errIllegalAddress, src, addr+uint16(i))
		}
		out[i] = v
	}
	return out, nil
}

func (c *Controller) readRegs(src modbus.Source, addr, n uint16) ([]uint16, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]uint16, n)
	for i := range out {
		v, ok := c.regs[src][addr+uint16(i)]
		if !ok {
			return nil, fmt.Errorf("%w: %s %d", errIllegalAddress, src, addr+uint16(i))
		}
		out[i] = v
	}
	return out, nil
}
