package harness

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The real programs where UDP is blocked: the agent dials the collector
// at a port where every UDP datagram is swallowed (a firewall that drops
// UDP) and the collector's TCP listener answers (listen.tcp). The agent,
// on its default transport ('auto'), falls back to TLS over TCP with its
// certificate, every scan arrives stored once and intact, and the metric
// and both logs say tcp.
func TestEndToEndTCPFallbackWhenUDPIsBlocked(t *testing.T) {
	env, err := NewEnv(t.TempDir(), bin, Options{Settle: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	DumpLogsOnFailure(t, env)
	hole, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { hole.Close() })
	go func() {
		buf := make([]byte, 2048)
		for {
			if _, _, err := hole.ReadFrom(buf); err != nil {
				return
			}
		}
	}()
	addr := hole.LocalAddr().String()
	// The collector's QUIC stays where NewEnv put it, out of the agent's
	// reach; its TCP listener is at the agent's address.
	conf := filepath.Join(env.Dir, "collector.toml")
	b, err := os.ReadFile(conf)
	if err != nil {
		t.Fatal(err)
	}
	withTCP := strings.Replace(string(b), "[listen]\n", fmt.Sprintf("[listen]\ntcp = %q\n", addr), 1)
	if withTCP == string(b) {
		t.Fatal("collector.toml has no [listen] section")
	}
	if err := os.WriteFile(conf, []byte(withTCP), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := setCollectorAddr(env.Agents[0].ConfigPath, addr); err != nil {
		t.Fatal(err)
	}
	coll, err := env.StartCollector()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { coll.Stop() })
	agent, err := env.StartAgent(0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { agent.Stop() })

	wait := scan(t, env, 6, 200_000, 3_000_000)
	rep := verify(t, env, wait(), 90*time.Second)
	t.Logf("over TCP: %s", rep)

	if v := agentMetric(t, env, `idk_agent_transport{transport="tcp"}`); v != 1 {
		t.Errorf(`idk_agent_transport{transport="tcp"} = %v, want 1`, v)
	}
	if v := agentMetric(t, env, `idk_agent_transport{transport="quic"}`); v != 0 {
		t.Errorf(`idk_agent_transport{transport="quic"} = %v, want 0`, v)
	}
	agentLog, _ := os.ReadFile(filepath.Join(env.Dir, "agent-"+env.Agents[0].NumIDK+".log"))
	if !strings.Contains(string(agentLog), "shipping over TCP") {
		t.Error("the agent's log does not say it ships over TCP")
	}
	collLog, _ := os.ReadFile(filepath.Join(env.Dir, "collector.log"))
	if !strings.Contains(string(collLog), "transport=tcp") {
		t.Error("the collector's log does not say the agent came over TCP")
	}
}
