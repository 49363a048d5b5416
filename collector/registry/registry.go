// Package registry is the collector's list of enrolled ИДК: for each
// NUM_IDK (the CommonName of its certificate), the customs body (KOD_TO)
// its evidence belongs to. It is bound at enrolment by an administrator,
// never taken from what an agent says: the collector refuses a hello that
// disagrees with it, and stores files under the registry's KOD_TO.
//
// The registry is a TOML file (agents.toml beside the CA certificate by
// default) that `idk-collector pki agent --kod-to` writes and an
// administrator may edit; the collector re-reads it when it changes.
package registry

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/BurntSushi/toml"

	"idk/internal/atomicfile"
	"idk/internal/clock"
	"idk/protocol"
	"idk/protocol/idkpb"
)

// Device is an ИДК's identity as its hello gives it: what the identity
// columns of the reports carry. NUM_IDK is the certificate's and KOD_TO
// the registry's: the collector refuses a hello that says otherwise.
type Device struct {
	NumIDK  string `json:"num_idk"`  // NUM_IDK
	TypeIDK uint32 `json:"type_idk"` // TYPE_IDK: 1 mobile, 2 stationary
	KodTO   string `json:"kod_to"`   // KOD_TO: 8-digit code of the customs body
	NaimTO  string `json:"naim_to"`  // NAIM_TO
	NaimZTK string `json:"naim_ztk"` // NAIM_ZTK
	DislIDK uint32 `json:"disl_idk"` // DISL_IDK: 1..5
}

// DeviceFromProto converts the hello's device identity.
func DeviceFromProto(d *idkpb.Device) Device {
	return Device{
		NumIDK:  d.GetNumIdk(),
		TypeIDK: d.GetTypeIdk(),
		KodTO:   d.GetKodTo(),
		NaimTO:  d.GetNaimTo(),
		NaimZTK: d.GetNaimZtk(),
		DislIDK: d.GetDislIdk(),
	}
}

// FileName is the registry's name beside the CA certificate.
const FileName = "agents.toml"

// Agent is one enrolled ИДК.
type Agent struct {
	NumIDK string `toml:"num_idk"`
	KodTO  string `toml:"kod_to"`
}

type file struct {
	Agent []Agent `toml:"agent"`
}

// Read reads and checks a registry file. A missing file is an empty
// registry.
func Read(path string) ([]Agent, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("registry: %w", err)
	}
	var f file
	md, err := toml.Decode(string(data), &f)
	if err != nil {
		return nil, fmt.Errorf("registry %s: %w", path, err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		return nil, fmt.Errorf("registry %s: unknown setting %s", path, und[0])
	}
	seen := map[string]bool{}
	for i, a := range f.Agent {
		if err := protocol.CheckNumIDK(a.NumIDK); err != nil {
			return nil, fmt.Errorf("registry %s: agent %d: %w", path, i+1, err)
		}
		if err := protocol.CheckKodTO(a.KodTO); err != nil {
			return nil, fmt.Errorf("registry %s: agent %s: %w", path, a.NumIDK, err)
		}
		if seen[a.NumIDK] {
			return nil, fmt.Errorf("registry %s: NUM_IDK %s is listed twice", path, a.NumIDK)
		}
		seen[a.NumIDK] = true
	}
	return f.Agent, nil
}

// Put adds or updates one ИДК in the registry file at path, keeping the
// others, and replaces the file atomically.
func Put(path string, a Agent) error {
	if err := protocol.CheckNumIDK(a.NumIDK); err != nil {
		return fmt.Errorf("registry: %w", err)
	}
	if err := protocol.CheckKodTO(a.KodTO); err != nil {
		return fmt.Errorf("registry: %w", err)
	}
	agents, err := Read(path)
	if err != nil {
		return err
	}
	i := slices.IndexFunc(agents, func(b Agent) bool { return b.NumIDK == a.NumIDK })
	if i >= 0 {
		agents[i] = a
	} else {
		agents = append(agents, a)
	}
	slices.SortFunc(agents, func(x, y Agent) int { return strings.Compare(x.NumIDK, y.NumIDK) })
	var buf bytes.Buffer
	buf.WriteString("# Enrolled ИДК: the customs body (KOD_TO) each one's evidence belongs to.\n")
	buf.WriteString("# Written by `idk-collector pki agent --kod-to`; edit by hand when a mobile\n")
	buf.WriteString("# ИДК moves to another post. The collector re-reads this file within seconds.\n")
	if err := toml.NewEncoder(&buf).Encode(file{Agent: agents}); err != nil {
		return fmt.Errorf("registry: encode: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("registry: %w", err)
	}
	if err := atomicfile.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("registry: %w", err)
	}
	return nil
}

// Registry answers lookups from a registry file, re-reading it when it
// changes (checked at most every two seconds). If a changed file cannot
// be read, the last good contents stay in force.
type Registry struct {
	path  string
	clock clock.Clock

	mu        sync.Mutex
	agents    map[string]Agent
	mod       time.Time
	size      int64
	checkedAt time.Time
}

// reloadEvery bounds how often the file is looked at.
const reloadEvery = 2 * time.Second

// Open loads the registry at path. A missing file is an empty registry
// (every agent is refused until one is enrolled). clk, clock.Real if nil,
// paces the checks for a changed file.
func Open(path string, clk clock.Clock) (*Registry, error) {
	r := &Registry{path: path, clock: clock.Or(clk), agents: map[string]Agent{}}
	if err := r.reload(); err != nil {
		return nil, err
	}
	r.checkedAt = r.clock.Now()
	return r, nil
}

// Path is the registry file.
func (r *Registry) Path() string { return r.path }

func (r *Registry) reload() error {
	fi, err := os.Stat(r.path)
	if errors.Is(err, fs.ErrNotExist) {
		r.agents, r.mod, r.size = map[string]Agent{}, time.Time{}, 0
		return nil
	}
	if err != nil {
		return fmt.Errorf("registry: %w", err)
	}
	if fi.ModTime().Equal(r.mod) && fi.Size() == r.size {
		return nil
	}
	list, err := Read(r.path)
	if err != nil {
		return err
	}
	m := make(map[string]Agent, len(list))
	for _, a := range list {
		m[a.NumIDK] = a
	}
	r.agents, r.mod, r.size = m, fi.ModTime(), fi.Size()
	return nil
}

// Lookup returns the enrolled ИДК numIDK. err reports a changed file that
// could not be read (the last good contents answered), for the caller to
// log.
func (r *Registry) Lookup(numIDK string) (a Agent, ok bool, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	err = r.refreshLocked()
	a, ok = r.agents[numIDK]
	return a, ok, err
}

// refreshLocked re-reads the file if it was last looked at reloadEvery
// ago or more.
func (r *Registry) refreshLocked() error {
	now := r.clock.Now()
	if now.Sub(r.checkedAt) < reloadEvery {
		return nil
	}
	r.checkedAt = now
	return r.reload()
}

// Offices returns the customs bodies (KOD_TO) the enrolled ИДК belong to,
// sorted, each once: the offices the collector makes reports for.
func (r *Registry) Offices() ([]string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	err := r.refreshLocked()
	var out []string
	for _, a := range r.agents {
		if !slices.Contains(out, a.KodTO) {
			out = append(out, a.KodTO)
		}
	}
	slices.Sort(out)
	return out, err
}
