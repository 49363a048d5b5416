//go:build !linux

package spool

// unmapCached does nothing here: the resident-set accounting it helps is
// Linux's (see unmap_linux.go), and Windows trims a process's working set
// under memory pressure by itself.
func unmapCached(uintptr, int) error { return nil }
