package reanalysis

import (
	"time"

	"idk/collector/ingest"
	"idk/collector/report"
)

// JournalScans reads the scans from the scan journal through report's
// exported API: table 1's rows give the identity, the decision (REZ) and
// the risk profile (NUM_PR) the analyst selects by, exactly as the daily
// report shows them.
type JournalScans struct {
	Journal *report.ScanJournal
	Index   ingest.Viewer     // the collector's index the journal is kept in
	Facts   report.FactSource // the case engine: NUM_PR; nil leaves it empty
}

// LookupScan implements report.ScanLookup.
func (j JournalScans) LookupScan(numIDK, numSnim string) (report.ScanIdentity, bool, error) {
	return j.Journal.LookupScan(numIDK, numSnim)
}

// Column positions in a table 1 row.
var (
	t1KodTO   = report.Table1.Field("KOD_TO")
	t1NumIDK  = report.Table1.Field("NUM_IDK")
	t1NumSnim = report.Table1.Field("NUM_SNIM")
	t1Date    = report.Table1.Field("DATE_SYS")
	t1Rez     = report.Table1.Field("REZ")
	t1NumPR   = report.Table1.Field("NUM_PR")
)

// Scans implements Scans. No roster is given: the operator's name is not
// what a selection needs, and leaving it out spares a lookup per row.
func (j JournalScans) Scans(kodTO string, from, to time.Time, emit func(Scan) error) error {
	return j.Journal.Table1(j.Index, kodTO, from, to, j.Facts, nil, func(row report.Row, _ *report.Missing) error {
		return emit(Scan{
			KodTO: row[t1KodTO], NumIDK: row[t1NumIDK], NumSnim: row[t1NumSnim],
			DateSys: row[t1Date], Rez: row[t1Rez], NumPR: row[t1NumPR],
		})
	})
}
