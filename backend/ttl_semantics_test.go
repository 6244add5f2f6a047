package backend_test

// State TTL semantics: the scenarios of Flink's TTL test suite
// (TtlStateTestBase and its per-kind contexts), in our own words, for
// every state kind crossed with both update types and both visibilities.
// Background and incremental cleanup are off here, so reads are the only
// thing that removes expired entries, and what a read left on disk is
// checked by reading the closed database with Pebble directly.

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pebblestate/pebblestate/backend"
	"github.com/pebblestate/pebblestate/ttl"
)

// ---------------------------------------------------------------------------
// What the TTL tests (ttl_*_test.go) share besides the package's helpers.

// ttlD is the TTL of most tests. Only the ManualClock moves time.
const ttlD = 100 * time.Millisecond

// ttlCfg is a TTL config with background cleanup off.
func ttlCfg(upd ttl.UpdateType, vis ttl.Visibility) ttl.Config {
	return ttl.Config{TTL: ttlD, Update: upd, Visibility: vis, Cleanup: ttl.Cleanup{DisableBackground: true}}
}

// ttlLast and ttlFoldSum are what a read returns after writing v onto what
// a read returned before (prev, had): the last value, or the sum.
func ttlLast(_ int64, had bool, v int64) int64 { return v }
func ttlFoldSum(prev int64, had bool, v int64) int64 {
	if had {
		return prev + v
	}
	return v
}

// ---------------------------------------------------------------------------
// The state kinds behind one interface: write a value, read what a read
// returns, clear.

type ttlAccess interface {
	write(v int64) error
	read() (int64, bool, error)
	clear() error
}

type ttlValueAcc struct {
	s *backend.Value[string, backend.VoidNamespace, int64]
}

func (a ttlValueAcc) write(v int64) error        { return a.s.Update(v) }
func (a ttlValueAcc) read() (int64, bool, error) { return a.s.Get() }
func (a ttlValueAcc) clear() error               { return a.s.Clear() }

// ttlListAcc writes by replacing the list with one element.
type ttlListAcc struct {
	s *backend.List[string, backend.VoidNamespace, int64]
}

func (a ttlListAcc) write(v int64) error { return a.s.Update([]int64{v}) }
func (a ttlListAcc) read() (int64, bool, error) {
	l, err := a.s.Get()
	switch {
	case err != nil:
		return 0, false, err
	case len(l) == 0:
		return 0, false, nil
	case len(l) == 1:
		return l[0], true, nil
	}
	return 0, false, fmt.Errorf("list holds %v; want at most one element", l)
}
func (a ttlListAcc) clear() error { return a.s.Clear() }

// ttlMapAcc writes and reads one map key.
type ttlMapAcc struct {
	s *backend.Map[string, backend.VoidNamespace, string, int64]
}

func (a ttlMapAcc) write(v int64) error        { return a.s.Put("uk", v) }
func (a ttlMapAcc) read() (int64, bool, error) { return a.s.Get("uk") }
func (a ttlMapAcc) clear() error               { return a.s.Clear() }

type ttlReducingAcc struct {
	s *backend.Reducing[string, backend.VoidNamespace, int64]
}

func (a ttlReducingAcc) write(v int64) error        { return a.s.Add(v) }
func (a ttlReducingAcc) read() (int64, bool, error) { return a.s.Get() }
func (a ttlReducingAcc) clear() error               { return a.s.Clear() }

type ttlAggAcc struct {
	s *backend.Aggregating[string, backend.VoidNamespace, int64, avgAcc, int64]
}

func (a ttlAggAcc) write(v int64) error        { return a.s.Add(v) }
func (a ttlAggAcc) read() (int64, bool, error) { return a.s.Get() }
func (a ttlAggAcc) clear() error               { return a.s.Clear() }

// ttlKind is a state kind under test.
type ttlKind struct {
	name     string
	register func(b *backend.Backend[string], name string, cfg ttl.Config) (ttlAccess, error)
	// fold is what a read returns after writing v onto what a read
	// returned before (prev, had).
	fold func(prev int64, had bool, v int64) int64
	// extra are the kind's own scenarios.
	extra []ttlScenario
}

