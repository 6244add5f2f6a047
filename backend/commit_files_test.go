package backend_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2"

	"github.com/pebblestate/pebblestate/backend"
	"github.com/pebblestate/pebblestate/snapshot"
)

// TestCommitRefusesLostFiles: a file of a snapshot that is lost or
// truncated in storage between the snapshot's Run and the checkpoint's
// Commit (its own data or private file; for an incremental one, a shared
// file it uploaded, or one it reuses from the checkpoint before) makes
// Commit fail, naming the file, rather than commit a checkpoint that
// fails only when restored; no metadata is written and the previous
// checkpoint stays the latest.
func TestCommitRefusesLostFiles(t *testing.T) {
	type pick func(h snapshot.Handle) string
	own := func(h snapshot.Handle) string { // the largest: a marker is empty
		return slices.MaxFunc(h.Files, func(a, b snapshot.FileRef) int { return int(a.Size - b.Size) }).Name
	}
	shared := func(creator string) pick {
		return func(h snapshot.Handle) string {
			for _, f := range h.Shared {
				if strings.Contains(f.Name, creator) {
					return f.Name
				}
			}
			return ""
		}
	}
	cases := []struct {
		name        string
		incremental bool // only for incremental snapshots
		file        pick
		truncate    bool
		want        error
	}{
		{"own file lost", false, own, false, snapshot.ErrNotExist},
		{"own file truncated", false, own, true, snapshot.ErrCorrupt},
		{"uploaded shared file lost", true, shared("-c2-"), false, snapshot.ErrNotExist},
		{"uploaded shared file truncated", true, shared("-c2-"), true, snapshot.ErrCorrupt},
		{"reused shared file lost", true, shared("-c1-"), false, snapshot.ErrNotExist},
	}
	forEachMode(t, func(t *testing.T, m mode) {
		for _, c := range cases {
			if c.incremental && !m.incremental {
				continue
			}
			t.Run(c.name, func(t *testing.T) {
				ctx := context.Background()
				st := newStorage(t)
				j := newJob(t, st, 1, m.each(), func(o *backend.Options) {
					o.Pebble = func(o *pebble.Options) {
						// No compaction: checkpoint 2 reuses checkpoint 1's SSTs.
						o.L0CompactionThreshold, o.L0CompactionFileThreshold, o.L0StopWritesThreshold = 1000, 1000, 2000
					}
				})
				rng := rand.New(rand.NewPCG(1, 2))
				j.apply(rng, 800, 150, "c1")
				j.checkpoint(1, 2)
				j.apply(rng, 800, 150, "c2")
				hs, err := runAll(ctx, j.snapshot(2))
				noErr(t, err)
				name := c.file(hs[0])
				if name == "" {
					t.Fatalf("the handle has no such file: %+v", hs[0])
				}
				p := st.Path(name)
				if c.truncate {
					rewrite(t, p, func(b []byte) []byte { return b[:len(b)/2] })
				} else {
					noErr(t, os.Remove(p))
				}
				err = snapshot.Commit(ctx, st, &snapshot.Checkpoint{ID: 2, Handles: hs})
				switch {
				case err == nil:
					t.Fatalf("Commit succeeded with %s spoiled", name)
				case !errors.Is(err, c.want):
					t.Fatalf("Commit = %v; want %v", err, c.want)
				case strings.Count(err.Error(), p) != 1:
					t.Fatalf("Commit = %v; want it to name %s once", err, p)
				case !strings.Contains(err.Error(), fmt.Sprintf("key groups [%d, %d)", hs[0].KeyGroupStart, hs[0].KeyGroupEnd)):
					t.Fatalf("Commit = %v; want it to name the handle's key groups", err)
				}
				if _, err := os.Stat(st.Path(snapshot.MetadataPath(2))); !errors.Is(err, fs.ErrNotExist) {
					t.Fatalf("metadata of the refused checkpoint 2: %v", err)
				}
				if ids := must(snapshot.Completed(ctx, st)).in(t); !slices.Equal(ids, []int64{1}) {
					t.Fatalf("completed checkpoints: %v, want [1]", ids)
				}
				noErr(t, j.b().NotifyCheckpointAborted(ctx, 2, st))
			})
		}
	})
}
