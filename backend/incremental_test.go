package backend_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/cockroachdb/pebble/v2"

	"github.com/pebblestate/pebblestate/backend"
	"github.com/pebblestate/pebblestate/snapshot"
)

// Incremental checkpoints through the backend. The helpers here (inc
// prefix) are shared by the incremental_*_test.go files: a small model of
// three states, a "job" of parallel instances that routes keys by key
// group, checkpoints all of them as one checkpoint and restores them at any
// parallelism, and checks of what storage holds.

const incMaxPar = backend.DefaultMaxParallelism

// incOpts are the options of one instance: small memtables, so that even
// small states span several SSTs.
func incOpts(dir string, r backend.KeyGroupRange, incremental bool) backend.Options {
	return backend.Options{
		Dir: dir, KeyGroups: r, IncrementalCheckpoints: incremental,
		MemTableSize: 1 << 20, UploadWorkers: 3, TTLSweepInterval: -1,
	}
}

func incAll() backend.KeyGroupRange { return backend.KeyGroupRange{Start: 0, End: incMaxPar} }

func incStorage(t testing.TB) *snapshot.Local {
	t.Helper()
	st, err := snapshot.NewLocal(filepath.Join(t.TempDir(), "chk"))
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// incHidden is checkpoint storage that is not a *snapshot.Local, as any
// remote implementation: restore must copy its files, not link them.
type incHidden struct{ snapshot.Storage }

// incState is the states every instance registers.
type incState struct {
	v *backend.Value[int64, backend.VoidNamespace, string]
	l *backend.List[int64, backend.VoidNamespace, int64]
	m *backend.Map[int64, backend.VoidNamespace, int64, string]
}

func incRegister(t testing.TB, b *backend.Backend[int64]) incState {
	t.Helper()
	v, err := backend.GetValue(b, backend.ValueDescriptor[string]{Name: "v", Codec: backend.String})
	noErr(t, err)
	l, err := backend.GetList(b, backend.ListDescriptor[int64]{Name: "l", Codec: backend.Int64})
	noErr(t, err)
	m, err := backend.GetMap(b, backend.MapDescriptor[int64, string]{Name: "m", KeyCodec: backend.Int64, ValueCodec: backend.String})
	noErr(t, err)
	return incState{v, l, m}
}

// incModel is what the states should hold.
type incModel struct {
	V map[int64]string
	L map[int64][]int64
	M map[int64]map[int64]string
}

func newIncModel() *incModel {
	return &incModel{V: map[int64]string{}, L: map[int64][]int64{}, M: map[int64]map[int64]string{}}
}

func (m *incModel) clone() *incModel {
	c := newIncModel()
	maps.Copy(c.V, m.V)
	for k, l := range m.L {
		c.L[k] = slices.Clone(l)
	}
	for k, e := range m.M {
		c.M[k] = maps.Clone(e)
	}
	return c
}

// normalize drops empty lists and maps, which are the same as none.
func (m *incModel) normalize() {
	maps.DeleteFunc(m.L, func(_ int64, l []int64) bool { return len(l) == 0 })
	maps.DeleteFunc(m.M, func(_ int64, e map[int64]string) bool { return len(e) == 0 })
}

func (m *incModel) size() int { return len(m.V) + len(m.L) + len(m.M) }

// incDiff describes the first differences between two models, or "".
func incDiff(want, got *incModel) string {
	want, got = want.clone(), got.clone()
	want.normalize()
	got.normalize()
	if reflect.DeepEqual(want, got) {
		return ""
	}
	var out []string
	add := func(s string, args ...any) {
		if len(out) < 8 {
			out = append(out, fmt.Sprintf(s, args...))
		}
	}
	for k, w := range want.V {
		if g, ok := got.V[k]; !ok || g != w {
			add("v[%d] = %q (present %v), want %q", k, g, ok, w)
		}
	}
	for k, g := range got.V {
		if _, ok := want.V[k]; !ok {
			add("v[%d] = %q, want none", k, g)
		}
	}
	for k, w := range want.L {
		if g := got.L[k]; !slices.Equal(g, w) {
			add("l[%d] = %v, want %v", k, g, w)
		}
	}
	for k, g := range got.L {
		if _, ok := want.L[k]; !ok {
			add("l[%d] = %v, want none", k, g)
		}
	}
	for k, w := range want.M {
		if g := got.M[k]; !maps.Equal(g, w) {
			add("m[%d] = %v, want %v", k, g, w)
		}
	}
	for k, g := range got.M {
		if _, ok := want.M[k]; !ok {
			add("m[%d] = %v, want none", k, g)
		}
	}
	return fmt.Sprintf("%d/%d/%d values/lists/maps, want %d/%d/%d:\n  %s",
		len(got.V), len(got.L), len(got.M), len(want.V), len(want.L), len(want.M), strings.Join(out, "\n  "))
}

// incDump reads everything an instance holds. Every key must belong to the
// instance's key groups.
func incDump(t testing.TB, b *backend.Backend[int64], s incState) *incModel {
	t.Helper()
	m := newIncModel()
	keysOf := func(seq func(func(int64, error) bool)) []int64 {
		var ks []int64
		for k, err := range seq {
			noErr(t, err)
			ks = append(ks, k)
		}
		slices.Sort(ks)
		return slices.Compact(ks)
	}
	set := func(k int64) {
		kg, err := backend.KeyGroupOf(backend.Int64, k, b.MaxParallelism())
		noErr(t, err)
		if !b.KeyGroups().Contains(kg) {
			t.Fatalf("instance %s holds key %d of key group %d", b.KeyGroups(), k, kg)
		}
		noErr(t, b.SetCurrentKey(k))
	}
	for _, k := range keysOf(s.v.KeysInNamespace(backend.VoidNamespace{})) {
		set(k)
		v, ok, err := s.v.Get()
		noErr(t, err)
		if ok {
			m.V[k] = v
		}
	}
	for _, k := range keysOf(s.l.KeysInNamespace(backend.VoidNamespace{})) {
		set(k)
		l, err := s.l.Get()
		noErr(t, err)
		m.L[k] = l
	}
	for _, k := range keysOf(s.m.KeysInNamespace(backend.VoidNamespace{})) {
		set(k)
		e := map[int64]string{}
		for x, err := range s.m.Entries() {
			noErr(t, err)
			e[x.Key] = x.Value
		}
		m.M[k] = e
	}
	return m
}

// incInstance is one parallel instance of the job.
type incInstance struct {
	b *backend.Backend[int64]
	s incState
}

// incJob is an operator's instances with the model of their state.
type incJob struct {
	t     testing.TB
	st    snapshot.Storage
	insts []*incInstance
	model *incModel
}

// incRanges are the key groups of parallelism p.
func incRanges(t testing.TB, p int) []backend.KeyGroupRange {
	rs := make([]backend.KeyGroupRange, p)
	for i := range p {
		r, err := backend.KeyGroupRangeForSubtask(incMaxPar, p, i)
		noErr(t, err)
		rs[i] = r
	}
	return rs
}

// newIncJob opens p fresh instances; incremental says which take
// incremental snapshots.
func newIncJob(t testing.TB, st snapshot.Storage, p int, incremental func(i int) bool) *incJob {
	t.Helper()
	j := &incJob{t: t, st: st, model: newIncModel()}
	for i, r := range incRanges(t, p) {
		b, err := backend.Open(backend.Int64, incOpts(filepath.Join(t.TempDir(), "db"), r, incremental(i)))
		noErr(t, err)
		j.insts = append(j.insts, &incInstance{b: b, s: incRegister(t, b)})
	}
	t.Cleanup(j.close)
	return j
}

// restoreIncJob restores handles at parallelism p; model is the state they
// hold.
func restoreIncJob(t testing.TB, st snapshot.Storage, handles []snapshot.Handle, p int, incremental func(i int) bool, model *incModel) *incJob {
	t.Helper()
	j := &incJob{t: t, st: st, model: model.clone()}
	for i, r := range incRanges(t, p) {
		b, err := backend.Restore(context.Background(), backend.Int64, incOpts(filepath.Join(t.TempDir(), "db"), r, incremental(i)), st, handles)
		if err != nil {
			j.close()
			t.Fatalf("restore instance %d of %d (%s): %v", i, p, r, err)
		}
		j.insts = append(j.insts, &incInstance{b: b, s: incRegister(t, b)})
	}
	t.Cleanup(j.close)
	return j
}

func (j *incJob) close() {
	for _, in := range j.insts {
		if err := in.b.Close(); err != nil {
			j.t.Errorf("close: %v", err)
		}
	}
}

func incAlways(int) bool { return true }

// at makes k the current key of its instance and returns the instance.
func (j *incJob) at(k int64) *incInstance {
	kg, err := backend.KeyGroupOf(backend.Int64, k, incMaxPar)
	noErr(j.t, err)
	for _, in := range j.insts {
		if in.b.KeyGroups().Contains(kg) {
			noErr(j.t, in.b.SetCurrentKey(k))
			return in
		}
	}
	j.t.Fatalf("no instance owns key group %d", kg)
	return nil
}

func (j *incJob) setV(k int64, v string) {
	noErr(j.t, j.at(k).s.v.Update(v))
	j.model.V[k] = v
}

func (j *incJob) clearV(k int64) {
	noErr(j.t, j.at(k).s.v.Clear())
	delete(j.model.V, k)
}

func (j *incJob) addL(k, e int64) {
	noErr(j.t, j.at(k).s.l.Add(e))
	j.model.L[k] = append(j.model.L[k], e)
}

func (j *incJob) clearL(k int64) {
	noErr(j.t, j.at(k).s.l.Clear())
	delete(j.model.L, k)
}

func (j *incJob) putM(k, uk int64, uv string) {
	noErr(j.t, j.at(k).s.m.Put(uk, uv))
	if j.model.M[k] == nil {
		j.model.M[k] = map[int64]string{}
	}
	j.model.M[k][uk] = uv
}

func (j *incJob) removeM(k, uk int64) {
	noErr(j.t, j.at(k).s.m.Remove(uk))
	delete(j.model.M[k], uk)
}

func (j *incJob) clearM(k int64) {
	noErr(j.t, j.at(k).s.m.Clear())
	delete(j.model.M, k)
}

// snapshot takes the synchronous part on every instance.
func (j *incJob) snapshot(id int64) []*backend.AsyncSnapshot {
	j.t.Helper()
	snaps := make([]*backend.AsyncSnapshot, len(j.insts))
	for i, in := range j.insts {
		s, err := in.b.Snapshot(id, j.st)
		noErr(j.t, err)
		snaps[i] = s
	}
	return snaps
}

// incRunAll runs snapshots concurrently and returns their handles.
func incRunAll(ctx context.Context, snaps []*backend.AsyncSnapshot) ([]snapshot.Handle, error) {
	hs := make([]snapshot.Handle, len(snaps))
	errs := make([]error, len(snaps))
	var wg sync.WaitGroup
	for i, s := range snaps {
		wg.Go(func() { hs[i], errs[i] = s.Run(ctx) })
	}
	wg.Wait()
	return hs, errors.Join(errs...)
}

// checkpoint takes checkpoint id of every instance, completes it keeping
// keep checkpoints and notifies the instances.
func (j *incJob) checkpoint(id int64, keep int) *snapshot.Checkpoint {
	j.t.Helper()
	ctx := context.Background()
	hs, err := incRunAll(ctx, j.snapshot(id))
	noErr(j.t, err)
	cp := &snapshot.Checkpoint{ID: id, Handles: hs}
	if err := snapshot.Complete(ctx, j.st, cp, keep); err != nil {
		j.t.Fatalf("complete checkpoint %d: %v", id, err)
	}
	for _, in := range j.insts {
		noErr(j.t, in.b.NotifyCheckpointComplete(id))
	}
	return cp
}

// verify checks that the instances together hold exactly want, every key
// in exactly one instance: the one owning its key group.
func (j *incJob) verify(want *incModel, what string) {
	j.t.Helper()
	all := newIncModel()
	for _, in := range j.insts {
		got := incDump(j.t, in.b, in.s)
		for k, v := range got.V {
			if _, dup := all.V[k]; dup {
				j.t.Fatalf("%s: value key %d in two instances", what, k)
			}
			all.V[k] = v
		}
		for k, l := range got.L {
			if _, dup := all.L[k]; dup {
				j.t.Fatalf("%s: list key %d in two instances", what, k)
			}
			all.L[k] = l
		}
		for k, e := range got.M {
			if _, dup := all.M[k]; dup {
				j.t.Fatalf("%s: map key %d in two instances", what, k)
			}
			all.M[k] = e
		}
	}
	if d := incDiff(want, all); d != "" {
		j.t.Fatalf("%s: %s", what, d)
	}
}

// incSharedExact checks that shared/ holds exactly the files the completed
// checkpoints reference, and that every checkpoint directory is a
// completed checkpoint's: what storage holds when nothing is in flight.
func incSharedExact(t testing.TB, st snapshot.Storage) {
	t.Helper()
	ctx := context.Background()
	ids, err := snapshot.Completed(ctx, st)
	noErr(t, err)
	refs, err := snapshot.SharedRefs(ctx, st, ids)
	noErr(t, err)
	names, err := st.List(ctx, snapshot.SharedDir+"/")
	noErr(t, err)
	var extra, missing []string
	for _, n := range names {
		if refs[n] == 0 {
			extra = append(extra, n)
		}
	}
	for n := range refs {
		if !slices.Contains(names, n) {
			missing = append(missing, n)
		}
	}
	if len(extra)+len(missing) > 0 {
		t.Fatalf("shared/ of checkpoints %v: unreferenced %v, missing %v", ids, extra, missing)
	}
	all, err := st.List(ctx, "chk-")
	noErr(t, err)
	for _, n := range all {
		dir, _, _ := strings.Cut(n, "/")
		ok := false
		for _, id := range ids {
			ok = ok || dir == snapshot.Dir(id)
		}
		if !ok {
			t.Fatalf("%s belongs to no completed checkpoint (completed: %v)", n, ids)
		}
	}
}

// incNames returns the storage names of a handle's shared files.
func incNames(hs ...snapshot.Handle) map[string]bool {
	m := map[string]bool{}
	for _, h := range hs {
		for _, f := range h.Shared {
			m[f.Name] = true
		}
	}
	return m
}

// incExists reports whether a file is in storage.
func incExists(t testing.TB, st snapshot.Storage, name string) bool {
	t.Helper()
	f, err := st.Open(context.Background(), name)
	if errors.Is(err, snapshot.ErrNotExist) {
		return false
	}
	noErr(t, err)
	f.Close()
	return true
}

// incVal is a value of about 64 bytes.
func incVal(k int64, version int) string {
	return fmt.Sprintf("value of key %08d, version %04d, padded to make it larger", k, version)
}

func TestIncSecondCheckpointUploadsLittle(t *testing.T) {
	ctx := context.Background()
	st := incStorage(t)
	opts := incOpts(t.TempDir(), incAll(), true)
	opts.RetainedCheckpoints = 3
	b, err := backend.Open(backend.Int64, opts)
	noErr(t, err)
	j := &incJob{t: t, st: st, insts: []*incInstance{{b: b, s: incRegister(t, b)}}, model: newIncModel()}
	t.Cleanup(j.close)
	const n = 8_000
	for k := range int64(n) {
		j.setV(k, incVal(k, 0))
	}
	// Settle the LSM before the first checkpoint. The writes went through
	// many 1 MiB memtables into L0 files, which Pebble compacts down in the
	// background at its own pace. Were those files uploaded as they are,
	// the compactions that follow would rewrite most of the data into new
	// SSTs and the second checkpoint would upload them all again, whatever
	// the change. Compacted into the bottom level, the data stays in the
	// same files, and the 1% change is one small flushed SST.
	noErr(t, b.Compact(ctx))
	cp1, err := b.Checkpoint(ctx, st, 1)
	noErr(t, err)
	for k := int64(0); k < n; k += 100 {
		j.setV(k, incVal(k, 1))
	}
	cp2, err := b.Checkpoint(ctx, st, 2)
	noErr(t, err)
	m2 := j.model.clone()
	h1, h2 := cp1.Handles[0], cp2.Handles[0]
	t.Logf("checkpoint 1: %d of %d bytes, %d SSTs; checkpoint 2: %d of %d bytes, %d SSTs",
		h1.CheckpointedSize, h1.StateSize, len(h1.Shared), h2.CheckpointedSize, h2.StateSize, len(h2.Shared))
	if h1.CheckpointedSize != h1.StateSize {
		t.Errorf("first checkpoint uploaded %d of %d bytes", h1.CheckpointedSize, h1.StateSize)
	}
	if h2.CheckpointedSize*10 >= h1.CheckpointedSize {
		t.Errorf("second checkpoint uploaded %d bytes, the first %d: not < 10%%", h2.CheckpointedSize, h1.CheckpointedSize)
	}
	// Every SST of checkpoint 2 is either checkpoint 1's upload, reused
	// under its name, or its own.
	old := incNames(h1)
	for _, f := range h2.Shared {
		if !old[f.Name] && f.Name != snapshot.SharedName(b.InstanceID(), 2, f.LocalName) {
			t.Errorf("checkpoint 2 references %s", f.Name)
		}
	}
	incSharedExact(t, st)
	id := b.InstanceID()
	noErr(t, b.Close())

	// Same range: the restored backend keeps its identity and upload
	// history, so its next checkpoint uploads no SST.
	r := restoreIncJob(t, st, cp2.Handles, 1, incAlways, m2)
	r.verify(m2, "restore of checkpoint 2")
	rb := r.insts[0].b
	if rb.InstanceID() != id {
		t.Errorf("same-range restore changed the instance id from %s to %s", id, rb.InstanceID())
	}
	cp3 := r.checkpoint(3, 3)
	h3 := cp3.Handles[0]
	var private int64
	for _, f := range h3.Files {
		private += f.Size
	}
	t.Logf("checkpoint 3 after restore: %d of %d bytes (%d private)", h3.CheckpointedSize, h3.StateSize, private)
	for _, f := range h3.Shared {
		if !incNames(h2)[f.Name] {
			t.Errorf("checkpoint 3, nothing changed since the restore, uploaded %s", f.Name)
		}
	}
	if h3.CheckpointedSize != private {
		t.Errorf("checkpoint 3 uploaded %d bytes, its private files are %d", h3.CheckpointedSize, private)
	}
	// The restored database shares its SSTs with storage by hard links:
	// working on it must not change them.
	for k := int64(1); k < n; k += 7 {
		r.setV(k, incVal(k, 2))
	}
	noErr(t, rb.Compact(ctx))
	r.close()
	r.insts = nil
	incSharedExact(t, st)
	again := restoreIncJob(t, st, cp3.Handles, 1, incAlways, m2)
	again.verify(m2, "restore of checkpoint 3 after the first restore's database changed")
}

func TestIncRescaledRestoreGetsNewIdentity(t *testing.T) {
	ctx := context.Background()
	st := incStorage(t)
	j := newIncJob(t, st, 1, incAlways)
	for k := range int64(3000) {
		j.setV(k, incVal(k, 0))
		j.addL(k%50, k)
	}
	cp := j.checkpoint(1, 1)
	old := j.insts[0].b.InstanceID()
	for _, p := range []int{2, 3} {
		r := restoreIncJob(t, st, cp.Handles, p, incAlways, j.model)
		r.verify(j.model, fmt.Sprintf("restore at parallelism %d", p))
		for i, in := range r.insts {
			if in.b.InstanceID() == old {
				t.Fatalf("instance %d of %d kept the instance id %s of a different range", i, p, old)
			}
			// Its first checkpoint uploads everything, under its own id.
			s, err := in.b.Snapshot(int64(10+p), st)
			noErr(t, err)
			h, err := s.Run(ctx)
			noErr(t, err)
			if h.CheckpointedSize != h.StateSize {
				t.Errorf("first checkpoint after rescaling uploaded %d of %d bytes", h.CheckpointedSize, h.StateSize)
			}
			for _, f := range h.Shared {
				if f.Name != snapshot.SharedName(in.b.InstanceID(), int64(10+p), f.LocalName) {
					t.Errorf("first checkpoint after rescaling references %s", f.Name)
				}
			}
			noErr(t, in.b.NotifyCheckpointAborted(ctx, int64(10+p), st))
		}
	}
	incSharedExact(t, st)
}

func TestIncAbortedUploadsNeverReused(t *testing.T) {
	for _, notify := range []bool{true, false} {
		t.Run(fmt.Sprintf("notified=%v", notify), func(t *testing.T) {
			ctx := context.Background()
			st := incStorage(t)
			j := newIncJob(t, st, 1, incAlways)
			b := j.insts[0].b
			for k := range int64(4000) {
				j.setV(k, incVal(k, 0))
			}
			cp1 := j.checkpoint(1, 1)
			for k := int64(0); k < 4000; k += 3 {
				j.setV(k, incVal(k, 1))
			}
			s2, err := b.Snapshot(2, st)
			noErr(t, err)
			h2, err := s2.Run(ctx)
			noErr(t, err)
			var new2 []string
			for _, f := range h2.Shared {
				if !incNames(cp1.Handles...)[f.Name] {
					new2 = append(new2, f.Name)
				}
			}
			if len(new2) == 0 {
				t.Fatal("checkpoint 2 uploaded no SST")
			}
			if notify {
				noErr(t, b.NotifyCheckpointAborted(ctx, 2, st))
				for _, n := range append(slices.Clone(new2), h2.Files[0].Name) {
					if incExists(t, st, n) {
						t.Errorf("%s of aborted checkpoint 2 is still in storage", n)
					}
				}
			}
			// Checkpoint 3 builds on checkpoint 1, the last completed one,
			// never on 2's uploads: it uploads what it needs again.
			m := j.model.clone()
			cp3 := j.checkpoint(3, 1)
			h3 := cp3.Handles[0]
			for _, f := range h3.Shared {
				if strings.Contains(f.Name, "-c2-") {
					t.Errorf("checkpoint 3 reuses %s of checkpoint 2, which never completed", f.Name)
				}
			}
			incSharedExact(t, st)
			r := restoreIncJob(t, st, cp3.Handles, 1, incAlways, m)
			r.verify(m, "restore of checkpoint 3")
		})
	}
}

// incInFlight sets up two checkpoints, 5 and 6, in flight at once on a
// single instance after a completed checkpoint 1; their uploads run
// concurrently with each other and with writes.
func incInFlight(t *testing.T, st snapshot.Storage) (j *incJob, h5, h6 snapshot.Handle, m1, m5, m6 *incModel) {
	ctx := context.Background()
	j = newIncJob(t, st, 1, incAlways)
	b := j.insts[0].b
	for k := range int64(800) {
		j.setV(k, incVal(k, 0))
		j.putM(k%40, k, "a")
	}
	j.checkpoint(1, 2)
	m1 = j.model.clone()
	write := func(version int) {
		for k := int64(version); k < 800; k += 4 {
			j.setV(k, incVal(k, version))
			j.addL(k%30, k)
		}
		noErr(t, b.Flush())
	}
	write(5)
	s5, err := b.Snapshot(5, st)
	noErr(t, err)
	m5 = j.model.clone()
	var wg sync.WaitGroup
	var err5, err6 error
	wg.Go(func() { h5, err5 = s5.Run(ctx) })
	write(6)
	s6, err := b.Snapshot(6, st)
	noErr(t, err)
	m6 = j.model.clone()
	wg.Go(func() { h6, err6 = s6.Run(ctx) })
	write(7)
	wg.Wait()
	noErr(t, errors.Join(err5, err6))
	return j, h5, h6, m1, m5, m6
}

func TestIncNotificationsOutOfOrder(t *testing.T) {
	ctx := context.Background()
	for _, sc := range []struct {
		name string
		// run completes, aborts and notifies; it returns the id of the
		// checkpoint checkpoint 7 must build on.
		run func(t *testing.T, j *incJob, st snapshot.Storage, h5, h6 snapshot.Handle) int64
	}{
		{"complete 6 then 5", func(t *testing.T, j *incJob, st snapshot.Storage, h5, h6 snapshot.Handle) int64 {
			b := j.insts[0].b
			noErr(t, snapshot.Complete(ctx, st, &snapshot.Checkpoint{ID: 6, Handles: []snapshot.Handle{h6}}, 2))
			noErr(t, b.NotifyCheckpointComplete(6))
			err := snapshot.Complete(ctx, st, &snapshot.Checkpoint{ID: 5, Handles: []snapshot.Handle{h5}}, 2)
			if !errors.Is(err, snapshot.ErrSubsumed) {
				t.Fatalf("completing 5 after 6: %v, want ErrSubsumed", err)
			}
			noErr(t, b.NotifyCheckpointAborted(ctx, 5, st))
			return 6
		}},
		{"complete 5 and 6, notified 6 then 5", func(t *testing.T, j *incJob, st snapshot.Storage, h5, h6 snapshot.Handle) int64 {
			b := j.insts[0].b
			noErr(t, snapshot.Complete(ctx, st, &snapshot.Checkpoint{ID: 5, Handles: []snapshot.Handle{h5}}, 2))
			noErr(t, snapshot.Complete(ctx, st, &snapshot.Checkpoint{ID: 6, Handles: []snapshot.Handle{h6}}, 2))
			noErr(t, b.NotifyCheckpointComplete(6))
			noErr(t, b.NotifyCheckpointComplete(5)) // late: must not go back to 5
			return 6
		}},
		{"abort 6, complete 5", func(t *testing.T, j *incJob, st snapshot.Storage, h5, h6 snapshot.Handle) int64 {
			b := j.insts[0].b
			noErr(t, b.NotifyCheckpointAborted(ctx, 6, st))
			for _, f := range h6.Files {
				if incExists(t, st, f.Name) {
					t.Errorf("%s of aborted checkpoint 6 survived", f.Name)
				}
			}
			noErr(t, snapshot.Complete(ctx, st, &snapshot.Checkpoint{ID: 5, Handles: []snapshot.Handle{h5}}, 2))
			noErr(t, b.NotifyCheckpointComplete(5))
			return 5
		}},
		{"abort 5, complete 6", func(t *testing.T, j *incJob, st snapshot.Storage, h5, h6 snapshot.Handle) int64 {
			b := j.insts[0].b
			noErr(t, b.NotifyCheckpointAborted(ctx, 5, st))
			noErr(t, snapshot.Complete(ctx, st, &snapshot.Checkpoint{ID: 6, Handles: []snapshot.Handle{h6}}, 2))
			noErr(t, b.NotifyCheckpointComplete(6))
			return 6
		}},
		{"complete 6, notified 6, abort of 5 and unknown ids", func(t *testing.T, j *incJob, st snapshot.Storage, h5, h6 snapshot.Handle) int64 {
			b := j.insts[0].b
			noErr(t, b.NotifyCheckpointComplete(99)) // never taken: ignored
			noErr(t, snapshot.Complete(ctx, st, &snapshot.Checkpoint{ID: 6, Handles: []snapshot.Handle{h6}}, 2))
			noErr(t, b.NotifyCheckpointComplete(6))
			noErr(t, b.NotifyCheckpointAborted(ctx, 5, st))
			noErr(t, b.NotifyCheckpointAborted(ctx, 42, st))
			noErr(t, b.NotifyCheckpointComplete(5))
			return 6
		}},
		{"both aborted", func(t *testing.T, j *incJob, st snapshot.Storage, h5, h6 snapshot.Handle) int64 {
			b := j.insts[0].b
			noErr(t, b.NotifyCheckpointAborted(ctx, 6, st))
			noErr(t, b.NotifyCheckpointAborted(ctx, 5, st))
			return 1
		}},
	} {
		t.Run(sc.name, func(t *testing.T) {
			st := incStorage(t)
			j, h5, h6, m1, m5, m6 := incInFlight(t, st)
			models := map[int64]*incModel{1: m1, 5: m5, 6: m6}
			for _, f := range append(slices.Clone(h5.Shared), h6.Shared...) {
				if strings.Contains(f.Name, "-c5-") && incNames(h6)[f.Name] {
					t.Errorf("checkpoint 6 reuses %s of checkpoint 5, not completed when 6 was taken", f.Name)
				}
			}
			base := sc.run(t, j, st, h5, h6)
			ids, err := snapshot.Completed(ctx, st)
			noErr(t, err)
			incSharedExact(t, st)
			baseCP, err := snapshot.Load(ctx, st, base)
			noErr(t, err)
			// Checkpoint 7 reuses only the base's uploads.
			m7 := j.model.clone()
			cp7 := j.checkpoint(7, 2)
			h7 := cp7.Handles[0]
			reusable := incNames(baseCP.Handles...)
			for _, f := range h7.Shared {
				if !reusable[f.Name] && !strings.Contains(f.Name, "-c7-") {
					t.Errorf("checkpoint 7 references %s, not an upload of checkpoint %d", f.Name, base)
				}
			}
			incSharedExact(t, st)
			models[7] = m7
			ids, err = snapshot.Completed(ctx, st)
			noErr(t, err)
			for _, id := range ids {
				cp, err := snapshot.Load(ctx, st, id)
				noErr(t, err)
				r := restoreIncJob(t, st, cp.Handles, 1, incAlways, models[id])
				r.verify(models[id], fmt.Sprintf("restore of checkpoint %d", id))
				r.close()
				r.insts = nil
			}
		})
	}
}

func TestIncSnapshotWhileWriting(t *testing.T) {
	// The synchronous part (flush + native checkpoint) fixes the content:
	// writes after it, while the upload runs, are not in the checkpoint.
	ctx := context.Background()
	st := incStorage(t)
	j := newIncJob(t, st, 2, incAlways)
	models := map[int64]*incModel{}
	var cps []*snapshot.Checkpoint
	k := int64(0)
	for id := int64(1); id <= 3; id++ {
		for range 1500 {
			k++
			j.setV(k%2500, incVal(k, int(id)))
			j.putM(k%97, k%13, fmt.Sprint(k))
		}
		snaps := j.snapshot(id)
		models[id] = j.model.clone()
		var hs []snapshot.Handle
		var err error
		done := make(chan struct{})
		go func() { defer close(done); hs, err = incRunAll(ctx, snaps) }()
		// Keep writing, and flushing, while the upload runs.
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
		noErr(t, snapshot.Complete(ctx, st, cp, 3))
		for _, in := range j.insts {
			noErr(t, in.b.NotifyCheckpointComplete(id))
		}
		cps = append(cps, cp)
	}
	incSharedExact(t, st)
	for _, cp := range cps[1:] {
		r := restoreIncJob(t, st, cp.Handles, 2, incAlways, models[cp.ID])
		r.verify(models[cp.ID], fmt.Sprintf("restore of checkpoint %d", cp.ID))
		r.close()
		r.insts = nil
	}
}

func TestIncRescaleMixedHandles(t *testing.T) {
	// Instances of one operator may take full or incremental snapshots;
	// restore mixes them at any parallelism.
	st := incStorage(t)
	j := newIncJob(t, st, 1, incAlways)
	version := 0
	change := func(j *incJob, n int) {
		version++
		for i := range n {
			k := int64((i*7 + version*13) % 1200)
			j.setV(k, incVal(k, version))
			if i%5 == 0 {
				j.addL(k%40, int64(version))
			}
			if i%7 == 0 {
				j.putM(k%60, int64(version), incVal(k, version))
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
		{1, incAlways},                          // 2 -> 1 from mixed handles
		{1, incAlways},                          // 1 -> 1: same range
	} {
		what := fmt.Sprintf("restore of checkpoint %d (parallelism %d) at parallelism %d", id, len(j.insts), step.p)
		model := j.model
		j.close()
		j.insts = nil
		j = restoreIncJob(t, st, cp.Handles, step.p, step.kind, model)
		j.verify(model, what)
		change(j, 300)
		id++
		cp = j.checkpoint(id, 1)
		incSharedExact(t, st)
		j.verify(j.model, what+", after changes")
	}
}

func TestIncRestoreFromNonLocalStorage(t *testing.T) {
	local := incStorage(t)
	st := incHidden{local}
	j := newIncJob(t, st, 2, incAlways)
	for k := range int64(3000) {
		j.setV(k, incVal(k, 0))
		j.addL(k%17, k)
	}
	cp := j.checkpoint(1, 1)
	for _, p := range []int{2, 1, 3} {
		r := restoreIncJob(t, st, cp.Handles, p, incAlways, j.model)
		r.verify(j.model, fmt.Sprintf("restore at parallelism %d from non-local storage", p))
		r.close()
		r.insts = nil
	}
	// The files were copied: the restored database shares no inode with
	// storage.
	dir := t.TempDir()
	b, err := backend.Restore(context.Background(), backend.Int64, incOpts(dir, incRanges(t, 2)[0], true), st, cp.Handles)
	noErr(t, err)
	defer b.Close()
	for _, f := range cp.Handles[0].Shared {
		a, err1 := os.Stat(filepath.Join(dir, f.LocalName))
		c, err2 := os.Stat(local.Path(f.Name))
		if err1 == nil && err2 == nil && os.SameFile(a, c) {
			t.Errorf("%s is hard-linked to %s through a non-local storage", f.LocalName, f.Name)
		}
	}
}

// incStallingStorage holds every write until its context is cancelled,
// after telling started.
type incStallingStorage struct {
	snapshot.Storage
	started chan struct{}
	once    sync.Once
}

func (s *incStallingStorage) Create(ctx context.Context, name string) (snapshot.FileWriter, error) {
	w, err := s.Storage.Create(ctx, name)
	if err != nil {
		return nil, err
	}
	return &incStallingWriter{FileWriter: w, ctx: ctx, s: s}, nil
}

type incStallingWriter struct {
	snapshot.FileWriter
	ctx context.Context
	s   *incStallingStorage
}

func (w *incStallingWriter) Write(p []byte) (int, error) {
	w.s.once.Do(func() { close(w.s.started) })
	<-w.ctx.Done()
	return 0, w.ctx.Err()
}

func TestIncCloseDuringUploadLeavesNothing(t *testing.T) {
	ctx := context.Background()
	local := incStorage(t)
	dir := t.TempDir()
	b, err := backend.Open(backend.Int64, incOpts(dir, incAll(), true))
	noErr(t, err)
	s := incRegister(t, b)
	for k := range int64(2000) {
		noErr(t, b.SetCurrentKey(k))
		noErr(t, s.v.Update(incVal(k, 0)))
	}
	_, err = b.Checkpoint(ctx, local, 1)
	noErr(t, err)
	for k := range int64(2000) {
		noErr(t, b.SetCurrentKey(k))
		noErr(t, s.v.Update(incVal(k, 1)))
	}
	// A snapshot never run is released: its native checkpoint goes.
	s2, err := b.Snapshot(2, local)
	noErr(t, err)
	native := filepath.Join(dir, "checkpoints", snapshot.Dir(2))
	if _, err := os.Stat(native); err != nil {
		t.Fatalf("no native checkpoint at %s: %v", native, err)
	}
	s2.Release()
	if _, err := os.Stat(native); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("released snapshot left %s: %v", native, err)
	}
	if _, err := s2.Run(ctx); err == nil {
		t.Error("Run after Release succeeded")
	}
	// Close while checkpoint 3 uploads: the upload is cancelled and
	// deletes what it wrote.
	st := &incStallingStorage{Storage: local, started: make(chan struct{})}
	s3, err := b.Snapshot(3, st)
	noErr(t, err)
	runErr := make(chan error, 1)
	go func() { _, err := s3.Run(ctx); runErr <- err }()
	<-st.started
	noErr(t, b.Close())
	if err := <-runErr; !errors.Is(err, context.Canceled) {
		t.Errorf("Run cut by Close: %v, want context.Canceled", err)
	}
	incSharedExact(t, local)
	if names, err := local.List(ctx, snapshot.Dir(3)+"/"); err != nil || len(names) > 0 {
		t.Errorf("cancelled checkpoint 3 left %v (%v)", names, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "checkpoints")); err == nil {
		entries, _ := os.ReadDir(filepath.Join(dir, "checkpoints"))
		if len(entries) > 0 {
			t.Errorf("native checkpoints left after Close: %v", entries)
		}
	}
	_ = filepath.WalkDir(local.Root(), func(p string, d os.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(p, ".tmp") {
			t.Errorf("temporary file left: %s", p)
		}
		return nil
	})
}

func TestIncBaseRetiredWhileInFlight(t *testing.T) {
	// Checkpoint 6 is taken while 5 is in flight, so it builds on 4; 7 is
	// taken after 5 completed and builds on 5. When 6 completes with
	// retention 1, 5's uploads that 6 does not reference go, and 7, which
	// reuses them, must be refused rather than committed with missing
	// files. (Flink fails such a checkpoint too.) The job goes on.
	ctx := context.Background()
	st := incStorage(t)
	opts := incOpts(t.TempDir(), incAll(), true)
	opts.Pebble = func(o *pebble.Options) {
		// No compaction: every SST lives on from checkpoint to checkpoint.
		o.L0CompactionThreshold, o.L0CompactionFileThreshold, o.L0StopWritesThreshold = 1000, 1000, 2000
	}
	b, err := backend.Open(backend.Int64, opts)
	noErr(t, err)
	j := &incJob{t: t, st: st, insts: []*incInstance{{b: b, s: incRegister(t, b)}}, model: newIncModel()}
	defer j.close()
	write := func(v int) {
		for k := int64(v); k < 1500; k += 5 {
			j.setV(k, incVal(k, v))
		}
	}
	write(0)
	j.checkpoint(4, 1)
	write(1)
	s5, err := b.Snapshot(5, st)
	noErr(t, err)
	write(2)
	s6, err := b.Snapshot(6, st)
	noErr(t, err)
	m6 := j.model.clone()
	hs, err := incRunAll(ctx, []*backend.AsyncSnapshot{s5, s6})
	noErr(t, err)
	noErr(t, snapshot.Complete(ctx, st, &snapshot.Checkpoint{ID: 5, Handles: hs[:1]}, 1))
	noErr(t, b.NotifyCheckpointComplete(5))
	write(3)
	s7, err := b.Snapshot(7, st)
	noErr(t, err)
	m7 := j.model.clone()
	h7, err := s7.Run(ctx)
	noErr(t, err)
	noErr(t, snapshot.Complete(ctx, st, &snapshot.Checkpoint{ID: 6, Handles: hs[1:]}, 1))
	noErr(t, b.NotifyCheckpointComplete(6))
	for _, h := range append(hs, h7) {
		var ns []string
		for _, f := range h.Shared {
			ns = append(ns, f.Name[strings.LastIndex(f.Name, "-c"):])
		}
		t.Logf("checkpoint %d: %v", h.CheckpointID, ns)
	}
	reuses5 := false
	for _, f := range h7.Shared {
		reuses5 = reuses5 || strings.Contains(f.Name, "-c5-")
	}
	err = snapshot.Complete(ctx, st, &snapshot.Checkpoint{ID: 7, Handles: []snapshot.Handle{h7}}, 1)
	t.Logf("checkpoint 7 reuses uploads of 5: %v; Complete: %v", reuses5, err)
	if !reuses5 {
		t.Errorf("checkpoint 7 does not reuse checkpoint 5's uploads: the scenario did not happen")
	}
	want, latest := m7, int64(7)
	if err != nil {
		if !strings.Contains(err.Error(), "missing") {
			t.Fatalf("Complete(7): %v", err)
		}
		noErr(t, b.NotifyCheckpointAborted(ctx, 7, st))
		want, latest = m6, 6
	} else {
		noErr(t, b.NotifyCheckpointComplete(7))
	}
	incSharedExact(t, st)
	cp, err := snapshot.Latest(ctx, st)
	noErr(t, err)
	if cp.ID != latest {
		t.Fatalf("latest checkpoint %d, want %d", cp.ID, latest)
	}
	r := restoreIncJob(t, st, cp.Handles, 1, incAlways, want)
	r.verify(want, fmt.Sprintf("restore of checkpoint %d", latest))
	r.close()
	r.insts = nil
	write(4)
	m8 := j.model.clone()
	cp8 := j.checkpoint(8, 1)
	incSharedExact(t, st)
	r = restoreIncJob(t, st, cp8.Handles, 2, incAlways, m8)
	r.verify(m8, "restore of checkpoint 8")
}

func TestIncRestoredDatabaseNeverChangesStorage(t *testing.T) {
	// A database restored from local storage hard-links the checkpoint's
	// files. With the WAL on, Pebble replays, rotates and recycles log
	// files, rewrites its MANIFEST and compacts: none of it may write into
	// a linked file, or the checkpoint would be corrupt.
	st := incStorage(t)
	opts := func(dir string) backend.Options {
		o := incOpts(dir, incAll(), true)
		o.EnableWAL = true
		return o
	}
	b, err := backend.Open(backend.Int64, opts(t.TempDir()))
	noErr(t, err)
	j := &incJob{t: t, st: st, insts: []*incInstance{{b: b, s: incRegister(t, b)}}, model: newIncModel()}
	for k := range int64(3000) {
		j.setV(k, incVal(k, 0))
	}
	cp := j.checkpoint(1, 1)
	want := j.model.clone()
	j.close()
	for round := range 2 {
		dir := t.TempDir()
		rb, err := backend.Restore(context.Background(), backend.Int64, opts(dir), st, cp.Handles)
		noErr(t, err)
		r := &incJob{t: t, st: st, insts: []*incInstance{{b: rb, s: incRegister(t, rb)}}, model: want.clone()}
		r.verify(want, fmt.Sprintf("round %d: restore", round))
		for k := range int64(8000) {
			r.setV(k%4000, incVal(k, round+1))
		}
		noErr(t, rb.Compact(context.Background()))
		r.close()
		// Reopen: replays the WAL of the restored database.
		rb, err = backend.Open(backend.Int64, opts(dir))
		noErr(t, err)
		noErr(t, rb.Close())
	}
	// The checkpoint still verifies and restores.
	r := restoreIncJob(t, st, cp.Handles, 1, incAlways, want)
	r.verify(want, "restore after the restored databases worked")
}
