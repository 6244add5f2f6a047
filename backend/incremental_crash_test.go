package backend_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pebblestate/pebblestate/backend"
	"github.com/pebblestate/pebblestate/snapshot"
)

// The crash test of incremental checkpoints. A child process (this test
// binary running TestIncCrashChild) recovers the checkpoint root, restores
// from the latest checkpoint if there is one, then loops: random writes, an
// incremental checkpoint with retention 1 or 3. The parent kills it with
// SIGKILL at a random moment: during recovery or restore, writes, the
// upload, the commit or retention. After each kill it recovers the root as
// a restarted job would, and checks that the latest completed checkpoint
// restores with exactly the content recorded for it, and that shared/
// holds exactly the files the remaining checkpoints reference.
//
// The child records the expected content of checkpoint id before taking
// it (the state does not change between that and the synchronous part),
// so that a checkpoint that commits just before the kill has its record;
// a record whose checkpoint never completed is ignored, and overwritten if
// the id is taken again.

const (
	incCrashEnvRoot = "PEBBLESTATE_INC_CRASH_ROOT"
	incCrashEnvDB   = "PEBBLESTATE_INC_CRASH_DB"
	incCrashEnvKeep = "PEBBLESTATE_INC_CRASH_KEEP"
	incCrashEnvSeed = "PEBBLESTATE_INC_CRASH_SEED"

	// incCrashChildLife bounds a child that lost its parent; the parent
	// kills it within a second. A bound on checkpoints instead let a fast
	// child finish before the kill.
	incCrashChildLife = 2 * time.Minute
	incCrashKeys      = 1500
)

func incCrashExpectPath(root string, id int64) string {
	return filepath.Join(root, fmt.Sprintf("expect-%d.json", id))
}

// incCrashWriteExpect records the content of checkpoint id, atomically.
func incCrashWriteExpect(root string, id int64, m *incModel) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	tmp := incCrashExpectPath(root, id) + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, incCrashExpectPath(root, id))
}

func incCrashReadExpect(root string, id int64) (*incModel, error) {
	b, err := os.ReadFile(incCrashExpectPath(root, id))
	if err != nil {
		return nil, err
	}
	m := newIncModel()
	return m, json.Unmarshal(b, m)
}

func incCrashStorage(t testing.TB, root string) *snapshot.Local {
	t.Helper()
	st, err := snapshot.NewLocal(filepath.Join(root, "chk"))
	noErr(t, err)
	return st
}

func TestIncCrashChild(t *testing.T) {
	root := os.Getenv(incCrashEnvRoot)
	if root == "" {
		t.Skip("the child of TestIncCrash")
	}
	ctx := context.Background()
	keep, _ := strconv.Atoi(os.Getenv(incCrashEnvKeep))
	seed, _ := strconv.ParseUint(os.Getenv(incCrashEnvSeed), 10, 64)
	r := rand.New(rand.NewPCG(seed, 7))
	st := incCrashStorage(t, root)
	say := func(format string, args ...any) { fmt.Printf("INC-CRASH "+format+"\n", args...) }

	noErr(t, snapshot.Recover(ctx, st))
	say("recovered")
	opts := incOpts(os.Getenv(incCrashEnvDB), incAll(), true)
	opts.RetainedCheckpoints = keep
	j := &incJob{t: t, st: st, model: newIncModel()}
	var b *backend.Backend[int64]
	id := int64(0)
	cp, err := snapshot.Latest(ctx, st)
	switch {
	case errors.Is(err, snapshot.ErrNoCheckpoint):
		b, err = backend.Open(backend.Int64, opts)
		noErr(t, err)
	case err != nil:
		t.Fatal(err)
	default:
		say("restoring %d", cp.ID)
		b, err = backend.Restore(ctx, backend.Int64, opts, st, cp.Handles)
		noErr(t, err)
		id = cp.ID
		j.model, err = incCrashReadExpect(root, id)
		noErr(t, err)
	}
	j.insts = []*incInstance{{b: b, s: incRegister(t, b)}}
	say("restored %d", id)
	for deadline := time.Now().Add(incCrashChildLife); time.Now().Before(deadline); {
		for range 100 + r.IntN(800) {
			k := int64(r.IntN(incCrashKeys))
			switch x := r.IntN(20); {
			case x < 14:
				j.setV(k, incVal(k, r.IntN(1000)))
			case x < 15:
				j.clearV(k)
			case x < 17:
				j.addL(k%64, k)
			case x < 18:
				j.clearL(k % 64)
			case x < 19:
				j.putM(k%64, k, fmt.Sprint(id))
			default:
				j.removeM(k%64, int64(r.IntN(incCrashKeys)))
			}
		}
		id++
		noErr(t, incCrashWriteExpect(root, id, j.model))
		say("checkpointing %d", id)
		if _, err := b.Checkpoint(ctx, st, id); err != nil {
			t.Fatalf("checkpoint %d: %v", id, err)
		}
		say("checkpointed %d", id)
	}
	noErr(t, b.Close())
}

