package backend_test

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/pebblestate/pebblestate/backend"
	"github.com/pebblestate/pebblestate/internal/keys"
	"github.com/pebblestate/pebblestate/ttl"
)

// TestOpen_CreatesMissingDirectory checks that Open creates Dir and its
// parents.
func TestOpen_CreatesMissingDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "b", "c")
	MustOpen(t, inDir(dir))
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		t.Fatalf("Stat(%s) = %v, %v", dir, fi, err)
	}
}

// TestOpen_InvalidOptions checks that Open rejects bad options with
// ErrInvalidOptions and creates nothing.
func TestOpen_InvalidOptions(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "db")
	cases := map[string]backend.Options{
		"no dir":                  {},
		"max parallelism too big": {Dir: dir, MaxParallelism: backend.MaxParallelismLimit + 1},
		"negative max p":          {Dir: dir, MaxParallelism: -1},
		"key groups past end":     {Dir: dir, MaxParallelism: 128, KeyGroups: backend.KeyGroupRange{Start: 100, End: 129}},
		"empty key groups":        {Dir: dir, KeyGroups: backend.KeyGroupRange{Start: 5, End: 5}},
		"inverted key groups":     {Dir: dir, KeyGroups: backend.KeyGroupRange{Start: 6, End: 5}},
		"negative key group":      {Dir: dir, KeyGroups: backend.KeyGroupRange{Start: -1, End: 5}},
		"negative cache":          {Dir: dir, BlockCacheSize: -1},
		"tiny memtable":           {Dir: dir, MemTableSize: 1000},
		"negative TTL scan rate":  {Dir: dir, TTLScanRate: -1},
		"TTL share above one":     {Dir: dir, TTLCleanupShare: 1.5},
		"negative TTL share":      {Dir: dir, TTLCleanupShare: -0.1},
		"NaN TTL share":           {Dir: dir, TTLCleanupShare: math.NaN()},
		"unknown restore mode":    {Dir: dir, RestoreMode: backend.Claim + 1},
	}
	for name, opts := range cases {
		b, err := backend.Open(backend.String, opts)
		if err == nil {
			_ = b.Close()
		}
		if !errors.Is(err, backend.ErrInvalidOptions) {
			t.Errorf("%s: Open = %v, want ErrInvalidOptions", name, err)
		}
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("Open with bad options created %s (%v)", dir, err)
	}
}

// TestOptions_ValidateCollectsEveryProblem checks that Validate reports
// all problems at once, each wrapping ErrInvalidOptions.
func TestOptions_ValidateCollectsEveryProblem(t *testing.T) {
	var opts backend.Options
	opts.EnsureDefaults()
	opts.Dir = ""
	opts.MaxParallelism = 0
	opts.BlockCacheSize = -5
	opts.MemTableSize = 10
	opts.Clock = nil
	err := opts.Validate()
	if !errors.Is(err, backend.ErrInvalidOptions) {
		t.Fatalf("Validate = %v, want ErrInvalidOptions", err)
	}
	joined, ok := err.(interface{ Unwrap() []error })
	if !ok {
		t.Fatalf("Validate returned %T, want a joined error", err)
	}
	if n := len(joined.Unwrap()); n != 5 {
		t.Errorf("Validate reported %d problems, want 5: %v", n, err)
	}
	for _, e := range joined.Unwrap() {
		if !errors.Is(e, backend.ErrInvalidOptions) {
			t.Errorf("problem %q does not wrap ErrInvalidOptions", e)
		}
	}
	for _, word := range []string{"Dir", "MaxParallelism", "BlockCacheSize", "MemTableSize", "Clock"} {
		if !strings.Contains(err.Error(), word) {
			t.Errorf("Validate error does not mention %s: %v", word, err)
		}
	}

	good := backend.Options{Dir: "x"}
	good.EnsureDefaults()
	noErr(t, good.Validate())
}

