package restore

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"syscall"

	"github.com/cockroachdb/pebble/v2"

	"github.com/pebblestate/pebblestate/internal/keygroup"
	"github.com/pebblestate/pebblestate/internal/keys"
	"github.com/pebblestate/pebblestate/snapshot"
)

// Base picks the incremental handle to restore the new instance from
// directly: the one sharing the most key groups with it, ties broken by the
// larger share of its own key groups, as Flink does. It returns nil when
// no incremental handle meets the new range.
func Base(handles []snapshot.Handle, r keygroup.Range) *snapshot.Handle {
	var best *snapshot.Handle
	var bestN int
	var bestFrac float64
	for i := range handles {
		h := &handles[i]
		if h.Kind != snapshot.KindIncremental {
			continue
		}
		hr := keygroup.Range{Start: h.KeyGroupStart, End: h.KeyGroupEnd}
		n := hr.Intersect(r).Len()
		frac := float64(n) / float64(hr.Len())
		if n > 0 && (n > bestN || n == bestN && frac > bestFrac) {
			best, bestN, bestFrac = h, n, frac
		}
	}
	return best
}

// Clip removes from an opened base database the entries of key groups
// outside keep, for every state id, by excising them, so their space is
// returned without waiting for compaction.
func Clip(ctx context.Context, db *pebble.DB, ids []uint16, had, keep keygroup.Range, maxParallelism int) error {
	for _, c := range clipCuts(ids, had, keep, maxParallelism) {
		if err := db.Excise(ctx, pebble.KeyRange{Start: c.lo, End: c.hi}); err != nil {
			return fmt.Errorf("clip state %d to key groups %s: %w", binary.BigEndian.Uint16(c.lo), keep, err)
		}
	}
	return nil
}

// Kept returns a need function for Unverified.Verify that selects the
// files of db that Clip(ids, had, keep) leaves, whole or in part: all but
// those backing only tables that lie inside the key groups Clip cuts,
// which Pebble drops without reading them. Verify before Clip: to cut a
// table in part, Pebble reads it, and a read that fails there can go
// unreported and lose the rest of the table.
func Kept(db *pebble.DB, ids []uint16, had, keep keygroup.Range, maxParallelism int) (func(string) bool, error) {
	levels, err := db.SSTables()
	if err != nil {
		return nil, fmt.Errorf("list tables: %w", err)
	}
	cuts := clipCuts(ids, had, keep, maxParallelism)
	kept := make(map[string]bool)
	for _, lvl := range levels {
		for _, t := range lvl {
			inside := false
			for _, c := range cuts {
				if bytes.Compare(c.lo, t.Smallest.UserKey) <= 0 && bytes.Compare(t.Largest.UserKey, c.hi) < 0 {
					inside = true
					break
				}
			}
			if !inside {
				kept[tableFileName(t)] = true
			}
		}
	}
	return func(name string) bool { return kept[name] || filepath.Ext(name) != ".sst" }, nil
}

// clipCuts returns the key spans Clip excises.
func clipCuts(ids []uint16, had, keep keygroup.Range, maxParallelism int) []span {
	width := keys.KeyGroupBytes(maxParallelism)
	var out []span
	for _, id := range ids {
		for _, cut := range []keygroup.Range{{Start: had.Start, End: keep.Start}, {Start: keep.End, End: had.End}} {
			if cut.IsEmpty() {
				continue
			}
			lo, hi := keys.KeyGroupBounds(id, cut.Start, cut.End, width)
			out = append(out, span{lo, hi})
		}
	}
	return out
}

