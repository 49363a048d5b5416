package nshs

import (
	"errors"
	"testing"
	"time"

	"idk/protocol/idkpb"
)

// TestDefaultRule: every availability cause maps as the table
// says, all to category I.
func TestDefaultRule(t *testing.T) {
	want := map[idkpb.InoperableCause]Cause{
		idkpb.InoperableCause_INOPERABLE_CAUSE_UNSPECIFIED: CauseInternalICT,
		idkpb.InoperableCause_INOPERABLE_CAUSE_REBOOT:      CauseInternalICT,
		idkpb.InoperableCause_INOPERABLE_CAUSE_WEATHER:     CauseExternalDisaster,
		idkpb.InoperableCause_INOPERABLE_CAUSE_GENERATOR:   CauseInternalEngineer,
		idkpb.InoperableCause_INOPERABLE_CAUSE_BOOM:        CauseInternalICT,
		idkpb.InoperableCause_INOPERABLE_CAUSE_ACCELERATOR: CauseInternalICT,
		idkpb.InoperableCause_INOPERABLE_CAUSE_CHASSIS:     CauseInternalICT,
		idkpb.InoperableCause_INOPERABLE_CAUSE_SOFTWARE:    CauseInternalICT,
		idkpb.InoperableCause_INOPERABLE_CAUSE_OTHER:       CauseInternalICT,
	}
	if len(AvailabilityCauses) != len(want) {
		t.Fatalf("AvailabilityCauses %v: want the %d causes", AvailabilityCauses, len(want))
	}
	for _, c := range AvailabilityCauses {
		if r := DefaultRule(c); r != (Rule{CategoryI, want[c]}) {
			t.Errorf("%s: %+v, want I and %s", c, r, want[c])
		}
	}
	// A cause newer than this program is OTHER's.
	m := Mapping{idkpb.InoperableCause_INOPERABLE_CAUSE_OTHER: {CategoryII, CauseInternalUser}}
	if r := m.Rule(99); r != (Rule{CategoryII, CauseInternalUser}) {
		t.Errorf("unknown cause: %+v, want OTHER's", r)
	}
	if LinkRule != (Rule{CategoryI, CauseExternalChannel}) || CollectorRule != (Rule{CategoryI, CauseInternalICT}) {
		t.Errorf("link %+v, collector %+v", LinkRule, CollectorRule)
	}
}

func TestClassify(t *testing.T) {
	start := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		r    Rule
		end  time.Duration // 0: open
		want Category
	}{
		{Rule{CategoryI, CauseInternalICT}, 0, CategoryI},                            // open: not known to be short
		{Rule{CategoryI, CauseInternalICT}, 30 * time.Minute, CategoryIV},            // restored within 30 minutes
		{Rule{CategoryI, CauseInternalICT}, 30*time.Minute + time.Second, CategoryI}, // a second longer
		{Rule{CategoryI, CauseExternalOperator}, 0, CategoryV},                       // external operator, at every level
		{Rule{CategoryI, CauseExternalOperator}, time.Minute, CategoryV},
		{Rule{CategoryII, CauseInternalICT}, 59 * time.Minute, CategoryIV},
		{Rule{CategoryIII, CauseInternalUser}, 2 * time.Hour, CategoryIII},
		{Rule{CategoryIV, CauseInternalPlanned}, 5 * time.Hour, CategoryIV},
		{LinkRule, 20 * time.Minute, CategoryIV},
		{LinkRule, 2 * time.Hour, CategoryI},
	} {
		var end time.Time
		if c.end != 0 {
			end = start.Add(c.end)
		}
		if got := c.r.Classify(start, end); got != c.want {
			t.Errorf("%+v for %s: %s, want %s", c.r, c.end, got, c.want)
		}
	}
}

// TestSetRule: a change is in force at once, logged with the rule it
// replaced, who and when; one that changes nothing logs nothing; a bad
// value is refused naming its field.
func TestSetRule(t *testing.T) {
	f := newBookFixture(t)
	sw := idkpb.InoperableCause_INOPERABLE_CAUSE_SOFTWARE
	ch, err := f.book.SetRule(sw, Rule{CategoryIII, CauseInternalUser}, " Сидоров ")
	if err != nil {
		t.Fatal(err)
	}
	if ch.Seq != 1 || ch.Old != (Rule{CategoryI, CauseInternalICT}) || ch.New != (Rule{CategoryIII, CauseInternalUser}) ||
		ch.By != "Сидоров" || !ch.At.Equal(f.clock.Now()) || ch.CauseName != "неисправность программного обеспечения" {
		t.Errorf("change %+v", ch)
	}
	f.clock.Advance(time.Minute)
	if ch, err := f.book.SetRule(sw, Rule{CategoryIII, CauseInternalUser}, "Сидоров"); err != nil || ch.Seq != 0 {
		t.Errorf("the same rule again: %+v, %v", ch, err)
	}
	if _, err := f.book.SetRule(sw, Rule{CategoryII, CauseInternalUser}, "Петров"); err != nil {
		t.Fatal(err)
	}
	m, log, err := f.book.Mapping()
	if err != nil {
		t.Fatal(err)
	}
	if m[sw] != (Rule{CategoryII, CauseInternalUser}) || m[idkpb.InoperableCause_INOPERABLE_CAUSE_WEATHER] != DefaultRule(idkpb.InoperableCause_INOPERABLE_CAUSE_WEATHER) || len(m) != 9 {
		t.Errorf("mapping %v", m)
	}
	if len(log) != 2 || log[1].Seq != 2 || log[1].Old != (Rule{CategoryIII, CauseInternalUser}) || log[1].By != "Петров" {
		t.Errorf("log %+v", log)
	}
	for _, c := range []struct {
		cause idkpb.InoperableCause
		r     Rule
		by    string
		field string
	}{
		{42, Rule{CategoryI, CauseInternalICT}, "x", "cause"},
		{sw, Rule{7, CauseInternalICT}, "x", "category"},
		{sw, Rule{CategoryI, "internal.bad"}, "x", "nshs_cause"},
		{sw, Rule{CategoryI, CauseInternalICT}, " ", "by"},
	} {
		_, err := f.book.SetRule(c.cause, c.r, c.by)
		var fe *FieldError
		if !errors.Is(err, ErrRefused) || !errors.As(err, &fe) || fe.Field != c.field {
			t.Errorf("%+v: %v, want a refusal of %s", c, err, c.field)
		}
	}
}
