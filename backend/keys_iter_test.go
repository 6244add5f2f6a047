package backend_test

import (
	"fmt"
	"iter"
	"slices"
	"testing"

	"github.com/pebblestate/pebblestate/backend"
)

// wantKeys checks that seq yields exactly the keys want, each once.
func wantKeys(t testing.TB, seq iter.Seq2[string, error], want []string) {
	t.Helper()
	got := collect(t, seq)
	if !slices.Equal(sorted(got), sorted(want)) {
		t.Fatalf("KeysInNamespace yielded %d keys %q, want %d keys %q", len(got), trim(sorted(got)), len(want), trim(sorted(want)))
	}
}

// TestKeysInNamespace_ValueEachKeyOnce checks that the keys of a value
// state in one namespace come out once each, and no others.
func TestKeysInNamespace_ValueEachKeyOnce(t *testing.T) {
	b := MustOpen(t)
	v := must(backend.GetValueNS(b, backend.Int64, backend.ValueDescriptor[int64]{Name: "v", Codec: backend.Int64})).in(t)
	var all, even []string
	for i := range 300 {
		k := fmt.Sprint("key-", i)
		all = append(all, k)
		setKey(t, b, k)
		noErr(t, v.SetCurrentNamespace(2))
		noErr(t, v.Update(1))
		if i%2 == 0 {
			even = append(even, k)
			noErr(t, v.SetCurrentNamespace(1))
			noErr(t, v.Update(1))
		}
	}
	wantKeys(t, v.KeysInNamespace(1), even)
	wantKeys(t, v.KeysInNamespace(2), all)
	wantKeys(t, v.KeysInNamespace(3), nil)
	wantKeys(t, v.KeysInNamespace(-1), nil)
}

// TestKeysInNamespace_MapManyEntriesPerKey checks that a key with many map
// entries is yielded once.
func TestKeysInNamespace_MapManyEntriesPerKey(t *testing.T) {
	b := MustOpen(t)
	m := intMap(t, b, "m")
	var ns1, ns2 []string
	for i := range 40 {
		k := fmt.Sprint("key-", i)
		setKey(t, b, k)
		noErr(t, m.SetCurrentNamespace(1))
		for j := range int64(50) {
			noErr(t, m.Put(j-25, "v"))
		}
		ns1 = append(ns1, k)
		if i%3 == 0 {
			noErr(t, m.SetCurrentNamespace(2))
			noErr(t, m.Put(0, "v"))
			ns2 = append(ns2, k)
		}
	}
	wantKeys(t, m.KeysInNamespace(1), ns1)
	wantKeys(t, m.KeysInNamespace(2), ns2)
	wantKeys(t, m.KeysInNamespace(0), nil)
}

// TestKeysInNamespace_VoidMapAndList checks states in the void namespace.
func TestKeysInNamespace_VoidMapAndList(t *testing.T) {
	b := MustOpen(t)
	m := must(backend.GetMap(b, backend.MapDescriptor[string, int64]{Name: "m", KeyCodec: backend.String, ValueCodec: backend.Int64})).in(t)
	l := intList(t, b, "l")
	keys := []string{"", "a", "ab", "\xff", "\xff\xff", "b"}
	for _, k := range keys {
		setKey(t, b, k)
		for _, uk := range []string{"", "x", "\xff"} {
			noErr(t, m.Put(uk, 1))
		}
		noErr(t, l.Add(1))
		noErr(t, l.Add(2))
	}
	wantKeys(t, m.KeysInNamespace(backend.VoidNamespace{}), keys)
	wantKeys(t, l.KeysInNamespace(backend.VoidNamespace{}), keys)
}

