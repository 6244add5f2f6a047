package backend_test

// The snapshot conformance suite, part two: the life of an AsyncSnapshot
// (run, cancelled, released, run twice, cut by Close) and of the files it
// wrote (completed, aborted). Every test runs in both modes.

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pebblestate/pebblestate/backend"
	"github.com/pebblestate/pebblestate/snapshot"
	"github.com/pebblestate/pebblestate/snapshot/retention"
)

// nativeCheckpoints returns the native checkpoints an incremental
// snapshot left in the instance directory dir.
func nativeCheckpoints(t testing.TB, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(dir, "checkpoints"))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	noErr(t, err)
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}

func TestSnapshotRunCancelled(t *testing.T) {
	forEachMode(t, func(t *testing.T, m mode) {
		t.Run("before Run", func(t *testing.T) {
			st := newStorage(t)
			dir := filepath.Join(t.TempDir(), "db")
			j := newJob(t, st, 1, m.each(), inDir(dir))
			j.bigState(1000)
			snap := must(j.b().Snapshot(1, st)).in(t)
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			if _, err := snap.Run(ctx); !errors.Is(err, context.Canceled) {
				t.Fatalf("Run with a cancelled context = %v", err)
			}
			m.emptyRoot(t, st.Root(), "after a cancelled Run")
			if n := nativeCheckpoints(t, dir); len(n) > 0 {
				t.Fatalf("a cancelled Run left native checkpoints %v", n)
			}
			// A checkpoint with a cancelled context too.
			if _, err := j.b().Checkpoint(ctx, st, 2); !errors.Is(err, context.Canceled) {
				t.Fatalf("Checkpoint with a cancelled context = %v", err)
			}
			m.emptyRoot(t, st.Root(), "after a cancelled Checkpoint")
		})
		t.Run("while writing", func(t *testing.T) {
			local := newStorage(t)
			st := newSlowStorage(local, 2*time.Millisecond)
			j := newJob(t, st, 1, m.each())
			j.bigState(5000)
			snap := must(j.b().Snapshot(1, st)).in(t)
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() {
				_, err := snap.Run(ctx)
				done <- err
			}()
			<-st.started
			cancel()
			if err := <-done; !errors.Is(err, context.Canceled) {
				t.Fatalf("cancelled Run = %v", err)
			}
			m.emptyRoot(t, local.Root(), "after cancelling Run")
		})
		t.Run("right after start", func(t *testing.T) {
			// No slow storage: cancel at once and accept either outcome,
			// but a cancelled Run must leave nothing.
			for i := range 3 {
				st := newStorage(t)
				j := newJob(t, st, 1, m.each(), func(o *backend.Options) { o.SnapshotCompression = "zstd" })
				j.bigState(10000)
				snap := must(j.b().Snapshot(int64(i), st)).in(t)
				ctx, cancel := context.WithCancel(context.Background())
				done := make(chan error, 1)
				go func() {
					_, err := snap.Run(ctx)
					done <- err
				}()
				time.Sleep(time.Duration(i) * time.Millisecond)
				cancel()
				err := <-done
				if err == nil {
					continue // finished first
				}
				if !errors.Is(err, context.Canceled) {
					t.Fatalf("cancelled Run = %v", err)
				}
				m.emptyRoot(t, st.Root(), "after cancelling Run")
			}
		})
	})
}

