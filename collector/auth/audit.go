package auth

// CONTRACT STUB: the helper implementing package auth replaces the bodies.

import (
	"time"

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
type Audit struct{}

// OpenAudit opens (creates) the audit log at path.
func OpenAudit(path string, clk clock.Clock) (*Audit, error) { panic("unimplemented") }

// Write appends e (its Time set from the clock when zero).
func (a *Audit) Write(e Entry) error { panic("unimplemented") }

// Recent returns the last n entries, newest first.
func (a *Audit) Recent(n int) ([]Entry, error) { panic("unimplemented") }

// Close closes the log.
func (a *Audit) Close() error { panic("unimplemented") }
