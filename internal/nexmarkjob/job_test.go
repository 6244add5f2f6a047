package nexmarkjob

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/pebblestate/pebblestate/internal/childbin"
	"github.com/pebblestate/pebblestate/internal/nexmark"
)

// TestMain runs a job child when the parent test asked for one.
func TestMain(m *testing.M) {
	if cfg := os.Getenv(ChildEnv); cfg != "" {
		if err := RunChild(context.Background(), cfg, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "job:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	code := m.Run()
	childbin.Cleanup()
	os.Exit(code)
}

// testQueries are small windows over a short stream, so that every query
// has many results.
var testQueries = nexmark.Queries{
	Window: 2 * time.Second, Slide: 500 * time.Millisecond, SessionGap: time.Second,
	TTL: 3 * time.Second, Every: 7,
}

func testInput(events int64, seed uint64) Input {
	return Input{
		Events: events, MaxParallelism: 16, WatermarkEvery: 200,
		Nexmark: nexmark.Config{Seed: seed, FirstEventRate: 1000, NumActivePeople: 50, NumInFlightAuctions: 20},
	}
}

func selfCommand() *exec.Cmd { return exec.Command(os.Args[0], "-test.run=^$") }

// childCommand returns how to start a job child for the crash test: this
// test binary, unless it has the race detector, which makes the children
// too slow to kill 30 times in CI; then the pebblestate command, built
// once without it (with the invariants tag if this binary has it). The
// parent, which coordinates and compares, keeps the race detector.
func childCommand(t *testing.T) func() *exec.Cmd {
	if !raceEnabled {
		return selfCommand
	}
	childPath, err := childbin.Command("github.com/pebblestate/pebblestate/cmd/pebblestate")
	if err != nil {
		t.Fatal(err)
	}
	return func() *exec.Cmd { return exec.Command(childPath) }
}

// TestJobWithoutCrash runs the job once at parallelism 2 and compares.
func TestJobWithoutCrash(t *testing.T) {
	res, err := RunDemo(context.Background(), DemoConfig{
		Input: testInput(3000, 1), Queries: testQueries, Parallelism: []int{2},
		Dir: t.TempDir(), Interval: 50 * time.Millisecond, Command: selfCommand,
	})
	if err != nil {
		t.Fatal(err)
	}
	a := res.Answers
	t.Logf("q5 %d, q7 %d, q8 %d, q11 %d, ttl %d results; %d checkpoints",
		len(a.Q5), len(a.Q7), len(a.Q8), len(a.Q11), len(a.TTL), len(res.Runs[0].Checkpoints))
	for name, n := range map[string]int{"q5": len(a.Q5), "q7": len(a.Q7), "q8": len(a.Q8), "q11": len(a.Q11), "ttl": len(a.TTL)} {
		if n == 0 {
			t.Errorf("%s has no results: the comparison proves nothing", name)
		}
	}
}

// TestJobCrashes kills the job with SIGKILL again and again, restarting
// it each time at a random parallelism, and compares the final results
// with the reference.
func TestJobCrashes(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	kills := 0
	command := childCommand(t)
	for round := 0; kills < 30; round++ {
		ps := make([]int, 11)
		for i := range ps {
			ps[i] = 1 + rng.IntN(3)
		}
		delays := make([]time.Duration, len(ps))
		for i := range delays {
			delays[i] = time.Duration(rng.IntN(150)) * time.Millisecond
		}
		res, err := RunDemo(context.Background(), DemoConfig{
			Input: testInput(3000, seed+uint64(round)), Queries: testQueries, Parallelism: ps,
			KillAfter: func(run int) time.Duration { return delays[run] },
			Dir:       t.TempDir(), Interval: 30 * time.Millisecond, Command: command,
		})
		if err != nil {
			t.Fatalf("round %d (seed %d, parallelism %v): %v", round, seed, ps, err)
		}
		for _, r := range res.Runs {
			if r.Killed {
				kills++
			}
		}
		t.Logf("round %d: parallelism %v, %d runs, %d kills so far", round, ps, len(res.Runs), kills)
	}
}
