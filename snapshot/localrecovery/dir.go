package localrecovery

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/pebblestate/pebblestate/snapshot"
)

// Dir is a local-recovery directory: the root under which backends keep
// the local copies of their incremental checkpoints, one directory per
// instance and checkpoint (see the package documentation for the layout).
// Its methods are safe for concurrent use; they hold no state but the
// root's path.
type Dir struct {
	root string
}

// New returns the local-recovery directory at root. Nothing is created
// until a copy is kept.
func New(root string) *Dir { return &Dir{root: filepath.Clean(root)} }

// Root returns the directory's path.
func (d *Dir) Root() string { return d.root }

// instanceDir returns the directory of an instance's copies, and false if
// the id cannot name one (ids come from checkpoint metadata, which may be
// hostile: only ids that are one plain path element are used).
func (d *Dir) instanceDir(instanceID string) (string, bool) {
	if !safeID.MatchString(instanceID) {
		return "", false
	}
	return filepath.Join(d.root, instanceID), true
}

// safeID matches the instance ids a local copy can be kept for: the 32
// hex digits meta.NewInstanceID draws, and more (older metadata), but
// never a separator or a dot-only name.
var safeID = regexp.MustCompile(`^[A-Za-z0-9_-]{1,128}$`)

// Keep makes the local copy of checkpoint checkpointID of instance
// instanceID from from, the native checkpoint the snapshot uploaded: every
// regular file in it is hard-linked (no data is copied or synced: the
// files are the database's own, already durable, and a copy lost in a
// crash is only downloaded again). The copy appears at once or not at all:
// it is built under a temporary name beside its place and renamed. It
// returns false, and keeps nothing, if a copy of that checkpoint of that
// instance is there already (another writer of the same instance, which a
// restore at the same key groups makes possible, kept it first).
func (d *Dir) Keep(instanceID string, checkpointID int64, from string) (bool, error) {
	idir, ok := d.instanceDir(instanceID)
	if !ok {
		return false, fmt.Errorf("local recovery: instance id %q cannot name a directory", instanceID)
	}
	if err := os.MkdirAll(idir, 0o755); err != nil {
		return false, fmt.Errorf("local recovery: %w", err)
	}
	dst := filepath.Join(idir, snapshot.Dir(checkpointID))
	if _, err := os.Lstat(dst); err == nil {
		return false, nil
	}
	tmp, err := os.MkdirTemp(idir, snapshot.Dir(checkpointID)+tmpInfix)
	if err != nil {
		return false, fmt.Errorf("local recovery: %w", err)
	}
	entries, err := os.ReadDir(from)
	if err != nil {
		_ = os.RemoveAll(tmp)
		return false, fmt.Errorf("local recovery: %w", err)
	}
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		if err := os.Link(filepath.Join(from, e.Name()), filepath.Join(tmp, e.Name())); err != nil {
			_ = os.RemoveAll(tmp)
			return false, fmt.Errorf("local recovery: keep checkpoint %d: %w", checkpointID, err)
		}
	}
	if err := os.Rename(tmp, dst); err != nil {
		_ = os.RemoveAll(tmp)
		if _, serr := os.Lstat(dst); serr == nil {
			return false, nil // another writer's copy won the name
		}
		return false, fmt.Errorf("local recovery: keep checkpoint %d: %w", checkpointID, err)
	}
	return true, nil
}

// tmpInfix separates a checkpoint's directory name from the random part
// of the temporary name its copy is built under.
const tmpInfix = ".tmp-"

// Path returns where the local copy of a file of incremental handle h
// would be, given the file's name in the handle's database directory
// (a shared file's LocalName, or a private file's base name), and false
// if h's instance id or the name cannot name a local file. The file may
// be missing or damaged: check it against the handle before use.
func (d *Dir) Path(h *snapshot.Handle, localName string) (string, bool) {
	idir, ok := d.instanceDir(h.InstanceID)
	if !ok || h.CheckpointID < 0 || localName == "" || localName == "." || localName == ".." ||
		strings.ContainsAny(localName, `/\`) {
		return "", false
	}
	return filepath.Join(idir, snapshot.Dir(h.CheckpointID), localName), true
}

// Drop removes the copies of instance instanceID's checkpoints older than
// below, and what unfinished Keeps of them left. Copies of below and
// newer stay: a checkpoint in flight may be kept meanwhile. A missing
// instance directory is not an error.
func (d *Dir) Drop(instanceID string, below int64) error {
	idir, ok := d.instanceDir(instanceID)
	if !ok {
		return nil
	}
	entries, err := os.ReadDir(idir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("local recovery: %w", err)
	}
	var errs []error
	left := 0
	for _, e := range entries {
		id, ok := checkpointOf(e.Name())
		if !ok || id >= below {
			left++
			continue
		}
		if err := os.RemoveAll(filepath.Join(idir, e.Name())); err != nil {
			errs = append(errs, err)
			left++
		}
	}
	if left == 0 {
		// Another writer may be creating a copy in it right now: then
		// the removal fails, harmlessly, or its Keep fails and is retried
		// at its next checkpoint.
		_ = os.Remove(idir)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("local recovery: %w", err)
	}
	return nil
}

// Remove removes the copy of one checkpoint of an instance, kept by Keep
// (which returned true): the checkpoint was aborted.
func (d *Dir) Remove(instanceID string, checkpointID int64) error {
	idir, ok := d.instanceDir(instanceID)
	if !ok {
		return nil
	}
	if err := os.RemoveAll(filepath.Join(idir, snapshot.Dir(checkpointID))); err != nil {
		return fmt.Errorf("local recovery: %w", err)
	}
	return nil
}

// checkpointOf returns the checkpoint id a copy's directory, finished or
// not, is named after.
func checkpointOf(name string) (int64, bool) {
	rest, ok := strings.CutPrefix(name, "chk-")
	if !ok {
		return 0, false
	}
	if i := strings.Index(rest, tmpInfix); i >= 0 {
		rest = rest[:i]
	}
	id, err := strconv.ParseInt(rest, 10, 64)
	if err != nil || id < 0 || strconv.FormatInt(id, 10) != rest {
		return 0, false
	}
	return id, true
}