func ttlKinds() []ttlKind {
	return []ttlKind{
		{
			name: "value",
			register: func(b *backend.Backend[string], name string, cfg ttl.Config) (ttlAccess, error) {
				s, err := backend.GetValue(b, backend.ValueDescriptor[int64]{Name: name, Codec: backend.Int64, TTL: cfg})
				return ttlValueAcc{s}, err
			},
			fold: ttlLast,
		},
		{
			name: "list",
			register: func(b *backend.Backend[string], name string, cfg ttl.Config) (ttlAccess, error) {
				s, err := backend.GetList(b, backend.ListDescriptor[int64]{Name: name, Codec: backend.Int64, TTL: cfg})
				return ttlListAcc{s}, err
			},
			fold:  ttlLast,
			extra: ttlListScenarios,
		},
		{
			name: "map",
			register: func(b *backend.Backend[string], name string, cfg ttl.Config) (ttlAccess, error) {
				s, err := backend.GetMap(b, backend.MapDescriptor[string, int64]{Name: name, KeyCodec: backend.String, ValueCodec: backend.Int64, TTL: cfg})
				return ttlMapAcc{s}, err
			},
			fold:  ttlLast,
			extra: ttlMapScenarios,
		},
		{
			name: "reducing",
			register: func(b *backend.Backend[string], name string, cfg ttl.Config) (ttlAccess, error) {
				s, err := backend.GetReducing(b, backend.ReducingDescriptor[int64]{Name: name, Codec: backend.Int64, Reduce: sum, TTL: cfg})
				return ttlReducingAcc{s}, err
			},
			fold:  ttlFoldSum,
			extra: []ttlScenario{{"merge namespaces skips expired accumulators", ttlReducingMerge}},
		},
		{
			name: "aggregating",
			register: func(b *backend.Backend[string], name string, cfg ttl.Config) (ttlAccess, error) {
				s, err := backend.GetAggregating(b, backend.AggregatingDescriptor[int64, avgAcc, int64]{
					Name: name, Codec: backend.JSON[avgAcc](), Function: sumAgg{}, TTL: cfg})
				return ttlAggAcc{s}, err
			},
			fold:  ttlFoldSum,
			extra: []ttlScenario{{"merge namespaces skips expired accumulators", ttlAggregatingMerge}},
		},
	}
}

// ---------------------------------------------------------------------------
// The scenario harness.

type ttlScenario struct {
	name string
	run  func(h *ttlH)
}

// ttlH runs one scenario on its own state (named after the scenario) in a
// backend shared by the scenarios of one kind and config.
type ttlH struct {
	t      *testing.T
	env    *env
	kind   ttlKind
	cfg    ttl.Config
	name   string
	st     ttlAccess
	stored map[string]int // units expected on disk at the end, by state name
}

func (h *ttlH) onRead() bool                             { return h.cfg.Update == ttl.OnReadAndWrite }
func (h *ttlH) retExpired() bool                         { return h.cfg.Visibility == ttl.ReturnExpiredIfNotCleanedUp }
func (h *ttlH) key(k string)                             { h.t.Helper(); h.env.setKey(k) }
func (h *ttlH) advance(d time.Duration)                  { h.env.advance(d) }
func (h *ttlH) fold(prev int64, had bool, v int64) int64 { return h.kind.fold(prev, had, v) }

func (h *ttlH) write(v int64) {
	h.t.Helper()
	if err := h.st.write(v); err != nil {
		h.t.Fatalf("write(%d): %v", v, err)
	}
}

func (h *ttlH) clear() {
	h.t.Helper()
	if err := h.st.clear(); err != nil {
		h.t.Fatalf("clear: %v", err)
	}
}

// want checks that a read returns v.
func (h *ttlH) want(v int64) {
	h.t.Helper()
	got, ok, err := h.st.read()
	if err != nil || !ok || got != v {
		h.t.Fatalf("at +%dms: read = %d, %v, %v; want %d, true", h.elapsed(), got, ok, err, v)
	}
}

// wantNone checks that a read returns nothing.
func (h *ttlH) wantNone() {
	h.t.Helper()
	got, ok, err := h.st.read()
	if err != nil || ok {
		h.t.Fatalf("at +%dms: read = %d, %v, %v; want nothing", h.elapsed(), got, ok, err)
	}
}

// wantExpired checks what reads of an expired, not yet cleaned up value
// return: under ReturnExpiredIfNotCleanedUp the stale value once (the read
// removes it), under NeverReturnExpired nothing; then nothing.
func (h *ttlH) wantExpired(stale int64) {
	h.t.Helper()
	if h.retExpired() {
		h.want(stale)
	}
	h.wantNone()
}

