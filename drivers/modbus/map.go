package modbus

import (
	"errors"
	"fmt"
	"iter"
)

// Signal names one thing the agent wants to know about the scanner. The names
// are the keys of the register map in configuration files.
type Signal string

// On/off signals. The agent derives the states of the daily report's table 3
// from them: working, waiting for the next object, and inoperable with a cause.
const (
	Powered          Signal = "powered"
	Ready            Signal = "ready"
	Scanning         Signal = "scanning"
	VehicleInZone    Signal = "vehicle_in_zone"
	AcceleratorFault Signal = "accelerator_fault"
	GeneratorFault   Signal = "generator_fault"
	BoomFault        Signal = "boom_fault"
	ChassisFault     Signal = "chassis_fault"
	SoftwareFault    Signal = "software_fault"
)

// Analog values, scaled to engineering units by the map.
const (
	DoseRate      Signal = "dose_rate"
	GeneratorFuel Signal = "generator_fuel"
)

// IsValue reports whether s is an analog value rather than an on/off signal.
func (s Signal) IsValue() bool { return s == DoseRate || s == GeneratorFuel }

// required lists the signals every controller must provide: without them the
// agent cannot tell working time from idle time.
var required = []Signal{Powered, Ready, Scanning}

// Source is the Modbus data table a signal is read from.
type Source string

const (
	Coil            Source = "coil"             // read/write bit, function 1
	DiscreteInput   Source = "discrete_input"   // read-only bit, function 2
	HoldingRegister Source = "holding_register" // read/write 16-bit word, function 3
	InputRegister   Source = "input_register"   // read-only 16-bit word, function 4
)

func (s Source) isBit() bool      { return s == Coil || s == DiscreteInput }
func (s Source) isRegister() bool { return s == HoldingRegister || s == InputRegister }

// Type is how the words of a register value are interpreted.
type Type string

const (
	Uint16  Type = "uint16" // the default
	Int16   Type = "int16"
	Uint32  Type = "uint32" // two registers, see WordOrder
	Int32   Type = "int32"
	Float32 Type = "float32" // IEEE 754, two registers
)

// Words is the number of 16-bit registers a value of type t occupies.
func (t Type) Words() int {
	switch t {
	case Uint32, Int32, Float32:
		return 2
	}
	return 1
}

// WordOrder says which register of a 32-bit value comes first.
type WordOrder string

const (
	HighWordFirst WordOrder = "high_first" // the default, as the Modbus spec implies ("ABCD")
	LowWordFirst  WordOrder = "low_first"  // common on Modicon-style PLCs ("CDAB")
)

// ByteOrder says how the two bytes of each register are ordered.
type ByteOrder string

const (
	BigEndian    ByteOrder = "big"    // the default, as the Modbus spec requires
	LittleEndian ByteOrder = "little" // bytes swapped in every register ("BADC")
)

// Point says where one signal lives in the controller and how to decode it.
// A Point whose Source is empty is not wired: the controller does not have
// that signal (a stationary scanner has no chassis or diesel generator).
type Point struct {
	Source Source `toml:"source" json:"source"`
	// Address is the protocol (zero-based) address sent on the wire, not the
	// 1-based "40001" numbering of many PLC manuals: register 40001 is
	// holding_register 0.
	Address uint16 `toml:"address" json:"address"`
	// Bit picks one bit of a register for an on/off signal, 0 being the least
	// significant. Without it the signal is on when the register is non-zero.
	Bit *uint8 `toml:"bit,omitempty" json:"bit,omitempty"`
	// Type of a register value; empty means uint16.
	Type Type `toml:"type,omitempty" json:"type,omitempty"`
	// Scale and Offset turn a raw register value into engineering units:
	// value = raw*Scale + Offset. A zero Scale means 1, since a zero factor
	// would make every reading zero.
	Scale  float64 `toml:"scale,omitempty" json:"scale,omitempty"`
	Offset float64 `toml:"offset,omitempty" json:"offset,omitempty"`
	// WordOrder and ByteOrder describe 32-bit values and byte-swapping
	// controllers; empty means the Modbus defaults.
	WordOrder WordOrder `toml:"word_order,omitempty" json:"word_order,omitempty"`
	ByteOrder ByteOrder `toml:"byte_order,omitempty" json:"byte_order,omitempty"`
	// Invert flips an on/off signal, for controllers that wire faults as
	// "healthy" contacts that open on failure.
	Invert bool `toml:"invert,omitempty" json:"invert,omitempty"`
}

// Wired reports whether the controller provides the signal.
func (p Point) Wired() bool { return p.Source != "" }

// Width is the number of coils or registers the point occupies.
func (p Point) Width() int {
	if p.Source.isBit() {
		return 1
	}
	return p.typ().Words()
}

func (p Point) typ() Type {
	if p.Type == "" {
		return Uint16
	}
	return p.Type
}

func (p Point) scale() float64 {
	if p.Scale == 0 {
		return 1
	}
	return p.Scale
}

