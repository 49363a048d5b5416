package tomlfile

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDecodeRefusesUnknownSettingsAndResolvesPaths(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "x.toml")
	var v struct {
		A struct {
			Path string `toml:"path"`
			Abs  string `toml:"abs"`
		} `toml:"a"`
	}
	os.WriteFile(path, []byte("[a]\npath = 'data'\nabs = '/srv/x'\n"), 0o644)
	if err := Decode(path, &v); err != nil {
		t.Fatal(err)
	}
	Resolve(path, &v.A.Path, &v.A.Abs)
	if v.A.Path != filepath.Join(dir, "data") || v.A.Abs != "/srv/x" {
		t.Fatalf("resolved: %+v", v)
	}
	os.WriteFile(path, []byte("[a]\npaht = 'data'\n"), 0o644)
	if err := Decode(path, &v); err == nil || !strings.Contains(err.Error(), "a.paht") || !strings.Contains(err.Error(), path) {
		t.Fatalf("misspelt setting: %v", err)
	}
}
