package backend_test

// The state fixture of the snapshot and restore tests: four states with
// int64 keys (a value, a list, a map and a value in namespaces), a model of
// what they hold, and a job: an operator's parallel instances, each on the
// key groups of its subtask, written through one routing front, taken as
// one checkpoint and restored at any parallelism.

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/pebblestate/pebblestate/backend"
	"github.com/pebblestate/pebblestate/snapshot"
	"github.com/pebblestate/pebblestate/snapshot/retention"
)

// fxMaxPar is the max parallelism of the fixture's jobs.
const fxMaxPar = backend.DefaultMaxParallelism

// fxNamespaces is the number of namespaces the namespaced value uses.
const fxNamespaces = 4

// fxStates are the fixture's states of one backend.
type fxStates struct {
	v *backend.Value[int64, backend.VoidNamespace, string]
	l *backend.List[int64, backend.VoidNamespace, int64]
	m *backend.Map[int64, backend.VoidNamespace, int64, string]
	w *backend.Value[int64, int64, string]
}

// fxRegister registers (or finds) the fixture's states.
func fxRegister(t testing.TB, b *backend.Backend[int64]) fxStates {
	t.Helper()
	return fxStates{
		v: must(backend.GetValue(b, backend.ValueDescriptor[string]{Name: "v", Codec: backend.String})).in(t),
		l: must(backend.GetList(b, backend.ListDescriptor[int64]{Name: "l", Codec: backend.Int64})).in(t),
		m: must(backend.GetMap(b, backend.MapDescriptor[int64, string]{Name: "m", KeyCodec: backend.Int64, ValueCodec: backend.String})).in(t),
		w: must(backend.GetValueNS(b, backend.Int64, backend.ValueDescriptor[string]{Name: "w", Codec: backend.String})).in(t),
	}
}

// fxModel is what the fixture's states hold. Empty lists and maps are
// absent.
type fxModel struct {
	v map[int64]string
	l map[int64][]int64
	m map[int64]map[int64]string
	w map[[2]int64]string // by (key, namespace)
}

func newFxModel() *fxModel {
	return &fxModel{v: map[int64]string{}, l: map[int64][]int64{}, m: map[int64]map[int64]string{}, w: map[[2]int64]string{}}
}

func (m *fxModel) clone() *fxModel {
	c := &fxModel{v: maps.Clone(m.v), l: make(map[int64][]int64, len(m.l)), m: make(map[int64]map[int64]string, len(m.m)), w: maps.Clone(m.w)}
	for k, l := range m.l {
		c.l[k] = slices.Clone(l)
	}
	for k, mm := range m.m {
		c.m[k] = maps.Clone(mm)
	}
	return c
}

// fxDiff describes the first differences between two models, or "".
func fxDiff(want, got *fxModel) string {
	var out []string
	add := func(s string, args ...any) {
		if len(out) < 8 {
			out = append(out, fmt.Sprintf(s, args...))
		}
	}
	for _, k := range slices.Sorted(maps.Keys(want.v)) {
		if g, ok := got.v[k]; !ok || g != want.v[k] {
			add("v[%d] = %q (present %v), want %q", k, g, ok, want.v[k])
		}
	}
	for _, k := range slices.Sorted(maps.Keys(got.v)) {
		if _, ok := want.v[k]; !ok {
			add("v[%d] = %q, want none", k, got.v[k])
		}
	}
	for _, k := range slices.Sorted(maps.Keys(want.l)) {
		if g := got.l[k]; !slices.Equal(g, want.l[k]) {
			add("l[%d] = %v, want %v", k, trim(g), trim(want.l[k]))
		}
	}
	for _, k := range slices.Sorted(maps.Keys(got.l)) {
		if _, ok := want.l[k]; !ok {
			add("l[%d] = %v, want none", k, trim(got.l[k]))
		}
	}
	for _, k := range slices.Sorted(maps.Keys(want.m)) {
		if g := got.m[k]; !maps.Equal(g, want.m[k]) {
			add("m[%d] = %v, want %v", k, g, want.m[k])
		}
	}
	for _, k := range slices.Sorted(maps.Keys(got.m)) {
		if _, ok := want.m[k]; !ok {
			add("m[%d] = %v, want none", k, got.m[k])
		}
	}
	for k, w := range want.w {
		if g, ok := got.w[k]; !ok || g != w {
			add("w[%d@%d] = %q (present %v), want %q", k[0], k[1], g, ok, w)
		}
	}
	for k, g := range got.w {
		if _, ok := want.w[k]; !ok {
			add("w[%d@%d] = %q, want none", k[0], k[1], g)
		}
	}
	if len(out) == 0 {
		return ""
	}
	return fmt.Sprintf("%d/%d/%d/%d values/lists/maps/namespaced values, want %d/%d/%d/%d:\n  %s",
		len(got.v), len(got.l), len(got.m), len(got.w), len(want.v), len(want.l), len(want.m), len(want.w), strings.Join(out, "\n  "))
}