// Map is the register map of one controller model: for each signal, where
// it lives. It is configuration, so a new scanner model needs a new file, not
// new code. Required signals: powered, ready, scanning.
type Map struct {
	Powered          Point `toml:"powered" json:"powered"`
	Ready            Point `toml:"ready" json:"ready"`
	Scanning         Point `toml:"scanning" json:"scanning"`
	VehicleInZone    Point `toml:"vehicle_in_zone" json:"vehicle_in_zone"`
	AcceleratorFault Point `toml:"accelerator_fault" json:"accelerator_fault"`
	GeneratorFault   Point `toml:"generator_fault" json:"generator_fault"`
	BoomFault        Point `toml:"boom_fault" json:"boom_fault"`
	ChassisFault     Point `toml:"chassis_fault" json:"chassis_fault"`
	SoftwareFault    Point `toml:"software_fault" json:"software_fault"`

	DoseRate      Point `toml:"dose_rate" json:"dose_rate"`
	GeneratorFuel Point `toml:"generator_fuel" json:"generator_fuel"`
}

// fields lists every signal with its point, in a fixed order so that
// validation messages and read plans are stable.
func (m *Map) fields() []struct {
	sig Signal
	p   *Point
} {
	return []struct {
		sig Signal
		p   *Point
	}{
		{Powered, &m.Powered},
		{Ready, &m.Ready},
		{Scanning, &m.Scanning},
		{VehicleInZone, &m.VehicleInZone},
		{AcceleratorFault, &m.AcceleratorFault},
		{GeneratorFault, &m.GeneratorFault},
		{BoomFault, &m.BoomFault},
		{ChassisFault, &m.ChassisFault},
		{SoftwareFault, &m.SoftwareFault},
		{DoseRate, &m.DoseRate},
		{GeneratorFuel, &m.GeneratorFuel},
	}
}

// All yields the wired signals and their points.
func (m *Map) All() iter.Seq2[Signal, Point] {
	return func(yield func(Signal, Point) bool) {
		for _, f := range m.fields() {
			if f.p.Wired() && !yield(f.sig, *f.p) {
				return
			}
		}
	}
}

// Point returns the point of signal s; ok is false if s is unknown or not
// wired.
func (m *Map) Point(s Signal) (p Point, ok bool) {
	for _, f := range m.fields() {
		if f.sig == s {
			return *f.p, f.p.Wired()
		}
	}
	return Point{}, false
}

// FieldError is one problem in a register map, named by its configuration
// key so that the person editing the file can find it.
type FieldError struct {
	Field string // e.g. "dose_rate.word_order"
	Msg   string
}

func (e *FieldError) Error() string { return "register map: " + e.Field + ": " + e.Msg }

// Validate checks the map and returns every problem found, joined, each a
// *FieldError.
func (m *Map) Validate() error {
	var errs []error
	bad := func(sig Signal, field, format string, args ...any) {
		name := string(sig)
		if field != "" {
			name += "." + field
		}
		errs = append(errs, &FieldError{Field: name, Msg: fmt.Sprintf(format, args...)})
	}
	for _, s := range required {
		if p, _ := m.Point(s); !p.Wired() {
			bad(s, "source", "required signal is not wired")
		}
	}
	for _, f := range m.fields() {
		p, sig := f.p, f.sig
		if !p.Wired() {
			continue
		}
		switch {
		case p.Source.isBit():
			if sig.IsValue() {
				bad(sig, "source", "%s holds one bit; an analog value needs a register", p.Source)
			}
			if p.Bit != nil {
				bad(sig, "bit", "only registers have bits; a %s is a single bit already", p.Source)
			}
			if p.Type != "" || p.WordOrder != "" || p.ByteOrder != "" {
				bad(sig, "type", "type, word_order and byte_order apply to registers only")
			}
			if p.Scale != 0 || p.Offset != 0 {
				bad(sig, "scale", "scale and offset apply to analog values only")
			}
			continue
		case p.Source.isRegister():
		default:
			bad(sig, "source", "%q is not one of %s, %s, %s, %s",
				p.Source, Coil, DiscreteInput, HoldingRegister, InputRegister)
			continue
		}
		switch p.Type {
		case "", Uint16, Int16, Uint32, Int32, Float32:
		default:
			bad(sig, "type", "%q is not one of %s, %s, %s, %s, %s", p.Type, Uint16, Int16, Uint32, Int32, Float32)
		}
		switch p.WordOrder {
		case "", HighWordFirst, LowWordFirst:
		default:
			bad(sig, "word_order", "%q is not %s or %s", p.WordOrder, HighWordFirst, LowWordFirst)
		}
		switch p.ByteOrder {
		case "", BigEndian, LittleEndian:
		default:
			bad(sig, "byte_order", "%q is not %s or %s", p.ByteOrder, BigEndian, LittleEndian)
		}
		if p.WordOrder != "" && p.typ().Words() == 1 {
			bad(sig, "word_order", "only 32-bit types span two registers")
		}
		if int(p.Address)+p.Width() > 1<<16 {
			bad(sig, "address", "%d: a %s value runs past the last register", p.Address, p.typ())
		}
		if sig.IsValue() {
			if p.Bit != nil {
				bad(sig, "bit", "an analog value takes the whole register")
			}
			if p.Invert {
				bad(sig, "invert", "only on/off signals can be inverted")
			}
			continue
		}
		if p.Type == Float32 {
			bad(sig, "type", "an on/off signal needs an integer register")
		}
		if p.Scale != 0 || p.Offset != 0 {
			bad(sig, "scale", "scale and offset apply to analog values only")
		}
		if p.Bit != nil && int(*p.Bit) >= 16*p.typ().Words() {
			bad(sig, "bit", "%d is out of range 0..%d for a %s", *p.Bit, 16*p.typ().Words()-1, p.typ())
		}
	}
	return errors.Join(errs...)
}
