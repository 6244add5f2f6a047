package backend_test

// The snapshot conformance suite, part one: what a checkpoint holds and
// restores to. Every test runs in both modes (forEachMode); the lifecycle
// of a snapshot is in snapshot_lifecycle_test.go, storage faults and
// damaged metadata in snapshot_faults_test.go, damaged data (each mode's
// own format) in snapshot_damage_test.go, the crash test in
// snapshot_crash_test.go, and the tests of incremental snapshots alone in
// snapshot_incremental_test.go.

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pebblestate/pebblestate/backend"
	"github.com/pebblestate/pebblestate/snapshot"
	"github.com/pebblestate/pebblestate/snapshot/incremental"
	"github.com/pebblestate/pebblestate/snapshot/retention"
	"github.com/pebblestate/pebblestate/ttl"
)

// TestSnapshotRoundTrip checkpoints random state, with each compression
// the mode has, and restores it whole and split in three.
func TestSnapshotRoundTrip(t *testing.T) {
	forEachMode(t, func(t *testing.T, m mode) {
		ctx := context.Background()
		st := newStorage(t)
		for i, comp := range m.compressions() {
			t.Run(comp, func(t *testing.T) {
				j := newJob(t, st, 1, m.each(), func(o *backend.Options) { o.SnapshotCompression = comp })
				j.apply(rand.New(rand.NewPCG(uint64(i), 1)), 4000, 700, comp)
				cp := must(j.b().Checkpoint(ctx, st, int64(i+1))).in(t)
				if h := cp.Handles[0]; h.Kind != m.kind() || !m.incremental && h.Compression != comp {
					t.Fatalf("handle says compression %q, kind %q", h.Compression, h.Kind)
				}
				restoreJob(t, st, cp.Handles, 1, m.each(), j.model).verify(j.model, "restored whole")
				restoreJob(t, st, cp.Handles, 3, m.each(), j.model).verify(j.model, "restored in three")
			})
		}
	})
}

// fileMatches checks a file in storage against its reference.
func fileMatches(t testing.TB, st snapshot.Storage, ref snapshot.FileRef) {
	t.Helper()
	data := must(snapshot.ReadFile(context.Background(), st, ref.Name)).in(t)
	if int64(len(data)) != ref.Size || crc32.Checksum(data, crc32.MakeTable(crc32.Castagnoli)) != ref.CRC32C {
		t.Fatalf("%s: %d bytes on disk; handle says %+v", ref.Name, len(data), ref)
	}
}

