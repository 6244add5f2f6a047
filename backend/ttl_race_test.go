package backend_test

// Background TTL cleanup racing the task: CleanupExpired loops on its own
// goroutine and the worker sweeps every millisecond, while the task (the
// test goroutine, the only one touching states) rewrites keys that were
// expired when cleanup scanned them. Cleanup confirms every removal under
// the write lock, so no rewritten value may ever be lost. Run with -race.

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pebblestate/pebblestate/backend"
	"github.com/pebblestate/pebblestate/snapshot"
	"github.com/pebblestate/pebblestate/ttl"
)

// ttlCleanupLoop runs CleanupExpired over and over on another goroutine
// until the returned stop is called, which waits for it and returns the
// number of passes.
func ttlCleanupLoop(t *testing.T, b *backend.Backend[string]) (stop func() int) {
	ctx, cancel := context.WithCancel(context.Background())
	var passes atomic.Int64
	var wg sync.WaitGroup
	wg.Go(func() {
		for ctx.Err() == nil {
			if err := b.CleanupExpired(ctx); err != nil && !errors.Is(err, context.Canceled) {
				t.Errorf("CleanupExpired: %v", err)
				return
			}
			passes.Add(1)
		}
	})
	return func() int {
		cancel()
		wg.Wait()
		return int(passes.Load())
	}
}

// ttlRaceOpts sweeps every 20 milliseconds besides the CleanupExpired
// loop.
func ttlRaceOpts(o *backend.Options) { o.TTLSweepInterval = 20 * time.Millisecond }

func TestTTLRaceValueRewrite(t *testing.T) {
	const n = 20_000
	env := newEnv(t, ttlRaceOpts)
	desc := backend.ValueDescriptor[int64]{Name: "v", Codec: backend.Int64, TTL: ttl.Config{TTL: ttlD}}
	v := must(backend.GetValue(env.b, desc)).in(t)
	for i := range n {
		env.setKey(fmt.Sprintf("k%05d", i))
		noErr(t, v.Update(int64(i)))
	}
	noErr(t, env.b.Flush()) // removals confirm against sstables
	env.advance(ttlD)       // every key expired; the clock stays here

	rng := rand.New(rand.NewPCG(1, 2))
	rewritten := rng.Perm(n)[:n/2]
	latest := map[int]int64{}
	stop := ttlCleanupLoop(t, env.b)
	for round := range 2 {
		rng.Shuffle(len(rewritten), func(i, j int) { rewritten[i], rewritten[j] = rewritten[j], rewritten[i] })
		for j, i := range rewritten {
			env.setKey(fmt.Sprintf("k%05d", i))
			val := int64((round+1)*1_000_000 + i)
			noErr(t, v.Update(val))
			latest[i] = val
			if round == 0 && j == len(rewritten)/2 {
				noErr(t, env.b.Flush()) // the worker scans the flushed spans too
			}
		}
	}
	removedDuringWrites := env.b.TTLMetrics().BackgroundRemoved
	passes := stop()
	t.Logf("%d CleanupExpired passes; %d entries removed while the task wrote; metrics %+v", passes, removedDuringWrites, env.b.TTLMetrics())
	if removedDuringWrites == 0 {
		t.Log("note: cleanup removed nothing while the task was writing; the race was not exercised this run")
	}

	// What is stored is exactly the latest value of every rewritten key,
	// once cleanup removed the rest. (Read raw: point reads of 20k keys
	// are slow in Pebble's race builds.)
	noErr(t, env.b.CleanupExpired(context.Background()))
	raw := env.raw()
	stored := map[int]int64{}
	for _, e := range raw.entries(t, "v") {
		u := userInt64(t, e.value)
		stored[int(u%1_000_000)] = u
	}
	for i, want := range latest {
		if got, ok := stored[i]; !ok || got != want {
			t.Fatalf("key %d rewritten to %d after expiry stores %d, %v: background cleanup lost a write", i, want, got, ok)
		}
	}
	if len(stored) != len(latest) {
		t.Fatalf("%d entries stored; want the %d rewritten", len(stored), len(latest))
	}
	// Reads agree, on a sample.
	env.open()
	v = must(backend.GetValue(env.b, desc)).in(t)
	for i := 0; i < n; i += 97 {
		env.setKey(fmt.Sprintf("k%05d", i))
		got, ok, err := v.Get()
		noErr(t, err)
		if want, rewrote := latest[i]; ok != rewrote || got != want {
			t.Fatalf("key %d: Get = %d, %v; want %d, %v", i, got, ok, want, rewrote)
		}
	}
}

