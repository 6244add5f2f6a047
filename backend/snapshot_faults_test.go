package backend_test

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/pebblestate/pebblestate/backend"
	"github.com/pebblestate/pebblestate/snapshot"
)

// Faults: storage that fails, and checkpoints damaged on disk. Every
// failure must be a clear error naming the file, never a panic, and never
// a half-restored backend.

var errSnInjected = errors.New("injected storage fault")

// snFaultStorage wraps a Storage and fails the operations its hooks pick.
type snFaultStorage struct {
	snapshot.Storage
	mu         sync.Mutex
	createErr  func(name string) bool
	writeLimit func(name string) int // bytes a file may take before Write fails; <0 unlimited
	commitErr  func(name string) bool
	deleteErr  func(name string) bool
}

func (s *snFaultStorage) hook(f func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f()
}

func (s *snFaultStorage) Create(ctx context.Context, name string) (snapshot.FileWriter, error) {
	s.mu.Lock()
	createErr, writeLimit, commitErr := s.createErr, s.writeLimit, s.commitErr
	s.mu.Unlock()
	if createErr != nil && createErr(name) {
		return nil, fmt.Errorf("create %s: %w", name, errSnInjected)
	}
	w, err := s.Storage.Create(ctx, name)
	if err != nil {
		return nil, err
	}
	limit := -1
	if writeLimit != nil {
		limit = writeLimit(name)
	}
	return &snFaultWriter{FileWriter: w, name: name, left: limit, commitErr: commitErr != nil && commitErr(name)}, nil
}

func (s *snFaultStorage) Delete(ctx context.Context, name string) error {
	s.mu.Lock()
	deleteErr := s.deleteErr
	s.mu.Unlock()
	if deleteErr != nil && deleteErr(name) {
		return fmt.Errorf("delete %s: %w", name, errSnInjected)
	}
	return s.Storage.Delete(ctx, name)
}

type snFaultWriter struct {
	snapshot.FileWriter
	name      string
	left      int
	commitErr bool
}

func (w *snFaultWriter) Write(p []byte) (int, error) {
	if w.left >= 0 && len(p) > w.left {
		n, _ := w.FileWriter.Write(p[:w.left])
		w.left = 0
		return n, fmt.Errorf("write %s: %w", w.name, errSnInjected)
	}
	if w.left >= 0 {
		w.left -= len(p)
	}
	return w.FileWriter.Write(p)
}

func (w *snFaultWriter) Commit() error {
	if w.commitErr {
		_ = w.FileWriter.Abort()
		return fmt.Errorf("commit %s: %w", w.name, errSnInjected)
	}
	return w.FileWriter.Commit()
}

func isData(name string) bool     { return strings.Contains(name, "/full-") }
func isMetadata(name string) bool { return strings.HasSuffix(name, "/"+snapshot.MetadataName) }

// TestSnapshotFaultsStorage: a snapshot or checkpoint whose storage fails
// returns the error and leaves nothing behind.
func TestSnapshotFaultsStorage(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name  string
		setup func(s *snFaultStorage)
	}{
		{"create data", func(s *snFaultStorage) { s.createErr = isData }},
		{"first write of data", func(s *snFaultStorage) {
			s.writeLimit = func(n string) int { return map[bool]int{true: 0, false: -1}[isData(n)] }
		}},
		{"write of data after 100 bytes", func(s *snFaultStorage) {
			s.writeLimit = func(n string) int { return map[bool]int{true: 100, false: -1}[isData(n)] }
		}},
		{"write of data after 20000 bytes", func(s *snFaultStorage) {
			s.writeLimit = func(n string) int { return map[bool]int{true: 20000, false: -1}[isData(n)] }
		}},
		{"commit data", func(s *snFaultStorage) { s.commitErr = isData }},
		{"create metadata", func(s *snFaultStorage) { s.createErr = isMetadata }},
		{"write metadata", func(s *snFaultStorage) {
			s.writeLimit = func(n string) int { return map[bool]int{true: 10, false: -1}[isMetadata(n)] }
		}},
		{"commit metadata", func(s *snFaultStorage) { s.commitErr = isMetadata }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			local := snStorage(t)
			st := &snFaultStorage{Storage: local}
			c.setup(st)
			b := MustOpenK(t, backend.Int64, withOptions(backend.Options{SnapshotCompression: "none"}))
			snBigState(t, b, 1000)
			_, err := b.Checkpoint(ctx, st, 1)
			if !errors.Is(err, errSnInjected) {
				t.Fatalf("Checkpoint = %v; want the injected fault", err)
			}
			snEmptyRoot(t, local.Root(), "after a failed checkpoint")
			// The backend still works, and the next checkpoint succeeds.
			*st = snFaultStorage{Storage: local}
			cp, err := b.Checkpoint(ctx, st, 2)
			noErr(t, err)
			if got := len(snRead(t, MustRestore(t, backend.Int64, local, cp.Handles)).v); got != 1000 {
				t.Fatalf("restored %d keys", got)
			}
		})
	}
}

