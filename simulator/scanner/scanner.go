// Package scanner is a virtual CargoRIW: it writes scans into an output
// folder as the scanner's image-analysis program does (see
// docs/cargoriw-layout.md), so that the agent can be run and tested
// without a scanner. Output is deterministic for a seed and a sequence of
// clock readings.
package scanner

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"idk/agent/layout"
	"idk/agent/layout/cargoriw"
	"idk/internal/clock"
)

// Defaults for zero Config fields.
const (
	DefaultRawMin        = 20 << 20
	DefaultRawMax        = 60 << 20
	DefaultFormRevisions = 3
)

// Config says what scans look like. Zero RawMin/RawMax, RawPerScan and
// FormRevisions take the defaults; a zero DocsPerScan or SuspectRatio means
// none.
type Config struct {
	Out            string  // output folder; created if missing
	NumIDK         string  // ИДК number, digits only, e.g. "850591"
	RawMin, RawMax int64   // RAW file size range in bytes
	RawPerScan     int     // RAW images per scan: 1 or 2
	DocsPerScan    int     // scanned documents per scan, 0-999
	Seed           uint64  // content seed
	FormRevisions  int     // rewrites of form.xml after it is created; the last has the decision
	SuspectRatio   float64 // share of scans decided «Объект под подозрением», 0-1
}

// Scanner hands out scan numbers and writes scans. It is safe for
// concurrent use; each ScanWriter belongs to one goroutine.
type Scanner struct {
	cfg Config
	clk clock.Clock // dates the scans; simulations pass one where days run in seconds
	idk string      // the six NUM_IDK digits in every scan number

	mu     sync.Mutex
	rng    *rand.Rand     // draws one seed per scan, in BeginScan order
	perDay map[string]int // scans numbered so far, by YYYYMMDD
}

// New checks cfg and returns a scanner. A nil clk means clock.Real.
func New(cfg Config, clk clock.Clock) (*Scanner, error) {
	if cfg.Out == "" {
		return nil, errors.New("scanner: no output folder")
	}
	if cfg.NumIDK == "" || !digits(cfg.NumIDK) {
		return nil, fmt.Errorf("scanner: NumIDK %q is not a number", cfg.NumIDK)
	}
	if cfg.RawMin == 0 && cfg.RawMax == 0 {
		cfg.RawMin, cfg.RawMax = DefaultRawMin, DefaultRawMax
	}
	if cfg.RawMin < minRawSize || cfg.RawMax < cfg.RawMin {
		return nil, fmt.Errorf("scanner: RAW size range %d-%d: want %d <= RawMin <= RawMax", cfg.RawMin, cfg.RawMax, minRawSize)
	}
	if cfg.RawPerScan == 0 {
		cfg.RawPerScan = 1
	}
	if cfg.RawPerScan != 1 && cfg.RawPerScan != 2 {
		return nil, fmt.Errorf("scanner: RawPerScan %d: want 1 or 2", cfg.RawPerScan)
	}
	if cfg.DocsPerScan < 0 || cfg.DocsPerScan > 999 {
		return nil, fmt.Errorf("scanner: DocsPerScan %d: want 0-999", cfg.DocsPerScan)
	}
	if cfg.FormRevisions == 0 {
		cfg.FormRevisions = DefaultFormRevisions
	}
	if cfg.FormRevisions < 1 {
		return nil, fmt.Errorf("scanner: FormRevisions %d: want at least 1", cfg.FormRevisions)
	}
	if !(cfg.SuspectRatio >= 0 && cfg.SuspectRatio <= 1) { // also rejects NaN
		return nil, fmt.Errorf("scanner: SuspectRatio %v: want 0-1", cfg.SuspectRatio)
	}
	clk = clock.Or(clk)
	idk := cfg.NumIDK
	if len(idk) > 6 {
		idk = idk[len(idk)-6:]
	}
	idk = strings.Repeat("0", 6-len(idk)) + idk
	var seed [32]byte
	binary.LittleEndian.PutUint64(seed[:], cfg.Seed)
	copy(seed[8:], "simulator/scanner")
	return &Scanner{
		cfg:    cfg,
		clk:    clk,
		idk:    idk,
		rng:    rand.New(rand.NewChaCha8(seed)),
		perDay: make(map[string]int),
	}, nil
}

func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// NextNumSnim assigns the next scan number: the date of the clock's Now in
// the clock's location (YYYYMMDD), the last six digits of NUM_IDK and the
// day's scan counter from 0001, e.g. 201701040006080003 (18 characters).
// Past 9999 scans a day the counter widens rather than repeat.
func (s *Scanner) NextNumSnim() string {
	return s.nextNumSnim(s.clk.Now())
}

