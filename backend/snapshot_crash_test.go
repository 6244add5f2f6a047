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
	"github.com/pebblestate/pebblestate/snapshot/retention"
)

// The crash test of checkpoints, in both modes. A child process (this test
// binary, re-executed to run TestSnapshotCrashChild) recovers the
// checkpoint root as a restarted job does, restores the latest checkpoint
// or starts empty, and then loops: apply the operations of the next
// checkpoint id, take checkpoint id (retaining 1 to 3), print
// "cp <id> <digest of the state>". The operations of each id are a
// deterministic function of the seed and the id, so the state at
// checkpoint id is the same whatever crashed when, and the parent computes
// it on its own.
//
// The parent kills the child with SIGKILL at random moments, 50 times a
// mode (35 under -race, 10 with -short): in start-up, recovery or
// restore, in the writes, the asynchronous part, the commit or retention.
// After each kill it checks that the latest completed checkpoint restores
// to exactly the state of its id (and now and then another retained one),
// that it is no older than the last checkpoint the child reported, and
// that Recover leaves no partial checkpoint directory, no temporary file,
// and in shared/ exactly what the retained checkpoints reference. On odd
// rounds it leaves the debris to the next child, whose restart must clean
// it up.

const (
	cpCrashRootEnv = "PEBBLESTATE_CRASH_ROOT"
	cpCrashDirEnv  = "PEBBLESTATE_CRASH_DIR"
	cpCrashSeedEnv = "PEBBLESTATE_CRASH_SEED"
	cpCrashModeEnv = "PEBBLESTATE_CRASH_MODE" // "incremental" or "full"
	cpCrashKeepEnv = "PEBBLESTATE_CRASH_KEEP"

	cpCrashKeys = 1000 // key space
)

// cpCrashOp is one operation of the crash workload.
type cpCrashOp struct {
	kind   int
	k, arg int64
	val    string
}

// cpCrashOpsFor returns the operations applied before checkpoint id: 100 to
// 400 of them.
func cpCrashOpsFor(seed uint64, id int64) []cpCrashOp {
	rng := rand.New(rand.NewPCG(seed, uint64(id)))
	ops := make([]cpCrashOp, 100+rng.IntN(300))
	for i := range ops {
		op := cpCrashOp{kind: rng.IntN(9), k: rng.Int64N(cpCrashKeys), arg: rng.Int64N(8)}
		op.val = fmt.Sprintf("c%d.%d-%x", id, i, rng.Uint32())
		ops[i] = op
	}
	return ops
}

// apply applies op to the model.
func (m *fxModel) apply(op cpCrashOp) {
	switch op.kind {
	case 0, 1:
		m.v[op.k] = op.val
	case 2:
		delete(m.v, op.k)
	case 3, 4:
		m.l[op.k%64] = append(m.l[op.k%64], op.arg)
	case 5:
		delete(m.l, op.k%64)
	case 6:
		if m.m[op.k%64] == nil {
			m.m[op.k%64] = map[int64]string{}
		}
		m.m[op.k%64][op.arg] = op.val
	case 7:
		delete(m.m[op.k%64], op.arg)
		if len(m.m[op.k%64]) == 0 {
			delete(m.m, op.k%64)
		}
	case 8:
		m.w[[2]int64{op.k % 256, op.arg % fxNamespaces}] = op.val
	}
}

// cpCrashApply applies op to the states.
func cpCrashApply(b *backend.Backend[int64], s fxStates, op cpCrashOp) error {
	k := op.k
	switch {
	case op.kind >= 3 && op.kind <= 7:
		k %= 64 // lists and maps pile up on fewer keys
	case op.kind == 8:
		k %= 256
	}
	if err := b.SetCurrentKey(k); err != nil {
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
		if err := s.w.SetCurrentNamespace(op.arg % fxNamespaces); err != nil {
			return err
		}
		return s.w.Update(op.val)
	}
	return nil
}

// cpCrashModelAt is the state at checkpoint id.
func cpCrashModelAt(seed uint64, id int64) *fxModel {
	m := newFxModel()
	for i := int64(1); i <= id; i++ {
		for _, op := range cpCrashOpsFor(seed, i) {
			m.apply(op)
		}
	}
	return m
}

