package auth

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// readNoEcho reads a line from the terminal f with its echo turned off,
// and turns it back on whatever happens, as golang.org/x/term does.
func readNoEcho(f *os.File) (string, error) {
	fd := int(f.Fd())
	old, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return "", errEchoStays
	}
	quiet := *old
	quiet.Lflag &^= unix.ECHO
	quiet.Lflag |= unix.ICANON | unix.ISIG
	quiet.Iflag |= unix.ICRNL
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, &quiet); err != nil {
		return "", errEchoStays
	}
	defer unix.IoctlSetTermios(fd, unix.TCSETS, old)
	// Byte by byte: nothing past the line is read away from the terminal.
	var line []byte
	b := make([]byte, 1)
	for {
		n, err := f.Read(b)
		if n == 1 {
			if b[0] == '\n' {
				break
			}
			line = append(line, b[0])
			continue
		}
		if errors.Is(err, io.EOF) && len(line) > 0 {
			break
		}
		if err != nil {
			return "", fmt.Errorf("password: %w", err)
		}
	}
	return strings.TrimRight(string(line), "\r"), nil
}
