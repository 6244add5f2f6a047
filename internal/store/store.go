package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"

	"github.com/cockroachdb/pebble/v2"

	"github.com/pebblestate/pebblestate/internal/meta"
)

// Sentinel errors. The backend re-exports them under its own names.
var (
	// ErrCorrupt is returned when stored bytes cannot be decoded.
	ErrCorrupt = errors.New("corrupt data")
	// ErrIncompatible is returned by Open when the directory holds a
	// backend created with another max parallelism, key-group range or key
	// codec.
	ErrIncompatible = errors.New("incompatible backend directory")
)

// Store is the one path to a backend's Pebble database. See the package
// documentation for its contract.
type Store struct {
	opts  Options
	db    *pebble.DB
	popts *pebble.Options // as the database was opened
	cache *pebble.Cache
	mon   *monitor // Pebble's events and messages

	// mu is the write lock: every write of state data holds it, and so
	// does cleanup's confirm-and-delete. writes, under mu, records which
	// keys were written, so that cleanup need not read again what nobody
	// wrote since its scan. Uncontended, the lock and the note cost tens of
	// nanoseconds.
	mu     sync.Mutex
	writes *writeTable

	// Metadata, touched only by the task goroutine (registration, restore,
	// the synchronous part of snapshots).
	record meta.Backend
	states map[string]meta.State // stored state records, by name
	nextID uint16                // the id the next new state gets
}

// Open opens the database in o.Dir (which must exist), removes the native
// checkpoints a dead process left in its ScratchDir, checks the stored
// backend record against o.Record (writing it on first open), loads the
// state records and drops the data of state ids no record names (what an
// interrupted TTL migration leaves).
func Open(o Options) (*Store, error) {
	s := &Store{opts: o, states: make(map[string]meta.State), nextID: 1, writes: newWriteTable()}
	s.cache = pebble.NewCache(o.BlockCacheSize)
	s.popts, s.mon = pebbleOptions(o, s.cache, o.EventListener)
	db, err := openPebble(o.Dir, s.popts)
	if err != nil {
		s.cache.Unref()
		return nil, fmt.Errorf("backend: open %s: %w", o.Dir, err)
	}
	s.db = db
	fail := func(err error) (*Store, error) {
		_ = db.Close()
		s.cache.Unref()
		return nil, err
	}
	if err := os.RemoveAll(filepath.Join(o.Dir, ScratchDir)); err != nil {
		return fail(fmt.Errorf("backend: clean %s: %w", o.Dir, err))
	}
	if err := s.loadMeta(); err != nil {
		return fail(err)
	}
	return s, nil
}

// openPebble opens a Pebble database. Pebble panics when an fsync of its
// directory fails while it opens (it holds fsync errors unrecoverable);
// having released what it opened, it re-panics to its caller, and
// openPebble returns that as an error: the database was never returned,
// so nothing can go on using it.
func openPebble(dir string, po *pebble.Options) (db *pebble.DB, err error) {
	defer func() {
		if r := recover(); r != nil {
			db = nil
			if rerr, ok := r.(error); ok {
				err = fmt.Errorf("pebble stopped opening: %w", rerr)
			} else {
				err = fmt.Errorf("pebble stopped opening: %v", r)
			}
		}
	}()
	return pebble.Open(dir, po)
}

// Get returns the value stored at key, valid until closer is closed, or
// found false (and a nil closer) if there is none. The caller must close
// the closer of a found value and must not change the bytes.
func (s *Store) Get(key []byte) (value []byte, closer io.Closer, found bool, err error) {
	value, closer, err = s.db.Get(key)
	if err == pebble.ErrNotFound {
		return nil, nil, false, nil
	}
	if err != nil {
		return nil, nil, false, err
	}
	return value, closer, true, nil
}

// Set stores value at key. The store copies both; the caller may reuse
// them at once.
func (s *Store) Set(key, value []byte) error {
	s.checkOwned(key)
	s.mu.Lock()
	err := s.db.Set(key, value, pebble.NoSync)
	s.writes.note(key)
	s.mu.Unlock()
	return err
}

// Merge adds value to key through the merge operator (list append). The
// store copies both.
func (s *Store) Merge(key, value []byte) error {
	s.checkOwned(key)
	s.mu.Lock()
	err := s.db.Merge(key, value, pebble.NoSync)
	s.writes.note(key)
	s.mu.Unlock()
	return err
}

// Delete removes key. Deleting an absent key is no error.
func (s *Store) Delete(key []byte) error {
	s.checkOwned(key)
	s.mu.Lock()
	err := s.db.Delete(key, pebble.NoSync)
	s.writes.note(key)
	s.mu.Unlock()
	return err
}

// Batch collects writes to commit atomically with Commit. Its methods copy
// their arguments. It is not safe for concurrent use; Close it when done,
// committed or not.
type Batch struct{ b *pebble.Batch }

// NewBatch returns an empty batch.
func (s *Store) NewBatch() *Batch { return &Batch{b: s.db.NewBatch()} }

// Set adds a set of key to value.
func (b *Batch) Set(key, value []byte) error { return b.b.Set(key, value, nil) }

// Merge adds a merge of value into key.
func (b *Batch) Merge(key, value []byte) error { return b.b.Merge(key, value, nil) }

// Delete adds a delete of key.
func (b *Batch) Delete(key []byte) error { return b.b.Delete(key, nil) }

