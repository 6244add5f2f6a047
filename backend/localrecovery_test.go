package backend_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/pebblestate/pebblestate/backend"
	"github.com/pebblestate/pebblestate/internal/s3test"
	"github.com/pebblestate/pebblestate/snapshot"
)

// withLocalRecovery sets local recovery and its directory.
func withLocalRecovery(l backend.LocalRecovery, dir string) tweak {
	return func(o *backend.Options) { o.LocalRecovery, o.LocalRecoveryDir = l, dir }
}

// copies lists what a local-recovery directory holds: instance/chk-<id>.
func copies(t testing.TB, root string) []string {
	t.Helper()
	var out []string
	insts, err := os.ReadDir(root)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	noErr(t, err)
	for _, in := range insts {
		cps, err := os.ReadDir(filepath.Join(root, in.Name()))
		noErr(t, err)
		for _, c := range cps {
			out = append(out, in.Name()+"/"+c.Name())
		}
	}
	return out
}

// handleFiles returns the number and total size of an incremental
// handle's files.
func handleFiles(cp *snapshot.Checkpoint) (n int, size int64) {
	for _, h := range cp.Handles {
		for _, f := range h.Files {
			n, size = n+1, size+f.Size
		}
		for _, f := range h.Shared {
			n, size = n+1, size+f.Size
		}
	}
	return n, size
}

// A backend checkpointing to S3 keeps its last completed checkpoint's
// files locally by default, and a restore at the same key groups on the
// same machine reads every file from there, downloading nothing.
func TestLocalRecoverySameRange(t *testing.T) {
	st := s3test.Start(t).Store(t, "checkpoints")
	lr := filepath.Join(t.TempDir(), "local")
	rng := rand.New(rand.NewPCG(1, 2))
	j := newJob(t, st, 1, func(int) bool { return true }, withLocalRecovery(backend.LocalRecoveryAuto, lr))
	j.bigState(3000)
	j.checkpoint(1, 1)
	iid := j.b().InstanceID()
	if got := copies(t, lr); !slices.Equal(got, []string{iid + "/chk-1"}) {
		t.Fatalf("after checkpoint 1 the local copies are %v", got)
	}
	j.apply(rng, 2000, 4000, "two")
	cp := j.checkpoint(2, 1)
	if got := copies(t, lr); !slices.Equal(got, []string{iid + "/chk-2"}) {
		t.Fatalf("after checkpoint 2 the local copies are %v, want only the last completed one", got)
	}
	model := j.model.clone()
	j.close()

	r := restoreJob(t, st, cp.Handles, 1, func(int) bool { return true }, model, withLocalRecovery(backend.LocalRecoveryAuto, lr))
	r.verify(model, "restored from the local copy")
	rs := r.b().Metrics().Restore
	n, size := handleFiles(cp)
	if rs.LocalFiles != n || rs.LocalBytes != size || rs.DownloadedBytes != 0 || rs.Bytes != size {
		t.Fatalf("restore stats %+v; the handle has %d files of %d bytes, all local", rs, n, size)
	}

	// On another machine (no copies), everything is downloaded.
	other := restoreJob(t, st, cp.Handles, 1, func(int) bool { return true }, model, withLocalRecovery(backend.LocalRecoveryAuto, filepath.Join(t.TempDir(), "elsewhere")))
	other.verify(model, "restored without local copies")
	if rs := other.b().Metrics().Restore; rs.LocalFiles != 0 || rs.LocalBytes != 0 || rs.DownloadedBytes != size {
		t.Fatalf("restore stats without copies %+v; want %d bytes downloaded", rs, size)
	}
}

// A damaged, truncated or missing local file is downloaded instead; the
// rest still comes from the local copy.
func TestLocalRecoveryDamagedCopy(t *testing.T) {
	st := s3test.Start(t).Store(t, "checkpoints")
	lr := filepath.Join(t.TempDir(), "local")
	j := newJob(t, st, 1, func(int) bool { return true }, withLocalRecovery(backend.LocalRecoveryOn, lr))
	j.bigState(4000)
	cp := j.checkpoint(1, 1)
	model := j.model.clone()
	j.close() // the copies are the closed database's files: damage them, not it
	h := cp.Handles[0]
	if len(h.Shared) < 3 {
		t.Fatalf("want 3 SSTs to damage, the handle has %d", len(h.Shared))
	}
	dir := filepath.Join(lr, h.InstanceID, "chk-1")
	var damaged int64
	// Replace, not write in place: the copy shares its inode with the
	// closed database's file, which the restore does not read.
	replace := func(name string, body func([]byte) []byte) {
		p := filepath.Join(dir, name)
		data, err := os.ReadFile(p)
		noErr(t, err)
		noErr(t, os.Remove(p))
		if body != nil {
			noErr(t, os.WriteFile(p, body(data), 0o644))
		}
		damaged += int64(len(data))
	}
	replace(h.Shared[0].LocalName, func(b []byte) []byte { b[len(b)/2] ^= 0x40; return b })
	replace(h.Shared[1].LocalName, func(b []byte) []byte { return b[:len(b)-1] })
	replace(h.Shared[2].LocalName, nil)

	r := restoreJob(t, st, cp.Handles, 1, func(int) bool { return true }, model, withLocalRecovery(backend.LocalRecoveryOn, lr))
	r.verify(model, "restored from a damaged local copy")
	n, size := handleFiles(cp)
	if rs := r.b().Metrics().Restore; rs.LocalFiles != n-3 || rs.DownloadedBytes != damaged || rs.LocalBytes != size-damaged {
		t.Fatalf("restore stats %+v; want %d files local and the %d damaged bytes downloaded", rs, n-3, damaged)
	}
}

