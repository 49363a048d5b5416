package api

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// Clients that open connections and leave them idle fill the cap; a new
// client is still served, at the expense of the longest idle connection,
// and the collector never holds more than the cap.
func TestLimitConnsEvictsIdleFirst(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })}
	const max = 8
	lim := LimitConns(hs, ln, max).(*limitListener)
	go hs.Serve(lim)
	defer hs.Close()

	var idle []net.Conn
	for range 3 * max {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("client %d not served: %v", len(idle), err)
		}
		resp.Body.Close()
		idle = append(idle, c)
	}
	// Each new client was served; the connections held never exceeded the cap.
	lim.mu.Lock()
	held := len(lim.conns)
	lim.mu.Unlock()
	if held > max {
		t.Fatalf("%d connections held, cap %d", held, max)
	}
	// The first idle connections were the ones closed.
	idle[0].SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := idle[0].Read(make([]byte, 1)); err == nil {
		t.Fatal("the oldest idle connection is still open")
	}
}