// cpCrashDigest hashes a canonical dump of a model.
func cpCrashDigest(m *fxModel) string {
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

// cpCrashOptions are the child's options.
func cpCrashOptions(m mode, dir string, keep int) backend.Options {
	o := backend.Options{Dir: dir}
	fxOptions(backend.KeyGroupRange{Start: 0, End: fxMaxPar}, m.incremental)(&o)
	o.RetainedCheckpoints, o.SnapshotCompression = keep, "snappy"
	return o
}

// TestSnapshotCrashChild is the child process of TestSnapshotCrash.
func TestSnapshotCrashChild(t *testing.T) {
	root := os.Getenv(cpCrashRootEnv)
	if root == "" {
		t.Skip("the child of TestSnapshotCrash")
	}
	seed := must(strconv.ParseUint(os.Getenv(cpCrashSeedEnv), 10, 64)).in(t)
	keep := must(strconv.Atoi(os.Getenv(cpCrashKeepEnv))).in(t)
	m := fullMode
	if os.Getenv(cpCrashModeEnv) == "incremental" {
		m = incrementalMode
	}
	ctx := context.Background()
	st := must(snapshot.NewLocal(root)).in(t)
	// Restarting cleans up what the last run left half-written.
	partial, tmps := cpCrashDebris(t, root)
	noErr(t, retention.Recover(ctx, st))
	if p, n := cpCrashDebris(t, root); len(p) > 0 || n > 0 {
		t.Fatalf("after Recover at restart, partial checkpoints %v and %d temporary files remain", p, n)
	}
	sharedExact(t, st)
	fmt.Printf("recovered %d %d\n", len(partial), tmps)
	opts := cpCrashOptions(m, os.Getenv(cpCrashDirEnv), keep)
	b, report, err := backend.RestoreLatest(ctx, backend.Int64, opts, st)
	next := int64(1)
	switch {
	case errors.Is(err, snapshot.ErrNoCheckpoint):
		b = must(backend.Open(backend.Int64, opts)).in(t)
	case err != nil:
		t.Fatal(err)
	default:
		next = report.Checkpoint.ID + 1
	}
	s := fxRegister(t, b)
	model := fxRead(t, b)
	fmt.Printf("ready %d %s\n", next-1, cpCrashDigest(model))
	deadline := time.Now().Add(2 * time.Minute) // never outlive a lost parent for long
	for id := next; time.Now().Before(deadline); id++ {
		for _, op := range cpCrashOpsFor(seed, id) {
			noErr(t, cpCrashApply(b, s, op))
			model.apply(op)
		}
		fmt.Printf("checkpointing %d -\n", id)
		if _, err := b.Checkpoint(ctx, st, id); err != nil {
			t.Fatalf("checkpoint %d: %v", id, err)
		}
		fmt.Printf("cp %d %s\n", id, cpCrashDigest(model))
	}
	noErr(t, b.Close())
}

// cpCrashRound is what a child printed before it was killed.
type cpCrashRound struct {
	ready     int64 // the checkpoint it restored, 0 for none
	readyDig  string
	cps       map[int64]string
	lastCP    int64
	phase     string // what it was doing when killed
	exited    error  // set if the child exited by itself
	recovered int    // partial checkpoints the child's Recover removed
	stderr    string
}

func TestSnapshotCrash(t *testing.T) {
	if os.Getenv(cpCrashRootEnv) != "" {
		t.Skip("in the child")
	}
	rounds := 50
	switch {
	case testing.Short():
		rounds = 10
	case raceEnabled():
		rounds = 35 // the parent's checks of each round run under it
	}
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv(cpCrashSeedEnv); s != "" {
		seed = must(strconv.ParseUint(s, 10, 64)).in(t)
	}
	t.Logf("seed %d (set %s to repeat)", seed, cpCrashSeedEnv)
	forEachMode(t, func(t *testing.T, m mode) {
		cpCrashRounds(t, m, seed, rounds)
	})
}

// cpCrashRounds kills rounds children in mode m and checks what each left.
func cpCrashRounds(t *testing.T, m mode, seed uint64, rounds int) {
	rng := rand.New(rand.NewPCG(seed, 0))
	ctx := context.Background()
	work := t.TempDir()
	root := filepath.Join(work, "checkpoints")
	st := must(snapshot.NewLocal(root)).in(t)

	expect := newFxModel() // the state at checkpoint expectID
	expectID := int64(0)
	latest := int64(0)
	phases := map[string]int{}
	var debrisRounds, tmpRounds, childRecovered int
	start := time.Now()
	for round := range rounds {
		dir := filepath.Join(work, fmt.Sprintf("instance-%d", round))
		r := cpCrashRun(t, m, root, dir, seed, 1+rng.IntN(3), rng)
		if r.exited != nil {
			t.Fatalf("round %d: the child exited by itself: %v\n%s", round, r.exited, r.stderr)
		}
		phases[r.phase]++
		// The child started from the latest checkpoint, with its state.
		if r.readyDig != "" {
			if r.ready != latest {
				t.Fatalf("round %d: the child restored checkpoint %d, the latest is %d", round, r.ready, latest)
			}
			if want := cpCrashDigest(expect); r.readyDig != want {
				t.Fatalf("round %d: the child restored checkpoint %d with state %s, want %s", round, r.ready, r.readyDig, want)
			}
		}
		// What the kill left.
		partial, tmps := cpCrashDebris(t, root)
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
		childRecovered += r.recovered
		if round%2 == 0 {
			noErr(t, retention.Recover(ctx, st))
			if partial, tmps := cpCrashDebris(t, root); len(partial) > 0 || tmps > 0 {
				t.Fatalf("round %d: after Recover, partial checkpoints %v and %d temporary files remain", round, partial, tmps)
			}
			if after, err := snapshot.Latest(ctx, st); cp != nil && (err != nil || after.ID != cp.ID) {
				t.Fatalf("round %d: Recover changed the latest checkpoint from %d to %v (%v)", round, cp.ID, after, err)
			}
			sharedExact(t, st)
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
		for ; expectID < latest; expectID++ {
			for _, op := range cpCrashOpsFor(seed, expectID+1) {
				expect.apply(op)
			}
		}
		check := map[int64]*fxModel{latest: expect}
		if ids := must(snapshot.Completed(ctx, st)).in(t); len(ids) > 1 && round%5 == 0 {
			id := ids[rng.IntN(len(ids)-1)] // another retained one
			check[id] = cpCrashModelAt(seed, id)
		}
		for id, want := range check {
			cp := must(snapshot.Load(ctx, st, id)).in(t)
			restored := filepath.Join(work, fmt.Sprintf("restored-%d-%d", round, id))
			b := m.restore(t, st, cp.Handles, inDir(restored))
			got := fxRead(t, b)
			noErr(t, b.Close())
			fxEqual(t, fmt.Sprintf("round %d, checkpoint %d", round, id), got, want)
			if d, ok := r.cps[id]; ok && d != cpCrashDigest(got) {
				t.Fatalf("round %d: checkpoint %d restores to %s; the child recorded %s", round, id, cpCrashDigest(got), d)
			}
			_ = os.RemoveAll(restored)
		}
		_ = os.RemoveAll(dir)
	}
	if latest < 3 {
		t.Fatalf("only %d checkpoints completed in %d rounds", latest, rounds)
	}
	t.Logf("%d rounds in %v: %d checkpoints; kills by phase %v; kills left partial checkpoints in %d rounds (restarting children removed %d), temporary files in %d",
		rounds, time.Since(start).Round(time.Millisecond), latest, phases, debrisRounds, childRecovered, tmpRounds)
}

// cpCrashRun starts a child and kills it at a random moment: either at a
// random delay after starting (during start-up, recovery and restore), or
// at a random delay after it is ready (writing and checkpointing).
func cpCrashRun(t *testing.T, m mode, root, dir string, seed uint64, keep int, rng *rand.Rand) cpCrashRound {
	t.Helper()
	cmd := exec.Command(childBinary(t), "-test.run=^TestSnapshotCrashChild$", "-test.count=1", "-test.timeout=5m")
	modeName := "full"
	if m.incremental {
		modeName = "incremental"
	}
	cmd.Env = append(os.Environ(),
		cpCrashRootEnv+"="+root,
		cpCrashDirEnv+"="+dir,
		cpCrashSeedEnv+"="+strconv.FormatUint(seed, 10),
		cpCrashModeEnv+"="+modeName,
		cpCrashKeepEnv+"="+strconv.Itoa(keep),
	)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out := must(cmd.StdoutPipe()).in(t)
	noErr(t, cmd.Start())
	lines := make(chan string, 1024)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	r := cpCrashRound{cps: map[int64]string{}, phase: "start-up"}
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
			r.recovered, r.phase = int(id), "restore"
		case "ready":
			r.ready, r.readyDig, r.phase = id, f[2], "writes"
		case "checkpointing":
			r.phase = "checkpoint"
		case "cp":
			r.cps[id] = f[2]
			r.lastCP, r.phase = max(r.lastCP, id), "writes"
		}
	}
	var kill <-chan time.Time
	if rng.IntN(4) == 0 {
		kill = time.After(time.Duration(rng.IntN(150)) * time.Millisecond)
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
				kill = time.After(time.Duration(rng.IntN(300)) * time.Millisecond)
			}
		case <-kill:
			break loop
		case <-time.After(time.Minute):
			_ = cmd.Process.Kill()
			t.Fatalf("the child printed nothing for a minute\n%s", stderr.String())
		}
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

// cpCrashDebris returns the checkpoint directories without metadata, and
// the number of temporary files, under root.
func cpCrashDebris(t testing.TB, root string) (partial []string, tmps int) {
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
	noErr(t, err)
	return partial, tmps
}
