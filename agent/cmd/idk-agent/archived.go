package main

import (
	"crypto/sha256"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"time"

	"idk/agent/layout"
	"idk/agent/spool"
)

// Item 32: what the ИДК records may not be deleted; when the scanner PC's
// disk fills up, the IT unit moves it to the customs body's storage. The
// agent never deletes or moves anything. `idk-agent archived` tells the
// staff which scan folders are safe to move: every file of the scan is
// stored at the collector, unchanged since, and the scan was first seen
// before a given date.
//
// The answer comes from the spool, which the running agent holds: bbolt
// locks its file for one process (a read-only open takes a shared lock,
// which the agent's exclusive one refuses, on Linux and on Windows
// alike), so another process cannot read it while the agent runs, and
// opening it from the command while the agent starts would make the
// agent fail to open its own spool. The command therefore asks the
// running agent over its local listener (metrics.listen), as `idk-agent
// case` and `idk-agent state` do, and the agent reads its spool in a
// read-only transaction beside its other work. When the agent is not
// running, the command says so and lists nothing: start the agent.

// archivedScan is one scan folder that may be moved.
type archivedScan struct {
	NumSnim   string    `json:"num_snim"`
	Path      string    `json:"path"` // the scan folder on this PC
	Files     int       `json:"files"`
	Bytes     int64     `json:"bytes"`
	FirstSeen time.Time `json:"first_seen"`
	StoredAt  time.Time `json:"stored_at"` // when its last file reached the collector
}

// archivedReply is the running agent's answer.
type archivedReply struct {
	Before time.Time      `json:"before"`
	Scans  []archivedScan `json:"scans"`
	// Waiting counts the scan folders seen before Before that still have
	// something not (or not as it is now) at the collector.
	Waiting int    `json:"waiting"`
	Error   string `json:"error,omitempty"`
}

// archivedHandler answers GET /archived?before=YYYY-MM-DD on the agent's
// local listener from its spool and the scanner's output folder.
func archivedHandler(sp *spool.Spool, outputDir string, lay layout.Layout) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		before, err := parseBefore(r.URL.Query().Get("before"))
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			json.NewEncoder(w).Encode(archivedReply{Error: err.Error()})
			return
		}
		rep, err := archivedScans(sp, outputDir, lay, before)
		if err != nil {
			w.WriteHeader(http.StatusInternalServerError)
			json.NewEncoder(w).Encode(archivedReply{Error: err.Error()})
			return
		}
		json.NewEncoder(w).Encode(rep)
	})
}

// parseBefore reads YYYY-MM-DD as midnight on this PC's clock: the scans'
// first-seen times are the agent's, on the same clock.
func parseBefore(s string) (time.Time, error) {
	t, err := time.ParseInLocation("2006-01-02", s, time.Local)
	if err != nil {
		return time.Time{}, fmt.Errorf("before %q: want a date, YYYY-MM-DD", s)
	}
	return t, nil
}

// archivedScans walks the output folder and keeps the scan folders of
// scans first seen before before whose every scan file is at the
// collector as it is now on disk:
//   - an image or document: its spool record is Done with the collector's
//     StoredAs, and its size and modification time are still those the
//     agent hashed and shipped;
//   - the registration form: its content is the last revision recorded,
//     and no event of the scan waits in the spool (a form travels as an
//     event).
//
// Files the layout does not count as scan files (temporary files, stray
// files) are never shipped and do not hold a folder back; moving the
// folder moves them too. A folder holding a subfolder is held back: the
// agent ships nothing from it, and what it holds is unknown.
func archivedScans(sp *spool.Spool, outputDir string, lay layout.Layout, before time.Time) (archivedReply, error) {
	rep := archivedReply{Before: before, Scans: []archivedScan{}}
	dirs, err := os.ReadDir(outputDir)
	if err != nil {
		return rep, fmt.Errorf("output folder: %w", err)
	}
	// Scans with an event not yet delivered.
	evs, err := sp.PendingEvents(math.MaxInt, math.MaxInt)
	if err != nil {
		return rep, fmt.Errorf("spool: %w", err)
	}
	pending := map[string]bool{}
	for _, ev := range evs {
		for _, n := range []string{ev.GetForm().GetNumSnim(), ev.GetScanSeen().GetNumSnim(), ev.GetIntegrity().GetNumSnim()} {
			if n != "" {
				pending[n] = true
			}
		}
	}
	for _, d := range dirs {
		if !d.IsDir() {
			continue
		}
		dir := filepath.Join(outputDir, d.Name())
		sc, ok, err := archivedScanOf(sp, dir, d.Name(), lay, before, pending)
		if err != nil {
			return rep, err
		}
		switch {
		case ok:
			rep.Scans = append(rep.Scans, sc)
		case !sc.FirstSeen.IsZero() && sc.FirstSeen.Before(before):
			rep.Waiting++
		}
	}
	slices.SortFunc(rep.Scans, func(a, b archivedScan) int { return a.FirstSeen.Compare(b.FirstSeen) })
	return rep, nil
}