// TestKeysInNamespace_VariableSizeNamespaces checks namespaces of a
// variable-size codec (strings), including the empty namespace and
// namespaces that are prefixes of each other.
func TestKeysInNamespace_VariableSizeNamespaces(t *testing.T) {
	b := MustOpen(t)
	v := must(backend.GetValueNS(b, backend.String, backend.ValueDescriptor[int64]{Name: "v", Codec: backend.Int64})).in(t)
	m := must(backend.GetMapNS(b, backend.String, backend.MapDescriptor[int64, int64]{Name: "m", KeyCodec: backend.Int64, ValueCodec: backend.Int64})).in(t)
	byNS := map[string][]string{
		"":     {"k-empty"},
		"\x00": {"k-zero", "k-both"},
		"x":    {"k-x", "k-both"},
		"xy":   {"k-xy"},
	}
	for ns, ks := range byNS {
		for _, k := range ks {
			setKey(t, b, k)
			noErr(t, v.SetCurrentNamespace(ns))
			noErr(t, v.Update(1))
			noErr(t, m.SetCurrentNamespace(ns))
			noErr(t, m.Put(1, 1))
			noErr(t, m.Put(2, 1))
		}
	}
	for ns, ks := range byNS {
		t.Run(fmt.Sprintf("%q", ns), func(t *testing.T) {
			wantKeys(t, v.KeysInNamespace(ns), ks)
			wantKeys(t, m.KeysInNamespace(ns), ks)
		})
	}
	wantKeys(t, v.KeysInNamespace("absent"), nil)
}

// TestKeysInNamespace_OnlyThisState checks that keys with entries only in
// other states are not yielded.
func TestKeysInNamespace_OnlyThisState(t *testing.T) {
	b := MustOpen(t)
	l1 := intList(t, b, "one")
	l2 := intList(t, b, "two")
	setKey(t, b, "a")
	noErr(t, l1.Add(1))
	setKey(t, b, "b")
	noErr(t, l2.Add(1))
	wantKeys(t, l1.KeysInNamespace(backend.VoidNamespace{}), []string{"a"})
	wantKeys(t, l2.KeysInNamespace(backend.VoidNamespace{}), []string{"b"})
}

// TestKeysInNamespace_AllOwnedKeyGroups checks, on instances owning part
// of the key groups (one- and two-byte key-group prefixes), that keys of
// every owned key group are found, the first and last included.
func TestKeysInNamespace_AllOwnedKeyGroups(t *testing.T) {
	for _, c := range []struct {
		maxP int
		kgs  backend.KeyGroupRange
	}{
		{128, backend.KeyGroupRange{Start: 37, End: 91}},
		{128, backend.KeyGroupRange{Start: 100, End: 128}},
		{1000, backend.KeyGroupRange{Start: 255, End: 513}},
		{1000, backend.KeyGroupRange{Start: 0, End: 1000}},
	} {
		t.Run(fmt.Sprint(c.maxP, c.kgs), func(t *testing.T) {
			b := MustOpen(t, withOptions(backend.Options{MaxParallelism: c.maxP, KeyGroups: c.kgs}))
			v := must(backend.GetValue(b, backend.ValueDescriptor[int64]{Name: "v", Codec: backend.Int64})).in(t)
			m := must(backend.GetMap(b, backend.MapDescriptor[int64, int64]{Name: "m", KeyCodec: backend.Int64, ValueCodec: backend.Int64})).in(t)
			keys := keysIn(t, c.maxP, c.kgs, 400)
			seen := map[int]bool{}
			for _, k := range keys {
				setKey(t, b, k)
				seen[b.CurrentKeyGroup()] = true
				noErr(t, v.Update(1))
				noErr(t, m.Put(1, 1))
				noErr(t, m.Put(2, 1))
			}
			// Make sure the edges of the range are covered.
			for _, kg := range []int{c.kgs.Start, c.kgs.End - 1} {
				if seen[kg] {
					continue
				}
				for i := 0; ; i++ {
					k := fmt.Sprint("edge-", i)
					if got, _ := backend.KeyGroupOf(backend.String, k, c.maxP); got == kg {
						setKey(t, b, k)
						noErr(t, v.Update(1))
						noErr(t, m.Put(1, 1))
						keys = append(keys, k)
						break
					}
				}
			}
			wantKeys(t, v.KeysInNamespace(backend.VoidNamespace{}), keys)
			wantKeys(t, m.KeysInNamespace(backend.VoidNamespace{}), keys)
		})
	}
}