// fxEqual fails the test if got differs from want.
func fxEqual(t testing.TB, what string, got, want *fxModel) {
	t.Helper()
	if d := fxDiff(want, got); d != "" {
		t.Fatalf("%s: %s", what, d)
	}
}

// fxRead reads everything b's fixture states hold. Every key must belong
// to b's key groups, and every key KeysInNamespace yields must hold an
// entry.
func fxRead(t testing.TB, b *backend.Backend[int64]) *fxModel {
	t.Helper()
	s := fxRegister(t, b)
	out := newFxModel()
	set := func(k int64) {
		t.Helper()
		kg := must(backend.KeyGroupOf(backend.Int64, k, b.MaxParallelism())).in(t)
		if !b.KeyGroups().Contains(kg) {
			t.Fatalf("instance %s holds key %d of key group %d", b.KeyGroups(), k, kg)
		}
		setKey(t, b, k)
	}
	for _, k := range collect(t, s.v.KeysInNamespace(backend.VoidNamespace{})) {
		set(k)
		v, ok := getValue(t, s.v)
		if !ok {
			t.Fatalf("KeysInNamespace yielded key %d of the value state, which holds nothing", k)
		}
		out.v[k] = v
	}
	for _, k := range collect(t, s.l.KeysInNamespace(backend.VoidNamespace{})) {
		set(k)
		l := must(s.l.Get()).in(t)
		if len(l) == 0 {
			t.Fatalf("KeysInNamespace yielded key %d of the list state, whose list is empty", k)
		}
		out.l[k] = l
	}
	for _, k := range collect(t, s.m.KeysInNamespace(backend.VoidNamespace{})) {
		set(k)
		mm := map[int64]string{}
		for _, e := range collect(t, s.m.Entries()) {
			mm[e.Key] = e.Value
		}
		if len(mm) == 0 {
			t.Fatalf("KeysInNamespace yielded key %d of the map state, whose map is empty", k)
		}
		out.m[k] = mm
	}
	for ns := range int64(fxNamespaces) {
		for _, k := range collect(t, s.w.KeysInNamespace(ns)) {
			set(k)
			noErr(t, s.w.SetCurrentNamespace(ns))
			v, ok := getValue(t, s.w)
			if !ok {
				t.Fatalf("KeysInNamespace(%d) yielded key %d of the namespaced value, which holds nothing", ns, k)
			}
			out.w[[2]int64{k, ns}] = v
		}
	}
	return out
}

// fxVal is a value of about 64 bytes.
func fxVal(k int64, version int) string {
	return fmt.Sprintf("value of key %08d, version %04d, padded to make it larger", k, version)
}

// fxOptions are the options of a job's instance: small memtables, so that
// even small states span several SSTs. Local recovery is off: on S3 the
// snapshot tests are about what checkpoint storage holds, and a restore
// must download it (local recovery has tests of its own, and the model
// test turns it on at random).
func fxOptions(r backend.KeyGroupRange, incremental bool) tweak {
	return withOptions(backend.Options{
		KeyGroups: r, IncrementalCheckpoints: incremental,
		MemTableSize: 1 << 20, UploadWorkers: 3, TTLSweepInterval: -1,
		LocalRecovery: backend.LocalRecoveryOff,
	})
}

// fxRanges are the key groups of parallelism p.
func fxRanges(t testing.TB, p int) []backend.KeyGroupRange {
	rs := make([]backend.KeyGroupRange, p)
	for i := range p {
		rs[i] = must(backend.KeyGroupRangeForSubtask(fxMaxPar, p, i)).in(t)
	}
	return rs
}

