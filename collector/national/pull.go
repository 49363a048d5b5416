package national

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"idk/collector/report"
	"idk/internal/atomicfile"
	"idk/internal/secretfile"
	"idk/protocol"
	"idk/protocol/transport"
)

// A region's pulled reports are kept by month:
//
//	<dir>/<region>/<YYYY-MM>/monthly.xlsx                 the monthly report (item 37)
//	<dir>/<region>/<YYYY-MM>/summary.json                 its summary (report.MonthlySummary)
//	<dir>/<region>/<YYYY-MM>/daily-<YYYY-MM-DD>-<KOD_TO>.xlsx   a day's report of one office
//	<dir>/<region>/<YYYY-MM>/fleet-<YYYY-MM-DD>.json      the region's fleet that day: table 3 of each ИДК
//	<dir>/<region>/<YYYY-MM>/manifest.json                the SHA-256 of each (Manifest)
//	<dir>/<region>/<YYYY-MM>/versions/<name>.v<N>.<ext>   what a later pull replaced
//
// A pull replaces a file with the region's current one (a corrected report
// is a new version there) and moves the one it replaces to versions/, so
// that what the FTS once received is never lost. Only a draft, a report the
// region had not published when it was pulled, is replaced without being
// kept: it was never a version of the region's.
const (
	MonthlyFile  = "monthly.xlsx"
	SummaryFile  = "summary.json"
	ManifestFile = "manifest.json"
	VersionsDir  = "versions"
)

// DailyFile is the name a day's report of office kodTO is kept under.
func DailyFile(day, kodTO string) string { return "daily-" + day + "-" + kodTO + ".xlsx" }

// FleetFile is the name a day's fleet summary is kept under: the region's
// table 3 rows (GET /api/v1/availability), each ИДК's working, waiting,
// maintenance, inoperable and relocation time.
func FleetFile(day string) string { return "fleet-" + day + ".json" }

// draft is the X-Report-Version of a report built on request, not
// published.
const draft = "draft"

// maxBody caps one answer, as the collector's own CLI does: a month of a
// large region is a big workbook, but not bigger.
const maxBody = 1 << 30

// Entry describes one kept file.
type Entry struct {
	Name   string `json:"name"` // relative to the month's folder
	SHA256 string `json:"sha256"`
	Size   int64  `json:"size"`
	// RegionVersion is the region's X-Report-Version of a workbook: its
	// published version number, or "draft"; empty for the summary, which
	// the region builds on each request.
	RegionVersion string    `json:"region_version,omitempty"`
	Source        string    `json:"source"` // the API path it was pulled from
	Pulled        time.Time `json:"pulled"`
	Replaced      time.Time `json:"replaced,omitzero"` // versions only: when a pull replaced it
}

// Manifest is a region's month folder's record of what it holds.
type Manifest struct {
	Region   string  `json:"region"`
	Month    string  `json:"month"`
	Files    []Entry `json:"files"`    // the current files, by name
	Versions []Entry `json:"versions"` // replaced files kept in versions/, oldest first
}

// ReadManifest reads the manifest of region's month in dir; a folder not
// pulled yet has an empty one.
func ReadManifest(dir, region, month string) (Manifest, error) {
	path := filepath.Join(dir, region, month, ManifestFile)
	m := Manifest{Region: region, Month: month}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return m, nil
	}
	if err != nil {
		return m, fmt.Errorf("region %s: %w", region, err)
	}
	if err := json.Unmarshal(data, &m); err != nil {
		return m, fmt.Errorf("region %s: %s: %w", region, path, err)
	}
	return m, nil
}

func (m *Manifest) file(name string) (Entry, bool) {
	i := slices.IndexFunc(m.Files, func(e Entry) bool { return e.Name == name })
	if i < 0 {
		return Entry{}, false
	}
	return m.Files[i], true
}

func (m *Manifest) set(e Entry) {
	if i := slices.IndexFunc(m.Files, func(f Entry) bool { return f.Name == e.Name }); i >= 0 {
		m.Files[i] = e
		return
	}
	m.Files = append(m.Files, e)
	slices.SortFunc(m.Files, func(a, b Entry) int { return strings.Compare(a.Name, b.Name) })
}