// TestKeysInNamespace_ModifyInLoop checks that the loop body may set the
// current key and change or clear state, while the iteration still yields
// exactly the keys present when it started.
func TestKeysInNamespace_ModifyInLoop(t *testing.T) {
	b := MustOpen(t)
	v := must(backend.GetValueNS(b, backend.Int64, backend.ValueDescriptor[int64]{Name: "v", Codec: backend.Int64})).in(t)
	m := intMap(t, b, "m")
	keys := keysIn(t, 128, backend.KeyGroupRange{Start: 0, End: 128}, 100)
	for _, k := range keys {
		setKey(t, b, k)
		noErr(t, v.Update(1))
		noErr(t, m.Put(1, "a"))
		noErr(t, m.Put(2, "b"))
	}
	var got []string
	for k, err := range v.KeysInNamespace(0) {
		noErr(t, err)
		got = append(got, k)
		setKey(t, b, k)
		noErr(t, v.Clear())
		noErr(t, v.SetCurrentNamespace(1))
		noErr(t, v.Update(2))
		noErr(t, v.SetCurrentNamespace(0))
		setKey(t, b, "new-"+k) // not yielded: added after the iteration began
		noErr(t, v.Update(3))
	}
	if !slices.Equal(sorted(got), sorted(keys)) {
		t.Fatalf("loop saw %d keys, want %d", len(got), len(keys))
	}
	wantKeys(t, v.KeysInNamespace(1), keys)

	got = nil
	for k, err := range m.KeysInNamespace(0) {
		noErr(t, err)
		got = append(got, k)
		setKey(t, b, k)
		noErr(t, m.Clear())
	}
	if !slices.Equal(sorted(got), sorted(keys)) {
		t.Fatalf("map loop saw %d keys, want %d", len(got), len(keys))
	}
	wantKeys(t, m.KeysInNamespace(0), nil)
}

// TestKeysInNamespace_BreakEarly checks that leaving the loop early is
// clean (Close at the end of the test reports leaked iterators).
func TestKeysInNamespace_BreakEarly(t *testing.T) {
	b := MustOpen(t)
	l := intList(t, b, "l")
	for _, k := range []string{"a", "b", "c"} {
		setKey(t, b, k)
		noErr(t, l.Add(1))
	}
	n := 0
	for _, err := range l.KeysInNamespace(backend.VoidNamespace{}) {
		noErr(t, err)
		n++
		break
	}
	if n != 1 {
		t.Fatalf("loop ran %d times", n)
	}
}

// TestKeysInNamespace_NeedsNoCurrentKey checks that iteration works with
// no current key and leaves the current key alone.
func TestKeysInNamespace_NeedsNoCurrentKey(t *testing.T) {
	dir := t.TempDir()
	b := MustOpen(t, inDir(dir))
	l := intList(t, b, "l")
	setKey(t, b, "a")
	noErr(t, l.Add(1))
	b = reopen(t, b, inDir(dir))
	l = intList(t, b, "l")
	wantKeys(t, l.KeysInNamespace(backend.VoidNamespace{}), []string{"a"})
	if _, ok := b.CurrentKey(); ok {
		t.Fatal("KeysInNamespace set a current key")
	}
	setKey(t, b, "z")
	wantKeys(t, l.KeysInNamespace(backend.VoidNamespace{}), []string{"a"})
	if k, _ := b.CurrentKey(); k != "z" {
		t.Fatalf("CurrentKey = %q after KeysInNamespace, want z", k)
	}
}

