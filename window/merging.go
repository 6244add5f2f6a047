package window

import (
	"cmp"
	"fmt"
	"slices"
)

// A mergingSet is one key's session windows in flight, Flink's
// MergingWindowSet: each window maps to the window whose namespace holds
// its contents (its state window). A merged window keeps the state window
// of one of the windows it absorbed, so merging moves the contents of the
// others only, and its timers are registered under the merged window.
// The set is kept in keyed state (setCodec) between elements.
type mergingSet struct {
	m       []mapping // sorted by window
	changed bool
}

// mapping maps a window in flight to its state window.
type mapping struct{ w, state Window }

func compareWindows(a, b Window) int {
	return cmp.Or(cmp.Compare(a.Start, b.Start), cmp.Compare(a.End, b.End))
}

func (s *mergingSet) find(w Window) (int, bool) {
	return slices.BinarySearchFunc(s.m, w, func(e mapping, w Window) int { return compareWindows(e.w, w) })
}

// stateWindow returns the state window of w, if w is in the set.
func (s *mergingSet) stateWindow(w Window) (Window, bool) {
	i, ok := s.find(w)
	if !ok {
		return Window{}, false
	}
	return s.m[i].state, true
}

func (s *mergingSet) put(w, state Window) {
	i, ok := s.find(w)
	if ok {
		s.m[i].state = state
	} else {
		s.m = slices.Insert(s.m, i, mapping{w, state})
	}
	s.changed = true
}

// retire removes w from the set and returns its state window.
func (s *mergingSet) retire(w Window) (Window, bool) {
	i, ok := s.find(w)
	if !ok {
		return Window{}, false
	}
	state := s.m[i].state
	s.m = slices.Delete(s.m, i, i+1)
	s.changed = true
	return state, true
}

// mergeFunc is called for each merge add makes: result is the merged
// window; merged the windows of the set it absorbed (not the new window);
// state the state window result keeps; from the state windows whose
// contents must move into state.
type mergeFunc func(result Window, merged []Window, state Window, from []Window) error

// add adds w to the set, merging it with the windows it overlaps or
// touches, and returns the window w ended up in, as Flink's
// MergingWindowSet.addWindow does.
func (s *mergingSet) add(w Window, merge mergeFunc) (Window, error) {
	all := make([]Window, 0, len(s.m)+1)
	for _, e := range s.m {
		all = append(all, e.w)
	}
	all = append(all, w)
	groups := mergeWindows(all)
	result, mergedNew := w, false
	for _, g := range groups {
		members := g.members
		if i := slices.Index(members, w); i >= 0 {
			members = slices.Delete(members, i, i+1)
			result, mergedNew = g.result, true
		}
		// members holds at least one window of the set: a group has two
		// windows or more, and w is one of all's windows once.
		state, ok := s.stateWindow(members[0])
		if !ok {
			return w, fmt.Errorf("window %v merges with %v, which has no state window", w, members[0])
		}
		var from []Window
		for _, m := range members {
			if st, ok := s.retire(m); ok && st != state {
				from = append(from, st)
			}
		}
		s.put(g.result, state)
		// A new window inside one window of the set changes nothing.
		if len(members) == 1 && members[0] == g.result {
			continue
		}
		if err := merge(g.result, members, state, from); err != nil {
			return w, err
		}
	}
	if !mergedNew {
		s.put(w, w)
	}
	return result, nil
}

// mergeGroup is a window and the windows it covers.
type mergeGroup struct {
	result  Window
	members []Window
}

// mergeWindows groups windows that overlap or touch, Flink's
// TimeWindow.mergeWindows: sorted by start, each window joins the group
// before it if it intersects that group's cover. Only groups of two
// windows or more are returned.
func mergeWindows(ws []Window) []mergeGroup {
	slices.SortFunc(ws, compareWindows)
	var out []mergeGroup
	var cur mergeGroup
	flush := func() {
		if len(cur.members) > 1 {
			out = append(out, cur)
		}
	}
	for i, w := range ws {
		if i > 0 && cur.result.intersects(w) {
			cur.result = cur.result.cover(w)
			cur.members = append(cur.members, w)
			continue
		}
		if i > 0 {
			flush()
		}
		cur = mergeGroup{result: w, members: []Window{w}}
	}
	if len(ws) > 0 {
		flush()
	}
	return out
}

// setCodec encodes a key's merging set as its mappings in order, 32
// bytes each: the window, then its state window, each as Codec writes it.
type setCodec struct{}

func (setCodec) Name() string { return "time-window-merging-set" }

func (setCodec) Append(dst []byte, m []mapping) ([]byte, error) {
	for _, e := range m {
		dst, _ = Codec.Append(dst, e.w)
		dst, _ = Codec.Append(dst, e.state)
	}
	return dst, nil
}

func (setCodec) Decode(src []byte) ([]mapping, error) {
	if len(src)%32 != 0 {
		return nil, fmt.Errorf("merging window set: %d bytes, not a multiple of 32", len(src))
	}
	m := make([]mapping, 0, len(src)/32)
	for ; len(src) > 0; src = src[32:] {
		m = append(m, mapping{w: decodeWindow(src), state: decodeWindow(src[16:])})
	}
	return m, nil
}
