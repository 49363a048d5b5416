package protocol

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// MaxNameBytes bounds a stored file name. The collector may add a revision
// suffix ("~12") and must stay well inside the 255 bytes a file system
// allows for one name.
const MaxNameBytes = 200

// This file holds the one rule for file names, used by both ends: the agent
// applies SafeName before it spools a file, so that everything it queues
// can be stored, and the collector refuses (for good, STATUS_REJECTED) any
// name CheckFileName does not accept.

// CheckFileName reports whether s can be stored as a file's base name on
// the collector, and later copied to any customs workstation, as it is:
// valid UTF-8 in NFC (so two spellings of one name cannot be twins), 1 to
// MaxNameBytes bytes, no path separator or character Windows refuses, no
// leading dot (the collector's own files start with one), no trailing dot
// or space, no control character (C0, DEL, C1), no bidirectional override
// that would make a name read differently than it is, and no Windows
// device name (CON, NUL, COM1, ...).
func CheckFileName(s string) error {
	switch {
	case s == "" || len(s) > MaxNameBytes:
		return fmt.Errorf("file name %q: want 1-%d bytes", s, MaxNameBytes)
	case !utf8.ValidString(s):
		return fmt.Errorf("file name %q: not valid UTF-8", s)
	case strings.HasPrefix(s, "."):
		return fmt.Errorf("file name %q: must not start with a dot", s)
	case strings.HasSuffix(s, ".") || strings.HasSuffix(s, " "):
		return fmt.Errorf("file name %q: must not end with a dot or a space", s)
	case !norm.NFC.IsNormalString(s):
		return fmt.Errorf("file name %q: not in Unicode normal form C", s)
	case windowsDevice(s):
		return fmt.Errorf("file name %q: a Windows device name", s)
	}
	for _, r := range s {
		if badRune(r) {
			return fmt.Errorf("file name %q: has the character %U, which is not allowed in file names", s, r)
		}
	}
	return nil
}

// badRune is a character no stored name may hold.
func badRune(r rune) bool {
	switch {
	case r < 0x20, r == 0x7f, r >= 0x80 && r <= 0x9f: // C0, DEL, C1
		return true
	case r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069, r == 0x200e, r == 0x200f, r == 0x061c: // bidi controls
		return true
	case r == utf8.RuneError, r == 0xfeff:
		return true
	}
	return strings.ContainsRune(`/\:*?"<>|`, r)
}

// windowsDevice reports names Windows maps to devices, with or without an
// extension: "CON", "nul.txt", "COM1.raw".
func windowsDevice(s string) bool {
	base := strings.ToUpper(s)
	if i := strings.IndexByte(base, '.'); i >= 0 {
		base = base[:i]
	}
	base = strings.TrimRight(base, " ")
	switch base {
	case "CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$":
		return true
	}
	if len(base) == 4 && (strings.HasPrefix(base, "COM") || strings.HasPrefix(base, "LPT")) {
		return base[3] >= '0' && base[3] <= '9'
	}
	return false
}

// SafeName returns name itself when CheckFileName accepts it, and
// otherwise a name it accepts that still reads like the original: NFC
// normalised, every character not allowed percent-encoded as its UTF-8
// bytes ("a:b" → "a%3Ab"), a leading dot, a trailing dot or space and a
// Windows device name encoded the same way, and a name still too long cut
// (keeping its extension) and marked with 8 hex digits of the original's
// SHA-256 so that two long names do not become one. The agent records the
// original name beside the safe one.
func SafeName(name string) string {
	if CheckFileName(name) == nil {
		return name
	}
	s := name
	if utf8.ValidString(s) {
		s = norm.NFC.String(s)
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size <= 1 || badRune(r) || r == '%' {
			for _, c := range []byte(s[i : i+max(size, 1)]) {
				fmt.Fprintf(&b, "%%%02X", c)
			}
		} else {
			b.WriteString(s[i : i+size])
		}
		i += max(size, 1)
	}
	// Encoding invalid bytes can leave a combining mark next to a base
	// character it now composes with.
	s = norm.NFC.String(b.String())
	if s == "" {
		s = "%00"
	}
	if s[0] == '.' {
		s = "%2E" + s[1:]
	}
	switch last := s[len(s)-1]; last {
	case '.', ' ':
		s = s[:len(s)-1] + fmt.Sprintf("%%%02X", last)
	}
	if windowsDevice(s) {
		s = fmt.Sprintf("%%%02X", s[0]) + s[1:]
	}
	if len(s) > MaxNameBytes {
		sum := sha256.Sum256([]byte(name))
		ext := path.Ext(s)
		if len(ext) > 16 || CheckFileName("x"+ext) != nil {
			ext = ""
		}
		mark := "~" + hex.EncodeToString(sum[:4])
		stem := s[:MaxNameBytes-len(mark)-len(ext)]
		for !utf8.ValidString(stem) || strings.HasSuffix(stem, "%") || len(stem) > 1 && stem[len(stem)-2] == '%' {
			stem = stem[:len(stem)-1] // do not cut a character or an escape in half
		}
		s = stem + mark + ext
	}
	if CheckFileName(s) != nil {
		// Not reached for any input the fuzzer found; a name made of the
		// original's hash is always storable.
		sum := sha256.Sum256([]byte(name))
		s = "name-" + hex.EncodeToString(sum[:16])
	}
	return s
}