// TestSnapshotHandle checks what the handle says against the backend and
// the files in storage.
func TestSnapshotHandle(t *testing.T) {
	forEachStorage(t, func(t *testing.T, m mode) {
		ctx := context.Background()
		st := m.storage(t)
		r := backend.KeyGroupRange{Start: 32, End: 96}
		j := newJob(t, st, 1, m.each(), func(o *backend.Options) {
			o.KeyGroups, o.Operator, o.SnapshotCompression = r, "window-op", "zstd"
		})
		b := j.b()
		for k := range int64(300) {
			if kg, _ := backend.KeyGroupOf(backend.Int64, k, fxMaxPar); r.Contains(kg) {
				j.setV(k, "x")
			}
		}
		h := must(must(b.Snapshot(9, st)).in(t).Run(ctx)).in(t)
		if h.Operator != "window-op" || h.InstanceID != b.InstanceID() || h.CheckpointID != 9 || h.Kind != m.kind() ||
			h.MaxParallelism != fxMaxPar || h.KeyGroupStart != 32 || h.KeyGroupEnd != 96 || h.KeyCodec != "int64" {
			t.Fatalf("handle %+v", h)
		}
		var names []string
		for _, s := range h.States {
			names = append(names, s.Name)
		}
		if slices.Sort(names); !slices.Equal(names, []string{"l", "m", "v", "w"}) {
			t.Fatalf("states %v", names)
		}
		noErr(t, h.Validate())
		var size int64
		for _, f := range h.Files {
			fileMatches(t, st, f)
			size += f.Size
		}
		for _, f := range h.Shared {
			fileMatches(t, st, f.FileRef)
			size += f.Size
		}
		if h.StateSize != size || h.CheckpointedSize != size {
			t.Fatalf("files hold %d bytes; handle says state size %d, checkpointed %d (a first checkpoint uploads everything)",
				size, h.StateSize, h.CheckpointedSize)
		}
		if m.incremental {
			if len(h.Shared) == 0 || len(h.Blocks) != 0 {
				t.Fatalf("incremental handle with %d shared files, %d blocks", len(h.Shared), len(h.Blocks))
			}
			for _, f := range h.Files {
				if !strings.HasPrefix(f.Name, incremental.PrivateDir(9, b.WriterID())+"/") {
					t.Fatalf("private file %s outside the instance's directory", f.Name)
				}
			}
			for _, f := range h.Shared {
				if f.Name != snapshot.SharedName(b.WriterID(), 9, f.LocalName) {
					t.Fatalf("shared file %s of local %s", f.Name, f.LocalName)
				}
			}
		} else {
			if h.Compression != "zstd" || len(h.Shared) != 0 || len(h.Files) != 1 ||
				h.Files[0].Name != fmt.Sprintf("chk-9/full-%s.dat", b.WriterID()) {
				t.Fatalf("full handle: compression %q, files %+v, shared %+v", h.Compression, h.Files, h.Shared)
			}
			var entries int64
			for _, blk := range h.Blocks {
				entries += blk.Entries
			}
			if entries != int64(len(j.model.v)) {
				t.Fatalf("blocks hold %d entries, want %d", entries, len(j.model.v))
			}
		}
		// Nothing is committed by Run.
		if _, err := snapshot.Latest(ctx, st); !errors.Is(err, snapshot.ErrNoCheckpoint) {
			t.Fatalf("Run committed a checkpoint: %v", err)
		}
	})
}

// TestSnapshotPointInTime: the task goroutine keeps writing, overwriting
// and deleting while Run writes the snapshot on another goroutine; the
// snapshot holds exactly the state at the synchronous point. Run it under
// -race.
func TestSnapshotPointInTime(t *testing.T) {
	forEachStorage(t, func(t *testing.T, m mode) {
		ctx := context.Background()
		for round, comp := range m.compressions()[:min(2, len(m.compressions()))] {
			t.Run(comp, func(t *testing.T) {
				local := m.storage(t)
				st := newSlowStorage(local, time.Millisecond)
				j := newJob(t, st, 1, m.each(), func(o *backend.Options) { o.SnapshotCompression = comp })
				b := j.b()
				rng := rand.New(rand.NewPCG(uint64(round), 99))
				j.apply(rng, 6000, 800, "before")
				noErr(t, b.Flush()) // some of it in SSTs, some in the memtable
				j.apply(rng, 2000, 800, "memtable")

				snap := must(b.Snapshot(1, st)).in(t)
				atSync := j.model.clone()
				type result struct {
					h   snapshot.Handle
					err error
				}
				done := make(chan result, 1)
				go func() {
					h, err := snap.Run(ctx)
					done <- result{h, err}
				}()
				<-st.started
				var res result
				ops := 0
			loop:
				for {
					select {
					case res = <-done:
						break loop
					default:
					}
					j.apply(rng, 50, 800, fmt.Sprintf("after%d", ops))
					ops += 50
					if ops%1000 == 0 {
						noErr(t, b.Flush())
					}
				}
				noErr(t, res.err)
				if ops == 0 {
					t.Fatal("no writes overlapped the asynchronous part")
				}
				t.Logf("%d operations while the snapshot ran", ops)
				cp := commitCP(t, local, 1, res.h)
				restoreJob(t, local, cp.Handles, 1, m.each(), atSync).verify(atSync, "snapshot")
				// And the live backend has everything written since.
				j.verify(j.model, "live backend")
			})
		}
	})
}