// TestSnapshotReleaseWithoutRun: a snapshot given up before Run, by
// Release or by Close, leaves nothing, in storage or in the instance
// directory.
func TestSnapshotReleaseWithoutRun(t *testing.T) {
	forEachMode(t, func(t *testing.T, m mode) {
		ctx := context.Background()
		st := newStorage(t)
		dir := filepath.Join(t.TempDir(), "db")
		j := newJob(t, st, 1, m.each(), inDir(dir))
		j.bigState(100)
		b := j.b()
		snap := must(b.Snapshot(1, st)).in(t)
		if n := nativeCheckpoints(t, dir); m.incremental && len(n) != 1 {
			t.Fatalf("native checkpoints %v after the synchronous part; want checkpoint 1's", n)
		}
		snap.Release()
		snap.Release() // twice is fine
		if n := nativeCheckpoints(t, dir); len(n) > 0 {
			t.Fatalf("released snapshot left native checkpoints %v", n)
		}
		if _, err := snap.Run(ctx); err == nil {
			t.Fatal("Run after Release succeeded")
		}
		emptyRoot(t, st.Root(), "after Release")
		// A snapshot never run nor released is released by Close, which
		// must not complain about a leaked Pebble snapshot.
		must(b.Snapshot(2, st)).in(t)
		if err := b.Close(); err != nil {
			t.Fatalf("Close with an unreleased snapshot: %v", err)
		}
		emptyRoot(t, st.Root(), "after Close")
		if n := nativeCheckpoints(t, dir); len(n) > 0 {
			t.Fatalf("Close left native checkpoints %v", n)
		}
		// Snapshot of a closed backend.
		if _, err := b.Snapshot(3, st); !errors.Is(err, backend.ErrClosed) {
			t.Fatalf("Snapshot after Close = %v", err)
		}
		if _, err := b.Checkpoint(ctx, st, 3); !errors.Is(err, backend.ErrClosed) {
			t.Fatalf("Checkpoint after Close = %v", err)
		}
	})
}

func TestSnapshotRunTwice(t *testing.T) {
	forEachMode(t, func(t *testing.T, m mode) {
		ctx := context.Background()
		st := newStorage(t)
		j := newJob(t, st, 1, m.each())
		j.bigState(100)
		snap := must(j.b().Snapshot(1, st)).in(t)
		h := must(snap.Run(ctx)).in(t)
		if _, err := snap.Run(ctx); err == nil {
			t.Fatal("second Run succeeded")
		}
		snap.Release() // a no-op after Run
		// The files of the first Run are intact.
		cp := commitCP(t, st, 1, h)
		restoreJob(t, st, cp.Handles, 1, m.each(), j.model).verify(j.model, "checkpoint 1")
	})
}

func TestSnapshotInvalidArguments(t *testing.T) {
	forEachMode(t, func(t *testing.T, m mode) {
		b := m.open(t)
		if _, err := b.Snapshot(-1, newStorage(t)); !errors.Is(err, backend.ErrInvalidArgument) {
			t.Fatalf("negative id: %v", err)
		}
		if _, err := b.Snapshot(1, nil); !errors.Is(err, backend.ErrInvalidArgument) {
			t.Fatalf("nil storage: %v", err)
		}
	})
}

// TestSnapshotCloseDuringRun: Close cancels a running snapshot, waits for
// it, and returns; the snapshot leaves nothing behind, and the completed
// checkpoint before it stays whole.
func TestSnapshotCloseDuringRun(t *testing.T) {
	forEachMode(t, func(t *testing.T, m mode) {
		ctx := context.Background()
		local := newStorage(t)
		dir := filepath.Join(t.TempDir(), "db")
		j := newJob(t, local, 1, m.each(), inDir(dir))
		b := j.b()
		for k := range int64(3000) {
			j.setV(k, fxVal(k, 0))
		}
		cp1 := must(b.Checkpoint(ctx, local, 1)).in(t)
		at1 := j.model.clone()
		for k := range int64(3000) {
			j.setV(k, fxVal(k, 1))
		}
		st := newStallingStorage(local)
		snap := must(b.Snapshot(2, st)).in(t)
		runErr := make(chan error, 1)
		go func() {
			_, err := snap.Run(ctx)
			runErr <- err
		}()
		<-st.started
		closed := make(chan error, 1)
		start := time.Now()
		go func() { closed <- b.Close() }()
		select {
		case err := <-closed:
			noErr(t, err)
		case <-time.After(30 * time.Second):
			t.Fatal("Close did not return while a snapshot ran")
		}
		t.Logf("Close took %v", time.Since(start))
		if err := <-runErr; !errors.Is(err, context.Canceled) {
			t.Fatalf("Run cut by Close = %v, want context.Canceled", err)
		}
		sharedExact(t, local)
		if names, err := local.List(ctx, snapshot.Dir(2)+"/"); err != nil || len(names) > 0 {
			t.Errorf("cancelled checkpoint 2 left %v (%v)", names, err)
		}
		if n := nativeCheckpoints(t, dir); len(n) > 0 {
			t.Errorf("native checkpoints left after Close: %v", n)
		}
		noTempFiles(t, local.Root(), "after Close cut a snapshot")
		restoreJob(t, local, cp1.Handles, 1, m.each(), at1).verify(at1, "checkpoint 1")
	})
}

