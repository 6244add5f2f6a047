package checkpoint_test

// A job for the tests: operators of real backends with int64 keys in
// t.TempDir(), each holding one value state "v" in which every key of the
// job has the value of the last round written; helpers to restore it at
// any parallelism, and to compare a checkpoint root's files with what its
// checkpoints reference.

import (
	"context"
	"io/fs"
	"log/slog"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"testing"

	"github.com/pebblestate/pebblestate/backend"
	"github.com/pebblestate/pebblestate/checkpoint"
	"github.com/pebblestate/pebblestate/snapshot"
)

const (
	testMaxParallelism = 32
	testKeys           = 200 // keys per operator
)

// opSpec is an operator of the test job and its parallelism.
type opSpec struct {
	name        string
	parallelism int
}

// job is the test job: per operator, its subtasks' backends.
type job struct {
	specs       []opSpec
	backends    [][]*backend.Backend[int64]
	values      [][]*backend.Value[int64, backend.VoidNamespace, int64]
	incremental bool
}

func noErr(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func backendOptions(dir, op string, incremental bool) backend.Options {
	return backend.Options{
		Dir:                    dir,
		Operator:               op,
		MaxParallelism:         testMaxParallelism,
		IncrementalCheckpoints: incremental,
		MemTableSize:           1 << 20,
		BlockCacheSize:         1 << 20,
		Logger:                 slog.New(slog.DiscardHandler),
	}
}

// openJob opens the backends of a new job in base (a new temporary
// directory if empty).
func openJob(t testing.TB, base string, specs []opSpec, incremental bool) *job {
	t.Helper()
	if base == "" {
		base = t.TempDir()
	}
	j := &job{specs: specs, incremental: incremental}
	for _, sp := range specs {
		var bs []*backend.Backend[int64]
		for i := range sp.parallelism {
			kg, err := backend.KeyGroupRangeForSubtask(testMaxParallelism, sp.parallelism, i)
			noErr(t, err)
			o := backendOptions(filepath.Join(base, sp.name, strings.Repeat("x", i+1)), sp.name, incremental)
			o.KeyGroups = kg
			b, err := backend.Open(backend.Int64, o)
			noErr(t, err)
			bs = append(bs, b)
		}
		j.add(t, bs)
	}
	return j
}

// restoreJob restores the job of specs from r, each operator at its
// parallelism, into new temporary directories.
func restoreJob(t testing.TB, r *checkpoint.Restored, specs []opSpec, incremental bool) *job {
	t.Helper()
	ctx := context.Background()
	j := &job{specs: specs, incremental: incremental}
	for _, sp := range specs {
		var bs []*backend.Backend[int64]
		for i := range sp.parallelism {
			o, err := r.BackendOptions(backendOptions(t.TempDir(), sp.name, incremental), sp.name, i, sp.parallelism)
			noErr(t, err)
			b, err := backend.Restore(ctx, backend.Int64, o, r.Storage, r.Checkpoint.Handles)
			noErr(t, err)
			bs = append(bs, b)
		}
		j.add(t, bs)
	}
	return j
}

func (j *job) add(t testing.TB, bs []*backend.Backend[int64]) {
	t.Helper()
	var vs []*backend.Value[int64, backend.VoidNamespace, int64]
	for _, b := range bs {
		t.Cleanup(func() { _ = b.Close() })
		v, err := backend.GetValue(b, backend.ValueDescriptor[int64]{Name: "v", Codec: backend.Int64})
		noErr(t, err)
		vs = append(vs, v)
	}
	j.backends = append(j.backends, bs)
	j.values = append(j.values, vs)
}

// operators returns the job's operators for the coordinator.
func (j *job) operators() []checkpoint.Operator {
	var ops []checkpoint.Operator
	for o, sp := range j.specs {
		op := checkpoint.Operator{Name: sp.name}
		for _, b := range j.backends[o] {
			op.Subtasks = append(op.Subtasks, checkpoint.KeyedParticipant(b))
		}
		ops = append(ops, op)
	}
	return ops
}

func (j *job) names() []string {
	var ns []string
	for _, sp := range j.specs {
		ns = append(ns, sp.name)
	}
	return ns
}

// owner returns the backend and state of key k of operator o.
func (j *job) owner(t testing.TB, o int, k int64) (*backend.Backend[int64], *backend.Value[int64, backend.VoidNamespace, int64]) {
	t.Helper()
	kg, err := backend.KeyGroupOf(backend.Int64, k, testMaxParallelism)
	noErr(t, err)
	i, err := backend.SubtaskForKeyGroup(testMaxParallelism, len(j.backends[o]), kg)
	noErr(t, err)
	return j.backends[o][i], j.values[o][i]
}

// write sets every key of every operator to round*1000 + operator index.
func (j *job) write(t testing.TB, round int64) {
	t.Helper()
	for o := range j.specs {
		for k := range int64(testKeys) {
			b, v := j.owner(t, o, k)
			noErr(t, b.SetCurrentKey(k))
			noErr(t, v.Update(round*1000+int64(o)))
		}
	}
}

// check fails the test unless every key holds the value of round.
func (j *job) check(t testing.TB, round int64) {
	t.Helper()
	for o := range j.specs {
		for k := range int64(testKeys) {
			b, v := j.owner(t, o, k)
			noErr(t, b.SetCurrentKey(k))
			got, ok, err := v.Get()
			noErr(t, err)
			if want := round*1000 + int64(o); !ok || got != want {
				t.Fatalf("operator %s key %d: got %d (found %v), want %d (round %d)", j.specs[o].name, k, got, ok, want, round)
			}
		}
	}
}

func (j *job) close(t testing.TB) {
	t.Helper()
	for _, bs := range j.backends {
		for _, b := range bs {
			noErr(t, b.Close())
		}
	}
}

// newStorage returns local checkpoint storage in a new temporary directory.
func newStorage(t testing.TB) *snapshot.Local {
	t.Helper()
	st, err := snapshot.NewLocal(t.TempDir())
	noErr(t, err)
	return st
}

// onDisk lists every file and directory under root, slash-separated,
// directories with a trailing slash.
func onDisk(t testing.TB, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == root {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			rel += "/"
		}
		out = append(out, rel)
		return nil
	})
	noErr(t, err)
	slices.Sort(out)
	return out
}

