package backend_test

import (
	"bytes"
	"errors"
	"fmt"
	"iter"
	"maps"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/pebblestate/pebblestate/backend"
	"github.com/pebblestate/pebblestate/internal/keys"
)

// Tests of the key layout [state id][key group][key][namespace][map key]:
// no (key, namespace) pair's encoding is a prefix of another's, so scans of
// one pair never see another's entries, whatever bytes keys and namespaces
// hold. See also FuzzComponentPrefixFree in internal/keys.

// layoutComponent encodes v with c as the backend lays out a key or
// namespace component.
func layoutComponent[T any](t testing.TB, c backend.Codec[T], v T) []byte {
	t.Helper()
	raw, err := c.Append(nil, v)
	if err != nil {
		t.Fatal(err)
	}
	fixed := -1
	if fs, ok := c.(backend.FixedSizer); ok {
		fixed = fs.FixedSize()
	}
	enc, err := keys.AppendComponent(nil, raw, fixed)
	if err != nil {
		t.Fatal(err)
	}
	return enc
}

// layoutRandString returns a string over bytes that look like lengths,
// sometimes around the one/two-byte uvarint boundary.
func layoutRandString(r *rand.Rand) string {
	alphabet := []byte{0x00, 0x01, 0x02, 0x03, 0x7f, 0x80, 0x81, 0xff, 'a'}
	n := r.IntN(5)
	if r.IntN(8) == 0 {
		n = 126 + r.IntN(4)
	}
	b := make([]byte, n)
	for i := range b {
		b[i] = alphabet[r.IntN(len(alphabet))]
	}
	return string(b)
}

func layoutRandInt64(r *rand.Rand) int64 {
	switch r.IntN(4) {
	case 0:
		return []int64{0, -1, 1, math.MinInt64, math.MaxInt64, 127, 128, 255, 256}[r.IntN(9)]
	case 1:
		return int64(r.IntN(512)) - 256
	}
	return int64(r.Uint64())
}

// layoutCheckPrefixFree encodes random (key, namespace) pairs and fails if
// one distinct pair's encoding is a prefix of another's. Sorted encodings
// suffice to compare neighbours: a prefix sorts right before its
// extensions.
func layoutCheckPrefixFree[K, N comparable](t *testing.T, kc backend.Codec[K], nc backend.Codec[N], genK func() K, genN func() N) {
	t.Helper()
	type pair struct {
		k   K
		n   N
		enc []byte
	}
	seen := map[[2]any]bool{}
	var pairs []pair
	for range 3000 {
		k, n := genK(), genN()
		if seen[[2]any{k, n}] {
			continue
		}
		seen[[2]any{k, n}] = true
		enc := append(layoutComponent(t, kc, k), layoutComponent(t, nc, n)...)
		pairs = append(pairs, pair{k, n, enc})
	}
	slices.SortFunc(pairs, func(a, b pair) int { return bytes.Compare(a.enc, b.enc) })
	for i := 1; i < len(pairs); i++ {
		a, b := pairs[i-1], pairs[i]
		if bytes.HasPrefix(b.enc, a.enc) {
			t.Fatalf("%s/%s: pair (%q, %q) encodes as %x, a prefix of pair (%q, %q) as %x",
				kc.Name(), nc.Name(), fmt.Sprint(a.k), fmt.Sprint(a.n), a.enc, fmt.Sprint(b.k), fmt.Sprint(b.n), b.enc)
		}
	}
}

// TestLayoutPairsPrefixFree checks prefix-freedom of encoded (key,
// namespace) pairs for variable- and fixed-size codecs in every
// combination.
func TestLayoutPairsPrefixFree(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	str := func() string { return layoutRandString(r) }
	i64 := func() int64 { return layoutRandInt64(r) }
	void := func() backend.VoidNamespace { return backend.VoidNamespace{} }
	layoutCheckPrefixFree(t, backend.String, backend.String, str, str)
	layoutCheckPrefixFree(t, backend.String, backend.Int64, str, i64)
	layoutCheckPrefixFree(t, backend.Int64, backend.String, i64, str)
	layoutCheckPrefixFree(t, backend.Int64, backend.Int64, i64, i64)
	layoutCheckPrefixFree(t, backend.String, backend.Void, str, void)
}

