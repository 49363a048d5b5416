package cargoriw

import (
	"strings"
	"testing"

	"idk/agent/layout"
)

func TestClassify(t *testing.T) {
	const n = "201701040006080003"
	tests := []struct {
		rel  string
		kind layout.Kind // KindUnknown means ok == false
	}{
		{n + "/" + n + "_1.raw", layout.KindRaw},
		{n + "/" + n + "_2.raw", layout.KindRaw},
		{n + "/" + n + "_2.RAW", layout.KindRaw},
		{"70001DJ01201701020002/70001DJ01201701020002_1.raw", layout.KindRaw},
		{n + "/form.xml", layout.KindForm},
		{n + "/FORM.XML", layout.KindForm},
		{n + "/doc_001.jpg", layout.KindDocument},
		{n + "/doc_002.jpeg", layout.KindDocument},
		{n + "/doc_003.pdf", layout.KindDocument},
		{n + "/Скан паспорта.JPG", layout.KindDocument},
		{n + "/invoice.Pdf", layout.KindDocument},

		// Not scan files.
		{"", layout.KindUnknown},
		{n, layout.KindUnknown},
		{n + "/", layout.KindUnknown},
		{n + "//form.xml", layout.KindUnknown},
		{n + "/sub/form.xml", layout.KindUnknown},
		{n + "/" + n + "_3.raw", layout.KindUnknown},
		{n + "/" + n + "_0.raw", layout.KindUnknown},
		{n + "/" + n + "_12.raw", layout.KindUnknown},
		{n + "/201701040006080004_1.raw", layout.KindUnknown},
		{n + "/other.raw", layout.KindUnknown},
		{n + "/form.xml.tmp", layout.KindUnknown},
		{n + "/doc_001.jpg.TMP", layout.KindUnknown},
		{n + "/.form.xml", layout.KindUnknown},
		{n + "/~form.xml", layout.KindUnknown},
		{n + "/~$doc.pdf", layout.KindUnknown},
		{n + "/.jpg", layout.KindUnknown},
		{n + "/Thumbs.db", layout.KindUnknown},
		{n + "/readme.txt", layout.KindUnknown},
		{n + "/doc\x00.jpg", layout.KindUnknown},
		{n + "/doc\n.jpg", layout.KindUnknown},
		{n + "/doc\xff.jpg", layout.KindUnknown},
		{"form.xml", layout.KindUnknown},
		{"doc_001.jpg", layout.KindUnknown},

		// Bad folder names.
		{"2017010400060800a3/form.xml", layout.KindUnknown},
		{"2017 01/form.xml", layout.KindUnknown},
		{"СНИМОК/form.xml", layout.KindUnknown},
		{"12345678901234567890123456789012345678901/form.xml", layout.KindUnknown},
		{"1234567890123456789012345678901234567890/form.xml", layout.KindForm},

		// Traversal and foreign paths.
		{"../form.xml", layout.KindUnknown},
		{"./form.xml", layout.KindUnknown},
		{n + "/../" + n + "/form.xml", layout.KindUnknown},
		{n + "/..", layout.KindUnknown},
		{n + "/.", layout.KindUnknown},
		{"/" + n + "/form.xml", layout.KindUnknown},
		{n + `\form.xml`, layout.KindUnknown},
		{n + `/..\..\form.xml`, layout.KindUnknown},
		{`C:/form.xml`, layout.KindUnknown},
	}
	var l Layout
	for _, tt := range tests {
		f, ok := l.Classify(tt.rel)
		if want := tt.kind != layout.KindUnknown; ok != want {
			t.Errorf("Classify(%q) ok = %v, want %v", tt.rel, ok, want)
			continue
		}
		if !ok {
			if f != (layout.File{}) {
				t.Errorf("Classify(%q) = %+v with ok false, want zero File", tt.rel, f)
			}
			continue
		}
		dir, name, _ := strings.Cut(tt.rel, "/")
		if want := (layout.File{NumSnim: dir, Name: name, Kind: tt.kind}); f != want {
			t.Errorf("Classify(%q) = %+v, want %+v", tt.rel, f, want)
		}
	}
}

func TestValidNumSnim(t *testing.T) {
	for _, s := range []string{"201701040006080003", "70001DJ01201701020002", "0", "Z"} {
		if !ValidNumSnim(s) {
			t.Errorf("ValidNumSnim(%q) = false", s)
		}
	}
	for _, s := range []string{"", "abc", "2017-01", "А1", " 1", "..", "1/2"} {
		if ValidNumSnim(s) {
			t.Errorf("ValidNumSnim(%q) = true", s)
		}
	}
}

func TestRawName(t *testing.T) {
	if got := RawName("201701040006080003", 2); got != "201701040006080003_2.raw" {
		t.Errorf("RawName = %q", got)
	}
}
