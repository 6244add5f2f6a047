package restore

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync/atomic"

	"github.com/pebblestate/pebblestate/snapshot"
	"github.com/pebblestate/pebblestate/snapshot/localrecovery"
)

// Local takes the files of incremental handles from a local-recovery
// directory (see package localrecovery) before checkpoint storage, and
// counts what it took. A copy is used only if its size and CRC-32C match
// the handle; one that is missing, damaged, or cannot be linked is
// downloaded as if there were no copy. Its methods are safe for
// concurrent use; the nil *Local takes nothing.
type Local struct {
	dir   *localrecovery.Dir
	files atomic.Int64
	bytes atomic.Int64
}

// NewLocal returns a Local over the local-recovery directory dir.
func NewLocal(dir *localrecovery.Dir) *Local { return &Local{dir: dir} }

// Files returns the number of files taken from the local copy.
func (l *Local) Files() int64 { return l.files.Load() }

// Bytes returns the bytes of the files taken from the local copy.
func (l *Local) Bytes() int64 { return l.bytes.Load() }

// fetch brings the file of handle h named local in its database directory
// to dst from the local copy, and reports whether it did. It hard-links
// the copy and checks it whole, size and CRC-32C, before it says yes: a
// table could otherwise be found damaged only once the database is open
// on it, too late to download it instead. A false with a nil error means
// the file is to be downloaded (dst is then absent); an error is returned
// only for what a download would not mend (ctx done, the destination
// unwritable).
func (l *Local) fetch(ctx context.Context, h *snapshot.Handle, local string, ref snapshot.FileRef, dst string) (bool, error) {
	if l == nil {
		return false, nil
	}
	if err := ctx.Err(); err != nil {
		return false, err
	}
	src, ok := l.dir.Path(h, local)
	if !ok {
		return false, nil
	}
	fi, err := os.Lstat(src)
	if err != nil || !fi.Mode().IsRegular() {
		return false, nil // no copy: the usual case after a move to another machine
	}
	if fi.Size() != ref.Size {
		return false, nil
	}
	if err := os.Link(src, dst); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return false, err // never overwrite
		}
		return false, nil // another filesystem, say: download
	}
	if err := verify(dst, ref); err != nil {
		if rerr := os.Remove(dst); rerr != nil {
			return false, fmt.Errorf("remove the damaged local copy of %s: %w", ref.Name, rerr)
		}
		return false, nil
	}
	l.files.Add(1)
	l.bytes.Add(ref.Size)
	return true, nil
}