// addIncremental brings the owned key groups of a (non-base) incremental
// handle into the builder, from a read-only copy of its database in the
// staging directory, in the manner of Flink's IngestDB:
//
//  1. Tables that can be ingested as they are (see wholeTables) are moved
//     to the staging directory untouched: no entry is read or rewritten,
//     even when part of a table lies outside the owned key groups; that
//     part is excised after ingestion (see Handles).
//  2. The entries of the owned key groups outside those tables are read
//     and written into new SSTs, several spans at once (see copySpans),
//     each into SSTs of its own, so no rewritten SST overlaps an ingested
//     table.
//
// Only the handle's SSTs the restore reads or ingests are checksummed,
// while they are read.
func (b *builder) addIncremental(ctx context.Context, st snapshot.Storage, h *snapshot.Handle, ids map[uint16]uint16, stats *Stats) error {
	dir, err := os.MkdirTemp(b.t.StagingDir, "handle-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	unverified, err := FetchUnverifiedWith(ctx, st, h, dir, b.t.Progress, b.t.Local)
	if err != nil {
		return err
	}
	opts := b.t.DB.Options().Clone()
	opts.ReadOnly = true
	opts.DisableTableStats = true
	// Not every table is verified yet: a read of a damaged one fails, and
	// the listener keeps Pebble from stopping the process over it.
	opts.EventListener = &pebble.EventListener{DataCorruption: func(pebble.DataCorruptionInfo) {}}
	db, err := pebble.Open(dir, opts)
	if err != nil {
		if localIOError(err) {
			// The local disk failed (full, or failing writes): not the
			// checkpoint's fault.
			return fmt.Errorf("open the database of %s's handle in %s: %w", h.InstanceID, dir, err)
		}
		return unverified.Blame(ctx, fmt.Errorf("%w: open the database of %s's handle: %v", snapshot.ErrCorrupt, h.InstanceID, err))
	}
	closed := false
	defer func() {
		if !closed {
			db.Close()
		}
	}()
	own := keygroup.Range{Start: h.KeyGroupStart, End: h.KeyGroupEnd}.Intersect(b.t.KeyGroups)
	width := keys.KeyGroupBytes(h.MaxParallelism)
	owned := ownedSpans(h, ids, own, width)
	levels, err := db.SSTables(pebble.WithProperties())
	if err != nil {
		return unverified.Blame(ctx, fmt.Errorf("list the tables of %s's handle: %w", h.InstanceID, err))
	}
	// The checksums of the tables the restore uses take as long as the
	// rest together: both run at once, and nothing is kept unless the
	// checksums are right.
	verified := make(chan error, 1)
	go func() { verified <- unverified.Verify(ctx, usedTables(levels, owned)) }()
	whole, err := b.readTables(ctx, db, dir, opts, h, ids, levels, owned, stats)
	if verr := <-verified; verr != nil {
		return verr
	}
	if err != nil {
		return err
	}
	if err := db.Close(); err != nil {
		return fmt.Errorf("close the database of %s's handle: %w", h.InstanceID, err)
	}
	closed = true
	for _, t := range whole {
		dst := filepath.Join(b.t.StagingDir, fmt.Sprintf("whole-%s-%s", h.InstanceID, t.name))
		if err := os.Rename(filepath.Join(dir, t.name), dst); err != nil {
			return err
		}
		b.done = append(b.done, sstFile{path: dst, lo: t.lo, hi: t.hi})
		b.excise = append(b.excise, t.outside...)
		stats.Entries += t.entries
		stats.TablesIngested++
	}
	stats.KeyGroups += own.Len()
	return nil
}

// readTables picks the tables of a handle's database to ingest whole (see
// wholeTables), counting their entries in the owned key groups, and
// copies the owned entries outside them.
func (b *builder) readTables(ctx context.Context, db *pebble.DB, dir string, opts *pebble.Options, h *snapshot.Handle, ids map[uint16]uint16,
	levels [][]pebble.SSTableInfo, owned []ownedSpan, stats *Stats) ([]wholeTable, error) {
	width := keys.KeyGroupBytes(h.MaxParallelism)
	whole, err := wholeTables(ctx, dir, opts, levels, ids, b.t.KeyGroups, owned, width)
	if err != nil {
		return nil, fmt.Errorf("read %s's handle: %w", h.InstanceID, err)
	}
	if err := b.copySpans(ctx, db, opts, h, copyUnits(dir, levels, owned, whole), stats); err != nil {
		return nil, err
	}
	for i := range whole {
		for _, sp := range whole[i].outside {
			n, err := countSpan(db, sp)
			if err != nil {
				return nil, fmt.Errorf("read %s's handle: %w", h.InstanceID, err)
			}
			whole[i].entries -= n
		}
	}
	return whole, nil
}

// ownedSpan is the key span of one state's owned key groups in a handle's
// database, with the state's name and its id in the new instance.
type ownedSpan struct {
	span
	name string
	id   uint16
}

// ownedSpans returns the spans of the owned key groups own of every state
// of h, sorted by key.
func ownedSpans(h *snapshot.Handle, ids map[uint16]uint16, own keygroup.Range, width int) []ownedSpan {
	if own.IsEmpty() {
		return nil
	}
	out := make([]ownedSpan, 0, len(h.States))
	for _, s := range h.States {
		lo, hi := keys.KeyGroupBounds(s.ID, own.Start, own.End, width)
		out = append(out, ownedSpan{span: span{lo, hi}, name: s.Name, id: ids[s.ID]})
	}
	sort.Slice(out, func(i, j int) bool { return bytes.Compare(out[i].lo, out[j].lo) < 0 })
	return out
}

// span is a key span [lo, hi).
type span struct{ lo, hi []byte }

// gaps returns the parts of [lo, hi) that no whole table covers.
func gaps(lo, hi []byte, whole []wholeTable) []span {
	var out []span
	cur := lo
	for _, t := range whole {
		if bytes.Compare(t.hi, lo) < 0 || bytes.Compare(t.lo, hi) >= 0 {
			continue
		}
		if bytes.Compare(cur, t.lo) < 0 {
			out = append(out, span{cur, t.lo})
		}
		cur = append(bytes.Clone(t.hi), 0) // just past the table's last key
	}
	if bytes.Compare(cur, hi) < 0 {
		out = append(out, span{cur, hi})
	}
	return out
}

// countSpan counts the entries of db in a span.
func countSpan(db *pebble.DB, sp span) (int64, error) {
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: sp.lo, UpperBound: sp.hi})
	if err != nil {
		return 0, err
	}
	var n int64
	for valid := it.First(); valid; valid = it.Next() {
		n++
	}
	return n, it.Close()
}

// localIOError reports whether err is a failure of the local filesystem
// (full, read-only, failing), which says nothing about the checkpoint.
func localIOError(err error) bool {
	for _, e := range []error{syscall.ENOSPC, syscall.EIO, syscall.EROFS, fs.ErrPermission} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}
