package harness

import (
	"fmt"
	"math/rand/v2"
	"os"
	"strings"

	"idk/simulator/relay"
)

// Relay puts an emulated link (simulator/relay), running in this process,
// between agent i and the collector: it starts a relay to the collector's
// QUIC address and points agent i's config at it. Call it before
// StartAgent, which reads the config; the caller closes the relay. The
// relay's random source is seeded with i, so that a run can be repeated.
func (e *Env) Relay(i int, cfg relay.Config) (*relay.Relay, error) {
	if i < 0 || i >= len(e.Agents) {
		return nil, fmt.Errorf("harness: no agent %d", i)
	}
	r, err := relay.Listen("127.0.0.1:0", e.QUICAddr, cfg, rand.NewPCG(uint64(i)+1, 0x1d4))
	if err != nil {
		return nil, fmt.Errorf("harness: relay for agent %d: %w", i, err)
	}
	if err := setCollectorAddr(e.Agents[i].ConfigPath, r.Addr().String()); err != nil {
		r.Close()
		return nil, err
	}
	return r, nil
}

// setCollectorAddr rewrites the addr line of the [collector] section of
// an agent's config, as NewEnv wrote it, leaving every other line alone.
func setCollectorAddr(path, addr string) error {
	return setCollectorKey(path, "addr", fmt.Sprintf("%q", addr))
}

// setCollectorKey sets key to value (TOML, e.g. a quoted string) in the
// [collector] section of an agent's config: the line that has it, or a
// new line at the section's top. Every other line stays as it was.
func setCollectorKey(path, key, value string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("harness: %w", err)
	}
	lines := strings.Split(string(b), "\n")
	section, header, found := "", -1, false
	for i, line := range lines {
		t := strings.TrimSpace(line)
		if strings.HasPrefix(t, "[") {
			section = t
			if t == "[collector]" {
				header = i
			}
			continue
		}
		k, _, ok := strings.Cut(t, "=")
		if section == "[collector]" && ok && strings.TrimSpace(k) == key {
			lines[i] = key + " = " + value
			found = true
			break
		}
	}
	switch {
	case found:
	case header >= 0:
		lines = append(lines[:header+1], append([]string{key + " = " + value}, lines[header+1:]...)...)
	default:
		return fmt.Errorf("harness: %s has no [collector] section", path)
	}
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")), 0o644); err != nil {
		return fmt.Errorf("harness: %w", err)
	}
	return nil
}
