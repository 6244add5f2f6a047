package backend_test

// TTL cleanup strategies: access cleanup on state access and on every
// key, background cleanup (the flush/compaction spans, the periodic sweep
// and CleanupExpired), their metrics, and stopping the worker on Close.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pebblestate/pebblestate/backend"
	"github.com/pebblestate/pebblestate/internal/listfmt"
	"github.com/pebblestate/pebblestate/ttl"
)

// ttlOnAccess is a TTL config with access cleanup only.
func ttlOnAccess(size int, onEveryKey bool) ttl.Config {
	return ttl.Config{TTL: ttlD, Cleanup: ttl.Cleanup{
		DisableBackground: true,
		OnAccess:          ttl.AccessCleanup{Enabled: true, Size: size, OnEveryKey: onEveryKey},
	}}
}

// TestTTLAccessCleanupValue ports the idea of Flink's
// testIncrementalCleanup: many keys, some updated, the rest expire, and
// accesses to another key alone, each checking the next 5 entries, remove
// the expired ones from disk while the updated ones stay.
func TestTTLAccessCleanupValue(t *testing.T) {
	const n, size = 1000, 5
	env := newEnv(t)
	v := must(backend.GetValue(env.b, backend.ValueDescriptor[int64]{Name: "v", Codec: backend.Int64, TTL: ttlOnAccess(size, false)})).in(t)
	for i := range n {
		env.setKey(fmt.Sprintf("k%04d", i))
		noErr(t, v.Update(int64(i)))
	}
	env.advance(ttlD / 2)
	updated := map[int64]bool{}
	for i := 0; i < n; i += 10 {
		env.setKey(fmt.Sprintf("k%04d", i))
		noErr(t, v.Update(int64(10_000+i)))
		updated[int64(10_000+i)] = true
	}
	env.advance(ttlD/2 + 10*time.Millisecond) // the first writes expired; the updates not
	before := env.b.TTLMetrics()
	if before.AccessScanned == 0 {
		t.Fatal("writes took no incremental step")
	}
	if before.AccessRemoved != 0 {
		t.Fatalf("access cleanup removed %d entries before any expired", before.AccessRemoved)
	}

	env.setKey("other") // never written
	accesses := n/size + 20
	for range accesses {
		if _, ok, err := v.Get(); err != nil || ok {
			t.Fatalf("Get(other) = %v, %v", ok, err)
		}
	}
	after := env.b.TTLMetrics()
	if got := after.AccessRemoved - before.AccessRemoved; got != uint64(n-len(updated)) {
		t.Fatalf("access cleanup removed %d entries; want %d", got, n-len(updated))
	}
	scanned := after.AccessScanned - before.AccessScanned
	if scanned < n || scanned > uint64(size*accesses) {
		t.Fatalf("access cleanup checked %d entries in %d steps of %d; want between %d and %d", scanned, accesses, size, n, size*accesses)
	}
	if after.ReadRemoved != 0 || after.BackgroundScanned != 0 {
		t.Fatalf("other strategies worked: %+v", after)
	}

	raw := env.raw()
	entries := raw.entries(t, "v")
	if len(entries) != len(updated) {
		t.Fatalf("%d entries on disk; want the %d updated ones", len(entries), len(updated))
	}
	for _, e := range entries {
		if u := userInt64(t, e.value); !updated[u] {
			t.Fatalf("entry %x with value %d survived; it was never updated", e.key, u)
		}
	}
}

// TestTTLAccessCleanupOnEveryKey checks that with OnEveryKey,
// SetCurrentKey alone steps the cleanup of the state, and without it,
// SetCurrentKey does nothing.
func TestTTLAccessCleanupOnEveryKey(t *testing.T) {
	const n = 500
	env := newEnv(t)
	every := must(backend.GetValue(env.b, backend.ValueDescriptor[int64]{Name: "every", Codec: backend.Int64, TTL: ttlOnAccess(5, true)})).in(t)
	access := must(backend.GetValue(env.b, backend.ValueDescriptor[int64]{Name: "access", Codec: backend.Int64, TTL: ttlOnAccess(5, false)})).in(t)
	for i := range n {
		env.setKey(fmt.Sprintf("k%04d", i))
		noErr(t, every.Update(int64(i)))
		noErr(t, access.Update(int64(i)))
	}
	env.advance(ttlD)
	before := env.b.TTLMetrics()
	for i := range n/5 + 10 {
		env.setKey(fmt.Sprintf("other%d", i)) // no state access at all
	}
	after := env.b.TTLMetrics()
	if got := after.AccessRemoved - before.AccessRemoved; got != n {
		t.Fatalf("SetCurrentKey alone removed %d entries; want the %d of the OnEveryKey state", got, n)
	}
	raw := env.raw()
	if got := len(raw.entries(t, "every")); got != 0 {
		t.Fatalf("OnEveryKey state keeps %d entries", got)
	}
	if got := len(raw.entries(t, "access")); got != n {
		t.Fatalf("state without OnEveryKey keeps %d entries; want all %d (SetCurrentKey must not step it)", got, n)
	}
}

