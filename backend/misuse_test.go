package backend_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/pebblestate/pebblestate/backend"
	"github.com/pebblestate/pebblestate/snapshot"
	"github.com/pebblestate/pebblestate/ttl"
)

// TestSnapshotSameIDTwiceRefused guards the safety issue's "Snapshot(5)
// twice before Run fails later with no such file or directory": the second
// Snapshot of an id is refused at once, while the first is in flight and
// after it ran, until the checkpoint completes or is aborted.
func TestSnapshotSameIDTwiceRefused(t *testing.T) {
	for _, incremental := range []bool{false, true} {
		name := map[bool]string{false: "Full", true: "Incremental"}[incremental]
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			b, err := backend.Open(backend.String, backend.Options{Dir: filepath.Join(t.TempDir(), "b"), IncrementalCheckpoints: incremental})
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			st, err := snapshot.NewLocal(filepath.Join(t.TempDir(), "chk"))
			if err != nil {
				t.Fatal(err)
			}
			s1, err := b.Snapshot(5, st)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := b.Snapshot(5, st); !errors.Is(err, backend.ErrInvalidArgument) {
				t.Fatalf("second Snapshot(5) before Run: %v; want ErrInvalidArgument at once", err)
			}
			if _, err := s1.Run(ctx); err != nil {
				t.Fatalf("the first snapshot's Run: %v", err)
			}
			if _, err := b.Snapshot(5, st); !errors.Is(err, backend.ErrInvalidArgument) {
				t.Fatalf("Snapshot(5) after its Run, before completion: %v; want ErrInvalidArgument", err)
			}
			if err := b.NotifyCheckpointAborted(ctx, 5, st); err != nil {
				t.Fatal(err)
			}
			s2, err := b.Snapshot(5, st)
			if err != nil {
				t.Fatalf("Snapshot(5) after the abort: %v", err)
			}
			s2.Release()
			// A released snapshot frees its id too.
			s3, err := b.Snapshot(5, st)
			if err != nil {
				t.Fatalf("Snapshot(5) after a release: %v", err)
			}
			s3.Release()
		})
	}
}

// TestRegisterRejectsInvalidUTF8Name guards a silent loss: a state name
// that is not valid UTF-8 was stored as U+FFFD in its JSON record, so on
// reopen the state got a new id and its data was dropped as an orphan's.
func TestRegisterRejectsInvalidUTF8Name(t *testing.T) {
	b, err := backend.Open(backend.String, backend.Options{Dir: filepath.Join(t.TempDir(), "b")})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	_, err = backend.GetValue(b, backend.ValueDescriptor[int64]{Name: "bad\xff", Codec: backend.Int64})
	if !errors.Is(err, backend.ErrInvalidArgument) {
		t.Fatalf("GetValue with name %q: %v; want ErrInvalidArgument", "bad\xff", err)
	}
}

// TestRegisterAgainWithOtherTTLConfigRefused guards the safety issue's
// case 9: registering a state again with another TTL config silently
// returned the first handle, which judges expiry by the first config. It
// is ErrIncompatibleState now; the same config again is the same handle.
func TestRegisterAgainWithOtherTTLConfigRefused(t *testing.T) {
	b := MustOpen(t)
	hour := ttl.Config{TTL: time.Hour}
	d := backend.ValueDescriptor[int64]{Name: "v", Codec: backend.Int64, TTL: hour}
	first := must(backend.GetValue(b, d)).in(t)
	if again := must(backend.GetValue(b, d)).in(t); again != first {
		t.Fatal("the same descriptor again returned another handle")
	}
	for _, cfg := range []ttl.Config{
		{},
		{TTL: 2 * time.Hour},
		{TTL: time.Hour, Update: ttl.OnReadAndWrite},
		{TTL: time.Hour, Visibility: ttl.ReturnExpiredIfNotCleanedUp},
		{TTL: time.Hour, Cleanup: ttl.Cleanup{FullSnapshot: true}},
	} {
		other := d
		other.TTL = cfg
		if _, err := backend.GetValue(b, other); !errors.Is(err, backend.ErrIncompatibleState) {
			t.Errorf("GetValue with TTL config %+v after %+v: %v; want ErrIncompatibleState", cfg, hour, err)
		}
	}
	l := backend.ListDescriptor[int64]{Name: "l", Codec: backend.Int64}
	must(backend.GetList(b, l)).in(t)
	l.TTL = hour
	if _, err := backend.GetList(b, l); !errors.Is(err, backend.ErrIncompatibleState) {
		t.Errorf("GetList with TTL after without: %v; want ErrIncompatibleState", err)
	}
}
