package window_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/pebblestate/pebblestate/backend"
	"github.com/pebblestate/pebblestate/window"
)

func openBackend(t *testing.T, dir string) *backend.Backend[string] {
	t.Helper()
	b, err := backend.Open(backend.String, backend.Options{Dir: dir, BlockCacheSize: 1 << 20, MemTableSize: 1 << 20, TTLSweepInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

func TestNewInvalid(t *testing.T) {
	b := openBackend(t, t.TempDir())
	emit := func(string, window.Window, []int64) error { return nil }
	ok := window.Options[string, int64, []int64]{Assigner: window.Tumbling(10, 0), Emit: emit}
	for name, o := range map[string]window.Options[string, int64, []int64]{
		"no emit":           {Assigner: window.Tumbling(10, 0)},
		"no assigner":       {Emit: emit},
		"bad assigner":      {Assigner: window.Sliding(10, 5, 7), Emit: emit},
		"negative lateness": {Assigner: window.Tumbling(10, 0), Emit: emit, AllowedLateness: -1},
	} {
		if _, err := window.New(b, collect{}, backend.JSON[[]int64](), o); !errors.Is(err, backend.ErrInvalidArgument) {
			t.Errorf("%s: New: %v, want ErrInvalidArgument", name, err)
		}
	}
	if _, err := window.New[string, int64, []int64, []int64](b, nil, backend.JSON[[]int64](), ok); !errors.Is(err, backend.ErrInvalidArgument) {
		t.Errorf("nil function: %v", err)
	}
	if _, err := window.New(b, collect{}, nil, ok); !errors.Is(err, backend.ErrInvalidArgument) {
		t.Errorf("nil codec: %v", err)
	}
	if _, err := window.NewList(nil, backend.Int64, ok); !errors.Is(err, backend.ErrInvalidArgument) {
		t.Errorf("nil backend: %v", err)
	}
	if _, err := window.NewList(b, nil, ok); !errors.Is(err, backend.ErrInvalidArgument) {
		t.Errorf("nil element codec: %v", err)
	}
	// One name, two kinds of contents: the second is refused.
	if _, err := window.New(b, collect{}, backend.JSON[[]int64](), ok); err != nil {
		t.Fatal(err)
	}
	if _, err := window.NewList(b, backend.Int64, ok); !errors.Is(err, backend.ErrIncompatibleState) {
		t.Errorf("NewList under New's name: %v, want ErrIncompatibleState", err)
	}
}

// TestTwoOperators runs two operators of different names and kinds on one
// backend: their windows and timers do not mix.
func TestTwoOperators(t *testing.T) {
	b := openBackend(t, t.TempDir())
	var got []string
	rec := func(name string) func(string, window.Window, []int64) error {
		return func(k string, w window.Window, vs []int64) error {
			got = append(got, name+" "+result{k, w, vs}.String())
			return nil
		}
	}
	tum, err := window.New(b, collect{}, backend.JSON[[]int64](), window.Options[string, int64, []int64]{
		Name: "tumbling", Assigner: window.Tumbling(10, 0), Emit: rec("tumbling")})
	if err != nil {
		t.Fatal(err)
	}
	ses, err := window.NewList(b, backend.Int64, window.Options[string, int64, []int64]{
		Name: "sessions", Assigner: window.Session(3), Emit: rec("sessions")})
	if err != nil {
		t.Fatal(err)
	}
	for i, ts := range []int64{1, 2, 8, 12} {
		if err := tum.Process("a", int64(i), ts); err != nil {
			t.Fatal(err)
		}
		if err := ses.Process("a", int64(i), ts); err != nil {
			t.Fatal(err)
		}
	}
	for _, o := range []*window.Operator[string, int64, []int64]{tum, ses} {
		if err := o.AdvanceWatermark(100); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{"tumbling a [0,10) [0 1 2]", "tumbling a [10,20) [3]",
		"sessions a [1,5) [0 1]", "sessions a [8,11) [2]", "sessions a [12,15) [3]"}
	if !slices.Equal(got, want) {
		t.Errorf("emitted %q, want %q", got, want)
	}
}

// TestReopen closes the backend with windows in flight and opens it
// again: a new operator of the same name finds them and fires them.
func TestReopen(t *testing.T) {
	dir := t.TempDir()
	var got []string
	opts := window.Options[string, int64, []int64]{Assigner: window.Session(5), AllowedLateness: 10,
		Emit: func(k string, w window.Window, vs []int64) error {
			got = append(got, result{k, w, vs}.String())
			return nil
		}}
	b := openBackend(t, dir)
	o, err := window.New(b, collect{}, backend.JSON[[]int64](), opts)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range []struct{ ts, v int64 }{{0, 1}, {3, 2}, {20, 3}} {
		if err := o.Process("k", e.v, e.ts); err != nil {
			t.Fatal(err)
		}
	}
	if err := o.AdvanceWatermark(10); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b = openBackend(t, dir)
	if o, err = window.New(b, collect{}, backend.JSON[[]int64](), opts); err != nil {
		t.Fatal(err)
	}
	if err := o.AdvanceWatermark(10); err != nil {
		t.Fatal(err)
	}
	// Within lateness of [0,8), kept until 17: merges and fires again.
	if err := o.Process("k", 4, 6); err != nil {
		t.Fatal(err)
	}
	if err := o.AdvanceWatermark(100); err != nil {
		t.Fatal(err)
	}
	want := []string{"k [0,8) [1 2]", "k [0,11) [1 2 4]", "k [20,25) [3]"}
	if !slices.Equal(got, want) {
		t.Errorf("emitted %q, want %q", got, want)
	}
	if ts, ok := window.NextTimer(o); ok {
		t.Errorf("a timer at %d is left", ts)
	}
}

// TestEmitError checks that Emit's and Late's errors are returned, naming
// the operator.
func TestEmitError(t *testing.T) {
	b := openBackend(t, t.TempDir())
	boom := errors.New("boom")
	o, err := window.New(b, collect{}, backend.JSON[[]int64](), window.Options[string, int64, []int64]{
		Name: "w", Assigner: window.Tumbling(10, 0),
		Emit: func(string, window.Window, []int64) error { return boom },
		Late: func(string, int64, int64) error { return boom },
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := o.Process("a", 1, 1); err != nil {
		t.Fatal(err)
	}
	err = o.AdvanceWatermark(20)
	if !errors.Is(err, boom) {
		t.Fatalf("AdvanceWatermark: %v, want boom", err)
	}
	t.Log(err)
	if err := o.Process("a", 1, 2); !errors.Is(err, boom) {
		t.Fatalf("Process of a late element: %v, want boom", err)
	}
	if s := o.Stats(); s.LateDropped != 1 || s.Elements != 2 {
		t.Errorf("stats %+v", s)
	}
}

// TestLatenessChange reopens a backend with windows in flight under
// another AllowedLateness: a raised lateness keeps the windows until the
// new cleanup time, a lowered one drops elements from the new cleanup
// time on and clears the state at the old one.
func TestLatenessChange(t *testing.T) {
	for _, c := range []struct {
		before, after int64
		want          []string
		dropped       uint64
	}{
		// [0,10): fired at 9; at 16 an element is late by 7.
		{5, 20, []string{"j [0,10) [7]", "k [0,10) [1]", "k [0,10) [1 2]"}, 0},
		{20, 5, []string{"j [0,10) [7]", "k [0,10) [1]"}, 1},
	} {
		dir := t.TempDir()
		var got []string
		opts := window.Options[string, int64, []int64]{Assigner: window.Tumbling(10, 0), AllowedLateness: c.before,
			Emit: func(k string, w window.Window, vs []int64) error {
				got = append(got, result{k, w, vs}.String())
				return nil
			}}
		b := openBackend(t, dir)
		o, err := window.New(b, collect{}, backend.JSON[[]int64](), opts)
		if err != nil {
			t.Fatal(err)
		}
		if err := o.Process("k", 1, 3); err != nil {
			t.Fatal(err)
		}
		if err := o.Process("j", 7, 4); err != nil {
			t.Fatal(err)
		}
		if err := o.AdvanceWatermark(9); err != nil {
			t.Fatal(err)
		}
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
		b = openBackend(t, dir)
		opts.AllowedLateness = c.after
		if o, err = window.New(b, collect{}, backend.JSON[[]int64](), opts); err != nil {
			t.Fatal(err)
		}
		if err := o.AdvanceWatermark(16); err != nil {
			t.Fatal(err)
		}
		if err := o.Process("k", 2, 5); err != nil {
			t.Fatal(err)
		}
		if err := o.AdvanceWatermark(1000); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, c.want) || o.Stats().LateDropped != c.dropped {
			t.Errorf("lateness %d then %d: emitted %q, dropped %d; want %q, %d", c.before, c.after, got, o.Stats().LateDropped, c.want, c.dropped)
		}
		if ts, ok := window.NextTimer(o); ok {
			t.Errorf("lateness %d then %d: a timer at %d is left", c.before, c.after, ts)
		}
		// No state is left behind, even of a window that had no element
		// after the reopen.
		contents, err := backend.GetAggregatingNS(b, window.Codec, backend.AggregatingDescriptor[int64, []int64, []int64]{
			Name: window.DefaultName + "/contents", Codec: backend.JSON[[]int64](), Function: collect{}})
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"k", "j"} {
			noErr(t, b.SetCurrentKey(k))
			noErr(t, contents.SetCurrentNamespace(window.Window{Start: 0, End: 10}))
			if vs, found, err := contents.Get(); err != nil || found {
				t.Errorf("lateness %d then %d: key %s: [0,10) still holds %v (%v)", c.before, c.after, k, vs, err)
			}
		}
		// The state is gone: an element for [0,10) now is dropped, and
		// nothing fires for it.
		if err := o.Process("k", 3, 1); err != nil {
			t.Fatal(err)
		}
		if err := o.AdvanceWatermark(2000); err != nil || len(got) != len(c.want) {
			t.Errorf("lateness %d then %d: after the cleanup: %v, emitted %q", c.before, c.after, err, got)
		}
	}
}

func noErr(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
