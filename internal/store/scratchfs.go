package store

import (
	"path/filepath"
	"strings"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// scratchFS is the filesystem the store gives Pebble: the real one, but
// files and directories under the native-checkpoint directory are never
// fsynced. A native checkpoint there is scratch: it is uploaded (and the
// storage syncs what it writes) and then deleted, and a crash before the
// upload completes makes it debris anyway. Its SSTs are hard links to the
// database's own, already synced; the syncs skipped are those of the
// copied MANIFEST, OPTIONS, WAL and markers and of the directories, which
// dominated the synchronous part of incremental snapshots.
//
// It also paces Pebble's retries of table writes that keep failing (see
// pace).
type scratchFS struct {
	vfs.FS
	dir  string // the native-checkpoint directory
	pace *pace
}

func (fs scratchFS) scratch(name string) bool {
	name = filepath.Clean(name)
	return name == fs.dir || strings.HasPrefix(name, fs.dir+string(filepath.Separator))
}

func (fs scratchFS) wrap(name string, f vfs.File, err error) (vfs.File, error) {
	switch {
	case err != nil:
		return f, err
	case fs.scratch(name):
		return noSyncFile{f}, nil
	case fs.pace != nil && isTable(name):
		return pacedFile{File: f, p: fs.pace}, nil
	}
	return f, nil
}

func (fs scratchFS) Create(name string, category vfs.DiskWriteCategory) (vfs.File, error) {
	paced := fs.pace != nil && isTable(name) && !fs.scratch(name)
	if paced {
		fs.pace.wait()
	}
	f, err := fs.FS.Create(name, category)
	if err != nil && paced {
		fs.pace.failed()
	}
	return fs.wrap(name, f, err)
}

func (fs scratchFS) OpenReadWrite(name string, category vfs.DiskWriteCategory, opts ...vfs.OpenOption) (vfs.File, error) {
	f, err := fs.FS.OpenReadWrite(name, category, opts...)
	return fs.wrap(name, f, err)
}

func (fs scratchFS) OpenDir(name string) (vfs.File, error) {
	f, err := fs.FS.OpenDir(name)
	return fs.wrap(name, f, err)
}

func (fs scratchFS) ReuseForWrite(oldname, newname string, category vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := fs.FS.ReuseForWrite(oldname, newname, category)
	return fs.wrap(newname, f, err)
}

// noSyncFile is a file whose syncs do nothing.
type noSyncFile struct{ vfs.File }

func (noSyncFile) Sync() error                { return nil }
func (noSyncFile) SyncData() error            { return nil }
func (noSyncFile) SyncTo(int64) (bool, error) { return true, nil }