// fxInstance is one parallel instance of a job.
type fxInstance struct {
	b *backend.Backend[int64]
	s fxStates
}

// job is an operator's instances with the model of their state.
type job struct {
	t     testing.TB
	st    snapshot.Storage
	insts []*fxInstance
	model *fxModel
}

// newJob opens p fresh instances; incremental says which take incremental
// snapshots. tweaks apply after the job's options.
func newJob(t testing.TB, st snapshot.Storage, p int, incremental func(i int) bool, tweaks ...tweak) *job {
	t.Helper()
	j := &job{t: t, st: st, model: newFxModel()}
	for i, r := range fxRanges(t, p) {
		b := MustOpenK(t, backend.Int64, append([]tweak{fxOptions(r, incremental(i))}, tweaks...)...)
		j.insts = append(j.insts, &fxInstance{b: b, s: fxRegister(t, b)})
	}
	return j
}

// restoreJob restores handles at parallelism p; model is the state they
// hold.
func restoreJob(t testing.TB, st snapshot.Storage, handles []snapshot.Handle, p int, incremental func(i int) bool, model *fxModel, tweaks ...tweak) *job {
	t.Helper()
	j := &job{t: t, st: st, model: model.clone()}
	for i, r := range fxRanges(t, p) {
		b := MustRestore(t, backend.Int64, st, handles, append([]tweak{fxOptions(r, incremental(i))}, tweaks...)...)
		j.insts = append(j.insts, &fxInstance{b: b, s: fxRegister(t, b)})
	}
	return j
}

// b is the backend of a job of one instance.
func (j *job) b() *backend.Backend[int64] {
	if len(j.insts) != 1 {
		j.t.Fatalf("job of %d instances used as one", len(j.insts))
	}
	return j.insts[0].b
}

// close closes every instance, failing the test if one fails to close.
func (j *job) close() {
	j.t.Helper()
	for _, in := range j.insts {
		noErr(j.t, in.b.Close())
	}
	j.insts = nil
}

// at makes k the current key of the instance owning it and returns it.
func (j *job) at(k int64) *fxInstance {
	kg := must(backend.KeyGroupOf(backend.Int64, k, fxMaxPar)).in(j.t)
	for _, in := range j.insts {
		if in.b.KeyGroups().Contains(kg) {
			setKey(j.t, in.b, k)
			return in
		}
	}
	j.t.Fatalf("no instance owns key group %d", kg)
	return nil
}

func (j *job) setV(k int64, v string) {
	noErr(j.t, j.at(k).s.v.Update(v))
	j.model.v[k] = v
}

func (j *job) clearV(k int64) {
	noErr(j.t, j.at(k).s.v.Clear())
	delete(j.model.v, k)
}

func (j *job) addL(k, e int64) {
	noErr(j.t, j.at(k).s.l.Add(e))
	j.model.l[k] = append(j.model.l[k], e)
}

func (j *job) updateL(k int64, es []int64) {
	noErr(j.t, j.at(k).s.l.Update(es))
	if len(es) == 0 {
		delete(j.model.l, k)
	} else {
		j.model.l[k] = slices.Clone(es)
	}
}

func (j *job) clearL(k int64) {
	noErr(j.t, j.at(k).s.l.Clear())
	delete(j.model.l, k)
}

func (j *job) putM(k, uk int64, uv string) {
	noErr(j.t, j.at(k).s.m.Put(uk, uv))
	if j.model.m[k] == nil {
		j.model.m[k] = map[int64]string{}
	}
	j.model.m[k][uk] = uv
}

func (j *job) removeM(k, uk int64) {
	noErr(j.t, j.at(k).s.m.Remove(uk))
	delete(j.model.m[k], uk)
	if len(j.model.m[k]) == 0 {
		delete(j.model.m, k)
	}
}

func (j *job) clearM(k int64) {
	noErr(j.t, j.at(k).s.m.Clear())
	delete(j.model.m, k)
}

func (j *job) setW(k, ns int64, v string) {
	in := j.at(k)
	noErr(j.t, in.s.w.SetCurrentNamespace(ns))
	noErr(j.t, in.s.w.Update(v))
	j.model.w[[2]int64{k, ns}] = v
}