// Pulled is one file a pull stored.
type Pulled struct {
	Entry
	Changed bool   // its content differs from what the folder held
	Kept    string // the name in versions/ the content it replaced was kept under; "" if none
}

// RegionResult is what a pull did for one region.
type RegionResult struct {
	Region string
	Files  []Pulled
	Err    error // the region failed; Files are what was stored before
}

// Result is a pull's outcome, region by region in the configuration's
// order.
type Result []RegionResult

// Failed names the regions that failed.
func (r Result) Failed() []string {
	var out []string
	for _, rr := range r {
		if rr.Err != nil {
			out = append(out, rr.Region)
		}
	}
	return out
}

// Pull fetches target's reports from every region of cfg, several regions
// at once, and keeps them under cfg.Dir. A region that fails is reported
// in its RegionResult and does not stop the others. log may be nil.
//
// For a month it pulls the monthly summary and the monthly workbook; for a
// day, the daily workbook of each office of the region, which the month's
// summary lists. One pull at a time per Dir: two at once could both move
// the same file to versions/.
func Pull(ctx context.Context, cfg Config, target Target, log *slog.Logger) Result {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	res := make(Result, len(cfg.Regions))
	sem := make(chan struct{}, max(cfg.Parallel, 1))
	var wg sync.WaitGroup
	for i, r := range cfg.Regions {
		res[i].Region = r.Name
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			rl := log.With("region", r.Name)
			files, err := pullRegion(ctx, cfg, r, target, rl)
			res[i].Files, res[i].Err = files, err
			if err != nil {
				rl.Error("region not pulled", "target", target.String(), "err", err)
			} else {
				rl.Info("region pulled", "target", target.String(), "files", len(files))
			}
		}()
	}
	wg.Wait()
	return res
}

func pullRegion(ctx context.Context, cfg Config, r Region, target Target, log *slog.Logger) ([]Pulled, error) {
	c, err := newClient(r, cfg.Timeout)
	if err != nil {
		return nil, err
	}
	f := &folder{dir: filepath.Join(cfg.Dir, r.Name, target.Month), region: r.Name, log: log}
	if err := os.MkdirAll(filepath.Join(f.dir, VersionsDir), 0o755); err != nil {
		return nil, fmt.Errorf("region %s: %w", r.Name, err)
	}
	if f.m, err = ReadManifest(cfg.Dir, r.Name, target.Month); err != nil {
		return nil, err
	}
	// A pull stopped half-way (killed, a power cut) leaves its download
	// behind; nothing else writes here while this one runs.
	if stale, _ := filepath.Glob(filepath.Join(f.dir, tempPattern)); len(stale) > 0 {
		for _, p := range stale {
			os.Remove(p)
		}
		log.Info("unfinished downloads removed", "files", len(stale))
	}
	var out []Pulled
	store := func(path, name string, check func(*download) error) error {
		d, err := c.get(ctx, path, f.dir)
		if err != nil {
			return err
		}
		defer d.discard()
		if check != nil {
			if err := check(d); err != nil {
				return fmt.Errorf("region %s: GET %s: %w", r.Name, path, err)
			}
		}
		p, err := f.keep(d, name)
		if err != nil {
			return err
		}
		out = append(out, p)
		return nil
	}
	q := url.Values{"month": {target.Month}}
	summaryPath := "/api/v1/reports/monthly/summary?" + q.Encode()
	if target.Day == "" {
		if err := store(summaryPath, SummaryFile, func(d *download) error {
			_, err := readSummary(d.path, target.Month)
			return err
		}); err != nil {
			return out, err
		}
		return out, store("/api/v1/reports/monthly?"+q.Encode(), MonthlyFile, nil)
	}
	// The region's offices are the rows of its month's summary. The
	// summary is not kept here: a month's pull keeps it, with the
	// workbook it belongs to.
	d, err := c.get(ctx, summaryPath, f.dir)
	if err != nil {
		return nil, err
	}
	s, err := readSummary(d.path, target.Month)
	d.discard()
	if err != nil {
		return nil, fmt.Errorf("region %s: GET %s: %w", r.Name, summaryPath, err)
	}
	for i, o := range s.Offices {
		kod := o["KOD_TO"]
		// The code names a file: only 8 digits may.
		if err := protocol.CheckKodTO(kod); err != nil {
			return out, fmt.Errorf("region %s: summary office row %d: %w", r.Name, i+1, err)
		}
		dq := url.Values{"date": {target.Day}, "kod_to": {kod}}
		if err := store("/api/v1/reports/daily?"+dq.Encode(), DailyFile(target.Day, kod), nil); err != nil {
			return out, err
		}
	}
	fq := url.Values{"date": {target.Day}}
	return out, store("/api/v1/availability?"+fq.Encode(), FleetFile(target.Day), func(d *download) error {
		// A list of table 3 rows; what each holds is the region's to say.
		b, err := os.ReadFile(d.path)
		if err != nil {
			return err
		}
		var rows []map[string]any
		if err := json.Unmarshal(b, &rows); err != nil {
			return fmt.Errorf("fleet: want a JSON list of table 3 rows: %w", err)
		}
		return nil
	})
}

