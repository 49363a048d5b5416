package cases

import (
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"idk/collector/kv"
)

var riskPR = RiskProfile{KodTeh: "05", VidPr: "55", KodToPr: "10216000", DateReg: "12.12.2012", NumPr: "12361", DocType: 4}

// scanEntries counts the entries of the scan index, to catch stale ones.
func (f *fixture) scanEntries() (scans, snims int) {
	f.t.Helper()
	return f.keys(bucketScans), f.keys(bucketScanSnim)
}

// keys counts the keys of bucket.
func (f *fixture) keys(bucket string) int {
	f.t.Helper()
	var n int
	err := f.e.db.View(func(tx kv.Tx) error {
		n = 0
		return tx.Scan(bucket, nil, nil, false, func(_, _ []byte) error {
			n++
			return nil
		})
	})
	if err != nil {
		f.t.Fatal(err)
	}
	return n
}

func (f *fixture) zones(numIDK string, from, to time.Time) []Zone {
	f.t.Helper()
	z, err := f.e.Zones(numIDK, from, to)
	if err != nil {
		f.t.Fatal(err)
	}
	return z
}

func (f *fixture) facts(numIDK, numSnim string) (ScanFacts, bool) {
	f.t.Helper()
	s, ok, err := f.e.ScanFacts(numIDK, numSnim)
	if err != nil {
		f.t.Fatal(err)
	}
	return s, ok
}

func sameZones(a, b []Zone) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !a[i].Arrival.Equal(b[i].Arrival) || !a[i].Decision.Equal(b[i].Decision) {
			return false
		}
	}
	return true
}

// The facts of a scan come from every event of its case: the risk of the
// risk_detected, the kind of scan staff said, and the zone runs from the
// arrival to the first decision: the inspection ends with it, and a later
// edit of the form does not keep the object in the zone.
func TestScanFacts(t *testing.T) {
	loc := moscow(t)
	f := newFixture(t, at(loc, 5, 9, 0, 0))
	f.add(Event{Kind: RiskDetected, Time: at(loc, 5, 10, 0, 0), NumIDK: idkX, Docs: []string{dt1}, Risk: riskPR})
	f.add(Event{Kind: Arrival, Time: at(loc, 5, 10, 5, 0), NumIDK: idkX})
	f.add(Event{Kind: Scan, Time: at(loc, 5, 10, 6, 0), NumIDK: idkX, NumSnim: "S1", VerScan: ScanRepeat})
	f.add(Event{Kind: Decision, Time: at(loc, 5, 10, 10, 0), NumIDK: idkX, NumSnim: "S1"})
	f.add(Event{Kind: Decision, Time: at(loc, 5, 10, 20, 0), NumIDK: idkX, NumSnim: "S1", Suspected: true})

	got, ok := f.facts(idkX, " s1")
	if want := (ScanFacts{VerScan: ScanRepeat, Risk: riskPR}); !ok || got != want {
		t.Errorf("ScanFacts = %+v, %v; want %+v", got, ok, want)
	}
	if _, ok := f.facts(idkY, "S1"); ok {
		t.Error("image S1 found at another ИДК")
	}
	if _, ok := f.facts(idkX, "S9"); ok {
		t.Error("an image never seen has facts")
	}
	want := []Zone{{Arrival: at(loc, 5, 10, 5, 0), Decision: at(loc, 5, 10, 10, 0)}}
	if z := f.zones(idkX, at(loc, 5, 0, 0, 0), at(loc, 6, 0, 0, 0)); !sameZones(z, want) {
		t.Errorf("Zones = %+v, want %+v", z, want)
	}
	// The form edited again the next hour: the zone still ended at the
	// first decision.
	f.add(Event{Kind: Decision, Time: at(loc, 5, 11, 20, 0), NumIDK: idkX, NumSnim: "S1"})
	if z := f.zones(idkX, at(loc, 5, 0, 0, 0), at(loc, 6, 0, 0, 0)); !sameZones(z, want) {
		t.Errorf("Zones after a later edit = %+v, want %+v", z, want)
	}

	// A withdrawn risk did not trigger the inspection.
	f.add(Event{Kind: RiskWithdrawn, Time: at(loc, 5, 10, 21, 0), NumIDK: idkX, NumSnim: "S1", Reason: "ошибочный ПР"})
	if got, _ := f.facts(idkX, "S1"); got.Risk != (RiskProfile{}) || got.VerScan != ScanRepeat {
		t.Errorf("after risk_withdrawn: %+v", got)
	}

	// A DOC_TYPE outside its table is refused.
	_, err := f.e.Add(Event{Kind: RiskDetected, Time: at(loc, 5, 10, 22, 0), NumIDK: idkX, By: "test", Risk: RiskProfile{DocType: 11}})
	if err == nil {
		t.Error("risk with DOC_TYPE 11 taken")
	}
}

