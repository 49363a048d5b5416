package logging

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestNew(t *testing.T) {
	var buf bytes.Buffer
	log := New(&buf, Config{Level: "warn", Format: "json"})
	log.Info("dropped")
	log.Warn("kept", "n", 1)
	var rec map[string]any
	if err := json.Unmarshal(buf.Bytes(), &rec); err != nil {
		t.Fatalf("want one JSON record, got %q: %v", buf.String(), err)
	}
	if rec["msg"] != "kept" || rec["level"] != "WARN" {
		t.Errorf("record %v, want the warning only", rec)
	}

	buf.Reset()
	log = New(&buf, Config{Level: "bogus", Format: "text"})
	log.Debug("dropped")
	log.Info("kept")
	if got := buf.String(); !strings.HasPrefix(got, "time=") || !strings.Contains(got, "msg=kept") || strings.Contains(got, "dropped") {
		t.Errorf("text log at the fallback level info: got %q", got)
	}
}
