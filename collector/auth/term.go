package auth

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// IsTerminal reports whether r is a terminal (a character device): a
// person typing, not a pipe or a file.
func IsTerminal(r io.Reader) bool {
	f, ok := r.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// ReadPassword reads one line from r without its line ending. From a
// terminal it does not echo what is typed where the system lets it be
// turned off (Linux; elsewhere it echoes); from a pipe it reads the first
// line, so a script can give the password on standard input. 'idk-collector
// user' reads passwords with it.
func ReadPassword(r io.Reader) (string, error) {
	if f, ok := r.(*os.File); ok && IsTerminal(f) {
		if line, err := readNoEcho(f); !errors.Is(err, errEchoStays) {
			return line, err
		}
	}
	line, err := bufio.NewReader(r).ReadString('\n')
	if err != nil && !(errors.Is(err, io.EOF) && line != "") {
		if errors.Is(err, io.EOF) {
			return "", errors.New("password: none given on standard input")
		}
		return "", fmt.Errorf("password: %w", err)
	}
	return strings.TrimRight(line, "\r\n"), nil
}

// errEchoStays says the terminal's echo cannot be turned off here.
var errEchoStays = errors.New("echo cannot be turned off")
