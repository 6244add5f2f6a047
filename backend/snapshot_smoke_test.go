package backend_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/pebblestate/pebblestate/backend"
	"github.com/pebblestate/pebblestate/snapshot"
)

func TestSnapshotSmoke(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	st, err := snapshot.NewLocal(filepath.Join(root, "chk"))
	if err != nil {
		t.Fatal(err)
	}
	for _, comp := range []string{"none", "snappy", "zstd", "s2"} {
		t.Run(comp, func(t *testing.T) {
			b, err := backend.Open(backend.Int64, backend.Options{Dir: t.TempDir(), SnapshotCompression: comp})
			if err != nil {
				t.Fatal(err)
			}
			v, _ := backend.GetValue(b, backend.ValueDescriptor[string]{Name: "v", Codec: backend.String})
			l, _ := backend.GetList(b, backend.ListDescriptor[int64]{Name: "l", Codec: backend.Int64})
			for i := range int64(5000) {
				_ = b.SetCurrentKey(i)
				_ = v.Update(fmt.Sprint("v", i))
				_ = l.Add(i)
				_ = l.Add(i + 1)
			}
			id := map[string]int64{"none": 1, "snappy": 2, "zstd": 3, "s2": 4}[comp]
			cp, err := b.Checkpoint(ctx, st, id)
			if err != nil {
				t.Fatal(err)
			}
			b.Close()
			t.Logf("%s: %d bytes, %d blocks", comp, cp.Handles[0].StateSize, len(cp.Handles[0].Blocks))
			// Restore into 3 instances.
			total := 0
			for i := range 3 {
				r, _ := backend.KeyGroupRangeForSubtask(128, 3, i)
				rb, err := backend.Restore(ctx, backend.Int64, backend.Options{Dir: t.TempDir(), KeyGroups: r}, st, cp.Handles)
				if err != nil {
					t.Fatal(err)
				}
				rv, _ := backend.GetValue(rb, backend.ValueDescriptor[string]{Name: "v", Codec: backend.String})
				rl, _ := backend.GetList(rb, backend.ListDescriptor[int64]{Name: "l", Codec: backend.Int64})
				for k, err := range rv.KeysInNamespace(backend.VoidNamespace{}) {
					if err != nil {
						t.Fatal(err)
					}
					_ = rb.SetCurrentKey(k)
					got, ok, err := rv.Get()
					es, err2 := rl.Get()
					if !ok || err != nil || got != fmt.Sprint("v", k) || err2 != nil || len(es) != 2 || es[0] != k {
						t.Fatalf("key %d: %q %v %v %v %v", k, got, ok, err, es, err2)
					}
					total++
				}
				rb.Close()
			}
			if total != 5000 {
				t.Fatalf("restored %d keys", total)
			}
		})
	}
}
