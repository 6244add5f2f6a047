package snapshot

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// Local is Storage in a directory of the local filesystem.
//
// Every operation goes through an os.Root opened on the directory, after
// the name passed CheckName: nothing outside the directory is read,
// created or deleted, even through a symbolic link inside it. Files are
// written to temporary names, fsynced and hard-linked to their final name
// (which fails if the name exists: a committed file is never replaced),
// and the directory is synced, so a crash leaves either the whole file or
// only a temporary one, which RemoveTemp and Sweep remove. The directory
// must be on a filesystem with hard links (any Unix filesystem): without
// them Commit fails rather than fall back to a rename that could replace a
// committed file.
//
// The zero Local has no directory: every method fails. Use NewLocal.
type Local struct {
	root string
}

// tmpSuffix marks files being written. Names ending with it are reserved.
const tmpSuffix = ".tmp"

// errNoRoot is returned by every method of a Local not made by NewLocal.
var errNoRoot = errors.New("snapshot.Local has no directory: create it with snapshot.NewLocal")

// NewLocal returns storage rooted at dir, creating it if needed. A
// symbolic link is resolved once, here: the storage lives in its target,
// whatever the link points to later.
func NewLocal(dir string) (*Local, error) {
	if dir == "" {
		return nil, errors.New("checkpoint storage: empty directory name")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	real, err := filepath.EvalSymlinks(dir)
	if err == nil {
		real, err = filepath.Abs(real)
	}
	if err != nil {
		return nil, err
	}
	return &Local{root: real}, nil
}

// Root returns the directory the storage lives in, with symbolic links
// resolved.
func (l *Local) Root() string {
	if l == nil {
		return ""
	}
	return l.root
}

// Path returns the local path of a file name. It does not check the name:
// use LocalPath for a name that comes from metadata.
func (l *Local) Path(name string) string { return filepath.Join(l.root, filepath.FromSlash(name)) }

// LocalPath returns the local path of a file name, or an error if the
// name is not safe (CheckName) or the storage has no directory. A caller
// that reaches files without Local's methods (as a restore does to
// hard-link them) must use it.
func (l *Local) LocalPath(name string) (string, error) {
	if err := l.check(name); err != nil {
		return "", err
	}
	return l.Path(name), nil
}

// check refuses a zero Local and unsafe names.
func (l *Local) check(name string) error {
	if l == nil || l.root == "" {
		return errNoRoot
	}
	if err := CheckName(name); err != nil {
		return err
	}
	if strings.HasSuffix(name, tmpSuffix) {
		return &nameError{name: name, why: "names ending in " + tmpSuffix + " are reserved for temporary files"}
	}
	return nil
}

// open opens the root directory.
func (l *Local) open() (*os.Root, error) {
	if l == nil || l.root == "" {
		return nil, errNoRoot
	}
	return os.OpenRoot(l.root)
}

// pathErr reports err of op on the file name, naming its local path once.
func (l *Local) pathErr(op, name string, err error) error {
	var pe *fs.PathError
	var le *os.LinkError
	switch {
	case errors.As(err, &pe):
		err = pe.Err
	case errors.As(err, &le):
		err = le.Err
	}
	return &fs.PathError{Op: op, Path: l.Path(name), Err: err}
}

// Create implements Storage.
func (l *Local) Create(ctx context.Context, name string) (FileWriter, error) {
	if err := l.check(name); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(l.root, 0o755); err != nil {
		return nil, err
	}
	r, err := l.open()
	if err != nil {
		return nil, err
	}
	// Fail at once on a name that exists; Commit checks again, atomically.
	if _, err := r.Lstat(name); err == nil {
		r.Close()
		return nil, l.pathErr("create", name, fs.ErrExist)
	} else if !errors.Is(err, fs.ErrNotExist) {
		r.Close()
		return nil, l.pathErr("create", name, err)
	}
	var rnd [6]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		r.Close()
		return nil, err
	}
	tmp := name + "." + hex.EncodeToString(rnd[:]) + tmpSuffix
	// A concurrent Delete may remove the directory between MkdirAll and
	// OpenFile, when it leaves it empty, and a concurrent MkdirAll of the
	// same directory may make this one fail: make it again and retry.
	for attempt := 0; ; attempt++ {
		var err error
		if dir := path.Dir(name); dir != "." {
			err = r.MkdirAll(dir, 0o755)
			if errors.Is(err, fs.ErrExist) && attempt < 10 {
				continue
			}
		}
		if err == nil {
			var f *os.File
			if f, err = r.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644); err == nil {
				return &localWriter{l: l, r: r, f: f, tmp: tmp, name: name}, nil
			}
		}
		if !errors.Is(err, fs.ErrNotExist) || attempt == 10 {
			r.Close()
			return nil, l.pathErr("create", name, err)
		}
	}
}

type localWriter struct {
	l         *Local
	r         *os.Root
	f         *os.File
	tmp, name string
	done      bool
}

func (w *localWriter) Write(p []byte) (int, error) {
	if w.done {
		return 0, doneErr(w.l.Path(w.name))
	}
	n, err := w.f.Write(p)
	if err != nil {
		err = w.l.pathErr("write", w.name, err)
	}
	return n, err
}

