// Package checkpoint coordinates the checkpoints of a job whose subtasks
// each keep state in a backend.Backend, as Flink's checkpoint coordinator
// does for its tasks: one Coordinator per job hands out checkpoint ids,
// collects every subtask's snapshot, commits them as one checkpoint,
// notifies every subtask and applies retention.
//
// # Basics
//
// Configure the coordinator once with the checkpoint storage, retention
// and the job's operators, each with one Participant per subtask
// (KeyedParticipant turns a backend into one):
//
//	st, _ := snapshot.NewLocal(root)
//	c, err := checkpoint.NewCoordinator(ctx, checkpoint.Options{
//		Storage:   st,
//		Operators: []checkpoint.Operator{{Name: "counts", Subtasks: []checkpoint.Participant{
//			checkpoint.KeyedParticipant(b0), checkpoint.KeyedParticipant(b1),
//		}}},
//	})
//	stats, err := c.Checkpoint(ctx) // as often as wanted
//	err = c.Close()
//
// A subtask with operator state (package opstate: named lists split or
// unioned on a rescale, and positions per key group, such as a source's
// offsets) is an OperatorParticipant: its operator state, filled at each
// barrier, is written beside the keyed state and committed in the same
// _metadata, so the offsets and the state they produced are one
// checkpoint:
//
//	st, _ := opstate.New(maxParallelism, parallelism, index)
//	p := checkpoint.OperatorParticipant(b, st, func(st *opstate.State) error {
//		return st.SetPositionInt64(partition, offset)
//	})
//
// A framework whose subtasks run on their own goroutines uses Trigger,
// Acknowledge and Decline instead of Checkpoint; the Coordinator's doc is
// the contract. Every checkpoint reports Stats: per subtask, the
// synchronous and asynchronous durations, the bytes written and the full
// state size.
//
// To restart a job, LatestCheckpoint picks the newest checkpoint that
// verifies and checks that the job claims all its state; restore each
// backend from it (Restored.BackendOptions, backend.Restore) and each
// subtask's operator state (Restored.OperatorState) at any parallelism,
// and pass it to the new coordinator as Options.Restored, so that ids
// continue above it.
//
// # Caveats
//
// Retention is set here only (Options.RetainedCheckpoints);
// backend.Options.RetainedCheckpoints is for Backend.Checkpoint, which a
// coordinated job does not call. The coordinator is the only committer of
// its storage: two coordinators, or a coordinator and Backend.Checkpoint,
// on one root fence each other only as far as snapshot.Commit's exclusive
// create does. Operator state is held in memory and copied whole at every
// barrier: it is for offsets and splits, not for large state.
package checkpoint