// TestTTLAccessCleanupList checks that access cleanup trims the
// expired elements of lists and drops lists with nothing left.
func TestTTLAccessCleanupList(t *testing.T) {
	const n = 200
	env := newEnv(t)
	l := must(backend.GetList(env.b, backend.ListDescriptor[int64]{Name: "l", Codec: backend.Int64, TTL: ttlOnAccess(5, false)})).in(t)
	for i := range n {
		env.setKey(fmt.Sprintf("k%04d", i))
		noErr(t, l.Add(-1)) // expires
	}
	env.advance(ttlD / 2)
	for i := range n / 2 {
		env.setKey(fmt.Sprintf("k%04d", i))
		noErr(t, l.Add(int64(i))) // second merge operand: survives
	}
	env.advance(ttlD/2 + 10*time.Millisecond)
	before := env.b.TTLMetrics()
	env.setKey("other")
	for range n/5 + 10 {
		if got, err := l.Get(); err != nil || len(got) != 0 {
			t.Fatalf("Get(other) = %v, %v", got, err)
		}
	}
	after := env.b.TTLMetrics()
	if got := after.AccessRemoved - before.AccessRemoved; got != n {
		t.Fatalf("access cleanup removed or trimmed %d lists; want %d", got, n)
	}
	raw := env.raw()
	entries := raw.entries(t, "l")
	if len(entries) != n/2 {
		t.Fatalf("%d lists on disk; want %d", len(entries), n/2)
	}
	seen := map[int64]bool{}
	for _, e := range entries {
		elem, rest, err := listfmt.Next(e.value)
		if err != nil || len(rest) != 0 {
			t.Fatalf("list %x: want exactly one element; err %v, %d bytes more", e.key, err, len(rest))
		}
		u := userInt64(t, elem)
		if u < 0 || seen[u] {
			t.Fatalf("list %x kept element %d", e.key, u)
		}
		seen[u] = true
	}
	// Reads agree with the disk.
	env.open()
	l = must(backend.GetList(env.b, backend.ListDescriptor[int64]{Name: "l", Codec: backend.Int64, TTL: ttlOnAccess(5, false)})).in(t)
	for i := range n {
		env.setKey(fmt.Sprintf("k%04d", i))
		got, err := l.Get()
		noErr(t, err)
		if want := []int64{int64(i)}; i < n/2 && !slices.Equal(got, want) || i >= n/2 && len(got) != 0 {
			t.Fatalf("key %d: list = %v", i, got)
		}
	}
}

// TestTTLAccessCleanupMap checks that access cleanup removes the
// expired entries of maps and keeps the live ones.
func TestTTLAccessCleanupMap(t *testing.T) {
	const keys, perKey = 100, 5
	env := newEnv(t)
	desc := backend.MapDescriptor[string, int64]{Name: "m", KeyCodec: backend.String, ValueCodec: backend.Int64, TTL: ttlOnAccess(5, false)}
	m := must(backend.GetMap(env.b, desc)).in(t)
	for i := range keys {
		env.setKey(fmt.Sprintf("k%04d", i))
		for j := range 3 {
			noErr(t, m.Put(fmt.Sprint("old", j), -1))
		}
	}
	env.advance(ttlD / 2)
	for i := range keys {
		env.setKey(fmt.Sprintf("k%04d", i))
		noErr(t, m.PutAll(maps.All(map[string]int64{"new0": int64(i), "new1": int64(i)})))
	}
	env.advance(ttlD/2 + 10*time.Millisecond)
	before := env.b.TTLMetrics()
	env.setKey("other")
	for range keys*perKey/5 + 10 {
		if ok, err := m.Contains("x"); err != nil || ok {
			t.Fatalf("Contains(other, x) = %v, %v", ok, err)
		}
	}
	after := env.b.TTLMetrics()
	if got := after.AccessRemoved - before.AccessRemoved; got != keys*3 {
		t.Fatalf("access cleanup removed %d map entries; want %d", got, keys*3)
	}
	raw := env.raw()
	entries := raw.entries(t, "m")
	if len(entries) != keys*2 {
		t.Fatalf("%d map entries on disk; want %d", len(entries), keys*2)
	}
	for _, e := range entries {
		if u := userInt64(t, e.value); u < 0 {
			t.Fatalf("expired map entry %x survived", e.key)
		}
	}
}

