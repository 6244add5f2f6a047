package backend_test

import (
	"context"
	"fmt"
	"iter"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/pebblestate/pebblestate/backend"
	"github.com/pebblestate/pebblestate/snapshot"
	"github.com/pebblestate/pebblestate/ttl"
)

// TestTTLReadBufferModel runs seeded random operations on TTL states of
// every kind against two backends driven by the same clock: one whose reads
// write through (Flink's behaviour, which TestTTLSemantics pins down
// scenario by scenario) and one whose reads buffer their writes
// (Options.TTLReadBuffer), at the default size and at one that is full
// after a few keys, so buffered keys and keys read through mix. Every
// result must match. The operations include clock steps both ways, explicit
// cleanup, flushes, reopening and checkpoint-and-restore of both, so every
// path by which buffered work reaches Pebble is crossed with every reader
// of stamps. Background and incremental cleanup are off: they act at times
// of their own, which under ReturnExpiredIfNotCleanedUp is visible.
func TestTTLReadBufferModel(t *testing.T) {
	for _, c := range ttlConfigs {
		for _, size := range []int64{0, 300} {
			t.Run(fmt.Sprintf("%s/buffer=%d", c.name, size), func(t *testing.T) {
				for seed := range uint64(2) {
					ttlBufferModel(t, seed, c.upd, c.vis, size)
				}
			})
		}
	}
}

// ttlPair is the two backends of TestTTLReadBufferModel and their states.
type ttlPair struct {
	t     *testing.T
	clock *ttl.ManualClock
	cfg   ttl.Config
	dirs  [2]string
	sizes [2]int64
	bs    [2]*backend.Backend[string]
	vs    [2]*backend.Value[string, backend.VoidNamespace, int64]
	ls    [2]*backend.List[string, backend.VoidNamespace, int64]
	ms    [2]*backend.Map[string, backend.VoidNamespace, string, int64]
	rs    [2]*backend.Reducing[string, backend.VoidNamespace, int64]
	chk   int64
}

func (p *ttlPair) options(i int, dir string) backend.Options {
	return backend.Options{Dir: dir, Clock: p.clock, TTLReadBuffer: p.sizes[i], TTLSweepInterval: -1}
}

// register gets the four states of backend i.
func (p *ttlPair) register(i int) {
	b := p.bs[i]
	p.vs[i] = ttlMust(backend.GetValue(b, backend.ValueDescriptor[int64]{Name: "v", Codec: backend.Int64, TTL: p.cfg})).in(p.t)
	p.ls[i] = ttlMust(backend.GetList(b, backend.ListDescriptor[int64]{Name: "l", Codec: backend.Int64, TTL: p.cfg})).in(p.t)
	p.ms[i] = ttlMust(backend.GetMap(b, backend.MapDescriptor[string, int64]{Name: "m", KeyCodec: backend.String, ValueCodec: backend.Int64, TTL: p.cfg})).in(p.t)
	p.rs[i] = ttlMust(backend.GetReducing(b, backend.ReducingDescriptor[int64]{Name: "r", Codec: backend.Int64, TTL: p.cfg,
		Reduce: func(a, b int64) int64 { return a + b }})).in(p.t)
}

func (p *ttlPair) open(i int) {
	p.bs[i] = ttlMust(backend.Open(backend.String, p.options(i, p.dirs[i]))).in(p.t)
	p.register(i)
}

func (p *ttlPair) close(i int) {
	ttlCheck(p.t, p.bs[i].Close())
	p.bs[i] = nil
}

// restore checkpoints backend i, closes it and restores it into a new
// directory from the checkpoint.
func (p *ttlPair) restore(i int) {
	st, err := snapshot.NewLocal(filepath.Join(p.t.TempDir(), "chk"))
	ttlCheck(p.t, err)
	p.chk++
	_, err = p.bs[i].Checkpoint(context.Background(), st, p.chk)
	ttlCheck(p.t, err)
	p.close(i)
	p.dirs[i] = p.t.TempDir()
	b, _, err := backend.RestoreLatest(context.Background(), backend.String, p.options(i, p.dirs[i]), st)
	ttlCheck(p.t, err)
	p.bs[i] = b
	p.register(i)
}

