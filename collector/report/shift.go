package report

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"idk/collector/ingest"
	"idk/internal/httpjson"
)

// Item 23б of the Instruction: when the operator decides «Объект без
// подозрения» but found signs of a possible violation and marked them on
// the image (item 23а, whatever the decision), the shift lead passes
// that on at the end of the shift to the head of the ИДК coordination
// unit. The end-of-shift list is those scans: table 1 REZ 1 with OS_OTM 1.

// ShiftItem is one scan of the end-of-shift list: where and when it was
// made and what the shift lead passes on.
type ShiftItem struct {
	KodTO    string    `json:"KOD_TO"`
	NaimTO   string    `json:"NAIM_TO"`
	NaimZTK  string    `json:"NAIM_ZTK"`
	NumIDK   string    `json:"NUM_IDK"`
	NumSnim  string    `json:"NUM_SNIM"`
	At       time.Time `json:"time"` // the scan's time (collector clock), in the journal's zone
	NumTS    string    `json:"NUM_TS,omitempty"`
	NumPTS   string    `json:"NUM_P_TS,omitempty"`
	NumCont  string    `json:"NUM_CONT,omitempty"`
	NaimTov  string    `json:"NAIM_TOV,omitempty"`
	Prim     string    `json:"PRIM,omitempty"`     // the operator's comment: what was marked
	Operator string    `json:"operator,omitempty"` // the form's operator login
}

// ShiftList returns the end-of-shift list of ИДК numIDK for the shift
// [from, to): its scans made in that time whose latest form says «Объект
// без подозрения» (REZ 1) and whose image carries marks (OS_OTM 1), in
// the order they were made. A scan counts by its scan time, as table 1
// dates it; a form corrected after the shift changes the list, which
// reads the form as it is now.
func (j *ScanJournal) ShiftList(v ingest.Viewer, numIDK string, from, to time.Time) ([]ShiftItem, error) {
	numIDK = scanNorm(numIDK)
	if numIDK == "" || !from.Before(to) {
		return nil, nil
	}
	items := []ShiftItem{}
	// Scan keys sort by KOD_TO first, and the ИДК's KOD_TO is not known
	// here (nor fixed: the registry may move it): read each customs
	// body's days of the shift in turn, skipping from one KOD_TO to the
	// next, which are few.
	days := func(kodTO string) ([]byte, []byte) {
		return []byte(kodTO + "/" + from.In(j.loc).Format("20060102")),
			ingest.PrefixEnd([]byte(kodTO + "/" + to.In(j.loc).Format("20060102")))
	}
	var after []byte // where the next customs body's keys start
	err := v.View(func(tx ingest.Tx) error {
		for {
			var kodTO string
			err := tx.Scan(bucketScans, after, nil, false, func(k, _ []byte) error {
				if i := bytes.IndexByte(k, '/'); i > 0 {
					kodTO = string(k[:i])
				}
				return errScanEnough
			})
			if err != nil && !errors.Is(err, errScanEnough) {
				return err
			}
			if kodTO == "" {
				return nil
			}
			start, end := days(kodTO)
			err = tx.Scan(bucketScans, start, end, false, func(k, data []byte) error {
				r, err := parseScanKey(k)
				if err != nil {
					return err
				}
				if r.NumIDK != numIDK || r.At.Before(from) || !r.At.Before(to) {
					return nil
				}
				if err := json.Unmarshal(data, &r.scanValue); err != nil {
					return fmt.Errorf("scan %q: %w", k, err)
				}
				if f := r.Form; f.Rez == "1" && f.OsOtm == "1" {
					items = append(items, ShiftItem{
						KodTO: r.KodTO, NaimTO: t1Text(r.NaimTO), NaimZTK: t1Text(r.NaimZTK), NumIDK: r.NumIDK,
						NumSnim: r.NumSnim, At: r.At.In(j.loc), NumTS: f.NumTS, NumPTS: f.NumPTS, NumCont: f.NumCont,
						NaimTov: f.Goods, Prim: f.Prim, Operator: f.Operator,
					})
				}
				return nil
			})
			if err != nil {
				return err
			}
			if after = ingest.PrefixEnd([]byte(kodTO + "/")); after == nil {
				return nil
			}
		}
	})
	if err != nil {
		return nil, fmt.Errorf("report: shift list of ИДК %s: %w", numIDK, err)
	}
	// Keys of one customs body are in time order within a day; the
	// shift may span customs bodies (a registry change), so sort whole.
	slices.SortStableFunc(items, func(a, b ShiftItem) int {
		return cmp.Or(a.At.Compare(b.At), strings.Compare(a.NumSnim, b.NumSnim))
	})
	return items, nil
}

// ShiftHandler serves the end-of-shift list (item 23б). The collector
// puts it behind its API token.
//
//	GET /api/v1/reports/shift?num_idk=N&from=RFC3339&to=RFC3339
//	    {"num_idk", "from", "to", "items": [ShiftItem...]}
type ShiftHandler struct {
	Index ingest.Viewer
	Scans *ScanJournal
}

// ShiftReply is the answer of GET /api/v1/reports/shift.
type ShiftReply struct {
	NumIDK string      `json:"num_idk"`
	From   time.Time   `json:"from"`
	To     time.Time   `json:"to"`
	Items  []ShiftItem `json:"items"`
}

func (h *ShiftHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		http.Error(w, "method not allowed: GET only", http.StatusMethodNotAllowed)
		return
	}
	q, ok := httpjson.Query(w, r, "num_idk", "from", "to")
	if !ok {
		return
	}
	numIDK := strings.TrimSpace(q.Get("num_idk"))
	if numIDK == "" {
		http.Error(w, "num_idk is required", http.StatusBadRequest)
		return
	}
	var bounds [2]time.Time
	for i, name := range []string{"from", "to"} {
		t, err := time.Parse(time.RFC3339, q.Get(name))
		if err != nil {
			http.Error(w, fmt.Sprintf("%s: want an RFC 3339 time, e.g. 2026-11-27T20:00:00+03:00: %v", name, err), http.StatusBadRequest)
			return
		}
		bounds[i] = t
	}
	if !bounds[0].Before(bounds[1]) {
		http.Error(w, "from must be before to", http.StatusBadRequest)
		return
	}
	if bounds[1].Sub(bounds[0]) > 31*24*time.Hour {
		http.Error(w, "from..to is longer than 31 days: ask for a shift", http.StatusBadRequest)
		return
	}
	items, err := h.Scans.ShiftList(h.Index, numIDK, bounds[0], bounds[1])
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	httpjson.Write(w, ShiftReply{NumIDK: scanNorm(numIDK), From: bounds[0], To: bounds[1], Items: items})
}
