package window_test

import (
	"slices"
	"testing"

	"github.com/pebblestate/pebblestate/backend"
	"github.com/pebblestate/pebblestate/window"
)

// timerStats returns the stats of the timer service of the operator
// named name (window.DefaultName if empty), from the backend's metrics.
func timerStats(t *testing.T, b *backend.Backend[string], name string) backend.TimerStats {
	t.Helper()
	if name == "" {
		name = window.DefaultName
	}
	for _, m := range b.Metrics().Timers {
		if m.Name == name+"/timers" {
			return m.TimerStats
		}
	}
	t.Fatalf("no timer service %s/timers in the metrics", name)
	return backend.TimerStats{}
}

// recorder returns options whose Emit appends to got.
func recorder(a window.Assigner, lateness int64, got *[]result) window.Options[string, int64, []int64] {
	return window.Options[string, int64, []int64]{Assigner: a, AllowedLateness: lateness,
		Emit: func(k string, w window.Window, vs []int64) error {
			*got = append(*got, result{k, w, vs})
			return nil
		}}
}

// TestRegisterOncePerWindow counts the timer registrations the operator
// makes (the timer service's TimerStats.Registered, each a Pebble write):
// one per timer of each key and window, however many elements the window
// takes (before, every element registered both timers of each of its
// windows), and again only for a window's first element after a reopen.
// Firing, late firing within the lateness and clearing are unchanged.
func TestRegisterOncePerWindow(t *testing.T) {
	for _, c := range []struct {
		name     string
		a        window.Assigner
		lateness int64
		perKey   int // windows per key of elements at 0..19
		by9      int // of them, windows ending by 10
		at19     int // windows holding 19
		timers   int // timers per window
	}{
		{"tumbling", window.Tumbling(10, 0), 0, 2, 1, 1, 1},
		{"tumbling-lateness", window.Tumbling(10, 0), 5, 2, 1, 1, 2},
		{"sliding", window.Sliding(10, 5, 0), 0, 5, 2, 2, 1}, // [-5,5) .. [15,25)
		{"sliding-lateness", window.Sliding(10, 5, 0), 5, 5, 2, 2, 2},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			var got []result
			opts := recorder(c.a, c.lateness, &got)
			b := openBackend(t, dir)
			o, err := window.New(b, collect{}, backend.JSON[[]int64](), opts)
			noErr(t, err)
			keys := []string{"a", "b", "c"}
			for i := range 200 {
				noErr(t, o.Process(keys[i%3], int64(i), int64(i%20)))
			}
			want := uint64(len(keys) * c.perKey * c.timers)
			if s := timerStats(t, b, ""); s.Registered != want || s.Pending != want {
				t.Fatalf("200 elements in %d windows of 3 keys: %d registrations, %d pending; want %d of each", c.perKey, s.Registered, s.Pending, want)
			}
			noErr(t, o.AdvanceWatermark(9))
			if len(got) != len(keys)*c.by9 {
				t.Fatalf("watermark 9 fired %v, want %d results", got, len(keys)*c.by9)
			}
			fired := len(got)
			before := timerStats(t, b, "").Registered
			// A late element within the lateness fires [0,10) at once and
			// registers nothing: the cleanup timers are pending, as is the
			// firing timer of sliding's [5,15).
			noErr(t, o.Process("a", 1000, 8))
			late := got[fired:]
			if c.lateness == 0 {
				if len(late) != 0 {
					t.Errorf("no lateness: the late element emitted %v", late)
				}
			} else if len(late) != 1 || late[0].key != "a" || late[0].w != (window.Window{Start: 0, End: 10}) || !slices.Contains(late[0].values, 1000) {
				t.Errorf("late element within the lateness: emitted %v", late)
			}
			if r := timerStats(t, b, "").Registered; r != before {
				t.Errorf("the late element registered %d timers", r-before)
			}
			// Reopen: the new operator remembers nothing, so the first
			// element of a window registers its timers again (writing
			// pending timers again), the next ones nothing.
			noErr(t, b.Close())
			b = openBackend(t, dir)
			o, err = window.New(b, collect{}, backend.JSON[[]int64](), opts)
			noErr(t, err)
			noErr(t, o.AdvanceWatermark(9))
			for i := range 10 {
				noErr(t, o.Process("b", 2000+int64(i), 19))
			}
			if s := timerStats(t, b, ""); s.Registered != uint64(c.at19*c.timers) {
				t.Errorf("after a reopen, 10 elements in %d windows: %d registrations, want %d", c.at19, s.Registered, c.at19*c.timers)
			}
			noErr(t, o.AdvanceWatermark(1000))
			if ts, ok := window.NextTimer(o); ok {
				t.Errorf("a timer at %d is left", ts)
			}
			// Every window fired once, with every element it took.
			seen := map[string]int{}
			for _, r := range got {
				seen[r.key+" "+r.w.String()]++
			}
			if want := len(keys)*c.perKey + len(late); len(got) != want {
				t.Errorf("%d results, want %d: %v", len(got), want, got)
			}
			r := got[len(got)-1]
			for _, x := range got {
				if x.key == "b" && x.w == (window.Window{Start: 10, End: 20}) {
					r = x
				}
			}
			if seen["b [10,20)"] != 1 || !slices.Contains(r.values, 2000) || !slices.Contains(r.values, 2009) || !slices.Contains(r.values, 19) {
				t.Errorf("b [10,20) fired %d times, last with %v", seen["b [10,20)"], r.values)
			}
		})
	}
}