// incCrashPhase names what the child was doing when it was killed, from
// the last line it printed.
func incCrashPhase(out string) string {
	lines := strings.Split(strings.TrimSpace(out), "\n")
	last := ""
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.HasPrefix(lines[i], "INC-CRASH ") {
			last = strings.Fields(lines[i])[1]
			break
		}
	}
	switch last {
	case "":
		return "start-up/recovery"
	case "recovered", "restoring":
		return "restore"
	case "checkpointing":
		return "checkpoint"
	default:
		return "writes"
	}
}

func TestIncCrash(t *testing.T) {
	rounds := 50
	if testing.Short() {
		rounds = 10
	}
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("PEBBLESTATE_INC_CRASH_TEST_SEED"); s != "" {
		seed, _ = strconv.ParseUint(s, 10, 64)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("seed %d (PEBBLESTATE_INC_CRASH_TEST_SEED=%d reproduces the schedule)", seed, seed)
		}
	})
	r := rand.New(rand.NewPCG(seed, 3))
	ctx := context.Background()
	root := t.TempDir()
	st := incCrashStorage(t, root)
	phases := map[string]int{}
	kills, lastID := 0, int64(0)
	start := time.Now()
	for round := range rounds {
		keep := []int{1, 3}[r.IntN(2)]
		db := filepath.Join(root, fmt.Sprintf("db-%d", round))
		cmd := exec.Command(os.Args[0], "-test.run=^TestIncCrashChild$", "-test.count=1", "-test.timeout=5m")
		cmd.Env = append(os.Environ(),
			incCrashEnvRoot+"="+root, incCrashEnvDB+"="+db,
			incCrashEnvKeep+"="+strconv.Itoa(keep), incCrashEnvSeed+"="+strconv.FormatUint(r.Uint64(), 10))
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		noErr(t, cmd.Start())
		// Mostly well into the checkpoint loop; sometimes early, in
		// start-up, recovery or restore.
		delay := time.Duration(100+r.IntN(700)) * time.Millisecond
		if r.IntN(3) == 0 {
			delay = time.Duration(r.IntN(250)) * time.Millisecond
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		select {
		case err := <-exited:
			t.Fatalf("round %d: the child ended by itself before the kill (%v):\n%s", round, err, out.String())
		case <-time.After(delay):
		}
		noErr(t, cmd.Process.Signal(syscall.SIGKILL))
		err := <-exited
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
			t.Fatalf("round %d: the child ended with %v before the kill:\n%s", round, err, out.String())
		}
		kills++
		phases[incCrashPhase(out.String())]++
		os.RemoveAll(db) // the next child restores into a new directory

		// A restarted job: recover the root, then the latest completed
		// checkpoint must restore with its recorded content.
		noErr(t, snapshot.Recover(ctx, st))
		incSharedExact(t, st)
		incCrashNoTemp(t, st.Root())
		ids, err := snapshot.Completed(ctx, st)
		noErr(t, err)
		if len(ids) == 0 {
			continue
		}
		latest := ids[len(ids)-1]
		if latest < lastID {
			t.Fatalf("round %d: the latest checkpoint went back from %d to %d", round, lastID, latest)
		}
		lastID = latest
		check := []int64{latest}
		if len(ids) > 1 && round%5 == 0 {
			check = append(check, ids[r.IntN(len(ids)-1)]) // another retained one
		}
		for _, id := range check {
			want, err := incCrashReadExpect(root, id)
			if err != nil {
				t.Fatalf("round %d: no record of completed checkpoint %d: %v", round, id, err)
			}
			cp, err := snapshot.Load(ctx, st, id)
			noErr(t, err)
			j := restoreIncJob(t, st, cp.Handles, 1, incAlways, want)
			j.verify(want, fmt.Sprintf("round %d: restore of checkpoint %d", round, id))
			j.close()
			j.insts = nil
		}
	}
	t.Logf("%d kills in %v, by phase %v; %d checkpoints completed", kills, time.Since(start).Round(time.Millisecond), phases, lastID)
	if kills < rounds {
		t.Errorf("only %d kills", kills)
	}
	if lastID == 0 {
		t.Errorf("no checkpoint ever completed")
	}
}

func incCrashNoTemp(t testing.TB, root string) {
	t.Helper()
	_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".tmp") {
			t.Errorf("temporary file left after Recover: %s", p)
		}
		return nil
	})
}
