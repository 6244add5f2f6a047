package restore

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"sort"

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

// addIncremental brings the owned key groups of a (non-base) incremental
// handle into the builder, from a read-only copy of its database in the
// staging directory, in the manner of Flink's IngestDB:
//
//  1. Tables that can be ingested as they are (see wholeTables) are moved
//     to the staging directory untouched: no entry is read or rewritten.
//  2. The entries of the owned key groups outside those tables are read
//     and written into new SSTs, one run per gap between them, so no
//     rewritten SST overlaps an ingested table.
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
	closed := false
	defer func() {
		if !closed {
			db.Close()
		}
	}()
	own := keygroup.Range{Start: h.KeyGroupStart, End: h.KeyGroupEnd}.Intersect(b.t.KeyGroups)
	width := keys.KeyGroupBytes(h.MaxParallelism)
	whole, err := wholeTables(db, h, ids, own, width)
	if err != nil {
		return err
	}
	for _, s := range h.States {
		lo, hi := keys.KeyGroupBounds(s.ID, own.Start, own.End, width)
		for _, gap := range gaps(lo, hi, whole) {
			if err := b.copySpan(db, h, s.Name, ids[s.ID], gap, stats); err != nil {
				return err
			}
			if err := b.finishWriters(); err != nil { // no run may span an ingested table
				return err
			}
			if err := ctx.Err(); err != nil {
				return err
			}
		}
	}
	if err := db.Close(); err != nil {
		return fmt.Errorf("restore: close the database of %s's handle: %w", h.InstanceID, err)
	}
	closed = true
	for _, t := range whole {
		dst := filepath.Join(b.t.StagingDir, fmt.Sprintf("whole-%s-%s", h.InstanceID, t.name))
		if err := os.Rename(filepath.Join(dir, t.name), dst); err != nil {
			return fmt.Errorf("restore: %w", err)
		}
		b.done = append(b.done, dst)
		stats.Entries += t.entries
		stats.TablesIngested++
	}
	stats.KeyGroups += own.Len()
	return nil
}

// wholeTable is an SST of a handle's database to ingest as it is.
type wholeTable struct {
	name    string // file name in the database directory
	lo, hi  []byte // smallest and largest user key
	entries int64
}

// wholeTables returns, sorted by key, the tables of db that can be
// ingested untouched: in the bottom level, physical (not virtual), with
// every sequence number zero (Pebble ingests only such tables), overlapped
// by no table of a higher level (which could hold newer versions of their
// keys), and inside the owned key groups of one state whose id is the same
// in the new instance.
func wholeTables(db *pebble.DB, h *snapshot.Handle, ids map[uint16]uint16, own keygroup.Range, width int) ([]wholeTable, error) {
	levels, err := db.SSTables(pebble.WithProperties())
	if err != nil {
		return nil, fmt.Errorf("restore: list the tables of %s's handle: %w", h.InstanceID, err)
	}
	if len(levels) == 0 || own.IsEmpty() {
		return nil, nil
	}
	bottom := len(levels) - 1
	overlapsUpper := func(lo, hi []byte) bool {
		for _, lvl := range levels[:bottom] {
			for _, t := range lvl {
				if bytes.Compare(t.Smallest.UserKey, hi) <= 0 && bytes.Compare(lo, t.Largest.UserKey) <= 0 {
					return true
				}
			}
		}
		return false
	}
	var out []wholeTable
	for _, t := range levels[bottom] {
		lo, hi := t.Smallest.UserKey, t.Largest.UserKey
		if t.Virtual || t.LargestSeqNum != 0 || len(lo) < keys.StateIDLen {
			continue
		}
		sid := binary.BigEndian.Uint16(lo)
		if id, ok := ids[sid]; !ok || id != sid {
			continue
		}
		slo, shi := keys.KeyGroupBounds(sid, own.Start, own.End, width)
		if bytes.Compare(lo, slo) < 0 || bytes.Compare(hi, shi) >= 0 || overlapsUpper(lo, hi) {
			continue
		}
		var n int64
		if t.Properties != nil {
			n = int64(t.Properties.NumEntries)
		}
		out = append(out, wholeTable{name: fmt.Sprintf("%06d.sst", t.BackingSSTNum), lo: lo, hi: hi, entries: n})
	}
	sort.Slice(out, func(i, j int) bool { return bytes.Compare(out[i].lo, out[j].lo) < 0 })
	return out, nil
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

// copySpan reads the entries of one state of a handle's database in a span
// and adds them to the builder under the state's new id.
func (b *builder) copySpan(db *pebble.DB, h *snapshot.Handle, name string, id uint16, sp span, stats *Stats) error {
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: sp.lo, UpperBound: sp.hi})
	if err != nil {
		return fmt.Errorf("restore: read %s's state %q: %w", h.InstanceID, name, err)
	}
	for valid := it.First(); valid; valid = it.Next() {
		value, err := it.ValueAndErr()
		if err != nil {
			it.Close()
			return fmt.Errorf("restore: read %s's state %q: %w", h.InstanceID, name, err)
		}
		b.keybuf = append(keys.AppendStateID(b.keybuf[:0], id), it.Key()[keys.StateIDLen:]...)
		if err := b.add(id, b.keybuf, value); err != nil {
			it.Close()
			return fmt.Errorf("restore: state %q of %s: %w", name, h.InstanceID, err)
		}
		stats.Entries++
	}
	if err := it.Close(); err != nil {
		return fmt.Errorf("restore: read %s's state %q: %w", h.InstanceID, name, err)
	}
	return nil
}
