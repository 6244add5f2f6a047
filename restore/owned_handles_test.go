package restore_test

import (
	"context"
	"errors"
	"testing"

	"github.com/pebblestate/pebblestate/internal/invariants"
	"github.com/pebblestate/pebblestate/internal/keygroup"
	"github.com/pebblestate/pebblestate/internal/keys"
	"github.com/pebblestate/pebblestate/restore"
)

// TestRestoreHandlesChecksOwnership runs Handles with its ownership check
// (which runs under the invariants tag): a restore of part of a
// checkpoint's key groups passes it, and a target that already held an
// entry of another key group, as a base database left unclipped would,
// fails it with a panic under the tag and goes unnoticed without.
func TestRestoreHandlesChecksOwnership(t *testing.T) {
	ctx := context.Background()
	st := frStorage(t)
	cp := frCheckpoint(t, st, 1, frSource(t, 2, 0, "snappy"), frSource(t, 2, 1, "none"))
	r := keygroup.Range{Start: 30, End: 100}

	t.Run("owned only", func(t *testing.T) {
		tg, _ := frTarget(t, r, frIDs)
		var err error
		if v := panicOf(func() { _, err = restore.Handles(ctx, st, cp.Handles, tg) }); v != nil {
			t.Fatalf("restoring key groups %s panicked: %v", r, v)
		}
		must(t, err)
		if len(frDump(t, tg.DB)) == 0 {
			t.Fatal("nothing restored")
		}
	})

	t.Run("stray entry", func(t *testing.T) {
		tg, _ := frTarget(t, r, frIDs)
		stray := append(keys.AppendKeyGroup(keys.AppendStateID(nil, frIDs["v"]), r.Start-1, 1), "left over"...)
		must(t, tg.DB.Set(stray, []byte("x")))
		var err error
		v := panicOf(func() { _, err = restore.Handles(ctx, st, cp.Handles, tg) })
		if !invariants.Enabled {
			if v != nil {
				t.Fatalf("without the invariants tag, Handles panicked: %v", v)
			}
			must(t, err)
			return
		}
		if perr, _ := v.(error); !errors.Is(perr, invariants.ErrViolated) {
			t.Fatalf("with the invariants tag, Handles over a stray entry: panic %v, error %v; want a panic with ErrViolated", v, err)
		}
	})
}

// panicOf runs fn and returns what it panicked with, or nil.
func panicOf(fn func()) (v any) {
	defer func() { v = recover() }()
	fn()
	return nil
}