// TestTTLAccessCleanupWrapsAround checks that the cursor starts over
// at the end of the state: entries before the cursor expire later and are
// still found.
func TestTTLAccessCleanupWrapsAround(t *testing.T) {
	env := newEnv(t)
	v := must(backend.GetValue(env.b, backend.ValueDescriptor[int64]{Name: "v", Codec: backend.Int64, TTL: ttlOnAccess(3, false)})).in(t)
	for i := range 20 {
		env.setKey(fmt.Sprint("k", i))
		noErr(t, v.Update(int64(i)))
	}
	env.setKey("other")
	for range 5 { // nothing expired: the cursor moves 15 entries in
		_, _, err := v.Get()
		noErr(t, err)
	}
	env.advance(ttlD)
	for round := range 3 { // three full cycles of the 20 entries and more
		for range 20/3 + 2 {
			_, _, err := v.Get()
			noErr(t, err)
		}
		if round == 0 {
			if got := env.b.TTLMetrics().AccessRemoved; got != 20 {
				t.Fatalf("after a full cycle from mid-state: removed %d; want 20", got)
			}
		}
	}
	if got := env.b.TTLMetrics().AccessRemoved; got != 20 {
		t.Fatalf("removed %d; want 20", got)
	}
	if n := len(env.raw().entries(t, "v")); n != 0 {
		t.Fatalf("%d entries left", n)
	}
}

// ttlSSTBytes is the total size of the sstables in dir.
func ttlSSTBytes(t testing.TB, dir string) int64 {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.sst"))
	noErr(t, err)
	var n int64
	for _, f := range files {
		st, err := os.Stat(f)
		if errors.Is(err, os.ErrNotExist) {
			continue // deleted as obsolete meanwhile
		}
		noErr(t, err)
		n += st.Size()
	}
	return n
}

// ttlBlob returns 64 incompressible-looking bytes derived from i, so that
// sstable sizes follow the number of entries.
func ttlBlob(i int) []byte {
	out := make([]byte, 64)
	x := uint64(i)*0x9E3779B97F4A7C15 + 1
	for j := range out {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		out[j] = byte(x)
	}
	return out
}

// TestTTLBackgroundCleanup writes 100k keys (10k under -race) once and
// never reads them again, flushes, lets them expire, and lets background
// cleanup run: the filter on the spans of a later flush and one
// CleanupExpired pass. Every expired entry must leave the disk, the
// sstables must shrink, and every key written after the expiry survives
// with its value.
func TestTTLBackgroundCleanup(t *testing.T) {
	n, fresh := 100_000, 5_000
	if raceEnabled() {
		n, fresh = 10_000, 1_000
	}
	env := newEnv(t, func(o *backend.Options) { o.TTLSweepInterval = -1 })
	cfg := ttl.Config{TTL: time.Hour} // background cleanup is on by default
	desc := backend.ValueDescriptor[[]byte]{Name: "v", Codec: backend.Bytes, TTL: cfg}
	v := must(backend.GetValue(env.b, desc)).in(t)
	start := time.Now()
	for i := range n {
		env.setKey(fmt.Sprintf("old%06d", i))
		noErr(t, v.Update(ttlBlob(i)))
	}
	noErr(t, env.b.Flush())
	full := ttlSSTBytes(t, env.dir)
	t.Logf("%d keys written and flushed in %v: %d sstable bytes", n, time.Since(start), full)

	env.advance(time.Hour) // exactly the expiry of every old key
	for i := range fresh {
		env.setKey(fmt.Sprintf("new%06d", i))
		noErr(t, v.Update(ttlBlob(-i)))
	}
	noErr(t, env.b.Flush()) // reports the spans of the new table to the filter
	start = time.Now()
	noErr(t, env.b.CleanupExpired(context.Background()))
	m := env.b.TTLMetrics()
	t.Logf("CleanupExpired in %v; metrics %+v", time.Since(start), m)
	if m.BackgroundRemoved != uint64(n) {
		t.Errorf("background cleanup removed %d entries; want exactly the %d expired ones", m.BackgroundRemoved, n)
	}
	if m.BackgroundScanned < uint64(n+fresh) {
		t.Errorf("background cleanup checked %d entries; want at least %d", m.BackgroundScanned, n+fresh)
	}
	if m.ReadRemoved != 0 || m.AccessScanned != 0 {
		t.Errorf("other strategies worked: %+v", m)
	}

	raw := env.raw()
	entries := raw.entries(t, "v")
	if len(entries) > fresh+n/100 {
		t.Fatalf("%d entries on disk; want the %d fresh ones and at most 1%% of the %d expired", len(entries), fresh, n)
	}
	if len(entries) != fresh {
		t.Errorf("%d entries on disk; want %d", len(entries), fresh)
	}
	after := ttlSSTBytes(t, env.dir)
	t.Logf("sstable bytes: %d before, %d after cleanup", full, after)
	if want := full / 5; after > want {
		t.Errorf("sstables hold %d bytes after cleanup; want at most %d (a fifth of the %d before)", after, want, full)
	}

	// Every fresh key survives with its value; no old key is readable.
	env.open()
	v = must(backend.GetValue(env.b, desc)).in(t)
	for i := range fresh {
		env.setKey(fmt.Sprintf("new%06d", i))
		got, ok, err := v.Get()
		if err != nil || !ok || string(got) != string(ttlBlob(-i)) {
			t.Fatalf("fresh key %d: Get = %x, %v, %v", i, got, ok, err)
		}
	}
	for i := 0; i < n; i += n / 100 {
		env.setKey(fmt.Sprintf("old%06d", i))
		if _, ok, err := v.Get(); err != nil || ok {
			t.Fatalf("expired key %d: Get = %v, %v", i, ok, err)
		}
	}
}