// layoutAdversarialStrings are keys and namespaces whose bytes look like
// other strings' length prefixes, extensions, or each other's encodings.
func layoutAdversarialStrings() []string {
	long := strings.Repeat("k", 127)
	ss := []string{
		"", "\x00", "\x00\x00", "\x01", "\x01\x00", "\x01a", "\x02ab", "\x03a\x01b",
		"a", "a\x00", "a\x01", "a\x01b", "a\x01\x00", "ab", "ab\x00", "b",
		"\x7f", "\x80", "\x80\x01", "\x81\x01a", "\xff", "\xff\xff", "\xff\x00",
		long, long + "k", long + "kk", "\x80\x01" + long + "k", "\x7f" + long,
	}
	return ss
}

// layoutRun fills a map, a list and a value state, all with a String
// namespace codec, for every (key, namespace) pair of keys x nss that a
// fixed pattern picks, and checks that every pair reads back exactly its
// own entries and that KeysInNamespace finds exactly the keys with data in
// the namespace, before and after clearing some pairs and after reopening.
func layoutRun[K comparable](t *testing.T, kc backend.Codec[K], ks []K, nss []string, maxP int) {
	dir := t.TempDir()
	opts := backend.Options{Dir: dir, MaxParallelism: maxP, MemTableSize: 1 << 20, BlockCacheSize: 1 << 20}
	b, err := backend.Open(kc, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = b.Close() }()

	type handles struct {
		m *backend.Map[K, string, string, string]
		l *backend.List[K, string, string]
		v *backend.Value[K, string, string]
	}
	register := func() handles {
		t.Helper()
		var h handles
		var err error
		if h.m, err = backend.GetMapNS(b, backend.String, backend.MapDescriptor[string, string]{Name: "m", KeyCodec: backend.String, ValueCodec: backend.String}); err != nil {
			t.Fatal(err)
		}
		if h.l, err = backend.GetListNS(b, backend.String, backend.ListDescriptor[string]{Name: "l", Codec: backend.String}); err != nil {
			t.Fatal(err)
		}
		if h.v, err = backend.GetValueNS(b, backend.String, backend.ValueDescriptor[string]{Name: "v", Codec: backend.String}); err != nil {
			t.Fatal(err)
		}
		return h
	}
	h := register()

	userKeys := []string{"", "\x00", "\x01", "a", "\xff"}
	type pairID struct {
		k  K
		ns string
	}
	// want[pair] = map entries; a pair present in want also has a list and
	// a value.
	want := map[pairID]map[string]string{}
	r := rand.New(rand.NewPCG(uint64(maxP), 99))
	for _, k := range ks {
		for _, ns := range nss {
			if r.IntN(4) == 0 {
				continue
			}
			if err := b.SetCurrentKey(k); err != nil {
				t.Fatal(err)
			}
			for _, s := range []interface{ SetCurrentNamespace(string) error }{h.m, h.l, h.v} {
				if err := s.SetCurrentNamespace(ns); err != nil {
					t.Fatal(err)
				}
			}
			entries := map[string]string{}
			for _, uk := range userKeys {
				if r.IntN(3) == 0 {
					continue
				}
				entries[uk] = fmt.Sprintf("%q|%q|%q", fmt.Sprint(k), ns, uk)
			}
			if len(entries) == 0 {
				entries[""] = "only"
			}
			if err := h.m.PutAll(maps.All(entries)); err != nil {
				t.Fatal(err)
			}
			tag := fmt.Sprintf("%q/%q", fmt.Sprint(k), ns)
			if err := h.l.Add(tag); err != nil {
				t.Fatal(err)
			}
			if err := h.v.Update(tag); err != nil {
				t.Fatal(err)
			}
			want[pairID{k, ns}] = entries
		}
	}

	kinFailed := false
	check := func(stage string) {
		t.Helper()
		for _, k := range ks {
			if err := b.SetCurrentKey(k); err != nil {
				t.Fatal(err)
			}
			for _, ns := range nss {
				for _, s := range []interface{ SetCurrentNamespace(string) error }{h.m, h.l, h.v} {
					if err := s.SetCurrentNamespace(ns); err != nil {
						t.Fatal(err)
					}
				}
				entries, present := want[pairID{k, ns}]
				tag := fmt.Sprintf("%q/%q", fmt.Sprint(k), ns)
				var got []backend.Entry[string, string]
				for e, err := range h.m.Entries() {
					if err != nil {
						t.Fatalf("%s: pair %s: %v", stage, tag, err)
					}
					got = append(got, e)
				}
				var wantEntries []backend.Entry[string, string]
				for _, uk := range slices.Sorted(maps.Keys(entries)) {
					wantEntries = append(wantEntries, backend.Entry[string, string]{Key: uk, Value: entries[uk]})
				}
				if !slices.Equal(got, wantEntries) {
					t.Fatalf("%s: pair %s: map entries %q, want %q", stage, tag, got, wantEntries)
				}
				empty, err := h.m.IsEmpty()
				if err != nil || empty != (len(entries) == 0) {
					t.Fatalf("%s: pair %s: IsEmpty = %v, %v; want %v", stage, tag, empty, err, len(entries) == 0)
				}
				for _, uk := range userKeys {
					v, ok, err := h.m.Get(uk)
					wv, wok := entries[uk]
					if err != nil || ok != wok || v != wv {
						t.Fatalf("%s: pair %s: Get(%q) = %q, %v, %v; want %q, %v", stage, tag, uk, v, ok, err, wv, wok)
					}
				}
				l, err := h.l.Get()
				if err != nil {
					t.Fatal(err)
				}
				v, ok, err := h.v.Get()
				if err != nil {
					t.Fatal(err)
				}
				if present {
					if !slices.Equal(l, []string{tag}) || !ok || v != tag {
						t.Fatalf("%s: pair %s: list %q, value %q (%v); want [%s]", stage, tag, l, v, ok, tag)
					}
				} else if l != nil || ok {
					t.Fatalf("%s: pair %s has no data but list %q, value %q (%v)", stage, tag, l, v, ok)
				}
			}
		}
		for _, ns := range nss {
			wantKeys := map[K]bool{}
			wantMapKeys := map[K]bool{}
			for p, entries := range want {
				if p.ns == ns {
					wantKeys[p.k] = true
					if len(entries) > 0 {
						wantMapKeys[p.k] = true
					}
				}
			}
			for name, kin := range map[string]func(string) iter.Seq2[K, error]{
				"map": h.m.KeysInNamespace, "list": h.l.KeysInNamespace, "value": h.v.KeysInNamespace,
			} {
				w := wantKeys
				if name == "map" {
					w = wantMapKeys
				}
				got := map[K]bool{}
				for k, err := range kin(ns) {
					if err != nil {
						t.Fatalf("%s: %s KeysInNamespace(%q): %v", stage, name, ns, err)
					}
					if got[k] {
						t.Fatalf("%s: %s KeysInNamespace(%q) yielded %q twice", stage, name, ns, fmt.Sprint(k))
					}
					got[k] = true
				}
				if !maps.Equal(got, w) {
					var missing, extra []string
					for k := range w {
						if !got[k] {
							missing = append(missing, fmt.Sprintf("%q", fmt.Sprint(k)))
						}
					}
					for k := range got {
						if !w[k] {
							extra = append(extra, fmt.Sprintf("%q", fmt.Sprint(k)))
						}
					}
					// Reported once per run (not fatal) so that the later
					// stages still run.
					if !kinFailed {
						t.Errorf("%s: %s KeysInNamespace(%q): %d keys, want %d; missing %v, unexpected %v",
							stage, name, ns, len(got), len(w), missing, extra)
					}
					kinFailed = true
				}
				// Stopping early is allowed.
				for range kin(ns) {
					break
				}
			}
		}
	}
	check("filled")

	// Clearing a pair's map, or removing its entries one by one, leaves
	// every other pair alone.
	n := 0
	for _, p := range slices.SortedFunc(maps.Keys(want), func(a, b pairID) int {
		return strings.Compare(fmt.Sprintf("%v|%q", a.k, a.ns), fmt.Sprintf("%v|%q", b.k, b.ns))
	}) {
		n++
		if n%3 != 0 {
			continue
		}
		if err := b.SetCurrentKey(p.k); err != nil {
			t.Fatal(err)
		}
		if err := h.m.SetCurrentNamespace(p.ns); err != nil {
			t.Fatal(err)
		}
		if n%2 == 0 {
			if err := h.m.Clear(); err != nil {
				t.Fatal(err)
			}
		} else {
			for uk := range want[p] {
				if err := h.m.Remove(uk); err != nil {
					t.Fatal(err)
				}
			}
		}
		want[p] = map[string]string{}
	}
	check("cleared")

	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if b, err = backend.Open(kc, opts); err != nil {
		t.Fatal(err)
	}
	h = register()
	check("reopened")
}

