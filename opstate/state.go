package opstate

import (
	"encoding/binary"
	"fmt"
	"iter"
	"maps"
	"slices"

	"github.com/pebblestate/pebblestate/backend"
)

// Mode says how a list is redistributed when a checkpoint is restored at
// another parallelism.
type Mode uint8

const (
	// Split deals the entries of every old subtask out among the new
	// subtasks: they are concatenated in old-subtask order and cut into
	// contiguous chunks of near-equal length, the first chunks one entry
	// longer when the count does not divide. At the same parallelism each
	// subtask gets its own entries back. Flink's ListState.
	Split Mode = 1
	// Union gives every new subtask all the entries of every old subtask,
	// concatenated in old-subtask order. Flink's union ListState.
	Union Mode = 2
)

// String returns "split" or "union".
func (m Mode) String() string {
	switch m {
	case Split:
		return "split"
	case Union:
		return "union"
	}
	return fmt.Sprintf("mode(%d)", uint8(m))
}

// State is the operator state of one operator subtask: named lists of
// opaque entries, each redistributed by its Mode on a restore, and
// positions kept per key group, which go with their key group. Make one
// with New, or restore one with Restore (checkpoint.Restored.OperatorState).
//
// A State is not safe for concurrent use: it belongs to its subtask's
// task, as a backend does.
type State struct {
	maxParallelism int
	parallelism    int
	index          int
	keyGroups      backend.KeyGroupRange
	lists          map[string]*List
	positions      map[int][]byte
}

// New returns the empty operator state of subtask index (0-based) of an
// operator of parallelism subtasks whose positions are kept by
// maxParallelism key groups. The subtask owns the key groups
// backend.KeyGroupRangeForSubtask gives, as its keyed backend would; use
// the backend's max parallelism when the operator has one, or, for a
// source whose partitions are its key groups, the number of partitions.
func New(maxParallelism, parallelism, index int) (*State, error) {
	kg, err := backend.KeyGroupRangeForSubtask(maxParallelism, parallelism, index)
	if err != nil {
		return nil, fmt.Errorf("operator state of subtask %d of %d: %w", index, parallelism, err)
	}
	return &State{
		maxParallelism: maxParallelism,
		parallelism:    parallelism,
		index:          index,
		keyGroups:      kg,
		lists:          make(map[string]*List),
		positions:      make(map[int][]byte),
	}, nil
}

// MaxParallelism returns the number of key groups positions are kept by.
func (s *State) MaxParallelism() int { return s.maxParallelism }

// Parallelism returns the operator's parallelism.
func (s *State) Parallelism() int { return s.parallelism }

// Index returns the subtask's index.
func (s *State) Index() int { return s.index }

// KeyGroups returns the key groups the subtask owns: those it may keep
// positions for.
func (s *State) KeyGroups() backend.KeyGroupRange { return s.keyGroups }

// List returns the list called name, declared with mode; a list asked for
// the first time is empty. A name is bound to its mode for good, across
// checkpoints and restores: asking for it with another mode is
// ErrModeMismatch. An empty name or an unknown mode is an error too.
func (s *State) List(name string, mode Mode) (*List, error) {
	if name == "" {
		return nil, fmt.Errorf("operator state list: empty name")
	}
	if mode != Split && mode != Union {
		return nil, fmt.Errorf("operator state list %q: unknown mode %d", name, mode)
	}
	if l, ok := s.lists[name]; ok {
		if l.mode != mode {
			return nil, fmt.Errorf("%w: list %q is %v, asked for as %v", ErrModeMismatch, name, l.mode, mode)
		}
		return l, nil
	}
	l := &List{name: name, mode: mode}
	s.lists[name] = l
	return l, nil
}

// Lists returns the names of the lists, sorted.
func (s *State) Lists() []string { return slices.Sorted(maps.Keys(s.lists)) }

// SetPosition sets the position of key group kg to a copy of b. The key
// group must be one the subtask owns (KeyGroups), else the error wraps
// ErrKeyGroupOutOfRange.
func (s *State) SetPosition(kg int, b []byte) error {
	if err := s.checkKeyGroup(kg); err != nil {
		return err
	}
	s.positions[kg] = append([]byte{}, b...)
	return nil
}

// Position returns the position of key group kg, and whether it has one.
// The bytes must not be modified.
func (s *State) Position(kg int) ([]byte, bool) {
	b, ok := s.positions[kg]
	return b, ok
}

// DeletePosition removes the position of key group kg, if any. The key
// group must be one the subtask owns.
func (s *State) DeletePosition(kg int) error {
	if err := s.checkKeyGroup(kg); err != nil {
		return err
	}
	delete(s.positions, kg)
	return nil
}

// Positions yields every key group with a position and its bytes, in
// ascending key-group order. The bytes must not be modified.
func (s *State) Positions() iter.Seq2[int, []byte] {
	return func(yield func(int, []byte) bool) {
		for _, kg := range slices.Sorted(maps.Keys(s.positions)) {
			if !yield(kg, s.positions[kg]) {
				return
			}
		}
	}
}

// SetPositionInt64 sets the position of key group kg to v, as 8 bytes
// big-endian: an offset, say.
func (s *State) SetPositionInt64(kg int, v int64) error {
	return s.SetPosition(kg, binary.BigEndian.AppendUint64(nil, uint64(v)))
}

// PositionInt64 returns the position of key group kg as SetPositionInt64
// wrote it, and whether it has one; a position of another length is an
// error.
func (s *State) PositionInt64(kg int) (int64, bool, error) {
	b, ok := s.positions[kg]
	if !ok {
		return 0, false, nil
	}
	if len(b) != 8 {
		return 0, false, fmt.Errorf("position of key group %d: %d bytes, not an int64", kg, len(b))
	}
	return int64(binary.BigEndian.Uint64(b)), true, nil
}

func (s *State) checkKeyGroup(kg int) error {
	if kg < s.keyGroups.Start || kg >= s.keyGroups.End {
		return fmt.Errorf("%w: key group %d, subtask %d of %d owns [%d, %d)",
			ErrKeyGroupOutOfRange, kg, s.index, s.parallelism, s.keyGroups.Start, s.keyGroups.End)
	}
	return nil
}

// List is a named list of opaque entries of a State.
type List struct {
	name    string
	mode    Mode
	entries [][]byte
}

// Name returns the list's name.
func (l *List) Name() string { return l.name }

// Mode returns how the list is redistributed.
func (l *List) Mode() Mode { return l.mode }

// Add appends copies of entries.
func (l *List) Add(entries ...[]byte) {
	for _, e := range entries {
		l.entries = append(l.entries, append([]byte{}, e...))
	}
}

// Update replaces the list's entries with copies of entries.
func (l *List) Update(entries [][]byte) {
	l.entries = nil
	l.Add(entries...)
}

// Clear removes every entry. The list keeps its name and mode.
func (l *List) Clear() { l.entries = nil }

// Len returns the number of entries.
func (l *List) Len() int { return len(l.entries) }

// Entries returns the entries in order, in a new slice; the entries' bytes
// must not be modified.
func (l *List) Entries() [][]byte { return slices.Clone(l.entries) }
