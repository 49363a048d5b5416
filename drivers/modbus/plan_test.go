package modbus

import (
	"errors"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
)

func bit(n uint8) *uint8 { return &n }

func TestPlanGroupsAdjacentAddresses(t *testing.T) {
	m := Map{
		Powered:          Point{Source: Coil, Address: 0},
		Ready:            Point{Source: Coil, Address: 1},
		Scanning:         Point{Source: Coil, Address: 5}, // gap: a request of its own
		AcceleratorFault: Point{Source: HoldingRegister, Address: 10, Bit: bit(0)},
		GeneratorFault:   Point{Source: HoldingRegister, Address: 10, Bit: bit(1)}, // same register
		DoseRate:         Point{Source: HoldingRegister, Address: 11, Type: Float32},
		GeneratorFuel:    Point{Source: InputRegister, Address: 3},
	}
	if err := m.Validate(); err != nil {
		t.Fatal(err)
	}
	pl := newPlan(&m)
	want := []block{
		{Coil, 0, 2},
		{Coil, 5, 1},
		{HoldingRegister, 10, 3},
		{InputRegister, 3, 1},
	}
	if !slices.Equal(pl.blocks, want) {
		t.Errorf("blocks = %v, want %v", pl.blocks, want)
	}
	if len(pl.slots) != 7 {
		t.Errorf("%d slots, want 7", len(pl.slots))
	}
}

