package transport

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"io"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// tcpPair returns both ends of a TLS-over-TCP connection made through
// ListenTCP and DialTCP with real certificates; the client's ALPN is
// clientALPN.
func tcpPair(t *testing.T, clientALPN string) (client, server Conn) {
	t.Helper()
	dir := t.TempDir()
	ca, caKey := writePair(t, dir, "ca", nil, nil)
	writePair(t, dir, "server", ca, caKey)
	writePair(t, dir, "client", ca, caKey)
	path := func(name string) string { return filepath.Join(dir, name) }
	srv, err := ServerTLS(path("server.crt"), path("server.key"), path("ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	srv.NextProtos = []string{"idk/1"}
	cli, err := ClientTLS(path("client.crt"), path("client.key"), path("ca.crt"), "localhost")
	if err != nil {
		t.Fatal(err)
	}
	cli.NextProtos = []string{clientALPN}
	ln, err := ListenTCP("127.0.0.1:0", srv)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	accepted := make(chan Conn, 1)
	go func() {
		c, err := ln.Accept(ctx)
		if err != nil {
			close(accepted)
			return
		}
		accepted <- c
	}()
	client, err = DialTCP(ctx, ln.Addr().String(), cli)
	if err != nil {
		return nil, nil
	}
	server = <-accepted
	if server == nil {
		t.Fatal("the listener handed out no connection for a good dial")
	}
	t.Cleanup(func() {
		client.CloseWithError(0, "")
		server.CloseWithError(0, "")
	})
	return client, server
}

func goodPair(t *testing.T) (client, server Conn) {
	t.Helper()
	c, s := tcpPair(t, "idk/1")
	if c == nil {
		t.Fatal("dial failed")
	}
	return c, s
}

// Streams over TCP carry the certificates, the ALPN and many streams at
// once, each byte for byte, in both directions.
func TestTCPStreamsConcurrently(t *testing.T) {
	client, server := goodPair(t)
	if client.Transport() != NameTCP || server.Transport() != NameTCP {
		t.Errorf("transports %q, %q; want tcp", client.Transport(), server.Transport())
	}
	if cs := server.TLS(); cs.Version != tls.VersionTLS13 || cs.NegotiatedProtocol != "idk/1" ||
		len(cs.PeerCertificates) == 0 || cs.PeerCertificates[0].Subject.CommonName != "client" {
		t.Errorf("server's view: version %x, ALPN %q, peer %v", cs.Version, cs.NegotiatedProtocol, cs.PeerCertificates)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// The server echoes every stream back.
	go func() {
		for {
			st, err := server.AcceptStream(ctx)
			if err != nil {
				return
			}
			go func() {
				io.Copy(st, st)
				st.Close()
			}()
		}
	}()
	const streams = 24
	var wg sync.WaitGroup
	errs := make(chan error, streams)
	for i := range streams {
		wg.Go(func() {
			st, err := client.OpenStream(ctx)
			if err != nil {
				errs <- err
				return
			}
			data := make([]byte, 100_000+i*37_000)
			rand.Read(data)
			go func() {
				st.Write(data)
				st.Close() // half-close: the echo still comes back
			}()
			got, err := io.ReadAll(st)
			if err != nil {
				errs <- err
				return
			}
			if !bytes.Equal(got, data) {
				errs <- errors.New("echo differs")
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if rtt := client.RTT(); rtt <= 0 {
		t.Errorf("RTT %v, want a measurement", rtt)
	}
}

// A stream whose reader stops holds its writer to its window, and only
// it: another stream on the connection goes on, and the first resumes
// once read.
func TestTCPBackpressureIsPerStream(t *testing.T) {
	client, server := goodPair(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	big, err := client.OpenStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	data := make([]byte, 8<<20)
	rand.Read(data)
	wrote := make(chan error, 1)
	go func() {
		_, err := big.Write(data)
		wrote <- err
	}()
	bigIn, err := server.AcceptStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-wrote:
		t.Fatalf("8 MiB written to a stream nobody reads (%v): no backpressure", err)
	case <-time.After(300 * time.Millisecond):
	}
	// The events stream meanwhile.
	small, err := client.OpenStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := small.Write([]byte("event batch")); err != nil {
		t.Fatal(err)
	}
	smallIn, err := server.AcceptStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	smallIn.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 11)
	if _, err := io.ReadFull(smallIn, buf); err != nil || string(buf) != "event batch" {
		t.Fatalf("the second stream behind a stalled one: %q, %v", buf, err)
	}
	got := make([]byte, len(data))
	if _, err := io.ReadFull(bigIn, got); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("the stalled stream, read at last: %v (equal %v)", err, bytes.Equal(got, data))
	}
	if err := <-wrote; err != nil {
		t.Fatal(err)
	}
}

// Cancelling wakes a read and a write in progress, and they stay
// cancelled whatever deadline is set after; the peer sees the stream end.
func TestTCPCancelWakesReadAndWrite(t *testing.T) {
	client, server := goodPair(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	st, err := client.OpenStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	st.Write([]byte("x"))
	in, err := server.AcceptStream(ctx)
	if err != nil {
		t.Fatal(err)
	}

	read := make(chan error, 1)
	go func() {
		_, err := st.Read(make([]byte, 1))
		read <- err
	}()
	written := make(chan error, 1)
	go func() {
		_, err := st.Write(make([]byte, 8<<20)) // beyond the window: blocks
		written <- err
	}()
	time.Sleep(100 * time.Millisecond)
	st.CancelRead(1)
	st.CancelWrite(1)
	for what, ch := range map[string]chan error{"read": read, "write": written} {
		select {
		case err := <-ch:
			if !errors.Is(err, errCancelled) {
				t.Errorf("cancelled %s: %v, want errCancelled", what, err)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("cancelling did not wake the %s", what)
		}
	}
	st.SetDeadline(time.Now().Add(time.Hour))
	if _, err := st.Read(make([]byte, 1)); !errors.Is(err, errCancelled) {
		t.Errorf("read after a new deadline: %v, want still cancelled", err)
	}
	// The peer reads what came and then the end.
	in.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.Copy(io.Discard, in); err != nil {
		t.Errorf("the peer of a cancelled stream: %v, want its end", err)
	}
}

// A client that does not speak the protocol's ALPN gets no connection,
// and neither does one without a certificate; closing one end ends the
// other's context.
func TestTCPRefusesAndCloses(t *testing.T) {
	if c, _ := tcpPair(t, "h2"); c != nil {
		t.Error("a client with another ALPN was connected")
	}
	client, server := goodPair(t)
	client.CloseWithError(0, "bye")
	select {
	case <-server.Context().Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the server's connection outlived the client's close")
	}
	if _, err := server.AcceptStream(context.Background()); err == nil {
		t.Error("a stream accepted on a closed connection")
	}
}

// The server end lets the peer have at most maxTCPStreams streams open:
// those beyond end at once.
func TestTCPStreamLimit(t *testing.T) {
	client, server := goodPair(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	go func() {
		for {
			// Accepted and held: never ended.
			if _, err := server.AcceptStream(ctx); err != nil {
				return
			}
		}
	}()
	var streams []Stream
	for range maxTCPStreams + 8 {
		st, err := client.OpenStream(ctx)
		if err != nil {
			t.Fatal(err)
		}
		st.Write([]byte("h"))
		streams = append(streams, st)
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	ended := 0
	for _, st := range streams {
		wg.Go(func() {
			st.SetReadDeadline(time.Now().Add(time.Second))
			if _, err := st.Read(make([]byte, 1)); errors.Is(err, io.EOF) {
				mu.Lock()
				ended++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if ended != 8 {
		t.Errorf("%d streams ended by the server, want the 8 beyond %d", ended, maxTCPStreams)
	}
}

// The dialling side of a TCP connection knows its round trip from the
// connect (the agent stripes files only on long ones); on loopback it is
// well under a millisecond's order, and never zero. The accepting side
// does not claim one.
func TestTCPMinRTTFromConnect(t *testing.T) {
	c, s := goodPair(t)
	d, ok := MinRTT(c)
	if !ok || d <= 0 || d > 100*time.Millisecond {
		t.Errorf("dialler's MinRTT %v, %v; want a loopback round trip", d, ok)
	}
	if d, ok := MinRTT(s); ok {
		t.Errorf("accepting side claims a round trip of %v", d)
	}
}
