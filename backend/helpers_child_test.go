package backend_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/pebblestate/pebblestate/internal/invariants"
)

var (
	childOnce sync.Once
	childDir  string
	childPath string
	childErr  error
)

// childBinary returns the test binary the crash and process tests start
// as their children: this one, unless it has the race detector; then this
// package's tests built once without it (with the invariants tag if this
// binary has it). A race-enabled child takes about a second to start and
// runs twice as slowly, which made these tests most of CI's time; what
// they check is what a killed or concurrent process leaves on disk, which
// the race detector does not see across processes. The parent, which
// drives and checks, keeps it, and the code the children run (open,
// write, snapshot, restore) runs under it in this package's in-process
// tests.
func childBinary(t testing.TB) string {
	t.Helper()
	if !raceEnabled() {
		return os.Args[0]
	}
	childOnce.Do(func() {
		if childDir, childErr = os.MkdirTemp("", "pebblestate-backend-child-"); childErr != nil {
			return
		}
		childPath = filepath.Join(childDir, "backend.test")
		args := []string{"test", "-c", "-o", childPath}
		if invariants.Enabled {
			args = append(args, "-tags", "invariants")
		}
		out, err := exec.Command("go", append(args, "github.com/pebblestate/pebblestate/backend")...).CombinedOutput()
		if err != nil {
			childErr = fmt.Errorf("build the children's test binary: %w\n%s", err, out)
		}
	})
	if childErr != nil {
		t.Fatal(childErr)
	}
	return childPath
}

// TestMain removes what childBinary built, if anything, after the tests.
func TestMain(m *testing.M) {
	code := m.Run()
	if childDir != "" {
		os.RemoveAll(childDir)
	}
	os.Exit(code)
}