// TestRegisterOnceSessions counts a session's registrations: its first
// element registers its timers, each element that extends it registers
// the merged window's and deletes the absorbed one's, and an element
// inside it registers nothing (before, every element registered both
// timers again, and an extension three times).
func TestRegisterOnceSessions(t *testing.T) {
	for _, lateness := range []int64{0, 4} {
		timers := uint64(1)
		if lateness > 0 {
			timers = 2
		}
		var got []result
		b := openBackend(t, t.TempDir())
		o, err := window.New(b, collect{}, backend.JSON[[]int64](), recorder(window.Session(10), lateness, &got))
		noErr(t, err)
		for i := range int64(10) {
			noErr(t, o.Process("a", i, i)) // [0,10) extended 9 times to [0,19)
		}
		for i := range int64(20) {
			noErr(t, o.Process("a", 100+i, i%10)) // inside [0,19)
		}
		s := timerStats(t, b, "")
		if s.Registered != 10*timers || s.Deleted != 9*timers || s.Pending != timers {
			t.Errorf("lateness %d: %d registrations, %d deletes, %d pending; want %d, %d, %d",
				lateness, s.Registered, s.Deleted, s.Pending, 10*timers, 9*timers, timers)
		}
		noErr(t, o.AdvanceWatermark(18))
		// Within the lateness, an element extending the fired session
		// merges and fires the merged window at once.
		noErr(t, o.Process("a", 200, 19))
		noErr(t, o.AdvanceWatermark(1000))
		want := []string{"a [0,19) [0 1 2 3 4 5 6 7 8 9 100 101 102 103 104 105 106 107 108 109 110 111 112 113 114 115 116 117 118 119]"}
		if lateness > 0 {
			want = append(want, "a [0,29) [0 1 2 3 4 5 6 7 8 9 100 101 102 103 104 105 106 107 108 109 110 111 112 113 114 115 116 117 118 119 200]")
		} else {
			want = append(want, "a [19,29) [200]")
		}
		var gs []string
		for _, r := range got {
			gs = append(gs, r.String())
		}
		if !slices.Equal(gs, want) {
			t.Errorf("lateness %d: emitted %q, want %q", lateness, gs, want)
		}
		if ts, ok := window.NextTimer(o); ok {
			t.Errorf("lateness %d: a timer at %d is left", lateness, ts)
		}
	}
}

