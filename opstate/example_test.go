package opstate_test

import (
	"context"
	"fmt"
	"os"

	"github.com/pebblestate/pebblestate/checkpoint"
	"github.com/pebblestate/pebblestate/opstate"
	"github.com/pebblestate/pebblestate/snapshot"
)

// A source of two subtasks reads 8 partitions, each partition its own key
// group, and keeps each partition's offset as its position. It
// checkpoints through a coordinator, then restarts at parallelism 4: each
// new subtask gets the offsets of the partitions it now owns.
func Example() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "opstate-example")
	defer os.RemoveAll(dir)
	st, _ := snapshot.NewLocal(dir)

	const partitions = 8
	op := checkpoint.Operator{Name: "source"}
	for i := range 2 {
		s, _ := opstate.New(partitions, 2, i)
		offsets := map[int]int64{} // what the subtask has read so far
		for p := s.KeyGroups().Start; p < s.KeyGroups().End; p++ {
			offsets[p] = int64(100 * p)
		}
		op.Subtasks = append(op.Subtasks, checkpoint.OperatorParticipant(nil, s, func(s *opstate.State) error {
			for p, off := range offsets {
				if err := s.SetPositionInt64(p, off); err != nil {
					return err
				}
			}
			return nil
		}))
	}
	c, _ := checkpoint.NewCoordinator(ctx, checkpoint.Options{Storage: st, Operators: []checkpoint.Operator{op}})
	if _, err := c.Checkpoint(ctx); err != nil {
		fmt.Println(err)
	}
	_ = c.Close()

	r, _ := checkpoint.LatestCheckpoint(ctx, st, checkpoint.RestoreOptions{Operators: []string{"source"}})
	for i := range 4 {
		s, err := r.OperatorState(ctx, "source", i, 4)
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Printf("subtask %d:", i)
		for p := range s.Positions() {
			off, _, _ := s.PositionInt64(p)
			fmt.Printf(" partition %d at %d", p, off)
		}
		fmt.Println()
	}
	// Output:
	// subtask 0: partition 0 at 0 partition 1 at 100
	// subtask 1: partition 2 at 200 partition 3 at 300
	// subtask 2: partition 4 at 400 partition 5 at 500
	// subtask 3: partition 6 at 600 partition 7 at 700
}