// Hand-made wire bytes, independent of the simulator's encoder.
func TestDecodeOrdersAndTypes(t *testing.T) {
	tests := []struct {
		name string
		p    Point
		wire []byte
		want float64
	}{
		{"uint16", Point{Type: Uint16}, []byte{0x12, 0x34}, 0x1234},
		{"int16 negative", Point{Type: Int16}, []byte{0xff, 0xfb}, -5},
		{"int16 byte-swapped", Point{Type: Int16, ByteOrder: LittleEndian}, []byte{0xfb, 0xff}, -5},
		{"uint32 ABCD", Point{Type: Uint32}, []byte{0x00, 0x01, 0x86, 0xa0}, 100000},
		{"int32 CDAB", Point{Type: Int32, WordOrder: LowWordFirst}, []byte{0x79, 0x60, 0xff, 0xfe}, -100000},
		{"float32 ABCD", Point{Type: Float32}, []byte{0x3f, 0xc0, 0x00, 0x00}, 1.5},
		{"float32 CDAB", Point{Type: Float32, WordOrder: LowWordFirst}, []byte{0x00, 0x00, 0x3f, 0xc0}, 1.5},
		{"float32 BADC", Point{Type: Float32, ByteOrder: LittleEndian}, []byte{0xc0, 0x3f, 0x00, 0x00}, 1.5},
		{"float32 DCBA", Point{Type: Float32, ByteOrder: LittleEndian, WordOrder: LowWordFirst}, []byte{0x00, 0x00, 0xc0, 0x3f}, 1.5},
		{"scaled", Point{Type: Uint16, Scale: 0.1, Offset: -20}, []byte{0x01, 0xf4}, 30},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := tc.p
			p.Source = InputRegister
			got := registerValue(registerBits(tc.wire, p), p.typ())*p.scale() + p.Offset
			if math.Abs(got-tc.want) > 1e-9 {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestDecodeFlags(t *testing.T) {
	m := Map{
		Powered:          Point{Source: Coil, Address: 0},
		Ready:            Point{Source: Coil, Address: 9, Invert: true},
		Scanning:         Point{Source: HoldingRegister, Address: 0}, // non-zero means on
		AcceleratorFault: Point{Source: HoldingRegister, Address: 1, Bit: bit(15)},
		GeneratorFault:   Point{Source: HoldingRegister, Address: 1, Bit: bit(0), ByteOrder: LittleEndian},
		SoftwareFault:    Point{Source: HoldingRegister, Address: 2, Type: Uint32, Bit: bit(16), WordOrder: LowWordFirst},
	}
	pl := newPlan(&m)
	// Coils 0 and 9 are not adjacent, so each has its own request. Both are
	// on, so inverted ready is off.
	coil0, coil9 := []byte{0x01}, []byte{0x01}
	// Register 0 is 0x0100: non-zero. Register 1 is 0x8001: bit 15 on, and
	// byte-swapped it is 0x0180, whose bit 0 is off. Registers 2 and 3 hold
	// a low-word-first 0x00010000: bit 16 on.
	regs := []byte{0x01, 0x00, 0x80, 0x01, 0x00, 0x00, 0x00, 0x01}
	flags, _, err := pl.decode([][]byte{coil0, coil9, regs})
	if err != nil {
		t.Fatal(err)
	}
	want := map[Signal]bool{
		Powered: true, Ready: false, Scanning: true,
		AcceleratorFault: true, GeneratorFault: false, SoftwareFault: true,
	}
	for s, w := range want {
		if got, ok := flags[s]; !ok || got != w {
			t.Errorf("%s = %v (present %v), want %v", s, got, ok, w)
		}
	}
	if _, ok := flags[BoomFault]; ok {
		t.Error("boom_fault is not wired but is reported")
	}
}

func TestDecodeRejectsShortAnswer(t *testing.T) {
	m := Map{
		Powered:  Point{Source: HoldingRegister, Address: 0},
		Ready:    Point{Source: HoldingRegister, Address: 1},
		Scanning: Point{Source: HoldingRegister, Address: 2},
	}
	pl := newPlan(&m)
	if _, _, err := pl.decode([][]byte{{0, 1, 0, 1}}); err == nil {
		t.Error("decode accepted 2 registers for a 3-register request")
	}
}

func TestValidateNamesFields(t *testing.T) {
	m := Map{
		// powered missing
		Ready:            Point{Source: "holding", Address: 1},
		Scanning:         Point{Source: Coil, Address: 2, Bit: bit(1)},
		AcceleratorFault: Point{Source: HoldingRegister, Address: 3, Bit: bit(16)},
		BoomFault:        Point{Source: InputRegister, Address: 4, Type: Float32},
		DoseRate:         Point{Source: Coil, Address: 5},
		GeneratorFuel:    Point{Source: InputRegister, Address: 65535, Type: Uint32, Invert: true, WordOrder: "middle"},
		ChassisFault:     Point{Source: DiscreteInput, Address: 6, Scale: 2},
	}
	err := m.Validate()
	if err == nil {
		t.Fatal("Validate accepted a broken map")
	}
	for _, field := range []string{
		"powered.source", "ready.source", "scanning.bit", "accelerator_fault.bit",
		"boom_fault.type", "dose_rate.source", "generator_fuel.invert",
		"generator_fuel.word_order", "generator_fuel.address", "chassis_fault.scale",
	} {
		found := false
		for _, e := range unjoin(err) {
			var fe *FieldError
			if errors.As(e, &fe) && fe.Field == field {
				found = true
			}
		}
		if !found {
			t.Errorf("no error for %s in:\n%v", field, err)
		}
	}
	if !strings.Contains(err.Error(), "register map: powered.source") {
		t.Errorf("message does not name the field: %v", err)
	}
}

func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

func TestExampleConfigDecodes(t *testing.T) {
	var cfg Config
	md, err := toml.DecodeFile("testdata/plc.toml", &cfg)
	if err != nil {
		t.Fatal(err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		t.Errorf("keys not decoded: %v", und)
	}
	if cfg.Interval != time.Second || cfg.Timeout != 500*time.Millisecond || cfg.Pause != 20*time.Millisecond {
		t.Errorf("durations = %v %v %v", cfg.Interval, cfg.Timeout, cfg.Pause)
	}
	if cfg.Map.BoomFault.Bit == nil || *cfg.Map.BoomFault.Bit != 5 || !cfg.Map.VehicleInZone.Invert ||
		cfg.Map.DoseRate.WordOrder != LowWordFirst || cfg.Map.GeneratorFuel.Scale != 0.1 {
		t.Errorf("map = %+v", cfg.Map)
	}
	if _, err := New(cfg); err != nil {
		t.Fatal(err)
	}
	// The whole fault word is one request.
	if pl := newPlan(&cfg.Map); len(pl.blocks) != 5 {
		t.Errorf("blocks = %v, want 5", pl.blocks)
	}
}
