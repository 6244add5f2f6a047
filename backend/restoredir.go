package backend

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// A restore builds its database in place, in Options.Dir, and marks the
// directory while it does: restoringMarker is created, and made durable,
// before anything else is written there, and removed, durably, only once
// the database is complete and flushed. Open refuses a directory that
// holds it (ErrUnfinishedRestore), so a restore killed at any moment never
// opens as a backend; a later Restore into the directory clears what the
// killed one left and starts over.
//
// (Building in a sibling directory and renaming it into place would need
// the restored backend to be closed and opened again, and a writable
// parent directory; the marker needs neither.)
const restoringMarker = "PEBBLESTATE-RESTORING"

// markRestoring creates dir if needed and the marker in it, and syncs
// both, so that no file of the restore can be on disk without the marker.
// A dir it creates appears with the marker already in it: it is made
// under a temporary name beside dir (restoringPrefix) and renamed into
// place, so that a restore killed at once leaves no empty dir, which Open
// would take for a new backend.
func markRestoring(dir string) error {
	parent := filepath.Dir(dir)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return err
	}
	if _, err := os.Lstat(dir); errors.Is(err, fs.ErrNotExist) {
		tmp, err := os.MkdirTemp(parent, restoringPrefix(dir))
		if err != nil {
			return err
		}
		if err := writeMarker(tmp); err != nil {
			_ = os.RemoveAll(tmp)
			return err
		}
		if err := os.Rename(tmp, dir); err != nil {
			_ = os.RemoveAll(tmp)
			return err
		}
		return syncDir(parent)
	}
	if err := writeMarker(dir); err != nil {
		return err
	}
	return syncDir(parent)
}

// restoringPrefix is the prefix of the temporary name a restore creates
// its directory under.
func restoringPrefix(dir string) string { return "." + filepath.Base(dir) + ".restoring-" }

// writeMarker creates the marker in dir and syncs it and dir.
func writeMarker(dir string) error {
	f, err := os.OpenFile(filepath.Join(dir, restoringMarker), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	_, err = f.WriteString("a restore into this directory has not finished; it cannot be opened\n")
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return syncDir(dir)
}

// unmarkRestoring removes the marker and syncs dir: from then on the
// restored backend opens.
func unmarkRestoring(dir string) error {
	// The entries of the restored database first, so that none can be
	// lost while the marker's removal is not.
	if err := syncDir(dir); err != nil {
		return err
	}
	if err := os.Remove(filepath.Join(dir, restoringMarker)); err != nil {
		return err
	}
	return syncDir(dir)
}

// restoring reports whether dir holds the marker of an unfinished restore.
func restoring(dir string) (bool, error) {
	_, err := os.Lstat(filepath.Join(dir, restoringMarker))
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	}
	return false, err
}

// checkRestored fails with ErrUnfinishedRestore if dir holds the marker of
// a restore that did not finish.
func checkRestored(dir string) error {
	unfinished, err := restoring(dir)
	if err != nil {
		return fmt.Errorf("open %s: %w", dir, err)
	}
	if unfinished {
		return fmt.Errorf("open %s: %w: restore into it again, or remove it", dir, ErrUnfinishedRestore)
	}
	return nil
}

// prepareRestoreDir checks that dir can be restored into: it does not
// exist, is empty, or holds what a restore that did not finish left, which
// is removed.
func prepareRestoreDir(dir string) error {
	// The temporary directories of restores killed before they renamed
	// theirs into place hold nothing but a marker.
	if siblings, err := os.ReadDir(filepath.Dir(dir)); err == nil {
		for _, e := range siblings {
			if e.IsDir() && strings.HasPrefix(e.Name(), restoringPrefix(dir)) {
				_ = os.RemoveAll(filepath.Join(filepath.Dir(dir), e.Name()))
			}
		}
	}
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("restore into %s: %w", dir, err)
	}
	if len(entries) == 0 {
		return nil
	}
	unfinished, err := restoring(dir)
	if err != nil {
		return fmt.Errorf("restore into %s: %w", dir, err)
	}
	if !unfinished {
		return fmt.Errorf("restore into %s: %w: the directory is not empty", dir, ErrInvalidArgument)
	}
	// Remove the marker last: until then the directory stays refused.
	for _, e := range entries {
		if e.Name() == restoringMarker {
			continue
		}
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return fmt.Errorf("restore into %s: remove what an unfinished restore left: %w", dir, err)
		}
	}
	return nil
}

// syncDir makes the entries of dir durable.
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
