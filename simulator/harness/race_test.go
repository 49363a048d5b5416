//go:build race

package harness

// The daemons under test are built with the race detector when the tests are.
const raceEnabled = true
