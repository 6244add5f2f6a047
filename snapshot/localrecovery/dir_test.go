package localrecovery_test

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/pebblestate/pebblestate/snapshot"
	"github.com/pebblestate/pebblestate/snapshot/localrecovery"
)

const inst = "0123456789abcdef0123456789abcdef"

// nativeCheckpoint writes a directory like the one a snapshot uploads:
// files named as Pebble names them, and a subdirectory that is skipped.
func nativeCheckpoint(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// names lists dir's entries.
func names(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}

func TestKeepLinksAndPathFinds(t *testing.T) {
	d := localrecovery.New(filepath.Join(t.TempDir(), "lr"))
	from := nativeCheckpoint(t, map[string]string{"000012.sst": "table", "MANIFEST-000007": "manifest"})
	kept, err := d.Keep(inst, 5, from)
	if err != nil || !kept {
		t.Fatalf("Keep = %v, %v", kept, err)
	}
	h := &snapshot.Handle{InstanceID: inst, CheckpointID: 5}
	p, ok := d.Path(h, "000012.sst")
	if !ok {
		t.Fatal("Path refused a plain name")
	}
	got, err := os.ReadFile(p)
	if err != nil || string(got) != "table" {
		t.Fatalf("copy = %q, %v", got, err)
	}
	// A hard link: the same file, not a copy.
	a, _ := os.Stat(p)
	b, _ := os.Stat(filepath.Join(from, "000012.sst"))
	if !os.SameFile(a, b) {
		t.Fatal("the copy is not a hard link of the checkpoint's file")
	}
	if n := names(t, filepath.Join(d.Root(), inst, "chk-5")); !slices.Equal(n, []string{"000012.sst", "MANIFEST-000007"}) {
		t.Fatalf("copy holds %v", n)
	}
	// A second Keep of the same checkpoint of the same instance (another
	// writer) keeps nothing and leaves the first copy alone.
	other := nativeCheckpoint(t, map[string]string{"000012.sst": "other"})
	if kept, err := d.Keep(inst, 5, other); err != nil || kept {
		t.Fatalf("second Keep = %v, %v", kept, err)
	}
	if got, _ := os.ReadFile(p); string(got) != "table" {
		t.Fatalf("second Keep changed the copy: %q", got)
	}
	if n := names(t, filepath.Join(d.Root(), inst)); !slices.Equal(n, []string{"chk-5"}) {
		t.Fatalf("instance directory holds %v", n)
	}
}

func TestDropKeepsNewerAndRemovesLeftovers(t *testing.T) {
	d := localrecovery.New(filepath.Join(t.TempDir(), "lr"))
	from := nativeCheckpoint(t, map[string]string{"000001.sst": "x"})
	for _, id := range []int64{3, 4, 6} {
		if _, err := d.Keep(inst, id, from); err != nil {
			t.Fatal(err)
		}
	}
	idir := filepath.Join(d.Root(), inst)
	// What a Keep killed before its rename leaves, and a stranger.
	for _, n := range []string{"chk-4.tmp-123", "chk-7.tmp-9", "notes"} {
		if err := os.Mkdir(filepath.Join(idir, n), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.Drop(inst, 6); err != nil {
		t.Fatal(err)
	}
	if n := names(t, idir); !slices.Equal(n, []string{"chk-6", "chk-7.tmp-9", "notes"}) {
		t.Fatalf("after Drop(6): %v", n)
	}
	if err := d.Remove(inst, 6); err != nil {
		t.Fatal(err)
	}
	if n := names(t, idir); !slices.Equal(n, []string{"chk-7.tmp-9", "notes"}) {
		t.Fatalf("after Remove(6): %v", n)
	}
	// An instance with nothing left loses its directory.
	if _, err := d.Keep("other", 1, from); err != nil {
		t.Fatal(err)
	}
	if err := d.Drop("other", 2); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(d.Root(), "other")); !os.IsNotExist(err) {
		t.Fatalf("empty instance directory stays: %v", err)
	}
	if err := d.Drop("never-kept", 9); err != nil {
		t.Fatalf("Drop of an unknown instance: %v", err)
	}
}

// Instance ids and names come from checkpoint metadata: none may reach
// outside the root.
func TestHostileNamesStayInside(t *testing.T) {
	root := filepath.Join(t.TempDir(), "lr")
	d := localrecovery.New(root)
	from := nativeCheckpoint(t, map[string]string{"a": "x"})
	for _, id := range []string{"", "..", ".", "../x", "a/b", `a\b`, "a b", string(make([]byte, 200))} {
		if _, ok := d.Path(&snapshot.Handle{InstanceID: id, CheckpointID: 1}, "a"); ok {
			t.Errorf("Path accepted instance id %q", id)
		}
		if _, err := d.Keep(id, 1, from); err == nil {
			t.Errorf("Keep accepted instance id %q", id)
		}
		if err := d.Drop(id, 9); err != nil {
			t.Errorf("Drop(%q): %v", id, err)
		}
	}
	for _, name := range []string{"", ".", "..", "../a", "x/a", `x\a`} {
		if _, ok := d.Path(&snapshot.Handle{InstanceID: inst, CheckpointID: 1}, name); ok {
			t.Errorf("Path accepted file name %q", name)
		}
	}
	if _, ok := d.Path(&snapshot.Handle{InstanceID: inst, CheckpointID: -1}, "a"); ok {
		t.Error("Path accepted checkpoint id -1")
	}
	if n := names(t, filepath.Dir(root)); len(n) != 0 {
		t.Fatalf("hostile names created %v", n)
	}
}
