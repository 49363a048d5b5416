package hostile

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"idk/simulator/harness"
)

// Finding 7: a few hundred idle keep-alive connections to the HTTP port,
// opened by anyone without a token, neither starve the agents nor the
// health check, and the collector lets them go.
func TestHTTPIdleConnectionsDoNotStarveCollector(t *testing.T) {
	env, coll := startEnv(t, harness.Options{})
	const idle = 300
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	var closed atomic.Int32
	for i := range idle {
		c, err := net.DialTimeout("tcp", env.HTTPAddr, 5*time.Second)
		if err != nil {
			t.Logf("idle connection %d refused: %v", i, err)
			closed.Add(1)
			continue
		}
		conns = append(conns, c)
		// One request without a token, answered 401, then the connection
		// stays open and says nothing.
		fmt.Fprintf(c, "GET /api/v1/files HTTP/1.1\r\nHost: %s\r\nConnection: keep-alive\r\n\r\n", env.HTTPAddr)
		go func() {
			br := bufio.NewReader(c)
			if resp, err := http.ReadResponse(br, nil); err == nil {
				resp.Body.Close()
			}
			// The next read ends when the collector closes the connection.
			c.SetReadDeadline(time.Now().Add(3 * time.Minute))
			br.ReadByte()
			closed.Add(1)
		}()
	}
	fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", coll.Pid()))
	t.Logf("%d idle connections open; the collector holds %d descriptors", len(conns), len(fds))

	// Agents and the health check are still served.
	hc := &http.Client{Timeout: 10 * time.Second}
	if resp, err := hc.Get("http://" + env.HTTPAddr + "/healthz"); err != nil {
		t.Errorf("/healthz during the attack: %v", err)
	} else {
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("/healthz during the attack: %s", resp.Status)
		}
	}
	c := connect(t, env, idkA)
	now := time.Now()
	c.mustUpload(t, scanNumber(now, idkA, 1), "doc_001.jpg", content("during", 100<<10), now)

	// The collector closes idle connections (IdleTimeout), well within two
	// minutes.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	start := time.Now()
	for closed.Load() < idle && ctx.Err() == nil {
		time.Sleep(500 * time.Millisecond)
	}
	if n := closed.Load(); n < idle {
		t.Errorf("after %v the collector still holds %d of %d idle connections", time.Since(start).Round(time.Second), idle-int(n), idle)
	} else {
		t.Logf("all %d idle connections closed by the collector within %v", idle, time.Since(start).Round(time.Second))
	}
}