// TestOptions_EnsureDefaults checks the documented defaults, and that
// fields already set are kept.
func TestOptions_EnsureDefaults(t *testing.T) {
	var o backend.Options
	o.EnsureDefaults()
	if o.MaxParallelism != 128 || backend.DefaultMaxParallelism != 128 {
		t.Errorf("MaxParallelism = %d, want 128", o.MaxParallelism)
	}
	if o.KeyGroups != (backend.KeyGroupRange{Start: 0, End: 128}) {
		t.Errorf("KeyGroups = %v, want [0, 128)", o.KeyGroups)
	}
	if o.BlockCacheSize != 64<<20 || o.MemTableSize != 64<<20 {
		t.Errorf("BlockCacheSize = %d, MemTableSize = %d, want 64 MiB each", o.BlockCacheSize, o.MemTableSize)
	}
	if _, ok := o.Clock.(ttl.SystemClock); !ok {
		t.Errorf("Clock = %T, want ttl.SystemClock", o.Clock)
	}
	if o.Logger != slog.Default() {
		t.Error("Logger is not slog.Default()")
	}
	if o.EnableWAL {
		t.Error("EnableWAL defaults to true")
	}
	if o.Dir != "" {
		t.Errorf("Dir = %q, want it left empty", o.Dir)
	}

	clock := ttl.NewManualClock(time.Unix(100, 0))
	o = backend.Options{Dir: "d", MaxParallelism: 1000, BlockCacheSize: 1 << 20, MemTableSize: 2 << 20, Clock: clock}
	o.EnsureDefaults()
	if o.MaxParallelism != 1000 || o.KeyGroups != (backend.KeyGroupRange{Start: 0, End: 1000}) ||
		o.BlockCacheSize != 1<<20 || o.MemTableSize != 2<<20 || o.Clock != clock || o.Dir != "d" {
		t.Errorf("EnsureDefaults changed set fields: %+v", o)
	}
	o = backend.Options{KeyGroups: backend.KeyGroupRange{Start: 3, End: 7}}
	o.EnsureDefaults()
	if o.KeyGroups != (backend.KeyGroupRange{Start: 3, End: 7}) {
		t.Errorf("KeyGroups = %v, want [3, 7) kept", o.KeyGroups)
	}
}

// TestOpen_NilKeyCodec checks that Open rejects a nil or unnamed key
// codec.
func TestOpen_NilKeyCodec(t *testing.T) {
	_, err := backend.Open[string](nil, backend.Options{Dir: t.TempDir()})
	wantErr(t, err, backend.ErrInvalidArgument)
	_, err = backend.Open[int64](unnamedCodec{}, backend.Options{Dir: t.TempDir()})
	wantErr(t, err, backend.ErrInvalidArgument)
}

// TestOpen_Accessors checks MaxParallelism, KeyGroups, Clock and
// InstanceID, which is random per directory and survives a reopen.
func TestOpen_Accessors(t *testing.T) {
	clock := ttl.NewManualClock(time.Unix(5, 0))
	opts := backend.Options{Dir: t.TempDir(), MaxParallelism: 300, KeyGroups: backend.KeyGroupRange{Start: 10, End: 20}, Clock: clock}
	b := MustOpen(t, withOptions(opts))
	if b.MaxParallelism() != 300 || b.KeyGroups() != (backend.KeyGroupRange{Start: 10, End: 20}) || b.Clock() != clock {
		t.Fatalf("accessors: %d %v %v", b.MaxParallelism(), b.KeyGroups(), b.Clock())
	}
	id := b.InstanceID()
	if raw, err := hex.DecodeString(id); err != nil || len(raw) != 16 {
		t.Fatalf("InstanceID = %q, want 32 hex digits", id)
	}
	b = reopen(t, b, withOptions(opts))
	if got := b.InstanceID(); got != id {
		t.Fatalf("InstanceID after reopen = %q, want %q", got, id)
	}
	if other := MustOpen(t).InstanceID(); other == id {
		t.Fatalf("two directories share instance id %q", id)
	}
}