func (s *Scanner) nextNumSnim(now time.Time) string {
	day := now.Format("20060102")
	s.mu.Lock()
	s.perDay[day]++
	n := s.perDay[day]
	s.mu.Unlock()
	return fmt.Sprintf("%s%s%04d", day, s.idk, n)
}

// Scan is a finished scan as written to disk.
type Scan struct {
	NumSnim  string
	Dir      string            // the scan folder
	Files    map[string]string // base name -> hex SHA-256 of the final content
	Decision layout.Decision
}

// WriteScan writes a whole scan: the folder and RAW images at scan time,
// then form.xml as the program creates it, the scanned documents, and the
// form's FormRevisions rewrites in place, the last with the decision. On
// error the folder is left as far as it got, as a crashed program would.
func (s *Scanner) WriteScan(ctx context.Context) (Scan, error) {
	w, err := s.BeginScan()
	if err != nil {
		return Scan{}, err
	}
	for i := 1; i <= s.cfg.RawPerScan; i++ {
		if err := w.WriteRaw(ctx, i); err != nil {
			return Scan{}, err
		}
	}
	if err := w.WriteForm(0); err != nil {
		return Scan{}, err
	}
	if err := ctx.Err(); err != nil {
		return Scan{}, fmt.Errorf("scan %s: %w", w.num, err)
	}
	if err := w.WriteDocs(); err != nil {
		return Scan{}, err
	}
	for rev := 1; rev <= w.Revisions(); rev++ {
		if err := ctx.Err(); err != nil {
			return Scan{}, fmt.Errorf("scan %s: %w", w.num, err)
		}
		if err := w.WriteForm(rev); err != nil {
			return Scan{}, err
		}
	}
	return w.Finish()
}

// BeginScan numbers a new scan, creates its folder and decides everything
// the scan will contain. The folder must not exist yet.
func (s *Scanner) BeginScan() (*ScanWriter, error) {
	now := s.clk.Now()
	num := s.nextNumSnim(now)
	var seed [32]byte
	s.mu.Lock()
	for i := 0; i < len(seed); i += 8 {
		binary.LittleEndian.PutUint64(seed[i:], s.rng.Uint64())
	}
	s.mu.Unlock()

	if err := os.MkdirAll(s.cfg.Out, 0o755); err != nil {
		return nil, fmt.Errorf("scan %s: %w", num, err)
	}
	// Mkdir, not MkdirAll: an existing folder means the number was taken
	// (by an earlier run of the simulator into the same folder), and a
	// scan the agent may already have sent must never be overwritten. Like
	// the real program after a restart, take the next free number.
	dir := filepath.Join(s.cfg.Out, num)
	for tries := 0; ; tries++ {
		err := os.Mkdir(dir, 0o755)
		if err == nil {
			break
		}
		if !errors.Is(err, fs.ErrExist) || tries == 100000 {
			return nil, fmt.Errorf("scan %s: %w", num, err)
		}
		num = s.nextNumSnim(now)
		dir = filepath.Join(s.cfg.Out, num)
	}
	w := &ScanWriter{
		s:       s,
		num:     num,
		dir:     dir,
		files:   make(map[string]string),
		formRev: -1,
	}
	w.plan(rand.New(rand.NewChaCha8(seed)), now)
	return w, nil
}

// ScanWriter writes one scan step by step, so that tests can interleave
// the steps with the agent's work. It is not safe for concurrent use.
type ScanWriter struct {
	s     *Scanner
	num   string
	dir   string
	files map[string]string

	// Decided in BeginScan.
	raws  []rawPlan
	docs  []docPlan
	final layout.Form // the last revision, except Saved

	formRev int // last revision written in full, -1 for none
}

// NumSnim returns the scan number.
func (w *ScanWriter) NumSnim() string { return w.num }

// Dir returns the scan folder.
func (w *ScanWriter) Dir() string { return w.dir }

// Decision returns the decision the last form revision will carry.
func (w *ScanWriter) Decision() layout.Decision { return w.final.Decision }

// Revisions returns the number of the last form revision, the one with the
// decision; WriteForm takes 0 (creation) to Revisions.
func (w *ScanWriter) Revisions() int { return w.s.cfg.FormRevisions }

