package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"testing"

	"github.com/pebblestate/pebblestate/internal/invariants"
)

// childBinEnv names, in a demo job child's environment, the pebblestate
// command the child hands over to (see raceFreeChild).
const childBinEnv = "PEBBLESTATE_TEST_CHILD_BIN"

var (
	childOnce sync.Once
	childDir  string
	childPath string
	childErr  error
)

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
	childOnce.Do(func() {
		if childDir, childErr = os.MkdirTemp("", "pebblestate-demo-child-"); childErr != nil {
			return
		}
		childPath = filepath.Join(childDir, "pebblestate")
		args := []string{"build", "-o", childPath}
		if invariants.Enabled {
			args = append(args, "-tags", "invariants")
		}
		out, err := exec.Command("go", append(args, "github.com/pebblestate/pebblestate/cmd/pebblestate")...).CombinedOutput()
		if err != nil {
			childErr = fmt.Errorf("build the demo's job child: %w\n%s", err, out)
		}
	})
	if childErr != nil {
		t.Fatal(childErr)
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