// writeAllKinds writes one entry of each state kind for keys k0..k9 in
// namespaces 1 and 2 (value only in the void namespace).
func writeAllKinds(t *testing.T, b *backend.Backend[string]) {
	t.Helper()
	v := must(backend.GetValue(b, backend.ValueDescriptor[string]{Name: "value", Codec: backend.String})).in(t)
	l := nsList(t, b, "list")
	m := intMap(t, b, "map")
	r := sumState(t, b, "reducing")
	a := avgState(t, b, "aggregating", average{})
	for i := range int64(10) {
		k := "k" + string(rune('0'+i))
		setKey(t, b, k)
		noErr(t, v.Update("v-"+k))
		for ns := int64(1); ns <= 2; ns++ {
			noErr(t, l.SetCurrentNamespace(ns))
			noErr(t, l.AddAll([]string{k, "x"}))
			noErr(t, m.SetCurrentNamespace(ns))
			noErr(t, m.PutAll(maps.All(map[int64]string{i: k, -ns: "neg"})))
			noErr(t, r.SetCurrentNamespace(ns))
			noErr(t, r.Add(i*ns))
			noErr(t, a.SetCurrentNamespace(ns))
			noErr(t, a.Add(i))
			noErr(t, a.Add(i+2*ns))
		}
	}
}

// checkAllKinds checks what writeAllKinds wrote.
func checkAllKinds(t *testing.T, b *backend.Backend[string]) {
	t.Helper()
	v := must(backend.GetValue(b, backend.ValueDescriptor[string]{Name: "value", Codec: backend.String})).in(t)
	l := nsList(t, b, "list")
	m := intMap(t, b, "map")
	r := sumState(t, b, "reducing")
	a := avgState(t, b, "aggregating", average{})
	for i := range int64(10) {
		k := "k" + string(rune('0'+i))
		setKey(t, b, k)
		wantValue(t, v, "v-"+k)
		for ns := int64(1); ns <= 2; ns++ {
			noErr(t, l.SetCurrentNamespace(ns))
			wantList(t, l, []string{k, "x"})
			noErr(t, m.SetCurrentNamespace(ns))
			wantMap(t, m, map[int64]string{i: k, -ns: "neg"})
			noErr(t, r.SetCurrentNamespace(ns))
			wantReduced(t, r, i*ns, true)
			noErr(t, a.SetCurrentNamespace(ns))
			wantAvg(t, a, float64(i+ns), true)
		}
	}
}

// TestReopen_AllKindsComeBack checks that Close and Open bring back every
// kind of state in every namespace. With the WAL off (the default) the
// writes were never flushed before Close, so this is also the test that
// Close flushes.
func TestReopen_AllKindsComeBack(t *testing.T) {
	dir := t.TempDir()
	b := MustOpen(t, inDir(dir))
	writeAllKinds(t, b)
	b = reopen(t, b, inDir(dir))
	checkAllKinds(t, b)
}

// TestReopen_WithWAL checks the same with the WAL on, and with the WAL
// switched off and on between runs.
func TestReopen_WithWAL(t *testing.T) {
	opts := backend.Options{Dir: t.TempDir(), EnableWAL: true}
	b := MustOpen(t, withOptions(opts))
	writeAllKinds(t, b)
	b = reopen(t, b, withOptions(opts))
	checkAllKinds(t, b)

	opts.EnableWAL = false
	b = reopen(t, b, withOptions(opts))
	checkAllKinds(t, b)
	noErr(t, must(backend.GetValue(b, backend.ValueDescriptor[string]{Name: "value", Codec: backend.String})).in(t).Clear()) // key k9
	opts.EnableWAL = true
	b = reopen(t, b, withOptions(opts))
	v := must(backend.GetValue(b, backend.ValueDescriptor[string]{Name: "value", Codec: backend.String})).in(t)
	setKey(t, b, "k9")
	wantNoValue(t, v)
}