// TestSnapshotWhileWriting: a job of two instances writes, and flushes,
// while the asynchronous parts of three checkpoints in a row run; each
// restores to its synchronous point.
func TestSnapshotWhileWriting(t *testing.T) {
	forEachStorage(t, func(t *testing.T, m mode) {
		ctx := context.Background()
		st := m.storage(t)
		j := newJob(t, st, 2, m.each())
		models := map[int64]*fxModel{}
		var cps []*snapshot.Checkpoint
		k := int64(0)
		for id := int64(1); id <= 3; id++ {
			for range 1500 {
				k++
				j.setV(k%2500, fxVal(k, int(id)))
				j.putM(k%97, k%13, fmt.Sprint(k))
			}
			snaps := j.snapshot(id)
			models[id] = j.model.clone()
			var hs []snapshot.Handle
			var err error
			done := make(chan struct{})
			go func() { defer close(done); hs, err = runAll(ctx, snaps) }()
			for i := range 3000 {
				k++
				j.setV(k%2500, "after the sync part")
				j.addL(k%31, k)
				if i%1000 == 0 {
					for _, in := range j.insts {
						noErr(t, in.b.Flush())
					}
				}
			}
			<-done
			noErr(t, err)
			cp := &snapshot.Checkpoint{ID: id, Handles: hs}
			noErr(t, retention.Complete(ctx, st, cp, 3))
			for _, in := range j.insts {
				noErr(t, in.b.NotifyCheckpointComplete(id))
			}
			cps = append(cps, cp)
		}
		sharedExact(t, st)
		for _, cp := range cps[1:] {
			r := restoreJob(t, st, cp.Handles, 2, m.each(), models[cp.ID])
			r.verify(models[cp.ID], fmt.Sprintf("restore of checkpoint %d", cp.ID))
			r.close()
		}
	})
}

// TestSnapshotConcurrentSnapshots: two snapshots in flight at once, with
// writes between their synchronous points, each restore to their own
// point.
func TestSnapshotConcurrentSnapshots(t *testing.T) {
	forEachStorage(t, func(t *testing.T, m mode) {
		ctx := context.Background()
		st := m.storage(t)
		j := newJob(t, st, 1, m.each())
		rng := rand.New(rand.NewPCG(5, 5))
		j.apply(rng, 3000, 500, "one")
		s1 := must(j.b().Snapshot(1, st)).in(t)
		at1 := j.model.clone()
		j.apply(rng, 3000, 500, "two")
		s2 := must(j.b().Snapshot(2, st)).in(t)
		at2 := j.model.clone()
		j.apply(rng, 1000, 500, "three")
		hs, err := runAll(ctx, []*backend.AsyncSnapshot{s2, s1})
		noErr(t, err)
		cp1 := commitCP(t, st, 1, hs[1])
		cp2 := commitCP(t, st, 2, hs[0])
		restoreJob(t, st, cp1.Handles, 1, m.each(), at1).verify(at1, "checkpoint 1")
		restoreJob(t, st, cp2.Handles, 1, m.each(), at2).verify(at2, "checkpoint 2")
	})
}

// TestSnapshotCheckpointRetained: Checkpoint keeps RetainedCheckpoints
// completed checkpoints (one by default), each restoring to its state.
func TestSnapshotCheckpointRetained(t *testing.T) {
	forEachMode(t, func(t *testing.T, m mode) {
		ctx := context.Background()
		st := newStorage(t)
		j := newJob(t, st, 1, m.each(), func(o *backend.Options) { o.RetainedCheckpoints = 2 })
		rng := rand.New(rand.NewPCG(1, 2))
		var models []*fxModel
		for id := int64(1); id <= 5; id++ {
			j.apply(rng, 500, 200, fmt.Sprint("cp", id))
			models = append(models, j.model.clone())
			cp := must(j.b().Checkpoint(ctx, st, id)).in(t)
			if cp.ID != id || len(cp.Handles) != 1 {
				t.Fatalf("checkpoint %+v", cp)
			}
			want := []int64{id}
			if id > 1 {
				want = []int64{id - 1, id}
			}
			if ids := must(snapshot.Completed(ctx, st)).in(t); !slices.Equal(ids, want) {
				t.Fatalf("after checkpoint %d, completed %v", id, ids)
			}
		}
		var dirs []string
		for _, p := range tree(t, st.Root()) {
			if strings.HasSuffix(p, "/") && (!m.incremental || strings.Count(p, "/") == 1 && strings.HasPrefix(p, "chk-")) {
				dirs = append(dirs, p)
			}
		}
		if !slices.Equal(dirs, []string{"chk-4/", "chk-5/"}) {
			t.Fatalf("directories %v", dirs)
		}
		sharedExact(t, st)
		for _, id := range []int64{4, 5} {
			cp := must(snapshot.Load(ctx, st, id)).in(t)
			restoreJob(t, st, cp.Handles, 1, m.each(), models[id-1]).verify(models[id-1], fmt.Sprint("checkpoint ", id))
		}
		// The default keeps one.
		st1 := newStorage(t)
		j1 := newJob(t, st1, 1, m.each())
		j1.bigState(10)
		for id := int64(1); id <= 3; id++ {
			must(j1.b().Checkpoint(ctx, st1, id)).in(t)
		}
		if ids, _ := snapshot.Completed(ctx, st1); !slices.Equal(ids, []int64{3}) {
			t.Fatalf("default retention kept %v", ids)
		}
		sharedExact(t, st1)
	})
}