// TestTTLBackgroundSpans checks the flush path alone: with no periodic
// sweep and no CleanupExpired, the spans flushes report are scanned by the
// worker, which removes what expired.
func TestTTLBackgroundSpans(t *testing.T) {
	const n = 2000
	env := newEnv(t, func(o *backend.Options) { o.TTLSweepInterval = -1 })
	v := must(backend.GetValueNS(env.b, backend.String, backend.ValueDescriptor[int64]{Name: "v", Codec: backend.Int64, TTL: ttl.Config{TTL: ttlD}})).in(t)
	write := func(ns string, val func(i int) int64) {
		t.Helper()
		noErr(t, v.SetCurrentNamespace(ns))
		for i := range n {
			env.setKey(fmt.Sprintf("k%05d", i))
			noErr(t, v.Update(val(i)))
		}
	}
	write("1", func(i int) int64 { return int64(i) })
	noErr(t, env.b.Flush())
	// The worker scans the flushed span while nothing is expired.
	waitFor(t, "the worker to scan the first flush", 20*time.Second, func() bool {
		return env.b.TTLMetrics().BackgroundScanned >= n
	})
	env.advance(ttlD)
	if got := env.b.TTLMetrics().BackgroundRemoved; got != 0 {
		t.Fatalf("removed %d entries before the second flush", got)
	}
	// The same keys in namespaces "0" and "2" sort just before and just
	// after each expired entry (key, "1"): the new table's span covers
	// every one of them.
	write("0", func(i int) int64 { return int64(-i) })
	write("2", func(i int) int64 { return int64(-i) })
	noErr(t, env.b.Flush())
	waitFor(t, "the worker to remove the expired entries", 20*time.Second, func() bool {
		return env.b.TTLMetrics().BackgroundRemoved >= n
	})
	if got := env.b.TTLMetrics().BackgroundRemoved; got != n {
		t.Fatalf("removed %d entries; exactly %d expired", got, n)
	}
	for _, ns := range []string{"0", "1", "2"} {
		noErr(t, v.SetCurrentNamespace(ns))
		for i := range n {
			env.setKey(fmt.Sprintf("k%05d", i))
			got, ok, err := v.Get()
			noErr(t, err)
			if ns == "1" && ok || ns != "1" && (!ok || got != int64(-i)) {
				t.Fatalf("key %d namespace %s: Get = %d, %v", i, ns, got, ok)
			}
		}
	}
	if m := env.b.TTLMetrics(); m.ReadRemoved != 0 {
		t.Fatalf("reads removed %d: the worker left expired entries behind", m.ReadRemoved)
	}
}