// TestSnapshotCloseRacesRun starts Run on another goroutine and closes the
// backend at once, many times, the Close a little earlier or later each
// round: whichever wins, Close must not close the Pebble snapshot, remove
// the native checkpoint or close the database under a Run that has
// started (a panic, pebble: closed; a Run failing otherwise than
// cancelled or refused; a leaked-iterator error from Close), and a Run
// that did not finish leaves no file in storage. (Close once read whether
// Run had started and released the snapshot in two steps, and a Run that
// started in between used a closed snapshot; release is decided under the
// snapshot's lock now.) PEBBLESTATE_STRESS=1 runs 300 rounds a mode
// instead of 60.
func TestSnapshotCloseRacesRun(t *testing.T) {
	rounds := 60
	if os.Getenv("PEBBLESTATE_STRESS") != "" {
		rounds = 300
	}
	forEachMode(t, func(t *testing.T, m mode) {
		rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
		cancelled, refused := 0, 0
		for i := range rounds {
			st := newStorage(t)
			b := m.open(t)
			s := fxRegister(t, b)
			for k := range int64(50) {
				setKey(t, b, k)
				noErr(t, s.v.Update(fxVal(k, i)))
			}
			snap := must(b.Snapshot(1, st)).in(t)
			done := make(chan error, 1)
			go func() {
				_, err := snap.Run(context.Background())
				done <- err
			}()
			for range rng.IntN(4) {
				runtime.Gosched()
			}
			if err := b.Close(); err != nil {
				t.Fatalf("round %d: Close: %v", i, err)
			}
			err := <-done
			switch {
			case err == nil:
				// Run finished before Close; its files stay until the
				// checkpoint is completed or aborted.
				continue
			case errors.Is(err, context.Canceled):
				cancelled++
			case strings.Contains(err.Error(), "already run or released"):
				refused++
			default:
				t.Fatalf("round %d: Run cut by Close: %v; want it cancelled or refused", i, err)
			}
			m.emptyRoot(t, st.Root(), fmt.Sprintf("round %d, after Close raced Run", i))
		}
		t.Logf("%d rounds: %d Runs cancelled, %d refused, the others finished first", rounds, cancelled, refused)
	})
}

