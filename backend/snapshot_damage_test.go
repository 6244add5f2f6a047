package backend_test

// Damaged data files, which each mode lays out its own way: the blocks of
// a full snapshot's data file, and the SSTs and private files of an
// incremental one. A restore either fails with an error naming the file
// and leaves nothing behind, or restores exactly the state.

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/pebblestate/pebblestate/backend"
	"github.com/pebblestate/pebblestate/snapshot"
)

// TestFullSnapshotDataBitFlips flips a bit at every header byte and at
// random places in the blocks of a full snapshot's data file: a restore
// either fails with ErrCorrupt naming the file and leaves no directory,
// or (only for the header's reserved bytes) restores exactly the state.
func TestFullSnapshotDataBitFlips(t *testing.T) {
	ctx := context.Background()
	for _, comp := range fullMode.compressions() {
		t.Run(comp, func(t *testing.T) {
			st, models, cps := checkpointed(t, fullMode, comp, 1)
			name := cps[0].Handles[0].Files[0].Name
			p := st.Path(name)
			orig := must(os.ReadFile(p)).in(t)
			rng := rand.New(rand.NewPCG(uint64(len(comp)), 3))
			// Every header byte once (with snappy), the bytes that matter
			// with the others, and random bytes in the blocks.
			positions := []int{0, 8, 9, 10, 11, 12}
			if comp == "snappy" {
				positions = []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}
			}
			n := 8
			if testing.Short() {
				n = 3
			}
			for range n {
				positions = append(positions, 16+rng.IntN(len(orig)-16))
			}
			for _, pos := range positions {
				bad := slices.Clone(orig)
				bad[pos] ^= 1 << rng.IntN(8)
				noErr(t, os.WriteFile(p, bad, 0o644))
				dir := filepath.Join(t.TempDir(), "r")
				b, err := backend.Restore(ctx, backend.Int64, backend.Options{Dir: dir}, st, cps[0].Handles)
				if err == nil {
					closeAtEnd(t, b, dir)
					if pos < 12 {
						t.Fatalf("byte %d of the header flipped: restore succeeded", pos)
					}
					if pos >= 16 {
						t.Fatalf("byte %d (in a block) flipped: restore succeeded", pos)
					}
					fxEqual(t, fmt.Sprintf("reserved byte %d flipped", pos), fxRead(t, b), models[0])
					noErr(t, b.Close())
					continue
				}
				wantRestoreErr(t, err, dir, snapshot.ErrCorrupt, name)
			}
			noErr(t, os.WriteFile(p, orig, 0o644))
		})
	}
}

// damageFixture is a checkpoint root with checkpoint 2 of a job at
// parallelism p, which reuses SSTs of checkpoint 1, and the model of its
// content.
type damageFixture struct {
	root  string
	p     int
	model *fxModel
}

func newDamageFixture(t testing.TB, p int) damageFixture {
	t.Helper()
	st := newStorage(t)
	j := newJob(t, st, p, incrementalMode.each())
	for k := range int64(2000) {
		j.setV(k, fxVal(k, 0))
		j.addL(k%23, k)
	}
	j.checkpoint(1, 2)
	for k := int64(0); k < 2000; k += 10 {
		j.setV(k, fxVal(k, 1))
	}
	j.checkpoint(2, 2)
	return damageFixture{root: st.Root(), p: p, model: j.model.clone()}
}

// storage returns a private copy of the fixture's checkpoint root and
// checkpoint 2 in it.
func (f damageFixture) storage(t testing.TB) (*snapshot.Local, *snapshot.Checkpoint) {
	t.Helper()
	root := filepath.Join(t.TempDir(), "chk")
	copyTree(t, f.root, root)
	st := must(snapshot.NewLocal(root)).in(t)
	return st, must(snapshot.Load(context.Background(), st, 2)).in(t)
}

func flipByte(t testing.TB, p string) {
	rewrite(t, p, func(b []byte) []byte { b[len(b)/3] ^= 0x01; return b })
}

func truncateFile(t testing.TB, p string) {
	noErr(t, os.Truncate(p, must(os.Stat(p)).in(t).Size()/2))
}

func deleteFile(t testing.TB, p string) { noErr(t, os.Remove(p)) }

// pick chooses the damaged file of a handle.
type pick func(h *snapshot.Handle) string

// reusedSST is an SST checkpoint 2 reuses from checkpoint 1.
func reusedSST(h *snapshot.Handle) string {
	for _, f := range h.Shared {
		if strings.Contains(f.Name, "-c1-") {
			return f.Name
		}
	}
	return h.Shared[0].Name
}

// newSST is an SST checkpoint 2 uploaded.
func newSST(h *snapshot.Handle) string {
	for _, f := range h.Shared {
		if strings.Contains(f.Name, "-c2-") {
			return f.Name
		}
	}
	return h.Shared[len(h.Shared)-1].Name
}