// readSummary reads a region's monthly summary and checks it is month's.
func readSummary(path, month string) (report.MonthlySummary, error) {
	var s report.MonthlySummary
	data, err := os.ReadFile(path)
	if err != nil {
		return s, err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&s); err != nil {
		return s, fmt.Errorf("summary: %w", err)
	}
	if s.Month != month {
		return s, fmt.Errorf("summary: month %q, asked for %s", s.Month, month)
	}
	return s, nil
}

// client talks to one region's collector.
type client struct {
	region, base, token string
	http                *http.Client
}

func newClient(r Region, timeout time.Duration) (*client, error) {
	t, err := secretfile.Read(r.TokenFile)
	if err != nil {
		return nil, fmt.Errorf("region %s: token_file: %w", r.Name, err)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	if r.CA != "" {
		pool, err := transport.CertPool(r.CA)
		if err != nil {
			return nil, fmt.Errorf("region %s: ca: %w", r.Name, err)
		}
		tr.TLSClientConfig.RootCAs = pool
	}
	return &client{region: r.Name, base: strings.TrimRight(r.URL, "/"), token: t,
		http: &http.Client{Timeout: timeout, Transport: tr}}, nil
}

// download is an answer's body, written to a temporary file in the folder
// it is to be kept in, so that keeping it is a rename.
type download struct {
	path, source string
	sha256       string
	size         int64
	version      string // X-Report-Version
}

func (d *download) discard() {
	if d.path != "" {
		os.Remove(d.path)
	}
}

// get fetches path into a temporary file in dir, hashing it on the way,
// and checks the hash against X-Report-SHA256 when the region sends one.
func (c *client) get(ctx context.Context, path, dir string) (d *download, err error) {
	fail := func(err error) (*download, error) {
		return nil, fmt.Errorf("region %s: GET %s: %w", c.region, path, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+path, nil)
	if err != nil {
		return fail(err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := c.http.Do(req)
	if err != nil {
		return fail(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fail(fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(b))))
	}
	tmp, err := os.CreateTemp(dir, tempPattern)
	if err != nil {
		return fail(err)
	}
	d = &download{path: tmp.Name(), source: path, version: resp.Header.Get("X-Report-Version")}
	defer func() {
		if err != nil {
			tmp.Close()
			d.discard()
		}
	}()
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tmp, h), io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return fail(err)
	}
	if n > maxBody {
		return fail(fmt.Errorf("answer above %d bytes", maxBody))
	}
	// Synced before it is renamed into place: else a power cut could
	// leave the name with no content.
	if err := tmp.Sync(); err != nil {
		return fail(err)
	}
	if err := tmp.Close(); err != nil {
		return fail(err)
	}
	d.size, d.sha256 = n, hex.EncodeToString(h.Sum(nil))
	if want := resp.Header.Get("X-Report-SHA256"); want != "" && !strings.EqualFold(want, d.sha256) {
		return fail(fmt.Errorf("received SHA-256 %s, the region sent X-Report-SHA256 %s", d.sha256, want))
	}
	return d, nil
}

// tempPattern names a download not yet kept: hidden, so that listings
// and globs of the folder pass it over.
const tempPattern = ".pull-*"

// folder is a region's month folder being pulled into.
type folder struct {
	dir, region string
	m           Manifest
	log         *slog.Logger
}

// keep puts d in place as name, moving what name held to versions/ unless
// it was the same content or a draft, and records both in the manifest.
func (f *folder) keep(d *download, name string) (Pulled, error) {
	now := time.Now().UTC()
	e := Entry{Name: name, SHA256: d.sha256, Size: d.size, RegionVersion: d.version, Source: d.source, Pulled: now}
	p := Pulled{Entry: e, Changed: true}
	path := filepath.Join(f.dir, name)
	// What is on disk decides, not the manifest: a pull stopped between
	// the rename and the manifest's write leaves them apart.
	oldSum, err := fileSHA256(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return p, fmt.Errorf("region %s: %w", f.region, err)
	case oldSum == d.sha256:
		p.Changed = false
	default:
		old, known := f.m.file(name)
		if known && old.SHA256 == oldSum && old.RegionVersion == draft {
			f.log.Info("draft replaced", "file", name, "sha256", oldSum, "region_version", d.version)
			break
		}
		if !known || old.SHA256 != oldSum {
			// Content the manifest does not describe: keep it all the same.
			old = Entry{Name: name, SHA256: oldSum}
		}
		kept, err := f.moveToVersions(name)
		if err != nil {
			return p, err
		}
		old.Name, old.Replaced = kept, now
		if fi, err := os.Stat(filepath.Join(f.dir, kept)); err == nil {
			old.Size = fi.Size()
		}
		f.m.Versions = append(f.m.Versions, old)
		p.Kept = kept
		f.log.Info("earlier version kept", "file", name, "kept_as", kept, "region_version", old.RegionVersion)
	}
	if err := os.Rename(d.path, path); err != nil {
		return p, fmt.Errorf("region %s: %w", f.region, err)
	}
	d.path = ""
	if err := atomicfile.SyncDir(f.dir); err != nil {
		return p, fmt.Errorf("region %s: %w", f.region, err)
	}
	f.m.set(e)
	if err := f.writeManifest(); err != nil {
		return p, err
	}
	return p, nil
}

// moveToVersions moves name to versions/<stem>.v<N><ext>, N one above
// the highest there.
func (f *folder) moveToVersions(name string) (string, error) {
	ext := filepath.Ext(name)
	stem := strings.TrimSuffix(name, ext)
	vdir := filepath.Join(f.dir, VersionsDir)
	matches, err := filepath.Glob(filepath.Join(vdir, stem+".v*"+ext))
	if err != nil {
		return "", fmt.Errorf("region %s: %w", f.region, err)
	}
	n := 0
	for _, m := range matches {
		v := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(m), stem+".v"), ext)
		if k, err := strconv.Atoi(v); err == nil && k > n {
			n = k
		}
	}
	kept := filepath.Join(VersionsDir, fmt.Sprintf("%s.v%d%s", stem, n+1, ext))
	if err := os.Rename(filepath.Join(f.dir, name), filepath.Join(f.dir, kept)); err != nil {
		return "", fmt.Errorf("region %s: keep %s: %w", f.region, name, err)
	}
	if err := atomicfile.SyncDir(vdir); err != nil {
		return "", fmt.Errorf("region %s: %w", f.region, err)
	}
	return kept, nil
}

func (f *folder) writeManifest() error {
	data, err := json.MarshalIndent(f.m, "", "  ")
	if err != nil {
		return fmt.Errorf("region %s: manifest: %w", f.region, err)
	}
	if err := atomicfile.WriteFile(filepath.Join(f.dir, ManifestFile), append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("region %s: %w", f.region, err)
	}
	return nil
}

func fileSHA256(path string) (string, error) {
	fh, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer fh.Close()
	h := sha256.New()
	if _, err := io.Copy(h, fh); err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