// Commit makes the file durable (fsync), links it to its name, which
// fails if the name exists, removes the temporary name and syncs the
// directory.
func (w *localWriter) Commit() error {
	if w.done {
		return doneErr(w.l.Path(w.name))
	}
	w.done = true
	defer w.r.Close()
	err := w.f.Sync()
	if cerr := w.f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = w.r.Link(w.tmp, w.name)
	}
	// Linked or not, the temporary name goes: a committed file lives on
	// under its own name.
	if rerr := w.r.Remove(w.tmp); rerr != nil && err == nil && !errors.Is(rerr, fs.ErrNotExist) {
		err = rerr
	}
	if err == nil {
		err = syncDir(w.r, path.Dir(w.name))
	}
	if err != nil {
		return w.l.pathErr("commit", w.name, err)
	}
	return nil
}

func (w *localWriter) Abort() error {
	if w.done {
		return nil
	}
	w.done = true
	defer w.r.Close()
	_ = w.f.Close()
	if err := w.r.Remove(w.tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return w.l.pathErr("abort", w.name, err)
	}
	return nil
}

func syncDir(r *os.Root, dir string) error {
	d, err := r.Open(dir)
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
	if err := l.check(name); err != nil {
		return nil, err
	}
	r, err := l.open()
	if err != nil {
		return nil, l.pathErr("open", name, err)
	}
	defer r.Close()
	f, err := r.Open(name)
	if err != nil {
		return nil, l.pathErr("open", name, err)
	}
	st, err := f.Stat()
	if err == nil && !st.Mode().IsRegular() {
		err = errors.New("not a regular file")
	}
	if err != nil {
		f.Close()
		return nil, l.pathErr("open", name, err)
	}
	return &localFile{File: f, size: st.Size()}, nil
}

type localFile struct {
	*os.File
	size int64
}

func (f *localFile) Size() int64 { return f.size }

// checkPrefix refuses a List prefix that no safe name can start with.
func (l *Local) checkPrefix(prefix string) error {
	if l == nil || l.root == "" {
		return errNoRoot
	}
	if p := strings.TrimSuffix(prefix, "/"); prefix != "" && (p == "" || nameProblem(p) != "") {
		return &nameError{name: prefix, why: "not a prefix of safe names"}
	}
	return nil
}

// List implements Storage. Temporary files are not listed, and only the
// directories that can hold names with the prefix are read. A missing
// root lists nothing.
func (l *Local) List(ctx context.Context, prefix string) ([]string, error) {
	if err := l.checkPrefix(prefix); err != nil {
		return nil, err
	}
	r, err := l.open()
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ctx.Err()
	}
	if err != nil {
		return nil, err
	}
	defer r.Close()
	var names []string
	err = fs.WalkDir(r.FS(), ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if d.IsDir() {
			// Descend only where names with the prefix can be: listing
			// "chk-" must not walk every file of shared/.
			if name != "." && !mayHold(name, prefix) {
				return fs.SkipDir
			}
			return ctx.Err()
		}
		if !strings.HasSuffix(name, tmpSuffix) && strings.HasPrefix(name, prefix) {
			names = append(names, name)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list %s in %s: %w", prefix, l.root, err)
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
	if err := l.check(name); err != nil {
		return err
	}
	r, err := l.open()
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return l.pathErr("delete", name, err)
	}
	defer r.Close()
	if err := r.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return l.pathErr("delete", name, err)
	}
	removeEmptyParents(r, name)
	return nil
}

// removeEmptyParents removes the directories of name that are empty, up
// to the root.
func removeEmptyParents(r *os.Root, name string) {
	for dir := path.Dir(name); dir != "."; dir = path.Dir(dir) {
		if r.Remove(dir) != nil { // only succeeds if empty
			return
		}
	}
}

// finalName returns the name a temporary file would have been committed
// under: p without its ".<random>.tmp" suffix.
func finalName(p string) string {
	p = strings.TrimSuffix(p, tmpSuffix)
	if i := strings.LastIndexByte(p, '.'); i >= 0 && len(p)-i-1 == 12 {
		if _, err := hex.DecodeString(p[i+1:]); err == nil {
			return p[:i]
		}
	}
	return p
}

// RemoveTemp implements TempRemover.
func (l *Local) RemoveTemp(ctx context.Context, drop func(name string) bool) error {
	r, err := l.open()
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer r.Close()
	var dirs []string
	err = fs.WalkDir(r.FS(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			// A writer removed the directory since it was listed (an
			// abort deletes its files and their directory): nothing of it
			// is left to remove.
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if d.IsDir() {
			if p != "." {
				dirs = append(dirs, p)
			}
			return nil
		}
		if strings.HasSuffix(p, tmpSuffix) && drop(finalName(p)) {
			if err := r.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
		}
		return nil
	})
	for i := len(dirs) - 1; i >= 0; i-- {
		if drop(dirs[i] + "/") {
			_ = r.Remove(dirs[i]) // only succeeds if empty
		}
	}
	if err != nil {
		return fmt.Errorf("remove temporary files in %s: %w", l.root, err)
	}
	return nil
}

// Sweep removes every temporary file (left by writers that never
// committed: a crash mid-write) and every empty directory. No writer may
// be running: its temporary file would go.
func (l *Local) Sweep() error {
	return l.RemoveTemp(context.Background(), func(string) bool { return true })
}
