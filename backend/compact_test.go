package backend_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2"

	"github.com/pebblestate/pebblestate/backend"
)

// TestCompactLeavesNoMovedTables: Compact leaves every table of the
// bottom level with sequence numbers zero, so that a rescaling restore can
// ingest each one whole. The memtable holds the backend's records and about
// 6 MB of one state; its flush writes tables that do not overlap each
// other into an empty database. Compacted by key range, as Pebble splits a
// parallelized manual compaction, each would be moved into the bottom
// level with its sequence numbers; compacted together, they are rewritten.
// Automatic compactions are off, so that only Compact shapes the tree.
func TestCompactLeavesNoMovedTables(t *testing.T) {
	var dir string
	b := MustOpen(t, func(o *backend.Options) {
		dir = o.Dir
		o.MemTableSize = 16 << 20
		o.Pebble = func(po *pebble.Options) { po.DisableAutomaticCompactions = true }
	})
	v := must(backend.GetValue(b, backend.ValueDescriptor[string]{Name: "v", Codec: backend.String})).in(t)
	val := strings.Repeat("x", 200)
	for i := range 30_000 {
		noErr(t, b.SetCurrentKey(fmt.Sprintf("key-%06d", i)))
		noErr(t, v.Update(val))
	}
	noErr(t, b.Compact(context.Background()))
	noErr(t, b.Close())

	db := openRaw(t, dir, true)
	defer db.Close()
	levels, err := db.SSTables()
	noErr(t, err)
	bottom := 0
	for l, lvl := range levels {
		for _, tb := range lvl {
			if l != len(levels)-1 {
				t.Errorf("table %s left in level %d", tb.FileNum, l)
				continue
			}
			bottom++
			if tb.LargestSeqNum != 0 {
				t.Errorf("table %s of the bottom level has sequence numbers up to %d: moved, not rewritten", tb.FileNum, tb.LargestSeqNum)
			}
		}
	}
	if bottom == 0 {
		t.Fatal("no table in the bottom level")
	}
}