// TestKeysInNamespace_Errors checks that an undecodable stored key and an
// unencodable namespace end the iteration with an error.
func TestKeysInNamespace_Errors(t *testing.T) {
	b := MustOpenK(t, pickyCodec{})
	ns := lyingCodec{short: func(n int64) bool { return n < 0 }}
	v := must(backend.GetValueNS[int64, int64](b, ns, backend.ValueDescriptor[int64]{Name: "v", Codec: backend.Int64})).in(t)
	setKey(t, b, 666) // encodes fine, cannot be decoded
	noErr(t, v.Update(1))
	_, err := lastErr(t, v.KeysInNamespace(0))
	wantErr(t, err, backend.ErrCorrupt)
	wantErr(t, err, errDecode)

	n, err := lastErr(t, v.KeysInNamespace(-1))
	if n != 0 {
		t.Fatalf("yielded %d keys", n)
	}
	wantErr(t, err, backend.ErrInvalidArgument)
}

// TestSetCurrentKey_OutOfRange checks that a key of a key group the
// instance does not own is refused with ErrKeyGroupOutOfRange and leaves
// no current key, so state access cannot touch the previous key.
func TestSetCurrentKey_OutOfRange(t *testing.T) {
	owned := backend.KeyGroupRange{Start: 0, End: 64}
	b := MustOpen(t, withOptions(backend.Options{KeyGroups: owned}))
	v := must(backend.GetValue(b, backend.ValueDescriptor[int64]{Name: "v", Codec: backend.Int64})).in(t)
	in := keysIn(t, 128, owned, 1)[0]
	out := keysIn(t, 128, backend.KeyGroupRange{Start: 64, End: 128}, 1)[0]

	setKey(t, b, in)
	noErr(t, v.Update(1))
	err := b.SetCurrentKey(out)
	wantErr(t, err, backend.ErrKeyGroupOutOfRange)
	if _, ok := b.CurrentKey(); ok {
		t.Fatal("current key still set after a refused SetCurrentKey")
	}
	if kg := b.CurrentKeyGroup(); kg != -1 {
		t.Fatalf("CurrentKeyGroup = %d, want -1", kg)
	}
	_, _, err = v.Get()
	wantErr(t, err, backend.ErrNoCurrentKey)
	wantErr(t, v.Update(2), backend.ErrNoCurrentKey)

	setKey(t, b, in)
	wantValue(t, v, 1)
}

// TestSetCurrentKey_KeysLandInOwningInstance opens one backend per subtask
// of parallelism p and checks that each key is accepted by exactly the
// subtask that owns its key group, and only there.
func TestSetCurrentKey_KeysLandInOwningInstance(t *testing.T) {
	for _, c := range []struct{ maxP, p int }{{128, 3}, {1000, 7}, {129, 2}} {
		t.Run(fmt.Sprintf("maxP=%d,p=%d", c.maxP, c.p), func(t *testing.T) {
			bs := make([]*backend.Backend[string], c.p)
			vs := make([]*backend.Value[string, backend.VoidNamespace, string], c.p)
			for i := range bs {
				r := must(backend.KeyGroupRangeForSubtask(c.maxP, c.p, i)).in(t)
				bs[i] = MustOpen(t, withOptions(backend.Options{MaxParallelism: c.maxP, KeyGroups: r}))
				vs[i] = must(backend.GetValue(bs[i], backend.ValueDescriptor[string]{Name: "v", Codec: backend.String})).in(t)
			}
			for n := range 300 {
				k := fmt.Sprint("user-", n)
				kg := must(backend.KeyGroupOf(backend.String, k, c.maxP)).in(t)
				owner := must(backend.SubtaskForKeyGroup(c.maxP, c.p, kg)).in(t)
				for i, b := range bs {
					err := b.SetCurrentKey(k)
					if i != owner {
						wantErr(t, err, backend.ErrKeyGroupOutOfRange)
						continue
					}
					noErr(t, err)
					if got := b.CurrentKeyGroup(); got != kg {
						t.Fatalf("CurrentKeyGroup(%q) = %d, want %d", k, got, kg)
					}
					noErr(t, vs[i].Update(k))
				}
			}
			// Every key is readable from its owner.
			for i, b := range bs {
				for k, err := range vs[i].KeysInNamespace(backend.VoidNamespace{}) {
					noErr(t, err)
					setKey(t, b, k)
					wantValue(t, vs[i], k)
				}
			}
		})
	}
}