// TestTTLBackgroundSweep checks the periodic sweep alone: no flush, no
// CleanupExpired; expired entries still in the memtable go.
func TestTTLBackgroundSweep(t *testing.T) {
	const n = 2000
	env := newEnv(t, func(o *backend.Options) { o.TTLSweepInterval = 50 * time.Millisecond })
	v := must(backend.GetValue(env.b, backend.ValueDescriptor[int64]{Name: "v", Codec: backend.Int64, TTL: ttl.Config{TTL: ttlD}})).in(t)
	l := must(backend.GetList(env.b, backend.ListDescriptor[int64]{Name: "l", Codec: backend.Int64, TTL: ttl.Config{TTL: ttlD}})).in(t)
	for i := range n {
		env.setKey(fmt.Sprintf("k%05d", i))
		noErr(t, v.Update(int64(i)))
		noErr(t, l.Add(-1))
	}
	// Sweeps while nothing has expired remove nothing. (Once a complete
	// pass has seen a state, later sweeps skip it until its earliest entry
	// can expire, so how much they scan depends on when the first one ran
	// relative to the writes above.)
	waitFor(t, "a sweep", 20*time.Second, func() bool {
		return env.b.TTLMetrics().BackgroundScanned > 0
	})
	time.Sleep(5 * 50 * time.Millisecond) // a few more sweep intervals
	if got := env.b.TTLMetrics().BackgroundRemoved; got != 0 {
		t.Fatalf("the sweeps removed %d live entries", got)
	}
	env.advance(ttlD / 2)
	for i := range n / 2 {
		env.setKey(fmt.Sprintf("k%05d", i))
		noErr(t, l.Add(int64(i)))
	}
	env.advance(ttlD / 2)
	// Every value expired; half the lists are trimmed to their new
	// element, the other half dropped.
	waitFor(t, "a sweep to remove the expired entries", 20*time.Second, func() bool {
		return env.b.TTLMetrics().BackgroundRemoved >= 2*n
	})
	if got := env.b.TTLMetrics().BackgroundRemoved; got != 2*n {
		t.Fatalf("removed or trimmed %d; want %d", got, 2*n)
	}
	raw := env.raw()
	if got := len(raw.entries(t, "v")); got != 0 {
		t.Fatalf("%d values left", got)
	}
	if got, units := len(raw.entries(t, "l")), raw.units(t, "l"); got != n/2 || units != n/2 {
		t.Fatalf("%d lists holding %d elements left; want %d lists of one element", got, units, n/2)
	}
}

// TestTTLMetricsPerStrategy checks that each cleanup strategy counts in
// its own counters, and that background cleanup leaves states that turned
// it off alone.
func TestTTLMetricsPerStrategy(t *testing.T) {
	const n = 50
	env := newEnv(t, func(o *backend.Options) { o.TTLSweepInterval = -1 })
	reads := must(backend.GetValue(env.b, backend.ValueDescriptor[int64]{Name: "reads", Codec: backend.Int64,
		TTL: ttl.Config{TTL: ttlD, Cleanup: ttl.Cleanup{DisableBackground: true}}})).in(t)
	inc := must(backend.GetValue(env.b, backend.ValueDescriptor[int64]{Name: "incremental", Codec: backend.Int64, TTL: ttlOnAccess(5, false)})).in(t)
	bg := must(backend.GetValue(env.b, backend.ValueDescriptor[int64]{Name: "background", Codec: backend.Int64, TTL: ttl.Config{TTL: ttlD}})).in(t)
	plain := must(backend.GetValue(env.b, backend.ValueDescriptor[int64]{Name: "plain", Codec: backend.Int64})).in(t)
	for i := range n {
		env.setKey(fmt.Sprint("k", i))
		for _, s := range []*backend.Value[string, backend.VoidNamespace, int64]{reads, inc, bg, plain} {
			noErr(t, s.Update(int64(i)))
		}
	}
	env.advance(ttlD)
	m0 := env.b.TTLMetrics()
	if m0.ReadRemoved != 0 || m0.AccessRemoved != 0 || m0.BackgroundRemoved != 0 || m0.BackgroundScanned != 0 {
		t.Fatalf("counters moved before anything expired: %+v", m0)
	}

	for i := range n {
		env.setKey(fmt.Sprint("k", i))
		if _, ok, err := reads.Get(); err != nil || ok {
			t.Fatalf("expired read = %v, %v", ok, err)
		}
	}
	m1 := env.b.TTLMetrics()
	if m1.ReadRemoved != n || m1.AccessScanned != m0.AccessScanned || m1.BackgroundScanned != 0 {
		t.Fatalf("after reads: %+v; want ReadRemoved %d and nothing else", m1, n)
	}

	env.setKey("other")
	for range n/5 + 2 {
		_, _, err := inc.Get()
		noErr(t, err)
	}
	m2 := env.b.TTLMetrics()
	if m2.AccessRemoved != n || m2.ReadRemoved != n || m2.BackgroundScanned != 0 {
		t.Fatalf("after incremental steps: %+v; want AccessRemoved %d", m2, n)
	}

	noErr(t, env.b.CleanupExpired(context.Background()))
	m3 := env.b.TTLMetrics()
	if m3.BackgroundRemoved != n || m3.BackgroundScanned != n {
		t.Fatalf("after CleanupExpired: %+v; want %d scanned and removed (the background state only)", m3, n)
	}
	if m3.ReadRemoved != m2.ReadRemoved || m3.AccessRemoved != m2.AccessRemoved || m3.AccessScanned != m2.AccessScanned {
		t.Fatalf("CleanupExpired moved other counters: %+v -> %+v", m2, m3)
	}
	raw := env.raw()
	for name, want := range map[string]int{"reads": 0, "incremental": 0, "background": 0, "plain": n} {
		if got := len(raw.entries(t, name)); got != want {
			t.Errorf("state %q keeps %d entries; want %d", name, got, want)
		}
	}
}

