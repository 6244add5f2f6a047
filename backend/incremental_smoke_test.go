package backend_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/pebblestate/pebblestate/backend"
	"github.com/pebblestate/pebblestate/snapshot"
)

func TestIncrementalSmoke(t *testing.T) {
	ctx := context.Background()
	st, _ := snapshot.NewLocal(filepath.Join(t.TempDir(), "chk"))
	opts := func(dir string, r backend.KeyGroupRange) backend.Options {
		return backend.Options{Dir: dir, KeyGroups: r, IncrementalCheckpoints: true, MemTableSize: 1 << 20}
	}
	all := backend.KeyGroupRange{Start: 0, End: 128}
	b, err := backend.Open(backend.Int64, opts(t.TempDir(), all))
	if err != nil {
		t.Fatal(err)
	}
	v, _ := backend.GetValue(b, backend.ValueDescriptor[int64]{Name: "v", Codec: backend.Int64})
	const n = 100_000
	for i := range int64(n) {
		_ = b.SetCurrentKey(i)
		_ = v.Update(i)
	}
	if err := b.Compact(ctx); err != nil {
		t.Fatal(err)
	}
	cp1, err := b.Checkpoint(ctx, st, 1)
	if err != nil {
		t.Fatal(err)
	}
	for i := int64(0); i < n; i += 100 {
		_ = b.SetCurrentKey(i)
		_ = v.Update(-i)
	}
	cp2, err := b.Checkpoint(ctx, st, 2)
	if err != nil {
		t.Fatal(err)
	}
	h1, h2 := cp1.Handles[0], cp2.Handles[0]
	t.Logf("cp1: %d/%d bytes, %d ssts; cp2: %d/%d bytes, %d ssts", h1.CheckpointedSize, h1.StateSize, len(h1.Shared), h2.CheckpointedSize, h2.StateSize, len(h2.Shared))
	if h2.CheckpointedSize*10 > h1.CheckpointedSize {
		t.Errorf("second checkpoint uploaded %d bytes, first %d", h2.CheckpointedSize, h1.CheckpointedSize)
	}
	id := b.InstanceID()
	b.Close()

	check := func(rb *backend.Backend[int64], r backend.KeyGroupRange) int {
		rv, _ := backend.GetValue(rb, backend.ValueDescriptor[int64]{Name: "v", Codec: backend.Int64})
		count := 0
		for k, err := range rv.KeysInNamespace(backend.VoidNamespace{}) {
			if err != nil {
				t.Fatal(err)
			}
			_ = rb.SetCurrentKey(k)
			got, ok, err := rv.Get()
			want := k
			if k%100 == 0 {
				want = -k
			}
			if !ok || err != nil || got != want {
				t.Fatalf("key %d: %d %v %v", k, got, ok, err)
			}
			count++
		}
		return count
	}
	// Same range: identity and history kept.
	rb, err := backend.Restore(ctx, backend.Int64, opts(t.TempDir(), all), st, cp2.Handles)
	if err != nil {
		t.Fatal(err)
	}
	if rb.InstanceID() != id {
		t.Errorf("instance id changed on same-range restore")
	}
	if c := check(rb, all); c != n {
		t.Fatalf("restored %d keys", c)
	}
	cp3, err := rb.Checkpoint(ctx, st, 3)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("cp3 after restore: %d/%d bytes", cp3.Handles[0].CheckpointedSize, cp3.Handles[0].StateSize)
	rb.Close()
	// Rescale out 1 -> 2, checkpoint both, rescale in 2 -> 1.
	var hs []snapshot.Handle
	total := 0
	for i := range 2 {
		r, _ := backend.KeyGroupRangeForSubtask(128, 2, i)
		o := opts(t.TempDir(), r)
		o.Operator = "default"
		xb, err := backend.Restore(ctx, backend.Int64, o, st, cp3.Handles)
		if err != nil {
			t.Fatal(err)
		}
		total += check(xb, r)
		s, err := xb.Snapshot(4, st)
		if err != nil {
			t.Fatal(err)
		}
		h, err := s.Run(ctx)
		if err != nil {
			t.Fatal(err)
		}
		hs = append(hs, h)
		xb.Close()
	}
	if total != n {
		t.Fatalf("rescale out restored %d keys", total)
	}
	if err := snapshot.Complete(ctx, st, &snapshot.Checkpoint{ID: 4, Handles: hs}, 1); err != nil {
		t.Fatal(err)
	}
	rb, err = backend.Restore(ctx, backend.Int64, opts(t.TempDir(), all), st, hs)
	if err != nil {
		t.Fatal(err)
	}
	if c := check(rb, all); c != n {
		t.Fatalf("rescale in restored %d keys", c)
	}
	rb.Close()
	names, _ := st.List(ctx, "")
	t.Logf("%d files in storage after retention", len(names))
}