// DeleteRange adds a delete of every key in [lo, hi).
func (b *Batch) DeleteRange(lo, hi []byte) error { return b.b.DeleteRange(lo, hi, nil) }

// Len returns the size in bytes of the batch's writes.
func (b *Batch) Len() int { return b.b.Len() }

// Empty reports whether the batch holds no writes.
func (b *Batch) Empty() bool { return b.b.Empty() }

// Close releases the batch.
func (b *Batch) Close() { _ = b.b.Close() }

// Commit applies the batch atomically. An empty batch commits nothing. A
// batch may touch any key, so cleanup reads again whatever it condemned
// before the commit.
func (s *Store) Commit(b *Batch) error {
	if b.b.Empty() {
		return nil
	}
	s.mu.Lock()
	err := b.b.Commit(pebble.NoSync)
	s.writes.noteAll()
	s.mu.Unlock()
	return err
}

// Iter (a small value, copied freely) iterates over the stored entries of a key range, in key order,
// over a point-in-time view taken when it was made: writes after that are
// not seen, so the loop body may write. Key and Value are valid until the
// next step. It is not safe for concurrent use; Close it when done.
type Iter struct{ it *pebble.Iterator }

// NewIter returns an iterator over [lo, hi); nil bounds are open. The
// iterator keeps the bound slices: the caller must not change them while
// it is open.
func (s *Store) NewIter(lo, hi []byte) (Iter, error) {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	return Iter{it: it}, err
}

// First moves to the first entry and reports whether there is one.
func (i Iter) First() bool { return i.it.First() }

// Next moves to the next entry and reports whether there is one.
func (i Iter) Next() bool { return i.it.Next() }

// SeekGE moves to the first entry at or after key and reports whether
// there is one.
func (i Iter) SeekGE(key []byte) bool { return i.it.SeekGE(key) }

// Key returns the current key.
func (i Iter) Key() []byte { return i.it.Key() }

// Value returns the current value, or an error if it cannot be read.
func (i Iter) Value() ([]byte, error) { return i.it.ValueAndErr() }

// Error returns the error that ended the iteration, if any.
func (i Iter) Error() error { return i.it.Error() }

// Close releases the iterator and returns its error, if any.
func (i Iter) Close() error { return i.it.Close() }

// NewSnapshot pins a point-in-time view of the whole database, for a full
// snapshot to read while writes go on. The caller closes it.
func (s *Store) NewSnapshot() *pebble.Snapshot { return s.db.NewSnapshot() }

// Checkpoint writes a native Pebble checkpoint of the database (hard links
// to its files) into dir, which must not exist. What is only in the
// memtable is in the checkpoint only after Flush, with the WAL off.
func (s *Store) Checkpoint(dir string) error { return s.db.Checkpoint(dir) }

// Flush writes the memtable to disk. It returns when the flush completes,
// when an attempt of it fails (Pebble retries in the background, so a
// later Flush succeeds once the fault clears) or when ctx ends, with an
// error naming the directory and wrapping the cause (a context error, or
// the filesystem's: errors.Is finds syscall.ENOSPC).
func (s *Store) Flush(ctx context.Context) error { return s.mon.flush(ctx, s.db) }

// BackgroundError returns the latest error Pebble reported from
// background work (flushes, compactions, corruption found in the
// background) since the store opened, or nil.
func (s *Store) BackgroundError() error {
	s.mon.mu.Lock()
	defer s.mon.mu.Unlock()
	if s.mon.fatal != nil {
		return s.mon.fatal
	}
	return s.mon.lastErr
}

// Compact compacts the keys in [lo, hi) into lower levels.
func (s *Store) Compact(ctx context.Context, lo, hi []byte, parallelize bool) error {
	return s.db.Compact(ctx, lo, hi, parallelize)
}

// DiskSpaceUsage returns the bytes the database takes on disk.
func (s *Store) DiskSpaceUsage() uint64 { return s.db.Metrics().DiskSpaceUsage() }

// Load hands the database to fn for bulk loading (restore ingests and
// excises files into it) as a Loader. It must run before state is
// accessed. Every key may have changed afterwards, as after a batch.
func (s *Store) Load(fn func(l Loader) error) error {
	err := fn(Loader{s})
	s.mu.Lock()
	s.writes.noteAll()
	s.mu.Unlock()
	return err
}

// Close flushes (when the WAL is off) and closes the database. The caller
// makes sure nothing uses the store any more (cleanup stopped, snapshots
// released).
//
// The flush ends as Flush does: when it completes, when an attempt fails,
// or after CloseFlushTimeout. If it did not complete, what was only in
// memory is lost and the error says so; the database is closed anyway,
// which waits for the background flush or compaction attempt in progress
// to end (not for its retries), and the cache is released.
func (s *Store) Close() error {
	var errs []error
	if !s.opts.EnableWAL {
		ctx, cancel := context.WithTimeout(context.Background(), CloseFlushTimeout)
		err := s.Flush(ctx)
		cancel()
		if err != nil {
			errs = append(errs, fmt.Errorf("writes since the last flush are lost: %w", err))
		}
	}
	if err := s.db.Close(); err != nil {
		errs = append(errs, fmt.Errorf("close %s: %w", s.opts.Dir, err))
	}
	s.cache.Unref()
	return errors.Join(errs...)
}
