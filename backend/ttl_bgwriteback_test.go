package backend_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/pebblestate/pebblestate/backend"
	"github.com/pebblestate/pebblestate/snapshot"
	"github.com/pebblestate/pebblestate/ttl"
)

// TestTTLBackgroundWriteBack takes a full snapshot while the read buffer
// holds thousands of removals, and rewrites half of those keys while the
// snapshot's background write-back runs:
//
//   - the synchronous part writes nothing back (the buffer still holds
//     every key after it);
//   - the checkpoint holds the removals (the restored state has none of
//     the keys);
//   - no rewritten value is lost to the write-back, which must apply the
//     buffer as it is when it reaches a key, not the copy it started from;
//   - once the write-back is done, the buffer frees its keys: the next
//     snapshot finds it empty.
func TestTTLBackgroundWriteBack(t *testing.T) {
	const n = 20_000
	ctx := context.Background()
	env := ttlOpen(t, func(o *backend.Options) { o.TTLSweepInterval = -1 })
	cfg := ttl.Config{TTL: ttlD, Cleanup: ttl.Cleanup{DisableBackground: true}}
	desc := backend.ValueDescriptor[int64]{Name: "v", Codec: backend.Int64, TTL: cfg}
	v := ttlMust(backend.GetValue(env.b, desc)).in(t)
	key := func(i int) string { return fmt.Sprintf("k%05d", i) }
	for i := range n {
		env.setKey(key(i))
		ttlCheck(t, v.Update(int64(i)))
	}
	env.advance(ttlD) // all expired
	for i := range n {
		env.setKey(key(i))
		if _, ok, err := v.Get(); err != nil || ok {
			t.Fatalf("key %d: Get = %v, %v; want it expired", i, ok, err)
		}
	}
	if got := env.b.TTLMetrics().ReadBufferKeys; got != n {
		t.Fatalf("the buffer holds %d keys; want the %d removals", got, n)
	}

	st, err := snapshot.NewLocal(filepath.Join(t.TempDir(), "chk"))
	ttlCheck(t, err)
	snap, err := env.b.Snapshot(1, st)
	ttlCheck(t, err)
	if got := env.b.TTLMetrics().ReadBufferKeys; got != n {
		t.Fatalf("after the synchronous part the buffer holds %d keys; want all %d still (written back in the background)", got, n)
	}
	// Rewrite the even keys, in random order, while the write-back runs.
	rng := rand.New(rand.NewPCG(4, 5))
	for _, i := range rng.Perm(n / 2) {
		env.setKey(key(2 * i))
		ttlCheck(t, v.Update(int64(-2*i)))
	}
	h, err := snap.Run(ctx)
	ttlCheck(t, err)
	// The next snapshot waits for the write-back; then nothing is left.
	snap2, err := env.b.Snapshot(2, st)
	ttlCheck(t, err)
	snap2.Release()
	m := env.b.TTLMetrics()
	if m.ReadBufferKeys != 0 || m.ReadBufferBytes != 0 {
		t.Fatalf("after the write-back the buffer holds %d keys in %d bytes; want none", m.ReadBufferKeys, m.ReadBufferBytes)
	}
	for i := range n {
		env.setKey(key(i))
		got, ok, err := v.Get()
		if i%2 == 1 {
			if err != nil || ok {
				t.Fatalf("key %d: Get = %d, %v, %v; want it removed", i, got, ok, err)
			}
		} else if err != nil || !ok || got != int64(-i) {
			t.Fatalf("key %d: Get = %d, %v, %v; want the rewrite %d (lost to the write-back?)", i, got, ok, err, -i)
		}
	}
	t.Logf("written back %d of %d keys; the rest were rewritten first", m.ReadBufferWrittenBack, n)

	// The checkpoint holds the removals, not the rewrites.
	restored, err := backend.Restore(ctx, backend.String, backend.Options{Dir: t.TempDir(), Clock: env.clock}, st, []snapshot.Handle{h})
	ttlCheck(t, err)
	defer restored.Close()
	rv := ttlMust(backend.GetValue(restored, desc)).in(t)
	count := 0
	for _, err := range rv.KeysInNamespace(backend.VoidNamespace{}) {
		ttlCheck(t, err)
		count++
	}
	if count != 0 {
		t.Fatalf("the checkpoint restores %d keys; want none (reads removed them all before it)", count)
	}
}
