package window_test

// The job the datadriven and model tests drive: p subtasks, each a backend
// on its range of key groups with one window operator, string keys and
// int64 values collected into a sorted list (so a result shows exactly the
// elements a window holds) or, with list, kept in a list state, elements routed by key group, watermarks
// broadcast, checkpoints committed to one local storage, and restores at
// another parallelism.

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/pebblestate/pebblestate/backend"
	"github.com/pebblestate/pebblestate/snapshot"
	"github.com/pebblestate/pebblestate/window"
)

const testMaxPar = 32

// collect is an aggregate function whose accumulator is the sorted list of
// the values added: merging and adding in any order give one result.
type collect struct{}

func (collect) CreateAccumulator() []int64 { return nil }
func (collect) Add(v int64, acc []int64) []int64 {
	i, _ := slices.BinarySearch(acc, v)
	return slices.Insert(acc, i, v)
}
func (collect) Result(acc []int64) []int64 { return slices.Clone(acc) }
func (collect) Merge(a, b []int64) []int64 {
	out := append(slices.Clone(a), b...)
	slices.Sort(out)
	return out
}

// result is one emitted window result.
type result struct {
	key    string
	w      window.Window
	values []int64
}

func (r result) String() string { return fmt.Sprintf("%s %v %v", r.key, r.w, r.values) }

// lateElem is one element given to the late side output.
type lateElem struct {
	key   string
	ts, v int64
}

type op = window.Operator[string, int64, []int64]

type subtask struct {
	kgs backend.KeyGroupRange
	b   *backend.Backend[string]
	op  *op
	// windows are the "key window"s that took an element since the
	// subtask opened, for the model test's count of timer registrations.
	windows map[string]bool
}

type job struct {
	t           testing.TB
	st          *snapshot.Local
	assigner    window.Assigner
	lateness    int64
	incremental bool
	list        bool // NewList instead of New with collect
	subs        []*subtask
	out         []result
	late        []lateElem
	cpID        int64
	wm          int64 // the job's watermark, broadcast to every subtask
}

func newJob(t testing.TB, a window.Assigner, lateness int64, incremental bool) *job {
	st, err := snapshot.NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return &job{t: t, st: st, assigner: a, lateness: lateness, incremental: incremental, wm: minWM}
}

const minWM = -1 << 63

func (j *job) options(kgs backend.KeyGroupRange) backend.Options {
	return backend.Options{Dir: j.t.TempDir(), MaxParallelism: testMaxPar, KeyGroups: kgs,
		BlockCacheSize: 1 << 20, MemTableSize: 1 << 20, TTLSweepInterval: -1,
		IncrementalCheckpoints: j.incremental}
}

func (j *job) ranges(p int) []backend.KeyGroupRange {
	var out []backend.KeyGroupRange
	for i := range p {
		kgs, err := backend.KeyGroupRangeForSubtask(testMaxPar, p, i)
		if err != nil {
			j.t.Fatal(err)
		}
		out = append(out, kgs)
	}
	return out
}

// open opens p empty subtasks.
func (j *job) open(p int) error {
	for _, kgs := range j.ranges(p) {
		b, err := backend.Open(backend.String, j.options(kgs))
		if err != nil {
			return err
		}
		if err := j.addSubtask(kgs, b); err != nil {
			return err
		}
	}
	return nil
}

func (j *job) addSubtask(kgs backend.KeyGroupRange, b *backend.Backend[string]) error {
	s := &subtask{kgs: kgs, b: b, windows: map[string]bool{}}
	j.subs = append(j.subs, s)
	j.t.Cleanup(func() { _ = b.Close() })
	opts := window.Options[string, int64, []int64]{
		Assigner: j.assigner, AllowedLateness: j.lateness,
		Emit: func(key string, w window.Window, vs []int64) error {
			j.out = append(j.out, result{key, w, vs})
			return nil
		},
		Late: func(key string, v, ts int64) error {
			j.late = append(j.late, lateElem{key, ts, v})
			return nil
		},
	}
	var err error
	if j.list {
		s.op, err = window.NewList(b, backend.Int64, opts)
	} else {
		s.op, err = window.New(b, collect{}, backend.JSON[[]int64](), opts)
	}
	return err
}

