package compaction

import (
	"context"

	"github.com/pebblestate/pebblestate/ttl"
)

// Store is what the filter needs of the database it cleans. The backend
// passes its store, the one path to Pebble, which serialises the filter's
// deletions with the task's writes under its write lock.
type Store interface {
	// WriteGen returns the generation of the last write: every write up to
	// it is visible to an iterator opened afterwards.
	WriteGen() uint64
	// NewIter returns an iterator over the stored entries of [lo, hi).
	NewIter(lo, hi []byte) (Iterator, error)
	// Compact compacts the keys in [lo, hi), returning the space of what
	// the filter removed.
	Compact(ctx context.Context, lo, hi []byte, parallelize bool) error
	// Confirm removes (ttl.Drop) or rewrites (ttl.Rewrite, to out) the
	// entry at key under the write lock, as the scan judged it, if nothing
	// wrote key since generation gen; otherwise it reads the entry again
	// and applies what judge decides of it. It reports whether the entry
	// was removed or rewritten.
	Confirm(key []byte, gen uint64, v ttl.Verdict, out []byte, judge func(raw []byte) (ttl.Verdict, []byte, error)) (bool, error)
}

// Iterator iterates over stored entries in key order, over a
// point-in-time view taken when it was made. Key and Value are valid until
// the next step.
type Iterator interface {
	First() bool
	Next() bool
	SeekGE(key []byte) bool
	Key() []byte
	Value() ([]byte, error)
	Error() error
	Close() error
}
