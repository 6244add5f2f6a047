package backend_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pebblestate/pebblestate/backend"
	"github.com/pebblestate/pebblestate/snapshot"
)

// The crash test: a child process (this test binary, re-executed to run
// TestSnapshotCrashChild) restores the latest checkpoint of a checkpoint
// root, or starts empty, and then loops: apply the operations of the next
// checkpoint id, take checkpoint id, print "cp <id> <digest of the state>".
// The operations of each id are a deterministic function of the seed and
// the id, so the state at checkpoint id is the same whatever crashed when,
// and the parent computes it on its own.
//
// The parent kills the child with SIGKILL at random moments, at least 50
// times (10 with -short), and after each kill checks that the latest
// completed checkpoint restores to exactly the state of its id, that it is
// no older than the last checkpoint the child reported, and that Recover
// leaves no partial checkpoint directory and no temporary file.

const (
	snCrashRootEnv = "PEBBLESTATE_CRASH_ROOT"
	snCrashDirEnv  = "PEBBLESTATE_CRASH_DIR"
	snCrashSeedEnv = "PEBBLESTATE_CRASH_SEED"

	snCrashKeys = 1000 // key space
	snCrashOps  = 150  // operations per checkpoint
)

// snCrashOp is one operation of the crash workload.
type snCrashOp struct {
	kind   int
	k, arg int64
	val    string
}

// snCrashOpsFor returns the operations applied before checkpoint id.
func snCrashOpsFor(seed uint64, id int64) []snCrashOp {
	rng := rand.New(rand.NewPCG(seed, uint64(id)))
	ops := make([]snCrashOp, snCrashOps)
	for i := range ops {
		op := snCrashOp{kind: rng.IntN(9), k: rng.Int64N(snCrashKeys), arg: rng.Int64N(8)}
		op.val = fmt.Sprintf("c%d.%d-%x", id, i, rng.Uint32())
		ops[i] = op
	}
	return ops
}

// apply applies op to the model.
func (m *snModel) apply(op snCrashOp) {
	switch op.kind {
	case 0, 1:
		m.v[op.k] = op.val
	case 2:
		delete(m.v, op.k)
	case 3, 4:
		m.l[op.k] = append(m.l[op.k], op.arg)
	case 5:
		delete(m.l, op.k)
	case 6:
		if m.m[op.k] == nil {
			m.m[op.k] = map[int64]string{}
		}
		m.m[op.k][op.arg] = op.val
	case 7:
		delete(m.m[op.k], op.arg)
		if len(m.m[op.k]) == 0 {
			delete(m.m, op.k)
		}
	case 8:
		m.w[[2]int64{op.k, op.arg % snNamespaces}] = op.val
	}
}

// snCrashApply applies op to the states.
func snCrashApply(b *backend.Backend[int64], s snStates, op snCrashOp) error {
	if err := b.SetCurrentKey(op.k); err != nil {
		return err
	}
	switch op.kind {
	case 0, 1:
		return s.v.Update(op.val)
	case 2:
		return s.v.Clear()
	case 3, 4:
		return s.l.Add(op.arg)
	case 5:
		return s.l.Clear()
	case 6:
		return s.m.Put(op.arg, op.val)
	case 7:
		return s.m.Remove(op.arg)
	case 8:
		if err := s.w.SetCurrentNamespace(op.arg % snNamespaces); err != nil {
			return err
		}
		return s.w.Update(op.val)
	}
	return nil
}

// snDigest hashes a canonical dump of a model.
func snDigest(m *snModel) string {
	var lines []string
	for k, v := range m.v {
		lines = append(lines, fmt.Sprintf("v %d %s", k, v))
	}
	for k, l := range m.l {
		lines = append(lines, fmt.Sprintf("l %d %v", k, l))
	}
	for k, mm := range m.m {
		for uk, uv := range mm {
			lines = append(lines, fmt.Sprintf("m %d %d %s", k, uk, uv))
		}
	}
	for k, v := range m.w {
		lines = append(lines, fmt.Sprintf("w %d %d %s", k[0], k[1], v))
	}
	slices.Sort(lines)
	h := sha256.New()
	for _, l := range lines {
		h.Write([]byte(l))
		h.Write([]byte{'\n'})
	}
	return hex.EncodeToString(h.Sum(nil)[:12])
}