// TestSnapshotNotifyAborted: an aborted checkpoint's files go; a completed
// one's stay, even if an abort notification comes late.
func TestSnapshotNotifyAborted(t *testing.T) {
	forEachMode(t, func(t *testing.T, m mode) {
		ctx := context.Background()
		st := newStorage(t)
		j := newJob(t, st, 1, m.each())
		j.bigState(100)
		b := j.b()
		run := func(id int64) snapshot.Handle {
			t.Helper()
			return must(must(b.Snapshot(id, st)).in(t).Run(ctx)).in(t)
		}
		wantFiles := func(h snapshot.Handle, what string) {
			t.Helper()
			for _, f := range h.Files {
				fileMatches(t, st, f)
			}
			for _, f := range h.Shared {
				if !exists(t, st, f.Name) {
					t.Fatalf("%s: shared file %s is gone", what, f.Name)
				}
			}
		}
		h := run(7)
		wantFiles(h, "after Run")
		noErr(t, b.NotifyCheckpointAborted(ctx, 7, st))
		emptyRoot(t, st.Root(), "after NotifyCheckpointAborted")
		// Unknown ids are fine.
		noErr(t, b.NotifyCheckpointAborted(ctx, 12345, st))

		// After completion, an abort notification no longer deletes anything.
		h = run(8)
		commitCP(t, st, 8, h)
		noErr(t, b.NotifyCheckpointComplete(8))
		noErr(t, b.NotifyCheckpointAborted(ctx, 8, st))
		wantFiles(h, "abort after completion")
		// Completing a later checkpoint forgets earlier pending files too.
		h9 := run(9)
		noErr(t, b.NotifyCheckpointComplete(10))
		noErr(t, b.NotifyCheckpointAborted(ctx, 9, st))
		wantFiles(h9, "abort of 9 after completion of 10")
	})
}

// inFlight sets up two checkpoints, 5 and 6, in flight at once on a
// single instance after a completed checkpoint 1; their asynchronous parts
// run concurrently with each other and with writes.
func inFlight(t *testing.T, m mode, st snapshot.Storage) (j *job, h5, h6 snapshot.Handle, m1, m5, m6 *fxModel) {
	ctx := context.Background()
	j = newJob(t, st, 1, m.each())
	b := j.b()
	for k := range int64(800) {
		j.setV(k, fxVal(k, 0))
		j.putM(k%40, k, "a")
	}
	j.checkpoint(1, 2)
	m1 = j.model.clone()
	write := func(version int) {
		for k := int64(version); k < 800; k += 4 {
			j.setV(k, fxVal(k, version))
			j.addL(k%30, k)
		}
		noErr(t, b.Flush())
	}
	write(5)
	s5 := must(b.Snapshot(5, st)).in(t)
	m5 = j.model.clone()
	var wg sync.WaitGroup
	var err5, err6 error
	wg.Go(func() { h5, err5 = s5.Run(ctx) })
	write(6)
	s6 := must(b.Snapshot(6, st)).in(t)
	m6 = j.model.clone()
	wg.Go(func() { h6, err6 = s6.Run(ctx) })
	write(7)
	wg.Wait()
	noErr(t, errors.Join(err5, err6))
	return j, h5, h6, m1, m5, m6
}

