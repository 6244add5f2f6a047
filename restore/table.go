package restore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/sstable"
	"github.com/cockroachdb/pebble/v2/sstable/block"

	"github.com/pebblestate/pebblestate/internal/keys"
)

// Reading a table directly.
//
// A bottom-level table that Pebble cannot ingest as it is (its keys carry
// sequence numbers, as those of a table compaction moved down unchanged
// do) still holds, for a span that no other table of the database meets,
// every version of every key there is in the span, newest first. Such a
// span is read from the table's file with an sstable reader, not through
// the database: no merging of levels, no block cache, blocks read into a
// small pool of buffers from chunks of the file (chunkedFile). For each user key the newest entry decides:
//
//   - a SET is the value;
//   - a deletion (DEL, SINGLEDEL, DELSIZED) hides the key and every older
//     version, and nothing is written;
//   - a MERGE with no older version is written as a MERGE, so the new
//     database resolves it exactly as the handle's did (there is nothing
//     under it in either);
//   - a MERGE over an older version, or any other kind, would need
//     Pebble's resolution: the unit is read through the database instead
//     (errTableFallback).
//
// Older versions under a SET or a deletion are skipped. Tables with range
// deletions or range keys are never read this way.

// errTableFallback reports that a unit cannot be read from its table file
// alone and must be read through the database.
var errTableFallback = errors.New("table needs the database's resolution")

// directTable returns the file, in dir, of the one table of levels that
// holds every entry of [lo, hi), or "" if the span must be read through
// the database: when tables of upper levels meet it, when more than one
// bottom-level table does, or when the table is virtual or has range
// deletions or range keys.
func directTable(dir string, levels [][]pebble.SSTableInfo, lo, hi []byte) string {
	if len(levels) == 0 {
		return ""
	}
	meets := func(t pebble.SSTableInfo) bool {
		return bytes.Compare(t.Smallest.UserKey, hi) < 0 && bytes.Compare(lo, t.Largest.UserKey) <= 0
	}
	bottom := len(levels) - 1
	for _, lvl := range levels[:bottom] {
		for _, t := range lvl {
			if meets(t) {
				return ""
			}
		}
	}
	var found *pebble.SSTableInfo
	for i := range levels[bottom] {
		t := &levels[bottom][i]
		if !meets(*t) {
			continue
		}
		if found != nil {
			return ""
		}
		found = t
	}
	if found == nil || found.Virtual || found.Properties == nil ||
		found.Properties.NumRangeDeletions != 0 || found.Properties.NumRangeKeys() != 0 {
		return ""
	}
	return filepath.Join(dir, tableFileName(*found))
}

// copyTable reads the entries of unit u from its table file (u.table) and
// adds them to run r under the unit's state id, as described above. It
// returns how many it added, or errTableFallback, having added nothing
// the caller must keep.
func (b *builder) copyTable(ctx context.Context, opts *pebble.Options, u copyUnit, r *run) (int64, error) {
	readable, err := openChunked(u.table)
	if err != nil {
		return 0, err
	}
	rd, err := sstable.NewReader(ctx, readable, opts.MakeReaderOptions())
	if err != nil {
		readable.Close()
		return 0, fmt.Errorf("open %s: %w", u.table, err)
	}
	defer rd.Close()
	var pool block.BufferPool
	pool.Init(4)
	defer pool.Release()
	it, err := rd.NewPointIter(ctx, sstable.IterOptions{
		Lower:                u.lo,
		Upper:                u.hi,
		Transforms:           sstable.NoTransforms,
		FilterBlockSizeLimit: sstable.NeverUseFilterBlock,
		Env:                  sstable.ReadEnv{Block: block.ReadEnv{BufferPool: &pool}},
		ReaderProvider:       sstable.MakeTrivialReaderProvider(rd),
		BlobContext:          sstable.AssertNoBlobHandles,
	})
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", u.table, err)
	}
	n, err := b.copyTableEntries(ctx, it, u, r)
	if cerr := it.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("read %s: %w", u.table, cerr)
	}
	return n, err
}

// copyTableEntries resolves the entries of a table iterator, bounded to
// unit u, into run r.
func (b *builder) copyTableEntries(ctx context.Context, it sstable.Iterator, u copyUnit, r *run) (int64, error) {
	var n int64
	var key, prev, buf []byte
	started, prevMerge := false, false
	for kv := it.SeekGE(u.lo, 0); kv != nil; kv = it.Next() {
		uk := kv.K.UserKey
		if bytes.Compare(uk, u.hi) >= 0 {
			break
		}
		if started && bytes.Equal(uk, prev) {
			if prevMerge {
				return n, errTableFallback
			}
			continue // an older version, shadowed by the newest
		}
		prev, started, prevMerge = append(prev[:0], uk...), true, false
		merge := false
		switch kv.Kind() {
		case pebble.InternalKeyKindSet, pebble.InternalKeyKindSetWithDelete:
		case pebble.InternalKeyKindDelete, pebble.InternalKeyKindSingleDelete, pebble.InternalKeyKindDeleteSized:
			continue
		case pebble.InternalKeyKindMerge:
			merge, prevMerge = true, true
		default:
			return n, errTableFallback
		}
		value, _, err := kv.Value(buf[:0])
		if err != nil {
			return n, fmt.Errorf("read %s: %w", u.table, err)
		}
		key = append(keys.AppendStateID(key[:0], u.id), uk[keys.StateIDLen:]...)
		if err := b.addKind(r, u.id, key, value, merge); err != nil {
			return n, err
		}
		n++
		if n%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return n, err
			}
		}
	}
	if err := it.Error(); err != nil {
		return n, fmt.Errorf("read %s: %w", u.table, err)
	}
	return n, nil
}
