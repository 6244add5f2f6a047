package snapshot_test

import (
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/pebblestate/pebblestate/snapshot"
)

// Tests that retention and recovery never delete what they cannot read,
// and collect the debris of crashed checkpoints.

// twoIncremental commits incremental checkpoints 1 and 2 into st: 2
// reuses 1's shared file and uploads one of its own.
func twoIncremental(t *testing.T, st snapshot.Storage) (f1, f2 snapshot.SharedFile) {
	t.Helper()
	ctx := context.Background()
	f1 = incUploadShared(t, st, incInst, 1, "000001.sst")
	f2 = incUploadShared(t, st, incInst, 2, "000002.sst")
	if err := snapshot.Commit(ctx, st, incCheckpointOf(t, st, 1, map[string][]snapshot.SharedFile{incInst: {f1}})); err != nil {
		t.Fatal(err)
	}
	if err := snapshot.Commit(ctx, st, incCheckpointOf(t, st, 2, map[string][]snapshot.SharedFile{incInst: {f1, f2}})); err != nil {
		t.Fatal(err)
	}
	return f1, f2
}

// damage rewrites checkpoint 2's metadata: one bit flipped, or the same
// body framed as a version this build does not read.
var damage = map[string]func(t *testing.T, b []byte) []byte{
	"flipped bit": func(t *testing.T, b []byte) []byte {
		b = slices.Clone(b)
		b[len(b)/2] ^= 0x10
		return b
	},
	"unknown version": func(t *testing.T, b []byte) []byte {
		b = slices.Clone(b)
		binary.BigEndian.PutUint32(b[8:], snapshot.MetadataVersion+1)
		binary.BigEndian.PutUint32(b[len(b)-4:], crc32.Checksum(b[:len(b)-4], crc32.MakeTable(crc32.Castagnoli)))
		return b
	},
}

// TestRetainAndRecoverKeepUnreadableCheckpoint guards issue 12's sixth
// loss: Recover deleted a checkpoint whose metadata it could not read (a
// newer version, or a flipped bit) with its shared files, and a restore
// then silently used the previous one.
func TestRetainAndRecoverKeepUnreadableCheckpoint(t *testing.T) {
	ctx := context.Background()
	for what, spoil := range damage {
		for _, op := range []string{"Retain", "Recover"} {
			t.Run(what+"/"+op, func(t *testing.T) {
				st := incLocalStorage(t)
				f1, f2 := twoIncremental(t, st)
				raw, err := snapshot.ReadFile(ctx, st, snapshot.MetadataPath(2))
				if err != nil {
					t.Fatal(err)
				}
				replaceFile(t, st, snapshot.MetadataPath(2), spoil(t, raw))
				before := walkRoot(t, st.Root())

				var rep *snapshot.Report
				if op == "Retain" {
					rep, err = snapshot.RetainWithReport(ctx, st, 1)
				} else {
					rep, err = snapshot.RecoverWithReport(ctx, st)
				}
				if err != nil {
					t.Fatal(err)
				}
				if len(rep.Unreadable) != 1 || rep.Unreadable[0].ID != 2 || !errors.Is(rep.Unreadable[0].Err, snapshot.ErrCorrupt) ||
					len(rep.Discarded) != 0 || rep.SharedDeleted != 0 || rep.SharedKept == "" {
					t.Fatalf("report %+v", rep)
				}
				if what == "unknown version" && !errors.Is(rep.Unreadable[0].Err, snapshot.ErrUnknownVersion) {
					t.Errorf("an unknown version is reported as %v", rep.Unreadable[0].Err)
				}
				err = rep.Err()
				if !errors.Is(err, snapshot.ErrUnreadable) || !strings.Contains(err.Error(), "chk-2/_metadata") {
					t.Errorf("Report.Err = %v", err)
				}
				if got := walkRoot(t, st.Root()); !slices.Equal(got, before) {
					t.Fatalf("%s changed the root:\n%v\nto\n%v", op, before, got)
				}
				for _, f := range []snapshot.SharedFile{f1, f2} {
					if _, err := os.Stat(st.Path(f.Name)); err != nil {
						t.Errorf("%s of checkpoint 2 deleted: %v", f.Name, err)
					}
				}
				// A restore looking for the latest says it passed over 2.
				cp, skipped, err := snapshot.LatestWithReport(ctx, st)
				if err != nil || cp.ID != 1 || len(skipped) != 1 || skipped[0].ID != 2 {
					t.Fatalf("LatestWithReport = %v, %+v, %v", cp, skipped, err)
				}
			})
		}
	}
}

