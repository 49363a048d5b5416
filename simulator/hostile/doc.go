// Package hostile is the hostile-client test suite of issue 8: it attacks
// the real idk-collector process, started through simulator/harness, with
// real certificates issued by the collector's own pki command and the
// project's protocol spoken by hand (package protocol), the way someone
// holding one stolen agent certificate, or none, would. Each test shows
// one defence of docs/security.md holding: it asserts the safe outcome
// the contract promises, not how the collector achieves it.
//
// The programs are built without the race detector, so that the memory
// figures the tests print are the collector's own.
package hostile