func (h *ttlH) elapsed() int64 { return h.env.now() - ttl.Millis(envT0) }

func (h *ttlH) removed() uint64 { return h.env.b.TTLMetrics().ReadRemoved }

// wantRemoved checks that reads removed n units since mark.
func (h *ttlH) wantRemoved(mark uint64, n int) {
	h.t.Helper()
	if got := h.removed() - mark; got != uint64(n) {
		h.t.Fatalf("reads removed %d expired units; want %d", got, n)
	}
}

// leaves declares what the scenario's state keeps on disk at the end.
func (h *ttlH) leaves(n int) { h.stored[h.name] = n }

// leavesFor declares what another state of the scenario keeps on disk.
func (h *ttlH) leavesFor(name string, n int) { h.stored[name] = n }

// ttlConfigs is the matrix of update types and visibilities.
var ttlConfigs = []struct {
	name string
	upd  ttl.UpdateType
	vis  ttl.Visibility
}{
	{"OnCreateAndWrite/NeverReturnExpired", ttl.OnCreateAndWrite, ttl.NeverReturnExpired},
	{"OnCreateAndWrite/ReturnExpiredIfNotCleanedUp", ttl.OnCreateAndWrite, ttl.ReturnExpiredIfNotCleanedUp},
	{"OnReadAndWrite/NeverReturnExpired", ttl.OnReadAndWrite, ttl.NeverReturnExpired},
	{"OnReadAndWrite/ReturnExpiredIfNotCleanedUp", ttl.OnReadAndWrite, ttl.ReturnExpiredIfNotCleanedUp},
}

// TestTTLSemantics runs every scenario for every kind and config. Each
// (kind, config) pair gets one backend; each scenario its own state and
// its own stretch of the clock. At the end the backend is closed and the
// stored units of every scenario's state are compared with what it
// declared: expired entries a read met are physically gone, expired
// entries no read met are still there (nothing else cleans up here).
func TestTTLSemantics(t *testing.T) {
	for _, kind := range ttlKinds() {
		t.Run(kind.name, func(t *testing.T) {
			for _, c := range ttlConfigs {
				t.Run(c.name, func(t *testing.T) {
					cfg := ttlCfg(c.upd, c.vis)
					env := newEnv(t)
					stored := map[string]int{}
					failed := map[string]bool{}
					for _, sc := range append(slices.Clone(ttlGenericScenarios), kind.extra...) {
						ok := t.Run(sc.name, func(t *testing.T) {
							env.t = t
							defer func() { env.t = nil }()
							st, err := kind.register(env.b, sc.name, cfg)
							noErr(t, err)
							sc.run(&ttlH{t: t, env: env, kind: kind, cfg: cfg, name: sc.name, st: st, stored: stored})
						})
						if !ok {
							failed[sc.name] = true
						}
					}
					env.t = t
					raw := env.raw()
					for name, want := range stored {
						if failed[strings.SplitN(name, "#", 2)[0]] {
							continue
						}
						if got := raw.units(t, name); got != want {
							t.Errorf("state %q stores %d units on disk; want %d", name, got, want)
						}
					}
					for name := range raw.records {
						if _, ok := stored[name]; !ok && !failed[strings.SplitN(name, "#", 2)[0]] {
							t.Errorf("state %q declared nothing about its stored entries", name)
						}
					}
					if n := raw.orphans(); n != 0 {
						t.Errorf("%d entries under ids no state names", n)
					}
				})
			}
		})
	}
}

// ---------------------------------------------------------------------------
// The scenarios every kind runs.

