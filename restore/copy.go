package restore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"

	"github.com/pebblestate/pebblestate/internal/keys"
	"github.com/pebblestate/pebblestate/internal/parallel"
	"github.com/pebblestate/pebblestate/snapshot"
)

// copyUnit is a span of one state of a handle's database whose entries
// are read and written into new SSTs, under the state's new id.
type copyUnit struct {
	span
	name string
	id   uint16
	// table, if set, is the file of the one table that holds every entry
	// of the span (see directTable): the unit is read from it directly.
	table string
}

// copyUnits returns the parts of the owned spans that no whole table
// covers, cut further at the first key of every bottom-level table, so
// that a long span (one overlapped by upper levels, say) is copied by
// several workers at once. A unit that lies in one bottom-level table
// alone names that table's file in dir (see directTable).
func copyUnits(dir string, levels [][]pebble.SSTableInfo, owned []ownedSpan, whole []wholeTable) []copyUnit {
	var cuts [][]byte
	if len(levels) > 0 {
		for _, t := range levels[len(levels)-1] {
			cuts = append(cuts, t.Smallest.UserKey)
		}
	}
	var out []copyUnit
	for _, o := range owned {
		for _, g := range gaps(o.lo, o.hi, whole) {
			lo := g.lo
			for _, c := range cuts {
				if bytes.Compare(lo, c) < 0 && bytes.Compare(c, g.hi) < 0 {
					out = append(out, copyUnit{span: span{lo, c}, name: o.name, id: o.id})
					lo = c
				}
			}
			out = append(out, copyUnit{span: span{lo, g.hi}, name: o.name, id: o.id})
		}
	}
	for i := range out {
		out[i].table = directTable(dir, levels, out[i].lo, out[i].hi)
	}
	return out
}

// copyWorkers is how many spans copySpans copies at once.
func copyWorkers() int { return max(1, min(runtime.GOMAXPROCS(0), 4)) }

// copySpans copies the units of a handle's database (opened with opts)
// into SSTs, each unit into SSTs of its own, copyWorkers at once. A unit
// that names a table is read from that file (copyTable) unless the table
// needs the database's resolution.
func (b *builder) copySpans(ctx context.Context, db *pebble.DB, opts *pebble.Options, h *snapshot.Handle, units []copyUnit, stats *Stats) error {
	var entries, direct atomic.Int64
	err := parallel.Do(ctx, len(units), copyWorkers(), func(ctx context.Context, i int) error {
		u := units[i]
		if u.table != "" {
			r := &run{}
			n, err := b.copyTable(ctx, opts, u, r)
			if err == nil {
				entries.Add(n)
				direct.Add(n)
				return b.closeRunIfOpen(r)
			}
			dropRun(r)
			if !errors.Is(err, errTableFallback) {
				return fmt.Errorf("read %s's state %q: %w", h.InstanceID, u.name, err)
			}
		}
		r := &run{}
		n, err := b.copySpan(ctx, db, h, u, r)
		if err != nil {
			dropRun(r)
			return err
		}
		entries.Add(n)
		return b.closeRunIfOpen(r)
	})
	stats.Entries += entries.Load()
	stats.Rewritten += entries.Load()
	stats.ReadFromTables += direct.Load()
	return err
}

// closeRunIfOpen finishes the open SST of run r, if any.
func (b *builder) closeRunIfOpen(r *run) error {
	if r.w == nil {
		return nil
	}
	return b.closeRun(r)
}

// dropRun abandons the open SST of run r, if any, and removes its file.
func dropRun(r *run) {
	if r.w != nil {
		_ = r.w.Close()
		_ = os.Remove(r.path)
		r.w = nil
	}
}

// copySpan reads the entries of a unit and adds them to run r under the
// unit's state id. It returns how many it added.
func (b *builder) copySpan(ctx context.Context, db *pebble.DB, h *snapshot.Handle, u copyUnit, r *run) (int64, error) {
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: u.lo, UpperBound: u.hi})
	if err != nil {
		return 0, fmt.Errorf("read %s's state %q: %w", h.InstanceID, u.name, err)
	}
	var n int64
	var key []byte
	for valid := it.First(); valid; valid = it.Next() {
		value, err := it.ValueAndErr()
		if err != nil {
			it.Close()
			return n, fmt.Errorf("read %s's state %q: %w", h.InstanceID, u.name, err)
		}
		key = append(keys.AppendStateID(key[:0], u.id), it.Key()[keys.StateIDLen:]...)
		if err := b.addKind(r, u.id, key, value, false); err != nil {
			it.Close()
			return n, fmt.Errorf("state %q of %s: %w", u.name, h.InstanceID, err)
		}
		n++
		if n%4096 == 0 {
			if err := ctx.Err(); err != nil {
				it.Close()
				return n, err
			}
		}
	}
	if err := it.Close(); err != nil {
		return n, fmt.Errorf("read %s's state %q: %w", h.InstanceID, u.name, err)
	}
	return n, nil
}
