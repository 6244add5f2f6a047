//go:build !unix

package storagetest

import "io/fs"

// links returns 0: the platform does not report hard-link counts here.
func links(fs.FileInfo) uint64 { return 0 }