// TestReopen_WALSwitchWithUnflushedWrites checks that writes made with the
// WAL on and not flushed survive a reopen with the WAL off.
func TestReopen_WALSwitchWithUnflushedWrites(t *testing.T) {
	opts := backend.Options{Dir: t.TempDir(), EnableWAL: true}
	b := MustOpen(t, withOptions(opts))
	writeAllKinds(t, b)
	opts.EnableWAL = false
	b = reopen(t, b, withOptions(opts))
	checkAllKinds(t, b)
}

// walBytes returns the total size of the WAL files in dir.
func walBytes(t *testing.T, dir string) int64 {
	t.Helper()
	logs, err := filepath.Glob(filepath.Join(dir, "*.log"))
	noErr(t, err)
	var n int64
	for _, l := range logs {
		fi, err := os.Stat(l)
		noErr(t, err)
		n += fi.Size()
	}
	return n
}

// TestOpen_WALOption checks that EnableWAL decides whether writes reach a
// write-ahead log: with it off (the default) the log files stay empty.
func TestOpen_WALOption(t *testing.T) {
	for _, wal := range []bool{false, true} {
		opts := backend.Options{Dir: t.TempDir(), EnableWAL: wal}
		b := MustOpen(t, withOptions(opts))
		v := must(backend.GetValue(b, backend.ValueDescriptor[string]{Name: "v", Codec: backend.String})).in(t)
		for i := range 100 {
			setKey(t, b, string(rune('a'+i%26))+"key")
			noErr(t, v.Update(strings.Repeat("x", 100)))
		}
		// Pebble writes the log from a background goroutine: give it time
		// (for the WAL off too, or the check below could not fail).
		time.Sleep(50 * time.Millisecond)
		n := walBytes(t, opts.Dir)
		for deadline := time.Now().Add(10 * time.Second); wal && n == 0 && time.Now().Before(deadline); {
			time.Sleep(10 * time.Millisecond)
			n = walBytes(t, opts.Dir)
		}
		if (n > 0) != wal {
			t.Errorf("EnableWAL=%v: WAL files hold %d bytes", wal, n)
		}
	}
}

// TestReopen_IncompatibleBackend checks that a directory cannot be opened
// with another max parallelism, key-group range or key codec, and that a
// refused Open leaves it usable with the right settings.
func TestReopen_IncompatibleBackend(t *testing.T) {
	opts := backend.Options{Dir: t.TempDir(), MaxParallelism: 256, KeyGroups: backend.KeyGroupRange{Start: 0, End: 100}}
	b := MustOpen(t, withOptions(opts))
	l := intList(t, b, "l")
	k := keysIn(t, opts.MaxParallelism, opts.KeyGroups, 1)[0]
	setKey(t, b, k)
	noErr(t, l.Add(1))
	noErr(t, b.Close())

	bad := map[string]backend.Options{
		"max parallelism":        {Dir: opts.Dir, MaxParallelism: 128, KeyGroups: opts.KeyGroups},
		"key groups":             {Dir: opts.Dir, MaxParallelism: 256, KeyGroups: backend.KeyGroupRange{Start: 0, End: 99}},
		"default key groups":     {Dir: opts.Dir, MaxParallelism: 256},
		"default max paralelism": {Dir: opts.Dir},
	}
	for name, o := range bad {
		b, err := backend.Open(backend.String, o)
		if err == nil {
			_ = b.Close()
		}
		if !errors.Is(err, backend.ErrIncompatibleBackend) {
			t.Errorf("%s: Open = %v, want ErrIncompatibleBackend", name, err)
		}
	}
	bi, err := backend.Open(pickyCodec{}, opts)
	if err == nil {
		_ = bi.Close()
	}
	wantErr(t, err, backend.ErrIncompatibleBackend)

	b = MustOpen(t, withOptions(opts))
	l = intList(t, b, "l")
	setKey(t, b, k)
	wantList(t, l, []int64{1})
}

