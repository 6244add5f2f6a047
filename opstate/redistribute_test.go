package opstate_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/pebblestate/pebblestate/opstate"
	"github.com/pebblestate/pebblestate/snapshot"
)

// oldStates builds the states of p subtasks at max parallelism 8: split
// list "s" and union list "u" with the given entries per subtask, and
// position kg = "kg" for every key group each owns.
func oldStates(t *testing.T, split, union [][]string) []*opstate.State {
	t.Helper()
	p := len(split)
	var out []*opstate.State
	for i := range p {
		s, err := opstate.New(8, p, i)
		noErr(t, err)
		l, err := s.List("s", opstate.Split)
		noErr(t, err)
		for _, e := range split[i] {
			l.Add([]byte(e))
		}
		u, err := s.List("u", opstate.Union)
		noErr(t, err)
		for _, e := range union[i] {
			u.Add([]byte(e))
		}
		for kg := s.KeyGroups().Start; kg < s.KeyGroups().End; kg++ {
			noErr(t, s.SetPosition(kg, []byte{byte('0' + kg)}))
		}
		out = append(out, s)
	}
	return out
}

func entries(t *testing.T, s *opstate.State, name string, mode opstate.Mode) []string {
	t.Helper()
	l, err := s.List(name, mode)
	noErr(t, err)
	return bytesList(l.Entries())
}

func TestRedistributeExamples(t *testing.T) {
	old := oldStates(t, [][]string{{"a", "b", "c"}, {"d", "e"}}, [][]string{{"x"}, {"y", "z"}})
	cases := []struct {
		p     int
		split [][]string
	}{
		// Same parallelism: each keeps its own, although 3+2 is uneven.
		{2, [][]string{{"a", "b", "c"}, {"d", "e"}}},
		{1, [][]string{{"a", "b", "c", "d", "e"}}},
		// 5 entries among 3: chunks of 2, 2, 1.
		{3, [][]string{{"a", "b"}, {"c", "d"}, {"e"}}},
		{4, [][]string{{"a", "b"}, {"c"}, {"d"}, {"e"}}},
		{5, [][]string{{"a"}, {"b"}, {"c"}, {"d"}, {"e"}}},
		{7, [][]string{{"a"}, {"b"}, {"c"}, {"d"}, {"e"}, nil, nil}},
	}
	for _, c := range cases {
		var pos []int
		for i := range c.p {
			s, err := opstate.Redistribute(old, c.p, i)
			noErr(t, err)
			if got := entries(t, s, "s", opstate.Split); !slices.Equal(got, c.split[i]) {
				t.Errorf("p'=%d subtask %d: split %q, want %q", c.p, i, got, c.split[i])
			}
			if got := entries(t, s, "u", opstate.Union); !slices.Equal(got, []string{"x", "y", "z"}) {
				t.Errorf("p'=%d subtask %d: union %q", c.p, i, got)
			}
			for kg, v := range s.Positions() {
				if kg < s.KeyGroups().Start || kg >= s.KeyGroups().End || string(v) != string(rune('0'+kg)) {
					t.Errorf("p'=%d subtask %d: position %d = %q", c.p, i, kg, v)
				}
				pos = append(pos, kg)
			}
			if s.MaxParallelism() != 8 || s.Parallelism() != c.p || s.Index() != i {
				t.Errorf("p'=%d subtask %d: %s", c.p, i, describe(s))
			}
		}
		if !slices.Equal(pos, []int{0, 1, 2, 3, 4, 5, 6, 7}) {
			t.Errorf("p'=%d: positions %v, want every key group once", c.p, pos)
		}
	}
	if _, err := opstate.Redistribute(old, 9, 0); err == nil {
		t.Error("parallelism above the max parallelism accepted")
	}
}

func TestRedistributeRefusesMismatch(t *testing.T) {
	old := oldStates(t, [][]string{{"a"}, {"b"}}, [][]string{nil, nil})
	// Subtask 1 declares "s" as union.
	other, err := opstate.New(8, 2, 1)
	noErr(t, err)
	_, err = other.List("s", opstate.Union)
	noErr(t, err)
	if _, err := opstate.Redistribute([]*opstate.State{old[0], other}, 3, 0); !errors.Is(err, opstate.ErrModeMismatch) {
		t.Fatalf("disagreeing modes: %v", err)
	}
	for name, bad := range map[string][]*opstate.State{
		"none":           nil,
		"one of two":     old[:1],
		"out of order":   {old[1], old[0]},
		"repeated":       {old[0], old[0]},
		"other max":      {old[0], mustNew(t, 16, 2, 1)},
		"two of another": {old[0], old[1], mustNew(t, 8, 3, 2)},
	} {
		if _, err := opstate.Redistribute(bad, 2, 0); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func mustNew(t *testing.T, mp, p, i int) *opstate.State {
	t.Helper()
	s, err := opstate.New(mp, p, i)
	noErr(t, err)
	return s
}

func TestRestoreWithoutOperatorState(t *testing.T) {
	st, err := snapshot.NewLocal(t.TempDir())
	noErr(t, err)
	_, err = opstate.Restore(context.Background(), st, &snapshot.Checkpoint{ID: 3}, "src", 1, 0)
	if !errors.Is(err, snapshot.ErrIncomplete) {
		t.Fatalf("no operator state: %v", err)
	}
	if _, err := opstate.Restore(context.Background(), st, nil, "src", 1, 0); !errors.Is(err, snapshot.ErrIncomplete) {
		t.Fatalf("no checkpoint: %v", err)
	}
}

// TestRedistributeSharesNothing: the new states share no bytes with the
// old ones or with each other, so one set of old states can be
// redistributed to every new subtask, and a subtask that wrongly writes
// into its entries' or positions' bytes harms no other.
func TestRedistributeSharesNothing(t *testing.T) {
	old := oldStates(t, [][]string{{"a", "b"}, {"c"}}, [][]string{{"x"}, {"y"}})
	before := make([]string, len(old))
	for i, o := range old {
		before[i] = describe(o)
	}
	for _, p := range []int{1, 2, 3} {
		var news []*opstate.State
		for i := range p {
			s, err := opstate.Redistribute(old, p, i)
			noErr(t, err)
			news = append(news, s)
		}
		want := make([]string, p)
		for i, s := range news {
			want[i] = describe(s)
		}
		// Scribble over every byte of subtask 0's entries and positions.
		for _, name := range news[0].Lists() {
			l, err := news[0].List(name, opstate.Split)
			if err != nil {
				l, _ = news[0].List(name, opstate.Union)
			}
			for _, e := range l.Entries() {
				clear(e)
			}
		}
		for _, b := range news[0].Positions() {
			clear(b)
		}
		for i, o := range old {
			if got := describe(o); got != before[i] {
				t.Fatalf("p=%d: old subtask %d changed:\n%s\nto\n%s", p, i, before[i], got)
			}
		}
		for i, s := range news[1:] {
			if got := describe(s); got != want[i+1] {
				t.Fatalf("p=%d: new subtask %d changed:\n%s\nto\n%s", p, i+1, want[i+1], got)
			}
		}
	}
}
