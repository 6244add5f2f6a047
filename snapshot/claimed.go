package snapshot

import (
	"errors"
	"fmt"
	"slices"
)

// CheckClaimed checks, when a job starts from checkpoint cp, that every
// operator with state in cp (keyed state in handles, or operator state)
// is one of operators, the operators of the job. State of an operator the job does not run would be silently lost,
// so that is ErrNonRestoredState, naming the unclaimed operators, unless
// allowNonRestored is set (Flink's --allowNonRestoredState): then that
// state is left behind on purpose and CheckClaimed returns nil.
//
// A backend cannot make this check: it restores one operator and does
// not know the others. The coordinator that starts the job's backends
// calls it once, before restoring any. An operator of the job with no
// state in cp is new: it is opened empty (backend.Open), not restored,
// since a restore that finds nothing for its operator is an error.
func CheckClaimed(cp *Checkpoint, operators []string, allowNonRestored bool) error {
	if cp == nil {
		return errors.New("check claimed state: no checkpoint")
	}
	var unclaimed []string
	held := append(Operators(cp), OperatorStateOperators(cp)...)
	slices.Sort(held)
	for _, op := range slices.Compact(held) {
		if !slices.Contains(operators, op) {
			unclaimed = append(unclaimed, op)
		}
	}
	if len(unclaimed) == 0 || allowNonRestored {
		return nil
	}
	return fmt.Errorf("%w: checkpoint %d holds state of operators %s, which the job does not run (allow non-restored state to drop it)",
		ErrNonRestoredState, cp.ID, quoteAll(unclaimed))
}

// Operators returns the operators with handles (keyed state) in cp,
// sorted; OperatorStateOperators returns those with operator state.
func Operators(cp *Checkpoint) []string {
	if cp == nil {
		return nil
	}
	return operators(cp.Handles)
}
