package backend_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/pebblestate/pebblestate/backend"
	"github.com/pebblestate/pebblestate/internal/storagetest"
	"github.com/pebblestate/pebblestate/snapshot"
)

// cloneHandle copies h deeply enough to change its names.
func cloneHandle(h snapshot.Handle) snapshot.Handle {
	h.Files = slices.Clone(h.Files)
	h.Shared = slices.Clone(h.Shared)
	return h
}

// TestRestoreOfUnsafeNamesTouchesNothingOutside guards issue 12 case 10 at
// the restore: names in a checkpoint's metadata were trusted, so with
// Shared[].LocalName "../../x.sst" a restore created a file outside its
// directory (with a long ../ chain, at an absolute path of the metadata's
// choosing), and with Shared[].Name "../secret" it hard-linked a file
// from outside the checkpoint root and succeeded. For every name field of
// a real checkpoint's handle and each kind of unsafe name (.., absolute,
// a long ../ chain, over-long, another checkpoint's directory), Restore
// given the handle and RestoreFromPath given the crafted _metadata fail
// with ErrCorrupt naming the value (Restore asks its storage for
// nothing), and leave the whole tree holding the root, the restore
// directory and a secret file beside them as it was: nothing created,
// deleted, changed or hard-linked.
func TestRestoreOfUnsafeNamesTouchesNothingOutside(t *testing.T) {
	forEachMode(t, func(t *testing.T, m mode) {
		ctx := context.Background()
		parent := t.TempDir()
		// The root and the restore directory sit two levels down, so
		// that ../ and ../../ from either still land under parent.
		inner := filepath.Join(parent, "outer", "inner")
		secret := filepath.Join(inner, "secret")
		noErr(t, os.MkdirAll(inner, 0o755))
		noErr(t, os.WriteFile(secret, []byte("secret"), 0o644))
		local := must(snapshot.NewLocal(filepath.Join(inner, "root"))).in(t)
		j := newJob(t, local, 1, m.each())
		j.apply(rand.New(rand.NewPCG(10, 12)), 300, 100, "a")
		cp := j.checkpoint(1, 1)
		j.close()
		good := cp.Handles[0]
		if m.incremental && len(good.Shared) == 0 {
			t.Fatal("the incremental checkpoint has no shared file")
		}
		metaPath := local.Path(snapshot.MetadataPath(1))
		goodMeta := must(os.ReadFile(metaPath)).in(t)

		long := strings.Repeat("a", snapshot.MaxNameElemLen+1)
		chain := strings.Repeat("../", 40) + strings.TrimPrefix(filepath.Join(parent, "chain.sst"), "/")
		abs := filepath.Join(parent, "abs.sst")
		type field struct {
			name   string
			set    func(h *snapshot.Handle, v string)
			values []string
		}
		fields := []field{
			{"files[0].name", func(h *snapshot.Handle, v string) { h.Files[0].Name = v },
				[]string{"../secret", "chk-1/../../secret", secret, chain, "chk-1/" + long, "chk-2/" + filepath.Base(good.Files[0].Name), "shared/x"}},
			{"instance_id", func(h *snapshot.Handle, v string) { h.InstanceID = v },
				[]string{"../x", "a/b", "..", long}},
		}
		if m.incremental {
			fields = append(fields,
				field{"shared[0].name", func(h *snapshot.Handle, v string) { h.Shared[0].Name = v },
					[]string{"../secret", "shared/../../secret", secret, chain, "shared/" + long, good.Files[0].Name, "chk-2/x"}},
				field{"shared[0].local_name", func(h *snapshot.Handle, v string) { h.Shared[0].LocalName = v },
					[]string{"../../x.sst", "../x.sst", abs, chain, "a/b.sst", "..", long}})
		}
		before := storagetest.Tree(t, parent)
		for _, f := range fields {
			for _, v := range f.values {
				t.Run(fmt.Sprintf("%s=%.40q", f.name, v), func(t *testing.T) {
					bad := cloneHandle(good)
					f.set(&bad, v)
					quoted := fmt.Sprintf("%q", v)
					dir := filepath.Join(inner, "r")
					opts := backend.Options{Dir: dir}
					m.set(&opts)
					for _, st := range []snapshot.Storage{local, &storagetest.Recording{Storage: local}} {
						b, err := backend.Restore(ctx, backend.Int64, opts, st, []snapshot.Handle{bad})
						if err == nil {
							_ = b.Close()
							noErr(t, os.RemoveAll(dir))
							t.Fatalf("Restore of a handle with %s %q succeeded", f.name, v)
						}
						if !errors.Is(err, snapshot.ErrCorrupt) || !strings.Contains(err.Error(), quoted) {
							t.Fatalf("Restore: %v; want ErrCorrupt naming %s", err, quoted)
						}
						if log, ok := st.(*storagetest.Recording); ok && len(log.Names()) > 0 {
							t.Errorf("Restore of an unsafe name asked storage to %q", log.Names())
						}
					}
					if after := storagetest.Tree(t, parent); after != before {
						t.Fatalf("Restore changed the tree:\n%s\nto\n%s", before, after)
					}

					// The same name in _metadata, restored by path. Storage
					// never replaces a file, so the test writes it directly.
					reframe(t, metaPath, snapshot.MetadataVersion, func(c *snapshot.Checkpoint) { c.Handles[0] = bad })
					defer func() { noErr(t, os.WriteFile(metaPath, goodMeta, 0o644)) }()
					mid := storagetest.Tree(t, parent)
					for _, p := range []string{local.Root(), filepath.Dir(metaPath)} {
						b, report, err := backend.RestoreFromPath(ctx, backend.Int64, opts, p)
						if b != nil {
							_ = b.Close()
							noErr(t, os.RemoveAll(dir))
							t.Fatalf("RestoreFromPath(%s) with %s %q succeeded", p, f.name, v)
						}
						if p == local.Root() {
							// The only checkpoint is unreadable: none is restored,
							// and the report says why checkpoint 1 was passed over.
							if len(report.Skipped) != 1 {
								t.Errorf("RestoreFromPath(root) passed over %+v; want checkpoint 1", report.Skipped)
							} else {
								err = report.Skipped[0].Err
							}
						}
						if !errors.Is(err, snapshot.ErrCorrupt) || !strings.Contains(err.Error(), quoted) {
							t.Fatalf("RestoreFromPath(%s): %v; want ErrCorrupt naming %s", p, err, quoted)
						}
					}
					if after := storagetest.Tree(t, parent); after != mid {
						t.Fatalf("RestoreFromPath changed the tree:\n%s\nto\n%s", mid, after)
					}
				})
			}
		}
	})
}