// TestSnapshotFaultsRetentionFails: the checkpoint is committed, then
// retention fails to delete an old one. The checkpoint exists (its
// metadata is written), so its data must not be deleted as if it had been
// aborted.
func TestSnapshotFaultsRetentionFails(t *testing.T) {
	ctx := context.Background()
	local := snStorage(t)
	st := &snFaultStorage{Storage: local}
	b := MustOpenK(t, backend.Int64)
	s := snRegister(t, b)
	model := newSnModel()
	snApply(t, b, s, model, rand.New(rand.NewPCG(8, 8)), 500, 100, "one")
	_, err := b.Checkpoint(ctx, st, 1)
	noErr(t, err)
	snApply(t, b, s, model, rand.New(rand.NewPCG(9, 9)), 500, 100, "two")
	st.hook(func() { st.deleteErr = func(n string) bool { return strings.HasPrefix(n, "chk-1/") } })
	_, err = b.Checkpoint(ctx, st, 2)
	t.Logf("Checkpoint(2) with retention failing = %v", err)
	cp, lerr := snapshot.Latest(ctx, local)
	noErr(t, lerr)
	r, rerr := backend.Restore(ctx, backend.Int64, backend.Options{Dir: filepath.Join(t.TempDir(), "r")}, local, cp.Handles)
	if rerr != nil {
		t.Fatalf("BUG: checkpoint %d was committed, but after retention failed (%v) Checkpoint deleted its data as aborted: restore = %v; storage: %v",
			cp.ID, err, rerr, snTree(t, local.Root()))
	}
	defer r.Close()
	snEqual(t, fmt.Sprint("latest checkpoint ", cp.ID), snRead(t, r), model)
}

// TestSnapshotFaultsCorruptRetainedMetadata: with two checkpoints
// retained, the older one's metadata rots. Taking the next checkpoint must
// leave a restorable latest checkpoint (retention reads the retained
// metadata, fails on the corrupt one, and Checkpoint must not then delete
// the data of the checkpoint it has just committed).
func TestSnapshotFaultsCorruptRetainedMetadata(t *testing.T) {
	ctx := context.Background()
	st := snStorage(t)
	b := MustOpenK(t, backend.Int64, withOptions(backend.Options{RetainedCheckpoints: 2}))
	s := snRegister(t, b)
	model := newSnModel()
	snApply(t, b, s, model, rand.New(rand.NewPCG(10, 10)), 500, 100, "one")
	_, err := b.Checkpoint(ctx, st, 1)
	noErr(t, err)
	snRewrite(t, st.Path(snapshot.MetadataPath(1)), func(b []byte) []byte { b[30] ^= 4; return b })
	snApply(t, b, s, model, rand.New(rand.NewPCG(11, 11)), 500, 100, "two")
	_, err = b.Checkpoint(ctx, st, 2)
	t.Logf("Checkpoint(2) with checkpoint 1's metadata corrupt = %v", err)
	cp, lerr := snapshot.Latest(ctx, st)
	if lerr != nil {
		t.Fatalf("no checkpoint left: %v (storage %v)", lerr, snTree(t, st.Root()))
	}
	r, rerr := backend.Restore(ctx, backend.Int64, backend.Options{Dir: filepath.Join(t.TempDir(), "r")}, st, cp.Handles)
	if rerr != nil {
		t.Fatalf("BUG: latest checkpoint %d cannot be restored after Checkpoint failed with %v: %v (storage %v)", cp.ID, err, rerr, snTree(t, st.Root()))
	}
	defer r.Close()
	snEqual(t, fmt.Sprint("latest checkpoint ", cp.ID), snRead(t, r), model)
}

