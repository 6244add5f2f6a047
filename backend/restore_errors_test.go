package backend_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pebblestate/pebblestate/backend"
	"github.com/pebblestate/pebblestate/snapshot"
)

// TestRestoreErrorMessages guards "internal package names leak into
// errors (keygroup: invalid argument: restore target ... is not empty),
// prefixes repeat (backend: restore: restore: ...), and no completed
// checkpoint does not say where it looked": the errors of the restore path
// name the restore directory once and the checkpoint root at most once,
// carry no package prefix, and still match their sentinels.
func TestRestoreErrorMessages(t *testing.T) {
	forEachMode(t, func(t *testing.T, m mode) {
		ctx := context.Background()
		st, _, cps := checkpointed(t, m, "snappy", 1)
		root := st.Root()
		h := cps[0].Handles[0]
		work := t.TempDir()
		dir := filepath.Join(work, "target")
		empty := must(snapshot.NewLocal(filepath.Join(work, "empty"))).in(t)
		missing := st.Path(h.Files[0].Name)
		for _, c := range []struct {
			name   string
			setup  func()
			run    func() error
			target error
			want   string
		}{
			{"target not empty",
				func() { noErr(t, os.MkdirAll(dir, 0o755)); noErr(t, os.WriteFile(filepath.Join(dir, "x"), nil, 0o644)) },
				func() error {
					_, err := backend.Restore(ctx, backend.Int64, backend.Options{Dir: dir}, st, cps[0].Handles)
					return err
				},
				backend.ErrInvalidArgument, "restore into " + dir + ": invalid argument: the directory is not empty"},
			{"no key codec", nil,
				func() error {
					_, err := backend.Restore[int64](ctx, nil, backend.Options{Dir: dir}, st, cps[0].Handles)
					return err
				},
				backend.ErrInvalidArgument, "restore " + dir + ": invalid argument: key codec is nil or unnamed"},
			{"no checkpoint", nil,
				func() error {
					_, _, err := backend.RestoreLatest(ctx, backend.Int64, backend.Options{Dir: dir}, empty)
					return err
				},
				snapshot.ErrNoCheckpoint, "restore " + dir + ": no completed checkpoint in " + empty.Root()},
			{"no checkpoint by path", nil,
				func() error {
					_, _, err := backend.RestoreFromPath(ctx, backend.Int64, backend.Options{Dir: dir}, empty.Root())
					return err
				},
				snapshot.ErrNoCheckpoint, "restore " + dir + ": no completed checkpoint in " + empty.Root()},
			{"no such path", nil,
				func() error {
					_, _, err := backend.RestoreFromPath(ctx, backend.Int64, backend.Options{Dir: dir}, filepath.Join(work, "nowhere"))
					return err
				},
				fs.ErrNotExist, "restore from " + filepath.Join(work, "nowhere") + ": no such file or directory"},
			{"no such checkpoint", nil,
				func() error {
					_, _, err := backend.RestoreFromPath(ctx, backend.Int64, backend.Options{Dir: dir}, st.Path("chk-5"))
					return err
				},
				fs.ErrNotExist, "restore from " + st.Path("chk-5") + ": no such file or directory"},
			{"no such checkpoint metadata", func() { noErr(t, os.MkdirAll(st.Path("chk-6"), 0o755)) },
				func() error {
					_, _, err := backend.RestoreFromPath(ctx, backend.Int64, backend.Options{Dir: dir}, st.Path("chk-6"))
					return err
				},
				fs.ErrNotExist, "restore " + dir + ": open " + st.Path("chk-6/_metadata") + ": no such file or directory"},
			{"no such root", nil,
				func() error {
					_, _, err := backend.RestoreFromPath(ctx, backend.Int64, backend.Options{Dir: dir}, filepath.Join(work, "nowhere", "chk-1"))
					return err
				},
				fs.ErrNotExist, "restore from " + filepath.Join(work, "nowhere", "chk-1") + ": no such file or directory"},
			{"other operator", nil,
				func() error {
					_, err := backend.Restore(ctx, backend.Int64, backend.Options{Dir: dir, Operator: "x"}, st, cps[0].Handles)
					return err
				},
				snapshot.ErrIncomplete, "restore " + dir + `: incomplete checkpoint: no handle for operator "x" (the handles are of operators "default")`},
			{"missing file", func() { noErr(t, os.Remove(missing)) },
				func() error {
					_, err := backend.Restore(ctx, backend.Int64, backend.Options{Dir: dir}, st, cps[0].Handles)
					return err
				},
				fs.ErrNotExist, "restore " + dir + ": open " + missing + ": no such file or directory"},
		} {
			t.Run(c.name, func(t *testing.T) {
				noErr(t, os.RemoveAll(dir))
				if c.setup != nil {
					c.setup()
				}
				err := c.run()
				if err == nil {
					t.Fatal("succeeded")
				}
				msg := err.Error()
				if m.incremental && c.name == "missing file" {
					// The incremental handle's first file is linked, not opened.
					c.want = "restore " + dir + ": " + missing + ": no such file or directory"
				}
				if msg != c.want || !errors.Is(err, c.target) {
					t.Fatalf("error\n%q\nwant\n%q, wrapping %v", msg, c.want, c.target)
				}
				for _, bad := range []string{"restore: ", "keygroup:", "backend:", "snapshot:"} {
					if strings.Contains(msg, bad) {
						t.Errorf("error %q contains %q", msg, bad)
					}
				}
				if n := strings.Count(msg, root); n > 1 {
					t.Errorf("error %q names the checkpoint root %d times", msg, n)
				}
				if _, err := os.Stat(filepath.Join(work, "nowhere")); err == nil {
					t.Errorf("the restore created %s", filepath.Join(work, "nowhere"))
				}
			})
		}
	})
}

// TestOpenRefusesUnfinishedRestore: a directory holding the marker of a
// restore that did not finish is refused by Open with a clear error naming
// it once, and a new restore into it succeeds.
// Guards issue 12 case 5 (the marker that makes a killed restore unopenable).
func TestOpenRefusesUnfinishedRestore(t *testing.T) {
	ctx := context.Background()
	st, models, cps := checkpointed(t, fullMode, "snappy", 1)
	dir := filepath.Join(t.TempDir(), "r")
	b := must(backend.Restore(ctx, backend.Int64, backend.Options{Dir: dir}, st, cps[0].Handles)).in(t)
	noErr(t, b.Close())
	// What a killed restore leaves: the database and the marker.
	noErr(t, os.WriteFile(filepath.Join(dir, "PEBBLESTATE-RESTORING"), nil, 0o644))
	_, err := backend.Open(backend.Int64, backend.Options{Dir: dir})
	want := fmt.Sprintf("open %s: unfinished restore: restore into it again, or remove it", dir)
	if err == nil || err.Error() != want || !errors.Is(err, backend.ErrUnfinishedRestore) {
		t.Fatalf("Open of an unfinished restore: %v\nwant ErrUnfinishedRestore: %s", err, want)
	}
	b = must(backend.Restore(ctx, backend.Int64, backend.Options{Dir: dir}, st, cps[0].Handles)).in(t)
	fxEqual(t, "restored again", fxRead(t, b), models[0])
	noErr(t, b.Close())
	b = must(backend.Open(backend.Int64, backend.Options{Dir: dir})).in(t)
	noErr(t, b.Close())
}
