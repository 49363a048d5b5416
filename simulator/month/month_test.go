package month

import (
	"crypto/sha256"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"idk/protocol"
	"idk/protocol/idkpb"
)

var msk = time.FixedZone("MSK", 3*3600)

func november(t *testing.T, seed int64) *Month {
	t.Helper()
	return Generate(seed, time.Date(2026, time.November, 15, 0, 0, 0, 0, msk), msk)
}

// digest is a fingerprint of everything a month makes happen.
func digest(t *testing.T, m *Month) [32]byte {
	t.Helper()
	h := sha256.New()
	for _, a := range m.Actions {
		fmt.Fprintf(h, "%d|", a.At.UnixNano())
		switch {
		case a.Event != nil:
			b, err := proto.MarshalOptions{Deterministic: true}.Marshal(a.Event)
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(h, "%s|%x\n", a.Device.NumIDK(), b)
		case a.Case != nil:
			c := *a.Case
			var r Risk
			if c.Risk != nil {
				r = *c.Risk
			}
			c.Risk = nil
			fmt.Fprintf(h, "%+v %+v\n", c, r)
		case a.Entry != nil:
			fmt.Fprintf(h, "%d %v %s\n", a.Entry.Table, a.Entry.Row, a.Entry.By)
		case a.Counts != nil:
			fmt.Fprintf(h, "%s %v %v\n", a.Counts.NumIDK, a.Counts.Day, a.Counts.Fields)
		}
	}
	fmt.Fprintf(h, "%+v", m.Reasons)
	// The last day's report holds the whole month (cumulative).
	for _, o := range m.Offices {
		e := m.Expected(o.KodTO, m.Start.AddDate(0, 0, m.Days-1))
		for n := 1; n <= 6; n++ {
			for _, r := range e[n] {
				fmt.Fprintf(h, "%d%q\n", n, r)
			}
		}
	}
	var out [32]byte
	copy(out[:], h.Sum(nil))
	return out
}

func TestDeterministic(t *testing.T) {
	a, b, c := november(t, 7), november(t, 7), november(t, 8)
	if digest(t, a) != digest(t, b) {
		t.Error("the same seed gave two different months")
	}
	if digest(t, a) == digest(t, c) {
		t.Error("seeds 7 and 8 gave the same month")
	}
}

func TestShape(t *testing.T) {
	m := november(t, 1)
	if m.Days != 30 || !m.Start.Equal(time.Date(2026, time.November, 1, 0, 0, 0, 0, msk)) {
		t.Fatalf("month starts %v with %d days, want 01.11.2026 and 30", m.Start, m.Days)
	}
	perOffice := map[string]int{}
	mobile := 0
	for _, d := range m.Devices {
		perOffice[d.Hello.KodTo]++
		if d.Mobile {
			mobile++
			if d.Hello.TypeIdk != 1 {
				t.Errorf("mobile ИДК %s has TYPE_IDK %d", d.NumIDK(), d.Hello.TypeIdk)
			}
		}
		if strings.ToUpper(d.Hello.NaimTo) != d.Hello.NaimTo || strings.ToUpper(d.Hello.NaimZtk) != d.Hello.NaimZtk {
			t.Errorf("ИДК %s: names not upper case", d.NumIDK())
		}
	}
	if len(perOffice) != 2 || perOffice["10216100"] < 2 || perOffice["10216200"] < 2 || mobile == 0 {
		t.Errorf("ИДК per office %v, %d mobile: want 2 offices of 2-3 ИДК and a mobile one", perOffice, mobile)
	}
}