// snCheckpointed returns a backend's model after a checkpoint 1 and the
// storage holding it.
func snCheckpointed(t testing.TB, comp string, ids ...int64) (*snapshot.Local, []*snModel, []*snapshot.Checkpoint) {
	t.Helper()
	st := snStorage(t)
	b := MustOpenK(t, backend.Int64, withOptions(backend.Options{SnapshotCompression: comp, RetainedCheckpoints: len(ids)}))
	s := snRegister(t, b)
	model := newSnModel()
	var models []*snModel
	var cps []*snapshot.Checkpoint
	for _, id := range ids {
		snApply(t, b, s, model, rand.New(rand.NewPCG(uint64(id), 77)), 800, 150, fmt.Sprint("c", id))
		cp, err := b.Checkpoint(context.Background(), st, id)
		noErr(t, err)
		models = append(models, model.clone())
		cps = append(cps, cp)
	}
	return st, models, cps
}

// snWantRestoreErr checks err is target, names every fragment, and that
// the restore directory is gone.
func snWantRestoreErr(t testing.TB, err error, dir string, target error, fragments ...string) {
	t.Helper()
	if err == nil {
		t.Fatal("restore succeeded")
	}
	if target != nil && !errors.Is(err, target) {
		t.Fatalf("error %q is not %v", err, target)
	}
	for _, f := range fragments {
		if !strings.Contains(err.Error(), f) {
			t.Fatalf("error %q does not name %q", err, f)
		}
	}
	if _, serr := os.Stat(dir); !errors.Is(serr, fs.ErrNotExist) {
		t.Fatalf("a failed restore left %s", dir)
	}
}

func snRewrite(t testing.TB, p string, f func([]byte) []byte) {
	t.Helper()
	data, err := os.ReadFile(p)
	noErr(t, err)
	noErr(t, os.WriteFile(p, f(data), 0o644))
}

// snReframe rewrites a metadata file with another version or a changed
// checkpoint, with a correct length and checksum.
func snReframe(t testing.TB, p string, version uint32, mutate func(*snapshot.Checkpoint)) {
	t.Helper()
	data, err := os.ReadFile(p)
	noErr(t, err)
	cp, err := snapshot.DecodeMetadata(p, data)
	noErr(t, err)
	if mutate != nil {
		mutate(cp)
	}
	body, err := json.Marshal(cp)
	noErr(t, err)
	out := append([]byte("PBSTMETA"), binary.BigEndian.AppendUint32(nil, version)...)
	out = binary.BigEndian.AppendUint64(out, uint64(len(body)))
	out = append(out, body...)
	out = binary.BigEndian.AppendUint32(out, crc32.Checksum(out, crc32.MakeTable(crc32.Castagnoli)))
	noErr(t, os.WriteFile(p, out, 0o644))
}

// TestSnapshotFaultsCorruptNewestMetadata: a newest checkpoint whose
// metadata does not verify does not exist; the one before is restored.
func TestSnapshotFaultsCorruptNewestMetadata(t *testing.T) {
	ctx := context.Background()
	st, models, _ := snCheckpointed(t, "snappy", 1, 2)
	meta2 := st.Path(snapshot.MetadataPath(2))
	snRewrite(t, meta2, func(b []byte) []byte { b[len(b)/2] ^= 0x08; return b })

	dir := filepath.Join(t.TempDir(), "r")
	b, cp, err := backend.RestoreLatest(ctx, backend.Int64, backend.Options{Dir: dir}, st)
	noErr(t, err)
	if cp.ID != 1 {
		t.Fatalf("RestoreLatest used checkpoint %d", cp.ID)
	}
	snEqual(t, "checkpoint 1", snRead(t, b), models[0])
	noErr(t, b.Close())

	b2, err := backend.RestoreFromPath(ctx, backend.Int64, backend.Options{Dir: filepath.Join(t.TempDir(), "r2")}, st.Root())
	noErr(t, err)
	snEqual(t, "checkpoint 1 from the root path", snRead(t, b2), models[0])
	noErr(t, b2.Close())

	// Asked for by path, the corrupt checkpoint is an error naming its
	// metadata.
	dir3 := filepath.Join(t.TempDir(), "r3")
	_, err = backend.RestoreFromPath(ctx, backend.Int64, backend.Options{Dir: dir3}, st.Path("chk-2"))
	snWantRestoreErr(t, err, dir3, snapshot.ErrCorrupt, "chk-2/_metadata")
	b4, err := backend.RestoreFromPath(ctx, backend.Int64, backend.Options{Dir: filepath.Join(t.TempDir(), "r4")}, st.Path("chk-1"))
	noErr(t, err)
	snEqual(t, "checkpoint 1 by path", snRead(t, b4), models[0])
	noErr(t, b4.Close())
}