// TestRetainKeepsUnreadableWhileNewerComplete: an unreadable checkpoint
// in the middle stays while newer checkpoints complete and older ones are
// discarded; shared files stay until it is gone.
func TestRetainKeepsUnreadableWhileNewerComplete(t *testing.T) {
	ctx := context.Background()
	st := incLocalStorage(t)
	f1, f2 := twoIncremental(t, st)
	raw, _ := snapshot.ReadFile(ctx, st, snapshot.MetadataPath(2))
	replaceFile(t, st, snapshot.MetadataPath(2), damage["flipped bit"](t, raw))
	f3 := incUploadShared(t, st, incInst, 3, "000003.sst")
	if err := snapshot.Complete(ctx, st, incCheckpointOf(t, st, 3, map[string][]snapshot.SharedFile{incInst: {f3}}), 1); !errors.Is(err, snapshot.ErrUnreadable) ||
		!strings.Contains(err.Error(), "checkpoint 3 committed") {
		t.Fatalf("Complete(3) = %v, want a committed checkpoint and ErrUnreadable", err)
	}
	if ids := incCompleted(t, st); !slices.Equal(ids, []int64{2, 3}) {
		t.Fatalf("after Complete(3): %v, want 1 discarded, 2 kept", ids)
	}
	if got := incListNames(t, st, "shared/"); !slices.Equal(got, []string{f1.Name, f2.Name, f3.Name}) {
		t.Fatalf("shared/ = %v", got)
	}
	// Once a person removes it, retention collects what nobody references.
	if err := snapshot.Discard(ctx, st, 2); err != nil {
		t.Fatal(err)
	}
	if err := snapshot.Retain(ctx, st, 1); err != nil {
		t.Fatal(err)
	}
	if got := incListNames(t, st, "shared/"); !slices.Equal(got, []string{f3.Name}) {
		t.Fatalf("shared/ = %v", got)
	}
}

// TestRetainCollectsCrashDebris guards issue 12's twelfth complaint: a
// crash mid-upload left a chk-N holding only temporary files that Retain
// never removed. Retain alone collects the debris of crashed checkpoints
// older than the newest completed one, and leaves newer ones, which may
// be in flight, alone.
func TestRetainCollectsCrashDebris(t *testing.T) {
	ctx := context.Background()
	st := incLocalStorage(t)
	commitCheckpoint(t, st, 1)
	// Checkpoint 2 crashes mid-upload: temporary files only, in chk-2 and
	// in shared/, and a partial directory of one committed private file.
	for _, name := range []string{"chk-2/full-aaaa.dat", "chk-2/inc-bbbb/MANIFEST-000001", snapshot.SharedName(incInst, 2, "000007.sst")} {
		w, err := st.Create(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte("half")) // never committed nor aborted
	}
	putFile(t, st, "chk-2/inc-cccc/OPTIONS-000003", []byte("uploaded"))
	// Checkpoint 4 is in flight while 3 completes.
	inflight, err := st.Create(ctx, "chk-4/full-aaaa.dat")
	if err != nil {
		t.Fatal(err)
	}
	inflight.Write([]byte("in flight"))
	inflightShared := incUploadShared(t, st, incInst, 4, "000009.sst")
	cp3 := sampleCheckpoint(3)
	putHandleFiles(t, st, cp3)
	if err := snapshot.Complete(ctx, st, cp3, 2); err != nil {
		t.Fatal(err)
	}
	var chk2, tmp4 []string
	for _, p := range walkRoot(t, st.Root()) {
		if strings.HasPrefix(p, "chk-2/") || strings.HasPrefix(p, "shared/"+incInst+"-c2-") {
			chk2 = append(chk2, p)
		}
		if strings.HasPrefix(p, "chk-4/") && strings.HasSuffix(p, ".tmp") {
			tmp4 = append(tmp4, p)
		}
	}
	if len(chk2) != 0 {
		t.Errorf("Retain left the debris of checkpoint 2: %v", chk2)
	}
	if len(tmp4) != 1 {
		t.Errorf("Retain touched checkpoint 4, in flight: %v", walkRoot(t, st.Root()))
	}
	if _, err := os.Stat(st.Path(inflightShared.Name)); err != nil {
		t.Errorf("Retain deleted an upload of checkpoint 4, in flight: %v", err)
	}
	if err := inflight.Commit(); err != nil {
		t.Fatalf("the in-flight upload cannot commit after Retain: %v", err)
	}
	if ids := completed(t, st); !slices.Equal(ids, []int64{1, 3}) {
		t.Fatalf("completed: %v", ids)
	}
}

