package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckCommand(t *testing.T) {
	// The full checks are tested in agent/check; here, the wiring: a
	// broken configuration is reported as a failure with exit code 1.
	path := filepath.Join(t.TempDir(), "agent.toml")
	if err := os.WriteFile(path, []byte("[device]\nnum_idk = \"850591\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	if code := checkCommand([]string{"-config", path}, &out, &errOut); code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	if !strings.HasPrefix(out.String(), "FAIL") || !strings.Contains(out.String(), "configuration is not valid") {
		t.Errorf("output %q, want a FAIL line for the configuration", out.String())
	}
	if code := checkCommand([]string{"extra"}, &out, &errOut); code != 2 {
		t.Errorf("unexpected argument: exit %d, want 2", code)
	}
}
