package backend_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pebblestate/pebblestate/backend"
	"github.com/pebblestate/pebblestate/snapshot"
)

// The crash test of restores: a child process (this test binary,
// re-executed to run TestRestoreCrashChild) restores checkpoint 1 of a
// checkpoint root into a directory, printing "start" just before it calls
// Restore and "done" once it returned; the parent kills it with SIGKILL at
// a random moment of the restore. Afterwards the directory must be
// missing, or refused by Open with ErrUnfinishedRestore, or open and
// hold exactly the restored state, every key compared; and a directory a
// killed restore left must take a new Restore (checked every other round).
//
// It runs in both snapshot modes, each with a restore at the handle's own
// key groups and a rescaling one (two handles into one instance). The
// delay of each kill is drawn from the duration of an uninterrupted
// restore of the same kind, measured first.

const (
	rsCrashRootEnv  = "PEBBLESTATE_RESTORE_CRASH_ROOT"
	rsCrashDirEnv   = "PEBBLESTATE_RESTORE_CRASH_DIR"
	rsCrashRangeEnv = "PEBBLESTATE_RESTORE_CRASH_RANGE" // "start-end"
	rsCrashModeEnv  = "PEBBLESTATE_RESTORE_CRASH_MODE"  // "incremental" or "full"

	rsCrashRounds = 8 // kills per mode and kind: 32 in all
)

// rsCrashOptions are the options of the restored instance.
func rsCrashOptions(dir string, r backend.KeyGroupRange, incremental bool) backend.Options {
	o := backend.Options{Dir: dir}
	fxOptions(r, incremental)(&o)
	return o
}

// TestRestoreCrashChild is the child process of TestRestoreCrash.
func TestRestoreCrashChild(t *testing.T) {
	root := os.Getenv(rsCrashRootEnv)
	if root == "" {
		t.Skip("the child of TestRestoreCrash")
	}
	var r backend.KeyGroupRange
	if _, err := fmt.Sscanf(os.Getenv(rsCrashRangeEnv), "%d-%d", &r.Start, &r.End); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	st := must(snapshot.NewLocal(root)).in(t)
	cp := must(snapshot.Load(ctx, st, 1)).in(t)
	opts := rsCrashOptions(os.Getenv(rsCrashDirEnv), r, os.Getenv(rsCrashModeEnv) == "incremental")
	fmt.Println("start")
	b, err := backend.Restore(ctx, backend.Int64, opts, st, cp.Handles)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Println("done")
	noErr(t, b.Close())
}

