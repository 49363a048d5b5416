package reanalysis

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"time"

	"idk/protocol"
	"idk/protocol/idkpb"
)

// Lead is one piece of the agent's integrity evidence about a selected
// scan: something for the analyst to look at, never a result. Only the
// analyst's finding (Request.Missing, Substituted) counts in table 5.
type Lead struct {
	ScanRef
	// Kind: "changed" (a file's content changed after it was first seen:
	// a substitution?), "missing" (a file vanished before it was shipped),
	// "renamed", "rejected" (the collector refused the file for good), or
	// "chain_break" (the agent's chain of scans does not lead to this one:
	// a scan before it is missing or was altered).
	Kind         string    `json:"kind"`
	Name         string    `json:"name,omitempty"` // the file
	FirstSHA256  string    `json:"first_sha256,omitempty"`
	NowSHA256    string    `json:"now_sha256,omitempty"`
	OriginalName string    `json:"original_name,omitempty"`
	Reason       string    `json:"reason,omitempty"`
	At           time.Time `json:"at"` // when the collector received the evidence
}

// Leads returns the integrity evidence about the scans q selects, in the
// order of each ИДК's log. It reads each selected ИДК's events whole: the
// integrity checker keeps counts per ИДК, not events per scan.
func (r *Recorder) Leads(q Query) ([]Lead, error) {
	if r.cfg.Events == nil {
		return nil, nil
	}
	scans, _, err := r.Select(q)
	if err != nil {
		return nil, err
	}
	want := map[string]map[string]bool{}
	var idks []string
	for _, s := range scans {
		if want[s.NumIDK] == nil {
			want[s.NumIDK] = map[string]bool{}
			idks = append(idks, s.NumIDK)
		}
		want[s.NumIDK][s.NumSnim] = true
	}
	var out []Lead
	for _, idk := range idks {
		sel := want[idk]
		// The chain is followed as the checker does (package integrity):
		// per spool epoch, each scan's link must follow from the one
		// before; a repeat of what was checked is skipped.
		type link struct {
			seen  bool
			index uint64
			chain []byte
		}
		heads := map[uint64]*link{}
		err := r.cfg.Events.EachEvent(idk, func(epoch uint64, ev *idkpb.Event) error {
			at := time.Unix(0, ev.CollectorTimeUnixNano).In(r.loc)
			switch b := ev.Body.(type) {
			case *idkpb.Event_Integrity:
				in := b.Integrity
				if !sel[in.NumSnim] {
					return nil
				}
				out = append(out, Lead{
					ScanRef: ScanRef{NumIDK: idk, NumSnim: in.NumSnim}, Kind: integrityKind(in.Kind), Name: in.Name,
					FirstSHA256: hex.EncodeToString(in.FirstSha256), NowSHA256: hex.EncodeToString(in.NowSha256),
					OriginalName: in.OriginalName, Reason: in.Reason, At: at,
				})
			case *idkpb.Event_ScanSeen:
				s := b.ScanSeen
				if s.Index == 0 {
					return nil // an agent that does not chain
				}
				h := heads[epoch]
				if h == nil {
					h = &link{}
					heads[epoch] = h
				}
				if h.seen && s.Index <= h.index {
					return nil
				}
				ok := bytes.Equal(protocol.ChainNext(h.chain, s.Index, s.NumSnim), s.Chain) && s.Index == h.index+1
				if !ok && sel[s.NumSnim] {
					out = append(out, Lead{
						ScanRef: ScanRef{NumIDK: idk, NumSnim: s.NumSnim}, Kind: "chain_break", At: at,
						Reason: fmt.Sprintf("spool %d: the chain after scan index %d does not lead to this scan (index %d): a scan between them is missing or was altered", epoch, h.index, s.Index),
					})
				}
				*h = link{seen: true, index: s.Index, chain: bytes.Clone(s.Chain)}
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("reanalysis: leads of ИДК %s: %w", idk, err)
		}
	}
	return out, nil
}

func integrityKind(k idkpb.Integrity_Kind) string {
	switch k {
	case idkpb.Integrity_KIND_MISSING:
		return "missing"
	case idkpb.Integrity_KIND_RENAMED:
		return "renamed"
	case idkpb.Integrity_KIND_REJECTED:
		return "rejected"
	}
	return "changed"
}
