package backend_test

// The job of TestModel: opening, reopening and restoring its instances,
// and its checkpoints, whose asynchronous parts run while the random
// sequence goes on.

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"

	"github.com/pebblestate/pebblestate/backend"
	"github.com/pebblestate/pebblestate/snapshot"
	"github.com/pebblestate/pebblestate/snapshot/retention"
)

// modelFlight is a checkpoint whose asynchronous parts are running.
type modelFlight struct {
	id    int64
	data  any // the model as of its synchronous parts
	insts []*modelInst
	done  chan error
	hs    []snapshot.Handle
}

// splitRange is instance i's part of r at parallelism p, as Flink splits
// the key groups among subtasks.
func splitRange(r backend.KeyGroupRange, p, i int) backend.KeyGroupRange {
	n := r.End - r.Start
	return backend.KeyGroupRange{Start: r.Start + (i*n+p-1)/p, End: r.Start + ((i+1)*n+p-1)/p}
}

// newInsts describes p instances in new directories: in incremental mode
// most take incremental snapshots and some full ones.
func (e *modelEnv) newInsts(p int) []*modelInst {
	out := make([]*modelInst, p)
	for i := range out {
		out[i] = &modelInst{
			dir:         filepath.Join(e.t.TempDir(), "db"),
			kgs:         splitRange(e.kgs, p, i),
			incremental: e.m.incremental && e.r.IntN(5) != 0,
			// Half the instances keep local copies and restore from them
			// (on S3; Auto is off on Local storage), half download.
			localRecovery: []backend.LocalRecovery{backend.LocalRecoveryAuto, backend.LocalRecoveryOff}[e.r.IntN(2)],
		}
	}
	return out
}

// options are instance in's options.
func (e *modelEnv) options(in *modelInst) backend.Options {
	return backend.Options{
		Dir: in.dir, MaxParallelism: e.cfg.maxP, KeyGroups: in.kgs, Clock: e.clock,
		MemTableSize:   1 << 20, // small memtables: flushes to L0 happen on their own too
		BlockCacheSize: 1 << 20, IncrementalCheckpoints: in.incremental, UploadWorkers: 2,
		TTLSweepInterval: e.sweep,
		LocalRecovery:    in.localRecovery, LocalRecoveryDir: e.localRecoveryDir,
	}
}

// register registers every state on in, in a random order: ids must be
// found by name.
func (e *modelEnv) register(in *modelInst) {
	for _, i := range e.r.Perm(len(e.states)) {
		e.states[i].register(e, in)
	}
	in.curSet = false
}

// openJob opens p fresh instances.
func (e *modelEnv) openJob(p int) []*modelInst {
	e.t.Helper()
	insts := e.newInsts(p)
	for _, in := range insts {
		in.b = MustOpen(e.t, withOptions(e.options(in)))
		e.register(in)
	}
	e.note("opened a job of %d instances %v", p, rangesOf(insts))
	return insts
}

func rangesOf(insts []*modelInst) []string {
	var out []string
	for _, in := range insts {
		kind := "full"
		if in.incremental {
			kind = "incremental"
		}
		out = append(out, fmt.Sprintf("%s %s", in.kgs, kind))
	}
	return out
}

// closeInsts closes instances, checking that a second Close is a no-op
// and that the closed backend and its states refuse use.
func (e *modelEnv) closeInsts(insts []*modelInst) {
	e.t.Helper()
	for _, in := range insts {
		e.ok(in.b.Close())
		e.ok(in.b.Close())
		for _, s := range e.states {
			s.checkClosed(e, in)
		}
		if err := in.b.SetCurrentKey(e.allKeys[0]); !errors.Is(err, backend.ErrClosed) {
			e.fatalf("SetCurrentKey on a closed backend: %v, want ErrClosed", err)
		}
	}
}

// reopen closes every instance and opens its directory again.
func (e *modelEnv) reopen() {
	e.t.Helper()
	e.finishCheckpoint(e.r.IntN(2) == 0)
	e.note("reopen")
	e.closeInsts(e.insts)
	for _, in := range e.insts {
		in.b = MustOpen(e.t, withOptions(e.options(in)))
		e.register(in)
	}
	e.counts["reopens"]++
}

// startCheckpoint takes the synchronous part of the next checkpoint on
// every instance and starts the asynchronous parts.
func (e *modelEnv) startCheckpoint() {
	e.t.Helper()
	e.finishCheckpoint(e.r.IntN(6) != 0)
	e.nextID++
	f := &modelFlight{id: e.nextID, data: e.saveData(), insts: e.insts, done: make(chan error, 1)}
	e.note("checkpoint %d: synchronous part", f.id)
	var snaps []*backend.AsyncSnapshot
	for _, in := range e.insts {
		s, err := in.b.Snapshot(f.id, e.st)
		e.ok(err)
		snaps = append(snaps, s)
	}
	go func() {
		var err error
		f.hs, err = runAll(context.Background(), snaps)
		f.done <- err
	}()
	e.flight = f
}

