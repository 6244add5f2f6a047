package backend_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pebblestate/pebblestate/backend"
	"github.com/pebblestate/pebblestate/snapshot"
)

// Damaged incremental checkpoints: a restore fails with an error naming
// the file and leaves nothing behind.

// incCopyTree copies a directory tree (files copied, never linked, so that
// damaging the copy leaves the original alone).
func incCopyTree(t testing.TB, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	noErr(t, err)
}

// incFaultFixture is a checkpoint root with checkpoint 2 of a job at
// parallelism p, which reuses SSTs of checkpoint 1, and the model of its
// content.
type incFaultFixture struct {
	root  string
	p     int
	model *incModel
}

func newIncFaultFixture(t testing.TB, p int) incFaultFixture {
	t.Helper()
	st := incStorage(t)
	j := newIncJob(t, st, p, incAlways)
	for k := range int64(2000) {
		j.setV(k, incVal(k, 0))
		j.addL(k%23, k)
	}
	j.checkpoint(1, 2)
	for k := int64(0); k < 2000; k += 10 {
		j.setV(k, incVal(k, 1))
	}
	j.checkpoint(2, 2)
	return incFaultFixture{root: st.Root(), p: p, model: j.model.clone()}
}

// storage returns a private copy of the fixture's checkpoint root and
// checkpoint 2 in it.
func (f incFaultFixture) storage(t testing.TB) (*snapshot.Local, *snapshot.Checkpoint) {
	t.Helper()
	root := filepath.Join(t.TempDir(), "chk")
	incCopyTree(t, f.root, root)
	st, err := snapshot.NewLocal(root)
	noErr(t, err)
	cp, err := snapshot.Load(context.Background(), st, 2)
	noErr(t, err)
	return st, cp
}

func incFlipByte(t testing.TB, p string) {
	b, err := os.ReadFile(p)
	noErr(t, err)
	b[len(b)/3] ^= 0x01
	noErr(t, os.WriteFile(p, b, 0o644))
}

func incTruncateFile(t testing.TB, p string) {
	fi, err := os.Stat(p)
	noErr(t, err)
	noErr(t, os.Truncate(p, fi.Size()/2))
}

func incDeleteFile(t testing.TB, p string) { noErr(t, os.Remove(p)) }

// incPick chooses the damaged file of a handle.
type incPick func(h *snapshot.Handle) string

// incReusedSST is an SST checkpoint 2 reuses from checkpoint 1.
func incReusedSST(h *snapshot.Handle) string {
	for _, f := range h.Shared {
		if strings.Contains(f.Name, "-c1-") {
			return f.Name
		}
	}
	return h.Shared[0].Name
}

func incNewSST(h *snapshot.Handle) string {
	for _, f := range h.Shared {
		if strings.Contains(f.Name, "-c2-") {
			return f.Name
		}
	}
	return h.Shared[len(h.Shared)-1].Name
}

func incPrivate(prefix string) incPick {
	return func(h *snapshot.Handle) string {
		for _, f := range h.Files {
			if strings.HasPrefix(path.Base(f.Name), prefix) {
				return f.Name
			}
		}
		panic("no private file " + prefix)
	}
}

