package transport

import (
	"encoding/binary"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// kernelSegments asks the kernel to split one 250-byte write into 100-byte
// datagrams (UDP_SEGMENT, as quic-go sends with GSO) on loopback, and
// tells whether it did.
func kernelSegments(t *testing.T) bool {
	t.Helper()
	listen := func() *net.UDPConn {
		c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	rx, tx := listen(), listen()
	oob := make([]byte, unix.CmsgSpace(2))
	h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
	h.Level, h.Type = unix.SOL_UDP, unix.UDP_SEGMENT
	h.SetLen(unix.CmsgLen(2))
	binary.NativeEndian.PutUint16(oob[unix.CmsgLen(0):], 100)
	if _, _, err := tx.WriteMsgUDP(make([]byte, 250), oob, rx.LocalAddr().(*net.UDPAddr)); err != nil {
		t.Logf("the kernel refuses a GSO send: %v", err)
		return false
	}
	rx.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := rx.Read(make([]byte, 500))
	if err != nil {
		t.Fatal(err)
	}
	return n == 100
}

// release reads the kernel's major version from /proc, apart from the
// uname InspectUDP reads.
func release(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		t.Skip(err)
	}
	major, err := strconv.Atoi(strings.SplitN(string(b), ".", 2)[0])
	if err != nil {
		t.Fatalf("kernel release %q: %v", b, err)
	}
	return major
}

// GSO is what the kernel does with a segmented write, limited as quic-go
// limits it to Linux 5 and later.
func TestInspectUDPKernelGSO(t *testing.T) {
	t.Setenv("QUIC_GO_DISABLE_GSO", "")
	segments := kernelSegments(t)
	want := segments && release(t) >= 5
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	info, err := InspectUDP(c)
	if err != nil {
		t.Fatal(err)
	}
	if info.GSO != want {
		t.Errorf("GSO %v; the kernel segments: %v, so want %v", info.GSO, segments, want)
	}
	t.Setenv("QUIC_GO_DISABLE_GSO", "1")
	if info, _ := InspectUDP(c); info.GSO {
		t.Error("GSO on with QUIC_GO_DISABLE_GSO=1")
	}
}

func sysctlInt(t *testing.T, name string) int {
	t.Helper()
	b, err := os.ReadFile("/proc/sys/net/core/" + name)
	if err != nil {
		t.Skip(err)
	}
	v, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// The buffers are reported as getsockopt gives them: on Linux twice what
// was set.
func TestInspectUDPBuffersLinux(t *testing.T) {
	const set = 100000
	if sysctlInt(t, "rmem_max") < set || sysctlInt(t, "wmem_max") < set {
		t.Skip("net.core.rmem_max or wmem_max below 100000")
	}
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.SetReadBuffer(set); err != nil {
		t.Fatal(err)
	}
	if err := c.SetWriteBuffer(set); err != nil {
		t.Fatal(err)
	}
	info, err := InspectUDP(c)
	if err != nil {
		t.Fatal(err)
	}
	if info.ReceiveBuffer != 2*set || info.SendBuffer != 2*set {
		t.Errorf("buffers %d (receive), %d (send), want %d each", info.ReceiveBuffer, info.SendBuffer, 2*set)
	}
}

// After quic-go starts on a socket, InspectUDP sees at least what the
// sysctls let quic-go have (more with CAP_NET_ADMIN, which lets it force
// the buffer past them).
func TestInspectUDPBuffersAfterQUICGo(t *testing.T) {
	rmax, wmax := sysctlInt(t, "rmem_max"), sysctlInt(t, "wmem_max")
	srvUDP, _, _, _ := quicOver(t)
	info, err := InspectUDP(srvUDP)
	if err != nil {
		t.Fatal(err)
	}
	if want := 2 * min(QUICBufferSize, rmax); info.ReceiveBuffer < want {
		t.Errorf("receive buffer %d, want at least %d (rmem_max %d)", info.ReceiveBuffer, want, rmax)
	}
	if want := 2 * min(QUICBufferSize, wmax); info.SendBuffer < want {
		t.Errorf("send buffer %d, want at least %d (wmem_max %d)", info.SendBuffer, want, wmax)
	}
	t.Logf("%+v (rmem_max %d, wmem_max %d)", info, rmax, wmax)
}
