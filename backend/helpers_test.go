package backend_test

// The helpers every test of the package uses: opening and restoring
// backends (closed, and checked, when the test ends), one error check, and
// reading states. helpers_state_test.go holds the typed state helpers and
// test codecs, helpers_raw_test.go reads a closed directory with Pebble,
// and helpers_snapshot_test.go the snapshot fixture and the two snapshot
// modes.

import (
	"context"
	"errors"
	"iter"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/pebblestate/pebblestate/backend"
	"github.com/pebblestate/pebblestate/snapshot"
	"github.com/pebblestate/pebblestate/ttl"
)

// tweak changes the options a helper opens or restores a backend with.
type tweak = func(*backend.Options)

// inDir opens in dir instead of a new temporary directory.
func inDir(dir string) tweak { return func(o *backend.Options) { o.Dir = dir } }

// withOptions replaces the options by o; an empty o.Dir keeps the directory
// the helper chose.
func withOptions(o backend.Options) tweak {
	return func(p *backend.Options) {
		dir := p.Dir
		*p = o
		if p.Dir == "" {
			p.Dir = dir
		}
	}
}

// withClock sets the TTL clock.
func withClock(c ttl.Clock) tweak { return func(o *backend.Options) { o.Clock = c } }

// options returns the options in a new temporary directory after tweaks.
func options(t testing.TB, tweaks []tweak) backend.Options {
	o := backend.Options{Dir: t.TempDir()}
	for _, f := range tweaks {
		f(&o)
	}
	return o
}

// MustOpen opens a backend with string keys in a new temporary directory
// (or the one a tweak names). When the test ends it is closed, and the test
// fails if that Close returns an error (Pebble reports leaked iterators and
// snapshots there); a backend the test closed itself is fine, as a second
// Close is a no-op.
func MustOpen(t testing.TB, tweaks ...tweak) *backend.Backend[string] {
	t.Helper()
	return MustOpenK(t, backend.String, tweaks...)
}

// MustOpenK is MustOpen with another key codec.
func MustOpenK[K any](t testing.TB, keyCodec backend.Codec[K], tweaks ...tweak) *backend.Backend[K] {
	t.Helper()
	o := options(t, tweaks)
	b, err := backend.Open(keyCodec, o)
	if err != nil {
		t.Fatalf("Open(%s): %v", o.Dir, err)
	}
	closeAtEnd(t, b, o.Dir)
	return b
}

// MustRestore restores handles from st into a new temporary directory (or
// the one a tweak names), closed and checked when the test ends as by
// MustOpen.
func MustRestore[K any](t testing.TB, keyCodec backend.Codec[K], st snapshot.Storage, handles []snapshot.Handle, tweaks ...tweak) *backend.Backend[K] {
	t.Helper()
	o := options(t, tweaks)
	b, err := backend.Restore(context.Background(), keyCodec, o, st, handles)
	if err != nil {
		t.Fatalf("Restore into %s: %v", o.Dir, err)
	}
	closeAtEnd(t, b, o.Dir)
	return b
}

// closeAtEnd closes b when the test ends and fails the test if Close does.
func closeAtEnd[K any](t testing.TB, b *backend.Backend[K], dir string) {
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("Close(%s): %v", dir, err)
		}
	})
}

// reopen closes b, failing the test now if Close does, and opens again
// with string keys (tweaks must name b's directory).
func reopen(t testing.TB, b *backend.Backend[string], tweaks ...tweak) *backend.Backend[string] {
	t.Helper()
	noErr(t, b.Close())
	return MustOpen(t, tweaks...)
}

// noErr fails the test now if err is not nil.
func noErr(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// result holds the results of a call for must.
type result[T any] struct {
	v   T
	err error
}

// must captures a call's results; .in(t) returns the value or fails the
// test now: must(backend.GetValue(b, d)).in(t).
func must[T any](v T, err error) result[T] { return result[T]{v, err} }

// in returns the captured value, failing the test now on an error.
func (r result[T]) in(t testing.TB) T {
	t.Helper()
	if r.err != nil {
		t.Fatal(r.err)
	}
	return r.v
}

// result2 holds the results of a call of two values for must2.
type result2[T, U any] struct {
	v   T
	u   U
	err error
}

// must2 is must for a call of two values and an error.
func must2[T, U any](v T, u U, err error) result2[T, U] { return result2[T, U]{v, u, err} }

// in returns the captured values, failing the test now on an error.
func (r result2[T, U]) in(t testing.TB) (T, U) {
	t.Helper()
	if r.err != nil {
		t.Fatal(r.err)
	}
	return r.v, r.u
}

// wantErr fails the test now unless errors.Is(err, target).
func wantErr(t testing.TB, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("got error %v, want one wrapping %v", err, target)
	}
}

