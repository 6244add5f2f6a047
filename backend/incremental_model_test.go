package backend_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/pebblestate/pebblestate/snapshot"
)

// The model test with incremental checkpoints: seeded random operations on
// Value, List and Map states of a job at parallelism 1 to 3, an
// incremental checkpoint after each batch, completed with retention 1 or
// 3. After every checkpoint, a random retained checkpoint is restored at a
// random parallelism and compared with the model as of that checkpoint;
// sometimes the job fails over to the restored instances and goes on from
// there (the model going back to that checkpoint). At the end every
// retained checkpoint is restored at parallelism 1, 2 and 3. After each
// checkpoint shared/ must hold exactly what the retained checkpoints
// reference.
//
// PEBBLESTATE_INC_MODEL_SEED=<n> replays a seed.

func TestIncModel(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("PEBBLESTATE_INC_MODEL_SEED"); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatal(err)
		}
	}
	for _, keep := range []int{1, 3} {
		t.Run(fmt.Sprintf("keep=%d", keep), func(t *testing.T) {
			t.Cleanup(func() {
				if t.Failed() {
					t.Logf("seed %d: PEBBLESTATE_INC_MODEL_SEED=%d reproduces it", seed, seed)
				}
			})
			fxModelRun(t, rand.New(rand.NewPCG(seed, uint64(keep))), keep)
		})
	}
}

// incMostlyIncremental makes most instances incremental, some full.
func incMostlyIncremental(r *rand.Rand, p int) func(int) bool {
	kinds := make([]bool, p)
	for i := range kinds {
		kinds[i] = r.IntN(5) != 0
	}
	return func(i int) bool { return kinds[i] }
}

// fxModelOps applies n random operations.
func fxModelOps(j *job, r *rand.Rand, n int, version int) {
	const keys = 400
	for range n {
		k := int64(r.IntN(keys))
		switch x := r.IntN(100); {
		case x < 40:
			j.setV(k, fxVal(k, version))
		case x < 45:
			j.clearV(k)
		case x < 60:
			j.addL(k, int64(version*1000+r.IntN(1000)))
		case x < 63:
			j.clearL(k)
		case x < 88:
			j.putM(k, int64(r.IntN(20)), fxVal(k, version))
		case x < 96:
			j.removeM(k, int64(r.IntN(20)))
		default:
			j.clearM(k)
		}
	}
}

func fxModelRun(t *testing.T, r *rand.Rand, keep int) {
	ctx := context.Background()
	st := newStorage(t)
	checkpoints := 8
	if testing.Short() {
		checkpoints = 5
	}
	p := 1 + r.IntN(3)
	j := newJob(t, st, p, incMostlyIncremental(r, p))
	models := map[int64]*fxModel{}
	restores, failovers := 0, 0
	for id := int64(1); id <= int64(checkpoints); id++ {
		fxModelOps(j, r, 150+r.IntN(350), int(id))
		if r.IntN(4) == 0 {
			noErr(t, j.insts[r.IntN(len(j.insts))].b.Flush()) // one more SST
		}
		if r.IntN(8) == 0 {
			noErr(t, j.insts[r.IntN(len(j.insts))].b.Compact(ctx)) // rewrite every SST
		}
		j.checkpoint(id, keep)
		models[id] = j.model.clone()
		sharedExact(t, st)
		ids, err := snapshot.Completed(ctx, st)
		noErr(t, err)
		if len(ids) > keep || ids[len(ids)-1] != id {
			t.Fatalf("after checkpoint %d with retention %d: completed %v", id, keep, ids)
		}
		// Restore a retained checkpoint at some parallelism.
		from := ids[r.IntN(len(ids))]
		cp, err := snapshot.Load(ctx, st, from)
		noErr(t, err)
		np := 1 + r.IntN(3)
		rj := restoreJob(t, st, cp.Handles, np, incMostlyIncremental(r, np), models[from])
		rj.verify(models[from], fmt.Sprintf("restore of checkpoint %d (parallelism %d) at parallelism %d", from, len(cp.Handles), np))
		restores++
		if r.IntN(3) == 0 {
			// Fail over: go on from the restored instances.
			j.close()
			j = rj
			failovers++
		} else {
			rj.close()
		}
	}
	// Every retained checkpoint, at every parallelism.
	ids, err := snapshot.Completed(ctx, st)
	noErr(t, err)
	for _, id := range ids {
		cp, err := snapshot.Load(ctx, st, id)
		noErr(t, err)
		for _, np := range []int{1, 2, 3} {
			rj := restoreJob(t, st, cp.Handles, np, incrementalMode.each(), models[id])
			rj.verify(models[id], fmt.Sprintf("final restore of checkpoint %d at parallelism %d", id, np))
			rj.close()
			restores++
		}
	}
	if !slices.Equal(ids, func() []int64 {
		var want []int64
		for id := max(1, int64(checkpoints-keep+1)); id <= int64(checkpoints); id++ {
			want = append(want, id)
		}
		return want
	}()) {
		t.Errorf("retained %v", ids)
	}
	t.Logf("%d checkpoints, %d restores, %d failovers; %d entries at the end", checkpoints, restores, failovers, j.model.size())
}
