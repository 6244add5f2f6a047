// Package jetstream connects a keyed job to NATS JetStream with exactly-once
// effect on its state and its results: a Source whose read positions are
// kept per key group and committed with the checkpoint, a Sink whose
// results carry deterministic message ids the server de-duplicates, and the
// subject scheme that ties a stream's partitions to key groups.
//
// # Subject scheme
//
// A partitioned stream keeps key group kg's messages under
// "<prefix>.<kg>" (Subjects). The producer computes a message's key group
// with the consuming backend's assigner; the consuming subtask of key-group
// range [s, e) reads subjects s..e-1. Repartitioning between two operators
// of a job is a stream of this kind: the first operator publishes each
// result to the second operator's key-group subject.
//
// # Exactly once
//
// At a checkpoint barrier, between two messages, a subtask flushes its
// Sink (every result so far is stored), takes its backend's snapshot, and
// stores its Source's Positions with the checkpoint as per-key-group state.
// Restored at any parallelism, a subtask gets its key groups' positions
// back and its Source skips every message at or below them, so each message
// changes the state exactly once; the results it produces again carry the
// ids they had and the server drops them (within the stream's duplicate
// window, StreamOptions.DuplicateWindow).
//
// # Caveats
//
// A Source reads with one ordered consumer from the smallest of its
// positions: after a restore it may receive, and skip, messages of key
// groups that were further ahead. A Source and a Sink are each used by one
// goroutine. Connection handling (reconnects, their bounds) is the
// caller's nats.Conn's.
package jetstream
