// Package cargoriw is the layout of the CargoRIW image-analysis program's
// output folder: which files make up a scan and how its registration form
// is encoded. The vendor format is not public, so this package is the
// definition; docs/cargoriw-layout.md describes it for people.
//
// On disk a scan is one folder named by its scan number (NUM_SNIM):
//
//	<out>/<NUM_SNIM>/<NUM_SNIM>_1.raw   X-ray image (a second one is _2.raw)
//	<out>/<NUM_SNIM>/doc_001.jpg        scanned documents (.jpg, .jpeg, .pdf)
//	<out>/<NUM_SNIM>/form.xml           registration form, rewritten in place
package cargoriw

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"idk/agent/layout"
)

// FormName is the base name of the registration form in a scan folder.
const FormName = "form.xml"

// MaxNumSnim is the longest scan number accepted. The report examples have
// 18 and 21 characters; the limit leaves room for other scanners while
// still rejecting folders that cannot be scan numbers.
const MaxNumSnim = 40

// Layout is the CargoRIW layout. The zero value is ready to use.
type Layout struct{}

var _ layout.Layout = Layout{}

// ValidNumSnim reports whether s can be a scan number: 1 to MaxNumSnim
// characters of 0-9 and A-Z. The scanner assigns it and names the folder
// after it, so anything else (lower case, spaces, Cyrillic) is not a scan.
func ValidNumSnim(s string) bool {
	if len(s) == 0 || len(s) > MaxNumSnim {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'A' || c > 'Z') {
			return false
		}
	}
	return true
}

// RawName is the base name of the i-th X-ray image (1 or 2) of a scan.
func RawName(numSnim string, i int) string {
	return fmt.Sprintf("%s_%d.raw", numSnim, i)
}

// Classify implements layout.Layout. rel must be exactly
// "<NUM_SNIM>/<file>"; the folder alone, deeper paths, absolute paths,
// "..", backslashes, temporary files (".x", "~x", "x.tmp") and files that
// are neither RAW, document nor form give ok == false and a zero File.
func (Layout) Classify(rel string) (layout.File, bool) {
	// Backslashes are rejected rather than treated as separators: the
	// caller promises '/', so a backslash means a path from elsewhere or a
	// name crafted to escape the folder on Windows.
	if rel == "" || strings.HasPrefix(rel, "/") || strings.ContainsRune(rel, '\\') {
		return layout.File{}, false
	}
	dir, name, found := strings.Cut(rel, "/")
	if !found || strings.Contains(name, "/") {
		return layout.File{}, false
	}
	// ValidNumSnim rejects "", "." and ".." for the folder; the checks on
	// name below reject them for the file (they begin with '.').
	if !ValidNumSnim(dir) || !validName(name) {
		return layout.File{}, false
	}
	kind := classifyName(dir, name)
	if kind == layout.KindUnknown {
		return layout.File{}, false
	}
	return layout.File{NumSnim: dir, Name: name, Kind: kind}, true
}

// validName rejects names that are not scan files whatever their
// extension: empty, hidden or editor/temporary files, and names with
// control characters or invalid UTF-8, which no scanner writes and which
// would garble logs.
func validName(name string) bool {
	if name == "" || name[0] == '.' || name[0] == '~' || !utf8.ValidString(name) {
		return false
	}
	if hasSuffixFold(name, ".tmp") {
		return false
	}
	for _, r := range name {
		if unicode.IsControl(r) {
			return false
		}
	}
	return true
}

func classifyName(numSnim, name string) layout.Kind {
	if strings.EqualFold(name, FormName) {
		return layout.KindForm
	}
	// The scan number part must be exact (the program writes it as it
	// names the folder); the extension is matched without regard to case
	// because Windows programs are not consistent about it.
	for i := 1; i <= 2; i++ {
		want := RawName(numSnim, i)
		if len(name) == len(want) && name[:len(want)-4] == want[:len(want)-4] && hasSuffixFold(name, ".raw") {
			return layout.KindRaw
		}
	}
	for _, ext := range [...]string{".jpg", ".jpeg", ".pdf"} {
		if len(name) > len(ext) && hasSuffixFold(name, ext) {
			return layout.KindDocument
		}
	}
	return layout.KindUnknown
}

func hasSuffixFold(s, suffix string) bool {
	return len(s) >= len(suffix) && strings.EqualFold(s[len(s)-len(suffix):], suffix)
}
