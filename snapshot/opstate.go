package snapshot

import (
	"fmt"
	"slices"
)

// This file holds the _metadata section of operator state: non-keyed
// state per operator subtask (package opstate writes and reads the files;
// this package only knows where they are and checks the references).

// MetadataVersionOperatorState is the metadata version of a checkpoint
// that holds operator state (Checkpoint.OperatorStates) or a handle with a
// key-group assigner other than the default. A checkpoint with neither is
// written as version 1, which builds from before them read; one with
// either must not be read by them, since they would restore the keyed
// state and silently drop the operator state, or map keys to key groups
// with the wrong assigner and lose sight of them.
const MetadataVersionOperatorState = 2

// OperatorStateRef locates the operator state of one operator subtask in
// a checkpoint: one file in the checkpoint's directory, written by
// package opstate, and the subtask it belongs to.
type OperatorStateRef struct {
	// Operator names the operator.
	Operator string `json:"operator"`
	// Subtask is the subtask's index in [0, Parallelism).
	Subtask int `json:"subtask"`
	// Parallelism is the operator's parallelism when the state was taken.
	Parallelism int `json:"parallelism"`
	// MaxParallelism is the number of key groups its positions are kept
	// by.
	MaxParallelism int `json:"max_parallelism"`
	// FileRef is the file, its size and CRC-32C.
	FileRef
}

// OperatorStateOperators returns the operators with operator state in cp,
// sorted.
func OperatorStateOperators(cp *Checkpoint) []string {
	if cp == nil {
		return nil
	}
	var ops []string
	for _, r := range cp.OperatorStates {
		ops = append(ops, r.Operator)
	}
	slices.Sort(ops)
	return slices.Compact(ops)
}

// OperatorStatesOf returns the operator state references of operator in
// cp, by subtask index.
func OperatorStatesOf(cp *Checkpoint, operator string) []OperatorStateRef {
	var refs []OperatorStateRef
	for _, r := range cp.OperatorStates {
		if r.Operator == operator {
			refs = append(refs, r)
		}
	}
	slices.SortFunc(refs, func(a, b OperatorStateRef) int { return a.Subtask - b.Subtask })
	return refs
}

// Validate checks one reference on its own: a non-empty operator, a max
// parallelism of 1 to 32768, a parallelism of 1 to the max parallelism,
// a subtask index below it, and a safe file name in checkpoint id's
// directory.
func (r *OperatorStateRef) Validate(id int64) error {
	switch {
	case r.Operator == "":
		return fmt.Errorf("operator state %q: no operator", r.Name)
	case r.MaxParallelism < 1 || r.MaxParallelism > 1<<15:
		return fmt.Errorf("operator state of %q subtask %d: max parallelism %d out of range", r.Operator, r.Subtask, r.MaxParallelism)
	case r.Parallelism < 1 || r.Parallelism > r.MaxParallelism:
		return fmt.Errorf("operator state of %q subtask %d: parallelism %d out of range for max parallelism %d",
			r.Operator, r.Subtask, r.Parallelism, r.MaxParallelism)
	case r.Subtask < 0 || r.Subtask >= r.Parallelism:
		return fmt.Errorf("operator state of %q: subtask %d out of range for parallelism %d", r.Operator, r.Subtask, r.Parallelism)
	}
	if err := checkRef("operator_states.name", r.Name, Dir(id)+"/"); err != nil {
		return fmt.Errorf("operator state of %q subtask %d: %w", r.Operator, r.Subtask, err)
	}
	return nil
}

// validateOperatorStates checks cp's operator state references: each
// valid, no file named twice, and per operator one parallelism and one
// max parallelism, with every subtask of [0, parallelism) exactly once
// (ErrInconsistent for disagreement or a doubled subtask, ErrIncomplete
// for a missing one).
func (cp *Checkpoint) validateOperatorStates() error {
	names := make(map[string]bool, len(cp.OperatorStates))
	for i := range cp.OperatorStates {
		r := &cp.OperatorStates[i]
		if err := r.Validate(cp.ID); err != nil {
			return err
		}
		if names[r.Name] {
			return fmt.Errorf("%w: operator state file %q is named twice", ErrInconsistent, r.Name)
		}
		names[r.Name] = true
	}
	for _, op := range OperatorStateOperators(cp) {
		refs := OperatorStatesOf(cp, op)
		first := refs[0]
		for _, r := range refs[1:] {
			if r.Parallelism != first.Parallelism || r.MaxParallelism != first.MaxParallelism {
				return fmt.Errorf("%w: operator state of %q: subtasks disagree on parallelism or max parallelism: %d/%d (subtask %d), %d/%d (subtask %d)",
					ErrInconsistent, op, first.Parallelism, first.MaxParallelism, first.Subtask, r.Parallelism, r.MaxParallelism, r.Subtask)
			}
		}
		for i, r := range refs {
			switch {
			case r.Subtask < i:
				return fmt.Errorf("%w: operator state of %q: subtask %d appears twice", ErrInconsistent, op, r.Subtask)
			case r.Subtask > i:
				return fmt.Errorf("%w: operator state of %q: subtask %d of %d is missing", ErrIncomplete, op, i, first.Parallelism)
			}
		}
		switch n := first.Parallelism; {
		case len(refs) == n-1:
			return fmt.Errorf("%w: operator state of %q: subtask %d of %d is missing", ErrIncomplete, op, n-1, n)
		case len(refs) < n:
			return fmt.Errorf("%w: operator state of %q: subtasks %d to %d of %d are missing", ErrIncomplete, op, len(refs), n-1, n)
		}
	}
	return nil
}
