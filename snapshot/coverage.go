package snapshot

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Validate checks the invariants of a checkpoint's metadata, which Commit,
// DecodeMetadata and Verify enforce:
//
//   - every handle is valid (Handle.Validate, which checks its file names)
//     and belongs to this checkpoint: its CheckpointID is cp.ID;
//   - per operator, the handles agree on the max parallelism and hold every
//     key group of [0, max parallelism) exactly once;
//   - the operator state references are valid, name distinct files in
//     the checkpoint's directory, and per operator agree on the
//     parallelism and max parallelism and hold every subtask exactly once.
//
// A key group in no handle is ErrIncomplete; one in two handles, handles
// disagreeing on max parallelism, or a handle of another checkpoint is
// ErrInconsistent. A checkpoint without handles is valid: it holds no
// state.
func (cp *Checkpoint) Validate() error {
	if cp == nil {
		return errors.New("no checkpoint")
	}
	if cp.ID < 0 {
		return fmt.Errorf("checkpoint id %d is negative", cp.ID)
	}
	for i := range cp.Handles {
		h := &cp.Handles[i]
		if err := h.Validate(); err != nil {
			return err
		}
		if h.CheckpointID != cp.ID {
			return fmt.Errorf("%w: handle of %s (operator %q) belongs to checkpoint %d, not %d",
				ErrInconsistent, h.InstanceID, h.Operator, h.CheckpointID, cp.ID)
		}
	}
	for _, op := range operators(cp.Handles) {
		hs := handlesOf(cp.Handles, op)
		mp, err := agreedParallelism(op, hs)
		if err != nil {
			return err
		}
		if err := coverage(op, hs, mp, 0, mp); err != nil {
			return err
		}
	}
	return cp.validateOperatorStates()
}

// CheckCovers reports whether the checkpoint can restore key groups
// [start, end) of operator: see Covers.
func (cp *Checkpoint) CheckCovers(operator string, start, end int) error {
	if cp == nil {
		return fmt.Errorf("%w: no checkpoint", ErrIncomplete)
	}
	if err := Covers(cp.Handles, operator, start, end); err != nil {
		return fmt.Errorf("checkpoint %d: %w", cp.ID, err)
	}
	return nil
}

// Covers reports whether handles can restore key groups [start, end) of
// operator: the operator has handles, they are valid (else ErrCorrupt),
// belong to one checkpoint and agree on the max parallelism (else
// ErrInconsistent), no key group is in two of them (ErrInconsistent), and
// every key group of [start, end) is in one of them (else ErrIncomplete,
// naming the missing key groups). Handles of other operators are ignored.
// A restore calls it before it reads anything.
func Covers(handles []Handle, operator string, start, end int) error {
	hs := handlesOf(handles, operator)
	if len(hs) == 0 {
		if ops := operators(handles); len(ops) > 0 {
			return fmt.Errorf("%w: no handle for operator %q (the handles are of operators %s)",
				ErrIncomplete, operator, quoteAll(ops))
		}
		return fmt.Errorf("%w: no handle for operator %q (there are no handles)", ErrIncomplete, operator)
	}
	for i := range hs {
		if err := hs[i].Validate(); err != nil {
			return fmt.Errorf("%w: %w", ErrCorrupt, err)
		}
		if hs[i].CheckpointID != hs[0].CheckpointID {
			return fmt.Errorf("%w: operator %q: handles of checkpoints %d (%s) and %d (%s) mixed",
				ErrInconsistent, operator, hs[0].CheckpointID, hs[0].InstanceID, hs[i].CheckpointID, hs[i].InstanceID)
		}
	}
	mp, err := agreedParallelism(operator, hs)
	if err != nil {
		return err
	}
	if start < 0 || end > mp || start >= end {
		return fmt.Errorf("key groups [%d, %d) asked for: not a range of operator %q's max parallelism %d",
			start, end, operator, mp)
	}
	return coverage(operator, hs, mp, start, end)
}

// operators returns the distinct operators of handles, sorted.
func operators(handles []Handle) []string {
	var ops []string
	for _, h := range handles {
		ops = append(ops, h.Operator)
	}
	slices.Sort(ops)
	return slices.Compact(ops)
}

// handlesOf returns the handles of operator.
func handlesOf(handles []Handle, operator string) []Handle {
	var hs []Handle
	for _, h := range handles {
		if h.Operator == operator {
			hs = append(hs, h)
		}
	}
	return hs
}

// agreedParallelism returns the max parallelism the handles of one
// operator agree on. It takes valid handles.
func agreedParallelism(operator string, hs []Handle) (int, error) {
	for _, h := range hs[1:] {
		if h.MaxParallelism != hs[0].MaxParallelism {
			return 0, fmt.Errorf("%w: operator %q: handles disagree on max parallelism: %d (handle of %s), %d (handle of %s)",
				ErrInconsistent, operator, hs[0].MaxParallelism, hs[0].InstanceID, h.MaxParallelism, h.InstanceID)
		}
	}
	return hs[0].MaxParallelism, nil
}

// coverage checks that no key group of [0, mp) is in two of the handles
// and every key group of [start, end) is in one. It takes valid handles of
// max parallelism mp.
func coverage(operator string, hs []Handle, mp, start, end int) error {
	count := make([]uint16, mp)
	for _, h := range hs {
		for kg := h.KeyGroupStart; kg < h.KeyGroupEnd; kg++ {
			if count[kg] < 2 {
				count[kg]++
			}
		}
	}
	doubled := ranges(count, 0, mp, func(n uint16) bool { return n > 1 })
	missing := ranges(count, start, end, func(n uint16) bool { return n == 0 })
	switch {
	case doubled != "" && missing != "":
		return fmt.Errorf("%w: operator %q: key groups %s are in more than one handle; %w: key groups %s are in none",
			ErrInconsistent, operator, doubled, ErrIncomplete, missing)
	case doubled != "":
		return fmt.Errorf("%w: operator %q: key groups %s are in more than one handle", ErrInconsistent, operator, doubled)
	case missing != "":
		return fmt.Errorf("%w: operator %q: key groups %s are in no handle", ErrIncomplete, operator, missing)
	}
	return nil
}

// maxRanges bounds how many ranges an error lists.
const maxRanges = 8

// ranges lists the maximal ranges of key groups in [start, end) whose
// count is selected, as "[a, b), [c, d)", or "" if there are none.
func ranges(count []uint16, start, end int, selected func(uint16) bool) string {
	var out []string
	n := 0
	for kg := start; kg < end; {
		if !selected(count[kg]) {
			kg++
			continue
		}
		from := kg
		for kg < end && selected(count[kg]) {
			kg++
		}
		n++
		if len(out) < maxRanges {
			out = append(out, fmt.Sprintf("[%d, %d)", from, kg))
		}
	}
	if n > maxRanges {
		out = append(out, fmt.Sprintf("and %d more ranges", n-maxRanges))
	}
	return strings.Join(out, ", ")
}

func quoteAll(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = fmt.Sprintf("%q", s)
	}
	return strings.Join(q, ", ")
}
