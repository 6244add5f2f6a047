package main

import (
	"fmt"
	"os"
	"runtime"
	"syscall"
	"testing"

	"github.com/pebblestate/pebblestate/internal/childbin"
)

// childBinEnv names, in a demo job child's environment, the pebblestate
// command the child hands over to (see raceFreeChild).
const childBinEnv = "PEBBLESTATE_TEST_CHILD_BIN"

// raceFreeChild makes the demo's job children, which the demo starts by
// re-executing this test binary, replace themselves with the pebblestate
// command built once without the race detector (with the invariants tag
// if this binary has it), when this binary has the race detector: a demo
// job under it takes minutes of CI. The demo itself (publishing, killing,
// restarting, comparing) keeps the race detector; the job's own code runs
// under it in internal/nexmarkjob's tests, whose children are race-enabled
// test binaries. Without the race detector it does nothing, and the test
// binary runs the job itself.
func raceFreeChild(t *testing.T) {
	if !raceEnabled || runtime.GOOS == "windows" {
		return
	}
	childPath, err := childbin.Command("github.com/pebblestate/pebblestate/cmd/pebblestate")
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv(childBinEnv, childPath)
}

// execChild replaces this process with the command childBinEnv names, if
// it names one, keeping the arguments' count at one and the environment
// (the job's configuration included); it returns only if it cannot.
func execChild() error {
	bin := os.Getenv(childBinEnv)
	if bin == "" {
		return nil
	}
	return fmt.Errorf("exec %s: %w", bin, syscall.Exec(bin, []string{bin}, os.Environ()))
}