func TestIncRestoreDamagedCheckpoint(t *testing.T) {
	ctx := context.Background()
	one, two := newIncFaultFixture(t, 1), newIncFaultFixture(t, 2)
	damages := []struct {
		name   string
		pick   incPick
		damage func(testing.TB, string)
		is     error
	}{
		{"flipped reused SST", incReusedSST, incFlipByte, snapshot.ErrCorrupt},
		{"flipped new SST", incNewSST, incFlipByte, snapshot.ErrCorrupt},
		{"truncated SST", incReusedSST, incTruncateFile, snapshot.ErrCorrupt},
		{"missing SST", incNewSST, incDeleteFile, fs.ErrNotExist},
		{"flipped MANIFEST", incPrivate("MANIFEST"), incFlipByte, snapshot.ErrCorrupt},
		{"truncated OPTIONS", incPrivate("OPTIONS"), incTruncateFile, snapshot.ErrCorrupt},
		{"missing MANIFEST", incPrivate("MANIFEST"), incDeleteFile, fs.ErrNotExist},
	}
	modes := []struct {
		name string
		fx   incFaultFixture
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
	for _, m := range modes {
		for _, d := range damages {
			t.Run(m.name+"/"+d.name, func(t *testing.T) {
				local, cp := m.fx.storage(t)
				// The base of a 2 -> 1 restore is the first instance's
				// handle (the tie is broken by order); the damage is in
				// handle m.from.
				if base := incBaseIndex(cp.Handles, backend.KeyGroupRange{Start: 0, End: incMaxPar}); m.p == 1 && m.fx.p == 2 && base != 0 {
					m.from = 1 - m.from
				}
				name := d.pick(&cp.Handles[m.from])
				d.damage(t, local.Path(name))
				var st snapshot.Storage = local
				if m.hide {
					st = incHidden{local}
				}
				for i, r := range incRanges(t, m.p) {
					dir := filepath.Join(t.TempDir(), "db")
					if i%2 == 1 {
						noErr(t, os.Mkdir(dir, 0o755)) // an existing empty directory
					}
					b, err := backend.Restore(ctx, backend.Int64, incOpts(dir, r, true), st, cp.Handles)
					if m.fx.p == 1 || r.Intersect(backend.KeyGroupRange{Start: cp.Handles[m.from].KeyGroupStart, End: cp.Handles[m.from].KeyGroupEnd}).Len() > 0 {
						if err == nil {
							b.Close()
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
					} else {
						b.Close()
					}
				}
			})
		}
	}
}

// incBaseIndex is the index of the handle restore uses as the base for r.
func incBaseIndex(hs []snapshot.Handle, r backend.KeyGroupRange) int {
	best, bestN := -1, 0
	for i, h := range hs {
		n := r.Intersect(backend.KeyGroupRange{Start: h.KeyGroupStart, End: h.KeyGroupEnd}).Len()
		if n > bestN {
			best, bestN = i, n
		}
	}
	return best
}

func TestIncRestoreLatestSkipsCorruptMetadata(t *testing.T) {
	// A torn _metadata means checkpoint 2 does not exist: the latest
	// completed checkpoint is 1, and Recover discards 2's files.
	ctx := context.Background()
	st := incStorage(t)
	j := newIncJob(t, st, 1, incAlways)
	for k := range int64(1000) {
		j.setV(k, incVal(k, 0))
	}
	j.checkpoint(1, 2)
	m1 := j.model.clone()
	for k := range int64(1000) {
		j.setV(k, incVal(k, 1))
	}
	j.checkpoint(2, 2)
	p := st.Path(snapshot.MetadataPath(2))
	b, err := os.ReadFile(p)
	noErr(t, err)
	noErr(t, os.WriteFile(p, b[:len(b)-3], 0o644))
	noErr(t, snapshot.Recover(ctx, st))
	incSharedExact(t, st)
	rb, cp, err := backend.RestoreLatest(ctx, backend.Int64, incOpts(t.TempDir(), incAll(), true), st)
	noErr(t, err)
	r := &incJob{t: t, st: st, insts: []*incInstance{{b: rb, s: incRegister(t, rb)}}}
	defer r.close()
	if cp.ID != 1 {
		t.Fatalf("RestoreLatest used checkpoint %d", cp.ID)
	}
	r.verify(m1, "restore of checkpoint 1")
}

func TestIncRestoreIntoNonEmptyDirKeepsIt(t *testing.T) {
	ctx := context.Background()
	fx := newIncFaultFixture(t, 1)
	st, cp := fx.storage(t)
	dir := t.TempDir()
	keep := filepath.Join(dir, "precious")
	noErr(t, os.WriteFile(keep, []byte("x"), 0o644))
	_, err := backend.Restore(ctx, backend.Int64, incOpts(dir, incAll(), true), st, cp.Handles)
	if !errors.Is(err, backend.ErrInvalidArgument) {
		t.Fatalf("restore into a non-empty directory: %v", err)
	}
	if _, err := os.Stat(keep); err != nil {
		t.Errorf("restore into a non-empty directory removed its content: %v", err)
	}
}

// incFailingDeletes is storage whose Delete fails for names containing
// a fragment: a transient failure of retention.
type incFailingDeletes struct {
	snapshot.Storage
	fragment string
}

func (s incFailingDeletes) Delete(ctx context.Context, name string) error {
	if strings.Contains(name, s.fragment) {
		return fmt.Errorf("injected failure deleting %s", name)
	}
	return s.Storage.Delete(ctx, name)
}

func TestIncCheckpointRetentionFailureKeepsCommittedCheckpoint(t *testing.T) {
	// Checkpoint commits the metadata, then applies retention. If retention
	// fails, the checkpoint is nevertheless complete: its metadata is the
	// commit point. Its files must not be deleted as if it had been aborted,
	// or the latest completed checkpoint cannot be restored.
	ctx := context.Background()
	for _, incremental := range []bool{true, false} {
		t.Run(fmt.Sprintf("incremental=%v", incremental), func(t *testing.T) {
			local := incStorage(t)
			st := incFailingDeletes{Storage: local, fragment: snapshot.Dir(1) + "/"}
			b, err := backend.Open(backend.Int64, incOpts(t.TempDir(), incAll(), incremental))
			noErr(t, err)
			j := &incJob{t: t, st: st, insts: []*incInstance{{b: b, s: incRegister(t, b)}}, model: newIncModel()}
			defer j.close()
			for k := range int64(500) {
				j.setV(k, incVal(k, 0))
			}
			_, err = b.Checkpoint(ctx, st, 1)
			noErr(t, err)
			for k := range int64(500) {
				j.setV(k, incVal(k, 1))
			}
			m2 := j.model.clone()
			// Retention after checkpoint 2 fails to delete checkpoint 1.
			_, err = b.Checkpoint(ctx, st, 2)
			t.Logf("Checkpoint(2) with failing retention: %v", err)
			latest, lerr := snapshot.Latest(ctx, local)
			noErr(t, lerr)
			if latest.ID != 2 {
				return // not committed: nothing to check
			}
			if err != nil {
				t.Logf("checkpoint 2 is committed although Checkpoint returned an error")
			}
			rb, rerr := backend.Restore(ctx, backend.Int64, incOpts(t.TempDir(), incAll(), incremental), local, latest.Handles)
			if rerr != nil {
				t.Fatalf("BUG: the latest completed checkpoint 2 cannot be restored after its retention failed: %v", rerr)
			}
			r := &incJob{t: t, st: local, insts: []*incInstance{{b: rb, s: incRegister(t, rb)}}}
			defer r.close()
			r.verify(m2, "restore of checkpoint 2")
		})
	}
}