func TestTTLRaceListAdd(t *testing.T) {
	const n = 5_000
	env := newEnv(t, ttlRaceOpts)
	desc := backend.ListDescriptor[int64]{Name: "l", Codec: backend.Int64, TTL: ttl.Config{TTL: ttlD}}
	l := must(backend.GetList(env.b, desc)).in(t)
	for i := range n {
		env.setKey(fmt.Sprintf("k%05d", i))
		noErr(t, l.Add(-1))
		noErr(t, l.Add(-2))
	}
	env.advance(ttlD)

	rng := rand.New(rand.NewPCG(3, 4))
	added := rng.Perm(n)[:n/2]
	stop := ttlCleanupLoop(t, env.b)
	for round := range 2 {
		rng.Shuffle(len(added), func(i, j int) { added[i], added[j] = added[j], added[i] })
		for _, i := range added {
			env.setKey(fmt.Sprintf("k%05d", i))
			noErr(t, l.Add(int64(round*1_000_000+i)))
		}
	}
	passes := stop()
	t.Logf("%d CleanupExpired passes; metrics %+v", passes, env.b.TTLMetrics())

	want := map[int]bool{}
	for _, i := range added {
		want[i] = true
	}
	for i := range n {
		env.setKey(fmt.Sprintf("k%05d", i))
		got, err := l.Get()
		noErr(t, err)
		if want[i] {
			if exp := []int64{int64(i), int64(1_000_000 + i)}; !slices.Equal(got, exp) {
				t.Fatalf("key %d: list = %v; want %v (elements added after expiry lost or expired ones kept)", i, got, exp)
			}
		} else if len(got) != 0 {
			t.Fatalf("key %d: list = %v; want empty", i, got)
		}
	}
	noErr(t, env.b.CleanupExpired(context.Background()))
	raw := env.raw()
	if got, units := len(raw.entries(t, "l")), raw.units(t, "l"); got != len(want) || units != 2*len(want) {
		t.Fatalf("%d lists of %d elements on disk; want %d lists of 2", got, units, len(want))
	}
}

func TestTTLRaceMapPut(t *testing.T) {
	const keys, perKey = 1_000, 5
	env := newEnv(t, ttlRaceOpts)
	desc := backend.MapDescriptor[int64, int64]{Name: "m", KeyCodec: backend.Int64, ValueCodec: backend.Int64, TTL: ttl.Config{TTL: ttlD}}
	m := must(backend.GetMap(env.b, desc)).in(t)
	for i := range keys {
		env.setKey(fmt.Sprintf("k%05d", i))
		for j := range perKey {
			noErr(t, m.Put(int64(j), -1))
		}
	}
	env.advance(ttlD)

	rng := rand.New(rand.NewPCG(5, 6))
	slots := rng.Perm(keys * perKey)[:keys*perKey/2]
	latest := map[int]int64{}
	stop := ttlCleanupLoop(t, env.b)
	for round := range 2 {
		rng.Shuffle(len(slots), func(i, j int) { slots[i], slots[j] = slots[j], slots[i] })
		for _, s := range slots {
			env.setKey(fmt.Sprintf("k%05d", s/perKey))
			val := int64(round*1_000_000 + s)
			noErr(t, m.Put(int64(s%perKey), val))
			latest[s] = val
		}
	}
	passes := stop()
	t.Logf("%d CleanupExpired passes; metrics %+v", passes, env.b.TTLMetrics())

	for i := range keys {
		env.setKey(fmt.Sprintf("k%05d", i))
		var gotKeys []int64
		for e, err := range m.Entries() {
			noErr(t, err)
			s := i*perKey + int(e.Key)
			if want, ok := latest[s]; !ok || e.Value != want {
				t.Fatalf("key %d map key %d = %d; want %d (present: %v)", i, e.Key, e.Value, want, ok)
			}
			gotKeys = append(gotKeys, e.Key)
		}
		var wantKeys []int64
		for j := range perKey {
			if _, ok := latest[i*perKey+j]; ok {
				wantKeys = append(wantKeys, int64(j))
			}
		}
		if !slices.Equal(gotKeys, wantKeys) {
			t.Fatalf("key %d: map keys %v; want %v (a put after expiry was lost)", i, gotKeys, wantKeys)
		}
	}
	noErr(t, env.b.CleanupExpired(context.Background()))
	if got := len(env.raw().entries(t, "m")); got != len(latest) {
		t.Fatalf("%d map entries on disk; want %d", got, len(latest))
	}
}