// TestSnapshotCheckpointIDReused: taking checkpoint id again must fail and
// must leave the completed checkpoint of that id restorable.
func TestSnapshotCheckpointIDReused(t *testing.T) {
	forEachMode(t, func(t *testing.T, m mode) {
		ctx := context.Background()
		st := newStorage(t)
		j := newJob(t, st, 1, m.each())
		j.apply(rand.New(rand.NewPCG(3, 3)), 1000, 100, "first")
		must(j.b().Checkpoint(ctx, st, 1)).in(t)
		atOne := j.model.clone()
		j.apply(rand.New(rand.NewPCG(4, 4)), 1000, 100, "second")
		if _, err := j.b().Checkpoint(ctx, st, 1); err == nil {
			t.Fatal("a second checkpoint 1 succeeded")
		}
		cp := must(snapshot.Latest(ctx, st)).in(t)
		dir := filepath.Join(t.TempDir(), "r")
		r, err := backend.Restore(ctx, backend.Int64, backend.Options{Dir: dir}, st, cp.Handles)
		if err != nil {
			t.Fatalf("BUG: re-running checkpoint id 1 destroyed the completed checkpoint 1 "+
				"(its data file was overwritten, then deleted as aborted): restore = %v; storage now %v", err, tree(t, st.Root()))
		}
		closeAtEnd(t, r, dir)
		fxEqual(t, "checkpoint 1", fxRead(t, r), atOne)
	})
}

// TestSnapshotUnregisteredStates: states stored by an earlier session but
// not registered in this one are in the snapshot too.
func TestSnapshotUnregisteredStates(t *testing.T) {
	forEachStorage(t, func(t *testing.T, m mode) {
		ctx := context.Background()
		st := m.storage(t)
		dir := filepath.Join(t.TempDir(), "db")
		j := newJob(t, st, 1, m.each(), inDir(dir))
		j.apply(rand.New(rand.NewPCG(7, 7)), 1000, 100, "x")
		j.close()
		b := m.open(t, inDir(dir))
		cp := must(b.Checkpoint(ctx, st, 1)).in(t)
		if len(cp.Handles[0].States) != 4 {
			t.Fatalf("handle lists %d states", len(cp.Handles[0].States))
		}
		fxEqual(t, "restored", fxRead(t, m.restore(t, st, cp.Handles)), j.model)
	})
}

// TestSnapshotEmptyBackend: a backend with no states, and one with empty
// states, checkpoint and restore to nothing.
func TestSnapshotEmptyBackend(t *testing.T) {
	forEachStorage(t, func(t *testing.T, m mode) {
		ctx := context.Background()
		st := m.storage(t)
		b := m.open(t)
		cp := must(b.Checkpoint(ctx, st, 1)).in(t)
		if len(cp.Handles[0].Blocks) != 0 || len(cp.Handles[0].States) != 0 {
			t.Fatalf("handle of an empty backend: %+v", cp.Handles[0])
		}
		fxEqual(t, "restored", fxRead(t, m.restore(t, st, cp.Handles)), newFxModel())
		// States registered but empty.
		fxRegister(t, b)
		cp = must(b.Checkpoint(ctx, st, 2)).in(t)
		if len(cp.Handles[0].Blocks) != 0 || len(cp.Handles[0].States) != 4 {
			t.Fatalf("handle of empty states: %+v", cp.Handles[0])
		}
		fxEqual(t, "restored", fxRead(t, m.restore(t, st, cp.Handles)), newFxModel())
	})
}