// TestSnapshotCrashChild is the child process of TestSnapshotCrash.
func TestSnapshotCrashChild(t *testing.T) {
	root := os.Getenv(snCrashRootEnv)
	if root == "" {
		t.Skip("the child of TestSnapshotCrash")
	}
	seed, err := strconv.ParseUint(os.Getenv(snCrashSeedEnv), 10, 64)
	noErr(t, err)
	ctx := context.Background()
	st, err := snapshot.NewLocal(root)
	noErr(t, err)
	// Restarting cleans up what the last run left half-written.
	partial, tmps := snCrashDebris(t, root)
	noErr(t, snapshot.Recover(ctx, st))
	if p, n := snCrashDebris(t, root); len(p) > 0 || n > 0 {
		t.Fatalf("after Recover at restart, partial checkpoints %v and %d temporary files remain", p, n)
	}
	fmt.Printf("recovered %d %d\n", len(partial), tmps)
	opts := backend.Options{Dir: os.Getenv(snCrashDirEnv), RetainedCheckpoints: 2, SnapshotCompression: "snappy"}
	b, cp, err := backend.RestoreLatest(ctx, backend.Int64, opts, st)
	next := int64(1)
	switch {
	case errors.Is(err, snapshot.ErrNoCheckpoint):
		b, err = backend.Open(backend.Int64, opts)
		noErr(t, err)
	case err != nil:
		t.Fatal(err)
	default:
		next = cp.ID + 1
	}
	s := snRegister(t, b)
	model := snRead(t, b)
	fmt.Printf("ready %d %s\n", next-1, snDigest(model))
	deadline := time.Now().Add(2 * time.Minute)
	for id := next; time.Now().Before(deadline); id++ {
		for _, op := range snCrashOpsFor(seed, id) {
			if err := snCrashApply(b, s, op); err != nil {
				t.Fatal(err)
			}
			model.apply(op)
		}
		if _, err := b.Checkpoint(ctx, st, id); err != nil {
			t.Fatal(err)
		}
		fmt.Printf("cp %d %s\n", id, snDigest(model))
	}
	b.Close()
}

// snCrashRound runs one child until killed and returns what it printed.
type snCrashRound struct {
	ready     int64 // the checkpoint it restored, 0 for none
	readyDig  string
	cps       map[int64]string
	lastCP    int64
	exited    error // set if the child exited by itself
	recovered int   // partial checkpoints the child's Recover removed
	stderr    string
}

func TestSnapshotCrash(t *testing.T) {
	if os.Getenv(snCrashRootEnv) != "" {
		t.Skip("in the child")
	}
	rounds := 50
	if testing.Short() {
		rounds = 10
	}
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv(snCrashSeedEnv); s != "" {
		var err error
		seed, err = strconv.ParseUint(s, 10, 64)
		noErr(t, err)
	}
	t.Logf("seed %d (set %s to repeat)", seed, snCrashSeedEnv)
	rng := rand.New(rand.NewPCG(seed, 0))
	ctx := context.Background()
	work := t.TempDir()
	root := filepath.Join(work, "checkpoints")
	st, err := snapshot.NewLocal(root)
	noErr(t, err)

	expect := newSnModel() // the state at checkpoint expectID
	expectID := int64(0)
	advance := func(to int64) {
		for ; expectID < to; expectID++ {
			for _, op := range snCrashOpsFor(seed, expectID+1) {
				expect.apply(op)
			}
		}
	}
	latest := int64(0)
	var debrisRounds, tmpRounds, killedBeforeReady, childRecovered int
	start := time.Now()
	for round := range rounds {
		dir := filepath.Join(work, fmt.Sprintf("instance-%d", round))
		r := snCrashRun(t, root, dir, seed, rng, &killedBeforeReady)
		if r.exited != nil {
			t.Fatalf("round %d: the child exited by itself: %v\n%s", round, r.exited, r.stderr)
		}
		// The child started from the latest checkpoint, with its state.
		if r.readyDig != "" {
			if r.ready != latest {
				t.Fatalf("round %d: the child restored checkpoint %d, the latest is %d", round, r.ready, latest)
			}
			if want := snDigest(expect); r.readyDig != want {
				t.Fatalf("round %d: the child restored checkpoint %d with state %s, want %s", round, r.ready, r.readyDig, want)
			}
		}
		// What the kill left.
		partial, tmps := snCrashDebris(t, root)
		if len(partial) > 0 {
			debrisRounds++
		}
		if tmps > 0 {
			tmpRounds++
		}
		// Latest works with the debris present, and so does Recover.
		cp, err := snapshot.Latest(ctx, st)
		if err != nil && !(errors.Is(err, snapshot.ErrNoCheckpoint) && latest == 0 && r.lastCP == 0) {
			t.Fatalf("round %d: Latest: %v", round, err)
		}
		// On even rounds the parent recovers; on odd ones it leaves the
		// debris to the next child, whose restart must clean it up.
		childRecovered += r.recovered
		if round%2 == 0 {
			noErr(t, snapshot.Recover(ctx, st))
			if partial, tmps := snCrashDebris(t, root); len(partial) > 0 || tmps > 0 {
				t.Fatalf("round %d: after Recover, partial checkpoints %v and %d temporary files remain", round, partial, tmps)
			}
			if after, err := snapshot.Latest(ctx, st); cp != nil && (err != nil || after.ID != cp.ID) {
				t.Fatalf("round %d: Recover changed the latest checkpoint from %d to %v (%v)", round, cp.ID, after, err)
			}
		}
		if cp == nil {
			continue
		}
		// Every checkpoint the child reported is durable; at most one more
		// was committed before the kill.
		if cp.ID < r.lastCP || cp.ID < latest || cp.ID > max(r.lastCP, latest)+1 {
			t.Fatalf("round %d: latest checkpoint %d; the child reported %d, the previous latest was %d", round, cp.ID, r.lastCP, latest)
		}
		latest = cp.ID
		advance(cp.ID)
		restored := filepath.Join(work, fmt.Sprintf("restored-%d", round))
		b, err := backend.Restore(ctx, backend.Int64, backend.Options{Dir: restored}, st, cp.Handles)
		if err != nil {
			t.Fatalf("round %d: restore checkpoint %d: %v", round, cp.ID, err)
		}
		got := snRead(t, b)
		noErr(t, b.Close())
		snEqual(t, fmt.Sprintf("round %d, checkpoint %d", round, cp.ID), got, expect)
		if d, ok := r.cps[cp.ID]; ok && d != snDigest(got) {
			t.Fatalf("round %d: checkpoint %d restores to %s; the child recorded %s", round, cp.ID, snDigest(got), d)
		}
		_ = os.RemoveAll(restored)
		_ = os.RemoveAll(dir)
	}
	if latest < 3 {
		t.Fatalf("only %d checkpoints completed in %d rounds", latest, rounds)
	}
	t.Logf("%d rounds in %v: %d checkpoints; kills left partial checkpoints in %d rounds (restarting children removed %d), temporary files in %d; %d kills before the child was ready",
		rounds, time.Since(start).Round(time.Millisecond), latest, debrisRounds, childRecovered, tmpRounds, killedBeforeReady)
}