// TestRegisterAfterRestoreBelowWatermark reopens a backend whose window
// fired but is kept for its lateness, and gives the new operator no
// watermark (or a lower one than before, as a restore at a lower
// parallelism may): an element for that window is then not late, and the
// window must fire again when the watermark reaches it, as it did when
// every element registered its timer. Its state exists, but its firing
// timer is gone: the operator registers it because it has not
// registered it itself, whatever the state holds.
func TestRegisterAfterRestoreBelowWatermark(t *testing.T) {
	for _, a := range []window.Assigner{window.Tumbling(10, 0), window.Session(10)} {
		dir := t.TempDir()
		var got []result
		opts := recorder(a, 100, &got)
		b := openBackend(t, dir)
		o, err := window.New(b, collect{}, backend.JSON[[]int64](), opts)
		noErr(t, err)
		noErr(t, o.Process("a", 1, 0))
		noErr(t, o.AdvanceWatermark(50))
		noErr(t, b.Close())
		b = openBackend(t, dir)
		o, err = window.New(b, collect{}, backend.JSON[[]int64](), opts)
		noErr(t, err)
		noErr(t, o.AdvanceWatermark(5))
		noErr(t, o.Process("a", 2, 3))
		noErr(t, o.Process("a", 3, 4))
		noErr(t, o.AdvanceWatermark(1000))
		var gs []string
		for _, r := range got {
			gs = append(gs, r.String())
		}
		want := []string{"a [0,10) [1]", "a [0,10) [1 2 3]"}
		if a.Merging() {
			want = []string{"a [0,10) [1]", "a [0,14) [1 2 3]"}
		}
		if !slices.Equal(gs, want) {
			t.Errorf("%s: emitted %q, want %q", a, gs, want)
		}
		if ts, ok := window.NextTimer(o); ok {
			t.Errorf("%s: a timer at %d is left", a, ts)
		}
	}
}

// TestRegisteredLimit runs windows past the number of timers an operator
// remembers: the windows beyond it register per element, as before, and
// every window fires once with all its elements.
func TestRegisteredLimit(t *testing.T) {
	var got []result
	b := openBackend(t, t.TempDir())
	o, err := window.New(b, collect{}, backend.JSON[[]int64](), recorder(window.Tumbling(10, 0), 5, &got))
	noErr(t, err)
	window.SetRegisteredLimit(o, 3)
	keys := []string{"a", "b", "c", "d"}
	for i := range 40 {
		noErr(t, o.Process(keys[i%4], int64(i), int64(i%10)))
	}
	// a's two timers and b's first are remembered (3); b's cleanup timer
	// and c's and d's are written for each of their 10 elements.
	if s := timerStats(t, b, ""); s.Registered != 3+1*10+2*10+2*10 || s.Pending != 8 {
		t.Errorf("%d registrations, %d pending; want %d, 8", s.Registered, s.Pending, 3+10+20+20)
	}
	noErr(t, o.AdvanceWatermark(100))
	if len(got) != 4 {
		t.Errorf("emitted %v, want one result per key", got)
	}
	for _, r := range got {
		if len(r.values) != 10 {
			t.Errorf("%s: %d values, want 10", r, len(r.values))
		}
	}
	if ts, ok := window.NextTimer(o); ok {
		t.Errorf("a timer at %d is left", ts)
	}
}

// TestKeysRemembered lists the key types whose timers an operator
// remembers: those whose == agrees with any deterministic encoding.
func TestKeysRemembered(t *testing.T) {
	type pair struct {
		A int64
		B string
	}
	type withFloat struct {
		A int64
		F float64
	}
	for name, c := range map[string]struct{ got, want bool }{
		"string":             {window.KeysRemembered[string](), true},
		"int64":              {window.KeysRemembered[int64](), true},
		"[]byte":             {window.KeysRemembered[[]byte](), true},
		"struct of int, str": {window.KeysRemembered[pair](), true},
		"[4]uint16":          {window.KeysRemembered[[4]uint16](), true},
		"float64 (0 == -0)":  {window.KeysRemembered[float64](), false},
		"struct with float":  {window.KeysRemembered[withFloat](), false},
		"pointer":            {window.KeysRemembered[*int64](), false},
		"any":                {window.KeysRemembered[any](), false},
		"[]int64":            {window.KeysRemembered[[]int64](), false},
	} {
		if c.got != c.want {
			t.Errorf("%s: remembered %t, want %t", name, c.got, c.want)
		}
	}
}
