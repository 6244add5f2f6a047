package backend_test

import (
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
	"sync"
	"syscall"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"

	"github.com/pebblestate/pebblestate/backend"
)

// diskFault injects filesystem errors into a backend's Pebble database
// through Pebble's errorfs: once armed, the write operations it counts,
// from the from-th on (0-based), fail with errno (ENOSPC, EIO), until it
// is cleared; with once set, only the from-th fails, as a transient fault.
//
// Writes of the MANIFEST and of Pebble's marker files, and fsyncs of
// directories, are neither counted nor failed: Pebble treats their failure
// as fatal by design (it cannot know whether a MANIFEST change reached the
// disk, and holds fsync errors unrecoverable) and stops the process, by
// its logger's Fatalf or a panic in a background goroutine. Only while a
// database opens does the store turn that panic into an error.
type diskFault struct {
	mu     sync.Mutex
	armed  bool
	from   int
	once   bool
	errno  syscall.Errno
	n      int      // writes counted since armed
	hits   int      // errors injected
	ops    []string // the writes counted, when record is set
	record bool
	dirs   map[string]bool // paths opened as directories
}

// tweak installs the fault in a backend's options.
func (f *diskFault) tweak() tweak {
	return func(o *backend.Options) {
		prev := o.Pebble
		o.Pebble = func(po *pebble.Options) {
			if prev != nil {
				prev(po)
			}
			if po.FS == nil {
				po.FS = vfs.Default
			}
			po.FS = errorfs.Wrap(po.FS, f)
		}
	}
}

// arm starts counting writes, failing them from the from-th on.
func (f *diskFault) arm(from int, once bool, errno syscall.Errno) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.armed, f.from, f.once, f.errno, f.n, f.hits, f.ops = true, from, once, errno, 0, 0, nil
}

// clear stops failing and counting; it returns how many writes were
// counted and how many failed.
func (f *diskFault) clear() (counted, failed int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.armed = false
	return f.n, f.hits
}

// fatalByDesign reports whether a failed write of path stops Pebble.
func fatalByDesign(path string) bool {
	base := filepath.Base(path)
	return strings.HasPrefix(base, "MANIFEST") || strings.HasPrefix(base, "marker.")
}

func (f *diskFault) String() string { return "diskFault" }

// MaybeError implements errorfs.Injector.
func (f *diskFault) MaybeError(op errorfs.Op) error {
	if op.Kind == errorfs.OpOpenDir {
		f.mu.Lock()
		if f.dirs == nil {
			f.dirs = make(map[string]bool)
		}
		f.dirs[filepath.Clean(op.Path)] = true
		f.mu.Unlock()
		return nil
	}
	if op.Kind.ReadOrWrite() != errorfs.OpIsWrite || fatalByDesign(op.Path) {
		return nil
	}
	// Closing a file after a failed write must work, or Pebble leaks it.
	if op.Kind == errorfs.OpFileClose {
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.armed || (op.Kind == errorfs.OpFileSync && f.dirs[filepath.Clean(op.Path)]) {
		return nil
	}
	i := f.n
	f.n++
	if f.record {
		f.ops = append(f.ops, fmt.Sprintf("op %d %s", op.Kind, op.Path))
	}
	if i < f.from || (f.once && i > f.from) {
		return nil
	}
	f.hits++
	return &fs.PathError{Op: "write", Path: op.Path, Err: f.errno}
}