// finishCheckpoint waits for the checkpoint in flight, if any, and
// completes it with the run's retention, or aborts it. Storage must then
// hold exactly what the retained checkpoints reference.
func (e *modelEnv) finishCheckpoint(complete bool) {
	e.t.Helper()
	f := e.flight
	if f == nil {
		return
	}
	e.flight = nil
	e.ok(<-f.done)
	ctx := context.Background()
	if complete {
		e.note("checkpoint %d: complete", f.id)
		e.ok(retention.Complete(ctx, e.st, &snapshot.Checkpoint{ID: f.id, Handles: f.hs}, e.keep))
		for _, in := range f.insts {
			e.ok(in.b.NotifyCheckpointComplete(f.id))
		}
		e.completed = append(e.completed, f.id)
		e.saved[f.id] = f.data
		for _, id := range e.completed[:max(0, len(e.completed)-e.keep)] {
			delete(e.saved, id)
		}
		e.counts["checkpoints"]++
	} else {
		e.note("checkpoint %d: abort", f.id)
		for _, in := range f.insts {
			e.ok(in.b.NotifyCheckpointAborted(ctx, f.id, e.st))
		}
		e.counts["aborted"]++
	}
	ids, err := snapshot.Completed(ctx, e.st)
	e.ok(err)
	if want := e.retained(); !slices.Equal(ids, want) {
		e.fatalf("completed checkpoints in storage %v; want the last %d completed, %v", ids, e.keep, want)
	}
	sharedExact(e.t, e.st)
}

// retained are the ids of the retained checkpoints.
func (e *modelEnv) retained() []int64 { return e.completed[max(0, len(e.completed)-e.keep):] }

// saveData returns a deep copy of every state's model.
func (e *modelEnv) saveData() any {
	out := make([]any, len(e.states))
	for i, s := range e.states {
		out[i] = s.data()
	}
	return out
}

// loadData installs a copy of models saveData returned.
func (e *modelEnv) loadData(d any) {
	for i, s := range e.states {
		s.setData(d.([]any)[i])
	}
}

// restoreJob restores checkpoint id at parallelism p.
func (e *modelEnv) restoreJob(id int64, p int) []*modelInst {
	e.t.Helper()
	cp, err := snapshot.Load(context.Background(), e.st, id)
	e.ok(err)
	insts := e.newInsts(p)
	for _, in := range insts {
		in.b = MustRestore(e.t, backend.String, e.st, cp.Handles, withOptions(e.options(in)))
		if rs := in.b.Metrics().Restore; rs.LocalBytes+rs.DownloadedBytes != rs.Bytes {
			e.t.Fatalf("seed %d: restore stats %+v: local and downloaded bytes do not add up", e.seed, rs)
		} else if rs.LocalFiles > 0 {
			e.counts["files from local copies"] += rs.LocalFiles
		}
		e.register(in)
	}
	e.note("restored checkpoint %d (parallelism %d) at %v", id, len(cp.Handles), rangesOf(insts))
	e.counts["restores"]++
	return insts
}

// restore restores a retained checkpoint at a random parallelism and
// checks it whole against the model as of the checkpoint. With failover
// the job goes on from the restored instances, the model from the
// checkpoint; otherwise they are closed.
func (e *modelEnv) restore(failover bool) {
	e.t.Helper()
	e.finishCheckpoint(e.r.IntN(6) != 0)
	ids := e.retained()
	if len(ids) == 0 {
		return
	}
	id := ids[e.r.IntN(len(ids))]
	old, oldCI, oldData := e.insts, e.ci, e.saveData()
	e.insts, e.ci = e.restoreJob(id, 1+e.r.IntN(3)), 0
	e.loadData(e.saved[id])
	e.checkAll(1)
	if failover {
		e.note("fail over to the restored instances")
		e.closeInsts(old)
		e.counts["failovers"]++
		return
	}
	e.closeInsts(e.insts)
	e.insts, e.ci = old, oldCI
	e.loadData(oldData)
}

// restoreAll restores every retained checkpoint, each at a random
// parallelism, and checks them whole.
func (e *modelEnv) restoreAll() {
	e.t.Helper()
	old, oldCI, oldData := e.insts, e.ci, e.saveData()
	for _, id := range e.retained() {
		e.insts, e.ci = e.restoreJob(id, 1+e.r.IntN(3)), 0
		e.loadData(e.saved[id])
		e.checkAll(1)
		e.closeInsts(e.insts)
	}
	e.insts, e.ci = old, oldCI
	e.loadData(oldData)
}
