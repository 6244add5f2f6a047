package store

import (
	"context"

	"github.com/cockroachdb/pebble/v2"
)

// Loader is the database as Load hands it to a bulk load (restore): SSTs
// ingested and excised, point writes and iteration through the store, and
// the options the database was opened with. It is valid only inside
// Load's function.
type Loader struct{ s *Store }

// Options returns the Pebble options the database was opened with, after
// EnsureDefaults. The caller must not change them.
func (l Loader) Options() *pebble.Options { return l.s.popts }

// Ingest adds the SSTs at paths, which must not overlap, atomically,
// taking the files.
func (l Loader) Ingest(ctx context.Context, paths []string) error { return l.s.db.Ingest(ctx, paths) }

// Excise removes every entry in [lo, hi).
func (l Loader) Excise(ctx context.Context, lo, hi []byte) error {
	return l.s.db.Excise(ctx, pebble.KeyRange{Start: lo, End: hi})
}

// Set stores value at key, as Store.Set.
func (l Loader) Set(key, value []byte) error { return l.s.Set(key, value) }

// NewIter returns an iterator over [lo, hi), as Store.NewIter.
func (l Loader) NewIter(lo, hi []byte) (Iter, error) { return l.s.NewIter(lo, hi) }
