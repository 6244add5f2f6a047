package backend_test

import (
	"context"
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
	"github.com/pebblestate/pebblestate/snapshot"
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
//
// The files Pebble writes at the end of Open (the write-ahead log's, made
// even with the WAL off, and OPTIONS) are left alone too, for a bug of
// Pebble v2.1.7: Open registers the database with its compaction
// scheduler before writing them, and when that fails returns without
// unregistering, so the scheduler's periodic granter may later run a
// compaction on the half-closed database, which crashes the process. See
// docs/DESIGN.md, "Faults".
func fatalByDesign(path string) bool {
	base := filepath.Base(path)
	return strings.HasPrefix(base, "MANIFEST") || strings.HasPrefix(base, "marker.") ||
		strings.HasSuffix(base, ".log") || strings.HasPrefix(base, "OPTIONS-") || strings.HasPrefix(base, "temporary.")
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

// nthStorage wraps a checkpoint storage and fails its writes (Create, each
// Write, Commit, Delete, RemoveTemp), once armed, from the from-th on
// (0-based) with ENOSPC, until cleared.
type nthStorage struct {
	snapshot.Storage
	mu    sync.Mutex
	armed bool
	from  int
	n     int
	ops   []string
}

func (s *nthStorage) arm(from int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.armed, s.from, s.n, s.ops = true, from, 0, nil
}

func (s *nthStorage) clear() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.armed = false
	return s.n
}

// fail counts a write of name and returns the injected error if it is
// one to fail.
func (s *nthStorage) fail(op, name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.armed {
		return nil
	}
	i := s.n
	s.n++
	s.ops = append(s.ops, op+" "+name)
	if i < s.from {
		return nil
	}
	return &fs.PathError{Op: op, Path: name, Err: syscall.ENOSPC}
}

func (s *nthStorage) Create(ctx context.Context, name string) (snapshot.FileWriter, error) {
	if err := s.fail("create", name); err != nil {
		return nil, err
	}
	w, err := s.Storage.Create(ctx, name)
	if err != nil {
		return nil, err
	}
	return &nthWriter{FileWriter: w, s: s, name: name}, nil
}

func (s *nthStorage) Delete(ctx context.Context, name string) error {
	if err := s.fail("delete", name); err != nil {
		return err
	}
	return s.Storage.Delete(ctx, name)
}

func (s *nthStorage) RemoveTemp(ctx context.Context, drop func(string) bool) error {
	tr, ok := s.Storage.(snapshot.TempRemover)
	if !ok {
		return nil
	}
	if err := s.fail("remove temporary files", ""); err != nil {
		return err
	}
	return tr.RemoveTemp(ctx, drop)
}

type nthWriter struct {
	snapshot.FileWriter
	s    *nthStorage
	name string
}

func (w *nthWriter) Write(p []byte) (int, error) {
	if err := w.s.fail("write", w.name); err != nil {
		return 0, err
	}
	return w.FileWriter.Write(p)
}

func (w *nthWriter) Commit() error {
	if err := w.s.fail("commit", w.name); err != nil {
		_ = w.FileWriter.Abort()
		return err
	}
	return w.FileWriter.Commit()
}

// faultPoints picks the writes of ops to inject a fault at: every one,
// but of a run of equal consecutive ones (the writes of one file) only the
// first, the middle and the last, so that a state of many blocks does not
// multiply the runs.
func faultPoints(ops []string) []int {
	var out []int
	for i := 0; i < len(ops); {
		j := i
		for j < len(ops) && ops[j] == ops[i] {
			j++
		}
		out = append(out, i)
		if mid := (i + j - 1) / 2; mid > i {
			out = append(out, mid)
		}
		if j-1 > (i+j-1)/2 {
			out = append(out, j-1)
		}
		i = j
	}
	return out
}

// spread returns at most n of points, evenly spaced, always the first and
// the last: to bound a test's runtime where there are many.
func spread(points []int, n int) []int {
	if len(points) <= n || n < 2 {
		return points
	}
	out := make([]int, 0, n)
	for i := range n {
		out = append(out, points[i*(len(points)-1)/(n-1)])
	}
	return out
}
