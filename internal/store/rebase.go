package store

import (
	"context"
	"errors"
	"fmt"
	"syscall"

	"github.com/cockroachdb/pebble/v2"

	"github.com/pebblestate/pebblestate/internal/keys"
	"github.com/pebblestate/pebblestate/internal/meta"
)

// Rebase prepares a database fetched from another instance's checkpoint
// for a new instance, before Open: it opens the database in o.Dir (with
// only the store's own event listener, no record check), hands fn its
// backend record and the database, so that fn removes what the new
// instance does not own, and stores the record fn returns. Errors opening the database or reading its
// record wrap ErrCorrupt, but for failures of the filesystem (a full disk,
// an I/O error), which wrap their cause; fn's are returned as they are.
func Rebase(o Options, fn func(db *pebble.DB, rec meta.Backend) (meta.Backend, error)) error {
	cache := pebble.NewCache(o.BlockCacheSize)
	defer cache.Unref()
	// Reads of a damaged table fail; the store's listener keeps Pebble from
	// stopping the process over it, so the caller's checksums can tell.
	// No compaction or table statistics: nothing is rewritten or read in
	// the background before the caller has verified it.
	po, mon := pebbleOptions(o, cache, pebble.EventListener{})
	po.DisableAutomaticCompactions = true
	po.DisableTableStats = true
	db, err := openPebble(o.Dir, po)
	if err != nil {
		if ioFault(err) {
			return fmt.Errorf("open %s: %w", o.Dir, err)
		}
		return fmt.Errorf("%w: open: %v", ErrCorrupt, err)
	}
	err = func() error {
		raw, closer, err := db.Get(keys.BackendMetaKey())
		if err != nil {
			return fmt.Errorf("%w: no backend record: %v", ErrCorrupt, err)
		}
		rec, err := meta.DecodeBackend(raw)
		closer.Close()
		if err != nil {
			return fmt.Errorf("%w: backend record: %v", ErrCorrupt, err)
		}
		if rec, err = fn(db, rec); err != nil {
			return err
		}
		enc, err := meta.Encode(rec)
		if err != nil {
			return err
		}
		if err := db.Set(keys.BackendMetaKey(), enc, pebble.NoSync); err != nil {
			return err
		}
		return mon.flush(context.Background(), db)
	}()
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	return err
}

// ioFault reports whether err is a failure of the filesystem rather than
// of the data: no space, an I/O error, a read-only filesystem.
func ioFault(err error) bool {
	for _, e := range []error{syscall.ENOSPC, syscall.EIO, syscall.EROFS, syscall.EDQUOT} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}