// archivedScanOf judges one folder. ok is false when it may not be moved;
// FirstSeen is then set if the spool knows the scan.
func archivedScanOf(sp *spool.Spool, dir, name string, lay layout.Layout, before time.Time, pending map[string]bool) (archivedScan, bool, error) {
	out := archivedScan{Path: dir}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return out, false, fmt.Errorf("scan folder: %w", err)
	}
	type scanFile struct {
		f    layout.File
		info os.FileInfo
		path string
	}
	var files []scanFile
	sub := false
	for _, e := range entries {
		if e.IsDir() {
			sub = true
			continue
		}
		f, ok := lay.Classify(name + "/" + e.Name())
		if !ok {
			continue
		}
		info, err := e.Info()
		if errors.Is(err, os.ErrNotExist) {
			continue // removed meanwhile
		} else if err != nil {
			return out, false, fmt.Errorf("scan folder: %w", err)
		}
		if !info.Mode().IsRegular() {
			continue
		}
		out.NumSnim = f.NumSnim
		files = append(files, scanFile{f, info, filepath.Join(dir, e.Name())})
	}
	if len(files) == 0 {
		return out, false, nil // not a scan folder, or an empty one
	}
	safe := !sub && !pending[out.NumSnim]
	err = sp.View(func(tx *spool.Tx) error {
		sc, known, err := tx.Scan(out.NumSnim)
		if err != nil || !known {
			safe = false
			return err
		}
		out.FirstSeen = sc.FirstSeen
		if !sc.FirstSeen.Before(before) {
			safe = false
		}
		for _, sf := range files {
			rec, ok, err := tx.File(sf.f.NumSnim + "/" + sf.f.Name)
			if err != nil {
				return err
			}
			switch {
			case ok:
				// Shipped as a file (an image, a document, an oversized form).
				if !rec.Done || rec.StoredAs == "" || rec.Size != sf.info.Size() || !rec.ModTime.Equal(sf.info.ModTime()) {
					safe = false
				}
				if rec.DoneAt.After(out.StoredAt) {
					out.StoredAt = rec.DoneAt
				}
			case sf.f.Kind == layout.KindForm:
				if sc.Forms == 0 || !sameContent(sf.path, sc.FormSHA256) {
					safe = false
				}
			default:
				safe = false // not hashed yet
			}
			if !safe {
				return nil
			}
			out.Files++
			out.Bytes += sf.info.Size()
		}
		return nil
	})
	if err != nil {
		return out, false, fmt.Errorf("spool: %w", err)
	}
	return out, safe, nil
}

// sameContent reports whether the file at p has SHA-256 sum. A file that
// cannot be read is not known to be the same.
func sameContent(p string, sum []byte) bool {
	f, err := os.Open(p)
	if err != nil {
		return false
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return false
	}
	return string(h.Sum(nil)) == string(sum)
}

const archivedUsage = `usage: idk-agent archived -before YYYY-MM-DD [-config agent.toml]

Lists the scan folders first seen before the date whose every file is stored
at the collector, unchanged since: these may be moved off this PC when its
disk fills up (item 32). Nothing is deleted or moved by the agent.
The running agent answers (it holds the spool); start it if it is not running.`

// archivedCommand is `idk-agent archived -before DATE`.
func archivedCommand(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("archived", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "agent.toml", "the agent's configuration file")
	before := fs.String("before", "", "list scans first seen before this date, YYYY-MM-DD (required)")
	fs.Usage = func() { fmt.Fprintln(stderr, archivedUsage); fs.PrintDefaults() }
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "idk-agent: archived: unexpected %q\n", fs.Arg(0))
		return 2
	}
	if _, err := parseBefore(*before); err != nil {
		fmt.Fprintln(stderr, "idk-agent: archived:", err)
		fs.Usage()
		return 2
	}
	base, ok := agentAddr(*cfgPath, stderr)
	if !ok {
		return 2
	}
	return getArchived(base+"/archived?before="+url.QueryEscape(*before), stdout, stderr)
}

// getArchived asks the running agent at u and prints its answer.
func getArchived(u string, stdout, stderr io.Writer) int {
	var rep archivedReply
	if err := askAgent(u, nil, &rep); err != nil {
		fmt.Fprintln(stderr, "idk-agent:", err)
		return 1
	}
	if rep.Error != "" {
		fmt.Fprintln(stderr, "idk-agent:", rep.Error)
		return 1
	}
	var bytes int64
	for _, s := range rep.Scans {
		bytes += s.Bytes
		stored := "-" // only a form, delivered as an event
		if !s.StoredAt.IsZero() {
			stored = s.StoredAt.Local().Format("02.01.2006 15:04")
		}
		fmt.Fprintf(stdout, "%s\t%d files\t%d bytes\tseen %s\tat the collector since %s\n", s.Path, s.Files, s.Bytes,
			s.FirstSeen.Local().Format("02.01.2006 15:04"), stored)
	}
	day := rep.Before.Local().Format("02.01.2006")
	fmt.Fprintf(stdout, "%d scan folders seen before %s (%d bytes) are stored at the collector and may be moved off this PC.\n", len(rep.Scans), day, bytes)
	if rep.Waiting > 0 {
		fmt.Fprintf(stdout, "%d more seen before %s are not all at the collector yet: keep them.\n", rep.Waiting, day)
	}
	return 0
}
