package harness

import (
	"fmt"
	"math/rand/v2"

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
	return SetAgentOption(path, "collector", key, value)
}