// WriteRaw writes the i-th RAW image (1 or 2), streaming it to disk.
func (w *ScanWriter) WriteRaw(ctx context.Context, i int) error {
	if i < 1 || i > len(w.raws) {
		return fmt.Errorf("scan %s: RAW %d: want 1-%d", w.num, i, len(w.raws))
	}
	name := cargoriw.RawName(w.num, i)
	sum, err := writeRaw(ctx, filepath.Join(w.dir, name), w.raws[i-1])
	if err != nil {
		return fmt.Errorf("scan %s: %w", w.num, err)
	}
	w.files[name] = sum
	return nil
}

// WriteDocs writes all the scanned documents.
func (w *ScanWriter) WriteDocs() error {
	for _, d := range w.docs {
		sum, err := writeDoc(filepath.Join(w.dir, d.name), d)
		if err != nil {
			return fmt.Errorf("scan %s: %w", w.num, err)
		}
		w.files[d.name] = sum
	}
	return nil
}

// WriteForm writes revision rev of form.xml in place: truncate, then write,
// as a Windows program does, so a reader can see it empty or half-written.
// Revision 0 is what the program fills at scan time; the operator's
// revisions 1 to Revisions add fields, and the last adds the decision and
// the save time.
func (w *ScanWriter) WriteForm(rev int) error {
	return w.writeForm(rev, -1)
}

// WriteFormPartial truncates form.xml and writes only the first n bytes of
// revision rev, leaving the file as a reader sees it in the middle of a
// write. A later WriteForm completes it.
func (w *ScanWriter) WriteFormPartial(rev, n int) error {
	if n < 0 {
		return fmt.Errorf("scan %s: form revision %d: negative length %d", w.num, rev, n)
	}
	return w.writeForm(rev, n)
}

func (w *ScanWriter) writeForm(rev, n int) error {
	if rev < 0 || rev > w.Revisions() {
		return fmt.Errorf("scan %s: form revision %d: want 0-%d", w.num, rev, w.Revisions())
	}
	data, err := cargoriw.EncodeForm(w.form(rev))
	if err != nil {
		return fmt.Errorf("scan %s: form revision %d: %w", w.num, rev, err)
	}
	partial := n >= 0 && n < len(data)
	if partial {
		data = data[:n]
	}
	path := filepath.Join(w.dir, cargoriw.FormName)
	sum, err := writeInPlace(path, data)
	if err != nil {
		return fmt.Errorf("scan %s: form revision %d: %w", w.num, rev, err)
	}
	w.files[cargoriw.FormName] = sum
	if partial {
		w.formRev = -1
	} else {
		w.formRev = rev
	}
	return nil
}

// Finish reports the scan. The last form revision must have been written.
func (w *ScanWriter) Finish() (Scan, error) {
	if w.formRev != w.Revisions() {
		return Scan{}, fmt.Errorf("scan %s: form revision %d with the decision not written", w.num, w.Revisions())
	}
	files := make(map[string]string, len(w.files))
	for k, v := range w.files {
		files[k] = v
	}
	return Scan{NumSnim: w.num, Dir: w.dir, Files: files, Decision: w.final.Decision}, nil
}

// form returns revision rev of the form. The operator's fields appear in a
// fixed order over revisions 1 to Revisions, all of them by the last.
func (w *ScanWriter) form(rev int) *layout.Form {
	f := &layout.Form{
		NumSnim:        w.final.NumSnim,
		Created:        w.final.Created,
		TruckID:        w.final.TruckID,
		InspectionDate: w.final.InspectionDate,
	}
	if rev == 0 {
		return f
	}
	last := w.Revisions()
	steps := int(math.Ceil(float64(rev) * float64(len(fillSteps)) / float64(last)))
	for _, step := range fillSteps[:steps] {
		step(f, &w.final)
	}
	if rev == last {
		f.Decision = w.final.Decision
		f.SuspicionReason = w.final.SuspicionReason
		f.Saved = w.s.clk.Now().Truncate(time.Second)
	}
	return f
}

// fillSteps are the operator's edits in the order they are made.
var fillSteps = []func(dst, src *layout.Form){
	func(d, s *layout.Form) {
		d.Operator, d.TrailerID, d.Country, d.VidTS = s.Operator, s.TrailerID, s.Country, s.VidTS
	},
	func(d, s *layout.Form) {
		d.CustomsInfo1, d.CustomsInfo2, d.CustomsInfo3 = s.CustomsInfo1, s.CustomsInfo2, s.CustomsInfo3
	},
	func(d, s *layout.Form) { d.Containers[0] = s.Containers[0] },
	func(d, s *layout.Form) { d.Containers[1] = s.Containers[1] },
	func(d, s *layout.Form) { d.CommentUpper = s.CommentUpper },
	func(d, s *layout.Form) { d.CommentLower, d.Marks = s.CommentLower, s.Marks },
}