// TestSnapshotNotificationsOutOfOrder completes, aborts and notifies two
// checkpoints in flight in every order: the completed checkpoints restore,
// storage holds exactly what they reference, and (incremental) the next
// checkpoint reuses only the uploads of the last completed one.
func TestSnapshotNotificationsOutOfOrder(t *testing.T) {
	ctx := context.Background()
	complete := func(t *testing.T, st snapshot.Storage, id int64, h snapshot.Handle) error {
		return retention.Complete(ctx, st, &snapshot.Checkpoint{ID: id, Handles: []snapshot.Handle{h}}, 2)
	}
	scenarios := []struct {
		name string
		// run completes, aborts and notifies; it returns the id of the
		// checkpoint checkpoint 7 must build on.
		run func(t *testing.T, b *backend.Backend[int64], st snapshot.Storage, h5, h6 snapshot.Handle) int64
	}{
		{"complete 6 then 5", func(t *testing.T, b *backend.Backend[int64], st snapshot.Storage, h5, h6 snapshot.Handle) int64 {
			noErr(t, complete(t, st, 6, h6))
			noErr(t, b.NotifyCheckpointComplete(6))
			if err := complete(t, st, 5, h5); !errors.Is(err, snapshot.ErrSubsumed) {
				t.Fatalf("completing 5 after 6: %v, want ErrSubsumed", err)
			}
			noErr(t, b.NotifyCheckpointAborted(ctx, 5, st))
			return 6
		}},
		{"complete 5 and 6, notified 6 then 5", func(t *testing.T, b *backend.Backend[int64], st snapshot.Storage, h5, h6 snapshot.Handle) int64 {
			noErr(t, complete(t, st, 5, h5))
			noErr(t, complete(t, st, 6, h6))
			noErr(t, b.NotifyCheckpointComplete(6))
			noErr(t, b.NotifyCheckpointComplete(5)) // late: must not go back to 5
			return 6
		}},
		{"abort 6, complete 5", func(t *testing.T, b *backend.Backend[int64], st snapshot.Storage, h5, h6 snapshot.Handle) int64 {
			noErr(t, b.NotifyCheckpointAborted(ctx, 6, st))
			for _, f := range h6.Files {
				if exists(t, st, f.Name) {
					t.Errorf("%s of aborted checkpoint 6 survived", f.Name)
				}
			}
			noErr(t, complete(t, st, 5, h5))
			noErr(t, b.NotifyCheckpointComplete(5))
			return 5
		}},
		{"abort 5, complete 6", func(t *testing.T, b *backend.Backend[int64], st snapshot.Storage, h5, h6 snapshot.Handle) int64 {
			noErr(t, b.NotifyCheckpointAborted(ctx, 5, st))
			noErr(t, complete(t, st, 6, h6))
			noErr(t, b.NotifyCheckpointComplete(6))
			return 6
		}},
		{"complete 6, notified 6, abort of 5 and unknown ids", func(t *testing.T, b *backend.Backend[int64], st snapshot.Storage, h5, h6 snapshot.Handle) int64 {
			noErr(t, b.NotifyCheckpointComplete(99)) // never taken: ignored
			noErr(t, complete(t, st, 6, h6))
			noErr(t, b.NotifyCheckpointComplete(6))
			noErr(t, b.NotifyCheckpointAborted(ctx, 5, st))
			noErr(t, b.NotifyCheckpointAborted(ctx, 42, st))
			noErr(t, b.NotifyCheckpointComplete(5))
			return 6
		}},
		{"both aborted", func(t *testing.T, b *backend.Backend[int64], st snapshot.Storage, h5, h6 snapshot.Handle) int64 {
			noErr(t, b.NotifyCheckpointAborted(ctx, 6, st))
			noErr(t, b.NotifyCheckpointAborted(ctx, 5, st))
			return 1
		}},
	}
	forEachMode(t, func(t *testing.T, m mode) {
		for _, sc := range scenarios {
			t.Run(sc.name, func(t *testing.T) {
				st := newStorage(t)
				j, h5, h6, m1, m5, m6 := inFlight(t, m, st)
				models := map[int64]*fxModel{1: m1, 5: m5, 6: m6}
				for _, f := range h6.Shared {
					if strings.Contains(f.Name, "-c5-") {
						t.Errorf("checkpoint 6 reuses %s of checkpoint 5, not completed when 6 was taken", f.Name)
					}
				}
				base := sc.run(t, j.b(), st, h5, h6)
				sharedExact(t, st)
				baseCP := must(snapshot.Load(ctx, st, base)).in(t)
				// Checkpoint 7 reuses only the base's uploads.
				models[7] = j.model.clone()
				h7 := j.checkpoint(7, 2).Handles[0]
				reusable := sharedNames(baseCP.Handles...)
				for _, f := range h7.Shared {
					if !reusable[f.Name] && !strings.Contains(f.Name, "-c7-") {
						t.Errorf("checkpoint 7 references %s, not an upload of checkpoint %d", f.Name, base)
					}
				}
				sharedExact(t, st)
				for _, id := range must(snapshot.Completed(ctx, st)).in(t) {
					cp := must(snapshot.Load(ctx, st, id)).in(t)
					r := restoreJob(t, st, cp.Handles, 1, m.each(), models[id])
					r.verify(models[id], fmt.Sprintf("restore of checkpoint %d", id))
					r.close()
				}
			})
		}
	})
}