func ttlBufferModel(t *testing.T, seed uint64, upd ttl.UpdateType, vis ttl.Visibility, size int64) {
	cfg := ttl.Config{TTL: ttlD, Update: upd, Visibility: vis, Cleanup: ttl.Cleanup{DisableBackground: true}}
	p := &ttlPair{t: t, clock: ttl.NewManualClock(ttlT0), cfg: cfg, dirs: [2]string{t.TempDir(), t.TempDir()}, sizes: [2]int64{-1, size}}
	for i := range 2 {
		p.open(i)
	}
	defer func() {
		for i := range 2 {
			if p.bs[i] != nil {
				p.close(i)
			}
		}
	}()
	rng := rand.New(rand.NewPCG(seed, 77))
	userKeys := []string{"a", "b", "c", "d", "e", "f"}
	mapKeys := []string{"x", "y", "z"}
	const ops = 800
	for op := range ops {
		// Each step returns one comparable result per backend.
		var got [2]string
		var what string
		k := userKeys[rng.IntN(len(userKeys))]
		mk := mapKeys[rng.IntN(len(mapKeys))]
		n := rng.Int64N(100)
		r := rng.IntN(100)
		switch {
		case r < 12:
			what = "advance"
			if rng.IntN(8) == 0 {
				p.clock.Advance(-time.Duration(rng.IntN(30)) * ttlMs) // the clock goes back
			} else {
				p.clock.Advance(time.Duration(rng.IntN(45)) * ttlMs)
			}
			continue
		case r < 13:
			what = "cleanup"
			for i := range 2 {
				ttlCheck(t, p.bs[i].CleanupExpired(context.Background()))
			}
			continue
		case r < 14:
			what = "flush"
			for i := range 2 {
				ttlCheck(t, p.bs[i].Flush())
			}
			continue
		case r < 15:
			for i := range 2 {
				p.close(i)
				p.open(i)
			}
			continue
		case r < 16:
			for i := range 2 {
				p.restore(i)
			}
			continue
		case r < 17:
			// The keys of each state, with the read buffer as it is, and
			// a write-back in the middle of the loop (Flush), which must
			// not let keys whose values reads removed come back.
			what = "keys"
			for i := range 2 {
				var ks []string
				seqs := []iter.Seq2[string, error]{
					p.vs[i].KeysInNamespace(backend.VoidNamespace{}),
					p.ls[i].KeysInNamespace(backend.VoidNamespace{}),
					p.ms[i].KeysInNamespace(backend.VoidNamespace{}),
					p.rs[i].KeysInNamespace(backend.VoidNamespace{}),
				}
				for j, seq := range seqs {
					for k, err := range seq {
						ttlCheck(t, err)
						ks = append(ks, fmt.Sprint(j, k))
						if len(ks) == 2 {
							ttlCheck(t, p.bs[i].Flush())
						}
					}
				}
				got[i] = fmt.Sprint(ks)
			}
			if got[0] != got[1] {
				t.Fatalf("seed %d op %d: keys at %v: write-through %s, buffered %s", seed, op, p.clock.Now().Sub(ttlT0), got[0], got[1])
			}
			continue
		}
		for i := range 2 {
			ttlCheck(t, p.bs[i].SetCurrentKey(k))
			var out any
			var err error
			switch {
			case r < 30:
				what = "value.Get"
				v, ok, e := p.vs[i].Get()
				out, err = fmt.Sprint(v, ok), e
			case r < 38:
				what = "value.Update"
				err = p.vs[i].Update(n)
			case r < 40:
				what = "value.Clear"
				err = p.vs[i].Clear()
			case r < 52:
				what = "list.Get"
				out, err = p.ls[i].Get()
			case r < 60:
				what = "list.Add"
				err = p.ls[i].Add(n)
			case r < 62:
				what = "list.Update"
				err = p.ls[i].Update([]int64{n, n + 1})
			case r < 70:
				what = "map.Get"
				v, ok, e := p.ms[i].Get(mk)
				out, err = fmt.Sprint(v, ok), e
			case r < 76:
				what = "map.Put"
				err = p.ms[i].Put(mk, n)
			case r < 78:
				what = "map.Remove"
				err = p.ms[i].Remove(mk)
			case r < 84:
				what = "map.Entries"
				var es []string
				for e, err2 := range p.ms[i].Entries() {
					ttlCheck(t, err2)
					es = append(es, fmt.Sprint(e.Key, "=", e.Value))
				}
				out = es
			case r < 86:
				what = "map.IsEmpty"
				out, err = p.ms[i].IsEmpty()
			case r < 94:
				what = "reducing.Get"
				v, ok, e := p.rs[i].Get()
				out, err = fmt.Sprint(v, ok), e
			default:
				what = "reducing.Add"
				err = p.rs[i].Add(n)
			}
			ttlCheck(t, err)
			got[i] = fmt.Sprint(out)
		}
		if got[0] != got[1] {
			t.Fatalf("seed %d op %d: %s(%s) at %v: write-through %s, buffered %s", seed, op, what, k,
				p.clock.Now().Sub(ttlT0), got[0], got[1])
		}
	}
	// The stored state must agree too once everything is written back.
	for i := range 2 {
		ttlCheck(t, p.bs[i].Flush())
	}
	var keys [2][]string
	for i := range 2 {
		for k, err := range p.vs[i].KeysInNamespace(backend.VoidNamespace{}) {
			ttlCheck(t, err)
			keys[i] = append(keys[i], k)
		}
	}
	if !slices.Equal(keys[0], keys[1]) {
		t.Fatalf("seed %d: value keys stored: write-through %v, buffered %v", seed, keys[0], keys[1])
	}
}