var ttlGenericScenarios = []ttlScenario{
	{"absent", func(h *ttlH) {
		h.key("k")
		mark := h.removed()
		h.wantNone()
		h.clear()
		h.wantNone()
		h.advance(3 * ttlD)
		h.wantNone()
		h.wantRemoved(mark, 0)
		h.leaves(0)
	}},
	{"alive just before expiry", func(h *ttlH) {
		h.key("k")
		h.write(1)
		h.advance(ttlD - time.Millisecond)
		mark := h.removed()
		h.want(1)
		h.wantRemoved(mark, 0)
		h.leaves(1)
	}},
	{"expired exactly at expiry", func(h *ttlH) {
		h.key("k")
		h.write(1)
		h.advance(ttlD)
		mark := h.removed()
		h.wantExpired(1)
		h.wantRemoved(mark, 1)
		h.advance(ttlD)
		h.wantNone()
		h.leaves(0)
	}},
	{"write refreshes the stamp", func(h *ttlH) {
		h.key("k")
		h.write(1)
		h.advance(ttlD - time.Millisecond)
		h.write(2)
		want := h.fold(h.fold(0, false, 1), true, 2)
		h.advance(ttlD - time.Millisecond) // the first write's stamp is long expired
		h.want(want)
		h.advance(time.Millisecond) // exactly the second write's expiry
		if h.onRead() {
			h.want(want) // the read before refreshed it
			h.leaves(1)
		} else {
			h.wantExpired(want)
			h.leaves(0)
		}
	}},
	{"read refreshes only under OnReadAndWrite", func(h *ttlH) {
		h.key("k")
		h.write(1)
		h.advance(ttlD - time.Millisecond)
		h.want(1)
		h.advance(time.Millisecond) // the write's expiry
		if !h.onRead() {
			h.wantExpired(1)
			h.leaves(0)
			return
		}
		h.want(1) // stamped by the read at ttl-1: alive; stamps again
		h.advance(ttlD - time.Millisecond)
		h.want(1) // stamped at ttl: alive at 2ttl-1
		h.advance(ttlD)
		h.wantExpired(1)
		h.leaves(0)
	}},
	{"read removes what it finds expired", func(h *ttlH) {
		h.key("read")
		h.write(7)
		h.key("unread")
		h.write(8)
		h.advance(2 * ttlD)
		h.key("read")
		mark := h.removed()
		h.wantExpired(7)
		h.wantRemoved(mark, 1)
		// "unread" expired too, but nothing read it and nothing else
		// cleans up here: it is still stored.
		h.leaves(1)
	}},
	{"clear", func(h *ttlH) {
		h.key("k")
		h.write(1)
		h.clear()
		h.wantNone()
		mark := h.removed()
		h.advance(ttlD)
		h.wantNone()
		h.wantRemoved(mark, 0) // nothing left to expire
		h.write(2)
		h.want(h.fold(0, false, 2))
		h.leaves(1)
	}},
	{"accumulates while alive, starts fresh after expiry", func(h *ttlH) {
		h.key("k")
		h.write(1)
		h.advance(ttlD / 2)
		h.write(2)
		cur := h.fold(h.fold(0, false, 1), true, 2)
		h.advance(ttlD/2 + 10*time.Millisecond) // the first write expired; the second not
		h.want(cur)
		h.write(4)
		h.want(h.fold(cur, true, 4))
		h.advance(ttlD + ttlD/2)
		h.write(5) // what was stored expired: a fresh start
		h.want(h.fold(0, false, 5))
		h.leaves(1)
	}},
	{"stale read then write starts fresh", func(h *ttlH) {
		h.key("k")
		h.write(3)
		h.advance(ttlD)
		if h.retExpired() {
			h.want(3) // the stale value, removed by this read
		}
		h.write(4)
		h.want(h.fold(0, false, 4))
		h.leaves(1)
	}},
	{"many keys expiring at different times", func(h *ttlH) {
		const n = 10
		for i := range n { // key i is written at +10i ms
			h.key(fmt.Sprint("k", i))
			h.write(int64(100 + i))
			h.advance(10 * time.Millisecond)
		}
		h.advance(45 * time.Millisecond) // +145: keys 0..4 expired (10i+100 <= 145)
		mark := h.removed()
		for i := range n {
			h.key(fmt.Sprint("k", i))
			if i <= 4 {
				h.wantExpired(int64(100 + i))
			} else {
				h.want(int64(100 + i))
			}
		}
		h.wantRemoved(mark, 5)
		h.advance(50 * time.Millisecond) // +195: every write expired; reads at +145 refreshed 5..9 under OnReadAndWrite
		for i := range n {
			h.key(fmt.Sprint("k", i))
			switch {
			case i <= 4:
				h.wantNone()
			case h.onRead():
				h.want(int64(100 + i))
			default:
				h.wantExpired(int64(100 + i))
			}
		}
		if h.onRead() {
			h.leaves(5)
		} else {
			h.leaves(0)
		}
	}},
}

// ---------------------------------------------------------------------------
// List: every element has its own stamp.

func ttlWantList(h *ttlH, l *backend.List[string, string, int64], want ...int64) {
	h.t.Helper()
	got, err := l.Get()
	if err != nil || !slices.Equal(got, want) {
		h.t.Fatalf("at +%dms: list = %v, %v; want %v", h.elapsed(), got, err, want)
	}
}

