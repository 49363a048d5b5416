//go:build !linux && !windows

package transport

import (
	"errors"
	"syscall"
)

// gsoEnabled is false: quic-go uses GSO on Linux only (its isGSOEnabled is
// a constant false on macOS and FreeBSD, and other systems get its
// basicConn).
func gsoEnabled(syscall.RawConn) bool { return false }

// socketBuffers is not implemented here: the collector runs on Linux and
// the agents on Windows, and neither needs this to build elsewhere.
func socketBuffers(syscall.RawConn) (receive, send int, err error) {
	return 0, 0, errors.ErrUnsupported
}
