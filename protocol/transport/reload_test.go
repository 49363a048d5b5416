package transport

import (
	"crypto/tls"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"idk/internal/testenv"
	"idk/simulator/simclock"
)

// serials does one real TLS handshake between srv and cli and returns the
// serial numbers, in hex, of the certificates each side presented.
func serials(t *testing.T, srv, cli *tls.Config) (serverSerial, clientSerial string) {
	t.Helper()
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	done := make(chan error, 1)
	sc := tls.Server(a, srv)
	go func() { done <- sc.Handshake() }()
	cc := tls.Client(b, cli)
	if err := cc.Handshake(); err != nil {
		t.Fatalf("client handshake: %v", err)
	}
	if err := <-done; err != nil {
		t.Fatalf("server handshake: %v", err)
	}
	return cc.ConnectionState().PeerCertificates[0].SerialNumber.Text(16),
		sc.ConnectionState().PeerCertificates[0].SerialNumber.Text(16)
}

// touch moves a file's modification time on, as a copy made later would,
// whatever the file system's timestamp resolution.
func touch(t *testing.T, path string, by time.Duration) {
	t.Helper()
	at := time.Now().Add(by)
	if err := os.Chtimes(path, at, at); err != nil {
		t.Fatal(err)
	}
}

func TestReloadingPairsFollowTheirFiles(t *testing.T) {
	dir := t.TempDir()
	ca, caKey := writePair(t, dir, "ca", nil, nil)
	server1, _ := writePair(t, dir, "server", ca, caKey)
	client1, _ := writePair(t, dir, "client", ca, caKey)
	path := func(name string) string { return filepath.Join(dir, name) }
	clk := simclock.New(time.Now())
	var logs testenv.LogBuffer
	r := Reload{Clock: clk, Every: 5 * time.Second, Log: slog.New(slog.NewTextHandler(&logs, nil))}
	srv, err := ServerTLSReloading(path("server.crt"), path("server.key"), path("ca.crt"), r)
	if err != nil {
		t.Fatal(err)
	}
	cli, err := ClientTLSReloading(path("client.crt"), path("client.key"), path("ca.crt"), "localhost", r)
	if err != nil {
		t.Fatal(err)
	}
	want := func(step, wantServer, wantClient string) {
		t.Helper()
		s, c := serials(t, srv, cli)
		if s != wantServer || c != wantClient {
			t.Errorf("%s: server presented %s, client %s; want %s and %s", step, s, c, wantServer, wantClient)
		}
	}
	hex := func(p interface{ Text(int) string }) string { return p.Text(16) }
	want("first handshake", hex(server1.SerialNumber), hex(client1.SerialNumber))

	// Renewed in place. Until the next look at the files, the old pair.
	time.Sleep(5 * time.Millisecond) // distinct serials: writePair takes them from the clock
	server2, _ := writePair(t, dir, "server", ca, caKey)
	client2, _ := writePair(t, dir, "client", ca, caKey)
	for _, n := range []string{"server.crt", "server.key", "client.crt", "client.key"} {
		touch(t, path(n), time.Second)
	}
	clk.Advance(time.Second)
	want("before the next look", hex(server1.SerialNumber), hex(client1.SerialNumber))
	clk.Advance(5 * time.Second)
	want("after renewal", hex(server2.SerialNumber), hex(client2.SerialNumber))

	// Half copied: a key that is not the certificate's. The last good pair
	// stays, and the reason is logged.
	time.Sleep(5 * time.Millisecond)
	writePair(t, dir, "other", ca, caKey)
	data, err := os.ReadFile(path("other.key"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path("client.key"), data, 0o600); err != nil {
		t.Fatal(err)
	}
	touch(t, path("client.key"), 2*time.Second)
	clk.Advance(6 * time.Second)
	want("mismatched key", hex(server2.SerialNumber), hex(client2.SerialNumber))
	if !strings.Contains(logs.String(), "cannot be used") || !strings.Contains(logs.String(), "client.key") {
		t.Errorf("mismatched pair not logged; log:\n%s", logs.String())
	}

	// Unreadable: the same.
	if err := os.Remove(path("client.crt")); err != nil {
		t.Fatal(err)
	}
	clk.Advance(6 * time.Second)
	want("missing certificate", hex(server2.SerialNumber), hex(client2.SerialNumber))

	// The copy completed: taken up.
	time.Sleep(5 * time.Millisecond)
	client3, _ := writePair(t, dir, "client", ca, caKey)
	touch(t, path("client.crt"), 3*time.Second)
	touch(t, path("client.key"), 3*time.Second)
	clk.Advance(6 * time.Second)
	want("after the copy completed", hex(server2.SerialNumber), hex(client3.SerialNumber))
}

func TestReloadingNeedsAGoodPairAtStart(t *testing.T) {
	dir := t.TempDir()
	ca, caKey := writePair(t, dir, "ca", nil, nil)
	writePair(t, dir, "leaf", ca, caKey)
	writePair(t, dir, "other", ca, caKey)
	path := func(name string) string { return filepath.Join(dir, name) }
	if _, err := ClientTLSReloading(path("leaf.crt"), path("other.key"), path("ca.crt"), "localhost", Reload{}); err == nil || !strings.Contains(err.Error(), path("leaf.crt")) {
		t.Errorf("mismatched pair: err = %v, want one naming %s", err, path("leaf.crt"))
	}
	if _, err := ServerTLSReloading(path("leaf.crt"), path("leaf.key"), path("missing.crt"), Reload{}); err == nil || !strings.Contains(err.Error(), "missing.crt") {
		t.Errorf("missing CA: err = %v, want one naming missing.crt", err)
	}
}