// Zones lists an ИДК's zones whose arrival is in [from, to), in arrival
// order; a scan without an arrival starts its zone; an undecided object's
// zone has no end yet.
func TestZonesOrderAndRange(t *testing.T) {
	loc := moscow(t)
	f := newFixture(t, at(loc, 5, 9, 0, 0))
	f.add(Event{Kind: Scan, Time: at(loc, 5, 9, 30, 0), NumIDK: idkX, NumSnim: "A"})
	f.add(Event{Kind: Scan, Time: at(loc, 5, 9, 45, 0), NumIDK: idkY, NumSnim: "B"})
	f.add(Event{Kind: Arrival, Time: at(loc, 5, 10, 0, 0), NumIDK: idkX})
	f.add(Event{Kind: Scan, Time: at(loc, 5, 10, 2, 0), NumIDK: idkX, NumSnim: "C"})
	f.add(Event{Kind: Decision, Time: at(loc, 5, 10, 12, 0), NumIDK: idkX, NumSnim: "C"})
	f.add(Event{Kind: Decision, Time: at(loc, 5, 10, 13, 0), NumIDK: idkX, NumSnim: "A"})
	f.add(Event{Kind: Scan, Time: at(loc, 5, 11, 0, 0), NumIDK: idkX, NumSnim: "D"})
	// An arrival before the scan it belongs to, reported after it: the
	// zone starts at the arrival, and the entry moves.
	f.add(Event{Kind: Arrival, Time: at(loc, 5, 10, 58, 0), NumIDK: idkX, NumSnim: "D"})

	all := []Zone{
		{Arrival: at(loc, 5, 9, 30, 0), Decision: at(loc, 5, 10, 13, 0)},
		{Arrival: at(loc, 5, 10, 0, 0), Decision: at(loc, 5, 10, 12, 0)},
		{Arrival: at(loc, 5, 10, 58, 0)},
	}
	if z := f.zones(idkX, at(loc, 5, 0, 0, 0), at(loc, 6, 0, 0, 0)); !sameZones(z, all) {
		t.Errorf("day's zones = %+v, want %+v", z, all)
	}
	// from is in the range, to is not.
	if z := f.zones(idkX, at(loc, 5, 10, 0, 0), at(loc, 5, 10, 58, 0)); !sameZones(z, all[1:2]) {
		t.Errorf("zones in [10:00, 10:58) = %+v, want %+v", z, all[1:2])
	}
	if z := f.zones(idkY, at(loc, 5, 0, 0, 0), at(loc, 6, 0, 0, 0)); len(z) != 1 || !z[0].Arrival.Equal(at(loc, 5, 9, 45, 0)) {
		t.Errorf("zones of %s = %+v", idkY, z)
	}
	if z := f.zones(idkX, at(loc, 6, 0, 0, 0), at(loc, 7, 0, 0, 0)); len(z) != 0 {
		t.Errorf("zones of the next day = %+v", z)
	}
	if s, n := f.scanEntries(); s != 4 || n != 4 {
		t.Errorf("index holds %d entries, %d images; want 4, 4", s, n)
	}
}

// A scan-only case merged into the case of its documents leaves one entry,
// the merged case's, with the risk of the documents' case.
func TestScanIndexMerge(t *testing.T) {
	loc := moscow(t)
	f := newFixture(t, at(loc, 5, 9, 0, 0))
	risk := f.add(Event{Kind: RiskDetected, Time: at(loc, 5, 10, 30, 0), NumIDK: idkX, Docs: []string{dt2}, Risk: riskPR})
	scan := f.add(Event{Kind: Scan, Time: at(loc, 5, 11, 0, 0), NumIDK: idkX, NumSnim: "S2"})
	if scan == risk {
		t.Fatal("the scan joined the risk's case: the test needs a scan-only case")
	}
	if _, ok := f.facts(idkX, "S2"); !ok {
		t.Fatal("no facts for the scan-only case")
	}
	if id := f.add(Event{Kind: Decision, Time: at(loc, 5, 11, 10, 0), NumIDK: idkX, NumSnim: "S2", Docs: []string{dt2}}); id != risk {
		t.Fatalf("decision went to %s, want the documents' case %s", id, risk)
	}
	if got, ok := f.facts(idkX, "S2"); !ok || got.Risk != riskPR {
		t.Errorf("facts after the merge = %+v, %v", got, ok)
	}
	if s, n := f.scanEntries(); s != 1 || n != 1 {
		t.Errorf("index holds %d entries, %d images after the merge; want 1, 1", s, n)
	}
	want := []Zone{{Arrival: at(loc, 5, 11, 0, 0), Decision: at(loc, 5, 11, 10, 0)}}
	if z := f.zones(idkX, at(loc, 5, 0, 0, 0), at(loc, 6, 0, 0, 0)); !sameZones(z, want) {
		t.Errorf("Zones = %+v, want %+v", z, want)
	}
}

