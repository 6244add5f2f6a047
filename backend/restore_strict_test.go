package backend_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/pebblestate/pebblestate/backend"
	"github.com/pebblestate/pebblestate/snapshot"
	"github.com/pebblestate/pebblestate/snapshot/retention"
)

// Regression tests of the safety issue's silent losses: a restore returns
// everything the checkpoint promised for the key groups it is asked for,
// or an error.

// strictHandles writes keys k0..k199 into backends of the given ranges of
// one operator, snapshots each for checkpoint 1 and returns the storage
// and the handles, uncommitted, as a framework holds them before its
// commit.
func strictHandles(t *testing.T, incremental bool, ranges ...backend.KeyGroupRange) (*snapshot.Local, []snapshot.Handle) {
	t.Helper()
	ctx := context.Background()
	st, err := snapshot.NewLocal(filepath.Join(t.TempDir(), "chk"))
	if err != nil {
		t.Fatal(err)
	}
	var handles []snapshot.Handle
	for i, r := range ranges {
		b, err := backend.Open(backend.String, backend.Options{
			Dir: filepath.Join(t.TempDir(), fmt.Sprint(i)), MaxParallelism: 128, KeyGroups: r,
			Operator: "op", IncrementalCheckpoints: incremental})
		if err != nil {
			t.Fatal(err)
		}
		v, err := backend.GetValue(b, backend.ValueDescriptor[int64]{Name: "v", Codec: backend.Int64})
		if err != nil {
			t.Fatal(err)
		}
		for k := range 200 {
			if err := b.SetCurrentKey(fmt.Sprint("k", k)); errors.Is(err, backend.ErrKeyGroupOutOfRange) {
				continue
			} else if err != nil {
				t.Fatal(err)
			}
			if err := v.Update(int64(k)); err != nil {
				t.Fatal(err)
			}
		}
		s, err := b.Snapshot(1, st)
		if err != nil {
			t.Fatal(err)
		}
		h, err := s.Run(ctx)
		if err != nil {
			t.Fatal(err)
		}
		handles = append(handles, h)
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return st, handles
}

// TestRestoreRefusesOtherOperator guards "a restore whose Options.Operator
// differs from the writer's returns an empty backend, no error".
func TestRestoreRefusesOtherOperator(t *testing.T) {
	for _, incremental := range []bool{false, true} {
		t.Run(fmt.Sprint("incremental=", incremental), func(t *testing.T) {
			ctx := context.Background()
			dir := filepath.Join(t.TempDir(), "w")
			b, err := backend.Open(backend.String, backend.Options{Dir: dir, Operator: "writer", IncrementalCheckpoints: incremental})
			if err != nil {
				t.Fatal(err)
			}
			v, err := backend.GetValue(b, backend.ValueDescriptor[int64]{Name: "v", Codec: backend.Int64})
			if err != nil {
				t.Fatal(err)
			}
			if err := b.SetCurrentKey("a"); err != nil {
				t.Fatal(err)
			}
			if err := v.Update(1); err != nil {
				t.Fatal(err)
			}
			st, err := snapshot.NewLocal(filepath.Join(t.TempDir(), "chk"))
			if err != nil {
				t.Fatal(err)
			}
			cp, err := b.Checkpoint(ctx, st, 1)
			if err != nil {
				t.Fatal(err)
			}
			if err := b.Close(); err != nil {
				t.Fatal(err)
			}
			r, err := backend.Restore(ctx, backend.String, backend.Options{Dir: filepath.Join(t.TempDir(), "r"), Operator: "reader"}, st, cp.Handles)
			if err == nil {
				_ = r.Close()
				t.Fatal("restore of another operator's checkpoint succeeded; want ErrIncomplete")
			}
			if !errors.Is(err, snapshot.ErrIncomplete) {
				t.Fatalf("restore of another operator's checkpoint: %v; want ErrIncomplete", err)
			}
		})
	}
}

// TestRestoreRefusesPartialCoverage guards "restoring all 128 key groups
// yields 1,042 of 2,000 keys, no error": handles that leave key groups
// out cannot restore them.
func TestRestoreRefusesPartialCoverage(t *testing.T) {
	for _, incremental := range []bool{false, true} {
		t.Run(fmt.Sprint("incremental=", incremental), func(t *testing.T) {
			ctx := context.Background()
			st, hs := strictHandles(t, incremental, backend.KeyGroupRange{Start: 0, End: 64})
			h := hs[0]
			opts := backend.Options{Dir: filepath.Join(t.TempDir(), "r"), Operator: "op"}
			r, err := backend.Restore(ctx, backend.String, opts, st, []snapshot.Handle{h})
			if err == nil {
				_ = r.Close()
				t.Fatal("restore of all key groups from a handle of [0, 64) succeeded; want ErrIncomplete")
			}
			if !errors.Is(err, snapshot.ErrIncomplete) {
				t.Fatalf("restore of [0, 128) from [0, 64): %v; want ErrIncomplete", err)
			}
			// The key groups it does cover restore.
			opts = backend.Options{Dir: filepath.Join(t.TempDir(), "r2"), Operator: "op", KeyGroups: backend.KeyGroupRange{Start: 0, End: 64}}
			r, err = backend.Restore(ctx, backend.String, opts, st, []snapshot.Handle{h})
			if err != nil {
				t.Fatalf("restore of [0, 64) from its handle: %v", err)
			}
			if err := r.Close(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestRestoreFromRootReportsSkippedNewerCheckpoint guards "Recover
// deletes a checkpoint whose _metadata it cannot read (a newer format
// version, or one flipped bit), with its shared files; RestoreFromPath(root)
// then silently restores the previous checkpoint". Recover keeps the
// unreadable checkpoint and its files; RestoreFromPath and RestoreLatest
// report that they passed over it, and why, and log it.
func TestRestoreFromRootReportsSkippedNewerCheckpoint(t *testing.T) {
	damages := []struct {
		name   string
		damage func(t testing.TB, p string)
		want   error
	}{
		{"bit flip", func(t testing.TB, p string) { rewrite(t, p, func(b []byte) []byte { b[len(b)/2] ^= 0x08; return b }) }, snapshot.ErrCorrupt},
		{"newer version", func(t testing.TB, p string) { reframe(t, p, snapshot.MetadataVersion+1, nil) }, snapshot.ErrUnknownVersion},
	}
	forEachMode(t, func(t *testing.T, m mode) {
		for _, d := range damages {
			t.Run(d.name, func(t *testing.T) {
				ctx := context.Background()
				st, models, _ := checkpointed(t, m, "snappy", 1, 2)
				d.damage(t, st.Path(snapshot.MetadataPath(2)))
				before := tree(t, st.Root())
				if err := retention.Recover(ctx, st); !errors.Is(err, snapshot.ErrUnreadable) {
					t.Fatalf("Recover with an unreadable chk-2: %v; want ErrUnreadable", err)
				}
				if after := tree(t, st.Root()); !slices.Equal(after, before) {
					t.Fatalf("Recover changed the root from\n%v\nto\n%v", before, after)
				}
				for _, latest := range []bool{false, true} {
					var buf bytes.Buffer
					opts := backend.Options{Dir: filepath.Join(t.TempDir(), "r"), Logger: slog.New(slog.NewTextHandler(&buf, nil))}
					var b *backend.Backend[int64]
					var report backend.RestoreReport
					var err error
					if latest {
						b, report, err = backend.RestoreLatest(ctx, backend.Int64, opts, st)
					} else {
						b, report, err = backend.RestoreFromPath(ctx, backend.Int64, opts, st.Root())
					}
					noErr(t, err)
					closeAtEnd(t, b, opts.Dir)
					if report.Checkpoint == nil || report.Checkpoint.ID != 1 {
						t.Fatalf("restored %+v; want checkpoint 1", report.Checkpoint)
					}
					if len(report.Skipped) != 1 || report.Skipped[0].ID != 2 || !errors.Is(report.Skipped[0].Err, d.want) ||
						!strings.Contains(report.Skipped[0].Err.Error(), st.Path(snapshot.MetadataPath(2))) {
						t.Fatalf("report passed over %+v; want checkpoint 2 with an error wrapping %v and naming its metadata", report.Skipped, d.want)
					}
					logged := strings.Split(strings.TrimSpace(buf.String()), "\n")
					if len(logged) != 1 || !strings.Contains(logged[0], "passed over checkpoint 2") {
						t.Fatalf("logged %q; want one line saying checkpoint 2 was passed over", logged)
					}
					fxEqual(t, "checkpoint 1", fxRead(t, b), models[0])
				}
			})
		}
	})
}

// TestRestoreRefusesCheckpointWithoutHandles: a checkpoint that holds no
// state at all is valid, but a restore from it finds nothing for its
// operator, and that is an error, not an empty backend.
func TestRestoreRefusesCheckpointWithoutHandles(t *testing.T) {
	ctx := context.Background()
	st, err := snapshot.NewLocal(filepath.Join(t.TempDir(), "chk"))
	if err != nil {
		t.Fatal(err)
	}
	if err := snapshot.Commit(ctx, st, &snapshot.Checkpoint{ID: 1}); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "r")
	b, report, err := backend.RestoreLatest(ctx, backend.String, backend.Options{Dir: dir}, st)
	if err == nil {
		_ = b.Close()
		t.Fatal("restore of a checkpoint without handles succeeded; want ErrIncomplete")
	}
	if !errors.Is(err, snapshot.ErrIncomplete) || report.Checkpoint == nil || report.Checkpoint.ID != 1 {
		t.Fatalf("restore of a checkpoint without handles: %v (checkpoint %+v); want ErrIncomplete from checkpoint 1", err, report.Checkpoint)
	}
	b, err = backend.Open(backend.String, backend.Options{Dir: dir})
	if err != nil {
		t.Fatalf("the refused restore left %s unusable: %v", dir, err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
}
