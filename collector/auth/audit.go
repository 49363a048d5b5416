package auth

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"
	"unicode/utf8"

	"idk/internal/clock"
)

// Entry is one line of the audit log.
type Entry struct {
	Time   time.Time `json:"time"`
	By     string    `json:"by"`     // Person.By(), or "anonymous" for a failed sign-in
	Action string    `json:"action"` // e.g. "sign_in", "sign_in_failed", "POST /api/v1/breaches/reason"
	Target string    `json:"target,omitempty"`
	Detail string    `json:"detail,omitempty"`
	Remote string    `json:"remote,omitempty"`
	Status int       `json:"status,omitempty"`
}

// Audit is the append-only audit log (JSON lines, synced).
//
// The collector and 'idk-collector user' may append to the same file at
// once: each entry is one write of one whole line to a file opened for
// appending, which the kernel does not interleave.
type Audit struct {
	clock clock.Clock
	path  string

	mu sync.Mutex
	f  *os.File
}

// maxField bounds each text field of an entry: a path or a login tried
// comes from whoever sent the request, and must not fill the disk.
const maxField = 512

// OpenAudit opens (creates) the audit log at path.
func OpenAudit(path string, clk clock.Clock) (*Audit, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	// Also an existing log: it names who did what, and only the
	// collector's user reads it.
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return nil, fmt.Errorf("audit: %w", err)
	}
	return &Audit{clock: clock.Or(clk), path: path, f: f}, nil
}

// Path is the log file.
func (a *Audit) Path() string { return a.path }

// Write appends e (its Time set from the clock when zero).
func (a *Audit) Write(e Entry) error {
	if e.Time.IsZero() {
		e.Time = a.clock.Now()
	}
	e.Time = e.Time.UTC()
	e.By, e.Action, e.Target = clip(e.By), clip(e.Action), clip(e.Target)
	e.Detail, e.Remote = clip(e.Detail), clip(e.Remote)
	line, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	line = append(line, '\n')
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.f == nil {
		return errors.New("audit: log closed")
	}
	if _, err := a.f.Write(line); err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	if err := a.f.Sync(); err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	return nil
}

// clip cuts s to maxField bytes, on a character boundary.
func clip(s string) string {
	if len(s) <= maxField {
		return s
	}
	s = s[:maxField]
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s + "…"
}

// Recent returns the last n entries, newest first. It reads the file from
// its end, so a log of years answers as fast as a new one. A line that is
// not an entry (one cut short by a power cut) is passed over.
func (a *Audit) Recent(n int) ([]Entry, error) {
	if n <= 0 {
		return nil, nil
	}
	f, err := os.Open(a.path)
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	defer f.Close()
	end, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	// Read blocks backwards until the tail holds n whole lines (n+1
	// newlines, or the start of the file).
	const block = 64 << 10
	var tail []byte
	off := end
	for off > 0 && bytes.Count(tail, []byte{'\n'}) <= n {
		size := min(int64(block), off)
		off -= size
		buf := make([]byte, size)
		if _, err := f.ReadAt(buf, off); err != nil {
			return nil, fmt.Errorf("audit: %w", err)
		}
		tail = append(buf, tail...)
	}
	lines := bytes.Split(bytes.TrimRight(tail, "\n"), []byte{'\n'})
	if off > 0 {
		lines = lines[1:] // the first may be the end of an earlier line
	}
	out := make([]Entry, 0, n)
	for i := len(lines) - 1; i >= 0 && len(out) < n; i-- {
		var e Entry
		if json.Unmarshal(lines[i], &e) != nil {
			continue
		}
		out = append(out, e)
	}
	return out, nil
}

// Close closes the log.
func (a *Audit) Close() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.f == nil {
		return nil
	}
	err := a.f.Close()
	a.f = nil
	return err
}