// referenced lists what the completed checkpoints in st need: their
// metadata, files, shared files and operator state files, and the
// directories holding them.
func referenced(t testing.TB, st *snapshot.Local) []string {
	t.Helper()
	ctx := context.Background()
	ids, err := snapshot.Completed(ctx, st)
	noErr(t, err)
	set := map[string]bool{}
	addFile := func(name string) {
		set[name] = true
		for d := name; strings.Contains(d, "/"); {
			d = d[:strings.LastIndex(d, "/")]
			set[d+"/"] = true
		}
	}
	for _, id := range ids {
		cp, err := snapshot.Load(ctx, st, id)
		noErr(t, err)
		addFile(snapshot.MetadataPath(id))
		for _, h := range cp.Handles {
			for _, f := range h.Files {
				addFile(f.Name)
			}
			for _, f := range h.Shared {
				addFile(f.Name)
			}
		}
		for _, r := range cp.OperatorStates {
			addFile(r.Name)
		}
	}
	var out []string
	for n := range set {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// checkNoDebris fails the test unless the files in st's root are exactly
// those its completed checkpoints reference (an empty shared/ directory
// is allowed).
func checkNoDebris(t testing.TB, st *snapshot.Local) {
	t.Helper()
	got := slices.DeleteFunc(onDisk(t, st.Root()), func(n string) bool { return n == snapshot.SharedDir+"/" })
	want := slices.DeleteFunc(referenced(t, st), func(n string) bool { return n == snapshot.SharedDir+"/" })
	if !slices.Equal(got, want) {
		t.Fatalf("checkpoint root %s holds debris:\n got  %q\n want %q", st.Root(), got, want)
	}
}

// completed returns the ids of the completed checkpoints in st.
func completed(t testing.TB, st snapshot.Storage) []int64 {
	t.Helper()
	ids, err := snapshot.Completed(context.Background(), st)
	noErr(t, err)
	return ids
}

// forEachMode runs f as a subtest in full and incremental mode.
func forEachMode(t *testing.T, f func(t *testing.T, incremental bool)) {
	t.Run("Full", func(t *testing.T) { f(t, false) })
	t.Run("Incremental", func(t *testing.T) { f(t, true) })
}

// raceEnabled reports whether the test binary was built with -race, under
// which the subprocess crash test runs fewer rounds.
func raceEnabled() bool {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return false
	}
	for _, s := range bi.Settings {
		if s.Key == "-race" {
			return s.Value == "true"
		}
	}
	return false
}
