package checkpoint

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/pebblestate/pebblestate/backend"
	"github.com/pebblestate/pebblestate/opstate"
	"github.com/pebblestate/pebblestate/snapshot"
)

// RestoreOptions say how a job starts from a checkpoint.
type RestoreOptions struct {
	// Operators are the names of the job's operators. Required.
	Operators []string
	// AllowNonRestoredState lets the job start although the checkpoint
	// holds state of operators it does not run, which is then dropped
	// (Flink's --allowNonRestoredState). Default: false, an error
	// wrapping snapshot.ErrNonRestoredState.
	AllowNonRestoredState bool
	// Mode is the restore mode the job's backends are restored with
	// (backend.Options.RestoreMode; BackendOptions sets it). Under
	// NoClaim, the default, the coordinator's retention keeps the restored
	// checkpoint when the job checkpoints into the root it came from.
	Mode backend.RestoreMode
}

// Restored is the checkpoint a job starts from: pass it to the
// coordinator as Options.Restored, and restore each subtask's backend
// from its handles (BackendOptions, then backend.Restore).
type Restored struct {
	// Storage is the root the checkpoint is in.
	Storage snapshot.Storage
	// Checkpoint is the checkpoint, verified.
	Checkpoint *snapshot.Checkpoint
	// Skipped are the newer checkpoints passed over because their
	// metadata does not verify, newest first, with why.
	Skipped []snapshot.Skipped
	// AllowNonRestoredState and Mode are those of RestoreOptions.
	AllowNonRestoredState bool
	Mode                  backend.RestoreMode

	// The operator state OperatorState read, by operator.
	opMu     sync.Mutex
	opStates map[string]*oldOperatorState
}

// oldOperatorState is the operator state of every old subtask of one
// operator, read once: mu is held while it is read, so that concurrent
// callers wait for one read rather than each reading.
type oldOperatorState struct {
	mu  sync.Mutex
	old []*opstate.State // nil until read
}

// LatestCheckpoint picks the checkpoint a job restarts from: the newest
// in st whose metadata verifies (snapshot.LatestWithReport), after
// checking that the job's operators claim all its state
// (snapshot.CheckClaimed). With no checkpoint, the error wraps
// snapshot.ErrNoCheckpoint: the job starts empty.
func LatestCheckpoint(ctx context.Context, st snapshot.Storage, opts RestoreOptions) (*Restored, error) {
	if len(opts.Operators) == 0 {
		return nil, fmt.Errorf("restore a job: no operators")
	}
	cp, skipped, err := snapshot.LatestWithReport(ctx, st)
	if err != nil {
		return nil, fmt.Errorf("restore a job: %w", err)
	}
	if err := snapshot.CheckClaimed(cp, opts.Operators, opts.AllowNonRestoredState); err != nil {
		return nil, fmt.Errorf("restore a job: %w", err)
	}
	return &Restored{Storage: st, Checkpoint: cp, Skipped: skipped, AllowNonRestoredState: opts.AllowNonRestoredState, Mode: opts.Mode}, nil
}

// HasState reports whether the checkpoint holds keyed state of operator.
// An operator without is new to the job: its backends are opened empty
// (backend.Open), since a restore that finds nothing is an error.
// HasOperatorState is its counterpart for operator state.
func (r *Restored) HasState(operator string) bool {
	return slices.Contains(snapshot.Operators(r.Checkpoint), operator)
}

// BackendOptions returns opts set up to restore subtask index of operator
// at parallelism from the checkpoint: Operator, the max parallelism the
// checkpoint recorded for the operator, the subtask's key groups and the
// restore mode. Pass them with r.Checkpoint.Handles to backend.Restore.
func (r *Restored) BackendOptions(opts backend.Options, operator string, index, parallelism int) (backend.Options, error) {
	mp := 0
	for _, h := range r.Checkpoint.Handles {
		if h.Operator == operator {
			mp = h.MaxParallelism
			break
		}
	}
	if mp == 0 {
		return opts, fmt.Errorf("checkpoint %d: %w: no state of operator %q", r.Checkpoint.ID, snapshot.ErrIncomplete, operator)
	}
	kg, err := backend.KeyGroupRangeForSubtask(mp, parallelism, index)
	if err != nil {
		return opts, fmt.Errorf("operator %q subtask %d of %d: %w", operator, index, parallelism, err)
	}
	opts.Operator, opts.MaxParallelism, opts.KeyGroups, opts.RestoreMode = operator, mp, kg, r.Mode
	return opts, nil
}

// HasOperatorState reports whether the checkpoint holds operator state of
// operator. An operator without starts its subtasks' operator state empty
// (opstate.New).
func (r *Restored) HasOperatorState(operator string) bool {
	return slices.Contains(snapshot.OperatorStateOperators(r.Checkpoint), operator)
}

// OperatorState returns the operator state of subtask index of operator
// at parallelism, redistributed from the checkpoint (opstate.Restore):
// split lists dealt out, union lists whole, positions of the subtask's key
// groups. It works at any parallelism up to the max parallelism the
// positions were kept by, which the state keeps. Damage is
// snapshot.ErrCorrupt naming the file; an operator without operator state
// in the checkpoint is snapshot.ErrIncomplete.
//
// The first call for an operator reads and verifies every file of its
// state (opstate.ReadAll) and keeps what it decoded in r, so that the
// calls of a job's other subtasks read nothing; a read that fails is not
// kept, and the next call reads again. Each call returns a State of its
// own. It is safe for concurrent use, as by subtasks restoring on
// goroutines of their own: calls for one operator wait for its one read.
func (r *Restored) OperatorState(ctx context.Context, operator string, index, parallelism int) (*opstate.State, error) {
	old, err := r.oldOperatorState(ctx, operator)
	if err != nil {
		return nil, err
	}
	s, err := opstate.Redistribute(old, parallelism, index)
	if err != nil {
		return nil, fmt.Errorf("checkpoint %d, operator %q: %w", r.Checkpoint.ID, operator, err)
	}
	return s, nil
}

// oldOperatorState returns the operator state of every old subtask of
// operator, read on the first call that succeeds.
func (r *Restored) oldOperatorState(ctx context.Context, operator string) ([]*opstate.State, error) {
	r.opMu.Lock()
	e := r.opStates[operator]
	if e == nil {
		if r.opStates == nil {
			r.opStates = make(map[string]*oldOperatorState)
		}
		e = &oldOperatorState{}
		r.opStates[operator] = e
	}
	r.opMu.Unlock()
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.old == nil {
		old, err := opstate.ReadAll(ctx, r.Storage, r.Checkpoint, operator)
		if err != nil {
			return nil, err
		}
		e.old = old
	}
	return e.old, nil
}