// TestEvents checks what the agents send: each spool numbered from 1 in
// time order, its scan chain, every scan with a parsed form that names a
// rostered operator, every form of a known scan, times in the month.
func TestEvents(t *testing.T) {
	m := november(t, 1)
	if !slices.IsSortedFunc(m.Actions, func(a, b Action) int { return a.At.Compare(b.At) }) {
		t.Fatal("actions are not in time order")
	}
	seq := map[string]uint64{}
	chain := map[string][]byte{}
	scans := map[string]bool{}
	formed := map[string]bool{}
	for _, a := range m.Actions {
		if a.At.Before(m.Start) || a.At.After(m.End) {
			t.Fatalf("action at %v outside the month", a.At)
		}
		if a.Event == nil {
			continue
		}
		n := a.Device.NumIDK()
		seq[n]++
		if a.Event.Seq != seq[n] || a.Event.TimeUnixNano != a.At.UnixNano() {
			t.Fatalf("ИДК %s: event seq %d at %d, want seq %d at %d", n, a.Event.Seq, a.Event.TimeUnixNano, seq[n], a.At.UnixNano())
		}
		switch b := a.Event.Body.(type) {
		case *idkpb.Event_ScanSeen:
			c := protocol.ChainNext(chain[n], b.ScanSeen.Index, b.ScanSeen.NumSnim)
			if string(c) != string(b.ScanSeen.Chain) {
				t.Fatalf("scan %s: chain does not follow", b.ScanSeen.NumSnim)
			}
			chain[n] = c
			if err := protocol.CheckNumSnim(b.ScanSeen.NumSnim); err != nil {
				t.Fatal(err)
			}
			scans[n+"/"+b.ScanSeen.NumSnim] = true
		case *idkpb.Event_Form:
			k := n + "/" + b.Form.NumSnim
			if !scans[k] {
				t.Fatalf("form of %s before (or without) its scan", k)
			}
			if b.Form.Form == nil || b.Form.Form.NumSnim != b.Form.NumSnim {
				t.Fatalf("form of %s not parsed", k)
			}
			if sum := sha256.Sum256(b.Form.Content); string(sum[:]) != string(b.Form.Sha256) {
				t.Fatalf("form of %s: sha256 does not match", k)
			}
			if _, ok := m.officer(b.Form.Form.Operator); !ok {
				t.Fatalf("form of %s: operator %q not in the roster", k, b.Form.Form.Operator)
			}
			formed[k] = true
		}
	}
	for k := range scans {
		if !formed[k] {
			t.Errorf("scan %s has no form", k)
		}
	}
	t.Logf("%d actions, %d scans", len(m.Actions), len(scans))
}

// TestPlanInvariants checks what the collector's matching and the report
// rely on.
func TestPlanInvariants(t *testing.T) {
	m := november(t, 1)
	perDay := map[string]int{}
	for _, s := range m.scans {
		perDay[s.dev.dev.NumIDK()+s.scanAt.Format("0201")]++
		if !s.arrival.Before(s.scanAt) || !s.scanAt.Before(s.decision) {
			t.Errorf("scan %s: arrival %v, scan %v, decision %v out of order", s.numSnim, s.arrival, s.scanAt, s.decision)
		}
		if r := s.risk; r != nil && (!r.at.Before(r.handed) || !r.at.Before(r.informed) || r.handed.After(s.arrival) || r.informed.After(s.arrival)) {
			t.Errorf("scan %s: risk phase not before the arrival", s.numSnim)
		}
		if s.scanAt.Format("0102") != s.act.Format("0102") && !s.act.IsZero() {
			t.Errorf("scan %s: its act is handed over the next day", s.numSnim)
		}
	}
	// A mobile ИДК moves only between places of its own office.
	for _, d := range m.Devices {
		for _, st := range d.Sites {
			if st.KodTO != d.Hello.KodTo {
				t.Errorf("ИДК %s: site %s of office %s, not its own %s", d.NumIDK(), st.NaimZTK, st.KodTO, d.Hello.KodTo)
			}
		}
	}
	for _, dv := range m.devs {
		for _, st := range dv.sites {
			if st.KodTO != dv.dev.Hello.KodTo {
				t.Errorf("ИДК %s: stood at %s of office %s", dv.dev.NumIDK(), st.NaimZTK, st.KodTO)
			}
		}
	}
	if len(m.Deadlines) == 0 || !slices.IsSortedFunc(m.Deadlines, func(a, b time.Time) int { return a.Compare(b) }) {
		t.Errorf("%d deadlines, not in time order", len(m.Deadlines))
	}
	for k, n := range perDay {
		if n < 5 || n > 20 {
			t.Errorf("ИДК-day %s has %d scans", k, n)
		}
	}
	for _, c := range m.counts {
		for f, n := range c.Fields {
			if strings.HasPrefix(f, "KOVR_") && n > c.Fields["OKO_"+strings.TrimPrefix(f, "KOVR_")] {
				t.Errorf("%s %v: %s %d exceeds OKO", c.NumIDK, c.Day, f, n)
			}
		}
	}
	// Each device's changes are in time order and WORKING only follows
	// WAITING or WORKING.
	for _, d := range m.devs {
		for i := 1; i < len(d.changes); i++ {
			p, c := d.changes[i-1], d.changes[i]
			if c.at.Before(p.at) {
				t.Fatalf("ИДК %s: change at %v before %v", d.dev.NumIDK(), c.at, p.at)
			}
			if c.state == working && p.state != waiting {
				t.Errorf("ИДК %s: WORKING at %v after %v", d.dev.NumIDK(), c.at, p.state)
			}
		}
	}
}

