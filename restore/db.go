package restore

import (
	"context"

	"github.com/cockroachdb/pebble/v2"
)

// DB is what a restore needs of the database it fills: bulk loading
// (ingestion and excision of SSTs), point writes and iteration for the
// few records it keeps, and the options the database was opened with.
// The backend's store provides it; Pebble adapts a plain Pebble database.
// A restore calls it from one goroutine at a time.
type DB interface {
	// Options returns the options the database was opened with, after
	// EnsureDefaults. The restore opens the handles' databases with the
	// same comparer, merger and key schemas, and writes SSTs the database
	// can ingest (its format, compression and filters). It must not
	// change them.
	Options() *pebble.Options
	// Ingest adds the SSTs at paths, which do not overlap, atomically,
	// taking the files.
	Ingest(ctx context.Context, paths []string) error
	// Excise removes every entry in [lo, hi).
	Excise(ctx context.Context, lo, hi []byte) error
	// Set stores value at key.
	Set(key, value []byte) error
	// NewIter returns an iterator over the entries in [lo, hi); nil bounds
	// are open.
	NewIter(lo, hi []byte) (Iter, error)
}

// Iter iterates over the entries of a DB in key order. Key and Value are
// valid until the next step.
type Iter interface {
	// First moves to the first entry and reports whether there is one.
	First() bool
	// Next moves to the next entry and reports whether there is one.
	Next() bool
	// SeekGE moves to the first entry at or after key and reports whether
	// there is one.
	SeekGE(key []byte) bool
	// Key returns the current key.
	Key() []byte
	// Value returns the current value.
	Value() ([]byte, error)
	// Error returns the error that ended the iteration, if any.
	Error() error
	// Close releases the iterator and returns its error, if any.
	Close() error
}

// Pebble returns the DB of a plain Pebble database, opened with opts (as
// given to pebble.Open; EnsureDefaults is applied to them), for restoring
// into a database the backend does not own.
func Pebble(db *pebble.DB, opts *pebble.Options) DB {
	opts.EnsureDefaults()
	return pebbleDB{db: db, opts: opts}
}

type pebbleDB struct {
	db   *pebble.DB
	opts *pebble.Options
}

func (p pebbleDB) Options() *pebble.Options { return p.opts }

func (p pebbleDB) Ingest(ctx context.Context, paths []string) error { return p.db.Ingest(ctx, paths) }

func (p pebbleDB) Excise(ctx context.Context, lo, hi []byte) error {
	return p.db.Excise(ctx, pebble.KeyRange{Start: lo, End: hi})
}

func (p pebbleDB) Set(key, value []byte) error { return p.db.Set(key, value, pebble.NoSync) }

func (p pebbleDB) NewIter(lo, hi []byte) (Iter, error) {
	it, err := p.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return nil, err
	}
	return pebbleIter{it}, nil
}

type pebbleIter struct{ it *pebble.Iterator }

func (i pebbleIter) First() bool            { return i.it.First() }
func (i pebbleIter) Next() bool             { return i.it.Next() }
func (i pebbleIter) SeekGE(key []byte) bool { return i.it.SeekGE(key) }
func (i pebbleIter) Key() []byte            { return i.it.Key() }
func (i pebbleIter) Value() ([]byte, error) { return i.it.ValueAndErr() }
func (i pebbleIter) Error() error           { return i.it.Error() }
func (i pebbleIter) Close() error           { return i.it.Close() }