// Rescaling reads the local copies of every old instance; once the new
// instances complete a checkpoint, the old instances' copies are gone and
// each new instance keeps its own.
func TestLocalRecoveryRescale(t *testing.T) {
	st := s3test.Start(t).Store(t, "checkpoints")
	lr := filepath.Join(t.TempDir(), "local")
	inc := func(int) bool { return true }
	tw := withLocalRecovery(backend.LocalRecoveryAuto, lr)
	j := newJob(t, st, 2, inc, tw)
	j.apply(rand.New(rand.NewPCG(3, 4)), 4000, 3000, "one")
	cp := j.checkpoint(1, 1)
	model := j.model.clone()
	old := copies(t, lr)
	j.close()
	if len(old) != 2 {
		t.Fatalf("two instances kept %v", old)
	}

	r := restoreJob(t, st, cp.Handles, 3, inc, model, tw)
	r.verify(model, "rescaled from local copies")
	for i, in := range r.insts {
		if rs := in.b.Metrics().Restore; rs.LocalFiles == 0 || rs.DownloadedBytes != 0 {
			t.Fatalf("instance %d: restore stats %+v, want every file from local copies", i, rs)
		}
	}
	r.apply(rand.New(rand.NewPCG(5, 6)), 500, 3000, "two")
	r.checkpoint(2, 1)
	var want []string
	for _, in := range r.insts {
		want = append(want, in.b.InstanceID()+"/chk-2")
	}
	slices.Sort(want)
	if got := copies(t, lr); !slices.Equal(got, want) {
		t.Fatalf("after the rescaled job's checkpoint the local copies are %v, want %v", got, want)
	}
}

// An aborted checkpoint leaves no copy; Off keeps none; Auto keeps none
// for Local storage, and On does.
func TestLocalRecoveryModes(t *testing.T) {
	ctx := context.Background()
	t.Run("Aborted", func(t *testing.T) {
		st := s3test.Start(t).Store(t, "checkpoints")
		lr := filepath.Join(t.TempDir(), "local")
		j := newJob(t, st, 1, func(int) bool { return true }, withLocalRecovery(backend.LocalRecoveryAuto, lr))
		j.bigState(500)
		j.checkpoint(1, 1)
		j.setV(1, "after")
		hs, err := runAll(ctx, j.snapshot(2))
		noErr(t, err)
		if len(hs) != 1 || len(copies(t, lr)) != 2 {
			t.Fatalf("an uploaded checkpoint is kept before it completes: %v", copies(t, lr))
		}
		noErr(t, j.b().NotifyCheckpointAborted(ctx, 2, st))
		if got := copies(t, lr); !slices.Equal(got, []string{j.b().InstanceID() + "/chk-1"}) {
			t.Fatalf("after the abort the local copies are %v", got)
		}
	})
	for _, c := range []struct {
		name string
		mode backend.LocalRecovery
		s3   bool
		kept bool
	}{
		{"OffS3", backend.LocalRecoveryOff, true, false},
		{"AutoLocal", backend.LocalRecoveryAuto, false, false},
		{"OnLocal", backend.LocalRecoveryOn, false, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			st := mode{s3: c.s3}.storage(t)
			lr := filepath.Join(t.TempDir(), "local")
			j := newJob(t, st, 1, func(int) bool { return true }, withLocalRecovery(c.mode, lr))
			j.bigState(500)
			cp := j.checkpoint(1, 1)
			model := j.model.clone()
			j.close()
			if got := copies(t, lr); (len(got) == 1) != c.kept {
				t.Fatalf("local copies %v, want kept %v", got, c.kept)
			}
			r := restoreJob(t, st, cp.Handles, 1, func(int) bool { return true }, model, withLocalRecovery(c.mode, lr))
			r.verify(model, "restored")
			if rs := r.b().Metrics().Restore; (rs.LocalFiles > 0) != c.kept || rs.LocalBytes+rs.DownloadedBytes != rs.Bytes {
				t.Fatalf("restore stats %+v, want local files %v", rs, c.kept)
			}
		})
	}
}

func TestLocalRecoveryOptions(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		o    backend.Options
		want string
	}{
		{backend.Options{Dir: dir, LocalRecoveryDir: dir}, "LocalRecoveryDir " + dir + " is Dir or inside it"},
		{backend.Options{Dir: dir, LocalRecoveryDir: filepath.Join(dir, "x")}, "is Dir or inside it"},
		{backend.Options{Dir: dir, LocalRecovery: 7}, "LocalRecovery LocalRecovery(7) is not Auto, On or Off"},
	} {
		_, err := backend.Open(backend.String, c.o)
		if !errors.Is(err, backend.ErrInvalidOptions) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Open(%+v) = %v, want %q", c.o, err, c.want)
		}
	}
	// Off needs no directory of its own, wherever it would be.
	o := backend.Options{Dir: dir, LocalRecovery: backend.LocalRecoveryOff, LocalRecoveryDir: dir}
	b, err := backend.Open(backend.String, o)
	noErr(t, err)
	noErr(t, b.Close())
	o.LocalRecoveryDir = ""
	if o.EnsureDefaults(); o.LocalRecoveryDir != filepath.Join(filepath.Dir(dir), "local-recovery") {
		t.Fatalf("default LocalRecoveryDir %s", o.LocalRecoveryDir)
	}
}
