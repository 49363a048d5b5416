package testenv

import (
	"fmt"
	"strings"
	"testing"
)

// recorder is a testing.TB that notes how the test would have ended
// instead of ending it.
type recorder struct {
	testing.TB
	ended string // "fatal" or "skip"
	msg   string
}

func (r *recorder) Helper() {}
func (r *recorder) Fatalf(format string, args ...any) {
	r.ended, r.msg = "fatal", fmt.Sprintf(format, args...)
}
func (r *recorder) Skip(args ...any) { r.ended, r.msg = "skip", fmt.Sprint(args...) }

func TestRequire(t *testing.T) {
	for _, tc := range []struct {
		ci, ok bool
		want   string
	}{
		{false, true, ""}, {true, true, ""}, {false, false, "skip"}, {true, false, "fatal"},
	} {
		if tc.ci {
			t.Setenv("CI", "true")
		} else {
			t.Setenv("CI", "")
		}
		r := &recorder{TB: t}
		Require(r, tc.ok, "no widget")
		if r.ended != tc.want {
			t.Errorf("CI=%v ok=%v: ended %q, want %q", tc.ci, tc.ok, r.ended, tc.want)
		}
	}
}

func TestRequireToolNamesThePackage(t *testing.T) {
	t.Setenv("CI", "true")
	t.Setenv("PATH", t.TempDir())
	r := &recorder{TB: t}
	RequireTool(r, "promtool", "prometheus")
	if r.ended != "fatal" || !strings.Contains(r.msg, "promtool") || !strings.Contains(r.msg, "prometheus") {
		t.Errorf("ended %q with %q: want a failure naming promtool and prometheus", r.ended, r.msg)
	}
}