// The index survives a restart, and a file from before the index is
// filled once when it is opened.
func TestScanIndexReopenAndMigrate(t *testing.T) {
	loc := moscow(t)
	f := newFixture(t, at(loc, 5, 9, 0, 0))
	f.add(Event{Kind: RiskDetected, Time: at(loc, 5, 10, 0, 0), NumIDK: idkX, Docs: []string{dt1}, Risk: riskPR})
	f.add(Event{Kind: Arrival, Time: at(loc, 5, 10, 5, 0), NumIDK: idkX})
	f.add(Event{Kind: Scan, Time: at(loc, 5, 10, 6, 0), NumIDK: idkX, NumSnim: "S1", VerScan: ScanObject})
	f.add(Event{Kind: Decision, Time: at(loc, 5, 10, 10, 0), NumIDK: idkX, NumSnim: "S1"})
	f.add(Event{Kind: Scan, Time: at(loc, 5, 10, 30, 0), NumIDK: idkX, NumSnim: "S2"})
	f.add(Event{Kind: Decision, Time: at(loc, 5, 10, 40, 0), NumIDK: idkX, NumSnim: "S1", Suspected: true})
	day := func() []Zone { return f.zones(idkX, at(loc, 5, 0, 0, 0), at(loc, 6, 0, 0, 0)) }
	before := day()
	if len(before) != 2 || !before[0].Decision.Equal(at(loc, 5, 10, 10, 0)) {
		t.Fatalf("zones = %+v", before)
	}
	check := func(when string) {
		t.Helper()
		if z := day(); !sameZones(z, before) {
			t.Errorf("%s: zones = %+v, want %+v", when, z, before)
		}
		if got, ok := f.facts(idkX, "S1"); !ok || got != (ScanFacts{VerScan: ScanObject, Risk: riskPR}) {
			t.Errorf("%s: facts = %+v, %v", when, got, ok)
		}
	}
	f.restart(at(loc, 5, 12, 0, 0))
	check("after a restart")

	// Remove the index as a collector before it would have left the file.
	db := f.closeToBolt(t)
	dropScanIndex(t, db)
	db.Close()
	f.open()
	check("after filling the index")
	if s, n := f.scanEntries(); s != 2 || n != 2 {
		t.Errorf("filled index holds %d entries, %d images; want 2, 2", s, n)
	}

	// A file indexed by version 1, which kept the last decision: marked
	// done under the old key, its entries are indexed again, once.
	db = f.closeToBolt(t)
	err := db.Update(func(tx *bolt.Tx) error {
		scans := tx.Bucket([]byte(bucketScans))
		key := tx.Bucket([]byte(bucketScanSnim)).Get([]byte(snimKey(idkX, "S1")))
		v1 := []byte(`{"num_snim":"S1","arrival":"2024-03-05T07:05:00Z","scan":"2024-03-05T07:06:00Z","decision":"2024-03-05T07:40:00Z","ver_scan":1}`)
		if err := scans.Put(key, v1); err != nil {
			return err
		}
		meta := tx.Bucket([]byte(bucketMeta))
		if err := meta.Delete(keyScanIndex); err != nil {
			return err
		}
		return meta.Put(keysScanIndexOld[0], []byte{1})
	})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	f.open()
	check("after indexing a version 1 file again")
	err = f.e.db.View(func(tx kv.Tx) error {
		if v, err := tx.Get(bucketMeta, keyScanIndex); err != nil || v == nil {
			t.Errorf("the index is not marked filled (%v)", err)
		}
		for _, k := range keysScanIndexOld {
			if v, err := tx.Get(bucketMeta, k); err != nil || v != nil {
				t.Errorf("version 1 key %q left (%v)", k, err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// closeToBolt closes the fixture's engine and opens its file with bbolt
// itself, for a test that changes the file from outside the engine.
func (f *fixture) closeToBolt(t *testing.T) *bolt.DB {
	t.Helper()
	if err := f.e.Close(); err != nil {
		t.Fatal(err)
	}
	f.e = nil
	db, err := bolt.Open(f.path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	return db
}

// dropScanIndex removes the scan index, as a collector from before it
// would have left the file.
func dropScanIndex(t *testing.T, db *bolt.DB) {
	t.Helper()
	err := db.Update(func(tx *bolt.Tx) error {
		for _, b := range []string{bucketScans, bucketScanSnim} {
			if err := tx.DeleteBucket([]byte(b)); err != nil {
				return err
			}
		}
		return tx.Bucket([]byte(bucketMeta)).Delete(keyScanIndex)
	})
	if err != nil {
		t.Fatal(err)
	}
}