// TestCurrentKeyGroup checks CurrentKeyGroup against AssignToKeyGroup on
// the key codec's bytes, for string and int64 keys.
func TestCurrentKeyGroup(t *testing.T) {
	b := MustOpen(t, withOptions(backend.Options{MaxParallelism: 1000}))
	if kg := b.CurrentKeyGroup(); kg != -1 {
		t.Fatalf("CurrentKeyGroup before SetCurrentKey = %d", kg)
	}
	for _, k := range []string{"", "a", "hello", "user-42"} {
		setKey(t, b, k)
		want := must(backend.AssignToKeyGroup([]byte(k), 1000)).in(t)
		if got := b.CurrentKeyGroup(); got != want {
			t.Fatalf("CurrentKeyGroup(%q) = %d, want %d", k, got, want)
		}
	}
	bi := MustOpenK(t, backend.Int64, withOptions(backend.Options{MaxParallelism: 32768}))
	for _, k := range []int64{-1, 0, 1, 1 << 50} {
		setKey(t, bi, k)
		enc := must(backend.Int64.Append(nil, k)).in(t)
		want := must(backend.AssignToKeyGroup(enc, 32768)).in(t)
		if got := bi.CurrentKeyGroup(); got != want {
			t.Fatalf("CurrentKeyGroup(%d) = %d, want %d", k, got, want)
		}
	}
}

// TestKeyGroupFunctions checks the public key-group functions' argument
// checks and KeyGroupOf's handling of codec errors.
func TestKeyGroupFunctions(t *testing.T) {
	_, err := backend.AssignToKeyGroup([]byte("k"), 0)
	wantErr(t, err, backend.ErrInvalidArgument)
	_, err = backend.AssignToKeyGroup([]byte("k"), backend.MaxParallelismLimit+1)
	wantErr(t, err, backend.ErrInvalidArgument)
	_, err = backend.KeyGroupOf(backend.String, "k", -1)
	wantErr(t, err, backend.ErrInvalidArgument)
	_, err = backend.KeyGroupOf[int64](pickyCodec{}, 13, 128)
	wantErr(t, err, errAppend)
	_, err = backend.KeyGroupRangeForSubtask(128, 129, 0)
	wantErr(t, err, backend.ErrInvalidArgument)
	_, err = backend.KeyGroupRangeForSubtask(128, 4, 4)
	wantErr(t, err, backend.ErrInvalidArgument)
	_, err = backend.SubtaskForKeyGroup(128, 4, 128)
	wantErr(t, err, backend.ErrInvalidArgument)
	_, err = backend.ComputeDefaultMaxParallelism(0)
	wantErr(t, err, backend.ErrInvalidArgument)
	if got := must(backend.ComputeDefaultMaxParallelism(100)).in(t); got != 256 {
		t.Fatalf("ComputeDefaultMaxParallelism(100) = %d, want 256", got)
	}
	if got := must(backend.KeyGroupRangeForSubtask(128, 3, 1)).in(t); got != (backend.KeyGroupRange{Start: 43, End: 86}) {
		t.Fatalf("KeyGroupRangeForSubtask(128, 3, 1) = %v, want [43, 86)", got)
	}
	if backend.MaxParallelismLimit != 1<<15 {
		t.Fatalf("MaxParallelismLimit = %d", backend.MaxParallelismLimit)
	}
}