// TestTTLCleanupExpiredLeavesOptedOutStates checks that a state with
// background cleanup off keeps its expired entries through CleanupExpired
// and the periodic sweep (reads still hide them).
func TestTTLCleanupExpiredLeavesOptedOutStates(t *testing.T) {
	env := newEnv(t, func(o *backend.Options) { o.TTLSweepInterval = time.Millisecond })
	off := must(backend.GetValue(env.b, backend.ValueDescriptor[int64]{Name: "off", Codec: backend.Int64,
		TTL: ttl.Config{TTL: ttlD, Cleanup: ttl.Cleanup{DisableBackground: true}}})).in(t)
	for i := range 100 {
		env.setKey(fmt.Sprint("k", i))
		noErr(t, off.Update(int64(i)))
	}
	env.advance(ttlD)
	noErr(t, env.b.CleanupExpired(context.Background()))
	noErr(t, env.b.Flush())
	if m := env.b.TTLMetrics(); m.BackgroundScanned != 0 {
		t.Fatalf("background cleanup scanned %d entries of a state that turned it off", m.BackgroundScanned)
	}
	if got := len(env.raw().entries(t, "off")); got != 100 {
		t.Fatalf("%d entries left; want all 100", got)
	}
}

// TestTTLQueryTimeAfterNumEntries checks that the per-state
// Cleanup.QueryTimeAfterNumEntries reaches background cleanup: a pass over
// 1000 entries with a setting of 10 reads the clock at least 100 times.
func TestTTLQueryTimeAfterNumEntries(t *testing.T) {
	clock := &ttlCountingClock{}
	clock.Set(envT0)
	env := newEnv(t, func(o *backend.Options) {
		o.Clock = clock
		o.TTLSweepInterval = -1
	})
	cfg := ttl.Config{TTL: time.Hour, Cleanup: ttl.Cleanup{QueryTimeAfterNumEntries: 10}}
	v := must(backend.GetValue(env.b, backend.ValueDescriptor[int64]{Name: "v", Codec: backend.Int64, TTL: cfg})).in(t)
	for i := range 1000 {
		env.setKey(fmt.Sprintf("k%04d", i))
		noErr(t, v.Update(int64(i)))
	}
	clock.reads.Store(0)
	noErr(t, env.b.CleanupExpired(context.Background()))
	if got := clock.reads.Load(); got < 100 {
		t.Fatalf("a pass over 1000 entries with QueryTimeAfterNumEntries=10 read the clock %d times; want at least 100 (the per-state setting is ignored)", got)
	}
}

// ttlCountingClock is a manual clock that counts its reads.
type ttlCountingClock struct {
	ttl.ManualClock
	reads atomic.Int64
}

func (c *ttlCountingClock) Now() time.Time {
	c.reads.Add(1)
	return c.ManualClock.Now()
}

