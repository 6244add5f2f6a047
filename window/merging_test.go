package window

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// TestMergingSet checks the merging set's cases, Flink's
// MergingWindowSetTest in our own words: a new window apart from the
// others, inside one, overlapping or touching one, bridging two, and
// equal to one.
func TestMergingSet(t *testing.T) {
	w := func(s, e int64) Window { return Window{Start: s, End: e} }
	var merges []string
	rec := func(result Window, merged []Window, state Window, from []Window) error {
		merges = append(merges, fmt.Sprintf("%v <- %v state %v from %v", result, merged, state, from))
		return nil
	}
	s := &mergingSet{}
	for _, c := range []struct {
		add    Window
		result Window
		merges []string
		set    string
	}{
		{w(0, 10), w(0, 10), nil, "[{[0,10) [0,10)}]"},
		{w(20, 30), w(20, 30), nil, "[{[0,10) [0,10)} {[20,30) [20,30)}]"},
		// Inside [0,10): nothing merges.
		{w(2, 8), w(0, 10), nil, "[{[0,10) [0,10)} {[20,30) [20,30)}]"},
		// Equal to one: the same.
		{w(20, 30), w(20, 30), nil, "[{[0,10) [0,10)} {[20,30) [20,30)}]"},
		// Touching [0,10) at 10: extends it, which keeps its state window.
		{w(10, 14), w(0, 14), []string{"[0,14) <- [[0,10)] state [0,10) from []"}, "[{[0,14) [0,10)} {[20,30) [20,30)}]"},
		// Bridging both: one window, the first's state window, the
		// second's state merged into it.
		{w(13, 21), w(0, 30), []string{"[0,30) <- [[0,14) [20,30)] state [0,10) from [[20,30)]"}, "[{[0,30) [0,10)}]"},
		// Apart again.
		{w(40, 45), w(40, 45), nil, "[{[0,30) [0,10)} {[40,45) [40,45)}]"},
	} {
		merges = nil
		got, err := s.add(c.add, rec)
		if err != nil {
			t.Fatal(err)
		}
		if got != c.result || !slices.Equal(merges, c.merges) || show(s.m) != c.set {
			t.Fatalf("add %v = %v, merges %q, set %v; want %v, %q, %s", c.add, got, merges, show(s.m), c.result, c.merges, c.set)
		}
	}
	if st, ok := s.retire(w(0, 30)); !ok || st != w(0, 10) {
		t.Errorf("retire [0,30) = %v, %v", st, ok)
	}
	if _, ok := s.stateWindow(w(0, 30)); ok {
		t.Error("a retired window is still in the set")
	}
	enc, _ := setCodec{}.Append(nil, s.m)
	if dec, err := (setCodec{}).Decode(enc); err != nil || !slices.Equal(dec, s.m) {
		t.Errorf("set codec round trip: %v, %v; want %v", dec, err, s.m)
	}
	if _, err := (setCodec{}).Decode(enc[1:]); err == nil {
		t.Error("decoding a truncated set succeeded")
	}
}

func show(m []mapping) string {
	var parts []string
	for _, e := range m {
		parts = append(parts, fmt.Sprintf("{%v %v}", e.w, e.state))
	}
	return "[" + strings.Join(parts, " ") + "]"
}
