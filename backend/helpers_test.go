package backend_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"iter"
	"slices"
	"strconv"
	"testing"

	"github.com/cockroachdb/pebble/v2"

	"github.com/pebblestate/pebblestate/backend"
	"github.com/pebblestate/pebblestate/internal/listfmt"
)

// mustOpen opens a backend with string keys. An empty opts.Dir gets a new
// temporary directory. The backend is closed when the test ends, and that
// Close must succeed (Pebble reports leaked iterators there).
func mustOpen(t testing.TB, opts backend.Options) *backend.Backend[string] {
	t.Helper()
	return mustOpenK(t, backend.String, opts)
}

// mustOpenK is mustOpen with another key codec.
func mustOpenK[K any](t testing.TB, keyCodec backend.Codec[K], opts backend.Options) *backend.Backend[K] {
	t.Helper()
	if opts.Dir == "" {
		opts.Dir = t.TempDir()
	}
	b, err := backend.Open(keyCodec, opts)
	if err != nil {
		t.Fatalf("Open(%s): %v", opts.Dir, err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("Close(%s): %v", opts.Dir, err)
		}
	})
	return b
}

// tempOpts returns options for a new temporary directory.
func tempOpts(t testing.TB) backend.Options {
	return backend.Options{Dir: t.TempDir()}
}

// reopen closes b and opens opts.Dir again with string keys.
func reopen(t testing.TB, b *backend.Backend[string], opts backend.Options) *backend.Backend[string] {
	t.Helper()
	if err := b.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	return mustOpen(t, opts)
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

// getValue reads a value state, failing the test on an error.
func getValue[K, N, V any](t testing.TB, s *backend.Value[K, N, V]) (V, bool) {
	t.Helper()
	v, ok, err := s.Get()
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	return v, ok
}

// wantValue checks that a value state holds want.
func wantValue[K, N any, V comparable](t testing.TB, s *backend.Value[K, N, V], want V) {
	t.Helper()
	got, ok := getValue(t, s)
	if !ok || got != want {
		t.Fatalf("Get = %v, %v; want %v, true", got, ok, want)
	}
}

// wantNoValue checks that a value state holds nothing.
func wantNoValue[K, N any, V comparable](t testing.TB, s *backend.Value[K, N, V]) {
	t.Helper()
	got, ok := getValue(t, s)
	var zero V
	if ok || got != zero {
		t.Fatalf("Get = %v, %v; want zero, false", got, ok)
	}
}

// wantList checks that a list state holds want (nil and empty are equal).
func wantList[K, N any, E comparable](t testing.TB, s *backend.List[K, N, E], want []E) {
	t.Helper()
	got, err := s.Get()
	if err != nil {
		t.Fatalf("List.Get: %v", err)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("List.Get = %v (%d elements); want %v (%d elements)", trim(got), len(got), trim(want), len(want))
	}
}

// trim shortens long slices in failure messages.
func trim[E any](s []E) []E {
	if len(s) > 20 {
		return s[:20]
	}
	return s
}

var (
	// errAppend is what pickyCodec.Append returns for unencodable values.
	errAppend = errors.New("picky: cannot encode 13")
	// errDecode is what pickyCodec.Decode returns for 666. It does not wrap
	// backend.ErrCorrupt: the backend must add that.
	errDecode = errors.New("picky: refusing to decode 666")
)

// pickyCodec is a variable-size int64 codec (decimal text) that cannot
// encode 13 and cannot decode 666: a stand-in for user codecs with bugs or
// for data written by another version of a codec.
type pickyCodec struct{}

func (pickyCodec) Name() string { return "picky" }
func (pickyCodec) Append(dst []byte, v int64) ([]byte, error) {
	if v == 13 {
		return dst, errAppend
	}
	return strconv.AppendInt(dst, v, 10), nil
}
func (pickyCodec) Decode(src []byte) (int64, error) {
	v, err := strconv.ParseInt(string(src), 10, 64)
	if err != nil {
		return 0, err
	}
	if v == 666 {
		return 0, errDecode
	}
	return v, nil
}

// lyingCodec is an int64 codec that claims a fixed size of 8 bytes but
// writes 3 bytes for every value short reports true for.
type lyingCodec struct{ short func(int64) bool }

func (lyingCodec) Name() string   { return "lying" }
func (lyingCodec) FixedSize() int { return 8 }
func (c lyingCodec) Append(dst []byte, v int64) ([]byte, error) {
	if c.short(v) {
		return append(dst, 1, 2, 3), nil
	}
	return binary.BigEndian.AppendUint64(dst, uint64(v)), nil
}
func (lyingCodec) Decode(src []byte) (int64, error) {
	if len(src) != 8 {
		return 0, fmt.Errorf("lying: %d bytes", len(src))
	}
	return int64(binary.BigEndian.Uint64(src)), nil
}

// unnamedCodec has an empty name, which the backend must reject.
type unnamedCodec struct{ pickyCodec }

func (unnamedCodec) Name() string { return "" }

// sum is a reduce function.
func sum(a, b int64) int64 { return a + b }

// rawDB opens a closed backend's directory with Pebble directly, for tests
// that corrupt stored bytes or force compactions. It is closed at the end
// of the test unless the caller closes it first.
func rawDB(t testing.TB, dir string) *pebble.DB {
	t.Helper()
	db, err := pebble.Open(dir, &pebble.Options{Merger: listfmt.Merger, Logger: testLogger{t}})
	if err != nil {
		t.Fatalf("pebble.Open(%s): %v", dir, err)
	}
	return db
}

// testLogger sends Pebble's errors to the test log and drops the rest.
type testLogger struct{ t testing.TB }

func (testLogger) Infof(string, ...any)                {}
func (l testLogger) Errorf(format string, args ...any) { l.t.Logf("pebble: "+format, args...) }
func (l testLogger) Fatalf(format string, args ...any) {
	l.t.Errorf("pebble fatal: "+format, args...)
	panic(fmt.Sprintf(format, args...)) // Pebble requires Fatalf not to return
}

// compactAll opens the closed backend directory dir with Pebble, flushes,
// compacts every key into one level (running the list merge operator over
// all of a key's operands), and closes it again.
func compactAll(t testing.TB, dir string) {
	t.Helper()
	db := rawDB(t, dir)
	noErr(t, db.Flush())
	noErr(t, db.Compact(context.Background(), []byte{0}, []byte{0xff, 0xff, 0xff}, false))
	noErr(t, db.Close())
}

// singleStateKey returns the only key of user state data in the closed
// backend directory dir (state ids start at 1; id 0 holds metadata).
func singleStateKey(t testing.TB, dir string) []byte {
	t.Helper()
	db := rawDB(t, dir)
	defer db.Close()
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: []byte{0, 1}})
	noErr(t, err)
	defer it.Close()
	var found [][]byte
	for valid := it.First(); valid; valid = it.Next() {
		found = append(found, slices.Clone(it.Key()))
	}
	if len(found) != 1 {
		t.Fatalf("found %d state entries, want 1: %x", len(found), found)
	}
	return found[0]
}

// overwriteRaw stores value under key in the closed backend directory dir.
func overwriteRaw(t testing.TB, dir string, key, value []byte) {
	t.Helper()
	db := rawDB(t, dir)
	noErr(t, db.Set(key, value, pebble.NoSync))
	noErr(t, db.Flush())
	noErr(t, db.Close())
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
