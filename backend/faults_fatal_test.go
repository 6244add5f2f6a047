package backend_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"

	"github.com/pebblestate/pebblestate/backend"
	"github.com/pebblestate/pebblestate/snapshot"
)

const (
	fatalEnvDir  = "PEBBLESTATE_FATAL_DIR"
	fatalEnvRoot = "PEBBLESTATE_FATAL_ROOT"
	fatalKeys    = 200
)

// fatalOptions are the child's and the parent's options.
func fatalOptions(dir string) tweak {
	return withOptions(backend.Options{Dir: dir, IncrementalCheckpoints: true, MemTableSize: 1 << 20, TTLSweepInterval: -1})
}

// TestFaultsManifestChild is the child of TestFaultsManifestWriteIsFatal:
// it takes checkpoint 1 of keys [0, 200), writes keys [200, 400), makes
// the MANIFEST's writes fail and flushes.
func TestFaultsManifestChild(t *testing.T) {
	dir, root := os.Getenv(fatalEnvDir), os.Getenv(fatalEnvRoot)
	if dir == "" {
		t.Skip("the child of TestFaultsManifestWriteIsFatal; not run on its own")
	}
	var failManifest atomic.Bool
	inj := errorfs.InjectorFunc(func(op errorfs.Op) error {
		if failManifest.Load() && op.Kind.ReadOrWrite() == errorfs.OpIsWrite && strings.HasPrefix(filepath.Base(op.Path), "MANIFEST") {
			return &os.PathError{Op: "write", Path: op.Path, Err: syscall.EIO}
		}
		return nil
	})
	st := must(snapshot.NewLocal(root)).in(t)
	b := MustOpenK(t, backend.Int64, fatalOptions(dir), func(o *backend.Options) {
		o.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
		o.Pebble = func(po *pebble.Options) {
			if po.FS == nil {
				po.FS = vfs.Default
			}
			po.FS = errorfs.Wrap(po.FS, inj)
		}
	})
	s := fxRegister(t, b)
	set := func(from, to int64, tag string) {
		for k := from; k < to; k++ {
			noErr(t, b.SetCurrentKey(k))
			noErr(t, s.v.Update(fmt.Sprint(tag, k)))
		}
	}
	set(0, fatalKeys, "one-")
	must(b.Checkpoint(context.Background(), st, 1)).in(t)
	set(fatalKeys, 2*fatalKeys, "two-")
	failManifest.Store(true)
	fmt.Println("flushing")
	err := b.Flush()
	fmt.Printf("Flush returned %v\n", err)
}

// TestFaultsManifestWriteIsFatal: a failed MANIFEST write is fatal in
// Pebble by design (it cannot know whether the change reached the disk):
// the process stops with a message naming the directory. Afterwards the
// directory opens and holds what was flushed, and the last completed
// checkpoint restores exactly.
func TestFaultsManifestWriteIsFatal(t *testing.T) {
	dir, root := filepath.Join(t.TempDir(), "db"), filepath.Join(t.TempDir(), "root")
	noErr(t, os.MkdirAll(root, 0o755))
	cmd := exec.Command(childBinary(t), "-test.run=^TestFaultsManifestChild$", "-test.count=1", "-test.timeout=1m")
	cmd.Env = append(os.Environ(), fatalEnvDir+"="+dir, fatalEnvRoot+"="+root)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || !strings.Contains(stdout.String(), "flushing") || strings.Contains(stdout.String(), "Flush returned") {
		t.Fatalf("the child did not stop in Flush: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), lastBytes(stderr.String(), 3000))
	}
	if msg := "pebblestate: pebble fatal error in " + dir; !strings.Contains(stderr.String(), msg) || !strings.Contains(stderr.String(), "MANIFEST") {
		t.Fatalf("the child's output does not say %q about the MANIFEST:\n%s", msg, lastBytes(stderr.String(), 3000))
	}

	one := newFxModel()
	for k := range int64(fatalKeys) {
		one.v[k] = fmt.Sprint("one-", k)
	}
	st := must(snapshot.NewLocal(root)).in(t)
	cp := must(snapshot.Latest(context.Background(), st)).in(t)
	b := MustRestore(t, backend.Int64, st, cp.Handles, fatalOptions(filepath.Join(t.TempDir(), "r")))
	fxRegister(t, b)
	fxEqual(t, "checkpoint 1", fxRead(t, b), one)

	r := MustOpenK(t, backend.Int64, fatalOptions(dir))
	fxRegister(t, r)
	got := fxRead(t, r)
	two := one.clone()
	for k := int64(fatalKeys); k < 2*fatalKeys; k++ {
		two.v[k] = fmt.Sprint("two-", k)
	}
	if len(got.v) == fatalKeys {
		fxEqual(t, "the directory reopened (the failed flush not applied)", got, one)
	} else {
		fxEqual(t, "the directory reopened (the failed flush applied)", got, two)
	}
}

// lastBytes returns the last n bytes of s.
func lastBytes(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}
