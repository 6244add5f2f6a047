package snapshot_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pebblestate/pebblestate/internal/storagetest"
	"github.com/pebblestate/pebblestate/snapshot"
	"github.com/pebblestate/pebblestate/snapshot/retention"
)

// Tests that names from metadata are checked before any use, and that
// nothing outside the checkpoint root is read, created or deleted.

// nameCheckpoint is a valid incremental-shaped checkpoint 7 whose handle
// has a private file, a shared file and local names.
func nameCheckpoint() *snapshot.Checkpoint {
	h := sampleHandle("aaaa", 7, 0, 128)
	h.Kind, h.Compression, h.Blocks = snapshot.KindIncremental, "", nil
	h.Files = []snapshot.FileRef{{Name: "chk-7/inc-aaaa/MANIFEST-000001", Size: 8}}
	h.Shared = []snapshot.SharedFile{{FileRef: snapshot.FileRef{Name: "shared/aaaa-c7-000004.sst", Size: 3}, LocalName: "000004.sst"}}
	return &snapshot.Checkpoint{ID: 7, CreatedUnixMillis: 1, Handles: []snapshot.Handle{h}}
}

type nameCase struct {
	field   string // as the error names it
	value   string
	storage bool // the value is also an unsafe storage name
	set     func(h *snapshot.Handle, v string)
}

func unsafeNameCases(outside string) []nameCase {
	long := strings.Repeat("a", snapshot.MaxNameElemLen+1)
	deep := strings.Repeat("abcdefgh/", snapshot.MaxNameLen/9+1) + "x"
	var cases []nameCase
	add := func(field string, set func(h *snapshot.Handle, v string), storage bool, values ...string) {
		for _, v := range values {
			cases = append(cases, nameCase{field, v, storage, set})
		}
	}
	setFile := func(h *snapshot.Handle, v string) { h.Files[0].Name = v }
	setShared := func(h *snapshot.Handle, v string) { h.Shared[0].Name = v }
	setLocal := func(h *snapshot.Handle, v string) { h.Shared[0].LocalName = v }
	setInst := func(h *snapshot.Handle, v string) { h.InstanceID = v }
	// Unsafe anywhere.
	bad := []string{"../secret", "chk-7/../../secret", "shared/../../secret", outside, "chk-7/" + long, "shared/" + long,
		"chk-7/" + deep, "shared/" + deep, `chk-7\..\..\secret`, "chk-7/a\x00b", "chk-7/./x", "chk-7//x", "chk-7/", "shared/x/..", ""}
	add("files[0].name", setFile, true, bad...)
	add("shared[0].name", setShared, true, bad...)
	// Safe storage names, but outside the field's own directory.
	add("files[0].name", setFile, false, "chk-6/full-aaaa.dat", "chk-70/x", "shared/aaaa-c7-000004.sst", "top")
	add("shared[0].name", setShared, false, "chk-7/inc-aaaa/MANIFEST-000001", "chk-6/x", "top")
	// Local names must be plain file names.
	add("shared[0].local_name", setLocal, false, "../../x.sst", "a/b.sst", "..", ".", "", outside, long, `..\x.sst`, "x\x00.sst", "MANIFEST-000001")
	add("instance_id", setInst, false, "../x", "a/b", "..", `a\b`, long)
	return cases
}

