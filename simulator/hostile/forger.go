package hostile

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"idk/protocol"
	"idk/protocol/idkpb"
)

// Forger is a hostile agent for a fleet run: it holds one ИДК's real
// certificate (a thief's) and, while an honest ИДК ships, keeps sending
// that ИДК's scan numbers and file names with other content, forged form
// revisions, files named like the collector's own, and hellos that claim
// another customs body. Whatever it does, the honest ИДК's evidence must
// stay intact byte for byte; the chaos run checks that.
type Forger struct {
	Addr    string // the collector's QUIC address
	CertDir string // PKI folder with ca.crt and the stolen agent-<NumIDK>.crt/.key
	NumIDK  string // the stolen certificate's ИДК
	KodTO   string // the customs body it is enrolled for
	// VictimDir is the honest ИДК's scanner output folder: the forger reads
	// scan numbers and file names there, as someone at the same post could.
	VictimDir string
	Every     time.Duration // between rounds; default 300 ms
}

// ForgeStats counts what a Forger tried and what the collector did.
type ForgeStats struct {
	Rounds          int
	Uploads         int // forged files offered
	Stored          int // of them stored (under the forger's own ИДК)
	Refused         int // of them refused
	Forms           int // forged form revisions sent
	LiesRefused     int // hellos claiming another KOD_TO that were refused
	LiesAccepted    int // ... that were accepted: must stay 0
	ConnectFailures int // dials or hellos that failed (the collector is being killed)
}

func (s ForgeStats) String() string {
	return fmt.Sprintf("hostile agent: %d rounds, %d forged files offered (%d stored under its own ИДК, %d refused), %d forged forms, lying hellos refused %d, accepted %d",
		s.Rounds, s.Uploads, s.Stored, s.Refused, s.Forms, s.LiesRefused, s.LiesAccepted)
}

// Run forges until ctx ends and returns what it did.
func (f *Forger) Run(ctx context.Context) ForgeStats {
	every := f.Every
	if every <= 0 {
		every = 300 * time.Millisecond
	}
	var st ForgeStats
	var c *client
	defer func() {
		if c != nil {
			c.close()
		}
	}()
	forged := map[string]bool{} // num_snim/name already forged
	for ctx.Err() == nil {
		st.Rounds++
		if st.Rounds%5 == 1 {
			f.lie(ctx, &st)
		}
		if c == nil || c.conn.Context().Err() != nil {
			c = f.connect(ctx, &st)
		}
		before := st.Uploads
		if c != nil {
			f.round(ctx, c, forged, &st)
		}
		if st.Uploads > before {
			continue // more may have appeared meanwhile: no pause while there is work
		}
		select {
		case <-ctx.Done():
		case <-time.After(every):
		}
	}
	return st
}

func (f *Forger) connect(ctx context.Context, st *ForgeStats) *client {
	// Short: while the collector is down (a chaos kill) a dial only
	// waits, and the next round tries again.
	dctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	c, err := dialAddr(dctx, f.Addr, f.CertDir, f.NumIDK, nil)
	if err != nil {
		st.ConnectFailures++
		return nil
	}
	if err := c.hello(dctx, device(f.NumIDK, f.KodTO)); err != nil {
		st.ConnectFailures++
		c.close()
		return nil
	}
	return c
}

// lie says hello claiming a customs body the ИДК is not enrolled for.
func (f *Forger) lie(ctx context.Context, st *ForgeStats) {
	dctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	c, err := dialAddr(dctx, f.Addr, f.CertDir, f.NumIDK, nil)
	if err != nil {
		return
	}
	defer c.close()
	other := "10000000"
	if f.KodTO == other {
		other = "10000001"
	}
	switch err := c.hello(dctx, device(f.NumIDK, other)); {
	case err == nil:
		st.LiesAccepted++
	case dctx.Err() == nil:
		st.LiesRefused++
	}
}

// round forges every file of the victim's scans that it has not forged
// yet, and a form revision for each of those scans.
func (f *Forger) round(ctx context.Context, c *client, forged map[string]bool, st *ForgeStats) {
	scans, _ := os.ReadDir(f.VictimDir)
	for _, scan := range scans {
		snim := scan.Name()
		if !scan.IsDir() || protocol.CheckNumSnim(snim) != nil {
			continue
		}
		names, _ := os.ReadDir(filepath.Join(f.VictimDir, snim))
		fresh := false
		for _, n := range append(slices.Clone(names), nil) {
			name := "form-r001.xml" // named like the collector's own form files
			if n != nil {
				name = n.Name()
			}
			if forged[snim+"/"+name] || protocol.CheckFileName(name) != nil {
				continue
			}
			fresh = true
			data := content("forged "+f.NumIDK+" "+snim+"/"+name+time.Now().String(), 4096)
			uctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			rep, res, err := c.upload(uctx, offerOf(snim, name, data, time.Now()), data)
			cancel()
			if err != nil {
				return // the connection went (a collector kill): next round
			}
			forged[snim+"/"+name] = true
			st.Uploads++
			if res != nil && res.Error == "" {
				st.Stored++
			} else if rep.Status != idkpb.FileOfferReply_STATUS_SEND {
				st.Refused++
			}
		}
		if !fresh {
			continue
		}
		form := []byte(`<?xml version="1.0" encoding="windows-1251"?><Form><NUM_SNIM>` + snim + `</NUM_SNIM><forged/></Form>`)
		ectx, cancel := context.WithTimeout(ctx, 10*time.Second)
		ack, err := c.sendEvents(ectx, c.scanSeen(snim, time.Now()), c.formRevision(snim, 1, form, nil, time.Now()))
		cancel()
		if err != nil {
			return
		}
		if ack.Error == "" {
			st.Forms++
		}
	}
}
