package checkpoint

import (
	"context"
	"fmt"
	"time"

	"github.com/pebblestate/pebblestate/backend"
	"github.com/pebblestate/pebblestate/opstate"
	"github.com/pebblestate/pebblestate/snapshot"
)

// Subtask identifies one parallel instance of an operator: the operator's
// name and the instance's index in [0, parallelism).
type Subtask struct {
	Operator string
	Index    int
}

// String returns "operator[index]".
func (s Subtask) String() string { return fmt.Sprintf("%s[%d]", s.Operator, s.Index) }

// AsyncPart is the asynchronous part of one subtask's keyed snapshot, as
// *backend.AsyncSnapshot is: Run writes it and returns its handle; Release
// gives it up if it will never run. The coordinator calls exactly one of
// them, once, on a goroutine of its own.
type AsyncPart interface {
	Run(ctx context.Context) (snapshot.Handle, error)
	Release()
}

var _ AsyncPart = (*backend.AsyncSnapshot)(nil)

// SubtaskState is what a subtask hands the coordinator at its barrier:
// the synchronous parts of its snapshots, already taken.
type SubtaskState struct {
	// Keyed is the subtask's keyed snapshot, or nil if the subtask has no
	// keyed state (then it contributes no handle).
	Keyed AsyncPart
	// Operator is the subtask's operator state as of the barrier
	// (opstate.State.Snapshot), or nil if it has none. Its parallelism and
	// index must be the subtask's. The coordinator writes it in the
	// asynchronous part and commits it in the same metadata as the keyed
	// handles; an abort deletes it.
	Operator *opstate.Snapshot
	// SyncDuration is how long the synchronous part took, as measured by
	// the caller; it is reported in the checkpoint's Stats. Checkpoint
	// fills it in.
	SyncDuration time.Duration
}

// release gives up every part of s.
func (s SubtaskState) release() {
	if s.Keyed != nil {
		s.Keyed.Release()
	}
}

// Participant is one subtask as the coordinator sees it: it takes its
// snapshot's synchronous part (only Coordinator.Checkpoint calls
// SnapshotState; a framework that acknowledges from its own threads takes
// it itself) and hears how each checkpoint ended. KeyedParticipant turns a
// backend into one, OperatorParticipant a backend and operator state.
//
// The notifications come from the coordinator's goroutines, never two at
// once for one checkpoint; a backend's are safe beside its task's state
// access. An abort is notified to every subtask of the job, whether it
// reported or not, after every asynchronous part of the checkpoint
// returned; it must delete what the subtask wrote for the checkpoint.
type Participant interface {
	// SnapshotState takes the synchronous part of the subtask's snapshot
	// for checkpoint id into st.
	SnapshotState(id int64, st snapshot.Storage) (SubtaskState, error)
	// NotifyCheckpointComplete says checkpoint id completed: its files
	// and those of earlier checkpoints now belong to the checkpoint
	// storage.
	NotifyCheckpointComplete(id int64) error
	// NotifyCheckpointAborted says checkpoint id will never complete.
	NotifyCheckpointAborted(ctx context.Context, id int64, st snapshot.Storage) error
}

// KeyedBackend is the part of a backend.Backend (of any key type) a
// coordinator uses.
type KeyedBackend interface {
	Snapshot(id int64, st snapshot.Storage) (*backend.AsyncSnapshot, error)
	NotifyCheckpointComplete(id int64) error
	NotifyCheckpointAborted(ctx context.Context, id int64, st snapshot.Storage) error
}

var _ KeyedBackend = (*backend.Backend[string])(nil)

// KeyedParticipant returns b as the Participant of a subtask whose only
// state is b's keyed state.
func KeyedParticipant(b KeyedBackend) Participant { return keyed{b} }

type keyed struct{ b KeyedBackend }

func (k keyed) SnapshotState(id int64, st snapshot.Storage) (SubtaskState, error) {
	s, err := k.b.Snapshot(id, st)
	if err != nil {
		return SubtaskState{}, err
	}
	return SubtaskState{Keyed: s}, nil
}

func (k keyed) NotifyCheckpointComplete(id int64) error { return k.b.NotifyCheckpointComplete(id) }

func (k keyed) NotifyCheckpointAborted(ctx context.Context, id int64, st snapshot.Storage) error {
	return k.b.NotifyCheckpointAborted(ctx, id, st)
}

// OperatorParticipant returns the Participant of a subtask with operator
// state st and, unless b is nil, keyed state in b. At each barrier it
// calls fill (if not nil) to bring st up to date, such as with the
// offsets a source reached, then takes st's snapshot and b's. st must be
// of the subtask's index and its operator's parallelism; make it with
// opstate.New, or restore it with Restored.OperatorState.
func OperatorParticipant(b KeyedBackend, st *opstate.State, fill func(*opstate.State) error) Participant {
	return withOperator{b: b, st: st, fill: fill}
}

type withOperator struct {
	b    KeyedBackend
	st   *opstate.State
	fill func(*opstate.State) error
}

func (w withOperator) SnapshotState(id int64, st snapshot.Storage) (SubtaskState, error) {
	if w.st == nil {
		return SubtaskState{}, fmt.Errorf("no operator state")
	}
	if w.fill != nil {
		if err := w.fill(w.st); err != nil {
			return SubtaskState{}, fmt.Errorf("fill operator state: %w", err)
		}
	}
	op, err := w.st.Snapshot()
	if err != nil {
		return SubtaskState{}, err
	}
	if w.b == nil {
		return SubtaskState{Operator: op}, nil
	}
	s, err := w.b.Snapshot(id, st)
	if err != nil {
		return SubtaskState{}, err
	}
	return SubtaskState{Keyed: s, Operator: op}, nil
}

func (w withOperator) NotifyCheckpointComplete(id int64) error {
	if w.b == nil {
		return nil
	}
	return w.b.NotifyCheckpointComplete(id)
}

func (w withOperator) NotifyCheckpointAborted(ctx context.Context, id int64, st snapshot.Storage) error {
	if w.b == nil {
		return nil
	}
	return w.b.NotifyCheckpointAborted(ctx, id, st)
}