func ttlWantVoidList(h *ttlH, l *backend.List[string, backend.VoidNamespace, int64], want ...int64) {
	h.t.Helper()
	got, err := l.Get()
	if err != nil || !slices.Equal(got, want) {
		h.t.Fatalf("at +%dms: list = %v, %v; want %v", h.elapsed(), got, err, want)
	}
}

var ttlListScenarios = []ttlScenario{
	{"elements expire one by one", func(h *ttlH) {
		l := h.st.(ttlListAcc).s
		h.key("k")
		noErr(h.t, l.Add(1)) // +0
		h.advance(30 * time.Millisecond)
		noErr(h.t, l.Add(2)) // +30
		h.advance(30 * time.Millisecond)
		noErr(h.t, l.AddAll([]int64{3, 4})) // +60
		h.advance(40 * time.Millisecond)    // +100: 1 expires exactly now
		mark := h.removed()
		if h.retExpired() {
			ttlWantVoidList(h, l, 1, 2, 3, 4)
		}
		ttlWantVoidList(h, l, 2, 3, 4)
		h.wantRemoved(mark, 1)
		h.advance(30 * time.Millisecond) // +130: 2 expires under OnCreateAndWrite
		if h.onRead() {
			ttlWantVoidList(h, l, 2, 3, 4) // restamped at +100
		} else {
			if h.retExpired() {
				ttlWantVoidList(h, l, 2, 3, 4)
			}
			ttlWantVoidList(h, l, 3, 4)
		}
		h.advance(2 * ttlD) // everything expired
		if h.retExpired() {
			if h.onRead() {
				ttlWantVoidList(h, l, 2, 3, 4)
			} else {
				ttlWantVoidList(h, l, 3, 4)
			}
		}
		ttlWantVoidList(h, l)
		h.leaves(0)
	}},
	{"expired elements are trimmed on disk", func(h *ttlH) {
		l := h.st.(ttlListAcc).s
		h.key("k")
		noErr(h.t, l.Add(1)) // +0
		h.advance(60 * time.Millisecond)
		noErr(h.t, l.Add(2)) // +60, a second merge operand
		noErr(h.t, l.Add(3))
		h.advance(40 * time.Millisecond) // +100
		mark := h.removed()
		if h.retExpired() {
			ttlWantVoidList(h, l, 1, 2, 3)
		}
		ttlWantVoidList(h, l, 2, 3)
		h.wantRemoved(mark, 1)
		h.leaves(2) // the stored list holds the two live elements only
	}},
	{"expired element behind live ones", func(h *ttlH) {
		// Merging namespaces appends older elements after newer ones: an
		// expired element need not be a prefix of the list.
		name := h.name + "#ns"
		l := must(backend.GetListNS(h.env.b, backend.String, backend.ListDescriptor[int64]{Name: name, Codec: backend.Int64, TTL: h.cfg})).in(h.t)
		h.key("k")
		noErr(h.t, l.SetCurrentNamespace("b"))
		noErr(h.t, l.Add(20)) // +0
		h.advance(50 * time.Millisecond)
		noErr(h.t, l.SetCurrentNamespace("a"))
		noErr(h.t, l.Add(10)) // +50
		noErr(h.t, l.Add(11))
		noErr(h.t, l.MergeNamespaces("a", "b")) // a = [10, 11, 20@+0]
		h.advance(50 * time.Millisecond)        // +100: 20 expired
		if h.retExpired() {
			ttlWantList(h, l, 10, 11, 20)
		}
		ttlWantList(h, l, 10, 11)
		noErr(h.t, l.SetCurrentNamespace("b"))
		ttlWantList(h, l) // merged away
		h.leaves(0)
		h.leavesFor(name, 2)
	}},
	{"merge into a list a read removed", func(h *ttlH) {
		// The merge must not bring back the elements the read removed.
		name := h.name + "#rm"
		l := must(backend.GetListNS(h.env.b, backend.String, backend.ListDescriptor[int64]{Name: name, Codec: backend.Int64, TTL: h.cfg})).in(h.t)
		h.key("k")
		noErr(h.t, l.SetCurrentNamespace("a"))
		noErr(h.t, l.Add(1)) // +0
		h.advance(ttlD)      // +100: expired
		if h.retExpired() {
			ttlWantList(h, l, 1)
		}
		ttlWantList(h, l)
		noErr(h.t, l.SetCurrentNamespace("b"))
		noErr(h.t, l.Add(2)) // +100
		noErr(h.t, l.MergeNamespaces("a", "b"))
		noErr(h.t, l.SetCurrentNamespace("a"))
		ttlWantList(h, l, 2)
		h.leaves(0)
		h.leavesFor(name, 1)
	}},
	{"update restamps every element", func(h *ttlH) {
		l := h.st.(ttlListAcc).s
		h.key("k")
		noErr(h.t, l.Add(1))
		h.advance(90 * time.Millisecond)
		noErr(h.t, l.Update([]int64{5, 6})) // +90: the old element is replaced
		h.advance(20 * time.Millisecond)    // +110
		ttlWantVoidList(h, l, 5, 6)
		h.leaves(2)
	}},
}

