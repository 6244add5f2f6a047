package restore

import (
	"context"
	"fmt"
	"os"

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
	width := keys.KeyGroupBytes(maxParallelism)
	for _, id := range ids {
		for _, cut := range []keygroup.Range{{Start: had.Start, End: keep.Start}, {Start: keep.End, End: had.End}} {
			if cut.IsEmpty() {
				continue
			}
			lo, hi := keys.KeyGroupBounds(id, cut.Start, cut.End, width)
			if err := db.Excise(ctx, pebble.KeyRange{Start: lo, End: hi}); err != nil {
				return fmt.Errorf("restore: clip state %d to key groups %s: %w", id, keep, err)
			}
		}
	}
	return nil
}

// addIncremental reads the owned key groups of a (non-base) incremental
// handle into the builder, from a read-only copy of its database in the
// staging directory.
func (b *builder) addIncremental(ctx context.Context, st snapshot.Storage, h *snapshot.Handle, ids map[uint16]uint16, stats *Stats) error {
	dir, err := os.MkdirTemp(b.t.StagingDir, "handle-")
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	defer os.RemoveAll(dir)
	if err := Fetch(ctx, st, h, dir); err != nil {
		return err
	}
	opts := b.t.Options.Clone()
	opts.ReadOnly = true
	opts.EventListener = nil
	db, err := pebble.Open(dir, opts)
	if err != nil {
		return fmt.Errorf("%w: open the database of %s's handle: %v", snapshot.ErrCorrupt, h.InstanceID, err)
	}
	defer db.Close()
	own := keygroup.Range{Start: h.KeyGroupStart, End: h.KeyGroupEnd}.Intersect(b.t.KeyGroups)
	width := keys.KeyGroupBytes(h.MaxParallelism)
	for _, s := range h.States {
		lo, hi := keys.KeyGroupBounds(s.ID, own.Start, own.End, width)
		it, err := db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
		if err != nil {
			return fmt.Errorf("restore: read %s's state %q: %w", h.InstanceID, s.Name, err)
		}
		id := ids[s.ID]
		for valid := it.First(); valid; valid = it.Next() {
			value, err := it.ValueAndErr()
			if err != nil {
				it.Close()
				return fmt.Errorf("restore: read %s's state %q: %w", h.InstanceID, s.Name, err)
			}
			b.keybuf = append(keys.AppendStateID(b.keybuf[:0], id), it.Key()[keys.StateIDLen:]...)
			if err := b.add(id, b.keybuf, value); err != nil {
				it.Close()
				return fmt.Errorf("restore: state %q of %s: %w", s.Name, h.InstanceID, err)
			}
			stats.Entries++
		}
		if err := it.Close(); err != nil {
			return fmt.Errorf("restore: read %s's state %q: %w", h.InstanceID, s.Name, err)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	stats.KeyGroups += own.Len()
	return nil
}
