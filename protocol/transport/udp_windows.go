package transport

import (
	"fmt"
	"syscall"

	"golang.org/x/sys/windows"
)

// gsoEnabled is false: on Windows quic-go wraps every socket in its
// basicConn (sys_conn_windows.go), which sends one packet per call.
func gsoEnabled(syscall.RawConn) bool { return false }

// socketBuffers reads the buffers as quic-go's inspectReadBuffer does on
// Windows; unlike Linux, Windows reports the size as granted.
func socketBuffers(rc syscall.RawConn) (receive, send int, err error) {
	var rerr, serr error
	if err := rc.Control(func(fd uintptr) {
		receive, rerr = windows.GetsockoptInt(windows.Handle(fd), windows.SOL_SOCKET, windows.SO_RCVBUF)
		send, serr = windows.GetsockoptInt(windows.Handle(fd), windows.SOL_SOCKET, windows.SO_SNDBUF)
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
