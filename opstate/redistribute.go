package opstate

import (
	"context"
	"fmt"
	"slices"

	"github.com/pebblestate/pebblestate/snapshot"
)

// Redistribute returns the operator state of subtask index of an operator
// at parallelism, from old: the states of every subtask of the operator as
// they were checkpointed, old[i] of subtask i, all at one parallelism
// (len(old)) and max parallelism. The new state keeps that max
// parallelism and owns the key groups backend.KeyGroupRangeForSubtask
// gives it.
//
//   - Every list of any old subtask is declared in the new state, with its
//     mode, even if it gets no entries; old subtasks that disagree on a
//     list's mode are ErrModeMismatch.
//   - A Union list gets the entries of old[0], then old[1], and so on.
//   - A Split list at the old parallelism gets the entries of old[index]:
//     a restart keeps each subtask's entries where they were. At another
//     parallelism, the entries of old[0], old[1], ... are concatenated,
//     n in all, and new subtask i gets the contiguous chunk starting at
//     i*(n/parallelism) + min(i, n%parallelism), of n/parallelism entries
//     plus one if i < n%parallelism: Flink's split redistribution.
//   - Each position goes to the new subtask owning its key group.
//
// Contiguous chunks, rather than entries dealt one by one, keep the
// entries one subtask wrote together (a source's splits stay in the
// order it listed them), and scaling back to the old parallelism with
// equal old counts gives each subtask its old entries back.
//
// Redistribute only reads old, and the new state shares no memory with
// it: one set of old states may be redistributed to every new subtask,
// from goroutines of their own (as checkpoint.Restored.OperatorState
// does).
func Redistribute(old []*State, parallelism, index int) (*State, error) {
	if len(old) == 0 {
		return nil, fmt.Errorf("redistribute operator state: no old subtasks")
	}
	mp := old[0].maxParallelism
	for i, o := range old {
		if o.index != i || o.parallelism != len(old) || o.maxParallelism != mp {
			return nil, fmt.Errorf("%w: redistribute operator state: old state %d is subtask %d of %d at max parallelism %d, expected subtask %d of %d at %d",
				snapshot.ErrInconsistent, i, o.index, o.parallelism, o.maxParallelism, i, len(old), mp)
		}
	}
	s, err := New(mp, parallelism, index)
	if err != nil {
		return nil, err
	}
	modes := make(map[string]Mode)
	for _, o := range old {
		for name, l := range o.lists {
			if m, ok := modes[name]; ok && m != l.mode {
				return nil, fmt.Errorf("%w: list %q is %v in one old subtask and %v in another", ErrModeMismatch, name, m, l.mode)
			}
			modes[name] = l.mode
		}
	}
	for name, mode := range modes {
		var all [][]byte
		if mode == Split && parallelism == len(old) {
			all = entriesOf(old[index], name)
		} else {
			for _, o := range old {
				all = append(all, entriesOf(o, name)...)
			}
			if mode == Split {
				all = chunk(all, parallelism, index)
			}
		}
		l := &List{name: name, mode: mode}
		l.Add(all...)
		s.lists[name] = l
	}
	for _, o := range old {
		for kg, b := range o.positions {
			if kg >= s.keyGroups.Start && kg < s.keyGroups.End {
				s.positions[kg] = slices.Clone(b)
			}
		}
	}
	return s, nil
}

// entriesOf returns the entries of list name of s, nil if it has none.
func entriesOf(s *State, name string) [][]byte {
	if l, ok := s.lists[name]; ok {
		return l.entries
	}
	return nil
}

// chunk returns subtask i's contiguous share of all among p subtasks.
func chunk(all [][]byte, p, i int) [][]byte {
	n := len(all)
	base, rem := n/p, n%p
	start := i*base + min(i, rem)
	size := base
	if i < rem {
		size++
	}
	return all[start : start+size]
}

// Restore returns the operator state of subtask index of operator at
// parallelism from checkpoint cp in st: it reads every old subtask's file
// (ReadAll) and redistributes them (Redistribute). An operator without
// operator state in cp is snapshot.ErrIncomplete.
func Restore(ctx context.Context, st snapshot.Storage, cp *snapshot.Checkpoint, operator string, parallelism, index int) (*State, error) {
	old, err := ReadAll(ctx, st, cp, operator)
	if err != nil {
		return nil, err
	}
	s, err := Redistribute(old, parallelism, index)
	if err != nil {
		return nil, fmt.Errorf("checkpoint %d, operator %q: %w", cp.ID, operator, err)
	}
	return s, nil
}

// ReadAll reads the operator state of every old subtask of operator in
// checkpoint cp, in subtask order, each file verified (Read): what
// Redistribute takes. A caller restoring several subtasks reads once and
// redistributes to each. An operator without operator state in cp is
// snapshot.ErrIncomplete.
func ReadAll(ctx context.Context, st snapshot.Storage, cp *snapshot.Checkpoint, operator string) ([]*State, error) {
	if cp == nil {
		return nil, fmt.Errorf("%w: no checkpoint", snapshot.ErrIncomplete)
	}
	refs := snapshot.OperatorStatesOf(cp, operator)
	if len(refs) == 0 {
		return nil, fmt.Errorf("checkpoint %d: %w: no operator state of operator %q", cp.ID, snapshot.ErrIncomplete, operator)
	}
	old := make([]*State, len(refs))
	for i, ref := range refs {
		s, err := Read(ctx, st, ref)
		if err != nil {
			return nil, err
		}
		old[i] = s
	}
	return old, nil
}