// TestRestoreCrash is the crash test described above: 32 kills in all,
// 16 of them of rescaling restores.
// Guards issue 12 case 5 and the must-exist test "SIGKILL at random
// moments of full and rescaling restores, at least 30 times".
func TestRestoreCrash(t *testing.T) {
	if os.Getenv(rsCrashRootEnv) != "" {
		t.Skip("in the child")
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	refused := 0
	forEachMode(t, func(t *testing.T, m mode) {
		rng := rand.New(rand.NewPCG(seed, 1))
		root := filepath.Join(t.TempDir(), "checkpoints")
		st := must(snapshot.NewLocal(root)).in(t)
		j := newJob(t, st, 2, m.each())
		j.apply(rng, 4000, 3000, "r")
		j.checkpoint(1, 1)
		j.close()
		kinds := []struct {
			name string
			r    backend.KeyGroupRange
		}{
			{"same range", fxRanges(t, 2)[0]},
			{"rescale 2 to 1", backend.KeyGroupRange{Start: 0, End: fxMaxPar}},
		}
		for _, k := range kinds {
			t.Run(k.name, func(t *testing.T) {
				refused += rsCrashKills(t, m, root, k.r, rsCrashOwned(t, j.model, k.r), rng)
			})
		}
	})
	if refused == 0 && !t.Failed() {
		t.Error("no kill landed inside a restore")
	}
}

// rsCrashOwned returns the part of model in key groups r.
func rsCrashOwned(t testing.TB, model *fxModel, r backend.KeyGroupRange) *fxModel {
	in := func(k int64) bool {
		return r.Contains(must(backend.KeyGroupOf(backend.Int64, k, fxMaxPar)).in(t))
	}
	out := newFxModel()
	for k, v := range model.v {
		if in(k) {
			out.v[k] = v
		}
	}
	for k, l := range model.l {
		if in(k) {
			out.l[k] = l
		}
	}
	for k, mm := range model.m {
		if in(k) {
			out.m[k] = mm
		}
	}
	for k, v := range model.w {
		if in(k[0]) {
			out.w[k] = v
		}
	}
	return out
}

// rsCrashKills measures an uninterrupted restore of r (the faster of
// two, or one under -race), then kills rsCrashRounds restores at random
// moments and checks what each left. It returns how many of them Open
// refused.
func rsCrashKills(t *testing.T, m mode, root string, r backend.KeyGroupRange, want *fxModel, rng *rand.Rand) int {
	work := t.TempDir()
	ctx := context.Background()
	st := must(snapshot.NewLocal(root)).in(t)
	took := time.Duration(-1)
	measures := 2
	if raceEnabled() {
		measures = 1 // the parent opens and reads each one under it
	}
	for i := range measures {
		dir := filepath.Join(work, fmt.Sprint("measure-", i))
		d, done := rsCrashRun(t, m, root, dir, r, -1)
		if !done {
			t.Fatal("the uninterrupted restore did not finish")
		}
		if took < 0 || d < took {
			took = d
		}
		b := must(backend.Open(backend.Int64, rsCrashOptions(dir, r, m.incremental))).in(t)
		fxEqual(t, "uninterrupted restore", fxRead(t, b), want)
		noErr(t, b.Close())
	}

	outcomes := map[string]int{}
	for round := range rsCrashRounds {
		dir := filepath.Join(work, fmt.Sprint("round-", round))
		delay := time.Duration(rng.Int64N(int64(took)*9/8 + 1))
		_, done := rsCrashRun(t, m, root, dir, r, delay)
		what := fmt.Sprintf("round %d (killed %v after start of a %v restore, done %v)", round, delay, took, done)
		opts := rsCrashOptions(dir, r, m.incremental)
		entries, err := os.ReadDir(dir)
		if err == nil && len(entries) == 0 {
			t.Fatalf("%s: the killed restore left an empty directory, which Open takes for a new backend", what)
		}
		if errors.Is(err, os.ErrNotExist) {
			if done {
				t.Fatalf("%s: the restore reported done, but left no directory", what)
			}
			outcomes["nothing"]++
			continue
		}
		b, err := backend.Open(backend.Int64, opts)
		if err != nil {
			if done {
				t.Fatalf("%s: the restore reported done, but Open fails: %v", what, err)
			}
			if !errors.Is(err, backend.ErrUnfinishedRestore) || strings.Count(err.Error(), dir) != 1 {
				t.Fatalf("%s: Open: %v; want ErrUnfinishedRestore naming %s once", what, err, dir)
			}
			outcomes["refused"]++
			if round%2 == 1 {
				continue
			}
			// A new restore into the directory clears what the killed one
			// left and succeeds.
			b = must(backend.Restore(ctx, backend.Int64, opts, st, must(snapshot.Load(ctx, st, 1)).in(t).Handles)).in(t)
			fxEqual(t, what+", restored again", fxRead(t, b), want)
			noErr(t, b.Close())
			continue
		}
		outcomes["complete"]++
		fxEqual(t, what+", opened", fxRead(t, b), want)
		noErr(t, b.Close())
	}
	t.Logf("uninterrupted restore %v; %d kills: %v", took, rsCrashRounds, outcomes)
	return outcomes["refused"]
}

// rsCrashRun runs a child restoring r into dir and kills it delay after it
// printed "start" (never, for a negative delay). It returns how long the
// restore took if the child finished it, and whether it printed "done".
func rsCrashRun(t *testing.T, m mode, root, dir string, r backend.KeyGroupRange, delay time.Duration) (took time.Duration, done bool) {
	t.Helper()
	cmd := exec.Command(childBinary(t), "-test.run=^TestRestoreCrashChild$", "-test.count=1", "-test.timeout=2m")
	modeName := "full"
	if m.incremental {
		modeName = "incremental"
	}
	cmd.Env = append(os.Environ(),
		rsCrashRootEnv+"="+root,
		rsCrashDirEnv+"="+dir,
		rsCrashRangeEnv+"="+strconv.Itoa(r.Start)+"-"+strconv.Itoa(r.End),
		rsCrashModeEnv+"="+modeName,
	)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out := must(cmd.StdoutPipe()).in(t)
	noErr(t, cmd.Start())
	lines := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	var started time.Time
	var kill <-chan time.Time
	timeout := time.After(time.Minute)
loop:
	for {
		select {
		case line, ok := <-lines:
			if !ok {
				break loop
			}
			switch line {
			case "start":
				started = time.Now()
				if delay >= 0 {
					kill = time.After(delay)
				}
			case "done":
				took, done = time.Since(started), true
			}
		case <-kill:
			_ = cmd.Process.Kill() // SIGKILL
			kill = nil
		case <-timeout:
			_ = cmd.Process.Kill()
			t.Fatalf("the child did not end within a minute\n%s", stderr.String())
		}
	}
	err := cmd.Wait()
	if delay < 0 && err != nil {
		t.Fatalf("the child failed: %v\n%s", err, stderr.String())
	}
	if err == nil && !done {
		t.Fatalf("the child exited without restoring\n%s", stderr.String())
	}
	return took, done
}
