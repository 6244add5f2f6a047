package snapshot

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// ErrNotExist is returned (wrapped) for a file that is not in storage.
var ErrNotExist = fs.ErrNotExist

// Storage holds checkpoint files under slash-separated names relative to
// its root, such as "chk-7/_metadata". Implementations must be safe for
// concurrent use.
type Storage interface {
	// Create starts writing the named file. Nothing is visible under the
	// name until the returned writer's Commit succeeds; Abort, or a failed
	// Commit, leaves nothing behind. An existing file of that name is
	// replaced on Commit.
	Create(ctx context.Context, name string) (FileWriter, error)
	// Open opens the named file for reading.
	Open(ctx context.Context, name string) (File, error)
	// List returns the names of the committed files whose names start with
	// prefix, sorted.
	List(ctx context.Context, prefix string) ([]string, error)
	// Delete removes the named file. Deleting a missing file is not an
	// error.
	Delete(ctx context.Context, name string) error
}

// FileWriter streams a new file into storage.
type FileWriter interface {
	io.Writer
	// Commit makes the file durable and visible under its name, atomically.
	Commit() error
	// Abort discards the file. It is safe to call after Commit, when it
	// does nothing.
	Abort() error
}

// File is a committed file opened for reading.
type File interface {
	io.ReaderAt
	io.Closer
	// Size returns the file's size in bytes.
	Size() int64
}

// Local is Storage in a directory of the local filesystem. Files are
// written to temporary names and renamed into place after an fsync, and the
// directory is synced, so a crash leaves either the whole file or only a
// temporary one, which Sweep removes.
type Local struct {
	root string
}

// tmpSuffix marks files being written; Sweep removes them.
const tmpSuffix = ".tmp"

// NewLocal returns storage rooted at dir, creating it if needed.
func NewLocal(dir string) (*Local, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("snapshot: create %s: %w", dir, err)
	}
	return &Local{root: dir}, nil
}

// Root returns the directory the storage lives in.
func (l *Local) Root() string { return l.root }

// Path returns the local path of a file name.
func (l *Local) Path(name string) string { return filepath.Join(l.root, filepath.FromSlash(name)) }

func checkName(name string) error {
	if name == "" || path.IsAbs(name) || path.Clean(name) != name || strings.HasPrefix(name, "../") || name == ".." {
		return fmt.Errorf("snapshot: bad file name %q", name)
	}
	return nil
}

// Create implements Storage.
func (l *Local) Create(ctx context.Context, name string) (FileWriter, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	final := l.Path(name)
	var r [6]byte
	if _, err := rand.Read(r[:]); err != nil {
		return nil, err
	}
	tmp := final + "." + hex.EncodeToString(r[:]) + tmpSuffix
	// A concurrent Delete may remove the directory between MkdirAll and
	// OpenFile, when it leaves it empty: make it again and retry.
	for attempt := 0; ; attempt++ {
		if err := os.MkdirAll(filepath.Dir(final), 0o755); err != nil {
			return nil, fmt.Errorf("snapshot: create %s: %w", name, err)
		}
		f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if err == nil {
			return &localWriter{f: f, tmp: tmp, final: final}, nil
		}
		if !errors.Is(err, fs.ErrNotExist) || attempt == 10 {
			return nil, fmt.Errorf("snapshot: create %s: %w", name, err)
		}
	}
}

type localWriter struct {
	f          *os.File
	tmp, final string
	done       bool
}

func (w *localWriter) Write(p []byte) (int, error) { return w.f.Write(p) }

func (w *localWriter) Commit() error {
	if w.done {
		return errors.New("snapshot: file already committed or aborted")
	}
	w.done = true
	err := w.f.Sync()
	if cerr := w.f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(w.tmp, w.final)
	}
	if err == nil {
		err = syncDir(filepath.Dir(w.final))
	}
	if err != nil {
		_ = os.Remove(w.tmp)
		return fmt.Errorf("snapshot: commit %s: %w", w.final, err)
	}
	return nil
}

func (w *localWriter) Abort() error {
	if w.done {
		return nil
	}
	w.done = true
	_ = w.f.Close()
	if err := os.Remove(w.tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// Open implements Storage.
func (l *Local) Open(ctx context.Context, name string) (File, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	f, err := os.Open(l.Path(name))
	if err != nil {
		return nil, fmt.Errorf("snapshot: open %s: %w", name, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("snapshot: open %s: %w", name, err)
	}
	return &localFile{File: f, size: st.Size()}, nil
}

type localFile struct {
	*os.File
	size int64
}

func (f *localFile) Size() int64 { return f.size }

// List implements Storage. Temporary files are not listed, and only the
// directories that can hold names with the prefix are read.
func (l *Local) List(ctx context.Context, prefix string) ([]string, error) {
	var names []string
	err := filepath.WalkDir(l.root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		rel, err := filepath.Rel(l.root, p)
		if err != nil {
			return err
		}
		name := filepath.ToSlash(rel)
		if d.IsDir() {
			// Descend only where names with the prefix can be: listing
			// "chk-" must not walk every file of shared/.
			if name != "." && !mayHold(name, prefix) {
				return filepath.SkipDir
			}
			return nil
		}
		if strings.HasSuffix(p, tmpSuffix) {
			return nil
		}
		if strings.HasPrefix(name, prefix) {
			names = append(names, name)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("snapshot: list %s: %w", prefix, err)
	}
	sort.Strings(names)
	return names, ctx.Err()
}

// mayHold reports whether directory dir (slash-separated, relative to the
// root) can hold a name that starts with prefix.
func mayHold(dir, prefix string) bool {
	dir += "/"
	return strings.HasPrefix(dir, prefix) || strings.HasPrefix(prefix, dir)
}

// Delete implements Storage. It also removes the directories it leaves
// empty, up to the root.
func (l *Local) Delete(ctx context.Context, name string) error {
	if err := checkName(name); err != nil {
		return err
	}
	p := l.Path(name)
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("snapshot: delete %s: %w", name, err)
	}
	root := filepath.Clean(l.root)
	for dir := filepath.Dir(p); dir != root && len(dir) > len(root); dir = filepath.Dir(dir) {
		if os.Remove(dir) != nil { // only succeeds if empty
			break
		}
	}
	return nil
}

// Sweep removes temporary files left by writers that never committed (a
// crash mid-write), and empty checkpoint directories.
func (l *Local) Sweep() error {
	var dirs []string
	err := filepath.WalkDir(l.root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if p != l.root {
				dirs = append(dirs, p)
			}
			return nil
		}
		if strings.HasSuffix(p, tmpSuffix) {
			return os.Remove(p)
		}
		return nil
	})
	for i := len(dirs) - 1; i >= 0; i-- {
		_ = os.Remove(dirs[i]) // only succeeds if empty
	}
	if err != nil {
		return fmt.Errorf("snapshot: sweep %s: %w", l.root, err)
	}
	return nil
}