// TestTTLRaceRefreshedReads reads, under OnReadAndWrite, values whose
// stamps the reads refresh, while cleanup loops beside the task, confirming
// every removal under the write lock, and full snapshots run in the
// background. Keys last read before the clock moved past their stamp must
// go, keys read since must stay; -race checks the synchronization.
func TestTTLRaceRefreshedReads(t *testing.T) {
	const n = 10_000
	env := newEnv(t, ttlRaceOpts)
	desc := backend.ValueDescriptor[int64]{Name: "v", Codec: backend.Int64, TTL: ttl.Config{TTL: ttlD, Update: ttl.OnReadAndWrite}}
	v := must(backend.GetValue(env.b, desc)).in(t)
	for i := range n {
		env.setKey(fmt.Sprintf("k%05d", i))
		noErr(t, v.Update(int64(i)))
	}
	noErr(t, env.b.Flush())
	// Read the even keys when half the TTL has passed, refreshing their
	// stamps. Then move the clock to where the first stamps of all keys are
	// expired, but the refreshed ones are not.
	env.advance(ttlD / 2)
	for i := 0; i < n; i += 2 {
		env.setKey(fmt.Sprintf("k%05d", i))
		if _, ok, err := v.Get(); err != nil || !ok {
			t.Fatalf("key %d: Get = %v, %v before expiry", i, ok, err)
		}
	}
	env.advance(ttlD / 2)

	stop := ttlCleanupLoop(t, env.b)
	st, err := snapshot.NewLocal(filepath.Join(t.TempDir(), "chk"))
	noErr(t, err)
	rng := rand.New(rand.NewPCG(7, 8))
	for round := range 3 {
		// A full snapshot each round, written on another goroutine while
		// the task reads on and cleanup loops.
		snap, err := env.b.Snapshot(int64(round+1), st)
		noErr(t, err)
		var wg sync.WaitGroup
		wg.Go(func() {
			if _, err := snap.Run(context.Background()); err != nil {
				t.Errorf("snapshot %d: %v", round+1, err)
			}
		})
		// A state registered meanwhile, beside the snapshot and cleanup.
		other := backend.ValueDescriptor[int64]{Name: fmt.Sprint("other", round), Codec: backend.Int64, TTL: desc.TTL}
		must(backend.GetValue(env.b, other)).in(t)
		for _, i := range rng.Perm(n / 2) {
			env.setKey(fmt.Sprintf("k%05d", 2*i))
			got, ok, err := v.Get()
			if err != nil || !ok || got != int64(2*i) {
				t.Fatalf("key %d: Get = %d, %v, %v; want it kept alive by its read", 2*i, got, ok, err)
			}
		}
		wg.Wait()
	}
	passes := stop()
	t.Logf("%d CleanupExpired passes; metrics %+v", passes, env.b.TTLMetrics())

	noErr(t, env.b.CleanupExpired(context.Background()))
	for i := range n {
		env.setKey(fmt.Sprintf("k%05d", i))
		_, ok, err := v.Get()
		noErr(t, err)
		if want := i%2 == 0; ok != want {
			t.Fatalf("key %d: Get found %v; want %v", i, ok, want)
		}
	}
}