// setKey sets the current key or fails the test.
func setKey[K any](t testing.TB, b *backend.Backend[K], k K) {
	t.Helper()
	if err := b.SetCurrentKey(k); err != nil {
		t.Fatalf("SetCurrentKey(%v): %v", k, err)
	}
}

// collect drains an iterator of the backend, failing the test on an error.
func collect[T any](t testing.TB, seq iter.Seq2[T, error]) []T {
	t.Helper()
	var out []T
	for v, err := range seq {
		if err != nil {
			t.Fatalf("iteration error after %d items: %v", len(out), err)
		}
		out = append(out, v)
	}
	return out
}

// lastErr drains an iterator and returns the number of good items and the
// first error, checking that the error is the last pair yielded.
func lastErr[T any](t testing.TB, seq iter.Seq2[T, error]) (int, error) {
	t.Helper()
	n := 0
	var first error
	for _, err := range seq {
		if first != nil {
			t.Fatalf("iteration went on after error %v", first)
		}
		if err != nil {
			first = err
			continue
		}
		n++
	}
	return n, first
}

// sorted returns a sorted copy.
func sorted[T interface{ ~string | ~int64 }](s []T) []T {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

// trim shortens long slices in failure messages.
func trim[E any](s []E) []E {
	if len(s) > 20 {
		return s[:20]
	}
	return s
}

// waitFor polls cond every few milliseconds until it holds, failing the
// test after d. It waits for background goroutines, never for TTL expiry,
// which manual clocks drive.
func waitFor(t testing.TB, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// raceEnabled reports whether the test binary was built with -race.
// Pebble's race builds record a stack trace on every sstable iterator they
// open, so reads of SSTs cost far more; the big tests shrink under -race.
func raceEnabled() bool {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return false
	}
	for _, s := range bi.Settings {
		if s.Key == "-race" {
			return s.Value == "true"
		}
	}
	return false
}

// keysIn returns the first n of the keys "key-0", "key-1", ... whose key
// group lies in r.
func keysIn(t testing.TB, maxParallelism int, r backend.KeyGroupRange, n int) []string {
	t.Helper()
	var out []string
	for i := 0; len(out) < n; i++ {
		if i > 1_000_000 {
			t.Fatalf("no %d keys in key groups %v", n, r)
		}
		k := "key-" + strconv.Itoa(i)
		kg, err := backend.KeyGroupOf(backend.String, k, maxParallelism)
		noErr(t, err)
		if r.Contains(kg) {
			out = append(out, k)
		}
	}
	return out
}

// env is a backend with string keys in a directory of its own, on a
// manual clock, that a test closes, reopens and reads raw. Failures go to
// t, which a test may point at a subtest; the backend is closed when the
// test that made the env ends.
type env struct {
	t      testing.TB
	root   testing.TB
	dir    string
	clock  *ttl.ManualClock
	tweaks []tweak
	b      *backend.Backend[string]
}

// envT0 is where env clocks start: well after the epoch, so stamps are
// positive, as they are in production.
var envT0 = time.UnixMilli(1_700_000_000_000)

// newEnv opens a new backend in a temporary directory; tweaks apply at
// every open.
func newEnv(t testing.TB, tweaks ...tweak) *env {
	t.Helper()
	e := &env{t: t, root: t, dir: filepath.Join(t.TempDir(), "db"), clock: ttl.NewManualClock(envT0), tweaks: tweaks}
	e.open()
	return e
}

// open opens the directory again.
func (e *env) open() {
	e.t.Helper()
	e.b = MustOpen(e.root, append([]tweak{inDir(e.dir), withClock(e.clock)}, e.tweaks...)...)
}

// close closes the backend, failing the test now if Close does.
func (e *env) close() {
	e.t.Helper()
	noErr(e.t, e.b.Close())
	e.b = nil
}

// reopen closes and opens the backend.
func (e *env) reopen() {
	e.t.Helper()
	e.close()
	e.open()
}

// setKey sets the current key or fails the test.
func (e *env) setKey(k string) {
	e.t.Helper()
	setKey(e.t, e.b, k)
}

// advance moves the clock.
func (e *env) advance(d time.Duration) { e.clock.Advance(d) }

// now is the clock in TTL stamp units (ms).
func (e *env) now() int64 { return ttl.Millis(e.clock.Now()) }

// raw closes the backend and reads its directory with Pebble directly.
// The backend stays closed.
func (e *env) raw() *rawView {
	e.t.Helper()
	if e.b != nil {
		e.close()
	}
	return readRaw(e.t, e.dir)
}
