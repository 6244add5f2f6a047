package harness

import (
	"context"
	"testing"

	"github.com/pebblestate/pebblestate/checkpoint"
	"github.com/pebblestate/pebblestate/snapshot"
)

// keepAll is the retention of a harness's checkpoints: every one, so that
// any Snapshot a test took can be restored until it ends.
const keepAll = 1 << 30

// checkpointer takes the checkpoints of a harness or a group: one
// checkpoint.Coordinator over its backends, on its own root.
type checkpointer struct {
	st snapshot.Storage
	c  *checkpoint.Coordinator
}

// newCheckpointer makes the coordinator of operator's backends (subtask i
// is bs[i]) on root dir (a new temporary directory if empty).
func newCheckpointer(tb testing.TB, dir, operator string, bs []checkpoint.KeyedBackend) *checkpointer {
	tb.Helper()
	if dir == "" {
		dir = tb.TempDir()
	}
	st, err := snapshot.NewLocal(dir)
	if err != nil {
		tb.Fatalf("harness: checkpoint storage: %v", err)
	}
	parts := make([]checkpoint.Participant, len(bs))
	for i, b := range bs {
		parts[i] = checkpoint.KeyedParticipant(b)
	}
	c, err := checkpoint.NewCoordinator(context.Background(), checkpoint.Options{
		Storage:             st,
		Operators:           []checkpoint.Operator{{Name: operator, Subtasks: parts}},
		RetainedCheckpoints: keepAll,
	})
	if err != nil {
		tb.Fatalf("harness: %v", err)
	}
	return &checkpointer{st: st, c: c}
}

// checkpoint takes one checkpoint and loads its metadata.
func (k *checkpointer) checkpoint(tb testing.TB) *Snapshot {
	tb.Helper()
	ctx := context.Background()
	stats, err := k.c.Checkpoint(ctx)
	if err != nil {
		tb.Fatalf("harness: checkpoint %d: %v", stats.ID, err)
	}
	cp, err := snapshot.Load(ctx, k.st, stats.ID)
	if err != nil {
		tb.Fatalf("harness: %v", err)
	}
	return &Snapshot{Storage: k.st, Checkpoint: cp}
}

// close closes the coordinator.
func (k *checkpointer) close() error { return k.c.Close() }
