// Package opstate is operator state: the non-keyed state of one operator
// subtask, committed in the same checkpoint as its keyed state and
// redistributed when a job restores at another parallelism, as Flink's
// operator state backend does. Its natural user is a source: the splits
// it reads and the offsets it reached.
//
// # Basics
//
// A State holds named lists of opaque []byte entries and positions kept
// per key group:
//
//	st, err := opstate.New(maxParallelism, parallelism, index)
//	splits, err := st.List("splits", opstate.Split) // or opstate.Union
//	splits.Add([]byte("topic-a/3"))
//	err = st.SetPositionInt64(kg, offset) // kg must be in st.KeyGroups()
//
// Each list is declared with a Mode, which says what a restore at another
// parallelism does with it:
//
//   - Split: the entries of all old subtasks are concatenated in subtask
//     order and cut into contiguous near-equal chunks, one per new subtask
//     (at the same parallelism each subtask gets its own back): for work
//     to share out, such as a source's splits.
//   - Union: every new subtask gets all the entries of all old subtasks:
//     for what every subtask must see, such as a global configuration.
//
// Positions go, like keyed state, to whichever new subtask owns their key
// group (backend.KeyGroupRangeForSubtask): the home of a partitioned
// source's offsets when its partitions are its key groups. A subtask may
// only write positions of the key groups it owns.
//
// At a checkpoint barrier State.Snapshot encodes the state (the
// synchronous part); checkpoint.SubtaskState carries it to the
// coordinator, which writes it (Snapshot.Write, one file per subtask in
// the checkpoint's directory) and references it from the checkpoint's
// _metadata. checkpoint.OperatorParticipant does all of it for a subtask.
// After a failure, checkpoint.Restored.OperatorState (or Restore here)
// returns any subtask's redistributed state at any parallelism; it reads
// an operator's files once for all its subtasks (ReadAll, then
// Redistribute per subtask).
//
// The file format is in FORMAT.md beside this file.
//
// # Caveats
//
// A State is not safe for concurrent use. It lives in memory and is
// copied whole at every checkpoint: it is meant for kilobytes to a few
// megabytes (offsets, splits, small tables), not for what keyed state is
// for. The max parallelism of positions is fixed when the operator first
// checkpoints; a restore keeps it.
package opstate
