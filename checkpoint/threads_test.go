package checkpoint_test

import (
	"context"
	"sync"
	"testing"

	"github.com/pebblestate/pebblestate/checkpoint"
	"github.com/pebblestate/pebblestate/snapshot"
)

// TestFrameworkThreads drives the coordinator as a framework with its own
// threads does: each subtask runs on its own goroutine, writes its keys,
// and at each barrier takes its backend's synchronous part and
// acknowledges it, then goes on writing while the asynchronous part runs.
// Each checkpoint restores to exactly the values written before its
// barrier.
func TestFrameworkThreads(t *testing.T) {
	forEachMode(t, func(t *testing.T, incremental bool) {
		ctx := context.Background()
		st := newStorage(t)
		j := openJob(t, "", twoOps, incremental)
		c, err := checkpoint.NewCoordinator(ctx, checkpoint.Options{Storage: st, Operators: j.operators(), RetainedCheckpoints: 3})
		noErr(t, err)
		defer c.Close()

		const rounds = 3
		subtasks := c.Subtasks()
		barriers := make([]chan int64, len(subtasks))
		errs := make(chan error, len(subtasks))
		var wg sync.WaitGroup
		for n, s := range subtasks {
			barriers[n] = make(chan int64)
			o := 0
			if s.Operator != twoOps[0].name {
				o = 1
			}
			b, v := j.backends[o][s.Index], j.values[o][s.Index]
			wg.Go(func() {
				// The subtask writes the keys it owns: round r's value
				// before barrier r.
				for r := int64(1); r <= rounds; r++ {
					for k := range int64(testKeys) {
						if owner, _ := j.owner(t, o, k); owner != b {
							continue
						}
						if err := b.SetCurrentKey(k); err != nil {
							errs <- err
							return
						}
						if err := v.Update(r*1000 + int64(o)); err != nil {
							errs <- err
							return
						}
					}
					id := <-barriers[n]
					snap, err := b.Snapshot(id, st)
					if err != nil {
						errs <- err
						return
					}
					if err := c.Acknowledge(id, s, checkpoint.SubtaskState{Keyed: snap}); err != nil {
						errs <- err
						return
					}
				}
			})
		}
		var ids []int64
		for range rounds {
			p, err := c.Trigger(ctx)
			noErr(t, err)
			for _, ch := range barriers {
				ch <- p.ID()
			}
			stats, err := p.Wait(ctx)
			noErr(t, err)
			if len(stats.Subtasks) != len(subtasks) {
				t.Fatalf("checkpoint %d: %d subtasks reported", p.ID(), len(stats.Subtasks))
			}
			ids = append(ids, p.ID())
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		checkNoDebris(t, st)
		for r, id := range ids {
			cp, err := snapshot.Load(ctx, st, id)
			noErr(t, err)
			restoreJob(t, &checkpoint.Restored{Storage: st, Checkpoint: cp}, twoOps, incremental).check(t, int64(r+1))
		}
	})
}
