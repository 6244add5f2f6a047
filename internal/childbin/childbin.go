package childbin

import (
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sync"

	"github.com/pebblestate/pebblestate/internal/invariants"
)

var (
	mu    sync.Mutex
	dir   string
	built = map[string]result{}
)

type result struct {
	path string
	err  error
}

// Command returns the path of the command in package pkg (an import
// path), built with go build, without the race detector, with the
// invariants tag if this binary has it. It builds it once per process.
func Command(pkg string) (string, error) { return build("build", pkg) }

// Test returns the path of package pkg's test binary, built with
// go test -c as Command builds a command.
func Test(pkg string) (string, error) { return build("test -c", pkg) }

func build(how, pkg string) (string, error) {
	mu.Lock()
	defer mu.Unlock()
	key := how + " " + pkg
	if r, ok := built[key]; ok {
		return r.path, r.err
	}
	r := result{}
	if dir == "" {
		dir, r.err = os.MkdirTemp("", "pebblestate-child-")
	}
	if r.err == nil {
		r.path = filepath.Join(dir, fmt.Sprintf("%s-%d", path.Base(pkg), len(built)))
		args := []string{"build"}
		if how == "test -c" {
			args = []string{"test", "-c"}
		}
		args = append(args, "-o", r.path)
		if invariants.Enabled {
			args = append(args, "-tags", "invariants")
		}
		if out, err := exec.Command("go", append(args, pkg)...).CombinedOutput(); err != nil {
			r.err = fmt.Errorf("build %s for child processes: %w\n%s", pkg, err, out)
		}
	}
	built[key] = r
	return r.path, r.err
}

// Cleanup removes what Command and Test built. Call it from TestMain,
// after the tests.
func Cleanup() {
	mu.Lock()
	defer mu.Unlock()
	if dir != "" {
		_ = os.RemoveAll(dir)
	}
	dir, built = "", map[string]result{}
}
