package protocol

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestCheckFileName(t *testing.T) {
	bad := []string{
		"", ".", "..", "../x", "a/b", `a\b`, ".hidden", "a:b", "a\x01b", "a\x7fb", "a\u0085b",
		"evil\u202egpj.exe", "a\u2066b", "CON", "nul.txt", "COM1.raw", "lpt9", "trailing.", "trailing ",
		"e\u0301.raw", // NFD: the NFC twin is "é.raw"
		"bad\xffutf8", strings.Repeat("a", MaxNameBytes+1),
	}
	for _, s := range bad {
		if CheckFileName(s) == nil {
			t.Errorf("CheckFileName(%q) accepted", s)
		}
	}
	good := []string{"201701040006080003_1.raw", "doc_001.jpg", "form.xml", "100%.pdf", "Акт №5.pdf", "é.raw", "CONTRACT.pdf", "COM.txt", strings.Repeat("a", MaxNameBytes)}
	for _, s := range good {
		if err := CheckFileName(s); err != nil {
			t.Errorf("CheckFileName(%q): %v", s, err)
		}
	}
}

func TestSafeName(t *testing.T) {
	for in, want := range map[string]string{
		"doc_001.jpg":      "doc_001.jpg",
		"a:b.raw":          "a%3Ab.raw",
		"100%:1.pdf":       "100%25%3A1.pdf",
		".hidden":          "%2Ehidden",
		"CON.txt":          "%43ON.txt",
		"end.":             "end%2E",
		"e\u0301.raw":      "é.raw",
		"evil\u202eexe.js": "evil%E2%80%AEexe.js",
		"":                 "%00",
		"bad\xffutf8":      "bad%FFutf8",
	} {
		if got := SafeName(in); got != want {
			t.Errorf("SafeName(%q) = %q, want %q", in, got, want)
		}
	}
	long1, long2 := strings.Repeat("x", 300)+"1.raw", strings.Repeat("x", 300)+"2.raw"
	a, b := SafeName(long1), SafeName(long2)
	if a == b || !strings.HasSuffix(a, ".raw") || len(a) > MaxNameBytes {
		t.Errorf("long names: %q, %q", a, b)
	}
}

// Whatever a scanner's folder holds, SafeName gives a name the collector
// stores, and leaves a name it already stores alone.
func FuzzSafeName(f *testing.F) {
	for _, s := range []string{"a.raw", "a:b", "CON", strings.Repeat("я", 150) + ".raw", "x\u202e", "%", " . "} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		safe := SafeName(name)
		if err := CheckFileName(safe); err != nil {
			t.Fatalf("SafeName(%q) = %q: %v", name, safe, err)
		}
		if CheckFileName(name) == nil && safe != name {
			t.Fatalf("SafeName changed the valid name %q to %q", name, safe)
		}
		if SafeName(safe) != safe || !utf8.ValidString(safe) {
			t.Fatalf("SafeName(%q) = %q is not stable", name, safe)
		}
	})
}
