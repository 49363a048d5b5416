package transport

import (
	"fmt"
	"os"
	"strconv"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// gsoEnabled is quic-go's isGSOEnabled (sys_conn_helper_linux.go): the
// kernel's major version, then the environment, then whether the socket
// knows UDP_SEGMENT.
func gsoEnabled(rc syscall.RawConn) bool {
	if kernelMajor() < 5 {
		return false
	}
	if disabled, err := strconv.ParseBool(os.Getenv("QUIC_GO_DISABLE_GSO")); err == nil && disabled {
		return false
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		_, serr = unix.GetsockoptInt(int(fd), unix.IPPROTO_UDP, unix.UDP_SEGMENT)
	}); err != nil {
		return false
	}
	return serr == nil
}

// kernelMajor is the kernel's major version as quic-go reads it (its
// kernelVersion, from the standard library): the digits of uname's
// release up to the first other character; 0 if uname fails.
var kernelMajor = sync.OnceValue(func() int {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return 0
	}
	major := 0
	for _, c := range u.Release {
		if c < '0' || c > '9' {
			break
		}
		major = major*10 + int(c-'0')
	}
	return major
})

func socketBuffers(rc syscall.RawConn) (receive, send int, err error) {
	var rerr, serr error
	if err := rc.Control(func(fd uintptr) {
		receive, rerr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF)
		send, serr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUF)
	}); err != nil {
		return 0, 0, err
	}
	if rerr != nil {
		return receive, send, fmt.Errorf("getsockopt SO_RCVBUF: %w", rerr)
	}
	if serr != nil {
		return receive, send, fmt.Errorf("getsockopt SO_SNDBUF: %w", serr)
	}
	return receive, send, nil
}
