package transport

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
)

// quicOver connects a quic-go client and server over two fresh loopback
// UDP sockets, as the collector and the agent run quic-go on theirs, and
// returns the sockets with the connection as each end sees it. quic-go
// decides GSO and raises the buffers when each Transport starts.
func quicOver(t *testing.T) (srvUDP, cliUDP *net.UDPConn, srv, cli *quic.Conn) {
	t.Helper()
	dir := t.TempDir()
	ca, caKey := writePair(t, dir, "ca", nil, nil)
	writePair(t, dir, "server", ca, caKey)
	writePair(t, dir, "client", ca, caKey)
	path := func(name string) string { return filepath.Join(dir, name) }
	srvTLS, err := ServerTLS(path("server.crt"), path("server.key"), path("ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	cliTLS, err := ClientTLS(path("client.crt"), path("client.key"), path("ca.crt"), "localhost")
	if err != nil {
		t.Fatal(err)
	}
	srvTLS.NextProtos, cliTLS.NextProtos = []string{"idk/1"}, []string{"idk/1"}

	listen := func() *net.UDPConn {
		c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	srvUDP, cliUDP = listen(), listen()
	srvTr, cliTr := &quic.Transport{Conn: srvUDP}, &quic.Transport{Conn: cliUDP}
	t.Cleanup(func() { cliTr.Close(); srvTr.Close() })
	ln, err := srvTr.Listen(srvTLS, QUICConfig())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cli, err = cliTr.Dial(ctx, srvUDP.LocalAddr(), cliTLS, QUICConfig())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.CloseWithError(0, "") })
	if srv, err = ln.Accept(ctx); err != nil {
		t.Fatal(err)
	}
	return srvUDP, cliUDP, srv, cli
}

// InspectUDP must say GSO exactly when quic-go itself reports it, on both
// ends, with GSO left to quic-go and with it switched off the documented
// way.
func TestInspectUDPAgreesWithQUICGo(t *testing.T) {
	for _, env := range []string{"", "1", "false"} {
		t.Run("QUIC_GO_DISABLE_GSO="+env, func(t *testing.T) {
			t.Setenv("QUIC_GO_DISABLE_GSO", env)
			srvUDP, cliUDP, srv, cli := quicOver(t)
			for _, end := range []struct {
				name string
				udp  *net.UDPConn
				conn *quic.Conn
			}{{"server", srvUDP, srv}, {"client", cliUDP, cli}} {
				info, err := InspectUDP(end.udp)
				if err != nil && !(runtime.GOOS != "linux" && runtime.GOOS != "windows" && errors.Is(err, errors.ErrUnsupported)) {
					t.Errorf("%s: %v", end.name, err)
				}
				if want := end.conn.ConnectionState().GSO; info.GSO != want {
					t.Errorf("%s: InspectUDP says GSO %v, quic-go's connection says %v", end.name, info.GSO, want)
				}
				if env == "1" && info.GSO {
					t.Errorf("%s: GSO on with QUIC_GO_DISABLE_GSO=1", end.name)
				}
				if info.WantBuffer != QUICBufferSize {
					t.Errorf("%s: WantBuffer %d, want %d", end.name, info.WantBuffer, QUICBufferSize)
				}
				if err == nil && (info.ReceiveBuffer <= 0 || info.SendBuffer <= 0) {
					t.Errorf("%s: buffers %d (receive), %d (send), want both positive", end.name, info.ReceiveBuffer, info.SendBuffer)
				}
				t.Logf("%s: %+v", end.name, info)
			}
		})
	}
}

// A PacketConn without a file descriptor gets neither GSO nor buffers
// from quic-go; InspectUDP says so and why.
func TestInspectUDPWithoutDescriptor(t *testing.T) {
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	info, err := InspectUDP(struct{ net.PacketConn }{c})
	if err == nil {
		t.Error("no error for a conn without SyscallConn")
	}
	if info.GSO || info.ReceiveBuffer != 0 || info.SendBuffer != 0 || info.WantBuffer != QUICBufferSize {
		t.Errorf("got %+v, want only WantBuffer set", info)
	}
}