// ---------------------------------------------------------------------------
// Map: every entry has its own stamp; iteration, IsEmpty and Contains see
// only live entries (or, under ReturnExpiredIfNotCleanedUp, expired ones
// once).

type ttlKV = backend.Entry[string, int64]

func ttlMapEntries(h *ttlH, m *backend.Map[string, backend.VoidNamespace, string, int64]) []ttlKV {
	h.t.Helper()
	var out []ttlKV
	for e, err := range m.Entries() {
		noErr(h.t, err)
		out = append(out, e)
	}
	return out
}

func ttlMapKeys(h *ttlH, m *backend.Map[string, backend.VoidNamespace, string, int64]) []string {
	h.t.Helper()
	var out []string
	for k, err := range m.Keys() {
		noErr(h.t, err)
		out = append(out, k)
	}
	return out
}

func ttlMapValues(h *ttlH, m *backend.Map[string, backend.VoidNamespace, string, int64]) []int64 {
	h.t.Helper()
	var out []int64
	for v, err := range m.Values() {
		noErr(h.t, err)
		out = append(out, v)
	}
	return out
}

func ttlWantKeys(h *ttlH, m *backend.Map[string, backend.VoidNamespace, string, int64], want ...string) {
	h.t.Helper()
	if got := ttlMapKeys(h, m); !slices.Equal(got, want) {
		h.t.Fatalf("at +%dms: Keys = %q; want %q", h.elapsed(), got, want)
	}
}

func ttlWantContains(h *ttlH, m *backend.Map[string, backend.VoidNamespace, string, int64], uk string, want bool) {
	h.t.Helper()
	got, err := m.Contains(uk)
	if err != nil || got != want {
		h.t.Fatalf("at +%dms: Contains(%q) = %v, %v; want %v", h.elapsed(), uk, got, err, want)
	}
}

func ttlWantIsEmpty(h *ttlH, m *backend.Map[string, backend.VoidNamespace, string, int64], want bool) {
	h.t.Helper()
	got, err := m.IsEmpty()
	if err != nil || got != want {
		h.t.Fatalf("at +%dms: IsEmpty = %v, %v; want %v", h.elapsed(), got, err, want)
	}
}

func ttlWantMapGet(h *ttlH, m *backend.Map[string, backend.VoidNamespace, string, int64], uk string, want int64, wantOK bool) {
	h.t.Helper()
	got, ok, err := m.Get(uk)
	if err != nil || ok != wantOK || got != want {
		h.t.Fatalf("at +%dms: Get(%q) = %d, %v, %v; want %d, %v", h.elapsed(), uk, got, ok, err, want, wantOK)
	}
}

