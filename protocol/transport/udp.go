package transport

import (
	"fmt"
	"net"
	"syscall"

	"github.com/quic-go/quic-go"
)

// QUICBufferSize is the UDP receive and send buffer quic-go v0.65 asks the
// kernel for (desiredBufferSize in its sys_conn_buffers_nonopenbsd.go,
// 7 MiB). Below it quic-go logs "failed to sufficiently increase receive
// buffer size" once and carries on, and a burst that outruns the buffer is
// dropped by the kernel and sent again after a loss timeout. Keep it in
// step with quic-go on upgrades.
const QUICBufferSize = 7 << 20

// UDPInfo is what quic-go got from the kernel for one UDP socket.
type UDPInfo struct {
	// GSO is true when quic-go sends on the socket with generic
	// segmentation offload: one sendmsg for a batch of packets instead of
	// one per packet, which takes most of the CPU cost out of sending a
	// file. quic-go still turns GSO off for a peer whose first GSO send
	// fails with EIO (a network card without checksum offload);
	// quic.Conn.ConnectionState().GSO tells that per connection.
	GSO bool
	// ReceiveBuffer and SendBuffer are SO_RCVBUF and SO_SNDBUF as
	// getsockopt reports them. Linux reports twice what was granted (it
	// counts its own bookkeeping in), and quic-go compares this reported
	// value with WantBuffer, so they are kept as reported. 0 when the
	// system gives no way to read them.
	ReceiveBuffer, SendBuffer int
	// WantBuffer is what quic-go asks for: QUICBufferSize.
	WantBuffer int
}

// InspectUDP tells what quic-go gets from c, deciding as quic-go v0.65
// does (wrapConn and newConn in its sys_conn*.go):
//
//   - GSO needs Linux 5.0 or newer (quic-go checks the kernel's major
//     version, although UDP_SEGMENT came in 4.18), QUIC_GO_DISABLE_GSO
//     unset or false (as strconv.ParseBool reads it), a c quic-go can send
//     control messages on (quic.OOBCapablePacketConn and net.Conn, as
//     *net.UDPConn is), and getsockopt(UDP_SEGMENT) succeeding on it. On
//     Windows, macOS and BSD quic-go never uses GSO.
//   - quic-go raises both buffers to QUICBufferSize when its Transport
//     starts on c (first Listen or Dial), with SO_RCVBUFFORCE as a second
//     try, which needs CAP_NET_ADMIN; otherwise the kernel caps the request
//     at net.core.rmem_max and wmem_max. Call InspectUDP after that, or it
//     reports the buffers before quic-go raised them.
//
// The error says why buffers could not be read; GSO and WantBuffer are
// meaningful all the same.
func InspectUDP(c net.PacketConn) (UDPInfo, error) {
	info := UDPInfo{WantBuffer: QUICBufferSize}
	sc, ok := c.(interface {
		SyscallConn() (syscall.RawConn, error)
	})
	if !ok {
		return info, fmt.Errorf("transport: inspect UDP socket: %T has no file descriptor", c)
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return info, fmt.Errorf("transport: inspect UDP socket: %w", err)
	}
	// quic-go falls back to plain WriteTo, without GSO, for a conn it
	// cannot send control messages on; newConn also wants a net.Conn (or
	// a ReadBatch method, which this package has no conn with).
	_, oob := c.(quic.OOBCapablePacketConn)
	_, isConn := c.(net.Conn)
	info.GSO = oob && isConn && gsoEnabled(rc)
	info.ReceiveBuffer, info.SendBuffer, err = socketBuffers(rc)
	if err != nil {
		return info, fmt.Errorf("transport: inspect UDP socket: %w", err)
	}
	return info, nil
}
