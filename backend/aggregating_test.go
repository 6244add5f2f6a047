package backend_test

import (
	"testing"

	"github.com/pebblestate/pebblestate/backend"
)

// TestAggregating_GetAbsent checks that nothing added reads as zero, false.
func TestAggregating_GetAbsent(t *testing.T) {
	b := MustOpen(t)
	a := avgState(t, b, "a", average{})
	setKey(t, b, "k")
	wantAvg(t, a, 0, false)
}

// TestAggregating_AddThenGet checks that inputs are folded into one stored
// accumulator, created once, and that Get returns the function's result.
func TestAggregating_AddThenGet(t *testing.T) {
	b := MustOpen(t)
	created := 0
	a := avgState(t, b, "a", average{created: &created})
	setKey(t, b, "k")
	for _, in := range []int64{1, 2, 3, 10} {
		noErr(t, a.Add(in))
	}
	wantAvg(t, a, 4, true)
	if created != 1 {
		t.Fatalf("CreateAccumulator called %d times, want 1", created)
	}
	setKey(t, b, "other")
	wantAvg(t, a, 0, false)
	noErr(t, a.Add(-7))
	wantAvg(t, a, -7, true)
	if created != 2 {
		t.Fatalf("CreateAccumulator called %d times, want 2", created)
	}
}

// TestAggregating_VoidNamespace checks GetAggregating.
func TestAggregating_VoidNamespace(t *testing.T) {
	b := MustOpen(t)
	a := must(backend.GetAggregating(b, backend.AggregatingDescriptor[int64, avgAcc, float64]{
		Name: "a", Codec: backend.JSON[avgAcc](), Function: average{}})).in(t)
	setKey(t, b, "k")
	noErr(t, a.Add(1))
	noErr(t, a.Add(2))
	got, ok, err := a.Get()
	if err != nil || !ok || got != 1.5 {
		t.Fatalf("Get = %v, %v, %v; want 1.5", got, ok, err)
	}
}

// TestAggregating_Clear checks that Clear drops the accumulator.
func TestAggregating_Clear(t *testing.T) {
	b := MustOpen(t)
	a := avgState(t, b, "a", average{})
	setKey(t, b, "k")
	noErr(t, a.Add(100))
	noErr(t, a.Clear())
	wantAvg(t, a, 0, false)
	noErr(t, a.Add(2))
	wantAvg(t, a, 2, true)
}

// TestAggregating_Namespaces checks one accumulator per namespace.
func TestAggregating_Namespaces(t *testing.T) {
	b := MustOpen(t)
	a := avgState(t, b, "a", average{})
	setKey(t, b, "k")
	noErr(t, a.SetCurrentNamespace(1))
	noErr(t, a.Add(10))
	noErr(t, a.SetCurrentNamespace(2))
	noErr(t, a.Add(20))
	noErr(t, a.Add(40))
	noErr(t, a.SetCurrentNamespace(1))
	wantAvg(t, a, 10, true)
	noErr(t, a.SetCurrentNamespace(2))
	wantAvg(t, a, 30, true)
}

// TestAggregating_MergeNamespaces checks that accumulators of the sources
// merge into the target's and the sources are cleared, skipping the target
// and absent sources, without changing the current namespace.
func TestAggregating_MergeNamespaces(t *testing.T) {
	b := MustOpen(t)
	a := avgState(t, b, "a", average{})
	setKey(t, b, "k")
	for ns, ins := range map[int64][]int64{1: {1, 2}, 2: {3}, 3: {10, 20, 30}} {
		noErr(t, a.SetCurrentNamespace(ns))
		for _, in := range ins {
			noErr(t, a.Add(in))
		}
	}
	noErr(t, a.SetCurrentNamespace(3))

	noErr(t, a.MergeNamespaces(1, 2, 1, 42))
	if ns := a.CurrentNamespace(); ns != 3 {
		t.Fatalf("CurrentNamespace = %d, want 3", ns)
	}
	wantAvg(t, a, 20, true)
	noErr(t, a.SetCurrentNamespace(1))
	wantAvg(t, a, 2, true) // (1+2+3)/3
	noErr(t, a.SetCurrentNamespace(2))
	wantAvg(t, a, 0, false)

	noErr(t, a.MergeNamespaces(5, 3, 1)) // absent target
	noErr(t, a.SetCurrentNamespace(5))
	wantAvg(t, a, 11, true) // (1+2+3+10+20+30)/6
	noErr(t, a.Add(-66))
	wantAvg(t, a, 0, true)
}

// TestAggregating_DecodeError checks that an undecodable accumulator fails
// Get, Add and MergeNamespaces with ErrCorrupt.
func TestAggregating_DecodeError(t *testing.T) {
	b := MustOpen(t)
	a := must(backend.GetAggregatingNS(b, backend.Int64, backend.AggregatingDescriptor[int64, int64, int64]{
		Name: "a", Codec: pickyCodec{}, Function: plusFn{}})).in(t)
	setKey(t, b, "k")
	noErr(t, a.Add(666))
	_, _, err := a.Get()
	wantErr(t, err, backend.ErrCorrupt)
	wantErr(t, a.Add(1), backend.ErrCorrupt)
	wantErr(t, a.MergeNamespaces(7, 0), backend.ErrCorrupt)
	noErr(t, a.SetCurrentNamespace(7))
	_, ok, err := a.Get()
	if err != nil || ok {
		t.Fatalf("target after failed merge: %v, %v", ok, err)
	}
}

// plusFn is an AggregateFunction whose accumulator is the sum.
type plusFn struct{}

func (plusFn) CreateAccumulator() int64      { return 0 }
func (plusFn) Add(in int64, acc int64) int64 { return acc + in }
func (plusFn) Result(acc int64) int64        { return acc }
func (plusFn) Merge(a, b int64) int64        { return a + b }

// TestAggregating_NoCurrentKey checks every operation before SetCurrentKey.
func TestAggregating_NoCurrentKey(t *testing.T) {
	b := MustOpen(t)
	a := avgState(t, b, "a", average{})
	_, _, err := a.Get()
	wantErr(t, err, backend.ErrNoCurrentKey)
	wantErr(t, a.Add(1), backend.ErrNoCurrentKey)
	wantErr(t, a.Clear(), backend.ErrNoCurrentKey)
	wantErr(t, a.MergeNamespaces(1, 2), backend.ErrNoCurrentKey)
}