// TestUnsafeNamesAreCorrupt crafts metadata with an unsafe name in every
// name field: DecodeMetadata, Load, Verify, Retain and Recover report
// ErrCorrupt naming the field and the quoted value (or keep the
// checkpoint as unreadable), and nothing outside the root is read,
// created or deleted; Local refuses the unsafe storage names itself.
// Guards issue 12 case 10 and the must-exist test "crafted metadata ... in
// every name field" at the checkpoint root; the restore side is
// backend.TestRestoreOfUnsafeNamesTouchesNothingOutside.
func TestUnsafeNamesAreCorrupt(t *testing.T) {
	ctx := context.Background()
	parent := t.TempDir()
	secret := filepath.Join(parent, "secret")
	if err := os.WriteFile(secret, []byte("secret"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(parent, "x"), 0o755); err != nil {
		t.Fatal(err)
	}
	local, err := snapshot.NewLocal(filepath.Join(parent, "root"))
	if err != nil {
		t.Fatal(err)
	}
	commitCheckpoint(t, local, 6)
	good := nameCheckpoint()
	storagetest.Put(t, local, good.Handles[0].Files[0].Name, []byte("manifest"))
	storagetest.Put(t, local, good.Handles[0].Shared[0].Name, []byte("sst"))
	if _, err := snapshot.DecodeMetadata(metaName, mustEncode(t, good)); err != nil {
		t.Fatalf("the good checkpoint: %v", err)
	}
	storagetest.Put(t, local, snapshot.MetadataPath(7), mustEncode(t, good))

	for _, c := range unsafeNameCases(secret) {
		t.Run(fmt.Sprintf("%s=%.40q", c.field, c.value), func(t *testing.T) {
			cp := nameCheckpoint()
			c.set(&cp.Handles[0], c.value)
			quoted := fmt.Sprintf("%q", c.value)
			wantCorrupt(t, decodeErr(t, cp), metaName, c.field, quoted)

			storagetest.Replace(t, local, snapshot.MetadataPath(7), mustEncode(t, cp))
			before := storagetest.Tree(t, parent)
			st := &storagetest.Recording{Storage: local}
			if _, err := snapshot.Load(ctx, st, 7); !errors.Is(err, snapshot.ErrCorrupt) || !strings.Contains(err.Error(), quoted) {
				t.Errorf("Load = %v", err)
			}
			if err := snapshot.Verify(ctx, st, cp); !errors.Is(err, snapshot.ErrCorrupt) || !strings.Contains(err.Error(), quoted) {
				t.Errorf("Verify = %v", err)
			}
			if len(st.Names()) != 1 || st.Names()[0] != "open "+snapshot.MetadataPath(7) {
				t.Errorf("Load and Verify of unsafe names touched %q", st.Names())
			}
			if err := retention.Retain(ctx, st, 1); !errors.Is(err, snapshot.ErrUnreadable) {
				t.Errorf("Retain = %v, want ErrUnreadable", err)
			}
			if err := retention.Recover(ctx, st); !errors.Is(err, snapshot.ErrUnreadable) {
				t.Errorf("Recover = %v, want ErrUnreadable", err)
			}
			if c.storage {
				if f, err := local.Open(ctx, c.value); err == nil || !errors.Is(err, fs.ErrInvalid) {
					if f != nil {
						f.Close()
					}
					t.Errorf("Local.Open = %v, want fs.ErrInvalid", err)
				}
				if w, err := local.Create(ctx, c.value); err == nil || !errors.Is(err, fs.ErrInvalid) {
					if w != nil {
						_ = w.Abort()
					}
					t.Errorf("Local.Create = %v, want fs.ErrInvalid", err)
				}
				if err := local.Delete(ctx, c.value); !errors.Is(err, fs.ErrInvalid) {
					t.Errorf("Local.Delete = %v, want fs.ErrInvalid", err)
				}
				if _, err := local.LocalPath(c.value); !errors.Is(err, fs.ErrInvalid) {
					t.Errorf("Local.LocalPath = %v, want fs.ErrInvalid", err)
				}
				if c.value != "" && !strings.HasSuffix(c.value, "/") {
					if _, err := local.List(ctx, c.value); !errors.Is(err, fs.ErrInvalid) {
						t.Errorf("Local.List = %v, want fs.ErrInvalid", err)
					}
				}
			}
			if after := storagetest.Tree(t, parent); after != before {
				t.Fatalf("the tree changed:\n%s\nto\n%s", before, after)
			}
			for _, n := range st.Names() {
				if op, name, _ := strings.Cut(n, " "); op != "open" || snapshot.CheckName(name) != nil {
					t.Errorf("storage was asked to %s", n)
				}
			}
		})
	}
}

func decodeErr(t *testing.T, cp *snapshot.Checkpoint) error {
	t.Helper()
	got, err := snapshot.DecodeMetadata(metaName, mustEncode(t, cp))
	if err == nil {
		t.Fatalf("decoded %+v", got.Handles[0])
	}
	return err
}

// TestCommitRefusesUnsafeNames: a handle with an unsafe name is never
// committed.
// Guards issue 12 case 10 at the commit.
func TestCommitRefusesUnsafeNames(t *testing.T) {
	ctx := context.Background()
	parent := t.TempDir()
	for _, c := range unsafeNameCases(filepath.Join(parent, "secret")) {
		cp := nameCheckpoint()
		c.set(&cp.Handles[0], c.value)
		st, err := snapshot.NewLocal(filepath.Join(parent, "root"))
		if err != nil {
			t.Fatal(err)
		}
		before := storagetest.Tree(t, parent)
		if err := snapshot.Commit(ctx, st, cp); err == nil || !strings.Contains(err.Error(), fmt.Sprintf("%q", c.value)) {
			t.Errorf("Commit with %s = %.60q: %v", c.field, c.value, err)
		}
		if after := storagetest.Tree(t, parent); after != before {
			t.Fatalf("a refused commit changed the tree:\n%s\nto\n%s", before, after)
		}
	}
}

// TestLocalSymlinkInsideRootStaysInside: a symbolic link inside the root
// that points out of it is not followed, so Local reads nothing outside.
// Guards issue 12 case 10 (nothing outside the root is read or written).
func TestLocalSymlinkInsideRootStaysInside(t *testing.T) {
	ctx := context.Background()
	parent := t.TempDir()
	if err := os.WriteFile(filepath.Join(parent, "secret"), []byte("secret"), 0o644); err != nil {
		t.Fatal(err)
	}
	st, err := snapshot.NewLocal(filepath.Join(parent, "root"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(parent, "secret"), filepath.Join(st.Root(), "abs")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../secret", filepath.Join(st.Root(), "rel")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("..", filepath.Join(st.Root(), "shared")); err != nil {
		t.Fatal(err)
	}
	before := storagetest.Tree(t, parent)
	for _, name := range []string{"abs", "rel", "shared/secret"} {
		if f, err := st.Open(ctx, name); err == nil {
			f.Close()
			t.Errorf("Open(%s) through a link out of the root succeeded", name)
		}
	}
	if w, err := st.Create(ctx, "shared/new"); err == nil {
		_ = w.Abort()
		t.Error("Create through a link out of the root succeeded")
	}
	if err := st.Delete(ctx, "shared/secret"); err == nil {
		if _, serr := os.Stat(filepath.Join(parent, "secret")); serr != nil {
			t.Error("Delete through a link removed a file outside the root")
		}
	}
	if names, err := st.List(ctx, ""); err != nil || strings.Contains(strings.Join(names, " "), "secret") {
		t.Errorf("List = %v, %v", names, err)
	}
	if after := storagetest.Tree(t, parent); after != before {
		t.Fatalf("the tree changed:\n%s\nto\n%s", before, after)
	}
}

// TestSharedCreator: SharedCreator reads back the creator of every name
// SharedName makes, and refuses every other name, which collection then
// leaves alone.
func TestSharedCreator(t *testing.T) {
	for _, id := range []int64{0, 7, 1 << 40} {
		name := snapshot.SharedName("00c0ffee", id, "000123.sst")
		if got, ok := snapshot.SharedCreator(name); !ok || got != id {
			t.Errorf("SharedCreator(%s) = %d, %v; want %d", name, got, ok, id)
		}
	}
	for _, name := range []string{
		"shared/README", "shared/00c0ffee-000123.sst", "shared/XYZ-c3-000123.sst",
		"shared/00c0ffee-c3-", "shared/00c0ffee-c3-a/b.sst", "chk-3/00c0ffee-c3-000123.sst",
		"shared/00c0ffee-c99999999999999999999-000123.sst",
	} {
		if id, ok := snapshot.SharedCreator(name); ok {
			t.Errorf("SharedCreator(%s) = %d, true; want not ours", name, id)
		}
	}
}