// TestTruthCovers checks that the month exercises every table and rule:
// zero rows, relocations, each time limit breached and kept, entries.
func TestTruthCovers(t *testing.T) {
	m := november(t, 1)
	last := m.Start.AddDate(0, 0, m.Days-1)
	var zero, reloc, t1, t2, t3, reasoned, withdrawn int
	rows := map[int]int{}
	withdrawal := regexp.MustCompile(`^ОТМЕНЕНО \d\d\.\d\d\.\d{4} [^:]+: СКАНИРОВАНИЕ \d\d\.\d\d\.\d{4} \d\d:\d\d, ВИД СНИМКА [235] \((РК|ПОВТОР|ТЕСТ)\)$`)
	for _, o := range m.Offices {
		e := m.Expected(o.KodTO, last)
		for n, rs := range e {
			rows[n] += len(rs)
			for _, r := range rs {
				if len(r) != len(Header(n)) {
					t.Fatalf("table %d row has %d fields, want %d", n, len(r), len(Header(n)))
				}
			}
		}
		for _, r := range e[3] {
			if r[Column(3, "NAIM_M_D")] == "0" {
				zero++
			}
			if r[Column(3, "PRIZ_PEREDISL")] == "1" {
				reloc++
			}
		}
		for _, r := range e[4] {
			for i, n := range []*int{&t1, &t2, &t3} {
				if r[Column(4, fmt.Sprintf("TIME_%d", i+1))] != "" {
					*n++
				}
			}
			switch p := r[Column(4, "PRICH_NAR")]; {
			case strings.HasPrefix(p, "ОТМЕНЕНО"):
				withdrawn++
				if !withdrawal.MatchString(p) || r[Column(4, "TIME_2")] != "0,16" {
					t.Errorf("withdrawn breach %q: TIME_2 %q, PRICH_NAR %q", r[Column(4, "NUM_SNIM")], r[Column(4, "TIME_2")], p)
				}
			case p != "":
				reasoned++
			}
		}
		for _, r := range e[1] {
			// KOD_TO is the ИДК's own office, wherever it stood; NAIM_PER
			// has no source.
			if r[Column(1, "KOD_TO")] != o.KodTO || r[Column(1, "NAIM_PER")] != "" {
				t.Errorf("table 1 row %s: KOD_TO %q, NAIM_PER %q", r[Column(1, "NUM_SNIM")], r[Column(1, "KOD_TO")], r[Column(1, "NAIM_PER")])
			}
		}
		// Cumulative: each day's content starts with the day before's.
		for d := 1; d < m.Days; d++ {
			prev, cur := m.Expected(o.KodTO, m.Start.AddDate(0, 0, d-1)), m.Expected(o.KodTO, m.Start.AddDate(0, 0, d))
			for n := 1; n <= 6; n++ {
				if n == 6 {
					continue // rows dated back may come before older ones
				}
				if len(cur[n]) < len(prev[n]) {
					t.Fatalf("office %s table %d shrinks on day %d", o.KodTO, n, d+1)
				}
			}
		}
	}
	t.Logf("rows per table %v; table 3: %d zero rows, %d relocation rows; table 4: TIME_1 %d, TIME_2 %d, TIME_3 %d, %d with a reason, %d withdrawn",
		rows, zero, reloc, t1, t2, t3, reasoned, withdrawn)
	if zero == 0 || reloc == 0 || t1 == 0 || t2 == 0 || t3 == 0 || reasoned == 0 || withdrawn == 0 || rows[2] == 0 || rows[5] == 0 || rows[6] == 0 {
		t.Error("the month does not exercise every table and rule")
	}
}

func TestFormats(t *testing.T) {
	for _, c := range []struct {
		d        time.Duration
		hm, hmUp string
	}{
		{0, "0,00", "0,00"},
		{29 * time.Second, "0,00", "0,01"},
		{30 * time.Second, "0,01", "0,01"},
		{15*time.Minute + time.Second, "0,15", "0,16"},
		{13*time.Hour + 49*time.Minute + 31*time.Second, "13,50", "13,50"},
	} {
		if got := hm(c.d); got != c.hm {
			t.Errorf("hm(%v) = %s, want %s", c.d, got, c.hm)
		}
		if got := hmUp(c.d); got != c.hmUp {
			t.Errorf("hmUp(%v) = %s, want %s", c.d, got, c.hmUp)
		}
	}
	for in, want := range map[string]string{
		"10216100/011126/0000001":                 "10216100/011126/0000001",
		"10216100 / 011126 / 0000001 / CMR123456": "10216100/011126/0000001",
		"CMR123456":                "",
		"110216100/011126/0000001": "",
		"МДП AB12345678/10216100/011126/0000001/X1": "10216100/011126/0000001",
	} {
		if got := dtOf(in); got != want {
			t.Errorf("dtOf(%q) = %q, want %q", in, got, want)
		}
	}
	if got := stripped("А 654 АА-777 "); got != "А654АА777" {
		t.Errorf("stripped = %q", got)
	}
}