// private is the private file whose name starts with prefix.
func private(prefix string) pick {
	return func(h *snapshot.Handle) string {
		for _, f := range h.Files {
			if strings.HasPrefix(path.Base(f.Name), prefix) {
				return f.Name
			}
		}
		panic("no private file " + prefix)
	}
}

// baseIndex is the index of the handle restore uses as the base for r.
func baseIndex(hs []snapshot.Handle, r backend.KeyGroupRange) int {
	best, bestN := -1, 0
	for i, h := range hs {
		n := r.Intersect(backend.KeyGroupRange{Start: h.KeyGroupStart, End: h.KeyGroupEnd}).Len()
		if n > bestN {
			best, bestN = i, n
		}
	}
	return best
}

// TestIncrementalRestoreDamagedCheckpoint damages one file of an
// incremental checkpoint (a reused or new SST, MANIFEST, OPTIONS: flipped,
// truncated or missing) and restores it at the same range, rescaled, and
// through non-local storage: every restore that needs the file fails
// naming it, the others succeed.
func TestIncrementalRestoreDamagedCheckpoint(t *testing.T) {
	ctx := context.Background()
	one, two := newDamageFixture(t, 1), newDamageFixture(t, 2)
	damages := []struct {
		name   string
		pick   pick
		damage func(testing.TB, string)
		is     error
	}{
		{"flipped reused SST", reusedSST, flipByte, snapshot.ErrCorrupt},
		{"flipped new SST", newSST, flipByte, snapshot.ErrCorrupt},
		{"truncated SST", reusedSST, truncateFile, snapshot.ErrCorrupt},
		{"missing SST", newSST, deleteFile, fs.ErrNotExist},
		{"flipped MANIFEST", private("MANIFEST"), flipByte, snapshot.ErrCorrupt},
		{"truncated OPTIONS", private("OPTIONS"), truncateFile, snapshot.ErrCorrupt},
		{"missing MANIFEST", private("MANIFEST"), deleteFile, fs.ErrNotExist},
	}
	restores := []struct {
		name string
		fx   damageFixture
		p    int  // parallelism of the restore
		from int  // index of the damaged handle
		hide bool // restore through non-local storage
	}{
		{"same range", one, 1, 0, false},
		{"same range, copied", one, 1, 0, true},
		{"rescaled base", one, 2, 0, false},
		{"base of 2 -> 1", two, 1, 0, false},
		{"other handle of 2 -> 1", two, 1, 1, false},
		{"other handle of 2 -> 1, copied", two, 1, 1, true},
	}
	for _, rs := range restores {
		for _, d := range damages {
			t.Run(rs.name+"/"+d.name, func(t *testing.T) {
				local, cp := rs.fx.storage(t)
				// The base of a 2 -> 1 restore is the first instance's
				// handle (the tie is broken by order); the damage is in
				// handle rs.from.
				if base := baseIndex(cp.Handles, backend.KeyGroupRange{Start: 0, End: fxMaxPar}); rs.p == 1 && rs.fx.p == 2 && base != 0 {
					rs.from = 1 - rs.from
				}
				name := d.pick(&cp.Handles[rs.from])
				d.damage(t, local.Path(name))
				var st snapshot.Storage = local
				if rs.hide {
					st = hiddenStorage{local}
				}
				damaged := backend.KeyGroupRange{Start: cp.Handles[rs.from].KeyGroupStart, End: cp.Handles[rs.from].KeyGroupEnd}
				for i, r := range fxRanges(t, rs.p) {
					dir := filepath.Join(t.TempDir(), "db")
					if i%2 == 1 {
						noErr(t, os.Mkdir(dir, 0o755)) // an existing empty directory
					}
					opts := backend.Options{Dir: dir}
					fxOptions(r, true)(&opts)
					b, err := backend.Restore(ctx, backend.Int64, opts, st, cp.Handles)
					if err == nil {
						closeAtEnd(t, b, dir)
					}
					if rs.fx.p == 1 || r.Intersect(damaged).Len() > 0 {
						if err == nil {
							t.Fatalf("restore of %s with %s succeeded", r, name)
						}
						if !errors.Is(err, d.is) {
							t.Errorf("restore of %s: %v, want %v", r, err, d.is)
						}
						if !strings.Contains(err.Error(), name) {
							t.Errorf("restore of %s: error %q does not name %s", r, err, name)
						}
						if _, serr := os.Stat(dir); !errors.Is(serr, fs.ErrNotExist) {
							entries, _ := os.ReadDir(dir)
							t.Errorf("failed restore left %s behind (%d entries)", dir, len(entries))
						}
					} else if err != nil {
						t.Errorf("restore of %s, which does not need the damaged handle: %v", r, err)
					}
				}
			})
		}
	}
}