// TestTTLCloseStopsBackgroundWorker checks that Close returns promptly
// while the worker is in the middle of a paced sweep, that it leaves no
// goroutine behind, and that the backend refuses cleanup afterwards.
func TestTTLCloseStopsBackgroundWorker(t *testing.T) {
	before := runtime.NumGoroutine()
	env := newEnv(t, func(o *backend.Options) {
		o.TTLSweepInterval = time.Millisecond
		o.TTLScanRate = 500 // entries a second: a sweep of 3000 takes 6 s
	})
	v := must(backend.GetValue(env.b, backend.ValueDescriptor[int64]{Name: "v", Codec: backend.Int64, TTL: ttl.Config{TTL: time.Hour}})).in(t)
	for i := range 3000 {
		env.setKey(fmt.Sprintf("k%04d", i))
		noErr(t, v.Update(int64(i)))
	}
	// A sweep that ran during the writes may have found v quiet (nothing
	// can expire for an hour) and the next ones skip it; registering
	// another TTL state resets what the worker learnt, so the next sweep
	// scans all 3000 entries.
	must(backend.GetValue(env.b, backend.ValueDescriptor[int64]{Name: "w", Codec: backend.Int64, TTL: ttl.Config{TTL: time.Hour}})).in(t)
	waitFor(t, "the sweep to start", 20*time.Second, func() bool { return env.b.TTLMetrics().BackgroundScanned >= 256 })
	b := env.b
	start := time.Now()
	env.close()
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("Close took %v with a paced sweep in progress", d)
	}
	if n := b.TTLMetrics().BackgroundScanned; n >= 3000 {
		t.Fatalf("the sweep finished (%d entries) before Close: the test did not catch it in progress", n)
	}
	if err := b.CleanupExpired(context.Background()); !errors.Is(err, backend.ErrClosed) {
		t.Fatalf("CleanupExpired after Close = %v; want ErrClosed", err)
	}
	if err := b.Close(); err != nil {
		t.Fatalf("second Close = %v", err)
	}
	waitFor(t, "the backend's goroutines to exit", 10*time.Second, func() bool {
		return runtime.NumGoroutine() <= before+1
	})
}

// TestTTLCloseDuringCleanupExpired checks that Close while a
// CleanupExpired pass runs on another goroutine breaks neither the pass nor
// the database: Close stops the pass, which returns ErrClosed (or nil if
// it had finished), and everything it removed is consistently gone.
func TestTTLCloseDuringCleanupExpired(t *testing.T) {
	env := newEnv(t, func(o *backend.Options) { o.TTLSweepInterval = -1 })
	v := must(backend.GetValue(env.b, backend.ValueDescriptor[int64]{Name: "v", Codec: backend.Int64, TTL: ttl.Config{TTL: ttlD}})).in(t)
	const n = 5000
	for i := range n {
		env.setKey(fmt.Sprintf("k%05d", i))
		noErr(t, v.Update(int64(i)))
	}
	env.advance(ttlD)
	b := env.b
	done := make(chan error, 1)
	go func() { done <- b.CleanupExpired(context.Background()) }()
	waitFor(t, "the pass to start", 20*time.Second, func() bool { return b.TTLMetrics().BackgroundScanned > 0 })
	env.close()
	if err := <-done; err != nil && !errors.Is(err, backend.ErrClosed) {
		t.Fatalf("CleanupExpired racing Close = %v", err)
	}
	removed := b.TTLMetrics().BackgroundRemoved
	left := len(env.raw().entries(t, "v"))
	if int(removed)+left != n {
		t.Fatalf("removed %d and %d left; want %d in all", removed, left, n)
	}
}

// TestTTLMalformedStamp checks what a TTL value too short for its stamp
// does: reads of its key fail with ErrCorrupt, background cleanup keeps it
// and reports it through Options.Logger without failing the pass, and the
// state's other keys stay usable, with access cleanup on too.
func TestTTLMalformedStamp(t *testing.T) {
	logged := &recordLogger{}
	env := newEnv(t, func(o *backend.Options) {
		o.TTLSweepInterval = -1
		o.Logger = logged.logger()
	})
	cfg := ttl.Config{TTL: ttlD, Cleanup: ttl.Cleanup{OnAccess: ttl.AccessCleanup{Enabled: true, Size: 5}}}
	desc := backend.ValueDescriptor[int64]{Name: "v", Codec: backend.Int64, TTL: cfg}
	v := must(backend.GetValue(env.b, desc)).in(t)
	for _, k := range []string{"bad", "good"} {
		env.setKey(k)
		noErr(t, v.Update(1))
	}
	raw := env.raw()
	var badKey []byte
	for _, e := range raw.entries(t, "v") {
		if bytes.Contains(e.key, []byte("bad")) {
			badKey = e.key
		}
	}
	overwriteRaw(t, env.dir, badKey, []byte{1, 2, 3})

	env.open()
	v = must(backend.GetValue(env.b, desc)).in(t)
	noErr(t, env.b.CleanupExpired(context.Background()))
	if logged.lines() == 0 {
		t.Error("background cleanup did not report the malformed entry")
	}
	env.setKey("good")
	if got, ok, err := v.Get(); err != nil || !ok || got != 1 {
		t.Errorf("Get of another key = %d, %v, %v; want 1: one malformed entry must not break the whole state", got, ok, err)
	}
	env.setKey("bad")
	if _, _, err := v.Get(); !errors.Is(err, backend.ErrCorrupt) {
		t.Errorf("Get of the malformed key = %v; want ErrCorrupt", err)
	}
	if err := v.Clear(); err != nil {
		t.Errorf("Clear of the malformed key = %v; the user must be able to remove it", err)
	}
	if n := len(env.raw().entries(t, "v")); n != 1 {
		t.Errorf("%d entries stored; want the good one", n)
	}
}

