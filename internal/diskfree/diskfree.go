// Package diskfree tells how many bytes the file system holding a path
// can still give to this program, so the agent and the collector can act
// before a write fails.
package diskfree

// Bytes returns the space available to an unprivileged writer on the file
// system that holds path.
func Bytes(path string) (uint64, error) { return bytesFree(path) }
