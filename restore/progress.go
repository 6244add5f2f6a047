package restore

import (
	"github.com/pebblestate/pebblestate/internal/keygroup"
	"github.com/pebblestate/pebblestate/snapshot"
)

// Totals returns the files and bytes a restore of the key groups kgs
// reads from the handles (those that meet kgs): every file of an
// incremental handle, base included, and of a full handle its data file,
// counted as one file and the bytes of the blocks of the key groups in
// kgs. A restore's snapshot.ProgressTracker, given these totals, ends
// with every file and byte done.
func Totals(handles []snapshot.Handle, kgs keygroup.Range) (files int, bytes int64) {
	for i := range handles {
		h := &handles[i]
		if (keygroup.Range{Start: h.KeyGroupStart, End: h.KeyGroupEnd}).Intersect(kgs).IsEmpty() {
			continue
		}
		if h.Kind == snapshot.KindIncremental {
			for _, f := range h.Files {
				files++
				bytes += f.Size
			}
			for _, f := range h.Shared {
				files++
				bytes += f.Size
			}
			continue
		}
		files++
		for _, b := range h.Blocks {
			if kgs.Contains(b.KeyGroup) {
				bytes += b.Length
			}
		}
	}
	return files, bytes
}
