// Package testenv decides what a test does when its environment lacks
// something it needs (a program, root, a pseudo-terminal): under CI
// (CI=true) that is a failure, because CI is meant to provide it and a
// skipped test there is coverage silently lost; elsewhere the test is
// skipped, so a developer's machine need not have everything.
package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"testing"
)

// CI reports whether the tests run under CI, as CI=true says.
func CI() bool { return os.Getenv("CI") == "true" }

// Require ends the test unless ok: under CI with a failure, elsewhere with
// a skip. why says what is missing and, where it helps, how to get it.
func Require(t testing.TB, ok bool, why string) {
	t.Helper()
	if ok {
		return
	}
	if CI() {
		t.Fatalf("%s (CI=true: a missing requirement fails the run)", why)
		return // for a testing.TB whose Fatalf returns
	}
	t.Skip(why)
}

// RequireTool returns the path of the program name, looked up in PATH, or
// ends the test as Require does, naming the Debian package that provides
// the program.
func RequireTool(t testing.TB, name, debianPkg string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	Require(t, err == nil, fmt.Sprintf("%s not found in PATH: install the Debian package %s (apt-get install %s; .ci/run does)", name, debianPkg, debianPkg))
	return path
}
