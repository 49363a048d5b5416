// Package fleet keeps what the collector knows of each agent's link: when
// it was last heard from, its clock offset, the backlog its spool still
// holds, its certificate's expiry and the transport it uses. The console's
// fleet board and the idk_collector_agent_* metrics read it.
package fleet

// CONTRACT STUB: the helper implementing package fleet replaces the bodies.

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"idk/internal/clock"
)

// Status is one agent's link as last seen.
type Status struct {
	NumIDK       string
	KodTO        string // from the registry at the hello
	AgentVersion string
	Connected    bool
	Remote       string    // the agent's address
	Transport    string    // "quic" (or "tcp" once there is a fallback)
	LastSeen     time.Time // last message from the agent
	ClockOffset  time.Duration
	// The agent's spool as it last reported it.
	BacklogFiles int64
	BacklogBytes int64
	OldestUnsent time.Time // zero: nothing waiting
	CertNotAfter time.Time // the agent's certificate's expiry
}

// Fleet holds every agent's Status. Safe for concurrent use.
type Fleet struct{}

// New returns an empty fleet on clk.
func New(clk clock.Clock) *Fleet { panic("unimplemented") }

// All returns every agent's status, by NUM_IDK.
func (f *Fleet) All() []Status { panic("unimplemented") }

// Get returns one agent's status.
func (f *Fleet) Get(numIDK string) (Status, bool) { panic("unimplemented") }

// Collector exports the idk_collector_agent_* metrics.
func (f *Fleet) Collector() prometheus.Collector { panic("unimplemented") }
