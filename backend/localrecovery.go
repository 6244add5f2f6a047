package backend

import (
	"fmt"
	"maps"
	"path/filepath"
	"strings"
	"sync"

	"github.com/pebblestate/pebblestate/restore"
	"github.com/pebblestate/pebblestate/snapshot"
	"github.com/pebblestate/pebblestate/snapshot/localrecovery"
)

// LocalRecovery says whether a backend keeps local copies of its
// incremental checkpoints and restores from them (see
// Options.LocalRecovery).
type LocalRecovery int

const (
	// LocalRecoveryAuto, the default, is LocalRecoveryOn for checkpoint
	// storage other than snapshot.Local (S3, say), and LocalRecoveryOff
	// for snapshot.Local, whose files a restore hard-links from the
	// checkpoint root anyway.
	LocalRecoveryAuto LocalRecovery = iota
	// LocalRecoveryOn keeps and uses local copies whatever the storage.
	LocalRecoveryOn
	// LocalRecoveryOff never keeps or uses them.
	LocalRecoveryOff
)

// String returns "Auto", "On" or "Off".
func (l LocalRecovery) String() string {
	switch l {
	case LocalRecoveryAuto:
		return "Auto"
	case LocalRecoveryOn:
		return "On"
	case LocalRecoveryOff:
		return "Off"
	}
	return fmt.Sprintf("LocalRecovery(%d)", int(l))
}

// defaultLocalRecoveryDir is Options.LocalRecoveryDir's default for a
// backend in dir.
func defaultLocalRecoveryDir(dir string) string {
	return filepath.Join(filepath.Dir(filepath.Clean(dir)), "local-recovery")
}

// localRecoveryDir returns the local-recovery directory to use with
// checkpoint storage st, or nil if local recovery is off for it.
func (o *Options) localRecoveryDir(st snapshot.Storage) *localrecovery.Dir {
	switch o.LocalRecovery {
	case LocalRecoveryOff:
		return nil
	case LocalRecoveryAuto:
		if _, ok := st.(*snapshot.Local); ok {
			return nil
		}
	}
	return localrecovery.New(o.LocalRecoveryDir)
}

// restoreLocal returns what a restore from st takes local copies
// through, or nil.
func (o *Options) restoreLocal(st snapshot.Storage) *restore.Local {
	if d := o.localRecoveryDir(st); d != nil {
		return restore.NewLocal(d)
	}
	return nil
}

// localCopies is a backend's part in local recovery: which copies it
// kept, and whose copies to drop once a checkpoint completes. A failure
// to keep or drop a copy is logged, never returned: a copy is a cache of
// checkpoint storage, and its loss costs a download, not state.
type localCopies struct {
	opts *Options
	dir  *localrecovery.Dir // Options.LocalRecoveryDir

	mu sync.Mutex
	// kept are the instance ids of the copies kept and not yet completed
	// or aborted, by checkpoint id.
	kept map[int64]string
	// drop are the instances whose older copies go when a checkpoint
	// completes: this backend's own (once it kept a copy), and those of
	// the handles it was restored from, dropped once, then forgotten.
	drop map[string]bool
	own  string
}

func newLocalCopies(opts *Options) *localCopies {
	return &localCopies{opts: opts, dir: localrecovery.New(opts.LocalRecoveryDir),
		kept: make(map[int64]string), drop: make(map[string]bool)}
}

// keep keeps the native checkpoint in from as the local copy of
// checkpoint id of instance, if local recovery is on for st.
func (c *localCopies) keep(st snapshot.Storage, instance string, id int64, from string) {
	if c.opts.localRecoveryDir(st) == nil {
		return
	}
	kept, err := c.dir.Keep(instance, id, from)
	if err != nil {
		c.opts.Logger.Warn("local recovery: no local copy of the checkpoint; a restore will download it", "checkpoint", id, "err", err)
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if kept {
		c.kept[id] = instance
	}
	c.own = instance
	c.drop[instance] = true
}

// restoredFrom records the incremental handles a restore into key
// groups kgs read, whose local copies are dropped when the backend's
// first checkpoint completes: by then every instance of a job restored
// (a checkpoint.Coordinator completes a checkpoint only once all of them
// acknowledged it), and at worst a late one downloads.
func (c *localCopies) restoredFrom(handles []snapshot.Handle, kgs KeyGroupRange) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, h := range handles {
		if h.Kind == snapshot.KindIncremental && !kgs.Intersect(KeyGroupRange{Start: h.KeyGroupStart, End: h.KeyGroupEnd}).IsEmpty() {
			c.drop[h.InstanceID] = true
		}
	}
}

// completed drops the copies of checkpoints older than id: this
// backend's, and once those of the instances it was restored from.
func (c *localCopies) completed(id int64) {
	c.mu.Lock()
	maps.DeleteFunc(c.kept, func(cid int64, _ string) bool { return cid <= id })
	drop := c.drop
	c.drop = make(map[string]bool)
	if c.own != "" {
		c.drop[c.own] = true
	}
	c.mu.Unlock()
	for instance := range drop {
		if err := c.dir.Drop(instance, id); err != nil {
			c.opts.Logger.Warn("local recovery: dropping older local copies failed", "instance", instance, "err", err)
		}
	}
}

// aborted removes the copy of checkpoint id, if this backend kept one.
func (c *localCopies) aborted(id int64) {
	c.mu.Lock()
	instance, ok := c.kept[id]
	delete(c.kept, id)
	c.mu.Unlock()
	if !ok {
		return
	}
	if err := c.dir.Remove(instance, id); err != nil {
		c.opts.Logger.Warn("local recovery: removing the copy of an aborted checkpoint failed", "checkpoint", id, "err", err)
	}
}

// within reports whether path p is dir or inside it, by their cleaned
// absolute forms.
func within(p, dir string) bool {
	ap, err1 := filepath.Abs(p)
	ad, err2 := filepath.Abs(dir)
	if err1 != nil || err2 != nil {
		return false
	}
	rel, err := filepath.Rel(ad, ap)
	return err == nil && (rel == "." || rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)))
}