func (j *job) clearW(k, ns int64) {
	in := j.at(k)
	noErr(j.t, in.s.w.SetCurrentNamespace(ns))
	noErr(j.t, in.s.w.Clear())
	delete(j.model.w, [2]int64{k, ns})
}

// apply runs n random operations on keys [0, keySpace), their values
// tagged with tag.
func (j *job) apply(rng *rand.Rand, n, keySpace int, tag string) {
	j.t.Helper()
	for i := range n {
		k := rng.Int64N(int64(keySpace))
		switch op := rng.IntN(12); op {
		case 0, 1, 2:
			j.setV(k, fmt.Sprintf("%s-%d-%d", tag, k, i))
		case 3:
			j.clearV(k)
		case 4, 5:
			j.addL(k, rng.Int64())
		case 6:
			if rng.IntN(2) == 0 {
				j.clearL(k)
			} else {
				j.updateL(k, []int64{int64(i), k})
			}
		case 7, 8:
			j.putM(k, rng.Int64N(8)-3, fmt.Sprintf("%s/%d", tag, i))
		case 9:
			j.removeM(k, rng.Int64N(8)-3)
		case 10:
			ns := rng.Int64N(fxNamespaces)
			j.setW(k, ns, fmt.Sprintf("%s@%d#%d", tag, ns, i))
		case 11:
			if rng.IntN(4) == 0 {
				j.clearM(k)
			} else {
				j.clearW(k, rng.Int64N(fxNamespaces))
			}
		}
	}
}

// bigState writes n keys of the value and list states, with values of 140
// bytes.
func (j *job) bigState(n int) {
	val := strings.Repeat("payload", 20)
	for k := range int64(n) {
		j.setV(k, val)
		j.addL(k, k)
	}
}

// snapshot takes the synchronous part on every instance.
func (j *job) snapshot(id int64) []*backend.AsyncSnapshot {
	j.t.Helper()
	snaps := make([]*backend.AsyncSnapshot, len(j.insts))
	for i, in := range j.insts {
		snaps[i] = must(in.b.Snapshot(id, j.st)).in(j.t)
	}
	return snaps
}

// checkpoint takes checkpoint id of every instance, completes it keeping
// keep checkpoints and notifies the instances.
func (j *job) checkpoint(id int64, keep int) *snapshot.Checkpoint {
	j.t.Helper()
	ctx := context.Background()
	hs, err := runAll(ctx, j.snapshot(id))
	noErr(j.t, err)
	cp := &snapshot.Checkpoint{ID: id, Handles: hs}
	if err := retention.Complete(ctx, j.st, cp, keep); err != nil {
		j.t.Fatalf("complete checkpoint %d: %v", id, err)
	}
	for _, in := range j.insts {
		noErr(j.t, in.b.NotifyCheckpointComplete(id))
	}
	return cp
}

// verify checks that the instances together hold exactly want, every key
// in exactly one instance: the one owning its key group.
func (j *job) verify(want *fxModel, what string) {
	j.t.Helper()
	all := newFxModel()
	for _, in := range j.insts {
		got := fxRead(j.t, in.b)
		for _, k := range slices.Collect(maps.Keys(got.v)) {
			if _, dup := all.v[k]; dup {
				j.t.Fatalf("%s: value key %d in two instances", what, k)
			}
		}
		for _, k := range slices.Collect(maps.Keys(got.l)) {
			if _, dup := all.l[k]; dup {
				j.t.Fatalf("%s: list key %d in two instances", what, k)
			}
		}
		for _, k := range slices.Collect(maps.Keys(got.m)) {
			if _, dup := all.m[k]; dup {
				j.t.Fatalf("%s: map key %d in two instances", what, k)
			}
		}
		for _, k := range slices.Collect(maps.Keys(got.w)) {
			if _, dup := all.w[k]; dup {
				j.t.Fatalf("%s: namespaced key %d@%d in two instances", what, k[0], k[1])
			}
		}
		maps.Copy(all.v, got.v)
		maps.Copy(all.l, got.l)
		maps.Copy(all.m, got.m)
		maps.Copy(all.w, got.w)
	}
	fxEqual(j.t, what, all, want)
}