// TestOpen_SameDirectoryTwice checks that a directory in use cannot be
// opened a second time.
func TestOpen_SameDirectoryTwice(t *testing.T) {
	dir := t.TempDir()
	MustOpen(t, inDir(dir))
	b, err := backend.Open(backend.String, backend.Options{Dir: dir})
	if err == nil {
		_ = b.Close()
		t.Fatal("second Open of a directory in use succeeded")
	}
}

// TestOpen_CorruptRecords checks that undecodable backend and state
// records make Open fail with ErrCorrupt, not panic, and leave the
// directory unlocked.
func TestOpen_CorruptRecords(t *testing.T) {
	cases := map[string]struct{ key, value []byte }{
		"backend not json":   {keys.BackendMetaKey(), []byte("{not json")},
		"backend version 99": {keys.BackendMetaKey(), []byte(`{"format_version":99,"max_parallelism":128,"key_group_start":0,"key_group_end":128,"key_codec":"string"}`)},
		"backend no groups":  {keys.BackendMetaKey(), []byte(`{"format_version":1,"max_parallelism":128,"key_group_start":0,"key_group_end":0,"key_codec":"string"}`)},
		"state not json":     {keys.StateMetaKey("v"), []byte("\x00\x01")},
		"state kind 0":       {keys.StateMetaKey("v"), []byte(`{"format_version":1,"name":"v","id":1,"kind":0}`)},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			opts := backend.Options{Dir: t.TempDir()}
			b := MustOpen(t, withOptions(opts))
			must(backend.GetValue(b, backend.ValueDescriptor[string]{Name: "v", Codec: backend.String})).in(t)
			noErr(t, b.Close())
			overwriteRaw(t, opts.Dir, c.key, c.value)
			for range 2 { // the second try would fail on the lock if the first leaked it
				b, panicked, err := openRecovering(t, opts)
				if panicked {
					break // the database is still open: do not open it again
				}
				if err == nil {
					_ = b.Close()
				}
				wantErr(t, err, backend.ErrCorrupt)
			}
		})
	}
}

// openRecovering is backend.Open, turning a panic into a test failure so
// that one bug does not stop the whole suite.
func openRecovering(t *testing.T, opts backend.Options) (b *backend.Backend[string], panicked bool, err error) {
	t.Helper()
	defer func() {
		if r := recover(); r != nil {
			t.Errorf("BUG: Open panicked instead of returning ErrCorrupt: %v", r)
			b, panicked, err = nil, true, fmt.Errorf("panic: %v", r)
		}
	}()
	b, err = backend.Open(backend.String, opts)
	return b, false, err
}

// TestOpen_PebbleHook checks that Options.Pebble sees the options the
// backend built and may change them.
func TestOpen_PebbleHook(t *testing.T) {
	called := 0
	opts := backend.Options{Dir: t.TempDir()}
	opts.Pebble = func(o *pebble.Options) {
		called++
		if o.Merger == nil || o.Merger.Name != "pebblestate.list.v1" {
			t.Errorf("hook saw merger %v", o.Merger)
		}
		if !o.DisableWAL {
			t.Error("hook saw the WAL on by default")
		}
		o.L0CompactionThreshold = 3
	}
	MustOpen(t, withOptions(opts))
	if called != 1 {
		t.Fatalf("hook called %d times", called)
	}
}

// TestFlush checks that Flush succeeds with and without data, and that
// flushed data reads back.
func TestFlush(t *testing.T) {
	b := MustOpen(t)
	noErr(t, b.Flush())
	v := must(backend.GetValue(b, backend.ValueDescriptor[int64]{Name: "v", Codec: backend.Int64})).in(t)
	setKey(t, b, "k")
	noErr(t, v.Update(1))
	noErr(t, b.Flush())
	wantValue(t, v, 1)
}