// TestLayoutAdversarialKeys runs layoutRun with keys and namespaces chosen
// to look like each other's encodings, with one key group (everything
// adjacent), 16 (one-byte key groups) and 300 (two-byte key groups).
func TestLayoutAdversarialKeys(t *testing.T) {
	strs := layoutAdversarialStrings()
	nss := []string{"", "\x00", "\x01", "\x01b", "a", "ab", "b", "\xff", strings.Repeat("n", 130)}
	for _, maxP := range []int{1, 16, 300} {
		t.Run(fmt.Sprintf("string-keys/maxP=%d", maxP), func(t *testing.T) {
			layoutRun(t, backend.String, strs, nss, maxP)
		})
	}
	t.Run("int64-keys/maxP=300", func(t *testing.T) {
		ks := []int64{0, -1, 1, math.MinInt64, math.MaxInt64, 0x0101, 0x7f, 0x80, 1 << 56}
		layoutRun(t, backend.Int64, ks, nss, 300)
	})
}

// layoutLyingCodec claims a fixed size but produces another.
type layoutLyingCodec struct{}

func (layoutLyingCodec) Name() string   { return "lying" }
func (layoutLyingCodec) FixedSize() int { return 4 }
func (layoutLyingCodec) Append(dst []byte, v string) ([]byte, error) {
	if v == "" {
		return append(dst, 0, 0, 0, 0), nil // the zero value keeps the claim
	}
	return append(dst, v...), nil
}
func (layoutLyingCodec) Decode(src []byte) (string, error) { return string(src), nil }

