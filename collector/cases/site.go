package cases

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"idk/collector/ingest"
	"idk/protocol/idkpb"
)

// Place is where an ИДК stands: the location fields of table 4 (KOD_TO,
// NAIM_TO, NAIM_ZTK, DISL_IDK), which table 3 calls KOD_M_D, NAIM_M_D,
// NAIM_ZTK_M_D and DISL_P. An empty field is the hello's, as in table 3,
// so that a site carrying only coordinates does not give a row without a
// name.
type Place struct {
	KodTO   string `json:"kod_to,omitempty"`
	NaimTO  string `json:"naim_to,omitempty"`
	NaimZTK string `json:"naim_ztk,omitempty"`
	Disl    uint32 `json:"disl,omitempty"`
}

// placeOf is the place a state change's site names, normalised like
// table 3's: upper case, no stray spaces. Coordinates are left out: table
// 4 has none, and a GPS fix must not grow the history.
func placeOf(s *idkpb.Site) Place {
	up := func(v string) string { return strings.ToUpper(strings.TrimSpace(v)) }
	return Place{KodTO: norm(s.GetKodTo()), NaimTO: up(s.GetNaimTo()), NaimZTK: up(s.GetNaimZtk()), Disl: s.GetDisl()}
}

// over is d with the place's non-empty fields.
func (p Place) over(d Device) Device {
	if p.KodTO != "" {
		d.KodTO = p.KodTO
	}
	if p.NaimTO != "" {
		d.NaimTO = p.NaimTO
	}
	if p.NaimZTK != "" {
		d.NaimZTK = p.NaimZTK
	}
	if p.Disl != 0 {
		d.DislIDK = p.Disl
	}
	return d
}

// siteChange says that from At (collector time) on the ИДК stands at
// Place, until the next change.
type siteChange struct {
	At    time.Time `json:"at"`
	Place Place     `json:"place"`
}

// maxSites bounds an ИДК's site history. A mobile ИДК moves a few times a
// week, so this is years of moves; past it the oldest go first, and a
// breach older than every change kept keeps the site it was stamped with.
const maxSites = 256

// bucketFeedSites, in the collector's index, holds each ИДК's site
// history: NUM_IDK -> []siteChange (JSON), oldest first.
const bucketFeedSites = "cases.sites"

// insertSite adds c to h in time order, after any change of the same
// time (the later report wins, as in table 3). It returns h unchanged
// and false when c changes nothing: the ИДК already stood there, or c is
// older than a full history. h itself is never modified.
func insertSite(h []siteChange, c siteChange) ([]siteChange, bool) {
	i := sort.Search(len(h), func(i int) bool { return h[i].At.After(c.At) })
	if i > 0 && h[i-1].Place == c.Place {
		return h, false
	}
	if i == 0 && len(h) >= maxSites {
		return h, false
	}
	h = slices.Insert(slices.Clone(h), i, c)
	if len(h) > maxSites {
		h = h[len(h)-maxSites:]
	}
	return h, true
}

// siteAt is the place in force at t. ok is false when h has no change at
// or before t: the site is then the hello's, or, for a history cut at
// maxSites, unknown.
func siteAt(h []siteChange, t time.Time) (Place, bool) {
	i := sort.Search(len(h), func(i int) bool { return h[i].At.After(t) })
	if i == 0 {
		return Place{}, false
	}
	return h[i-1].Place, true
}

func decodeSites(numIDK, v []byte) ([]siteChange, error) {
	var h []siteChange
	if err := json.Unmarshal(v, &h); err != nil {
		return nil, fmt.Errorf("cases: site history of %s: %w", numIDK, err)
	}
	return h, nil
}

// applySite records c in numIDK's site history in tx.
func applySite(tx ingest.Tx, numIDK string, c siteChange) error {
	key := []byte(numIDK)
	v, err := tx.Get(bucketFeedSites, key)
	if err != nil {
		return fmt.Errorf("cases: site history of %s: %w", numIDK, err)
	}
	var h []siteChange
	if v != nil {
		if h, err = decodeSites(key, v); err != nil {
			return err
		}
	}
	h, changed := insertSite(h, c)
	if !changed {
		return nil
	}
	data, err := json.Marshal(h)
	if err != nil {
		return fmt.Errorf("cases: site history of %s: %w", numIDK, err)
	}
	return tx.Put(bucketFeedSites, key, data)
}

// whySite is the Why of a version and the What of an audit entry caused
// by a site change.
const whySite = "site of the ИДК at the breach time, from its state changes"

// useSites puts site histories into the engine and stamps the breaches
// of the live cases at those ИДК with their site (see stampSites). A row
// whose site changes gets a new version: a state change that the spool
// delivered late can move a breach to the site the ИДК really stood at.
func (e *Engine) useSites(hs map[string][]siteChange) error {
	e.wmu.Lock()
	defer e.wmu.Unlock()
	only := map[string]bool{}
	e.mu.Lock()
	for numIDK, h := range hs {
		e.sites[numIDK] = h
		only[numIDK] = true
	}
	e.mu.Unlock()
	ch := e.newChange(e.clock.Now())
	ch.stampSites(only)
	if ch.empty() {
		return nil
	}
	c := cause{by: collectorBy, what: whySite}
	ch.versions(c)
	ch.logAudit(c)
	if err := e.db.Update(ch.write); err != nil {
		return fmt.Errorf("cases: stamp sites: %w", err)
	}
	e.apply(ch)
	return nil
}

// noteSite adds one site change of numIDK to the engine's history.
func (e *Engine) noteSite(numIDK string, c siteChange) error {
	e.wmu.Lock()
	h, changed := insertSite(e.sites[numIDK], c)
	e.wmu.Unlock()
	if !changed {
		return nil
	}
	return e.useSites(map[string][]siteChange{numIDK: h})
}

// stampSites stamps each standing breach mark of the live cases (of the
// ИДК in only, or of all if only is nil) with the place the ИДК stood at
// when the deadline passed, from the site history. A mark the history
// says nothing about keeps its stamp: the history starts later, or was
// cut. Table 4's identity then follows the device like table 3's, and
// the stamp keeps it across restarts and a cut history.
func (ch *change) stampSites(only map[string]bool) {
	var todo []*record
	ch.each(func(r *record) {
		if len(r.Breaches) > 0 && len(ch.e.sites[r.NumIDK]) > 0 && (only == nil || only[r.NumIDK]) {
			todo = append(todo, r)
		}
	})
	for _, r := range todo {
		h := ch.e.sites[r.NumIDK]
		for _, rule := range rules {
			m, ok := r.Breaches[rule]
			if !ok || m.Withdrawn {
				continue
			}
			p, known := siteAt(h, m.At)
			if !known || (m.Site != nil && *m.Site == p) {
				continue
			}
			c := ch.edit(r)
			m.Site = &p
			c.Breaches[rule] = m
			r = c
		}
	}
}