var ttlMapScenarios = []ttlScenario{
	{"put all after a read removed the entry", func(h *ttlH) {
		// The read removed the entry; PutAll must bring the new value.
		m := h.st.(ttlMapAcc).s
		h.key("k")
		noErr(h.t, m.Put("a", 1)) // +0
		h.advance(ttlD)           // +100: a expired
		ttlWantMapGet(h, m, "a", map[bool]int64{true: 1}[h.retExpired()], h.retExpired())
		ttlWantMapGet(h, m, "a", 0, false)
		noErr(h.t, m.PutAll(maps.All(map[string]int64{"a": 2})))
		ttlWantMapGet(h, m, "a", 2, true)
		ttlWantKeys(h, m, "a")
		h.leaves(1)
	}},
	{"entries expire independently", func(h *ttlH) {
		m := h.st.(ttlMapAcc).s
		h.key("k")
		for i := int64(1); i <= 3; i++ {
			noErr(h.t, m.Put(fmt.Sprint("x", i), -i)) // +0
		}
		h.advance(40 * time.Millisecond)
		noErr(h.t, m.Put("b", 2)) // +40
		noErr(h.t, m.Put("c", 3))
		h.advance(20 * time.Millisecond)
		noErr(h.t, m.PutAll(maps.All(map[string]int64{"d": 4}))) // +60
		h.advance(40 * time.Millisecond)                         // +100: x1..x3 expired
		mark := h.removed()

		ttlWantContains(h, m, "x1", h.retExpired())
		ttlWantContains(h, m, "x1", false)
		ttlWantMapGet(h, m, "x2", map[bool]int64{true: -2}[h.retExpired()], h.retExpired())
		ttlWantMapGet(h, m, "x2", 0, false)
		live := []ttlKV{{Key: "b", Value: 2}, {Key: "c", Value: 3}, {Key: "d", Value: 4}}
		if h.retExpired() {
			if got, want := ttlMapEntries(h, m), append(slices.Clone(live), ttlKV{Key: "x3", Value: -3}); !slices.Equal(got, want) {
				h.t.Fatalf("Entries = %v; want %v (x3 stale, once)", got, want)
			}
		}
		if got := ttlMapEntries(h, m); !slices.Equal(got, live) {
			h.t.Fatalf("Entries = %v; want %v", got, live)
		}
		ttlWantKeys(h, m, "b", "c", "d")
		if got := ttlMapValues(h, m); !slices.Equal(got, []int64{2, 3, 4}) {
			h.t.Fatalf("Values = %v; want [2 3 4]", got)
		}
		ttlWantIsEmpty(h, m, false)
		ttlWantContains(h, m, "b", true)
		h.wantRemoved(mark, 3)

		h.advance(40 * time.Millisecond) // +140: b and c expire unless reads restamped them at +100
		if h.onRead() {
			ttlWantKeys(h, m, "b", "c", "d")
		} else {
			if h.retExpired() {
				ttlWantKeys(h, m, "b", "c", "d")
			}
			ttlWantKeys(h, m, "d")
			ttlWantContains(h, m, "b", false)
		}

		h.advance(3 * ttlD) // everything expired
		if h.retExpired() {
			// IsEmpty sees the first stored entry, returned once even if
			// expired, and removes it: it reports false while expired
			// entries remain, as Flink's !iterator().hasNext() does.
			falses := 0
			for {
				empty, err := m.IsEmpty()
				noErr(h.t, err)
				if empty {
					break
				}
				if falses++; falses > 3 {
					h.t.Fatalf("IsEmpty stayed false after %d calls on a map of expired entries", falses)
				}
			}
			if falses == 0 {
				h.t.Fatal("IsEmpty = true at once under ReturnExpiredIfNotCleanedUp with expired entries stored")
			}
		} else {
			ttlWantIsEmpty(h, m, true)
		}
		if got := ttlMapEntries(h, m); len(got) != 0 {
			h.t.Fatalf("Entries of a map of expired entries = %v", got)
		}
		h.leaves(0)
	}},
	{"live entries stay on disk, expired ones go", func(h *ttlH) {
		m := h.st.(ttlMapAcc).s
		h.key("k")
		noErr(h.t, m.Put("a", 1)) // +0
		h.advance(50 * time.Millisecond)
		noErr(h.t, m.Put("b", 2)) // +50
		noErr(h.t, m.Put("c", 3))
		h.advance(50 * time.Millisecond) // +100
		if h.retExpired() {
			ttlWantKeys(h, m, "a", "b", "c")
		}
		ttlWantKeys(h, m, "b", "c")
		ttlWantIsEmpty(h, m, false)
		h.leaves(2)
	}},
}

// ---------------------------------------------------------------------------
// Reducing and aggregating: merging namespaces treats an expired
// accumulator, source or target, as absent, and stamps the result now.

func ttlReducingMerge(h *ttlH) {
	name := h.name + "#ns"
	r := must(backend.GetReducingNS(h.env.b, backend.String, backend.ReducingDescriptor[int64]{Name: name, Codec: backend.Int64, Reduce: sum, TTL: h.cfg})).in(h.t)
	add := func(ns string, v int64) {
		h.t.Helper()
		noErr(h.t, r.SetCurrentNamespace(ns))
		noErr(h.t, r.Add(v))
	}
	get := func(ns string, want int64, wantOK bool) {
		h.t.Helper()
		noErr(h.t, r.SetCurrentNamespace(ns))
		got, ok, err := r.Get()
		if err != nil || ok != wantOK || got != want {
			h.t.Fatalf("at +%dms: namespace %s: Get = %d, %v, %v; want %d, %v", h.elapsed(), ns, got, ok, err, want, wantOK)
		}
	}
	ttlMergeScenario(h, name, add, get, r.MergeNamespaces)
}