func (j *job) route(key string) (*subtask, error) {
	kg, err := backend.KeyGroupOf(backend.String, key, testMaxPar)
	if err != nil {
		return nil, err
	}
	for _, s := range j.subs {
		if s.kgs.Contains(kg) {
			return s, nil
		}
	}
	return nil, fmt.Errorf("no subtask owns key group %d of %q", kg, key)
}

func (j *job) process(key string, v, ts int64) error {
	s, err := j.route(key)
	if err != nil {
		return err
	}
	return s.op.Process(key, v, ts)
}

func (j *job) advance(wm int64) error {
	j.wm = max(j.wm, wm)
	for _, s := range j.subs {
		if err := s.op.AdvanceWatermark(wm); err != nil {
			return err
		}
	}
	return nil
}

// dropped sums the subtasks' late-dropped counters.
func (j *job) dropped() uint64 {
	var n uint64
	for _, s := range j.subs {
		n += s.op.Stats().LateDropped
	}
	return n
}

// checkpoint snapshots every subtask and commits the checkpoint.
func (j *job) checkpoint() ([]snapshot.Handle, error) {
	j.cpID++
	ctx := context.Background()
	var snaps []*backend.AsyncSnapshot
	for _, s := range j.subs {
		as, err := s.b.Snapshot(j.cpID, j.st)
		if err != nil {
			return nil, err
		}
		snaps = append(snaps, as)
	}
	hs := make([]snapshot.Handle, len(snaps))
	errs := make([]error, len(snaps))
	var wg sync.WaitGroup
	for i, as := range snaps {
		wg.Go(func() { hs[i], errs[i] = as.Run(ctx) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if err := snapshot.Commit(ctx, j.st, &snapshot.Checkpoint{ID: j.cpID, Handles: hs}); err != nil {
		return nil, err
	}
	for _, s := range j.subs {
		if err := s.b.NotifyCheckpointComplete(j.cpID); err != nil {
			return nil, err
		}
	}
	return hs, nil
}

// restore closes every subtask and restores p from handles (nil: the
// latest checkpoint, by backend.RestoreLatest), then gives them the
// watermark wm, as a framework that checkpointed it would.
func (j *job) restore(hs []snapshot.Handle, p int, wm int64) error {
	for _, s := range j.subs {
		if err := s.b.Close(); err != nil {
			return err
		}
	}
	j.subs = nil
	for _, kgs := range j.ranges(p) {
		var b *backend.Backend[string]
		var err error
		if hs == nil {
			b, _, err = backend.RestoreLatest(context.Background(), backend.String, j.options(kgs), j.st)
		} else {
			b, err = backend.Restore(context.Background(), backend.String, j.options(kgs), j.st, hs)
		}
		if err != nil {
			return err
		}
		if err := j.addSubtask(kgs, b); err != nil {
			return err
		}
	}
	j.wm = minWM
	return j.advance(wm)
}

// byWindow groups results by key and window, keeping their order, each
// result's values sorted (as NewList's are not).
func byWindow(rs []result) map[string][][]int64 {
	m := map[string][][]int64{}
	for _, r := range rs {
		k := r.key + " " + r.w.String()
		m[k] = append(m[k], slices.Sorted(slices.Values(r.values)))
	}
	return m
}

func sortedLate(ls []lateElem) []lateElem {
	ls = slices.Clone(ls)
	slices.SortFunc(ls, func(a, b lateElem) int {
		return cmp.Or(cmp.Compare(a.key, b.key), cmp.Compare(a.ts, b.ts), cmp.Compare(a.v, b.v))
	})
	return ls
}
