package retention_test

import (
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/pebblestate/pebblestate/internal/storagetest"
	"github.com/pebblestate/pebblestate/snapshot"
	"github.com/pebblestate/pebblestate/snapshot/retention"
)

// Tests that retention and recovery never delete what they cannot read,
// and collect the debris of crashed checkpoints.

// twoIncremental commits incremental checkpoints 1 and 2 into st: 2
// reuses 1's shared file and uploads one of its own.
func twoIncremental(t *testing.T, st snapshot.Storage) (f1, f2 snapshot.SharedFile) {
	t.Helper()
	ctx := context.Background()
	f1 = storagetest.UploadShared(t, st, incInst, 1, "000001.sst")
	f2 = storagetest.UploadShared(t, st, incInst, 2, "000002.sst")
	if err := snapshot.Commit(ctx, st, storagetest.IncrementalCheckpoint(t, st, 1, map[string][]snapshot.SharedFile{incInst: {f1}})); err != nil {
		t.Fatal(err)
	}
	if err := snapshot.Commit(ctx, st, storagetest.IncrementalCheckpoint(t, st, 2, map[string][]snapshot.SharedFile{incInst: {f1, f2}})); err != nil {
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
				st := storagetest.NewLocal(t)
				f1, f2 := twoIncremental(t, st)
				raw, err := snapshot.ReadFile(ctx, st, snapshot.MetadataPath(2))
				if err != nil {
					t.Fatal(err)
				}
				storagetest.Replace(t, st, snapshot.MetadataPath(2), spoil(t, raw))
				before := storagetest.WalkRoot(t, st.Root())

				var rep *retention.Report
				if op == "Retain" {
					rep, err = retention.RetainWithReport(ctx, st, 1)
				} else {
					rep, err = retention.RecoverWithReport(ctx, st)
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
				if got := storagetest.WalkRoot(t, st.Root()); !slices.Equal(got, before) {
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
	st := storagetest.NewLocal(t)
	f1, f2 := twoIncremental(t, st)
	raw, _ := snapshot.ReadFile(ctx, st, snapshot.MetadataPath(2))
	storagetest.Replace(t, st, snapshot.MetadataPath(2), damage["flipped bit"](t, raw))
	f3 := storagetest.UploadShared(t, st, incInst, 3, "000003.sst")
	if err := retention.Complete(ctx, st, storagetest.IncrementalCheckpoint(t, st, 3, map[string][]snapshot.SharedFile{incInst: {f3}}), 1); !errors.Is(err, snapshot.ErrUnreadable) ||
		!strings.Contains(err.Error(), "checkpoint 3 committed") {
		t.Fatalf("Complete(3) = %v, want a committed checkpoint and ErrUnreadable", err)
	}
	if ids := storagetest.Completed(t, st); !slices.Equal(ids, []int64{2, 3}) {
		t.Fatalf("after Complete(3): %v, want 1 discarded, 2 kept", ids)
	}
	if got := storagetest.List(t, st, "shared/"); !slices.Equal(got, []string{f1.Name, f2.Name, f3.Name}) {
		t.Fatalf("shared/ = %v", got)
	}
	// Once a person removes it, retention collects what nobody references.
	if err := snapshot.Discard(ctx, st, 2); err != nil {
		t.Fatal(err)
	}
	if err := retention.Retain(ctx, st, 1); err != nil {
		t.Fatal(err)
	}
	if got := storagetest.List(t, st, "shared/"); !slices.Equal(got, []string{f3.Name}) {
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
	st := storagetest.NewLocal(t)
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
	storagetest.Put(t, st, "chk-2/inc-cccc/OPTIONS-000003", []byte("uploaded"))
	// Checkpoint 4 is in flight while 3 completes.
	inflight, err := st.Create(ctx, "chk-4/full-aaaa.dat")
	if err != nil {
		t.Fatal(err)
	}
	inflight.Write([]byte("in flight"))
	inflightShared := storagetest.UploadShared(t, st, incInst, 4, "000009.sst")
	cp3 := sampleCheckpoint(3)
	for _, h := range cp3.Handles {
		storagetest.Put(t, st, h.Files[0].Name, []byte("data"))
	}
	if err := retention.Complete(ctx, st, cp3, 2); err != nil {
		t.Fatal(err)
	}
	var chk2, tmp4 []string
	for _, p := range storagetest.WalkRoot(t, st.Root()) {
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
		t.Errorf("Retain touched checkpoint 4, in flight: %v", storagetest.WalkRoot(t, st.Root()))
	}
	if _, err := os.Stat(st.Path(inflightShared.Name)); err != nil {
		t.Errorf("Retain deleted an upload of checkpoint 4, in flight: %v", err)
	}
	if err := inflight.Commit(); err != nil {
		t.Fatalf("the in-flight upload cannot commit after Retain: %v", err)
	}
	if ids := storagetest.Completed(t, st); !slices.Equal(ids, []int64{1, 3}) {
		t.Fatalf("completed: %v", ids)
	}
}

func TestRetain(t *testing.T) {
	ctx := context.Background()
	st := storagetest.NewLocal(t)
	storagetest.Put(t, st, "chk-0/full-crashed.dat", []byte("debris, older than newest"))
	for id := int64(1); id <= 5; id++ {
		commitCheckpoint(t, st, id)
	}
	storagetest.Put(t, st, "chk-3/extra.dat", []byte("extra file of 3"))
	storagetest.Put(t, st, "chk-4/full-late.dat", []byte("kept with 4"))
	storagetest.Put(t, st, "chk-6/full-inflight.dat", []byte("in flight, newer than newest"))
	storagetest.Put(t, st, "shared/x.sst", []byte("shared"))
	if err := retention.Retain(ctx, st, 2); err != nil {
		t.Fatal(err)
	}
	if ids := storagetest.Completed(t, st); !slices.Equal(ids, []int64{4, 5}) {
		t.Fatalf("Completed after Retain(2) = %v", ids)
	}
	names := storagetest.List(t, st, "")
	for _, n := range names {
		if strings.HasPrefix(n, "chk-0/") || strings.HasPrefix(n, "chk-1/") ||
			strings.HasPrefix(n, "chk-2/") || strings.HasPrefix(n, "chk-3/") {
			t.Errorf("Retain left %s", n)
		}
	}
	for _, want := range []string{"chk-4/full-late.dat", "chk-6/full-inflight.dat", "shared/x.sst", "chk-5/full-aaaa.dat"} {
		if !slices.Contains(names, want) {
			t.Errorf("Retain removed %s", want)
		}
	}
	for _, p := range storagetest.WalkRoot(t, st.Root()) {
		if p == "chk-0/" || p == "chk-1/" || p == "chk-2/" || p == "chk-3/" {
			t.Errorf("Retain left the directory %s", p)
		}
	}
	// keep < 1 counts as 1.
	if err := retention.Retain(ctx, st, 0); err != nil {
		t.Fatal(err)
	}
	if ids := storagetest.Completed(t, st); !slices.Equal(ids, []int64{5}) {
		t.Fatalf("Completed after Retain(0) = %v", ids)
	}
	if err := retention.Retain(ctx, st, -3); err != nil {
		t.Fatal(err)
	}
	if ids := storagetest.Completed(t, st); !slices.Equal(ids, []int64{5}) {
		t.Fatalf("Completed after Retain(-3) = %v", ids)
	}
	// Nothing completed: nothing to do, debris stays (it may be in flight).
	st2 := storagetest.NewLocal(t)
	storagetest.Put(t, st2, "chk-1/full-x.dat", []byte("x"))
	if err := retention.Retain(ctx, st2, 1); err != nil {
		t.Fatal(err)
	}
	if got := storagetest.List(t, st2, ""); !slices.Equal(got, []string{"chk-1/full-x.dat"}) {
		t.Fatalf("Retain with nothing completed: %v", got)
	}
}

func TestRetainCorruptNewest(t *testing.T) {
	// A newest metadata that does not verify still counts for Retain (it
	// lists, it does not verify); the point here is that Retain never
	// deletes the newest verifiable checkpoint while keeping a corrupt one.
	ctx := context.Background()
	st := storagetest.NewLocal(t)
	commitCheckpoint(t, st, 1)
	commitCheckpoint(t, st, 2)
	storagetest.Put(t, st, snapshot.MetadataPath(3), []byte("corrupt"))
	rerr := retention.Retain(ctx, st, 1)
	if !errors.Is(rerr, snapshot.ErrUnreadable) {
		t.Errorf("Retain with a corrupt newest metadata = %v, want ErrUnreadable", rerr)
	}
	cp, err := snapshot.Latest(ctx, st)
	if err != nil {
		t.Fatalf("BUG: Retain(1) with a corrupt newest metadata (Retain = %v) discarded every verifiable checkpoint: Latest = %v (left %v)",
			rerr, err, storagetest.List(t, st, ""))
	}
	if cp.ID != 2 {
		t.Fatalf("Latest = %d", cp.ID)
	}
}

func TestRecover(t *testing.T) {
	ctx := context.Background()
	st := storagetest.NewLocal(t)
	commitCheckpoint(t, st, 1)
	commitCheckpoint(t, st, 2)
	storagetest.Put(t, st, "chk-3/full-a.dat", []byte("no metadata"))       // crashed before commit
	storagetest.Put(t, st, snapshot.MetadataPath(4), []byte("corrupt"))     // torn metadata
	storagetest.Put(t, st, "chk-4/full-b.dat", []byte("data of corrupt 4")) //
	storagetest.Put(t, st, "shared/s.sst", []byte("shared"))
	for _, p := range []string{"chk-2/full-c.dat.0123456789ab.tmp", "chk-5/full-d.dat.0123456789ab.tmp",
		"chk-4/full-e.dat.0123456789ab.tmp", "shared/t.sst.0123456789ab.tmp"} {
		if err := os.MkdirAll(st.Path(p[:strings.LastIndex(p, "/")]), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(st.Path(p), []byte("partial"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// Checkpoint 4's metadata exists but does not verify: Recover keeps it
	// with all its files, deletes nothing in shared/, and says so.
	rep, err := retention.RecoverWithReport(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Unreadable) != 1 || rep.Unreadable[0].ID != 4 || !slices.Equal(rep.Discarded, []int64{3}) || rep.SharedKept == "" {
		t.Fatalf("report %+v", rep)
	}
	if err := retention.Recover(ctx, st); !errors.Is(err, snapshot.ErrUnreadable) || !strings.Contains(err.Error(), "chk-4/_metadata") {
		t.Fatalf("Recover = %v, want ErrUnreadable naming chk-4/_metadata", err)
	}
	want := []string{
		"chk-1/", "chk-1/_metadata", "chk-1/full-aaaa.dat", "chk-1/full-bbbb.dat",
		"chk-2/", "chk-2/_metadata", "chk-2/full-aaaa.dat", "chk-2/full-bbbb.dat",
		"chk-4/", "chk-4/_metadata", "chk-4/full-b.dat", "chk-4/full-e.dat.0123456789ab.tmp",
		"shared/", "shared/s.sst", "shared/t.sst.0123456789ab.tmp",
	}
	if got := storagetest.WalkRoot(t, st.Root()); !slices.Equal(got, want) {
		t.Fatalf("after Recover:\n got %v\nwant %v", got, want)
	}
	// Once a person removes it, Recover cleans up the rest.
	if err := st.Delete(ctx, snapshot.MetadataPath(4)); err != nil {
		t.Fatal(err)
	}
	if err := retention.Recover(ctx, st); err != nil {
		t.Fatal(err)
	}
	want = []string{
		"chk-1/", "chk-1/_metadata", "chk-1/full-aaaa.dat", "chk-1/full-bbbb.dat",
		"chk-2/", "chk-2/_metadata", "chk-2/full-aaaa.dat", "chk-2/full-bbbb.dat",
		"shared/", "shared/s.sst",
	}
	if got := storagetest.WalkRoot(t, st.Root()); !slices.Equal(got, want) {
		t.Fatalf("after Recover:\n got %v\nwant %v", got, want)
	}
	if cp, err := snapshot.Latest(ctx, st); err != nil || cp.ID != 2 {
		t.Fatalf("Latest after Recover = %v, %v", cp, err)
	}
	// Idempotent.
	if err := retention.Recover(ctx, st); err != nil {
		t.Fatal(err)
	}
	if got := storagetest.WalkRoot(t, st.Root()); !slices.Equal(got, want) {
		t.Fatalf("after a second Recover: %v", got)
	}
}

func TestComplete(t *testing.T) {
	ctx := context.Background()
	st := storagetest.NewLocal(t)
	for id := int64(1); id <= 4; id++ {
		cp := sampleCheckpoint(id)
		for _, h := range cp.Handles {
			storagetest.Put(t, st, h.Files[0].Name, []byte("data"))
		}
		if err := retention.Complete(ctx, st, cp, 2); err != nil {
			t.Fatal(err)
		}
		want := []int64{id}
		if id > 1 {
			want = []int64{id - 1, id}
		}
		if ids := storagetest.Completed(t, st); !slices.Equal(ids, want) {
			t.Fatalf("after Complete(%d): %v", id, ids)
		}
	}
	// Completing an existing id fails and changes nothing.
	if err := retention.Complete(ctx, st, sampleCheckpoint(4), 1); err == nil {
		t.Fatal("Complete of an existing id succeeded")
	}
	if ids := storagetest.Completed(t, st); !slices.Equal(ids, []int64{3, 4}) {
		t.Fatalf("after a failed Complete: %v", ids)
	}
	if got := storagetest.List(t, st, ""); len(got) != 6 {
		t.Fatalf("files: %v", got)
	}
}