func ttlAggregatingMerge(h *ttlH) {
	name := h.name + "#ns"
	a := must(backend.GetAggregatingNS(h.env.b, backend.String, backend.AggregatingDescriptor[int64, avgAcc, int64]{
		Name: name, Codec: backend.JSON[avgAcc](), Function: sumAgg{}, TTL: h.cfg})).in(h.t)
	add := func(ns string, v int64) {
		h.t.Helper()
		noErr(h.t, a.SetCurrentNamespace(ns))
		noErr(h.t, a.Add(v))
	}
	get := func(ns string, want int64, wantOK bool) {
		h.t.Helper()
		noErr(h.t, a.SetCurrentNamespace(ns))
		got, ok, err := a.Get()
		if err != nil || ok != wantOK || got != want {
			h.t.Fatalf("at +%dms: namespace %s: Get = %d, %v, %v; want %d, %v", h.elapsed(), ns, got, ok, err, want, wantOK)
		}
	}
	ttlMergeScenario(h, name, add, get, a.MergeNamespaces)
}

func ttlMergeScenario(h *ttlH, name string, add func(string, int64), get func(string, int64, bool), merge func(string, ...string) error) {
	h.key("k")
	add("a", 1) // +0
	add("c", 5)
	h.advance(50 * time.Millisecond)
	add("b", 2) // +50
	add("d", 6)
	h.advance(50 * time.Millisecond) // +100: a and c expired
	noErr(h.t, merge("b", "a"))      // expired source: b stays 2
	noErr(h.t, merge("c", "d"))      // expired target: c becomes d's 6
	noErr(h.t, merge("e", "a", "x")) // nothing live to merge: e stays absent
	h.advance(60 * time.Millisecond) // +160: the merge result was stamped at +100
	get("b", 2, true)                // written at +50 but restamped by the merge
	get("c", 6, true)
	get("e", 0, false)
	get("a", 0, false) // merged away
	get("d", 0, false)
	// A target kept alive only by a read's refresh: the merge must see it.
	add("f", 7)                      // +160
	h.advance(60 * time.Millisecond) // +220
	get("f", 7, true)                // under OnReadAndWrite: alive until +320
	h.advance(60 * time.Millisecond) // +280: f's stored stamp (+160) is expired
	add("g", 1)
	noErr(h.t, merge("f", "g"))
	if h.onRead() {
		get("f", 8, true)
	} else {
		get("f", 1, true)
	}
	h.leaves(0)
	h.leavesFor(name, 3) // b, c and f
}

// TestTTLMergeKeepsSourceStamps guards the case that broke the read buffer
// this backend once had: under OnReadAndWrite, a read of the merge target
// refreshes only the target's elements, never the elements merged in
// afterwards. Element 2 is stamped at +0 in namespace b, element 1 at +0 in
// a and refreshed at +60; after merging b into a, at +120 only 1 is live.
func TestTTLMergeKeepsSourceStamps(t *testing.T) {
	env := newEnv(t)
	cfg := ttl.Config{TTL: ttlD, Update: ttl.OnReadAndWrite}
	l := must(backend.GetListNS(env.b, backend.String, backend.ListDescriptor[int64]{Name: "l", Codec: backend.Int64, TTL: cfg})).in(t)
	env.setKey("k")
	noErr(t, l.SetCurrentNamespace("b"))
	noErr(t, l.Add(2))
	noErr(t, l.SetCurrentNamespace("a"))
	noErr(t, l.Add(1))
	env.advance(60 * time.Millisecond)
	if got, err := l.Get(); err != nil || !slices.Equal(got, []int64{1}) {
		t.Fatalf("Get(a) at +60 = %v, %v; want [1]", got, err)
	}
	noErr(t, l.MergeNamespaces("a", "b"))
	env.advance(60 * time.Millisecond)
	if got, err := l.Get(); err != nil || !slices.Equal(got, []int64{1}) {
		t.Fatalf("Get(a) at +120 = %v, %v; want [1]: 2 was stamped at +0 and expired at +100", got, err)
	}
}
