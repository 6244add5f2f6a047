package restore

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"path/filepath"
	"sort"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/sstable"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/pebblestate/pebblestate/internal/keygroup"
	"github.com/pebblestate/pebblestate/internal/keys"
)

// usedTables returns a need function for Unverified.Verify that selects
// the files backing the tables (of any level) that meet an owned span:
// those the restore reads or ingests. Files that are not SSTs are needed.
func usedTables(levels [][]pebble.SSTableInfo, owned []ownedSpan) func(string) bool {
	used := make(map[string]bool)
	for _, lvl := range levels {
		for _, t := range lvl {
			if overlapsOwned(t.Smallest.UserKey, t.Largest.UserKey, owned) {
				used[tableFileName(t)] = true
			}
		}
	}
	return func(name string) bool { return used[name] || filepath.Ext(name) != ".sst" }
}

// overlapsOwned reports whether [lo, hi] meets an owned span.
func overlapsOwned(lo, hi []byte, owned []ownedSpan) bool {
	for _, o := range owned {
		if bytes.Compare(lo, o.hi) < 0 && bytes.Compare(o.lo, hi) <= 0 {
			return true
		}
	}
	return false
}

// wholeTable is an SST of a handle's database to ingest as it is.
type wholeTable struct {
	name    string // file name in the database directory
	lo, hi  []byte // smallest and largest user key
	entries int64  // entries in the owned key groups
	outside []span // parts of [lo, hi] the new instance does not own
}

// wholeTables returns, sorted by key, the tables of a handle's database
// (opened from dir with opts) that can be ingested untouched:
//
//   - in the bottom level, and overlapped by no table of a higher level,
//     which could hold newer versions of their keys;
//   - physical, not virtual;
//   - with every sequence number zero in the file, as Pebble ingests only
//     such tables: either all zero in the database too, or the table was
//     itself ingested there (one sequence number for the whole table, and
//     zero in the file), as the tables of an earlier rescaled restore are;
//   - meeting an owned span;
//   - holding only keys of the backend's own records (state id 0) and of
//     states whose id is the same in the new instance (target).
//
// A table may reach past the owned key groups: the parts outside the key
// groups of target, and its backend records, are listed in outside, to be
// excised once the table is ingested. The new instance holds nothing there
// but its own backend records, which Handles puts back.
func wholeTables(ctx context.Context, dir string, opts *pebble.Options, levels [][]pebble.SSTableInfo, ids map[uint16]uint16, target keygroup.Range, owned []ownedSpan, width int) ([]wholeTable, error) {
	if len(levels) == 0 || len(owned) == 0 {
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
		if t.Virtual || len(lo) < keys.StateIDLen || len(hi) < keys.StateIDLen || t.SmallestSeqNum != t.LargestSeqNum && t.LargestSeqNum != 0 {
			continue
		}
		if !sameIDs(lo, hi, ids) || !overlapsOwned(lo, hi, owned) || overlapsUpper(lo, hi) {
			continue
		}
		if t.LargestSeqNum != 0 {
			zero, err := ingestedTable(ctx, filepath.Join(dir, tableFileName(t)), opts, t)
			if err != nil {
				return nil, err
			}
			if !zero {
				continue
			}
		}
		var n int64
		if t.Properties != nil {
			n = int64(t.Properties.NumEntries)
		}
		out = append(out, wholeTable{
			name: tableFileName(t), lo: lo, hi: hi, entries: n,
			outside: outsideSpans(lo, hi, target, width),
		})
	}
	sort.Slice(out, func(i, j int) bool { return bytes.Compare(out[i].lo, out[j].lo) < 0 })
	return out, nil
}

// ingestedTable reports whether table t, stored at p, was ingested into
// its database: its keys have one sequence number in the database, and
// zero in the file, which Pebble checks, as we do here, on its first and
// last key. Tables with range deletions or range keys are left out.
func ingestedTable(ctx context.Context, p string, opts *pebble.Options, t pebble.SSTableInfo) (bool, error) {
	if t.Properties == nil || t.Properties.NumRangeDeletions != 0 || t.Properties.NumRangeKeys() != 0 {
		return false, nil
	}
	f, err := vfs.Default.Open(p)
	if err != nil {
		return false, err
	}
	readable, err := sstable.NewSimpleReadable(f)
	if err != nil {
		f.Close()
		return false, err
	}
	r, err := sstable.NewReader(ctx, readable, opts.MakeReaderOptions())
	if err != nil {
		readable.Close()
		return false, fmt.Errorf("open %s: %w", p, err)
	}
	defer r.Close()
	it, err := r.NewIter(sstable.NoTransforms, nil, nil, sstable.AssertNoBlobHandles)
	if err != nil {
		return false, fmt.Errorf("read %s: %w", p, err)
	}
	defer it.Close()
	first := it.First()
	if first == nil || first.K.SeqNum() != 0 {
		return false, it.Error()
	}
	last := it.Last()
	if last == nil || last.K.SeqNum() != 0 {
		return false, it.Error()
	}
	return true, nil
}

// sameIDs reports whether every state id from lo's to hi's is the
// backend's own (0) or a state of the handle with the same id in the new
// instance.
func sameIDs(lo, hi []byte, ids map[uint16]uint16) bool {
	for s := int(binary.BigEndian.Uint16(lo)); s <= int(binary.BigEndian.Uint16(hi)); s++ {
		if s == int(keys.SystemID) {
			continue
		}
		if id, ok := ids[uint16(s)]; !ok || int(id) != s {
			return false
		}
	}
	return true
}

// outsideSpans returns the parts of [lo, hi] outside the key groups
// target of the states from lo's to hi's: the backend records and key
// groups the new instance does not own.
func outsideSpans(lo, hi []byte, target keygroup.Range, width int) []span {
	end := append(bytes.Clone(hi), 0) // just past hi
	var out []span
	cur := lo
	for s := int(binary.BigEndian.Uint16(lo)); s <= int(binary.BigEndian.Uint16(hi)) && bytes.Compare(cur, end) < 0; s++ {
		if s == int(keys.SystemID) {
			continue
		}
		olo, ohi := keys.KeyGroupBounds(uint16(s), target.Start, target.End, width)
		if bytes.Compare(cur, olo) < 0 {
			out = append(out, span{cur, minKey(olo, end)})
		}
		if bytes.Compare(cur, ohi) < 0 {
			cur = ohi
		}
	}
	if bytes.Compare(cur, end) < 0 {
		out = append(out, span{cur, end})
	}
	return out
}

func minKey(a, b []byte) []byte {
	if bytes.Compare(a, b) < 0 {
		return a
	}
	return b
}