// TestClose_Twice checks that a second Close is a no-op.
func TestClose_Twice(t *testing.T) {
	b := MustOpen(t)
	noErr(t, b.Close())
	noErr(t, b.Close())
}

// TestClose_UseAfterClose checks that every operation of a closed backend
// and its states fails with ErrClosed, without panicking.
func TestClose_UseAfterClose(t *testing.T) {
	b := MustOpen(t)
	v := must(backend.GetValueNS(b, backend.Int64, backend.ValueDescriptor[int64]{Name: "v", Codec: backend.Int64})).in(t)
	l := nsList(t, b, "l")
	m := intMap(t, b, "m")
	r := sumState(t, b, "r")
	a := avgState(t, b, "a", average{})
	setKey(t, b, "k")
	noErr(t, v.Update(1))
	noErr(t, l.Add("x"))
	noErr(t, m.Put(1, "x"))
	noErr(t, r.Add(1))
	noErr(t, a.Add(1))
	noErr(t, b.Close())

	wantErr(t, b.SetCurrentKey("k"), backend.ErrClosed)
	wantErr(t, b.Flush(), backend.ErrClosed)
	wantErr(t, b.CleanupExpired(context.Background()), backend.ErrClosed)

	_, _, err := v.Get()
	wantErr(t, err, backend.ErrClosed)
	wantErr(t, v.Update(2), backend.ErrClosed)
	wantErr(t, v.Clear(), backend.ErrClosed)

	_, err = l.Get()
	wantErr(t, err, backend.ErrClosed)
	wantErr(t, l.Add("y"), backend.ErrClosed)
	wantErr(t, l.AddAll([]string{"y"}), backend.ErrClosed)
	wantErr(t, l.Update([]string{"y"}), backend.ErrClosed)
	wantErr(t, l.Clear(), backend.ErrClosed)
	wantErr(t, l.MergeNamespaces(1, 0), backend.ErrClosed)

	_, _, err = m.Get(1)
	wantErr(t, err, backend.ErrClosed)
	_, err = m.Contains(1)
	wantErr(t, err, backend.ErrClosed)
	wantErr(t, m.Put(2, "y"), backend.ErrClosed)
	wantErr(t, m.PutAll(maps.All(map[int64]string{3: "z"})), backend.ErrClosed)
	wantErr(t, m.Remove(1), backend.ErrClosed)
	_, err = m.IsEmpty()
	wantErr(t, err, backend.ErrClosed)
	wantErr(t, m.Clear(), backend.ErrClosed)
	_, err = lastErr(t, m.Entries())
	wantErr(t, err, backend.ErrClosed)
	_, err = lastErr(t, m.Keys())
	wantErr(t, err, backend.ErrClosed)
	_, err = lastErr(t, m.Values())
	wantErr(t, err, backend.ErrClosed)

	_, _, err = r.Get()
	wantErr(t, err, backend.ErrClosed)
	wantErr(t, r.Add(2), backend.ErrClosed)
	wantErr(t, r.Clear(), backend.ErrClosed)
	wantErr(t, r.MergeNamespaces(1, 0), backend.ErrClosed)

	_, _, err = a.Get()
	wantErr(t, err, backend.ErrClosed)
	wantErr(t, a.Add(2), backend.ErrClosed)
	wantErr(t, a.Clear(), backend.ErrClosed)
	wantErr(t, a.MergeNamespaces(1, 0), backend.ErrClosed)

	for _, seq := range []func() (int, error){
		func() (int, error) { return lastErr(t, v.KeysInNamespace(0)) },
		func() (int, error) { return lastErr(t, l.KeysInNamespace(0)) },
		func() (int, error) { return lastErr(t, m.KeysInNamespace(0)) },
	} {
		n, err := seq()
		if n != 0 {
			t.Errorf("KeysInNamespace on a closed backend yielded %d keys", n)
		}
		wantErr(t, err, backend.ErrClosed)
	}
}