func TestSnapshotFaultsMetadata(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name    string
		damage  func(t testing.TB, p string)
		target  error
		message []string
	}{
		{"unknown version", func(t testing.TB, p string) { snReframe(t, p, snapshot.MetadataVersion+1, nil) },
			snapshot.ErrCorrupt, []string{"chk-1/_metadata", "version 2"}},
		{"bad magic", func(t testing.TB, p string) { snRewrite(t, p, func(b []byte) []byte { b[0] = 'X'; return b }) },
			snapshot.ErrCorrupt, []string{"chk-1/_metadata", "magic"}},
		{"truncated", func(t testing.TB, p string) { snRewrite(t, p, func(b []byte) []byte { return b[:len(b)-3] }) },
			snapshot.ErrCorrupt, []string{"chk-1/_metadata"}},
		{"empty", func(t testing.TB, p string) { snRewrite(t, p, func([]byte) []byte { return nil }) },
			snapshot.ErrCorrupt, []string{"chk-1/_metadata"}},
		{"bit flip", func(t testing.TB, p string) { snRewrite(t, p, func(b []byte) []byte { b[40] ^= 1; return b }) },
			snapshot.ErrCorrupt, []string{"chk-1/_metadata"}},
		{"block key group outside the handle's range", func(t testing.TB, p string) {
			snReframe(t, p, 1, func(cp *snapshot.Checkpoint) {
				h := &cp.Handles[0]
				h.Blocks[len(h.Blocks)-1].KeyGroup = h.KeyGroupEnd + 3
			})
		}, snapshot.ErrCorrupt, []string{"chk-1/_metadata", "outside the handle's range"}},
		{"holds another checkpoint", func(t testing.TB, p string) {
			snReframe(t, p, 1, func(cp *snapshot.Checkpoint) { cp.ID = 5 })
		}, snapshot.ErrCorrupt, []string{"chk-1/_metadata", "holds checkpoint 5"}},
		{"missing", func(t testing.TB, p string) { noErr(t, os.Remove(p)) }, snapshot.ErrNotExist, []string{"chk-1/_metadata"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st, _, _ := snCheckpointed(t, "snappy", 1)
			c.damage(t, st.Path(snapshot.MetadataPath(1)))
			dir := filepath.Join(t.TempDir(), "r")
			_, err := backend.RestoreFromPath(ctx, backend.Int64, backend.Options{Dir: dir}, st.Path("chk-1"))
			snWantRestoreErr(t, err, dir, c.target, c.message...)
			_, _, err = backend.RestoreLatest(ctx, backend.Int64, backend.Options{Dir: dir}, st)
			snWantRestoreErr(t, err, dir, snapshot.ErrNoCheckpoint)
			_, err = backend.RestoreFromPath(ctx, backend.Int64, backend.Options{Dir: dir}, st.Root())
			snWantRestoreErr(t, err, dir, snapshot.ErrNoCheckpoint)
			// Recover discards the damaged checkpoint entirely.
			noErr(t, snapshot.Recover(ctx, st))
			snEmptyRoot(t, st.Root(), "after Recover")
		})
	}
}

// TestSnapshotFaultsDataBitFlips flips a bit at every header byte and at
// random places in the blocks of the data file: a restore either fails
// with ErrCorrupt naming the file and leaves no directory, or (only for
// the header's reserved bytes) restores exactly the state.
func TestSnapshotFaultsDataBitFlips(t *testing.T) {
	ctx := context.Background()
	for _, comp := range []string{"none", "snappy", "zstd", "s2"} {
		t.Run(comp, func(t *testing.T) {
			st, models, cps := snCheckpointed(t, comp, 1)
			h := cps[0].Handles[0]
			name := h.Files[0].Name
			p := st.Path(name)
			orig, err := os.ReadFile(p)
			noErr(t, err)
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
					if pos < 12 {
						t.Fatalf("byte %d of the header flipped: restore succeeded", pos)
					}
					if pos >= 16 {
						t.Fatalf("byte %d (in a block) flipped: restore succeeded", pos)
					}
					snEqual(t, fmt.Sprintf("reserved byte %d flipped", pos), snRead(t, b), models[0])
					b.Close()
					continue
				}
				snWantRestoreErr(t, err, dir, snapshot.ErrCorrupt, name)
			}
			noErr(t, os.WriteFile(p, orig, 0o644))
		})
	}
}