// snCrashRun starts a child and kills it at a random moment: either at a
// random delay after starting (during start-up and restore), or at a
// random delay after it is ready (writing and checkpointing).
func snCrashRun(t *testing.T, root, dir string, seed uint64, rng *rand.Rand, killedBeforeReady *int) snCrashRound {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestSnapshotCrashChild$", "-test.count=1", "-test.timeout=5m")
	cmd.Env = append(os.Environ(),
		snCrashRootEnv+"="+root,
		snCrashDirEnv+"="+dir,
		snCrashSeedEnv+"="+strconv.FormatUint(seed, 10),
	)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	noErr(t, err)
	noErr(t, cmd.Start())
	lines := make(chan string, 1024)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	r := snCrashRound{cps: map[int64]string{}}
	record := func(line string) {
		f := strings.Fields(line)
		if len(f) != 3 {
			return
		}
		id, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil {
			return
		}
		switch f[0] {
		case "recovered":
			r.recovered = int(id)
		case "ready":
			r.ready, r.readyDig = id, f[2]
		case "cp":
			r.cps[id] = f[2]
			r.lastCP = max(r.lastCP, id)
		}
	}
	var kill <-chan time.Time
	if rng.IntN(4) == 0 {
		kill = time.After(time.Duration(rng.IntN(80)) * time.Millisecond)
	}
	exited := false
loop:
	for {
		select {
		case line, ok := <-lines:
			if !ok {
				exited = true
				break loop
			}
			record(line)
			if kill == nil && strings.HasPrefix(line, "ready ") {
				kill = time.After(time.Duration(rng.IntN(250)) * time.Millisecond)
			}
		case <-kill:
			break loop
		case <-time.After(time.Minute):
			_ = cmd.Process.Kill()
			t.Fatalf("the child printed nothing for a minute\n%s", stderr.String())
		}
	}
	if r.readyDig == "" {
		*killedBeforeReady++
	}
	_ = cmd.Process.Kill() // SIGKILL
	for line := range lines {
		record(line)
	}
	werr := cmd.Wait()
	if exited {
		r.exited = fmt.Errorf("exit: %v", werr)
		r.stderr = stderr.String()
	}
	return r
}

// snCrashDebris returns the checkpoint directories without metadata, and
// the number of temporary files, under root.
func snCrashDebris(t testing.TB, root string) (partial []string, tmps int) {
	t.Helper()
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if strings.HasSuffix(p, ".tmp") {
			tmps++
		}
		if d.IsDir() && strings.HasPrefix(d.Name(), "chk-") {
			if _, err := os.Stat(filepath.Join(p, snapshot.MetadataName)); err != nil {
				partial = append(partial, d.Name())
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return partial, tmps
}