// TestLocalSymlinkedRoot guards issue 12's eighth complaint: a root
// reached through a symbolic link looked empty, retention deleted
// nothing, and a checkpoint older than the newest overwrote a completed
// one.
func TestLocalSymlinkedRoot(t *testing.T) {
	ctx := context.Background()
	parent := t.TempDir()
	target := filepath.Join(parent, "target")
	link := filepath.Join(parent, "link")
	if err := os.MkdirAll(target, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	st, err := snapshot.NewLocal(link)
	if err != nil {
		t.Fatal(err)
	}
	if real, _ := filepath.EvalSymlinks(target); st.Root() != real {
		t.Errorf("Root() = %s, want %s", st.Root(), real)
	}
	for id := int64(1); id <= 5; id++ {
		cp := sampleCheckpoint(id)
		putHandleFiles(t, st, cp)
		if err := snapshot.Complete(ctx, st, cp, 2); err != nil {
			t.Fatal(err)
		}
	}
	if ids := completed(t, st); !slices.Equal(ids, []int64{4, 5}) {
		t.Fatalf("completed through the link: %v, want retention to keep 4 and 5", ids)
	}
	// A second Local on the link sees the same checkpoints.
	again, err := snapshot.NewLocal(link)
	if err != nil {
		t.Fatal(err)
	}
	if cp, err := snapshot.Latest(ctx, again); err != nil || cp.ID != 5 {
		t.Fatalf("Latest through the link = %v, %v", cp, err)
	}
	if err := snapshot.Commit(ctx, again, sampleCheckpoint(3)); !errors.Is(err, snapshot.ErrSubsumed) {
		t.Fatalf("Commit(3) after 5 = %v, want ErrSubsumed", err)
	}
	if err := snapshot.Commit(ctx, again, sampleCheckpoint(5)); !errors.Is(err, snapshot.ErrExist) {
		t.Fatalf("Commit(5) again = %v, want ErrExist", err)
	}
}

// TestLocalZeroValue guards issue 12's tenth complaint: a zero Local
// wrote chk-1/ into the working directory. Every method fails instead.
func TestLocalZeroValue(t *testing.T) {
	ctx := context.Background()
	wd := t.TempDir()
	t.Chdir(wd)
	for _, st := range []*snapshot.Local{{}, nil} {
		if w, err := st.Create(ctx, "chk-1/_metadata"); err == nil {
			_ = w.Abort()
			t.Error("Create succeeded")
		}
		if _, err := st.Open(ctx, "chk-1/_metadata"); err == nil {
			t.Error("Open succeeded")
		}
		if _, err := st.List(ctx, ""); err == nil {
			t.Error("List succeeded")
		}
		if err := st.Delete(ctx, "chk-1/_metadata"); err == nil {
			t.Error("Delete succeeded")
		}
		if err := st.RemoveTemp(ctx, func(string) bool { return true }); err == nil {
			t.Error("RemoveTemp succeeded")
		}
		if err := st.Sweep(); err == nil {
			t.Error("Sweep succeeded")
		}
		if _, err := st.LocalPath("chk-1/_metadata"); err == nil {
			t.Error("LocalPath succeeded")
		}
		if err := snapshot.Commit(ctx, st, sampleCheckpoint(1)); err == nil || !strings.Contains(err.Error(), "NewLocal") {
			t.Errorf("Commit = %v", err)
		}
		if err := snapshot.Retain(ctx, st, 1); err == nil {
			t.Error("Retain succeeded")
		}
		if err := snapshot.Recover(ctx, st); err == nil {
			t.Error("Recover succeeded")
		}
	}
	if _, err := snapshot.NewLocal(""); err == nil {
		t.Error(`NewLocal("") succeeded`)
	}
	if got := walkRoot(t, wd); len(got) != 0 {
		t.Fatalf("the working directory holds %v", got)
	}
}
