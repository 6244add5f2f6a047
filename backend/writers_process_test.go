package backend_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pebblestate/pebblestate/snapshot"
)

const (
	forkEnvRoot  = "PEBBLESTATE_FORK_ROOT"
	forkEnvIndex = "PEBBLESTATE_FORK_INDEX"
	forkKeys     = 2000
)

// forkVal is the value fork i writes to every fifth key.
func forkVal(k int64, i int) string { return fxVal(k, 100+i) }

// TestForkChild is a process of TestForkedWriterProcesses: it restores
// the latest checkpoint of its root at the same range (sharing the
// instance id with its sibling), writes its own values, says "ready",
// waits for the file "go" beside the root, takes checkpoint 2 into the
// root and prints "won" or "lost: <error>".
func TestForkChild(t *testing.T) {
	root := os.Getenv(forkEnvRoot)
	if root == "" {
		t.Skip("run by TestForkedWriterProcesses")
	}
	i, _ := strconv.Atoi(os.Getenv(forkEnvIndex))
	ctx := context.Background()
	st := must(snapshot.NewLocal(root)).in(t)
	cp := must(snapshot.Latest(ctx, st)).in(t)
	j := restoreJob(t, st, cp.Handles, 1, incrementalMode.each(), newFxModel())
	for k := int64(0); k < forkKeys; k += 5 {
		j.setV(k, forkVal(k, i))
	}
	fmt.Println("ready")
	for {
		if _, err := os.Stat(filepath.Join(filepath.Dir(root), "go")); err == nil {
			break
		}
		time.Sleep(50 * time.Microsecond)
	}
	if _, err := j.b().Checkpoint(ctx, st, 2); err != nil {
		fmt.Println("lost:", strings.ReplaceAll(err.Error(), "\n", " "))
	} else {
		fmt.Println("won")
	}
	j.close()
}

// TestForkedWriterProcesses is TestForkedWritersNeverLoseACheckpoint
// across processes, as the safety issue's case 2 found it: two processes
// restored from one incremental checkpoint at the same range take
// checkpoint 2 into the same root at once. Exactly one wins, and the
// checkpoint restores exactly the winner's state.
func TestForkedWriterProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	ctx := context.Background()
	for round := range 3 {
		dir := t.TempDir()
		root := filepath.Join(dir, "root")
		st := must(snapshot.NewLocal(root)).in(t)
		j := newJob(t, st, 1, incrementalMode.each())
		for k := range int64(forkKeys) {
			j.setV(k, fxVal(k, 0))
		}
		j.checkpoint(1, 1)
		base := j.model.clone()
		j.close()

		const n = 2
		outs := make([]*bufio.Scanner, n)
		cmds := make([]*exec.Cmd, n)
		for i := range n {
			cmd := exec.Command(childBinary(t), "-test.run=^TestForkChild$", "-test.count=1", "-test.timeout=2m")
			cmd.Env = append(os.Environ(), forkEnvRoot+"="+root, forkEnvIndex+"="+strconv.Itoa(i))
			cmd.Stderr = os.Stderr
			stdout := must(cmd.StdoutPipe()).in(t)
			noErr(t, cmd.Start())
			cmds[i], outs[i] = cmd, bufio.NewScanner(stdout)
		}
		for i := range n {
			if !outs[i].Scan() || outs[i].Text() != "ready" {
				t.Fatalf("round %d: child %d: %q", round, i, outs[i].Text())
			}
		}
		noErr(t, os.WriteFile(filepath.Join(dir, "go"), nil, 0o644))
		winner := -1
		for i := range n {
			if !outs[i].Scan() {
				t.Fatalf("round %d: child %d said nothing", round, i)
			}
			switch line := outs[i].Text(); {
			case line == "won" && winner >= 0:
				t.Fatalf("round %d: children %d and %d both won", round, winner, i)
			case line == "won":
				winner = i
			case strings.HasPrefix(line, "lost: "):
				t.Logf("round %d: child %d %s", round, i, line)
			default:
				t.Fatalf("round %d: child %d: %s", round, i, line)
			}
			for outs[i].Scan() { // drain to EOF
			}
			noErr(t, cmds[i].Wait())
		}
		if winner < 0 {
			t.Fatalf("round %d: nobody won", round)
		}
		want := base.clone()
		for k := int64(0); k < forkKeys; k += 5 {
			want.v[k] = forkVal(k, winner)
		}
		sharedExact(t, st)
		cp := must(snapshot.Latest(ctx, st)).in(t)
		if cp.ID != 2 {
			t.Fatalf("round %d: latest checkpoint %d, want 2", round, cp.ID)
		}
		noErr(t, snapshot.Verify(ctx, st, cp))
		r := restoreJob(t, st, cp.Handles, 1, incrementalMode.each(), want)
		r.verify(want, fmt.Sprintf("round %d: restore of checkpoint 2 (child %d won)", round, winner))
		r.close()
	}
}