// TestTTLReturnExpiredUntilCleanedUp checks the other half of
// ReturnExpiredIfNotCleanedUp: once cleanup removed an expired value, not
// even the first read returns it.
//
// a's read deletes it, so cleanup removes only b.
func TestTTLReturnExpiredUntilCleanedUp(t *testing.T) {
	env := newEnv(t, func(o *backend.Options) { o.TTLSweepInterval = -1 })
	cfg := ttl.Config{TTL: ttlD, Visibility: ttl.ReturnExpiredIfNotCleanedUp}
	v := must(backend.GetValue(env.b, backend.ValueDescriptor[int64]{Name: "v", Codec: backend.Int64, TTL: cfg})).in(t)
	for i, k := range []string{"a", "b"} {
		env.setKey(k)
		noErr(t, v.Update(int64(i+1)))
	}
	env.advance(ttlD)
	env.setKey("a")
	if got, ok, err := v.Get(); err != nil || !ok || got != 1 {
		t.Fatalf("first read of an expired value not cleaned up = %d, %v, %v; want the stale 1", got, ok, err)
	}
	if got, ok, err := v.Get(); err != nil || ok {
		t.Fatalf("second read of an expired value = %d, %v, %v; want nothing: the first removed it", got, ok, err)
	}
	noErr(t, env.b.CleanupExpired(context.Background()))
	if got := env.b.TTLMetrics().BackgroundRemoved; got != 1 {
		t.Fatalf("cleanup removed %d; want 1 (b)", got)
	}
	if n := len(env.raw().entries(t, "v")); n != 0 {
		t.Fatalf("%d entries left on disk; want none", n)
	}
	env.open()
	v = must(backend.GetValue(env.b, backend.ValueDescriptor[int64]{Name: "v", Codec: backend.Int64, TTL: cfg})).in(t)
	for _, k := range []string{"a", "b"} {
		env.setKey(k)
		if got, ok, err := v.Get(); err != nil || ok {
			t.Fatalf("read of %s, expired and cleaned up = %d, %v, %v; want nothing", k, got, ok, err)
		}
	}
}

// TestTTLCleanupHonoursReads checks that background and incremental
// cleanup judge expiry with the access times reads wrote: a value read
// under OnReadAndWrite after its first stamp but before that stamp's
// expiry must survive cleanup at a time when only the first stamp is
// expired.
func TestTTLCleanupHonoursReads(t *testing.T) {
	for _, tc := range []struct {
		name        string
		incremental bool
	}{{"Background", false}, {"OnAccess", true}} {
		t.Run(tc.name, func(t *testing.T) {
			env := newEnv(t, func(o *backend.Options) { o.TTLSweepInterval = -1 })
			cfg := ttl.Config{TTL: ttlD, Update: ttl.OnReadAndWrite}
			if tc.incremental {
				cfg.Cleanup = ttl.Cleanup{DisableBackground: true, OnAccess: ttl.AccessCleanup{Enabled: true, Size: 10}}
			}
			v := must(backend.GetValue(env.b, backend.ValueDescriptor[int64]{Name: "v", Codec: backend.Int64, TTL: cfg})).in(t)
			keys := []string{"a", "b", "c"}
			for i, k := range keys {
				env.setKey(k)
				noErr(t, v.Update(int64(i+1)))
			}
			env.advance(60 * time.Millisecond)
			env.setKey("a")
			if got, ok, err := v.Get(); err != nil || !ok || got != 1 {
				t.Fatalf("Get(a) = %d, %v, %v; want 1", got, ok, err)
			}
			env.advance(60 * time.Millisecond) // stored stamps expired; a's read at +60 is not
			if tc.incremental {
				env.setKey("z")
				noErr(t, v.Clear()) // an access: one step over every entry
			} else {
				noErr(t, env.b.CleanupExpired(context.Background()))
			}
			if n := len(env.raw().entries(t, "v")); n != 1 {
				t.Fatalf("%d entries on disk after cleanup; want 1 (a)", n)
			}
			env.open()
			v = must(backend.GetValue(env.b, backend.ValueDescriptor[int64]{Name: "v", Codec: backend.Int64, TTL: cfg})).in(t)
			env.setKey("a")
			if got, ok, err := v.Get(); err != nil || !ok || got != 1 {
				t.Fatalf("Get(a) after cleanup = %d, %v, %v; want 1: its read refreshed it", got, ok, err)
			}
		})
	}
}
