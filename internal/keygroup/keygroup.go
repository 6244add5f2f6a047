package keygroup

import (
	"errors"
	"fmt"
)

// MaxParallelismLimit is the largest supported number of key groups, as in
// Flink (1<<15). Key groups then always fit in two bytes with the top bit
// clear.
const MaxParallelismLimit = 1 << 15

// ErrInvalidArgument is returned for a parallelism, subtask index or key
// group outside its legal range.
var ErrInvalidArgument = errors.New("invalid argument")

// Range is a half-open range [Start, End) of key groups. The zero value is
// the empty range.
type Range struct {
	Start int // first key group in the range
	End   int // one past the last key group in the range
}

// Len returns the number of key groups in r (0 for an empty or inverted range).
func (r Range) Len() int {
	if r.End <= r.Start {
		return 0
	}
	return r.End - r.Start
}

// IsEmpty reports whether r holds no key group.
func (r Range) IsEmpty() bool { return r.Len() == 0 }

// Contains reports whether key group kg lies in r.
func (r Range) Contains(kg int) bool { return kg >= r.Start && kg < r.End }

// Intersect returns the key groups that r and o have in common; the result
// is empty (the zero Range) when they are disjoint.
func (r Range) Intersect(o Range) Range {
	s, e := max(r.Start, o.Start), min(r.End, o.End)
	if e <= s {
		return Range{}
	}
	return Range{Start: s, End: e}
}

// String formats r as [start, end).
func (r Range) String() string { return fmt.Sprintf("[%d, %d)", r.Start, r.End) }

// Validate checks that r is a non-empty range inside [0, maxParallelism).
func (r Range) Validate(maxParallelism int) error {
	if err := checkMaxParallelism(maxParallelism); err != nil {
		return err
	}
	if r.Start < 0 || r.End > maxParallelism || r.End <= r.Start {
		return fmt.Errorf("%w: key-group range %s is empty or outside [0, %d)", ErrInvalidArgument, r, maxParallelism)
	}
	return nil
}

func checkMaxParallelism(maxParallelism int) error {
	if maxParallelism < 1 || maxParallelism > MaxParallelismLimit {
		return fmt.Errorf("%w: max parallelism %d outside [1, %d]", ErrInvalidArgument, maxParallelism, MaxParallelismLimit)
	}
	return nil
}

func checkParallelism(maxParallelism, parallelism int) error {
	if err := checkMaxParallelism(maxParallelism); err != nil {
		return err
	}
	if parallelism < 1 || parallelism > maxParallelism {
		return fmt.Errorf("%w: parallelism %d outside [1, max parallelism %d]", ErrInvalidArgument, parallelism, maxParallelism)
	}
	return nil
}

// Assign returns the key group of a serialized key under Murmur3, the
// default assigner (see Assigner): the MurmurHash3 x86_32
// (seed 0) of the key bytes, taken as an unsigned number, modulo
// maxParallelism. The key bytes are those the backend's key codec produces.
func Assign(key []byte, maxParallelism int) (int, error) {
	if err := checkMaxParallelism(maxParallelism); err != nil {
		return 0, err
	}
	return AssignUnchecked(key, maxParallelism), nil
}

// AssignUnchecked is Assign for a maxParallelism the caller has already
// validated (in [1, MaxParallelismLimit]); it is the hot-path form.
func AssignUnchecked(key []byte, maxParallelism int) int {
	return int(Murmur3(key, 0) % uint32(maxParallelism))
}

// RangeForSubtask returns the key groups owned by subtask index (0-based) of
// parallelism subtasks, with Flink's formula: subtask i owns
// [ceil(i*maxP/p), ceil((i+1)*maxP/p)). The ranges of all subtasks are
// contiguous, disjoint and cover [0, maxParallelism).
func RangeForSubtask(maxParallelism, parallelism, index int) (Range, error) {
	if err := checkParallelism(maxParallelism, parallelism); err != nil {
		return Range{}, err
	}
	if index < 0 || index >= parallelism {
		return Range{}, fmt.Errorf("%w: subtask index %d outside [0, %d)", ErrInvalidArgument, index, parallelism)
	}
	m, p, i := int64(maxParallelism), int64(parallelism), int64(index)
	start := (i*m + p - 1) / p
	end := ((i+1)*m + p - 1) / p
	return Range{Start: int(start), End: int(end)}, nil
}

// SubtaskForKeyGroup returns the index of the subtask that owns key group kg
// when there are parallelism subtasks: kg*p/maxP, the inverse of
// RangeForSubtask.
func SubtaskForKeyGroup(maxParallelism, parallelism, kg int) (int, error) {
	if err := checkParallelism(maxParallelism, parallelism); err != nil {
		return 0, err
	}
	if kg < 0 || kg >= maxParallelism {
		return 0, fmt.Errorf("%w: key group %d outside [0, %d)", ErrInvalidArgument, kg, maxParallelism)
	}
	return kg * parallelism / maxParallelism, nil
}

// DefaultMaxParallelism returns Flink's default max parallelism for an
// operator of the given parallelism: roundUpToPowerOfTwo(p + p/2), clamped to
// [128, 32768].
func DefaultMaxParallelism(parallelism int) (int, error) {
	if parallelism < 1 || parallelism > MaxParallelismLimit {
		return 0, fmt.Errorf("%w: parallelism %d outside [1, %d]", ErrInvalidArgument, parallelism, MaxParallelismLimit)
	}
	n := parallelism + parallelism/2
	p := 1
	for p < n {
		p <<= 1
	}
	return min(max(p, 128), MaxParallelismLimit), nil
}