// TestLayoutFixedSizeChecked checks that a codec that breaks its FixedSize
// claim is refused instead of writing keys that could be ambiguous.
func TestLayoutFixedSizeChecked(t *testing.T) {
	b, err := backend.Open(layoutLyingCodec{}, backend.Options{Dir: t.TempDir(), MemTableSize: 1 << 20, BlockCacheSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := b.SetCurrentKey("abcd"); err != nil {
		t.Fatalf("SetCurrentKey of 4 bytes: %v", err)
	}
	if err := b.SetCurrentKey("abc"); !errors.Is(err, backend.ErrInvalidArgument) {
		t.Fatalf("SetCurrentKey of 3 bytes with a 4-byte codec: %v, want ErrInvalidArgument", err)
	}
	if _, ok := b.CurrentKey(); ok {
		t.Fatal("current key still set after a refused SetCurrentKey")
	}
	v, err := backend.GetValueNS(b, layoutLyingCodec{}, backend.ValueDescriptor[int64]{Name: "v", Codec: backend.Int64})
	if err != nil {
		t.Fatal(err)
	}
	if err := v.SetCurrentNamespace("toolong"); !errors.Is(err, backend.ErrInvalidArgument) {
		t.Fatalf("SetCurrentNamespace of 7 bytes with a 4-byte codec: %v, want ErrInvalidArgument", err)
	}
}

// TestLayoutKeysInNamespaceVariableNamespace is the smallest case of
// KeysInNamespace with a variable-size namespace codec: it must find the
// key written in namespace "x", and must not report the key written in
// namespace "\x00" as a key of namespace "".
func TestLayoutKeysInNamespaceVariableNamespace(t *testing.T) {
	b, err := backend.Open(backend.String, backend.Options{Dir: t.TempDir(), MemTableSize: 1 << 20, BlockCacheSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	v, err := backend.GetValueNS(b, backend.String, backend.ValueDescriptor[int64]{Name: "v", Codec: backend.Int64})
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []struct{ key, ns string }{{"k1", "x"}, {"k2", "\x00"}} {
		if err := b.SetCurrentKey(w.key); err != nil {
			t.Fatal(err)
		}
		if err := v.SetCurrentNamespace(w.ns); err != nil {
			t.Fatal(err)
		}
		if err := v.Update(1); err != nil {
			t.Fatal(err)
		}
	}
	collect := func(ns string) []string {
		var out []string
		for k, err := range v.KeysInNamespace(ns) {
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, k)
		}
		return out
	}
	for _, c := range []struct {
		ns   string
		want []string
	}{{"x", []string{"k1"}}, {"\x00", []string{"k2"}}, {"", nil}, {"y", nil}} {
		if got := collect(c.ns); !slices.Equal(got, c.want) {
			t.Errorf("KeysInNamespace(%q) = %q, want %q", c.ns, got, c.want)
		}
	}
}
