package backend_test

import (
	"os"
	"testing"

	"github.com/pebblestate/pebblestate/internal/childbin"
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
	p, err := childbin.Test("github.com/pebblestate/pebblestate/backend")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestMain removes what childBinary built, if anything, after the tests.
func TestMain(m *testing.M) {
	code := m.Run()
	childbin.Cleanup()
	os.Exit(code)
}
