//go:build unix

package storagetest

import (
	"io/fs"
	"syscall"
)

// links returns fi's hard-link count.
func links(fi fs.FileInfo) uint64 {
	if sys, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(sys.Nlink)
	}
	return 0
}
