//go:build linux

package spool

import "golang.org/x/sys/unix"

// unmapCached drops this process's mappings of the n bytes of the spool's
// memory map at data. The file is mapped shared and read-only: the pages
// stay in the page cache, and the next read maps them again from it (from
// the disk if the kernel evicted them meanwhile), with the same content,
// since bbolt never writes into a page an open transaction can read.
func unmapCached(data uintptr, n int) error {
	// The address is bbolt's, as a uintptr: passed to the system call as it
	// is, not turned back into a pointer.
	if _, _, e := unix.Syscall(unix.SYS_MADVISE, data, uintptr(n), unix.MADV_DONTNEED); e != 0 {
		return e
	}
	return nil
}
