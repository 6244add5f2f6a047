package backend_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/pebblestate/pebblestate/backend"
	"github.com/pebblestate/pebblestate/snapshot"
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