// TestSnapshotTTLFullSnapshot: with Cleanup.FullSnapshot, entries and list
// elements expired at the synchronous point are left out of a full
// snapshot; without it they are kept. An incremental snapshot copies the
// SSTs as they are and keeps them either way, as in Flink.
func TestSnapshotTTLFullSnapshot(t *testing.T) {
	forEachStorage(t, func(t *testing.T, m mode) {
		ctx := context.Background()
		st := m.storage(t)
		clock := ttl.NewManualClock(envT0)
		b := m.open(t, withClock(clock), func(o *backend.Options) { o.TTLSweepInterval = -1 })
		cfg := func(full bool) ttl.Config {
			return ttl.Config{TTL: 10 * time.Second, Cleanup: ttl.Cleanup{FullSnapshot: full, DisableBackground: true}}
		}
		type states struct {
			v    *backend.Value[int64, backend.VoidNamespace, string]
			l    *backend.List[int64, backend.VoidNamespace, int64]
			m    *backend.Map[int64, backend.VoidNamespace, int64, string]
			keep *backend.Value[int64, backend.VoidNamespace, string]
			pl   *backend.Value[int64, backend.VoidNamespace, string]
		}
		register := func(b *backend.Backend[int64]) states {
			return states{
				v:    must(backend.GetValue(b, backend.ValueDescriptor[string]{Name: "tv", Codec: backend.String, TTL: cfg(true)})).in(t),
				l:    must(backend.GetList(b, backend.ListDescriptor[int64]{Name: "tl", Codec: backend.Int64, TTL: cfg(true)})).in(t),
				m:    must(backend.GetMap(b, backend.MapDescriptor[int64, string]{Name: "tm", KeyCodec: backend.Int64, ValueCodec: backend.String, TTL: cfg(true)})).in(t),
				keep: must(backend.GetValue(b, backend.ValueDescriptor[string]{Name: "keep", Codec: backend.String, TTL: cfg(false)})).in(t),
				pl:   must(backend.GetValue(b, backend.ValueDescriptor[string]{Name: "plain", Codec: backend.String})).in(t),
			}
		}
		s := register(b)
		for k := range int64(100) { // at t0
			setKey(t, b, k)
			noErr(t, s.v.Update("old"))
			noErr(t, s.l.Add(k))
			noErr(t, s.m.Put(1, "old"))
			noErr(t, s.keep.Update("old"))
			noErr(t, s.pl.Update("old"))
		}
		clock.Advance(6 * time.Second)
		for k := int64(50); k < 150; k++ { // at t0+6s
			setKey(t, b, k)
			noErr(t, s.v.Update("new"))
			noErr(t, s.l.Add(k+1000))
			noErr(t, s.m.Put(2, "new"))
		}
		clock.Advance(5 * time.Second) // t0+11s: what was written at t0 expired
		snap := must(b.Snapshot(1, st)).in(t)
		// Time moves on before Run: the snapshot still filters as of its
		// synchronous point, so the entries written at t0+6s stay.
		clock.Advance(time.Hour)
		cp := commitCP(t, st, 1, must(snap.Run(ctx)).in(t))

		// Restore with the clock back at t0, when nothing had expired, so
		// that every entry in the snapshot is visible.
		r := m.restore(t, st, cp.Handles, withClock(ttl.NewManualClock(envT0)), func(o *backend.Options) { o.TTLSweepInterval = -1 })
		rs := register(r)
		dropped := !m.incremental
		for k := range int64(150) {
			setKey(t, r, k)
			v, vok := getValue(t, rs.v)
			l := must(rs.l.Get()).in(t)
			mm := map[int64]string{}
			for _, e := range collect(t, rs.m.Entries()) {
				mm[e.Key] = e.Value
			}
			keep, keepOK := getValue(t, rs.keep)
			pl, plOK := getValue(t, rs.pl)
			old, young := k < 100, k >= 50
			wantV, wantL, wantM := "", []int64(nil), map[int64]string{}
			if old && !dropped {
				wantV, wantL, wantM[1] = "old", []int64{k}, "old"
			}
			if young {
				wantV, wantL, wantM[2] = "new", append(wantL, k+1000), "new"
			}
			if vok != (wantV != "") || v != wantV || !slices.Equal(l, wantL) || !maps.Equal(mm, wantM) {
				t.Fatalf("key %d: value %q %v, list %v, map %v; want %q, %v, %v (expired entries dropped: %v)", k, v, vok, l, mm, wantV, wantL, wantM, dropped)
			}
			// Without FullSnapshot, and without TTL, everything is kept.
			if keepOK != old || plOK != old || (old && (keep != "old" || pl != "old")) {
				t.Fatalf("key %d: keep %q %v, plain %q %v", k, keep, keepOK, pl, plOK)
			}
		}
	})
}

// TestSnapshotRestoreFromNonLocalStorage: a checkpoint in storage that is
// not a *snapshot.Local restores at any parallelism; an incremental one's
// files are copied, never hard-linked.
func TestSnapshotRestoreFromNonLocalStorage(t *testing.T) {
	forEachMode(t, func(t *testing.T, m mode) {
		local := newStorage(t)
		st := hiddenStorage{local}
		j := newJob(t, st, 2, m.each())
		for k := range int64(3000) {
			j.setV(k, fxVal(k, 0))
			j.addL(k%17, k)
		}
		cp := j.checkpoint(1, 1)
		for _, p := range []int{2, 1, 3} {
			r := restoreJob(t, st, cp.Handles, p, m.each(), j.model)
			r.verify(j.model, fmt.Sprintf("restore at parallelism %d from non-local storage", p))
			r.close()
		}
		dir := t.TempDir()
		m.restore(t, st, cp.Handles, inDir(dir), fxOptions(fxRanges(t, 2)[0], m.incremental))
		for _, f := range cp.Handles[0].Shared {
			a, err1 := os.Stat(filepath.Join(dir, f.LocalName))
			c, err2 := os.Stat(local.Path(f.Name))
			if err1 == nil && err2 == nil && os.SameFile(a, c) {
				t.Errorf("%s is hard-linked to %s through a non-local storage", f.LocalName, f.Name)
			}
		}
	})
}

// TestSnapshotMixedHandlesRescale: instances of one operator may take full
// or incremental snapshots; restore mixes their handles at any
// parallelism, and the restored instances go on checkpointing.
func TestSnapshotMixedHandlesRescale(t *testing.T) {
	forEachS3(t, func(t *testing.T, m mode) {
		st := m.storage(t)
		j := newJob(t, st, 1, incrementalMode.each())
		version := 0
		change := func(j *job, n int) {
			version++
			for i := range n {
				k := int64((i*7 + version*13) % 1200)
				j.setV(k, fxVal(k, version))
				if i%5 == 0 {
					j.addL(k%40, int64(version))
				}
				if i%7 == 0 {
					j.putM(k%60, int64(version), fxVal(k, version))
				}
				if i%50 == 0 {
					j.clearV((k + 1) % 1200)
				}
			}
		}
		change(j, 1200)
		id := int64(1)
		cp := j.checkpoint(id, 1)
		for _, step := range []struct {
			p    int
			kind func(i int) bool
		}{
			{2, func(i int) bool { return i == 0 }}, // 1 -> 2: incremental + full
			{3, func(i int) bool { return i != 1 }}, // 2 -> 3 from mixed handles
			{2, func(i int) bool { return i == 1 }}, // 3 -> 2 from mixed handles
			{1, incrementalMode.each()},             // 2 -> 1 from mixed handles
			{1, incrementalMode.each()},             // 1 -> 1: same range
		} {
			what := fmt.Sprintf("restore of checkpoint %d (parallelism %d) at parallelism %d", id, len(j.insts), step.p)
			model := j.model
			j.close()
			j = restoreJob(t, st, cp.Handles, step.p, step.kind, model)
			j.verify(model, what)
			change(j, 300)
			id++
			cp = j.checkpoint(id, 1)
			sharedExact(t, st)
			j.verify(j.model, what+", after changes")
		}
	})
}
